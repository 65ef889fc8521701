//! `postato-probe FILE...`: the validator's probe and verdict on local files, one JSON object per line.

use std::{io::Write, path::Path, process::ExitCode};

use media_validator::{
    probe::Budget,
    source::{run_probe, FileSource},
    verdict::judge,
};
use serde::Serialize;
use shared::domain::{Finding, MediaFacts};

const HELP: &str = "\
postato-probe: check video and image files against the Postato for TikTok media rules.

Usage: postato-probe [--] FILE...
       postato-probe --help

Each FILE is read the way the validator reads S3 objects: a head and a tail window, then only the ranges the
probe asks for. One JSON object per file is printed per line:

  {\"file\", \"verdict\": \"accepted\"|\"rejected\", \"kind\": \"video\"|\"image\"|\"unknown\",
   \"violations\": [{\"code\", \"message\"}], \"warnings\": [{\"code\", \"message\"}],
   \"facts\": {container, sizeBytes, durationMs, width, height, rotation, displayWidth, displayHeight,
             frameRate, videoCodec, videoProfile, videoLevel, audioCodec, audioSampleRate, audioChannels,
             format, orientation},
   \"reads\": {\"requests\", \"bytes\"}}

Exit status: 0 when every file is accepted, 1 when any file is rejected, 2 on usage errors (no files, an unknown
option, a file that cannot be opened; the other files are still checked).
";

enum Args {
    Help,
    Files(Vec<String>),
    Usage(String),
}

fn parse_args(args: impl Iterator<Item = String>) -> Args {
    let mut files = Vec::new();
    let mut options_done = false;
    for arg in args {
        match arg.as_str() {
            "--" if !options_done => options_done = true,
            "-h" | "--help" if !options_done => return Args::Help,
            option if option.starts_with('-') && option.len() > 1 && !options_done => {
                return Args::Usage(format!("unknown option {option}"));
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        return Args::Usage("no files given".into());
    }
    Args::Files(files)
}

fn main() -> ExitCode {
    let files = match parse_args(std::env::args().skip(1)) {
        Args::Help => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Args::Usage(problem) => {
            eprintln!("postato-probe: {problem}\n\n{HELP}");
            return ExitCode::from(2);
        }
        Args::Files(files) => files,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("postato-probe: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    let (mut any_rejected, mut usage_error) = (false, false);
    let stdout = std::io::stdout();
    for file in files {
        match runtime.block_on(check(&file)) {
            Ok((line, accepted)) => {
                any_rejected |= !accepted;
                let mut out = stdout.lock();
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(2);
                }
            }
            Err(problem) => {
                eprintln!("postato-probe: {file}: {problem}");
                usage_error = true;
            }
        }
    }
    if usage_error {
        ExitCode::from(2)
    } else if any_rejected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One output line; the fields serialise in this order.
#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    verdict: &'static str,
    kind: &'static str,
    violations: Vec<Finding>,
    warnings: Vec<Finding>,
    facts: MediaFacts,
    reads: Reads,
}

#[derive(Serialize)]
struct Reads {
    requests: u32,
    bytes: u64,
}

async fn check(file: &str) -> Result<(String, bool), String> {
    let source = FileSource::open(Path::new(file)).map_err(|e| e.to_string())?;
    let run = run_probe(&source, Budget::default(), None)
        .await
        .map_err(|e| e.to_string())?;
    let judgement = judge(&run.outcome, run.size, None);
    let accepted = judgement.accepted;
    let line = Line {
        file,
        verdict: if accepted { "accepted" } else { "rejected" },
        kind: judgement.kind.as_str(),
        violations: judgement.violations,
        warnings: judgement.warnings,
        facts: judgement.facts,
        reads: Reads {
            requests: run.reads.requests,
            bytes: run.reads.bytes,
        },
    };
    serde_json::to_string(&line)
        .map(|line| (line, accepted))
        .map_err(|e| e.to_string())
}
