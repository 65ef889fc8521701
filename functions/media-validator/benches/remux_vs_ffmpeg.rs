//! `postato-remux` against `ffmpeg -c copy` on the same transport streams, in one run (issue 13 §1).
//!
//!   cargo bench -p media-validator --no-default-features --bench remux_vs_ffmpeg
//!   POSTATO_REMUX_BENCH_BIG=1 cargo bench -p media-validator --no-default-features --bench remux_vs_ffmpeg
//!
//! (`--no-default-features`: only the remuxer, no AWS SDK to build in release mode.) Inputs are made with ffmpeg
//! into `target/remux-bench` once: 720p30 at 8 Mb/s for 10 s, 60 s and 5 min (x264 veryfast, B-frames, AAC), and
//! with POSTATO_REMUX_BENCH_BIG=1 a 9.5-minute 320x180 stream padded to 3.9 GB with null packets by the TS
//! muxer's `-muxrate` (what matters for memory is the file size and the sample count, not the picture). Each
//! tool runs as its own process under `/usr/bin/time` (wall time, peak RSS); best of three rounds (one for the big
//! file). Throughput is source MB (10^6 bytes) per second of wall time, from the page cache for both tools.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

struct Input {
    name: &'static str,
    args: &'static [&'static str],
    big: bool,
}

const INPUTS: &[Input] = &[
    Input {
        name: "720p30-10s.ts",
        args: &[
            "-t", "10", "-s", "1280x720", "-r", "30", "-preset", "veryfast", "-b:v", "8M",
        ],
        big: false,
    },
    Input {
        name: "720p30-60s.ts",
        args: &[
            "-t", "60", "-s", "1280x720", "-r", "30", "-preset", "veryfast", "-b:v", "8M",
        ],
        big: false,
    },
    Input {
        name: "720p30-300s.ts",
        args: &[
            "-t", "300", "-s", "1280x720", "-r", "30", "-preset", "veryfast", "-b:v", "8M",
        ],
        big: false,
    },
    Input {
        name: "big-3.9GB.ts",
        args: &[
            "-t",
            "570",
            "-s",
            "320x180",
            "-r",
            "30",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-muxrate",
            "54M",
        ],
        big: true,
    },
];

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/remux-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn generate(dir: &Path, input: &Input) -> PathBuf {
    let path = dir.join(input.name);
    if path.exists() {
        return path;
    }
    eprintln!("making {} with ffmpeg", path.display());
    let partial = dir.join(format!("{}.partial", input.name));
    let status = Command::new("ffmpeg")
        .args([
            "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2", "-f", "lavfi", "-i",
        ])
        .arg("sine=frequency=440:sample_rate=48000")
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .args(input.args)
        .args(["-f", "mpegts"])
        .arg(&partial)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg failed for {}", input.name);
    std::fs::rename(&partial, &path).expect("rename");
    path
}

#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    rss_kb: u64,
}

/// Runs `program args` under `/usr/bin/time -f "%e %M"`: wall seconds and peak RSS in KB.
fn timed(program: &str, args: &[&std::ffi::OsStr]) -> Run {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "TIMED %e %M", program])
        .args(args)
        .output()
        .expect("/usr/bin/time runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} failed: {stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("TIMED "))
        .expect("time's line");
    let mut fields = line.split_whitespace().skip(1);
    Run {
        wall: fields.next().and_then(|f| f.parse().ok()).unwrap_or(f64::NAN),
        rss_kb: fields.next().and_then(|f| f.parse().ok()).unwrap_or(0),
    }
}

fn best(runs: &[Run]) -> Run {
    Run {
        wall: runs.iter().map(|r| r.wall).fold(f64::INFINITY, f64::min),
        rss_kb: runs.iter().map(|r| r.rss_kb).max().unwrap_or(0),
    }
}

fn main() {
    let big = std::env::var("POSTATO_REMUX_BENCH_BIG").is_ok_and(|v| v == "1");
    let dir = bench_dir();
    let ours = env!("CARGO_BIN_EXE_postato-remux");
    let mut table = vec![
        "| file | size (MB) | postato-remux | MB/s | peak RSS | ffmpeg -c copy | MB/s | peak RSS | ffmpeg ÷ ours (time) |"
            .to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    for input in INPUTS.iter().filter(|i| big || !i.big) {
        let source = generate(&dir, input);
        let size_mb = std::fs::metadata(&source).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let out_ours = dir.join(format!("{}.ours.mp4", input.name));
        let out_ffmpeg = dir.join(format!("{}.ffmpeg.mp4", input.name));
        let rounds = if input.big { 1 } else { 3 };
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            mine.push(timed(ours, &[source.as_os_str(), out_ours.as_os_str()]));
            theirs.push(timed(
                "ffmpeg",
                &[
                    "-v".as_ref(),
                    "error".as_ref(),
                    "-y".as_ref(),
                    "-i".as_ref(),
                    source.as_os_str(),
                    "-c".as_ref(),
                    "copy".as_ref(),
                    out_ffmpeg.as_os_str(),
                ],
            ));
        }
        let (m, t) = (best(&mine), best(&theirs));
        table.push(format!(
            "| {} | {:.0} | {:.2} s | {:.0} | {:.1} MB | {:.2} s | {:.0} | {:.1} MB | {:.1}× |",
            input.name,
            size_mb,
            m.wall,
            size_mb / m.wall,
            m.rss_kb as f64 / 1024.0,
            t.wall,
            size_mb / t.wall,
            t.rss_kb as f64 / 1024.0,
            t.wall / m.wall
        ));
        let _ = std::fs::remove_file(&out_ours);
        let _ = std::fs::remove_file(&out_ffmpeg);
    }
    let table = table.join("\n");
    println!("{table}");
    let _ = std::fs::write(dir.join("remux-bench.md"), &table);
}
