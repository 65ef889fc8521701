//! Peak memory and CPU of the validator's costliest allowed inputs (issue 11 §4), each case in a child process (this
//! benchmark run again) so that each peak resident set is the case's own:
//!
//!   POSTATO_MEDIA_CORPUS=/tmp/corpus cargo bench -p media-validator --bench png_and_probe_budgets
//!
//! - the JPEG rendition of the largest PNGs the guide allows, decoded row by row (what the validator does);
//! - the same PNGs through the whole-image decode the validator used before (the `image` crate's `decode`, flattened
//!   over white, then encoded): the baseline;
//! - the probe on a fragmented MP4 whose last MiB is a carpet of `moof` boxes, against the probe of a plain MP4 from
//!   the corpus (skipped without a corpus), each probed `PROBE_RUNS` times for a CPU figure above the 10 ms tick.
//!
//! Without the corpus, the plain-MP4 baseline is left out and the other rows are printed.

#[path = "../tests/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[allow(dead_code)]
#[path = "../tests/support/media.rs"]
mod media;
#[path = "../tests/support/process.rs"]
mod process;

use std::{
    io::Cursor,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use image::{codecs::jpeg::JpegEncoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use media_validator::{
    probe::Budget,
    rendition::png_to_jpeg,
    source::{run_probe, FileSource},
};
use process::{measure, report_to_parent, ChildMeasure};

const PROBE_RUNS: u32 = 100;
/// The plain MP4 of the corpus the crafted one is compared with: fragmented without `mfra` and larger than the two
/// windows like it, so its probe makes the same two reads and the same tail search, on real fragments.
const PLAIN_MP4: &str = "long-11min-60fps-fragmented-no-mfra.mp4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    RowByRow,
    WholeImage,
    Probe,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Self::RowByRow => "rows",
            Self::WholeImage => "whole",
            Self::Probe => "probe",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::RowByRow, Self::WholeImage, Self::Probe]
            .into_iter()
            .find(|w| w.name() == name)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, child, work, file] = args.as_slice() {
        if child == "child" {
            let work = Work::from_name(work).unwrap_or_else(|| panic!("unknown work {work}"));
            return run_child(work, Path::new(file));
        }
    }
    // `cargo bench` passes `--bench`; there are no options of our own.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for (label, spec) in media::largest_allowed_pngs() {
        let path = dir
            .path()
            .join(format!("{}x{}-{}.png", spec.width, spec.height, spec.interlaced));
        std::fs::write(&path, spec.encode(media::rgba16_gradient)).expect("writing the PNG");
        for (work, how) in [
            (Work::RowByRow, "rendition, row by row"),
            (Work::WholeImage, "rendition, whole image (before)"),
        ] {
            rows.push((format!("{label}: {how}"), work, child(work, &path)));
        }
    }
    let carpet = dir.path().join("moof-carpet-tail.mp4");
    std::fs::write(&carpet, media::mp4_with_moof_carpet_tail()).expect("writing the MP4");
    rows.push((
        format!("probe: fragmented MP4 ending in a 1 MiB carpet of moof boxes (per run, {PROBE_RUNS} runs)"),
        Work::Probe,
        child(Work::Probe, &carpet),
    ));
    match corpus::corpus_dir() {
        Ok(corpus) => rows.push((
            format!("probe: {PLAIN_MP4} of the corpus (per run, {PROBE_RUNS} runs)"),
            Work::Probe,
            child(Work::Probe, &corpus.join(PLAIN_MP4)),
        )),
        Err(reason) => println!("plain MP4 baseline skipped: {reason}"),
    }
    print_report(&rows);
}

/// Runs one case in a child: (measure, wall seconds of the whole child).
fn child(work: Work, file: &Path) -> (ChildMeasure, f64) {
    let started = Instant::now();
    let measured = measure(
        Command::new(std::env::current_exe().expect("this benchmark"))
            .arg("child")
            .arg(work.name())
            .arg(file),
    );
    (measured, started.elapsed().as_secs_f64())
}

fn run_child(work: Work, file: &Path) {
    let report = match work {
        Work::RowByRow | Work::WholeImage => {
            let png = std::fs::read(file).expect("the PNG");
            let jpeg = if work == Work::RowByRow {
                png_to_jpeg(&png).expect("rendition")
            } else {
                whole_image_rendition(&png)
            };
            format!("jpeg_bytes={}", jpeg.len())
        }
        Work::Probe => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            let mut outcome = String::new();
            for _ in 0..PROBE_RUNS {
                outcome = runtime.block_on(probe(file));
            }
            outcome
        }
    };
    report_to_parent(&report);
}

async fn probe(file: &Path) -> String {
    let source = FileSource::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let run = run_probe(&source, Budget::default(), None)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let outcome = match &run.outcome {
        Ok(report) => format!("done:{:?}", report.duration_ms),
        Err(unreadable) => format!("unreadable:{:?}", unreadable.reason),
    };
    format!("{outcome} reads={}", run.reads.requests)
}

/// The rendition as the validator made it before (issue 11 §4): the whole picture decoded by the `image` crate
/// (capped at 16384 px a side and 256 MiB), flattened over white, then encoded. Kept here only as the baseline.
fn whole_image_rendition(png: &[u8]) -> Vec<u8> {
    let mut reader = ImageReader::with_format(Cursor::new(png), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let rgba = reader.decode().expect("decoding the whole PNG").into_rgba8();
    let rgb = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([over_white(r), over_white(g), over_white(b)])
    });
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&rgb)
        .expect("encoding the JPEG");
    jpeg
}

fn print_report(rows: &[(String, Work, (ChildMeasure, f64))]) {
    let mut report = String::from("| case | peak RSS | CPU | wall (child) | result |\n|---|---:|---:|---:|---|\n");
    for (label, work, (m, wall)) in rows {
        let runs = if *work == Work::Probe {
            f64::from(PROBE_RUNS)
        } else {
            1.0
        };
        let cpu = m.cpu_seconds / runs;
        let cpu = if cpu < 0.1 {
            format!("{:.2} ms", cpu * 1000.0)
        } else {
            format!("{cpu:.2} s")
        };
        report.push_str(&format!(
            "| {label} | {} MiB | {cpu} | {:.2} s | {} |\n",
            m.peak_rss_kib / 1024,
            wall,
            m.report
        ));
    }
    let probes: Vec<&ChildMeasure> = rows
        .iter()
        .filter(|(_, work, _)| *work == Work::Probe)
        .map(|(_, _, (m, _))| m)
        .collect();
    if let [crafted, plain] = probes.as_slice() {
        report.push_str(&format!(
            "\nCrafted tail ÷ plain MP4: CPU {:.1}×, peak RSS {:.2}×.\n",
            crafted.cpu_seconds / plain.cpu_seconds.max(0.01),
            crafted.peak_rss_kib as f64 / plain.peak_rss_kib.max(1) as f64
        ));
    }
    let (rows_peak, whole_peak): (Vec<u64>, Vec<u64>) = (peaks(rows, Work::RowByRow), peaks(rows, Work::WholeImage));
    if let (Some(rows_max), Some(whole_max)) = (rows_peak.iter().max(), whole_peak.iter().max()) {
        report.push_str(&format!(
            "Worst PNG peak RSS: {} MiB row by row, {} MiB whole-image ({:.1}× less).\n",
            rows_max / 1024,
            whole_max / 1024,
            *whole_max as f64 / (*rows_max).max(1) as f64
        ));
    }
    println!("{report}");
    let out: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/png-probe-budgets.md");
    let _ = std::fs::write(&out, &report);
    println!("(also written to {})", out.display());
}

fn peaks(rows: &[(String, Work, (ChildMeasure, f64))], of: Work) -> Vec<u64> {
    rows.iter()
        .filter(|(_, work, _)| *work == of)
        .map(|(_, _, (m, _))| m.peak_rss_kib)
        .collect()
}
