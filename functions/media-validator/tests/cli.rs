//! `postato-probe`: one JSON line per file, exit 0 / 1 / 2, `--help`.

mod support;

use std::{path::Path, process::Command};

use serde_json::Value;
use support::media::{jpeg, mp4, SyntheticMovie};

fn probe(args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_postato-probe"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running postato-probe: {e}"));
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    (
        output.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {name}: {e}"));
    path.to_string_lossy().into_owned()
}

#[test]
fn accepted_files_exit_zero_with_one_json_object_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let video = write(
        dir.path(),
        "clip.mov.txt",
        &mp4(&SyntheticMovie {
            mdat_bytes: 4096,
            ..Default::default()
        }),
    );
    let photo = write(dir.path(), "photo.bin", &jpeg(108, 192));

    let (code, lines, _) = probe(&[&video, &photo]);

    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!(first["file"], video.as_str());
    assert_eq!(first["verdict"], "accepted");
    assert_eq!(first["kind"], "video", "recognised by content, not by name");
    assert_eq!(first["facts"]["container"], "mp4");
    assert_eq!(first["facts"]["videoCodec"], "h264");
    assert_eq!(first["facts"]["frameRate"], 30.0);
    assert_eq!(first["facts"]["durationMs"], 2000);
    assert_eq!(first["violations"], Value::Array(Vec::new()));
    assert!(first["warnings"].is_array());
    assert_eq!(
        first["reads"]["requests"], 1,
        "a file smaller than the two windows is read once"
    );
    assert_eq!(lines[1]["kind"], "image");
    assert_eq!(lines[1]["facts"]["format"], "jpeg");
}

#[test]
fn any_rejected_file_makes_the_exit_status_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = write(dir.path(), "photo.jpg", &jpeg(108, 192));
    let junk = write(dir.path(), "junk.mp4", b"definitely not a movie");

    let (code, lines, _) = probe(&[&photo, &junk]);

    assert_eq!(code, 1);
    assert_eq!(lines[1]["verdict"], "rejected");
    assert_eq!(lines[1]["kind"], "unknown");
    assert_eq!(lines[1]["violations"][0]["code"], "file_format_check_failed");
    assert!(lines[1]["violations"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("Upload an MP4")));
}

#[test]
fn usage_errors_exit_two_and_help_says_so() {
    let (code, lines, stderr) = probe(&[]);
    assert_eq!((code, lines.len()), (2, 0));
    assert!(stderr.contains("no files given"), "{stderr}");

    let (code, _, stderr) = probe(&["--frobnicate", "x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown option --frobnicate"), "{stderr}");

    let dir = tempfile::tempdir().expect("temp dir");
    let photo = write(dir.path(), "photo.jpg", &jpeg(108, 192));
    let (code, lines, stderr) = probe(&["/no/such/file.mp4", &photo]);
    assert_eq!(code, 2, "a file that cannot be opened is a usage error");
    assert_eq!(lines.len(), 1, "the other files are still checked");
    assert!(stderr.contains("/no/such/file.mp4"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_postato-probe"))
        .arg("--help")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        help.contains("Usage: postato-probe") && help.contains("Exit status: 0"),
        "{help}"
    );

    // After `--`, a name starting with a dash is a file.
    write(dir.path(), "-dash.jpg", &jpeg(108, 192));
    let output = Command::new(env!("CARGO_BIN_EXE_postato-probe"))
        .current_dir(dir.path())
        .args(["--", "-dash.jpg"])
        .output()
        .expect("a dashed file name");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
