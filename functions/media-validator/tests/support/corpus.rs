//! Finding (or making) the ffmpeg corpus, under the project's policy for tests that need external tools:
//! - `POSTATO_MEDIA_CORPUS=DIR`: the corpus is there (the script is run into it if it is incomplete);
//! - otherwise, with ffmpeg on PATH, the corpus is generated once into this crate's target temp dir;
//! - otherwise the test prints `skipped: ...` and passes, unless `POSTATO_FULL_TESTS=1`, when it fails.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/scripts/media-corpus.sh");

pub fn full_tests() -> bool {
    std::env::var("POSTATO_FULL_TESTS").is_ok_and(|v| v == "1")
}

pub fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `Ok(dir)` with a complete corpus, or `Err(reason)` to skip; panics when skipping is not allowed.
pub fn corpus_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = DIR.get_or_init(locate).clone();
    if let Err(reason) = &result {
        assert!(
            !full_tests(),
            "POSTATO_FULL_TESTS=1 but the media corpus is unavailable: {reason}"
        );
    }
    result
}

/// Requires ffprobe too (the facts are compared with it).
pub fn ffprobe_available() -> Result<(), String> {
    if on_path("ffprobe") {
        return Ok(());
    }
    let reason = "ffprobe not on PATH (apt-get install -y ffmpeg)".to_owned();
    assert!(!full_tests(), "POSTATO_FULL_TESTS=1 but {reason}");
    Err(reason)
}

fn locate() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("POSTATO_MEDIA_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("media-corpus"),
    };
    if is_complete(&dir) {
        return Ok(dir);
    }
    if !on_path("ffmpeg") {
        return Err(format!(
            "the corpus in {} is incomplete and ffmpeg is not on PATH",
            dir.display()
        ));
    }
    eprintln!("generating the media corpus into {} (about a minute)", dir.display());
    let status = Command::new("bash")
        .arg(SCRIPT)
        .arg(&dir)
        .status()
        .map_err(|e| format!("running {SCRIPT}: {e}"))?;
    if !status.success() || !is_complete(&dir) {
        return Err(format!("{SCRIPT} {} failed ({status})", dir.display()));
    }
    Ok(dir)
}

/// The script writes its version stamp last, after every file.
fn is_complete(dir: &Path) -> bool {
    let stamp = std::fs::read_to_string(dir.join(".corpus-version")).unwrap_or_default();
    let script = std::fs::read_to_string(SCRIPT).unwrap_or_default();
    !stamp.trim().is_empty() && script.contains(&format!("CORPUS_VERSION={}", stamp.trim()))
}

/// Every corpus file, sorted by name.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')));
    files.sort();
    files
}
