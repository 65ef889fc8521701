//! MPEG-TS and MPEG-PS: codecs from the PMT / PSM stream types (or the payload when there is no map), picture
//! size and frame rate from the H.264 SPS or MPEG-2 sequence header, and duration from the first timestamps of the
//! head window to the last ones of the tail window, as ffprobe estimates it.
//!
//! Both containers deliver PES packets to one demuxer; TS splits them into 188-byte packets, PS into packs.

use super::{
    audio::{self, FrameHeader},
    bytes::be_u16,
    corrupt, fingerprint, h264,
    report::{AudioStream, Container, ProbeReport, Truncation, VideoStream},
    window::Windows,
    Halt, HEAD_WINDOW, TAIL_WINDOW,
};

const MAX_STREAMS: usize = 16;
/// The first payload bytes of each stream kept to find the SPS or sequence header (they lead the first PES).
const SNIFF_PAYLOAD_BYTES: usize = 16 * 1024;
/// The last audio PES kept whole to count its frames (ffmpeg's PES are a few KB).
const LAST_PES_BYTES: usize = 64 * 1024;
/// Head PTS kept to estimate a frame rate when the stream declares none.
const PTS_SAMPLES: usize = 64;
pub(crate) const PTS_WRAP: u64 = 1 << 33;
const PTS_HZ: u64 = 90_000;
/// Anything longer is a discontinuity (concatenated or looped streams), not a duration.
const MAX_PLAUSIBLE_SPAN: u64 = 24 * 3600 * PTS_HZ;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Tail,
}

#[derive(Debug)]
struct Stream {
    /// PID (TS) or stream id, with the private sub-stream id in the low byte for 0xBD (PS).
    key: u32,
    kind: Kind,
    /// Codec named by the PMT/PSM stream type, when it is unambiguous.
    declared: Option<&'static str>,
    first_pts: Option<u64>,
    last_pts: Option<u64>,
    head_payload: Vec<u8>,
    pts_samples: [u64; PTS_SAMPLES],
    pts_count: usize,
    started: bool,
    last_pes: Vec<u8>,
    last_pes_pts: Option<u64>,
}

impl Stream {
    fn new(key: u32, kind: Kind, declared: Option<&'static str>) -> Self {
        Self {
            key,
            kind,
            declared,
            first_pts: None,
            last_pts: None,
            head_payload: Vec::new(),
            pts_samples: [0; PTS_SAMPLES],
            pts_count: 0,
            started: false,
            last_pes: Vec::new(),
            last_pes_pts: None,
        }
    }
}

#[derive(Debug, Default)]
struct Demux {
    streams: Vec<Stream>,
}

impl Demux {
    fn add_stream(&mut self, key: u32, kind: Kind, declared: Option<&'static str>) {
        if self.streams.len() < MAX_STREAMS && !self.streams.iter().any(|s| s.key == key) {
            self.streams.push(Stream::new(key, kind, declared));
        }
    }

    /// A piece of a stream's PES data: `start` when it begins a PES packet (header included).
    fn push(&mut self, key: u32, start: bool, data: &[u8], phase: Phase) {
        let Some(stream) = self.streams.iter_mut().find(|s| s.key == key) else {
            return;
        };
        let payload = if start {
            let Some((pts, payload)) = parse_pes_header(data) else {
                stream.started = false;
                return;
            };
            stream.started = true;
            if let Some(pts) = pts {
                match phase {
                    Phase::Head => {
                        stream.first_pts = Some(stream.first_pts.map_or(pts, |first| earlier(first, pts)));
                        if stream.pts_count < PTS_SAMPLES {
                            stream.pts_samples[stream.pts_count] = pts;
                            stream.pts_count += 1;
                        }
                    }
                    Phase::Tail => {
                        stream.last_pts = Some(stream.last_pts.map_or(pts, |last| later(last, pts)));
                        stream.last_pes.clear();
                        stream.last_pes_pts = Some(pts);
                    }
                }
            }
            payload
        } else if stream.started {
            data
        } else {
            return;
        };
        let (buffer, cap) = match phase {
            Phase::Head => (&mut stream.head_payload, SNIFF_PAYLOAD_BYTES),
            Phase::Tail => (&mut stream.last_pes, LAST_PES_BYTES),
        };
        let room = cap.saturating_sub(buffer.len());
        buffer.extend_from_slice(payload.get(..room.min(payload.len())).unwrap_or_default());
    }
}

/// Of two 33-bit timestamps, the earlier/later one, allowing for a wrap between them.
fn earlier(a: u64, b: u64) -> u64 {
    if a.abs_diff(b) > PTS_WRAP / 2 {
        a.max(b)
    } else {
        a.min(b)
    }
}

fn later(a: u64, b: u64) -> u64 {
    if a.abs_diff(b) > PTS_WRAP / 2 {
        a.min(b)
    } else {
        a.max(b)
    }
}

/// The PES header that follows `00 00 01 stream_id length`: MPEG-2 style (TS, DVD) or MPEG-1 style (system
/// streams). Returns the PTS, if any, and the payload.
fn parse_pes_header(pes: &[u8]) -> Option<(Option<u64>, &[u8])> {
    parse_pes(pes).map(|pes| (pes.pts, pes.payload))
}

/// One PES packet's header fields that the probe and the remuxer use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pes<'a> {
    pub(crate) stream_id: u8,
    pub(crate) pts: Option<u64>,
    /// Present only when it differs from the PTS (B-frame streams).
    pub(crate) dts: Option<u64>,
    pub(crate) payload: &'a [u8],
}

pub(crate) fn parse_pes(pes: &[u8]) -> Option<Pes<'_>> {
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let stream_id = *pes.get(3)?;
    let body = pes.get(6..)?;
    let plain = |payload| Pes {
        stream_id,
        pts: None,
        dts: None,
        payload,
    };
    // Streams without the optional header: padding, private 2, PSM, directory...
    if matches!(stream_id, 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF) {
        return Some(plain(body));
    }
    if body.first()? & 0xC0 == 0x80 {
        let flags = body.get(1)? >> 6;
        let header_len = usize::from(*body.get(2)?);
        let pts = if flags & 0x2 != 0 {
            read_pts(body.get(3..8)?)
        } else {
            None
        };
        let dts = if flags == 0x3 { read_pts(body.get(8..13)?) } else { None };
        return Some(Pes {
            pts,
            dts,
            ..plain(body.get(3 + header_len..)?)
        });
    }
    // MPEG-1: up to 16 stuffing bytes, an optional STD buffer field, then the timestamps.
    let mut at = 0;
    while body.get(at) == Some(&0xFF) && at < 16 {
        at += 1;
    }
    if body.get(at)? & 0xC0 == 0x40 {
        at += 2;
    }
    let marker = body.get(at)? & 0xF0;
    let (pts, dts, header_len) = match marker {
        0x20 => (read_pts(body.get(at..at + 5)?), None, 5),
        0x30 => (
            read_pts(body.get(at..at + 5)?),
            read_pts(body.get(at + 5..at + 10)?),
            10,
        ),
        _ if *body.get(at)? == 0x0F => (None, None, 1),
        _ => return None,
    };
    Some(Pes {
        pts,
        dts,
        ..plain(body.get(at + header_len..)?)
    })
}

/// A 33-bit timestamp spread over 5 bytes with marker bits.
fn read_pts(b: &[u8]) -> Option<u64> {
    let b: [u8; 5] = b.try_into().ok()?;
    Some(
        (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | (u64::from(b[2]) >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4]) >> 1,
    )
}

// ---------------------------------------------------------------------------------------------------------------
// MPEG-TS

/// Codec and kind for a PMT entry: stream type, then descriptors for the private type 0x06.
pub(crate) fn ts_stream_type(stream_type: u8, descriptors: &[u8]) -> Option<(Kind, Option<&'static str>)> {
    Some(match stream_type {
        0x01 => (Kind::Video, Some("mpeg1video")),
        0x02 => (Kind::Video, Some("mpeg2video")),
        0x10 => (Kind::Video, Some("mpeg4")),
        0x1B | 0x20 => (Kind::Video, Some("h264")),
        0x24 => (Kind::Video, Some("hevc")),
        0x33 => (Kind::Video, Some("vvc")),
        0x42 => (Kind::Video, Some("cavs")),
        0xD1 => (Kind::Video, Some("dirac")),
        0xEA => (Kind::Video, Some("vc1")),
        // MPEG-1/2 audio: layer II or III, told apart by the first frame header.
        0x03 | 0x04 => (Kind::Audio, None),
        0x0F | 0x1C => (Kind::Audio, Some("aac")),
        0x11 => (Kind::Audio, Some("aac_latm")),
        0x81 => (Kind::Audio, Some("ac3")),
        0x87 => (Kind::Audio, Some("eac3")),
        0x82 | 0x85 | 0x86 => (Kind::Audio, Some("dts")),
        // Private data: descriptors may name it; otherwise (AAC in ffmpeg's M2TS mode, for one) the payload will.
        0x06 => return private_stream_codec(descriptors).or(Some((Kind::Audio, None))),
        _ => return None,
    })
}

fn private_stream_codec(descriptors: &[u8]) -> Option<(Kind, Option<&'static str>)> {
    let mut at = 0;
    while let (Some(&tag), Some(&len)) = (descriptors.get(at), descriptors.get(at + 1)) {
        let body = descriptors.get(at + 2..at + 2 + usize::from(len)).unwrap_or_default();
        let found = match (tag, body) {
            (0x05, b"Opus") => Some((Kind::Audio, Some("opus"))),
            (0x05, b"AC-3") | (0x6A, _) => Some((Kind::Audio, Some("ac3"))),
            (0x05, b"EAC3") | (0x7A, _) => Some((Kind::Audio, Some("eac3"))),
            (0x7B, _) => Some((Kind::Audio, Some("dts"))),
            (0x05, b"HEVC") => Some((Kind::Video, Some("hevc"))),
            (0x05, b"VC-1") => Some((Kind::Video, Some("vc1"))),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
        at += 2 + usize::from(len);
    }
    None
}

/// Packet size and the offset of the first sync byte: 188 (TS) or 192 (M2TS, a 4-byte timecode first).
fn packet_layout(head: &[u8]) -> (usize, usize) {
    if head.first() == Some(&0x47) && head.get(188) == Some(&0x47) {
        (188, 0)
    } else if head.get(4) == Some(&0x47) && head.get(196) == Some(&0x47) {
        (192, 4)
    } else {
        (188, 0)
    }
}

/// The first offset in `data` from which three packets in a row start with a sync byte.
fn align(data: &[u8], stride: usize) -> Option<usize> {
    (0..stride.min(data.len())).find(|&i| (0..3).all(|k| data.get(i + k * stride).is_none_or(|&b| b == 0x47)))
}

#[derive(Debug, Default)]
struct TransportStream {
    demux: Demux,
    pmt_pid: Option<u16>,
    has_pmt: bool,
}

impl TransportStream {
    fn scan(&mut self, data: &[u8], stride: usize, phase: Phase) {
        let mut at = 0;
        while let Some(packet) = data.get(at..at + 188) {
            at += stride;
            if packet[0] != 0x47 {
                continue;
            }
            let pid = (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2]);
            let unit_start = packet[1] & 0x40 != 0;
            let adaptation = (packet[3] >> 4) & 0x3;
            if adaptation & 0x1 == 0 {
                continue;
            }
            let payload_at = if adaptation & 0x2 != 0 {
                5 + usize::from(packet[4])
            } else {
                4
            };
            let Some(payload) = packet.get(payload_at..) else {
                continue;
            };
            if pid == 0 && unit_start {
                self.pmt_pid = parse_pat(payload).or(self.pmt_pid);
            } else if Some(pid) == self.pmt_pid && unit_start && !self.has_pmt {
                self.has_pmt = parse_pmt(payload, &mut self.demux);
            } else if self.has_pmt {
                self.demux.push(u32::from(pid), unit_start, payload, phase);
            }
        }
    }
}

/// The start of a PSI section: skip the pointer field; returns the section within this packet.
fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let section = payload.get(1 + pointer..)?;
    if *section.first()? != table_id {
        return None;
    }
    let length = usize::from(be_u16(section, 1)? & 0x0FFF);
    // Sections longer than one packet are rare for PAT/PMT; the next repetition is tried instead.
    section.get(..3 + length)
}

pub(crate) fn parse_pat(payload: &[u8]) -> Option<u16> {
    let s = section(payload, 0x00)?;
    let programs = s.get(8..s.len().checked_sub(4)?)?;
    programs
        .chunks_exact(4)
        .find(|p| be_u16(p, 0) != Some(0))
        .and_then(|p| be_u16(p, 2))
        .map(|pid| pid & 0x1FFF)
}

fn parse_pmt(payload: &[u8], demux: &mut Demux) -> bool {
    pmt_entries(payload, |stream_type, pid, descriptors| {
        if let Some((kind, declared)) = ts_stream_type(stream_type, descriptors) {
            demux.add_stream(u32::from(pid), kind, declared);
        }
    })
}

/// Calls `entry(stream_type, pid, descriptors)` for each elementary stream of a PMT section starting in this
/// payload; false when the payload holds no PMT.
pub(crate) fn pmt_entries(payload: &[u8], mut entry: impl FnMut(u8, u16, &[u8])) -> bool {
    let Some(s) = section(payload, 0x02) else { return false };
    let Some(info_len) = be_u16(s, 10).map(|l| usize::from(l & 0x0FFF)) else {
        return false;
    };
    let end = s.len().saturating_sub(4);
    let mut at = 12 + info_len;
    while at + 5 <= end {
        let stream_type = s[at];
        let pid = be_u16(s, at + 1).unwrap_or(0) & 0x1FFF;
        let es_info_len = usize::from(be_u16(s, at + 3).unwrap_or(0) & 0x0FFF);
        let descriptors = s.get(at + 5..(at + 5 + es_info_len).min(end)).unwrap_or_default();
        entry(stream_type, pid, descriptors);
        at += 5 + es_info_len;
    }
    true
}

/// Packet size and the offset of the first sync byte (188 for TS, 192 with M2TS's timecode prefix).
pub(crate) fn ts_packet_layout(head: &[u8]) -> (usize, usize) {
    packet_layout(head)
}

pub(super) fn probe_transport_stream(w: &Windows) -> Result<ProbeReport, Halt> {
    let container = Container::MpegTs;
    let size = w.size();
    let head = w.bytes(0..size.min(HEAD_WINDOW))?;
    let tail = w.bytes(size.saturating_sub(TAIL_WINDOW)..size)?;
    let (stride, first_sync) = packet_layout(head);
    let mut ts = TransportStream::default();
    ts.scan(head.get(first_sync..).unwrap_or_default(), stride, Phase::Head);
    if !ts.has_pmt {
        return Err(corrupt(container, "no program map table in its first MiB"));
    }
    if let Some(aligned) = align(tail, stride) {
        ts.scan(&tail[aligned..], stride, Phase::Tail);
    }
    let mut report = build_report(container, size, &ts.demux, head);
    // Packets (with their M2TS timecode prefix) tile the file; a remainder is a packet cut short.
    let stride = stride as u64;
    if !size.is_multiple_of(stride) {
        report.truncated = Some(Truncation {
            expected_size: (size / stride + 1) * stride,
        });
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------------------------
// MPEG-PS

fn ps_stream_type(stream_type: u8) -> Option<&'static str> {
    ts_stream_type(stream_type, &[]).and_then(|(_, codec)| codec)
}

#[derive(Debug, Default)]
struct ProgramStream {
    demux: Demux,
    /// Stream types from the Program Stream Map: (stream id, codec).
    map: Vec<(u8, &'static str)>,
    /// A PES that runs past the end of the data it was found in.
    cut_at: Option<usize>,
}

impl ProgramStream {
    /// Walks packs and PES packets; on anything unexpected, resynchronises on the next pack header.
    fn scan(&mut self, data: &[u8], phase: Phase) {
        let mut at = 0;
        while let Some(code) = data.get(at..at + 4) {
            if code[..3] != [0, 0, 1] {
                match find_pack(data, at + 1) {
                    Some(next) => at = next,
                    None => break,
                }
                continue;
            }
            match code[3] {
                0xBA => {
                    let Some(&mark) = data.get(at + 4) else { break };
                    at += if mark & 0xC0 == 0x40 {
                        let Some(&stuffing) = data.get(at + 13) else { break };
                        14 + usize::from(stuffing & 0x07)
                    } else {
                        12
                    };
                }
                0xB9 => at += 4,
                id @ 0xBB..=0xFF => {
                    let Some(len) = be_u16(data, at + 4) else { break };
                    let end = at + 6 + usize::from(len);
                    let Some(packet) = data.get(at..end) else {
                        self.cut_at = Some(end);
                        break;
                    };
                    self.packet(id, packet, phase);
                    at = end;
                }
                _ => match find_pack(data, at + 1) {
                    Some(next) => at = next,
                    None => break,
                },
            }
        }
    }

    fn packet(&mut self, id: u8, packet: &[u8], phase: Phase) {
        match id {
            0xBC => self.parse_psm(packet),
            0xE0..=0xEF => {
                let declared = self.map.iter().find(|(sid, _)| *sid == id).map(|(_, c)| *c);
                self.demux.add_stream(u32::from(id), Kind::Video, declared);
                self.demux.push(u32::from(id), true, packet, phase);
            }
            0xC0..=0xDF => {
                let declared = self.map.iter().find(|(sid, _)| *sid == id).map(|(_, c)| *c);
                self.demux.add_stream(u32::from(id), Kind::Audio, declared);
                self.demux.push(u32::from(id), true, packet, phase);
            }
            0xBD => {
                // Private stream 1 (DVD): the first payload byte names the sub-stream.
                let Some((_, payload)) = parse_pes_header(packet) else {
                    return;
                };
                let Some(&sub) = payload.first() else { return };
                let declared = match sub {
                    0x80..=0x87 => "ac3",
                    0x88..=0x8F => "dts",
                    0xA0..=0xA7 => "pcm_dvd",
                    _ => return,
                };
                let key = 0xBD00 | u32::from(sub);
                self.demux.add_stream(key, Kind::Audio, Some(declared));
                self.demux.push(key, true, packet, phase);
            }
            _ => {}
        }
    }

    fn parse_psm(&mut self, packet: &[u8]) {
        psm_entries(packet, |stream_type, id| {
            if let Some(codec) = ps_stream_type(stream_type) {
                if self.map.len() < MAX_STREAMS {
                    self.map.push((id, codec));
                }
            }
        });
    }
}

/// Calls `entry(stream_type, stream_id)` for each elementary stream of a Program Stream Map packet (start code
/// included).
pub(crate) fn psm_entries(packet: &[u8], mut entry: impl FnMut(u8, u8)) {
    let Some(info_len) = be_u16(packet, 8) else { return };
    let map_at = 10 + usize::from(info_len);
    let Some(map_len) = be_u16(packet, map_at) else { return };
    let mut at = map_at + 2;
    let end = (at + usize::from(map_len)).min(packet.len());
    while at + 4 <= end {
        let (stream_type, id) = (packet[at], packet[at + 1]);
        let es_info_len = usize::from(be_u16(packet, at + 2).unwrap_or(0));
        entry(stream_type, id);
        at += 4 + es_info_len;
    }
}

fn find_pack(data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    rest.windows(4).position(|w| w == [0, 0, 1, 0xBA]).map(|p| p + from)
}

pub(super) fn probe_program_stream(w: &Windows) -> Result<ProbeReport, Halt> {
    let container = Container::MpegPs;
    let size = w.size();
    let head = w.bytes(0..size.min(HEAD_WINDOW))?;
    let tail_start = size.saturating_sub(TAIL_WINDOW);
    let tail = w.bytes(tail_start..size)?;
    let mut ps = ProgramStream::default();
    ps.scan(head, Phase::Head);
    if ps.demux.streams.is_empty() {
        return Err(corrupt(container, "no audio or video packets in its first MiB"));
    }
    // The tail window ends at EOF, so a packet running past its end runs past the file's.
    ps.cut_at = None;
    let first_pack = find_pack(tail, 0);
    if let Some(first_pack) = first_pack {
        ps.scan(&tail[first_pack..], Phase::Tail);
    }
    let mut report = build_report(container, size, &ps.demux, head);
    if let (Some(cut), Some(first_pack)) = (ps.cut_at, first_pack) {
        report.truncated = Some(Truncation {
            expected_size: tail_start + (first_pack + cut) as u64,
        });
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------------------------
// Facts from the demuxed streams

fn build_report(container: Container, size: u64, demux: &Demux, head: &[u8]) -> ProbeReport {
    let mut report = ProbeReport::new(container, size);
    report.fingerprint = Some(fingerprint(size, &[head]));
    let video = demux.streams.iter().find(|s| s.kind == Kind::Video);
    // The first audio stream whose codec is known, from its declaration or its first frame.
    let audio = demux
        .streams
        .iter()
        .filter(|s| s.kind == Kind::Audio)
        .find(|s| s.declared.is_some() || audio::parse_frame_header(&s.head_payload).is_some());
    let video_stream = video.map(describe_video);
    let audio_frame = audio.and_then(|s| audio::parse_frame_header(&s.head_payload));
    if let Some(codec) = audio.and_then(|s| s.declared).or(audio_frame.map(|f| f.codec)) {
        let known = audio_frame.filter(|f| f.codec == codec);
        report.audio = Some(AudioStream {
            codec: codec.to_owned(),
            sample_rate: known.map(|f| f.sample_rate).or((codec == "opus").then_some(48_000)),
            channels: known.map(|f| f.channels),
        });
    }
    report.duration_ms = duration_ms(video.zip(video_stream.as_ref()), audio, audio_frame);
    report.video = video_stream;
    report
}

fn describe_video(stream: &Stream) -> VideoStream {
    let sps = h264::find_annexb_sps(&stream.head_payload);
    let sequence = h264::find_mpeg_video_sequence(&stream.head_payload);
    let codec = stream
        .declared
        .or_else(|| sps.as_ref().map(|_| "h264"))
        .or_else(|| sequence.as_ref().map(|s| s.codec))
        .unwrap_or("unknown");
    let mut video = VideoStream {
        codec: codec.to_owned(),
        profile: None,
        level: None,
        dimensions: None,
        rotation: 0,
        frame_rate: None,
        pixel_aspect: None,
    };
    match codec {
        "h264" => {
            if let Some(sps) = sps {
                video.profile = Some(h264::h264_profile_name(sps.profile_idc, sps.constraint_flags));
                video.level = Some(h264::h264_level_name(
                    sps.profile_idc,
                    sps.constraint_flags,
                    sps.level_idc,
                ));
                video.dimensions = Some((sps.width, sps.height));
                video.frame_rate = sps.frame_rate;
                video.pixel_aspect = sps.sample_aspect;
            }
        }
        "mpeg1video" | "mpeg2video" => {
            if let Some(sequence) = sequence {
                video.codec = sequence.codec.to_owned();
                video.dimensions = Some((sequence.width, sequence.height)).filter(|&(w, h)| w > 0 && h > 0);
                video.frame_rate = sequence.frame_rate;
            }
        }
        _ => {}
    }
    video.frame_rate = video.frame_rate.or_else(|| rate_from_pts(stream));
    video
}

/// Frames per second from the spacing of the head's timestamps (sorted: B-frames reorder them): the median
/// positive gap.
fn rate_from_pts(stream: &Stream) -> Option<f64> {
    let mut pts = stream.pts_samples;
    let samples = pts.get_mut(..stream.pts_count)?;
    samples.sort_unstable();
    let mut gaps = [0u64; PTS_SAMPLES];
    let mut count = 0;
    for pair in samples.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > 0 && gap < PTS_HZ {
            gaps[count] = gap;
            count += 1;
        }
    }
    let gaps = gaps.get_mut(..count)?;
    gaps.sort_unstable();
    let median = *gaps.get(count / 2)?;
    Some(PTS_HZ as f64 / median as f64)
}

/// From the earliest first timestamp to the latest end: the video's last timestamp plus one frame, or the audio's
/// last packet plus the frames it holds.
fn duration_ms(
    video: Option<(&Stream, &VideoStream)>,
    audio: Option<&Stream>,
    audio_frame: Option<FrameHeader>,
) -> Option<u64> {
    let start = [video.map(|(s, _)| s), audio]
        .into_iter()
        .flatten()
        .filter_map(|s| s.first_pts)
        .reduce(earlier)?;
    let video_end = video.and_then(|(stream, facts)| {
        let frame = facts
            .frame_rate
            .filter(|&fps| fps > 0.0)
            .map_or(0, |fps| (PTS_HZ as f64 / fps).round() as u64);
        Some(stream.last_pts? + frame)
    });
    let audio_end = audio.and_then(|stream| {
        let last = stream.last_pes_pts?;
        let covered = audio_frame.map_or(0, |frame| audio::payload_duration_90khz(&stream.last_pes, &frame));
        Some(last + covered)
    });
    let end = [video_end, audio_end].into_iter().flatten().reduce(later)?;
    let span = if end >= start {
        end - start
    } else {
        end + PTS_WRAP - start
    };
    (span <= MAX_PLAUSIBLE_SPAN).then(|| (span * 1000 + PTS_HZ / 2) / PTS_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_reads_33_bits_with_markers() {
        // PTS 1.4 s = 126000 ticks, as ffmpeg's TS muxer starts.
        assert_eq!(read_pts(&[0x21, 0x00, 0x07, 0xD8, 0x61]), Some(126_000));
    }

    #[test]
    fn wrapped_timestamps_order_across_the_wrap() {
        assert_eq!(later(PTS_WRAP - 10, 5), 5);
        assert_eq!(earlier(PTS_WRAP - 10, 5), PTS_WRAP - 10);
        assert_eq!(later(100, 200), 200);
    }

    #[test]
    fn pes_headers_of_both_generations() {
        let mpeg2 = [0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0x00, 0x07, 0xD8, 0x61, 0xAA];
        assert_eq!(parse_pes_header(&mpeg2), Some((Some(126_000), &[0xAA][..])));
        let mpeg1 = [
            0, 0, 1, 0xC0, 0, 0, 0xFF, 0x40, 0x00, 0x21, 0x00, 0x07, 0xD8, 0x61, 0xBB,
        ];
        assert_eq!(parse_pes_header(&mpeg1), Some((Some(126_000), &[0xBB][..])));
        assert_eq!(parse_pes_header(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 200]), None);
    }
}
