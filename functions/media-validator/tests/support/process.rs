//! Peak memory and CPU of work done in a child process (this executable run again), read from /proc: each case's
//! resident set is its own, not the test's or an earlier case's. Shared by the tests and the benchmarks.

use std::process::Command;

/// The marker of the line a child prints last: `<marker> peak_rss_kib=N cpu_ms=N <report>`.
const MARKER: &str = "child-measure:";

/// What a child reported about itself.
#[derive(Debug, Clone)]
pub struct ChildMeasure {
    /// Peak resident set (VmHWM) of the whole child process, in KiB.
    pub peak_rss_kib: u64,
    /// User + system CPU time of all its threads, in seconds (10 ms ticks).
    pub cpu_seconds: f64,
    /// The rest of its line: what the work produced, for the parent to check.
    pub report: String,
}

/// (own CPU, children's CPU) in seconds, from /proc/self/stat (fields 14–17, in clock ticks of 10 ms).
pub fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    // Every field keeps its position: the state (a letter) counts as 0 instead of shifting the times by one.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let tick = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    // After ")": state is field 3, so utime (14) is index 11, stime 12, cutime 13, cstime 14.
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// This process's peak resident set so far (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/self/status (Linux only)"))
}

/// In the child, once the work is done: prints the marked line the parent reads.
pub fn report_to_parent(report: &str) {
    // On a line of its own: the test harness may have printed the test's name without a newline.
    println!(
        "\n{MARKER} peak_rss_kib={} cpu_ms={:.0} {report}",
        peak_rss_kib(),
        cpu_seconds().0 * 1000.0
    );
}

/// Runs `child` (this executable again, told what to do) to the end and reads its marked line.
pub fn measure(child: &mut Command) -> ChildMeasure {
    let output = child.output().unwrap_or_else(|e| panic!("running {child:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{child:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|line| line.split_once(MARKER).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("{child:?} reported nothing:\n{stdout}"));
    let mut words = line.split_whitespace();
    let mut number = |key: &str| -> f64 {
        words
            .next()
            .and_then(|word| word.strip_prefix(key))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in {line:?}"))
    };
    let peak_rss_kib = number("peak_rss_kib=") as u64;
    let cpu_seconds = number("cpu_ms=") / 1000.0;
    ChildMeasure {
        peak_rss_kib,
        cpu_seconds,
        report: words.collect::<Vec<_>>().join(" "),
    }
}
