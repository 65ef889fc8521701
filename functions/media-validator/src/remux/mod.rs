//! MPEG-TS (and M2TS) with H.264 video and AAC audio → MP4, without re-encoding, sans-IO like the probe.
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
//! (≈ 12 bytes per sample) plus one PES per stream, whatever the file size.
//!
//! What the remuxer will not guess over: a continuity-counter gap, a discontinuity flag, timestamps that jump or
//! run backwards, a codec other than H.264/AAC, a change of audio configuration. Each is an error naming the
//! source offset; the caller keeps the upload and reports it.

mod mp4;
#[cfg(feature = "service")]
pub mod store;

use std::fmt;

use crate::probe::{
    audio::parse_adts,
    h264::{parse_sps, AnnexBNals},
    mpeg::{parse_pat, parse_pes, pmt_entries, ts_packet_layout, ts_stream_type, Kind, PTS_WRAP},
};
use mp4::{SampleTable, VIDEO_TIMESCALE};

/// A video access unit or an audio PES larger than this is not a real stream.
const MAX_PES_BYTES: usize = 32 * 1024 * 1024;
/// Bytes needed before the packet size (188 or 192) can be told.
const LAYOUT_BYTES: usize = 3 * 192 + 4;
/// A decode-time step larger than this is a discontinuity (a splice, a looped recording), not a frame.
const MAX_STEP: i64 = 10 * 90_000;
/// Samples per track: 10 minutes (the guide's limit) at 60 fps is 36,000 pictures and at 96 kHz 56,250 AAC frames,
/// so this leaves room for slack while bounding the tables a hostile stream of tiny packets could grow (≈ 2 MB).
const MAX_SAMPLES: u32 = 200_000;
/// Parameter sets larger than this are not real.
const MAX_PARAMETER_SET: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemuxError {
    /// The input is not an MPEG transport stream (or lost its packet sync at `offset`).
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
                write!(f, "not an MPEG transport stream (no packet sync at byte {offset})")
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

#[derive(Debug, Default)]
struct Pending {
    data: Vec<u8>,
    /// Source offset of the packet that started it.
    offset: u64,
    started: bool,
}

#[derive(Debug, Default)]
struct Video {
    pid: u16,
    pes: Pending,
    table: SampleTable,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    width: u32,
    height: u32,
    first_dts: Option<i64>,
    last_dts: Option<i64>,
    min_pts: Option<i64>,
}

#[derive(Debug, Default)]
struct Audio {
    pid: u16,
    pes: Pending,
    table: SampleTable,
    /// Profile, rate index and channel configuration of the first ADTS header: every frame must match.
    config: Option<(u8, u8, u8)>,
    sample_rate: u32,
    first_pts: Option<i64>,
    frames: u64,
}

pub struct Remuxer {
    /// Packet stride and the offset of the TS packet within it (4 for M2TS).
    layout: Option<(usize, usize)>,
    carry: Vec<u8>,
    /// Source bytes consumed.
    offset: u64,
    pmt_pid: Option<u16>,
    video: Option<Video>,
    audio: Option<Audio>,
    /// Continuity counters of the two elementary streams (16 = none yet).
    counters: [u8; 2],
    /// Output bytes emitted so far, header included.
    written: u64,
    /// Which track the last sample written belongs to (chunks are runs of one track).
    last_track: Option<Kind>,
    /// The first timestamp seen: every stream is unwrapped near it.
    anchor: Option<i64>,
    header_len: u64,
}

impl Default for Remuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl Remuxer {
    pub fn new() -> Self {
        Self {
            layout: None,
            carry: Vec::new(),
            offset: 0,
            pmt_pid: None,
            video: None,
            audio: None,
            counters: [16; 2],
            written: 0,
            last_track: None,
            anchor: None,
            header_len: 0,
        }
    }

    /// The output's first bytes: `ftyp` and the `mdat` header. Call once, before `push`.
    pub fn header(&mut self) -> Vec<u8> {
        let mut out = mp4::ftyp();
        self.header_len = out.len() as u64;
        out.extend_from_slice(&mp4::mdat_header());
        self.written = out.len() as u64;
        out
    }

    /// Feeds the next bytes of the source; appends to `out` the output they complete.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if self.layout.is_none() {
            let need = LAYOUT_BYTES.saturating_sub(self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..need]);
            data = &data[need..];
            if self.carry.len() < LAYOUT_BYTES {
                return Ok(());
            }
            self.decide_layout()?;
        }
        let (stride, _) = self.layout.unwrap_or((188, 0));
        if !self.carry.is_empty() {
            let need = (stride - self.carry.len() % stride) % stride;
            let take = need.min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if !self.carry.len().is_multiple_of(stride) {
                return Ok(());
            }
            let carried = std::mem::take(&mut self.carry);
            for packet in carried.chunks_exact(stride) {
                self.packet(packet, out)?;
            }
        }
        let mut packets = data.chunks_exact(stride);
        for packet in &mut packets {
            self.packet(packet, out)?;
        }
        self.carry.extend_from_slice(packets.remainder());
        Ok(())
    }

    fn decide_layout(&mut self) -> Result<(), RemuxError> {
        let (stride, first) = ts_packet_layout(&self.carry);
        let synced = (0..3).all(|k| self.carry.get(first + k * stride) == Some(&0x47));
        if !synced {
            return Err(RemuxError::NotTransportStream { offset: 0 });
        }
        self.layout = Some((stride, first));
        Ok(())
    }

    fn packet(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let at = self.offset;
        self.offset += packet.len() as u64;
        let (_, first) = self.layout.unwrap_or((188, 0));
        let p = packet.get(first..first + 188).unwrap_or_default();
        if p.first() != Some(&0x47) {
            return Err(RemuxError::NotTransportStream { offset: at });
        }
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let unit_start = p[1] & 0x40 != 0;
        let control = (p[3] >> 4) & 0x3;
        let counter = p[3] & 0x0F;
        let has_payload = control & 0x1 != 0;
        let mut payload_at = 4;
        if control & 0x2 != 0 {
            let len = usize::from(p[4]);
            if len > 183 {
                return Err(malformed(at, "adaptation field longer than the packet"));
            }
            let discontinuity = len > 0 && p[5] & 0x80 != 0;
            if discontinuity && self.is_elementary(pid) {
                return Err(RemuxError::Discontinuity {
                    offset: at,
                    detail: "the stream sets its discontinuity indicator".into(),
                });
            }
            payload_at = 5 + len;
        }
        if !has_payload {
            return Ok(());
        }
        let payload = p.get(payload_at..).unwrap_or_default();
        if pid == 0 {
            if unit_start {
                self.pmt_pid = parse_pat(payload).or(self.pmt_pid);
            }
            return Ok(());
        }
        if Some(pid) == self.pmt_pid && unit_start && self.video.is_none() {
            return self.program_map(payload);
        }
        let slot = match (&self.video, &self.audio) {
            (Some(v), _) if v.pid == pid => 0,
            (_, Some(a)) if a.pid == pid => 1,
            _ => return Ok(()),
        };
        let previous = self.counters[slot];
        if previous != 16 {
            if counter == previous {
                // A duplicate packet (allowed once by the standard): its payload was already taken.
                return Ok(());
            }
            if counter != (previous + 1) & 0x0F {
                return Err(RemuxError::ContinuityError { pid, offset: at });
            }
        }
        self.counters[slot] = counter;
        if slot == 0 {
            if unit_start {
                self.flush_video(out)?;
            }
            let video = self.video.as_mut().ok_or(RemuxError::NoVideo)?;
            append(&mut video.pes, unit_start, payload, at)
        } else {
            if unit_start {
                self.flush_audio(out)?;
            }
            let Some(audio) = self.audio.as_mut() else {
                return Ok(());
            };
            append(&mut audio.pes, unit_start, payload, at)
        }
    }

    fn is_elementary(&self, pid: u16) -> bool {
        self.video.as_ref().is_some_and(|v| v.pid == pid) || self.audio.as_ref().is_some_and(|a| a.pid == pid)
    }

    fn program_map(&mut self, payload: &[u8]) -> Result<(), RemuxError> {
        let mut video = None;
        let mut audio = None;
        let mut refused = None;
        let complete = pmt_entries(payload, |stream_type, pid, descriptors| {
            match ts_stream_type(stream_type, descriptors) {
                Some((Kind::Video, codec)) if video.is_none() => match codec {
                    Some("h264") if stream_type == 0x1B => video = Some(pid),
                    other => refused = Some(format!("video codec {}", other.unwrap_or("unknown"))),
                },
                Some((Kind::Audio, codec)) if audio.is_none() => match codec {
                    Some("aac") if stream_type == 0x0F => audio = Some(pid),
                    // Private data with no descriptor (AAC in ffmpeg's M2TS mode): the ADTS headers decide.
                    None if stream_type == 0x06 => audio = Some(pid),
                    other => refused = Some(format!("audio codec {}", other.unwrap_or("unknown"))),
                },
                _ => {}
            }
        });
        if !complete {
            return Ok(());
        }
        if let Some(refused) = refused {
            return Err(RemuxError::UnsupportedCodec(refused));
        }
        let pid = video.ok_or(RemuxError::NoVideo)?;
        self.video = Some(Video {
            pid,
            ..Video::default()
        });
        self.audio = audio.map(|pid| Audio {
            pid,
            ..Audio::default()
        });
        Ok(())
    }

    fn anchor(&mut self, raw: u64) -> i64 {
        *self.anchor.get_or_insert(raw as i64)
    }

    fn flush_video(&mut self, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let Some(mut video) = self.video.take() else {
            return Ok(());
        };
        let result = self.video_access_unit(&mut video, out);
        video.pes.data.clear();
        video.pes.started = false;
        self.video = Some(video);
        result
    }

    fn video_access_unit(&mut self, video: &mut Video, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if !video.pes.started {
            return Ok(());
        }
        let at = video.pes.offset;
        let pes = parse_pes(&video.pes.data).ok_or_else(|| malformed(at, "video PES header"))?;
        let pts_raw = pes.pts.ok_or_else(|| malformed(at, "video PES without a timestamp"))?;
        let dts_raw = pes.dts.unwrap_or(pts_raw);
        let anchor = self.anchor(dts_raw);
        let dts = unwrap_near(dts_raw, video.last_dts.unwrap_or(anchor));
        let pts = unwrap_near(pts_raw, dts);
        if pts < dts {
            return Err(malformed(at, "a picture presented before it is decoded"));
        }
        if let Some(last) = video.last_dts {
            let step = dts - last;
            if step <= 0 || step > MAX_STEP {
                return Err(RemuxError::Discontinuity {
                    offset: at,
                    detail: format!("video decode time steps by {step} ticks of 90 kHz"),
                });
            }
            video.table.durations.push(step as u32);
        }

        if video.table.sample_count() >= MAX_SAMPLES {
            return Err(malformed(at, "more pictures than a 10-minute video can have"));
        }
        let sample_start = out.len();
        let mut idr = false;
        for nal in AnnexBNals::new(pes.payload) {
            // A four-byte start code leaves a zero on the NAL before it; trailing zeros are never NAL data.
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let nal = &nal[..end];
            let Some(&header) = nal.first() else { continue };
            match header & 0x1F {
                // Access unit delimiters mean nothing in MP4, where samples are delimited by the tables.
                9 => continue,
                5 => idr = true,
                7 if video.sps.is_none() => {
                    let info = parse_sps(nal).ok_or_else(|| malformed(at, "H.264 sequence parameter set"))?;
                    if nal.len() > MAX_PARAMETER_SET {
                        return Err(malformed(at, "H.264 sequence parameter set too large"));
                    }
                    video.width = info.width;
                    video.height = info.height;
                    video.sps = Some(nal.to_vec());
                }
                8 if video.pps.is_none() && nal.len() <= MAX_PARAMETER_SET => video.pps = Some(nal.to_vec()),
                _ => {}
            }
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        let size = out.len() - sample_start;
        if size == 0 {
            return Err(malformed(at, "a video PES without NAL units"));
        }
        // `written` counts every byte emitted, including those still in `out`: it is this sample's position.
        let offset = self.written;
        self.written += size as u64;
        let continues = self.last_track == Some(Kind::Video);
        self.last_track = Some(Kind::Video);
        video.table.add(size as u32, offset, continues);
        video
            .table
            .composition
            .push(u32::try_from(pts - dts).map_err(|_| malformed(at, "composition offset out of range"))?);
        if idr {
            let n = video.table.sample_count();
            video.table.sync.push(n);
        }
        video.first_dts.get_or_insert(dts);
        video.min_pts = Some(video.min_pts.map_or(pts, |m| m.min(pts)));
        video.last_dts = Some(dts);
        Ok(())
    }

    fn flush_audio(&mut self, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let Some(mut audio) = self.audio.take() else {
            return Ok(());
        };
        let result = self.audio_pes(&mut audio, out);
        audio.pes.data.clear();
        audio.pes.started = false;
        self.audio = Some(audio);
        result
    }

    fn audio_pes(&mut self, audio: &mut Audio, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if !audio.pes.started {
            return Ok(());
        }
        let at = audio.pes.offset;
        let pes = parse_pes(&audio.pes.data).ok_or_else(|| malformed(at, "audio PES header"))?;
        let mut frames = pes.payload;
        if let Some(raw) = pes.pts {
            let anchor = self.anchor(raw);
            match audio.first_pts {
                None => audio.first_pts = Some(unwrap_near(raw, anchor)),
                Some(first) => {
                    // Where this PES should start after the frames so far; more than one frame off is a gap.
                    let expected = first + (audio.frames * 1024 * 90_000 / u64::from(audio.sample_rate.max(1))) as i64;
                    let pts = unwrap_near(raw, expected);
                    let frame = (1024 * 90_000 / u64::from(audio.sample_rate.max(1))) as i64;
                    if (pts - expected).abs() > frame {
                        return Err(RemuxError::Discontinuity {
                            offset: at,
                            detail: format!("audio jumps by {} ticks of 90 kHz", pts - expected),
                        });
                    }
                }
            }
        } else if audio.first_pts.is_none() {
            return Err(malformed(at, "the first audio PES has no timestamp"));
        }
        while !frames.is_empty() {
            if audio.table.sample_count() >= MAX_SAMPLES {
                return Err(malformed(at, "more audio frames than 10 minutes can have"));
            }
            let header = parse_adts(frames).ok_or_else(|| malformed(at, "ADTS header"))?;
            let h = &frames[..7];
            let config = (h[2] >> 6, (h[2] >> 2) & 0x0F, ((h[2] & 0x01) << 2) | (h[3] >> 6));
            if header.samples != 1024 {
                return Err(RemuxError::UnsupportedCodec(
                    "ADTS frames with several raw blocks".into(),
                ));
            }
            if config.2 == 0 {
                return Err(RemuxError::UnsupportedCodec(
                    "AAC with an in-band channel layout".into(),
                ));
            }
            match audio.config {
                None => {
                    audio.config = Some(config);
                    audio.sample_rate = header.sample_rate;
                }
                Some(first) if first != config => {
                    return Err(RemuxError::Discontinuity {
                        offset: at,
                        detail: "the AAC configuration changes".into(),
                    })
                }
                Some(_) => {}
            }
            let header_len = if h[1] & 0x01 == 0 { 9 } else { 7 };
            let frame = frames
                .get(..header.frame_len)
                .ok_or_else(|| malformed(at, "an ADTS frame cut short"))?;
            let raw = frame
                .get(header_len..)
                .ok_or_else(|| malformed(at, "an ADTS frame shorter than its header"))?;
            frames = &frames[header.frame_len..];
            let offset = self.written;
            out.extend_from_slice(raw);
            self.written += raw.len() as u64;
            let continues = self.last_track == Some(Kind::Audio);
            self.last_track = Some(Kind::Audio);
            audio.table.add(raw.len() as u32, offset, continues);
            audio.table.durations.push(1024);
            audio.frames += 1;
        }
        Ok(())
    }

    /// Completes the last PES of each stream and appends the `moov`. The caller then writes `mdat_size`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<RemuxSummary, RemuxError> {
        if self.layout.is_none() && !self.carry.is_empty() {
            self.decide_layout()?;
        }
        if !self.carry.is_empty() {
            return Err(RemuxError::Malformed {
                offset: self.offset,
                detail: "the file ends in the middle of a packet".into(),
            });
        }
        self.flush_video(out)?;
        self.flush_audio(out)?;
        let mut video = self.video.take().ok_or(RemuxError::NoVideo)?;
        let (Some(sps), Some(pps)) = (video.sps.as_ref(), video.pps.as_ref()) else {
            return Err(RemuxError::NoVideo);
        };
        if video.table.sample_count() == 0 {
            return Err(RemuxError::NoVideo);
        }
        // The last picture lasts as long as the one before it.
        let last = video.table.durations.runs.last().map_or(3000, |&(_, d)| d);
        video.table.durations.push(last);
        video.table.close_chunk();
        let avcc = avc_config(sps, pps);

        let mut audio = self.audio.take().filter(|a| a.table.sample_count() > 0);
        let video_start = video.min_pts.unwrap_or(0);
        let start = audio
            .as_ref()
            .and_then(|a| a.first_pts)
            .map_or(video_start, |a| a.min(video_start));
        let first_dts = video.first_dts.unwrap_or(0);
        let video_track = mp4::VideoTrack {
            table: &video.table,
            width: video.width,
            height: video.height,
            avcc: &avcc,
            delay: (video_start - start) as u64,
            media_time: (video_start - first_dts).max(0) as u64,
        };
        if let Some(a) = audio.as_mut() {
            a.table.close_chunk();
        }
        let audio_track = audio.as_ref().map(|a| {
            let (profile, rate_index, channels) = a.config.unwrap_or((1, 4, 2));
            let object_type = profile + 1;
            mp4::AudioTrack {
                table: &a.table,
                sample_rate: a.sample_rate,
                channels: u16::from(channels),
                audio_specific_config: [
                    (object_type << 3) | (rate_index >> 1),
                    ((rate_index & 1) << 7) | (channels << 3),
                ],
                delay: (a.first_pts.unwrap_or(start) - start) as u64,
            }
        });
        let mdat_end = self.written;
        let moov = mp4::moov(&video_track, audio_track.as_ref());
        out.extend_from_slice(&moov);
        let mdat_size = mdat_end - self.header_len;
        let video_ms = mp4::rescale(video.table.media_duration(), u64::from(VIDEO_TIMESCALE), 1000);
        let summary = RemuxSummary {
            mdat_size: Patch {
                offset: self.header_len + mp4::MDAT_SIZE_FIELD,
                bytes: mdat_size.to_be_bytes(),
            },
            output_size: mdat_end + moov.len() as u64,
            video_frames: video.table.sample_count(),
            audio_frames: audio.as_ref().map_or(0, |a| a.table.sample_count()),
            width: video.width,
            height: video.height,
            video_duration_ms: video_ms,
            audio_duration_ms: audio.as_ref().map_or(0, |a| {
                mp4::rescale(a.table.media_duration(), u64::from(a.sample_rate), 1000)
            }),
            sample_rate: audio.as_ref().map_or(0, |a| a.sample_rate),
            channels: audio_track.as_ref().map_or(0, |a| a.channels),
        };
        Ok(summary)
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

fn append(pes: &mut Pending, unit_start: bool, payload: &[u8], at: u64) -> Result<(), RemuxError> {
    if unit_start {
        pes.data.clear();
        pes.started = true;
        pes.offset = at;
    } else if !pes.started {
        // The tail of a PES that began before the stream did (a cut recording): nothing to attach it to.
        return Ok(());
    }
    if pes.data.len() + payload.len() > MAX_PES_BYTES {
        return Err(malformed(at, "a PES larger than 32 MiB"));
    }
    pes.data.extend_from_slice(payload);
    Ok(())
}

fn malformed(offset: u64, detail: &str) -> RemuxError {
    RemuxError::Malformed {
        offset,
        detail: detail.to_owned(),
    }
}

/// The `avcC` record from the stream's first SPS and PPS, with 4-byte NAL lengths.
fn avc_config(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut c = vec![
        1,
        sps.get(1).copied().unwrap_or(0),
        sps.get(2).copied().unwrap_or(0),
        sps.get(3).copied().unwrap_or(0),
        0xFF,
        0xE1,
    ];
    c.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    c.extend_from_slice(sps);
    c.push(1);
    c.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    c.extend_from_slice(pps);
    c
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
