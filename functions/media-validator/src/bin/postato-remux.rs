//! `postato-remux IN OUT`: MPEG-TS or MPEG-PS (H.264 + AAC) to MP4 without re-encoding, the validator's remuxer
//! on local files, for operators and tests.

use std::{fs::File, io::BufReader, process::ExitCode};

use media_validator::remux::remux_stream;

const HELP: &str = "\
postato-remux: copy the H.264 video and AAC audio of an MPEG transport or program stream into an MP4, without
re-encoding.

Usage: postato-remux IN OUT
       postato-remux --help

Reads IN once, front to back, and writes OUT (moov at the end). Prints one JSON line:
  {\"videoFrames\", \"audioFrames\", \"width\", \"height\", \"videoDurationMs\", \"audioDurationMs\",
   \"sampleRate\", \"channels\", \"outputBytes\"}

Refuses, without guessing, streams with other codecs, missing packets (continuity counter), discontinuities,
damaged headers or pack structure, or pictures left undated that their picture order cannot place: the message
names the byte offset. Exit status: 0 done, 1 refused or failed, 2 usage.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let [input, output] = args.as_slice() else {
        eprintln!("postato-remux: expected IN and OUT\n\n{HELP}");
        return ExitCode::from(2);
    };
    let source = match File::open(input) {
        Ok(file) => BufReader::with_capacity(1 << 20, file),
        Err(e) => {
            eprintln!("postato-remux: {input}: {e}");
            return ExitCode::from(2);
        }
    };
    let sink = match File::create(output) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("postato-remux: {output}: {e}");
            return ExitCode::from(2);
        }
    };
    match remux_stream(source, sink) {
        Ok(s) => {
            println!(
                "{{\"videoFrames\":{},\"audioFrames\":{},\"width\":{},\"height\":{},\"videoDurationMs\":{},\
                 \"audioDurationMs\":{},\"sampleRate\":{},\"channels\":{},\"outputBytes\":{}}}",
                s.video_frames,
                s.audio_frames,
                s.width,
                s.height,
                s.video_duration_ms,
                s.audio_duration_ms,
                s.sample_rate,
                s.channels,
                s.output_size
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(output);
            eprintln!("postato-remux: {input}: {e}");
            ExitCode::FAILURE
        }
    }
}
