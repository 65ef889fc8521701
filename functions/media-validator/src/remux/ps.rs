//! MPEG-PS (ISO 13818-1 program streams and MPEG-1 system streams) → the PES packets of the first H.264 video and
//! AAC audio streams. Pack headers (12 bytes in MPEG-1, 14 plus stuffing in MPEG-2), system headers, padding,
//! private stream 2 and end codes are skipped; a Program Stream Map names the codecs when there is one, the
//! payload otherwise. AAC travels under an MPEG audio stream id (0xC0–0xDF, which ISO 13818-1 assigns to ISO
//! 13818-7 and 14496-3 audio too) with stream type 0x0F in the map.
//!
//! Unlike a TS muxer, a PS muxer cuts the elementary stream into packs whatever the pictures' sizes (2 KiB in
//! ffmpeg), so a PES is not an access unit: the H.264 stream is split into access units here, each dated by the
//! packet it starts in (or, undated, by the tracks from its picture order).

use super::{
    malformed,
    tracks::{Claims, Stamp, Tracks, MAX_PES_BYTES},
    RemuxError,
};
use crate::probe::{
    audio::{parse_adts, parse_mpeg_audio},
    h264::{find_mpeg_video_sequence, find_start_code},
    mpeg::{parse_pes, psm_entries, ts_stream_type, Kind},
};

/// The longest unit of a program stream: a PES packet with a 16-bit length.
const MAX_UNIT: usize = 6 + 0xFFFF;
/// Bytes held at most while looking for whole units: any unit fits, so each pass completes at least one.
const WINDOW: usize = 2 * MAX_UNIT;
/// Streams the map may declare; more are not a real file.
const MAX_MAPPED: usize = 16;

#[derive(Debug, Default)]
pub(super) struct ProgramDemux {
    /// Source bytes not yet a whole unit, and the source offset of the first.
    held: Vec<u8>,
    offset: u64,
    /// Stream types from the Program Stream Map: (stream id, stream type).
    map: Vec<(u8, u8)>,
    video_id: Option<u8>,
    audio_id: Option<u8>,
    units: AccessUnits,
}

impl ProgramDemux {
    pub(super) fn push(&mut self, mut data: &[u8], tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        while !data.is_empty() {
            let take = (WINDOW - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
            let held = std::mem::take(&mut self.held);
            let used = self.units(&held, tracks, out);
            self.held = held;
            let used = used?;
            self.held.drain(..used);
            self.offset += used as u64;
        }
        Ok(())
    }

    /// Handles every whole unit at the start of `held`; returns the bytes they took.
    fn units(&mut self, held: &[u8], tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<usize, RemuxError> {
        let mut at = 0;
        while let Some(len) = unit_len(&held[at..], self.offset + at as u64)? {
            self.unit(&held[at..at + len], self.offset + at as u64, tracks, out)?;
            at += len;
        }
        Ok(at)
    }

    fn unit(&mut self, unit: &[u8], at: u64, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let Some(&id) = unit.get(3) else { return Ok(()) };
        match id {
            0xBC => psm_entries(unit, |stream_type, id| {
                if self.map.len() < MAX_MAPPED {
                    self.map.push((id, stream_type));
                }
            }),
            0xE0..=0xEF | 0xC0..=0xDF | 0xBD => return self.pes(id, unit, at, tracks, out),
            // Pack and system headers, padding, private stream 2 (DVD navigation), end codes, zero stuffing.
            _ => {}
        }
        Ok(())
    }

    fn pes(
        &mut self,
        id: u8,
        packet: &[u8],
        at: u64,
        tracks: &mut Tracks,
        out: &mut Vec<u8>,
    ) -> Result<(), RemuxError> {
        let pes = parse_pes(packet).ok_or_else(|| malformed(at, "PES header"))?;
        let stamp = pes.pts.map(|pts| Stamp {
            pts,
            dts: pes.dts,
            offset: at,
        });
        let kind = if (0xE0..=0xEF).contains(&id) {
            Kind::Video
        } else {
            Kind::Audio
        };
        let chosen = match kind {
            Kind::Video => &mut self.video_id,
            Kind::Audio => &mut self.audio_id,
        };
        match *chosen {
            Some(chosen) if chosen != id => return Ok(()),
            Some(_) => {}
            None => {
                let declared = self.map.iter().find(|(sid, _)| *sid == id).map(|&(_, t)| t);
                refuse_other_codecs(kind, id, declared, pes.payload)?;
                *chosen = Some(id);
                if kind == Kind::Audio {
                    tracks.add_audio();
                }
            }
        }
        match kind {
            Kind::Video => self.units.push(pes.payload, stamp, at, tracks, out),
            Kind::Audio => tracks.audio_payload(pes.payload, stamp, at, out),
        }
    }

    pub(super) fn finish(&mut self, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if self.held.iter().any(|&b| b != 0) {
            return Err(malformed(self.offset, "the file ends in the middle of a pack"));
        }
        self.units.finish(tracks, out)
    }
}

/// The length of the unit at the start of `rest`, `None` when more bytes are needed to tell or to hold it whole.
fn unit_len(rest: &[u8], offset: u64) -> Result<Option<usize>, RemuxError> {
    let Some(code) = rest.get(..4) else { return Ok(None) };
    if code[..3] != [0, 0, 1] {
        // Zero bytes may pad between packs; anything else means the pack structure is lost.
        return if code[0] == 0 {
            Ok(Some(1))
        } else {
            Err(RemuxError::NotTransportStream { offset })
        };
    }
    let len = match code[3] {
        0xBA => match rest.get(4) {
            None => return Ok(None),
            // MPEG-2: 14 bytes and up to 7 stuffing bytes.
            Some(mark) if mark & 0xC0 == 0x40 => match rest.get(13) {
                None => return Ok(None),
                Some(stuffing) => 14 + usize::from(stuffing & 0x07),
            },
            // MPEG-1 system stream.
            Some(mark) if mark & 0xF0 == 0x20 => 12,
            Some(_) => return Err(malformed(offset, "pack header")),
        },
        0xB9 => 4,
        0xBB..=0xFF => match rest.get(4..6) {
            None => return Ok(None),
            Some(len) => 6 + usize::from(u16::from_be_bytes([len[0], len[1]])),
        },
        _ => return Err(RemuxError::NotTransportStream { offset }),
    };
    Ok((rest.len() >= len).then_some(len))
}

/// The remuxer copies H.264 and AAC only: the stream map, or else the first payload, says what a stream is.
fn refuse_other_codecs(kind: Kind, id: u8, declared: Option<u8>, payload: &[u8]) -> Result<(), RemuxError> {
    let refuse = |what: &str| {
        Err(RemuxError::UnsupportedCodec(format!(
            "{} codec {what}",
            kind_name(kind)
        )))
    };
    if let Some(stream_type) = declared {
        return match (kind, stream_type) {
            (Kind::Video, 0x1B) | (Kind::Audio, 0x0F) => Ok(()),
            _ => refuse(
                ts_stream_type(stream_type, &[])
                    .and_then(|(_, c)| c)
                    .unwrap_or("unknown"),
            ),
        };
    }
    match kind {
        Kind::Video => match find_mpeg_video_sequence(payload) {
            Some(sequence) => refuse(sequence.codec),
            None => Ok(()),
        },
        Kind::Audio if id == 0xBD => refuse(match payload.first() {
            Some(0x80..=0x87) => "ac3",
            Some(0x88..=0x8F) => "dts",
            Some(0xA0..=0xA7) => "pcm_dvd",
            _ => "unknown",
        }),
        Kind::Audio if parse_adts(payload).is_some() => Ok(()),
        Kind::Audio => refuse(parse_mpeg_audio(payload).map_or("unknown", |frame| frame.codec)),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Video => "video",
        Kind::Audio => "audio",
    }
}

/// The H.264 elementary stream split into access units (ITU-T H.264 7.4.1.2.3): a unit ends before an access
/// unit delimiter, SPS, PPS, SEI or prefix NAL, or before the first slice of the next picture
/// (`first_mb_in_slice` 0), that follows a picture.
#[derive(Debug, Default)]
struct AccessUnits {
    /// From the start of the current unit to the last byte received.
    data: Vec<u8>,
    /// Elementary-stream position of `data[0]`.
    position: u64,
    /// `data[..scanned]` holds no start code still to look at.
    scanned: usize,
    has_picture: bool,
    claims: Claims,
    /// Source offset of the last packet pushed, for errors.
    at: u64,
}

impl AccessUnits {
    fn push(
        &mut self,
        payload: &[u8],
        stamp: Option<Stamp>,
        at: u64,
        tracks: &mut Tracks,
        out: &mut Vec<u8>,
    ) -> Result<(), RemuxError> {
        self.at = at;
        if let Some(stamp) = stamp {
            self.claims.push(self.position + self.data.len() as u64, stamp);
        }
        if self.data.len() + payload.len() > MAX_PES_BYTES {
            return Err(malformed(at, "an access unit larger than 32 MiB"));
        }
        self.data.extend_from_slice(payload);
        let mut from = self.scanned;
        while let Some(code) = find_start_code(&self.data, from) {
            // The NAL header, and for a slice the first bit of first_mb_in_slice, decide.
            let Some(&header) = self.data.get(code + 3) else {
                self.scanned = code;
                return Ok(());
            };
            let kind = header & 0x1F;
            let picture = matches!(kind, 1 | 5);
            let first_slice = if picture {
                let Some(&next) = self.data.get(code + 4) else {
                    self.scanned = code;
                    return Ok(());
                };
                next & 0x80 != 0
            } else {
                false
            };
            let starts_unit = self.has_picture && (first_slice || (!picture && matches!(kind, 6..=9 | 14..=18)));
            if starts_unit {
                // A four-byte start code's leading zero belongs to the unit it starts.
                let end = if code > 0 && self.data[code - 1] == 0 {
                    code - 1
                } else {
                    code
                };
                self.emit(end, at, tracks, out)?;
                from = code - end + 3;
                self.has_picture = picture;
            } else {
                self.has_picture |= picture;
                from = code + 3;
            }
        }
        self.scanned = self.data.len().saturating_sub(2).max(from.min(self.data.len()));
        Ok(())
    }

    /// Hands `data[..end]` to the tracks as one access unit.
    fn emit(&mut self, end: usize, at: u64, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        let unit = &self.data[..end];
        let start = find_start_code(unit, 0).map_or(0, |s| if s > 0 && unit[s - 1] == 0 { s - 1 } else { s });
        let stamp = self.claims.claim(self.position + start as u64);
        let offset = stamp.map_or(at, |s| s.offset);
        tracks.video_access_unit(unit, stamp, offset, out)?;
        self.data.drain(..end);
        self.position += end as u64;
        self.scanned = 0;
        Ok(())
    }

    fn finish(&mut self, tracks: &mut Tracks, out: &mut Vec<u8>) -> Result<(), RemuxError> {
        if self.has_picture {
            self.emit(self.data.len(), self.at, tracks, out)?;
            self.has_picture = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RemuxError, RemuxSummary, Remuxer};

    fn remux(data: &[u8]) -> Result<RemuxSummary, RemuxError> {
        let mut remuxer = Remuxer::new();
        let mut out = remuxer.header();
        remuxer.push(data, &mut out)?;
        remuxer.finish(&mut out)
    }

    fn mpeg2_pack(stuffing: u8) -> Vec<u8> {
        let mut pack = vec![
            0,
            0,
            1,
            0xBA,
            0x44,
            0,
            0x04,
            0,
            0x04,
            0x01,
            0x01,
            0x89,
            0xC3,
            0xF8 | stuffing,
        ];
        pack.extend(std::iter::repeat_n(0xFF, usize::from(stuffing)));
        pack
    }

    fn mpeg1_pack() -> Vec<u8> {
        vec![0, 0, 1, 0xBA, 0x21, 0, 0x01, 0, 0x01, 0x80, 0x1B, 0x83]
    }

    /// A PES with an MPEG-2 header and no timestamp.
    fn pes(id: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 1, id];
        p.extend_from_slice(&((payload.len() + 3) as u16).to_be_bytes());
        p.extend_from_slice(&[0x80, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn psm(entries: &[(u8, u8)]) -> Vec<u8> {
        let map: Vec<u8> = entries.iter().flat_map(|&(t, id)| [t, id, 0, 0]).collect();
        let mut p = vec![0, 0, 1, 0xBC];
        p.extend_from_slice(&((10 + map.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0x80, 0x01, 0, 0]);
        p.extend_from_slice(&(map.len() as u16).to_be_bytes());
        p.extend_from_slice(&map);
        p.extend_from_slice(&[0; 4]);
        p
    }

    #[test]
    fn packs_of_both_generations_padding_and_end_codes_are_walked_to_no_video() {
        let mut data = mpeg2_pack(7);
        data.extend(mpeg1_pack());
        data.extend(pes(0xBE, &[0xFF; 100]));
        data.extend(pes(0xBF, &[0; 10]));
        data.extend([0, 0, 1, 0xB9]);
        data.extend(mpeg2_pack(0));
        data.extend([0, 0, 1, 0xB9, 0, 0, 0]);
        assert_eq!(remux(&data), Err(RemuxError::NoVideo));
    }

    #[test]
    fn a_foreign_byte_where_a_pack_should_start_is_refused_at_its_offset() {
        let mut data = mpeg2_pack(0);
        data.extend(pes(0xBE, &[0xFF; 20]));
        let at = data.len() as u64;
        data.push(0x47);
        data.extend(mpeg2_pack(0));
        assert_eq!(remux(&data), Err(RemuxError::NotTransportStream { offset: at }));
        let mut cut = mpeg2_pack(0);
        cut.extend(&pes(0xBE, &[0xFF; 20])[..10]);
        assert!(matches!(remux(&cut), Err(RemuxError::Malformed { .. })));
    }

    #[test]
    fn other_codecs_are_refused_from_the_map_or_from_the_payload() {
        let refused = |data: &[u8]| match remux(data) {
            Err(RemuxError::UnsupportedCodec(what)) => what,
            other => panic!("expected a codec refusal, got {other:?}"),
        };
        let mut mapped = mpeg2_pack(0);
        mapped.extend(psm(&[(0x02, 0xE0)]));
        mapped.extend(pes(0xE0, &[0, 0, 1, 0x65, 0x88]));
        assert_eq!(refused(&mapped), "video codec mpeg2video");
        let mut sequence = mpeg2_pack(0);
        sequence.extend(pes(0xE0, &[0, 0, 1, 0xB3, 0x14, 0x00, 0xF0, 0x13, 0, 0, 1, 0xB5, 0x14]));
        assert_eq!(refused(&sequence), "video codec mpeg2video");
        let mut mp2 = mpeg2_pack(0);
        mp2.extend(pes(0xC0, &[0xFF, 0xFD, 0x94, 0x00, 0, 0, 0, 0]));
        assert_eq!(refused(&mp2), "audio codec mp2");
        let mut ac3 = mpeg2_pack(0);
        ac3.extend(pes(0xBD, &[0x80, 1, 0, 1, 0x0B, 0x77]));
        assert_eq!(refused(&ac3), "audio codec ac3");
    }

    #[test]
    fn a_picture_with_no_timestamp_to_start_from_is_refused() {
        let mut data = mpeg2_pack(0);
        data.extend(pes(0xE0, &[0, 0, 0, 1, 0x65, 0x88, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x80]));
        match remux(&data) {
            Err(RemuxError::Malformed { detail, .. }) => assert!(detail.contains("without a timestamp"), "{detail}"),
            other => panic!("expected an undated picture, got {other:?}"),
        }
    }

    /// A hostile stream that never starts a new access unit is refused once the unit passes 32 MiB, not held on.
    #[test]
    fn an_endless_access_unit_is_refused_at_32_mib() {
        let mut remuxer = Remuxer::new();
        let mut out = remuxer.header();
        remuxer.push(&mpeg2_pack(0), &mut out).expect("a pack");
        let packet = pes(0xE0, &[0x11; 60_000]);
        let mut result = Ok(());
        for _ in 0..600 {
            result = remuxer.push(&packet, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(RemuxError::Malformed { .. })), "{result:?}");
    }
}
