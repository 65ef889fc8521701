//! The whole corpus through `postato-probe` against `ffprobe -show_streams -show_format`, in one run.
//!
//!   POSTATO_MEDIA_CORPUS=/tmp/corpus cargo bench -p media-validator --bench probe_vs_ffprobe
//!
//! Reports, best of three rounds: wall and CPU time of ffprobe once per file; of postato-probe once per file (the
//! fair comparison: both pay a process start each); and of one postato-probe over every file (how the CLI is
//! used); then each file's probe CPU time in-process (the Lambda's case). CPU times come from /proc (children's
//! utime + stime for the processes; this process's own for the in-process loop, which runs single-threaded).

#[path = "../tests/support/corpus.rs"]
mod corpus;
#[path = "../tests/support/process.rs"]
#[allow(dead_code)]
mod process;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use media_validator::{
    probe::Budget,
    source::{run_probe, FileSource},
};
use process::cpu_seconds;

const ROUNDS: usize = 3;
/// Each file is probed in-process for at least this long, so the 10 ms /proc tick resolution averages out.
const IN_PROCESS_SPAN: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
struct Measure {
    wall: f64,
    cpu: f64,
}

fn measure_children(mut work: impl FnMut()) -> Measure {
    let (_, children_before) = cpu_seconds();
    let start = Instant::now();
    work();
    let wall = start.elapsed().as_secs_f64();
    let (_, children_after) = cpu_seconds();
    Measure {
        wall,
        cpu: children_after - children_before,
    }
}

fn best(rounds: &[Measure]) -> Measure {
    Measure {
        wall: rounds.iter().map(|m| m.wall).fold(f64::INFINITY, f64::min),
        cpu: rounds.iter().map(|m| m.cpu).fold(f64::INFINITY, f64::min),
    }
}

fn run_quietly(command: &mut Command) {
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
    if let Err(e) = status {
        panic!("running {command:?}: {e}");
    }
}

fn ffprobe(file: &Path) {
    run_quietly(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_streams", "-show_format"])
            .arg(file),
    );
}

fn postato_probe(files: &[PathBuf]) {
    run_quietly(Command::new(env!("CARGO_BIN_EXE_postato-probe")).arg("--").args(files));
}

/// In-process probe CPU time per run of one file, and the fastest single run's wall time.
fn in_process(runtime: &tokio::runtime::Runtime, file: &Path) -> (f64, f64) {
    let (cpu_before, _) = cpu_seconds();
    let start = Instant::now();
    let mut runs = 0u32;
    let mut fastest = f64::INFINITY;
    while start.elapsed() < IN_PROCESS_SPAN || runs < 3 {
        let one = Instant::now();
        runtime.block_on(async {
            let source = FileSource::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let run = run_probe(&source, Budget::default(), None).await;
            std::hint::black_box(run.map(|r| r.reads)).ok();
        });
        fastest = fastest.min(one.elapsed().as_secs_f64());
        runs += 1;
    }
    let (cpu_after, _) = cpu_seconds();
    ((cpu_after - cpu_before) / f64::from(runs), fastest)
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options of our own.
    let dir = match corpus::corpus_dir() {
        Ok(dir) => dir,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    if let Err(reason) = corpus::ffprobe_available() {
        println!("skipped: {reason}");
        return;
    }
    let files = corpus::files(&dir);
    // Warm the page cache so that neither side pays for the disk.
    for file in &files {
        ffprobe(file);
    }
    postato_probe(&files);

    let (mut ff, mut each, mut once) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ff.push(measure_children(|| files.iter().for_each(|f| ffprobe(f))));
        each.push(measure_children(|| {
            files.iter().for_each(|f| postato_probe(std::slice::from_ref(f)))
        }));
        once.push(measure_children(|| postato_probe(&files)));
    }
    let (ff, each, once) = (best(&ff), best(&each), best(&once));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let mut rows = Vec::new();
    for file in &files {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let (cpu, fastest) = in_process(&runtime, file);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        rows.push((name, size, cpu, fastest));
    }

    let ms = |s: f64| s * 1000.0;
    let mut report = String::new();
    report.push_str(&format!("{} corpus files, best of {ROUNDS} rounds\n\n", files.len()));
    report.push_str("| run | wall | CPU | ffprobe ÷ this (wall) | ffprobe ÷ this (CPU) |\n|---|---:|---:|---:|---:|\n");
    for (label, m) in [
        ("ffprobe -show_streams -show_format, one process per file", ff),
        ("postato-probe, one process per file", each),
        ("postato-probe, one process for all files", once),
    ] {
        report.push_str(&format!(
            "| {label} | {:.0} ms | {:.0} ms | {:.1}× | {} |\n",
            ms(m.wall),
            ms(m.cpu),
            ff.wall / m.wall,
            if m.cpu > 0.0 {
                format!("{:.1}×", ff.cpu / m.cpu)
            } else {
                "(under the 10 ms tick)".into()
            }
        ));
    }
    report.push_str("\n| file | size | probe CPU per file | fastest run (wall) |\n|---|---:|---:|---:|\n");
    for (name, size, cpu, fastest) in &rows {
        report.push_str(&format!(
            "| {name} | {size} | {:.1} µs | {:.1} µs |\n",
            cpu * 1e6,
            fastest * 1e6
        ));
    }
    let total_cpu: f64 = rows.iter().map(|r| r.2).sum();
    report.push_str(&format!(
        "\nIn-process probe CPU over the whole corpus: {:.2} ms ({:.1} µs per file on average).\n",
        ms(total_cpu),
        total_cpu * 1e6 / rows.len().max(1) as f64
    ));
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/media-bench.md");
    let _ = std::fs::write(&out, &report);
    println!("(also written to {})", out.display());
}
