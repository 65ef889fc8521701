//! Hostile input: every prefix of small files (2,000+ spread prefixes of large ones), random mutations, and the
//! hand-made cases of media-probing.md §1.2. Nothing may panic, and the probe's own allocations stay within its
//! byte budget. Each case runs on a thread with a 256 KiB stack (an eighth of a tokio worker's), which deep
//! recursion on nested boxes would overflow.
//!
//! Allocation is measured by a counting global allocator, per thread, so that tests running in parallel do not see
//! each other's memory. Set POSTATO_HOSTILE_SEED to replay a mutation run.

mod support;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    path::PathBuf,
};

use media_validator::probe::{probe_bytes, Budget, MediaClass, Step, UnreadableReason};
use support::media::{bx, full, jpeg, mp4, png, SyntheticMovie};

// ---------------------------------------------------------------------------------------------------------------
// Per-thread allocation accounting

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn record_growth(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn record_shrink(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every method forwards to the system allocator unchanged and only updates thread-local counters, which
// neither allocate nor unwind.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record_growth(layout.size());
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record_shrink(layout.size());
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            record_growth(new_size - layout.size());
        } else {
            record_shrink(layout.size() - new_size);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs the probe over `data` and returns the peak bytes it allocated beyond what was live before.
fn probe_measured(data: &[u8]) -> (Step, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let (step, _) = probe_bytes(data, Budget::default());
    let peak = PEAK.with(Cell::get).saturating_sub(base);
    (step, peak)
}

/// The budget's bytes plus room for the analysis (tables, the SPS buffer, per-stream payload buffers).
const MEMORY_LIMIT: usize = 24 * 1024 * 1024 + 2 * 1024 * 1024;

fn check(label: &str, data: &[u8], failures: &mut Vec<String>) -> usize {
    let (step, peak) = probe_measured(data);
    if peak > MEMORY_LIMIT {
        failures.push(format!("{label}: allocated {peak} bytes (limit {MEMORY_LIMIT})"));
    }
    match step {
        Step::NeedRange(range) => failures.push(format!("{label}: probe_bytes ended asking for {range:?}")),
        // Internal means a parser asked for bytes it already held: a bug, even though it is not a panic.
        Step::Invalid(unreadable) if unreadable.reason == UnreadableReason::Internal => {
            failures.push(format!("{label}: the probe reported an internal error"))
        }
        _ => {}
    }
    peak
}

/// Runs `work` on a small-stack thread; a panic or a stack overflow fails the test with its label.
fn on_small_stack(label: &str, work: impl FnOnce() -> Vec<String> + Send + 'static) {
    let handle = std::thread::Builder::new()
        .name(label.to_owned())
        .stack_size(256 * 1024)
        .spawn(work)
        .unwrap_or_else(|e| panic!("spawning {label}: {e}"));
    match handle.join() {
        Ok(failures) => assert!(failures.is_empty(), "{label}:\n{}", failures.join("\n")),
        Err(_) => panic!("{label}: the probe panicked"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation and mutation

const SPREAD_PREFIXES: usize = 2_000;
const EVERY_PREFIX_UP_TO: usize = 64 * 1024;
const MUTANTS_PER_FILE: usize = 500;

/// Every prefix length of a small file; the first 4 KiB (headers) densely and 2,000 spread lengths for a large one.
fn prefix_lengths(len: usize) -> Vec<usize> {
    if len <= EVERY_PREFIX_UP_TO {
        return (0..=len).collect();
    }
    let mut lengths: Vec<usize> = (0..=4096).collect();
    lengths.extend((0..SPREAD_PREFIXES).map(|i| 4096 + (len - 4096) * (i + 1) / SPREAD_PREFIXES));
    lengths.dedup();
    lengths
}

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed() -> u64 {
    std::env::var("POSTATO_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_F00D_0001)
}

/// Metadata lives at the ends of a file (headers, moov, tail timestamps): mutations land there, in 1–8 places,
/// as byte noise, bit flips, or box-size-like values.
fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = original.to_vec();
    let len = data.len();
    if len == 0 {
        return data;
    }
    let hot = 64 * 1024;
    for _ in 0..1 + rng.below(8) {
        let at = if len <= 2 * hot || rng.below(2) == 0 {
            rng.below(len.min(hot))
        } else {
            len - 1 - rng.below(hot)
        };
        match rng.below(4) {
            0 => data[at] = rng.next() as u8,
            1 => data[at] ^= 1 << rng.below(8),
            _ => {
                let values = [
                    0u32,
                    1,
                    3,
                    7,
                    8,
                    16,
                    0x7FFF_FFFF,
                    0xFFFF_FFFF,
                    0xFFFF_FFF0,
                    len as u32,
                    rng.next() as u32,
                ];
                let value = values[rng.below(values.len())].to_be_bytes();
                for (i, byte) in value.iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = *byte;
                    }
                }
            }
        }
    }
    data
}

fn torture(label: String, data: Vec<u8>, seed: u64) {
    let name = label.clone();
    on_small_stack(&name, move || {
        let mut failures = Vec::new();
        let lengths = prefix_lengths(data.len());
        let mut peak = 0;
        for &len in &lengths {
            peak = peak.max(check(&format!("{label} cut at {len}"), &data[..len], &mut failures));
        }
        let mut rng = Rng(seed ^ (data.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for i in 0..MUTANTS_PER_FILE {
            let mutant = mutate(&data, &mut rng);
            peak = peak.max(check(
                &format!("{label} mutant {i} (seed {seed})"),
                &mutant,
                &mut failures,
            ));
        }
        println!(
            "{label}: {} bytes, {} prefixes, {MUTANTS_PER_FILE} mutants, peak probe allocation {peak} bytes",
            data.len(),
            lengths.len()
        );
        failures.truncate(20);
        failures
    });
}

#[test]
fn synthetic_media_survive_every_prefix_and_mutation() {
    let small_movie = SyntheticMovie {
        mdat_bytes: 2048,
        ..SyntheticMovie::default()
    };
    let cases = [
        ("synthetic faststart mp4", mp4(&small_movie)),
        (
            "synthetic moov-at-end mp4",
            mp4(&SyntheticMovie {
                moov_first: false,
                ..small_movie.clone()
            }),
        ),
        ("synthetic jpeg", jpeg(96, 160)),
        ("synthetic png", png(90, 160)),
    ];
    for (label, data) in cases {
        torture(label.to_owned(), data, seed());
    }
}

/// Every corpus file but the two whose size is their point: the sparse 4.3 GB MP4 (the faststart file plus a
/// `free` box) and the 21.9 MB PNG (image-16x9.png has the same structure).
const TOO_BIG_TO_LOAD: &[&str] = &["sparse-over-4gb.mp4", "image-over-20mb.png"];

fn corpus_sample_paths() -> Result<Vec<PathBuf>, String> {
    let dir = support::corpus::corpus_dir()?;
    let mut paths = support::corpus::files(&dir);
    paths.retain(|p| {
        !p.file_name()
            .is_some_and(|n| TOO_BIG_TO_LOAD.contains(&n.to_string_lossy().as_ref()))
    });
    Ok(paths)
}

/// Two test functions so that the two cores share the work.
fn torture_corpus(part: usize) {
    let paths = match corpus_sample_paths() {
        Ok(paths) => paths,
        Err(reason) => {
            println!("skipped: {reason} (the synthetic cases still ran)");
            return;
        }
    };
    for path in paths.iter().skip(part).step_by(2) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let label = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        torture(label, data, seed());
    }
}

#[test]
fn corpus_files_survive_truncation_and_mutation_part_1() {
    torture_corpus(0);
}

#[test]
fn corpus_files_survive_truncation_and_mutation_part_2() {
    torture_corpus(1);
}

// ---------------------------------------------------------------------------------------------------------------
// The hand-made cases of media-probing.md §1.2

fn ftyp() -> Vec<u8> {
    bx(b"ftyp", &[b"isom", &[0, 0, 2, 0], b"isom"])
}

/// `depth` boxes of `kind`, each the only child of the previous one: just their headers, outermost first.
fn nested(kind: &[u8; 4], depth: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * depth);
    for level in 0..depth {
        out.extend_from_slice(&(8 * (depth - level) as u32).to_be_bytes());
        out.extend_from_slice(kind);
    }
    out
}

/// Overwrites bytes at `offset` into the payload of the first `kind` box with `value` (a crafted field).
fn patch_after(data: &mut [u8], kind: &[u8; 4], offset: usize, value: &[u8]) {
    let at = data
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {kind:?} box"));
    data[at + 4 + offset..at + 4 + offset + value.len()].copy_from_slice(value);
}

fn classify(data: &[u8]) -> String {
    match probe_bytes(data, Budget::default()).0 {
        Step::Done(report) => format!("done:{}:{}", report.container.code(), report.video.is_some()),
        Step::Invalid(unreadable) => format!("invalid:{:?}", unreadable.reason).chars().take(40).collect(),
        Step::NeedRange(range) => format!("need:{range:?}"),
    }
}

#[test]
fn hand_made_hostile_files_are_answered_without_panics_or_deep_stacks() {
    on_small_stack("hand-made cases", || {
        let movie = SyntheticMovie {
            mdat_bytes: 1024,
            ..SyntheticMovie::default()
        };
        let valid = mp4(&movie);
        let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

        // 20,000 nested moov (mp4-atom overflows its stack at ~2,000) and udta inside a real moov.
        cases.push((
            "20,000 nested moov",
            [ftyp(), nested(b"moov", 20_000)].concat(),
            "done:mp4:false",
        ));
        let mut deep_udta = support::media::moov(&movie);
        let udta = nested(b"udta", 20_000);
        deep_udta.extend_from_slice(&udta);
        let len = deep_udta.len() as u32;
        deep_udta[..4].copy_from_slice(&len.to_be_bytes());
        cases.push(("20,000 nested udta", [ftyp(), deep_udta].concat(), "done:mp4:true"));

        // stts claiming 0x7FFFFFFF entries with one real one.
        let mut stts = valid.clone();
        patch_after(&mut stts, b"stts", 4, &0x7FFF_FFFFu32.to_be_bytes());
        cases.push(("stts entry count 0x7FFFFFFF", stts, "invalid:Corrupt"));

        // A top-level box claiming 0xFFFFFFF0 bytes in a 608-byte file.
        let mut huge = ftyp();
        let moov_at = huge.len();
        huge.extend_from_slice(&bx(b"moov", &[&vec![0; 600 - moov_at]]));
        huge[moov_at..moov_at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        cases.push(("top-level size 0xFFFFFFF0", huge, "invalid:Truncated"));

        // A child of size 3, and a 64-bit largesize of 8.
        let mut tiny_child = valid.clone();
        let at = tiny_child.windows(4).position(|w| w == b"mvhd").unwrap_or_default() - 4;
        tiny_child[at..at + 4].copy_from_slice(&3u32.to_be_bytes());
        cases.push(("child box of size 3", tiny_child, "invalid:Corrupt"));
        let wide = [ftyp(), [&1u32.to_be_bytes()[..], b"moov", &8u64.to_be_bytes()].concat()].concat();
        cases.push(("64-bit largesize of 8", wide, "invalid:Corrupt"));

        // mdhd time scale 0 (mp4 0.14 divides by it).
        let mut zero = valid.clone();
        patch_after(&mut zero, b"mdhd", 4 + 8, &0u32.to_be_bytes());
        cases.push(("mdhd timescale 0", zero, "invalid:Corrupt"));

        // stsd claiming 0xFFFFFFFF entries, its avcC claiming 31 SPS of 64 KB.
        let mut stsd = valid.clone();
        patch_after(&mut stsd, b"stsd", 4, &0xFFFF_FFFFu32.to_be_bytes());
        patch_after(&mut stsd, b"avcC", 5, &[0xFF, 0xFF, 0xFF]);
        cases.push(("stsd count 0xFFFFFFFF, 31 SPS of 64 KB", stsd, "done:mp4:true"));

        // A fragment whose trun claims 4 billion samples with a default duration (no per-sample table).
        let trun = full(b"trun", 0, 0, &[&u32::MAX.to_be_bytes()]);
        let traf = bx(
            b"traf",
            &[
                &full(b"tfhd", 0, 0x08, &[&1u32.to_be_bytes(), &512u32.to_be_bytes()]),
                &trun,
            ],
        );
        let moof = bx(b"moof", &[&full(b"mfhd", 0, 0, &[&1u32.to_be_bytes()]), &traf]);
        cases.push((
            "trun of 4 billion samples",
            [ftyp(), support::media::fragmented_moov(&movie), moof].concat(),
            "done:mp4:true",
        ));

        // A transport stream whose PMT lists more streams than a packet can hold, and PES headers pointing past
        // their packets.
        let mut ts = vec![0xFFu8; 188 * 8];
        for k in 0..8 {
            ts[k * 188] = 0x47;
        }
        ts[1..4].copy_from_slice(&[0x40, 0x00, 0x10]);
        ts[4..21].copy_from_slice(&[0, 0, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xE1, 0, 0, 0, 0, 0]);
        ts[189..192].copy_from_slice(&[0x41, 0x00, 0x10]);
        ts[192..205].copy_from_slice(&[0, 2, 0xBF, 0xFF, 0, 1, 0xC1, 0, 0, 0xE1, 0, 0xF0, 0]);
        cases.push(("transport stream with an oversized PMT", ts, ""));

        let mut failures = Vec::new();
        for (label, data, expected) in cases {
            let (step, peak) = probe_measured(&data);
            let got = classify(&data);
            if !got.starts_with(expected) {
                failures.push(format!("{label}: got {got}, expected {expected}…"));
            }
            if peak > MEMORY_LIMIT {
                failures.push(format!("{label}: allocated {peak} bytes"));
            }
            if let Step::Done(report) = step {
                // Whatever it found, the class is decided by the bytes.
                assert_ne!(report.class(), MediaClass::Unknown, "{label}");
            }
        }
        failures
    });
}
