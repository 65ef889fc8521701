//! Inputs crafted against the probe, built in one place for the unit tests that bound its work and for the
//! benchmark that measures it (`benches/png_and_probe_budgets.rs`).

/// 8-byte boxes in [`moof_carpet`]: 1 MiB of them, the tail window's size.
pub const MOOF_CARPET_BOXES: usize = 131_072;

/// 1 MiB of back-to-back 8-byte `moof` boxes whose chain stops 4 bytes short of the end: each of the 131,072
/// candidates would walk 8,192 boxes (~10⁹ header reads) if walks did not remember where they had been. At the end
/// of a fragmented MP4 without `mfra` (inside its media data, say), it is what the tail search for the last
/// fragments reads.
pub fn moof_carpet() -> Vec<u8> {
    let mut carpet: Vec<u8> = std::iter::repeat_n([0, 0, 0, 8, b'm', b'o', b'o', b'f'], MOOF_CARPET_BOXES)
        .flatten()
        .collect();
    carpet.extend_from_slice(b"junk");
    carpet
}
