//! H.264 parameter sets (through h264-reader) and the codec configuration records of MP4 sample entries.

use h264_reader::{
    nal::sps::SeqParameterSet,
    rbsp::{decode_nal, BitReader},
};

use super::bytes::Reader;

/// What an H.264 sequence parameter set says about the picture.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpsInfo {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// VUI timing: time_scale / (2 × num_units_in_tick), when present and plausible.
    pub(crate) frame_rate: Option<f64>,
    pub(crate) sample_aspect: Option<(u32, u32)>,
    pub(crate) profile_idc: u8,
    pub(crate) constraint_flags: u8,
    pub(crate) level_idc: u8,
}

/// Parses one SPS NAL unit (header byte included, emulation-prevention bytes still in).
pub(crate) fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    // decode_nal needs the header byte plus the three bytes of profile, constraints and level; shorter input is
    // not an SPS (and would underflow its capacity estimate).
    if nal.len() < 4 || nal[0] & 0x1F != 7 {
        return None;
    }
    let rbsp = decode_nal(nal).ok()?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
    let (width, height) = sps.pixel_dimensions().ok()?;
    let frame_rate = sps.fps().filter(|fps| fps.is_finite() && *fps > 0.0 && *fps <= 1000.0);
    let sample_aspect = sps
        .vui_parameters
        .as_ref()
        .and_then(|vui| vui.aspect_ratio_info.as_ref())
        .and_then(|info| info.get())
        .map(|(n, d)| (u32::from(n), u32::from(d)))
        .filter(|&(n, d)| n > 0 && d > 0 && n != d);
    Some(SpsInfo {
        width,
        height,
        frame_rate,
        sample_aspect,
        profile_idc: sps.profile_idc.into(),
        constraint_flags: sps.constraint_flags.into(),
        level_idc: sps.level_idc,
    })
}

/// The AVCDecoderConfigurationRecord (`avcC`): profile and level, and the first SPS when it carries one (`avc3`
/// may not: its parameter sets travel in the samples).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AvcConfig {
    pub(crate) profile_idc: u8,
    pub(crate) constraint_flags: u8,
    pub(crate) level_idc: u8,
    pub(crate) sps: Option<SpsInfo>,
}

pub(crate) fn parse_avcc(payload: &[u8]) -> Option<AvcConfig> {
    let mut r = Reader::new(payload);
    let version = r.u8()?;
    if version != 1 {
        return None;
    }
    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    r.skip(1)?;
    let sps_count = r.u8()? & 0x1F;
    let sps = if sps_count > 0 {
        let len = usize::from(r.u16()?);
        r.take(len).and_then(parse_sps)
    } else {
        None
    };
    Some(AvcConfig {
        profile_idc,
        constraint_flags,
        level_idc,
        sps,
    })
}

/// ffmpeg's names for H.264 profiles, so that facts read the same as ffprobe's.
pub(crate) fn h264_profile_name(profile_idc: u8, constraint_flags: u8) -> String {
    let set1 = constraint_flags & 0x40 != 0;
    let set3 = constraint_flags & 0x10 != 0;
    let name = match profile_idc {
        66 if set1 => "Constrained Baseline",
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 if set3 => "High 10 Intra",
        110 => "High 10",
        122 if set3 => "High 4:2:2 Intra",
        122 => "High 4:2:2",
        244 if set3 => "High 4:4:4 Intra",
        244 => "High 4:4:4 Predictive",
        44 => "CAVLC 4:4:4",
        118 => "Multiview High",
        128 => "Stereo High",
        other => return format!("profile {other}"),
    };
    name.to_owned()
}

/// `3.1` for level_idc 31; level 1b is signalled as 11 with constraint_set3 (Baseline/Main/Extended) or as 9.
pub(crate) fn h264_level_name(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    let set3 = constraint_flags & 0x10 != 0;
    if level_idc == 9 || (level_idc == 11 && set3 && matches!(profile_idc, 66 | 77 | 88)) {
        return "1b".to_owned();
    }
    format!("{}.{}", level_idc / 10, level_idc % 10)
}

/// The HEVCDecoderConfigurationRecord (`hvcC`): general profile and level.
pub(crate) fn parse_hvcc(payload: &[u8]) -> Option<(String, String)> {
    let profile_idc = payload.get(1)? & 0x1F;
    let level_idc = *payload.get(12)?;
    let profile = match profile_idc {
        1 => "Main".to_owned(),
        2 => "Main 10".to_owned(),
        3 => "Main Still Picture".to_owned(),
        4 => "Rext".to_owned(),
        other => format!("profile {other}"),
    };
    // general_level_idc is 30 × the level number: 93 → 3.1, 120 → 4.0.
    let level = format!("{}.{}", level_idc / 30, (level_idc % 30) / 3);
    Some((profile, level))
}

/// The first SPS found in an Annex B byte stream (start codes `00 00 01`), as carried in MPEG-TS/PS payloads.
pub(crate) fn find_annexb_sps(stream: &[u8]) -> Option<SpsInfo> {
    let mut nal_starts = AnnexBNals::new(stream);
    nal_starts.find_map(|nal| {
        if nal.first().is_some_and(|h| h & 0x1F == 7) {
            parse_sps(nal)
        } else {
            None
        }
    })
}

/// Iterates the NAL units of an Annex B stream; the last one runs to the end of the buffer.
pub(crate) struct AnnexBNals<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> AnnexBNals<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: find_start_code(data, 0).unwrap_or(data.len()),
        }
    }
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.pos.checked_add(3)?;
        if start > self.data.len() {
            return None;
        }
        let end = find_start_code(self.data, start).unwrap_or(self.data.len());
        self.pos = end;
        let nal = self.data.get(start..end)?;
        // A four-byte start code leaves a trailing zero on the previous NAL; it is harmless to the parsers.
        Some(nal)
    }
}

/// Position of the next `00 00 01` at or after `from`.
pub(crate) fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let tail = data.get(from..)?;
    tail.windows(3).position(|w| w == [0, 0, 1]).map(|p| p + from)
}

/// Whether the first bytes of a payload are an MPEG-1/2 video sequence header, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MpegVideoSequence {
    pub(crate) codec: &'static str,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) frame_rate: Option<f64>,
}

pub(crate) fn find_mpeg_video_sequence(stream: &[u8]) -> Option<MpegVideoSequence> {
    let mut from = 0;
    while let Some(at) = find_start_code(stream, from) {
        if stream.get(at + 3) == Some(&0xB3) {
            let header = stream.get(at + 4..at + 8)?;
            let width = (u32::from(header[0]) << 4) | (u32::from(header[1]) >> 4);
            let height = ((u32::from(header[1]) & 0x0F) << 8) | u32::from(header[2]);
            let frame_rate = match header[3] & 0x0F {
                1 => Some(24000.0 / 1001.0),
                2 => Some(24.0),
                3 => Some(25.0),
                4 => Some(30000.0 / 1001.0),
                5 => Some(30.0),
                6 => Some(50.0),
                7 => Some(60000.0 / 1001.0),
                8 => Some(60.0),
                _ => None,
            };
            // MPEG-2 streams follow the sequence header with a sequence extension (start code B5, id 1).
            let mut codec = "mpeg1video";
            let mut next = at + 4;
            while let Some(ext) = find_start_code(stream, next) {
                match stream.get(ext + 3) {
                    Some(0xB5) if stream.get(ext + 4).is_some_and(|b| b >> 4 == 1) => {
                        codec = "mpeg2video";
                        break;
                    }
                    // Extensions come before the first group of pictures or picture.
                    Some(0xB8) | Some(0x00) => break,
                    _ => next = ext + 3,
                }
            }
            return Some(MpegVideoSequence {
                codec,
                width,
                height,
                frame_rate,
            });
        }
        from = at + 3;
    }
    None
}

/// Reads a `pasp` box: horizontal and vertical spacing.
pub(crate) fn parse_pasp(payload: &[u8]) -> Option<(u32, u32)> {
    let mut r = Reader::new(payload);
    let (h, v) = (r.u32()?, r.u32()?);
    (h > 0 && v > 0 && h != v).then_some((h, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264's SPS for 1080×1920 High@4.0 with VUI timing for 30 fps.
    const SPS_1080X1920: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x44, 0x03, 0xc7, 0x97, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
    ];

    #[test]
    fn sps_gives_cropped_dimensions_and_vui_frame_rate() {
        let sps = parse_sps(SPS_1080X1920).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1080, 1920));
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.level_idc, 40);
        assert!(
            sps.frame_rate.is_some_and(|fps| (fps - 30.0).abs() < 1e-9),
            "{:?}",
            sps.frame_rate
        );
    }

    #[test]
    fn short_or_foreign_nals_are_not_sps() {
        assert_eq!(parse_sps(&[]), None);
        assert_eq!(parse_sps(&[0x67]), None);
        assert_eq!(parse_sps(&[0x68, 0x64, 0, 0x28]), None);
        for len in 0..SPS_1080X1920.len() {
            let _ = parse_sps(&SPS_1080X1920[..len]);
        }
    }

    #[test]
    fn profile_and_level_names_match_ffprobe() {
        assert_eq!(h264_profile_name(66, 0xC0), "Constrained Baseline");
        assert_eq!(h264_profile_name(100, 0), "High");
        assert_eq!(h264_profile_name(110, 0x10), "High 10 Intra");
        assert_eq!(h264_level_name(100, 0, 40), "4.0");
        assert_eq!(h264_level_name(66, 0x10, 11), "1b");
        assert_eq!(
            parse_hvcc(&[1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93]),
            Some(("Main".into(), "3.1".into()))
        );
    }

    #[test]
    fn annexb_search_finds_the_sps_after_an_access_unit_delimiter() {
        let mut stream = vec![0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1];
        stream.extend_from_slice(SPS_1080X1920);
        stream.extend_from_slice(&[0, 0, 1, 0x68, 0xEB]);
        assert_eq!(
            find_annexb_sps(&stream).map(|s| (s.width, s.height)),
            Some((1080, 1920))
        );
    }
}
