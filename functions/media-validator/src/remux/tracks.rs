//! The container-independent half of the remuxer: H.264 access units and AAC bytes, with the timestamps of the
//! PES packets they came in, become MP4 samples. Transport and program streams both feed it, so timestamps,
//! B-frames, the edit lists and the discontinuity rules are one code.

use std::collections::VecDeque;

use super::{
    malformed, mp4,
    mp4::{SampleTable, VIDEO_TIMESCALE},
    order::{Order, Picture, PictureOrder},
    unwrap_near, Patch, RemuxError, RemuxSummary,
};
use crate::probe::{
    audio::parse_adts,
    h264::{parse_sps, AnnexBNals},
    mpeg::Kind,
};

/// A video access unit or the audio bytes awaiting a whole ADTS frame larger than this are not a real stream.
pub(super) const MAX_PES_BYTES: usize = 32 * 1024 * 1024;
/// A decode-time step larger than this is a discontinuity (a splice, a looped recording), not a frame.
const MAX_STEP: i64 = 10 * 90_000;
/// Samples per track: 10 minutes (the guide's limit) at 60 fps is 36,000 pictures and at 96 kHz 56,250 AAC frames,
/// so this leaves room for slack while bounding the tables a hostile stream of tiny packets could grow (≈ 2 MB).
const MAX_SAMPLES: u32 = 200_000;
/// Parameter sets larger than this are not real.
pub(super) const MAX_PARAMETER_SET: usize = 4096;
/// PES timestamps waiting for the unit that starts in their packet; more are dropped, oldest first (a timestamp
/// no unit claims dates nothing).
const MAX_WAITING_STAMPS: usize = 64;

/// The timestamps of one PES packet and where it started in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) pts: u64,
    /// Absent when it equals the PTS.
    pub(super) dts: Option<u64>,
    pub(super) offset: u64,
}

/// PES timestamps by the elementary-stream position where each packet's payload starts. ISO 13818-1 dates the
/// first access unit (or audio frame) that starts in a packet, so a unit claims the timestamp of the packet it
/// starts in unless an earlier unit did.
#[derive(Debug, Default)]
pub(super) struct Claims {
    waiting: VecDeque<(u64, Stamp)>,
}

impl Claims {
    pub(super) fn push(&mut self, position: u64, stamp: Stamp) {
        if self.waiting.len() == MAX_WAITING_STAMPS {
            self.waiting.pop_front();
        }
        self.waiting.push_back((position, stamp));
    }

    /// The timestamp of a unit starting at `start`, if the packet it starts in carried one not yet claimed.
    pub(super) fn claim(&mut self, start: u64) -> Option<Stamp> {
        while self.waiting.get(1).is_some_and(|&(p, _)| p <= start) {
            self.waiting.pop_front();
        }
        if self.waiting.front().is_some_and(|&(p, _)| p <= start) {
            return self.waiting.pop_front().map(|(_, stamp)| stamp);
        }
        None
    }
}

#[derive(Debug, Default)]
struct Video {
    table: SampleTable,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    width: u32,
    height: u32,
    /// 90 kHz ticks per frame from the SPS timing, for dating a picture before two dated ones gave the step.
    sps_step: Option<i64>,
    order: PictureOrder,
    first_dts: Option<i64>,
    last_dts: Option<i64>,
    last_pts: Option<i64>,
    last_step: Option<i64>,
    min_pts: Option<i64>,
    max_pts: Option<i64>,
    /// The last picture's order count, presentation time, and whether that time was the stream's own.
    anchor: Option<(u32, i64, i64, bool)>,
    /// Presentation ticks per picture-order step, from two dated pictures of one period: `(ticks, steps)`.
    ticks_per_count: Option<(i64, i64)>,
}

#[derive(Debug, Default)]
struct Audio {
    table: SampleTable,
    /// ADTS bytes not yet a whole frame, and their position in the audio elementary stream.
    pending: Vec<u8>,
    pending_position: u64,
    claims: Claims,
    /// Profile, rate index and channel configuration of the first ADTS header: every frame must match.
    config: Option<(u8, u8, u8)>,
    sample_rate: u32,
    first_pts: Option<i64>,
    frames: u64,
}

#[derive(Debug, Default)]
pub(super) struct Tracks {
    video: Video,
    audio: Option<Audio>,
    /// Output bytes emitted so far, header included.
    written: u64,
    header_len: u64,
    /// Which track the last sample written belongs to (chunks are runs of one track).
    last_track: Option<Kind>,
    /// The first timestamp seen: every stream is unwrapped near it.
    anchor: Option<i64>,
}

impl Tracks {
    /// The stream has an audio track to copy (the first one found).
    pub(super) fn add_audio(&mut self) {
        self.audio.get_or_insert_with(Audio::default);
    }

    pub(super) fn header(&mut self) -> Vec<u8> {
        let mut out = mp4::ftyp();
        self.header_len = out.len() as u64;
        out.extend_from_slice(&mp4::mdat_header());
        self.written = out.len() as u64;
        out
    }

    fn anchor(&mut self, raw: u64) -> i64 {
        *self.anchor.get_or_insert(raw as i64)
    }

    /// One H.264 access unit (Annex B), with the timestamps of the PES it starts in when it is the first to start
    /// there. `at` is its source offset, for errors.
    pub(super) fn video_access_unit(
        &mut self,
        unit: &[u8],
        stamp: Option<Stamp>,
        at: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), RemuxError> {
        if self.video.table.sample_count() >= MAX_SAMPLES {
            return Err(malformed(at, "more pictures than a 10-minute video can have"));
        }
        let sample_start = out.len();
        let mut idr = false;
        let mut picture: Option<Option<Picture>> = None;
        let video = &mut self.video;
        for nal in AnnexBNals::new(unit) {
            // A four-byte start code leaves a zero on the NAL before it; trailing zeros are never NAL data.
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let nal = &nal[..end];
            let Some(&header) = nal.first() else { continue };
            match header & 0x1F {
                // Access unit delimiters mean nothing in MP4, where samples are delimited by the tables.
                9 => continue,
                kind @ (1 | 5) => {
                    idr |= kind == 5;
                    if picture.is_none() {
                        picture = Some(video.order.picture(nal));
                    }
                }
                7 => {
                    if video.sps.is_none() {
                        let info = parse_sps(nal).ok_or_else(|| malformed(at, "H.264 sequence parameter set"))?;
                        if nal.len() > MAX_PARAMETER_SET {
                            return Err(malformed(at, "H.264 sequence parameter set too large"));
                        }
                        video.width = info.width;
                        video.height = info.height;
                        video.sps_step = info
                            .frame_rate
                            .map(|fps| (90_000.0 / fps).round() as i64)
                            .filter(|&s| s > 0);
                        video.sps = Some(nal.to_vec());
                    }
                    video.order.parameter_set(nal);
                }
                8 => {
                    if video.pps.is_none() && nal.len() <= MAX_PARAMETER_SET {
                        video.pps = Some(nal.to_vec());
                    }
                    video.order.parameter_set(nal);
                }
                _ => {}
            }
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        let size = out.len() - sample_start;
        if size == 0 {
            return Err(malformed(at, "a video access unit without NAL units"));
        }
        let picture = picture.flatten();
        let (dts, pts, dated) = match stamp {
            Some(stamp) => {
                let dts_raw = stamp.dts.unwrap_or(stamp.pts);
                let anchor = self.anchor(dts_raw);
                let video = &mut self.video;
                let dts = unwrap_near(dts_raw, video.last_dts.unwrap_or(anchor));
                (dts, unwrap_near(stamp.pts, dts), true)
            }
            None => {
                let (dts, pts) = self.video.date(picture, at)?;
                (dts, pts, false)
            }
        };
        let video = &mut self.video;
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
            video.last_step = Some(step);
        }
        video.remember_order(picture, pts, dated);

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
        video.max_pts = Some(video.max_pts.map_or(pts, |m| m.max(pts)));
        video.last_dts = Some(dts);
        video.last_pts = Some(pts);
        Ok(())
    }

    /// Audio PES payload: ADTS frames, which may run on into the next packet. `stamp` dates the first frame
    /// starting in this payload.
    pub(super) fn audio_payload(
        &mut self,
        payload: &[u8],
        stamp: Option<Stamp>,
        at: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), RemuxError> {
        let Some(mut audio) = self.audio.take() else {
            return Ok(());
        };
        let result = self.audio_frames(&mut audio, payload, stamp, at, out);
        self.audio = Some(audio);
        result
    }

    fn audio_frames(
        &mut self,
        audio: &mut Audio,
        payload: &[u8],
        stamp: Option<Stamp>,
        at: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), RemuxError> {
        if let Some(stamp) = stamp {
            audio
                .claims
                .push(audio.pending_position + audio.pending.len() as u64, stamp);
        }
        if audio.pending.len() + payload.len() > MAX_PES_BYTES {
            return Err(malformed(at, "more than 32 MiB of audio without a whole ADTS frame"));
        }
        audio.pending.extend_from_slice(payload);
        let mut consumed = 0;
        while audio.pending.len() - consumed >= 7 {
            let frames = &audio.pending[consumed..];
            let header = parse_adts(frames).ok_or_else(|| malformed(at, "ADTS header"))?;
            if frames.len() < header.frame_len {
                break;
            }
            let h = &frames[..7];
            let config = (h[2] >> 6, (h[2] >> 2) & 0x0F, ((h[2] & 0x01) << 2) | (h[3] >> 6));
            let header_len = if h[1] & 0x01 == 0 { 9 } else { 7 };
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
            if header.frame_len < header_len {
                return Err(malformed(at, "an ADTS frame shorter than its header"));
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
            let claimed = audio.claims.claim(audio.pending_position + consumed as u64);
            self.date_audio_frame(audio, claimed, at)?;
            if audio.table.sample_count() >= MAX_SAMPLES {
                return Err(malformed(at, "more audio frames than 10 minutes can have"));
            }
            let raw = &audio.pending[consumed + header_len..consumed + header.frame_len];
            let offset = self.written;
            out.extend_from_slice(raw);
            self.written += raw.len() as u64;
            let continues = self.last_track == Some(Kind::Audio);
            self.last_track = Some(Kind::Audio);
            audio.table.add(raw.len() as u32, offset, continues);
            audio.table.durations.push(1024);
            audio.frames += 1;
            consumed += header.frame_len;
        }
        audio.pending.drain(..consumed);
        audio.pending_position += consumed as u64;
        Ok(())
    }

    /// Checks a dated frame against the time the frames before it add up to: more than one frame off is a gap.
    fn date_audio_frame(&mut self, audio: &mut Audio, stamp: Option<Stamp>, at: u64) -> Result<(), RemuxError> {
        let Some(stamp) = stamp else {
            return match audio.first_pts {
                Some(_) => Ok(()),
                None => Err(malformed(at, "the first audio frame has no timestamp")),
            };
        };
        let anchor = self.anchor(stamp.pts);
        let Some(first) = audio.first_pts else {
            audio.first_pts = Some(unwrap_near(stamp.pts, anchor));
            return Ok(());
        };
        let rate = u64::from(audio.sample_rate.max(1));
        let expected = first + (audio.frames * 1024 * 90_000 / rate) as i64;
        let pts = unwrap_near(stamp.pts, expected);
        let frame = (1024 * 90_000 / rate) as i64;
        if (pts - expected).abs() > frame {
            return Err(RemuxError::Discontinuity {
                offset: stamp.offset,
                detail: format!("audio jumps by {} ticks of 90 kHz", pts - expected),
            });
        }
        Ok(())
    }

    /// Completes the tables and appends the `moov`. An ADTS frame cut off by the end of the file is left out.
    pub(super) fn finish(mut self, out: &mut Vec<u8>) -> Result<RemuxSummary, RemuxError> {
        let video = &mut self.video;
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
        Ok(RemuxSummary {
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
        })
    }
}

impl Video {
    /// Decode and presentation time of a picture its container left undated: one frame after the last, shown
    /// where its picture order count puts it relative to the last picture of its period. Only a constant frame
    /// rate makes that exact, which is what cameras and encoders write; anything it cannot place is refused.
    fn date(&self, picture: Option<Picture>, at: u64) -> Result<(i64, i64), RemuxError> {
        let undated = |why: &str| malformed(at, &format!("a picture without a timestamp {why}"));
        let (Some(last_dts), Some(last_pts)) = (self.last_dts, self.last_pts) else {
            return Err(undated("starts the stream"));
        };
        let step = self
            .last_step
            .or(self.sps_step)
            .ok_or_else(|| undated("before the frame rate is known"))?;
        let picture = picture.ok_or_else(|| undated("and a slice header that cannot be read"))?;
        if picture.field {
            return Err(RemuxError::UnsupportedCodec(
                "interlaced H.264 whose fields are not dated one by one".into(),
            ));
        }
        let dts = last_dts + step;
        let pts = match picture.order {
            Order::Decoding => dts + (last_pts - last_dts),
            Order::Count { poc, period, .. } => match self.anchor {
                Some((anchor_period, anchor_poc, anchor_pts, _)) if anchor_period == period => {
                    let (ticks, steps) = self.ticks_per_count.unwrap_or((step, 2));
                    anchor_pts + (poc - anchor_poc) * ticks / steps
                }
                // The first picture of a period (an IDR) follows every picture before it.
                _ if picture.idr => self.max_pts.unwrap_or(last_pts) + step,
                _ => return Err(undated("that no earlier picture of its group dates")),
            },
            Order::Unknown => return Err(undated("in a stream of picture order type 1")),
        };
        Ok((dts, pts))
    }

    fn remember_order(&mut self, picture: Option<Picture>, pts: i64, dated: bool) {
        let Some(Picture {
            order:
                Order::Count {
                    poc,
                    period,
                    resets_after,
                },
            ..
        }) = picture
        else {
            self.anchor = None;
            return;
        };
        if let Some((anchor_period, anchor_poc, anchor_pts, anchor_dated)) = self.anchor {
            let (ticks, steps) = (pts - anchor_pts, poc - anchor_poc);
            if dated && anchor_dated && anchor_period == period && steps != 0 && ticks.signum() == steps.signum() {
                self.ticks_per_count = Some((ticks, steps));
            }
        }
        self.anchor = Some(if resets_after {
            (period + 1, 0, pts, dated)
        } else {
            (period, poc, pts, dated)
        });
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

    fn stamp(pts: u64) -> Stamp {
        Stamp {
            pts,
            dts: None,
            offset: 0,
        }
    }

    #[test]
    fn a_unit_claims_the_timestamp_of_the_packet_it_starts_in_once() {
        let mut claims = Claims::default();
        claims.push(0, stamp(1));
        claims.push(100, stamp(2));
        assert_eq!(claims.claim(0).map(|s| s.pts), Some(1));
        assert_eq!(claims.claim(40), None, "a second unit in the first packet is undated");
        assert_eq!(claims.claim(150).map(|s| s.pts), Some(2));
        claims.push(200, stamp(3));
        claims.push(300, stamp(4));
        assert_eq!(
            claims.claim(320).map(|s| s.pts),
            Some(4),
            "a packet no unit started in dates nothing"
        );
    }
}
