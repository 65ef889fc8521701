//! Fuzzes the remuxer's state machine, transport and program streams alike (the first bytes pick the demuxer):
//! the input after the first byte is the source, fed in chunks of a size the first byte picks, so that packets,
//! packs and PES packets are cut everywhere. It must never panic, and when it succeeds the output must be as long
//! as the summary says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_validator::remux::Remuxer;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(mode) * 257;
    let mut remuxer = Remuxer::new();
    let mut out = remuxer.header();
    let mut written = 0u64;
    for piece in data.chunks(chunk) {
        if remuxer.push(piece, &mut out).is_err() {
            return;
        }
        written += out.len() as u64;
        out.clear();
    }
    if let Ok(summary) = remuxer.finish(&mut out) {
        written += out.len() as u64;
        assert_eq!(summary.output_size, written, "the summary and the bytes written disagree");
        assert!(summary.mdat_size.offset + 8 <= written);
    }
});
