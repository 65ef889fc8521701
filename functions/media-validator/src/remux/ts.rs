//! MPEG-TS (and M2TS) packets → the PES packets of the first H.264 and AAC streams of the program. A video PES
//! is one access unit, as broadcast and ffmpeg write them.

use super::{
    malformed,
    tracks::{Stamp, Tracks, MAX_PES_BYTES},
    RemuxError,
};
use crate::probe::mpeg::{parse_pat, parse_pes, pmt_entries, ts_packet_layout, ts_stream_type, Kind};

/// Bytes needed before the packet size (188 or 192) can be told.
const LAYOUT_BYTES: usize = 3 * 192 + 4;

#[derive(Debug, Default)]
struct Pending {
    data: Vec<u8>,
    /// Source offset of the packet that started it.
    offset: u64,
    started: bool,
}

#[derive(Debug, Default)]
struct Stream {
    pid: u16,
    pes: Pending,
    /// Continuity counter of the last packet (16 = none yet).
    counter: u8,
}

#[derive(Debug, Default)]
pub(super) struct TransportDemux {
    /// Packet stride and the offset of the TS packet within it (4 for M2TS).
    layout: Option<(usize, usize)>,
    carry: Vec<u8>,
    /// Source bytes consumed.
    offset: u64,
    pmt_pid: Option<u16>,
    video: Option<Stream>,
    audio: Option<Stream>,
}

impl TransportDemux {
    pub(super) fn push(&mut self, mut data: &[u8], tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
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
                self.packet(packet, tracks, out)?;
            }
        }
        let mut packets = data.chunks_exact(stride);
        for packet in &mut packets {
            self.packet(packet, tracks, out)?;
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

    fn packet(&mut self, packet: &[u8], tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
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
            if discontinuity && self.stream(pid).is_some() {
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
            return self.program_map(payload, tracks);
        }
        let Some(kind) = self.stream(pid) else {
            return Ok(());
        };
        let stream = match kind {
            Kind::Video => self.video.as_mut(),
            Kind::Audio => self.audio.as_mut(),
        }
        .ok_or(RemuxError::NoVideo)?;
        if stream.counter != 16 {
            if counter == stream.counter {
                // A duplicate packet (allowed once by the standard): its payload was already taken.
                return Ok(());
            }
            if counter != (stream.counter + 1) & 0x0F {
                return Err(RemuxError::ContinuityError { pid, offset: at });
            }
        }
        stream.counter = counter;
        if unit_start {
            self.flush(kind, tracks, out)?;
        }
        let stream = match kind {
            Kind::Video => self.video.as_mut(),
            Kind::Audio => self.audio.as_mut(),
        }
        .ok_or(RemuxError::NoVideo)?;
        append(&mut stream.pes, unit_start, payload, at)
    }

    fn stream(&self, pid: u16) -> Option<Kind> {
        if self.video.as_ref().is_some_and(|v| v.pid == pid) {
            Some(Kind::Video)
        } else if self.audio.as_ref().is_some_and(|a| a.pid == pid) {
            Some(Kind::Audio)
        } else {
            None
        }
    }

    fn program_map(&mut self, payload: &[u8], tracks: &mut Tracks) -> Result<(), RemuxError> {
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
        let stream = |pid| Stream {
            pid,
            counter: 16,
            ..Stream::default()
        };
        self.video = Some(stream(video.ok_or(RemuxError::NoVideo)?));
        self.audio = audio.map(stream);
        if self.audio.is_some() {
            tracks.add_audio();
        }
        Ok(())
    }

    /// Hands the PES collected for `kind` to the tracks.
    fn flush(&mut self, kind: Kind, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let stream = match kind {
            Kind::Video => self.video.as_mut(),
            Kind::Audio => self.audio.as_mut(),
        };
        let Some(pes) = stream.map(|s| &mut s.pes).filter(|p| p.started) else {
            return Ok(());
        };
        let at = pes.offset;
        let data = std::mem::take(&mut pes.data);
        pes.started = false;
        let parsed = parse_pes(&data).ok_or_else(|| malformed(at, "PES header"))?;
        let stamp = parsed.pts.map(|pts| Stamp {
            pts,
            dts: parsed.dts,
            offset: at,
        });
        let result = match kind {
            Kind::Video => tracks.video_access_unit(parsed.payload, stamp, at, out),
            Kind::Audio => tracks.audio_payload(parsed.payload, stamp, at, out),
        };
        // The buffer is reused for the next PES of the stream.
        let mut data = data;
        data.clear();
        if let Some(s) = match kind {
            Kind::Video => self.video.as_mut(),
            Kind::Audio => self.audio.as_mut(),
        } {
            s.pes.data = data;
        }
        result
    }

    /// Completes the last PES of each stream.
    pub(super) fn finish(&mut self, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if self.layout.is_none() && !self.carry.is_empty() {
            self.decide_layout()?;
        }
        if !self.carry.is_empty() {
            return Err(RemuxError::Malformed {
                offset: self.offset,
                detail: "the file ends in the middle of a packet".into(),
            });
        }
        self.flush(Kind::Video, tracks, out)?;
        self.flush(Kind::Audio, tracks, out)
    }
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
