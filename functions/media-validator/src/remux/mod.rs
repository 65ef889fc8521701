//! MPEG-TS (and M2TS) and MPEG-PS with H.264 video and AAC audio → MP4, without re-encoding, sans-IO like the
//! probe.
//!
//! ```text
//! let mut remux = Remuxer::new();
//! out.extend(remux.header());                    // ftyp + mdat header
//! for each chunk of the source, in order: remux.push(chunk, &mut out)?   (flush `out` to the sink as it grows)
//! let end = remux.finish(&mut out)?;             // appends the moov
//! write end.mdat_size.bytes at end.mdat_size.offset of the output (the one patch)
//! ```
//!
//! The source is read once, front to back; the output is written once, front to back, except for the 8-byte
//! `mdat` size: a multipart upload keeps its first part until the end for that. Memory is the sample tables
//! (≈ 12 bytes per sample) plus one PES (or access unit) per stream, whatever the file size.
//!
//! `ts` and `ps` take the containers apart into PES packets; `tracks` turns their payloads into samples, so the
//! timestamp, B-frame, edit-list and discontinuity rules are the same for both. What the remuxer will not guess
//! over: a continuity-counter gap, a discontinuity flag, timestamps that jump or run backwards, a codec other than
//! H.264/AAC, a change of audio configuration, a picture left undated that its picture order cannot place. Each is
//! an error naming the source offset; the caller keeps the upload and reports it.

mod mp4;
mod order;
mod ps;
#[cfg(feature = "service")]
pub mod store;
mod tracks;
mod ts;

use std::fmt;

use crate::probe::mpeg::PTS_WRAP;
use ps::ProgramDemux;
use tracks::Tracks;
use ts::TransportDemux;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemuxError {
    /// The input is neither an MPEG transport stream nor a program stream (or lost its packet or pack structure
    /// at `offset`).
    NotTransportStream {
        offset: u64,
    },
    /// A codec the remuxer does not copy (only H.264 video and AAC audio are).
    UnsupportedCodec(String),
    NoVideo,
    /// Packets of a stream are missing or repeated out of order.
    ContinuityError {
        pid: u16,
        offset: u64,
    },
    /// The stream says (or its timestamps show) that it was spliced.
    Discontinuity {
        offset: u64,
        detail: String,
    },
    /// A damaged PES, NAL or ADTS header.
    Malformed {
        offset: u64,
        detail: String,
    },
}

impl fmt::Display for RemuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTransportStream { offset } => {
                write!(
                    f,
                    "not an MPEG transport or program stream (no packet or pack at byte {offset})"
                )
            }
            Self::UnsupportedCodec(what) => write!(f, "{what}: only H.264 video and AAC audio are remuxed"),
            Self::NoVideo => write!(f, "no H.264 video stream"),
            Self::ContinuityError { pid, offset } => {
                write!(
                    f,
                    "packets of stream {pid:#x} are missing (continuity counter) at byte {offset}"
                )
            }
            Self::Discontinuity { offset, detail } => write!(f, "discontinuity at byte {offset}: {detail}"),
            Self::Malformed { offset, detail } => write!(f, "damaged stream at byte {offset}: {detail}"),
        }
    }
}

impl std::error::Error for RemuxError {}

/// The one write that is not an append: the `mdat` size, known only at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: [u8; 8],
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct RemuxSummary {
    pub mdat_size: Patch,
    pub output_size: u64,
    pub video_frames: u32,
    pub audio_frames: u32,
    pub width: u32,
    pub height: u32,
    pub video_duration_ms: u64,
    pub audio_duration_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
}

/// Extends 33-bit timestamps onto one signed timeline, the first timestamp seen (of any stream) at its raw value.
fn unwrap_near(raw: u64, near: i64) -> i64 {
    let wrap = PTS_WRAP as i64;
    let delta = (raw as i64 - near).rem_euclid(wrap);
    near + if delta >= wrap / 2 { delta - wrap } else { delta }
}

/// The container, told from the first bytes: a pack start code, else transport stream packets.
#[derive(Debug)]
enum Demux {
    Undecided(Vec<u8>),
    Transport(TransportDemux),
    Program(ProgramDemux),
}

/// Bytes that tell a program stream (`00 00 01 BA`) from a transport stream.
const SNIFF_BYTES: usize = 4;

pub struct Remuxer {
    demux: Demux,
    tracks: Tracks,
}

impl Default for Remuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl Remuxer {
    pub fn new() -> Self {
        Self {
            demux: Demux::Undecided(Vec::new()),
            tracks: Tracks::default(),
        }
    }

    /// The output's first bytes: `ftyp` and the `mdat` header. Call once, before `push`.
    pub fn header(&mut self) -> Vec<u8> {
        self.tracks.header()
    }

    /// Feeds the next bytes of the source; appends to `out` the output they complete.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if let Demux::Undecided(head) = &mut self.demux {
            let take = SNIFF_BYTES.saturating_sub(head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
            data = &data[take..];
            if head.len() < SNIFF_BYTES {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.decide(&head, out)?;
        }
        self.feed(data, out)
    }

    fn decide(&mut self, head: &[u8], out: &mut Vec<u8>) -> Result<(), RemuxError> {
        self.demux = if head.starts_with(&[0, 0, 1, 0xBA]) {
            Demux::Program(ProgramDemux::default())
        } else {
            Demux::Transport(TransportDemux::default())
        };
        self.feed(head, out)
    }

    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RemuxError> {
        match &mut self.demux {
            Demux::Undecided(_) => Ok(()),
            Demux::Transport(ts) => ts.push(data, &mut self.tracks, out),
            Demux::Program(ps) => ps.push(data, &mut self.tracks, out),
        }
    }

    /// Completes the last PES of each stream and appends the `moov`. The caller then writes `mdat_size`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<RemuxSummary, RemuxError> {
        if let Demux::Undecided(head) = &mut self.demux {
            let head = std::mem::take(head);
            self.decide(&head, out)?;
        }
        match &mut self.demux {
            Demux::Undecided(_) => {}
            Demux::Transport(ts) => ts.finish(&mut self.tracks, out)?,
            Demux::Program(ps) => ps.finish(&mut self.tracks, out)?,
        }
        self.tracks.finish(out)
    }
}

/// Remuxes `input` into `output` in 8 MiB reads (the CLI, tests and benchmark; the Lambda drives the same state
/// machine over ranged reads and a multipart upload). Memory: one read, the output it completes, the tables.
pub fn remux_stream(
    mut input: impl std::io::Read,
    mut output: impl std::io::Write + std::io::Seek,
) -> Result<RemuxSummary, RemuxStreamError> {
    use std::io::SeekFrom;
    let mut remuxer = Remuxer::new();
    let mut out = remuxer.header();
    let mut buffer = vec![0u8; 8 * 1024 * 1024];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RemuxStreamError::Io(e)),
        };
        remuxer.push(&buffer[..n], &mut out)?;
        output.write_all(&out)?;
        out.clear();
    }
    let summary = remuxer.finish(&mut out)?;
    output.write_all(&out)?;
    output.seek(SeekFrom::Start(summary.mdat_size.offset))?;
    output.write_all(&summary.mdat_size.bytes)?;
    output.flush()?;
    Ok(summary)
}

#[derive(Debug, thiserror::Error)]
pub enum RemuxStreamError {
    #[error(transparent)]
    Remux(#[from] RemuxError),
    #[error("reading or writing failed: {0}")]
    Io(#[from] std::io::Error),
}

fn malformed(offset: u64, detail: &str) -> RemuxError {
    RemuxError::Malformed {
        offset,
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_unwrap_across_the_33_bit_wrap_both_ways() {
        let near_end = PTS_WRAP - 3000;
        assert_eq!(unwrap_near(1000, near_end as i64), PTS_WRAP as i64 + 1000);
        assert_eq!(unwrap_near(near_end, 1000), near_end as i64 - PTS_WRAP as i64);
        assert_eq!(unwrap_near(4000, 1000), 4000);
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mut r = Remuxer::new();
        let mut out = r.header();
        assert!(matches!(
            r.push(&[0xAB; 4096], &mut out),
            Err(RemuxError::NotTransportStream { .. })
        ));
        let r = Remuxer::new();
        assert!(r.finish(&mut Vec::new()).is_err());
    }
}
