//! Audio headers: the MP4 `esds` descriptor chain with its AudioSpecificConfig, ADTS and MPEG audio frame headers
//! (MPEG-TS/PS payloads), and frame counting for the last packet's duration.

use super::bytes::{Bits, Reader};

const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What an `esds` box says: the codec (from objectTypeIndication) and, for AAC, the decoder's rate and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsDescription {
    pub(crate) object_type: u8,
    pub(crate) sample_rate: Option<u32>,
    pub(crate) channels: Option<u32>,
}

impl EsDescription {
    /// ffprobe's codec name for an MPEG-4 objectTypeIndication (ISO/IEC 14496-1 table 5).
    pub(crate) fn codec(&self) -> Option<&'static str> {
        Some(match self.object_type {
            0x40 | 0x66..=0x68 => "aac",
            0x69 | 0x6B => "mp3",
            0xA5 => "ac3",
            0xA6 => "eac3",
            0xA9 => "dts",
            0xDD => "vorbis",
            0x20 => "mpeg4",
            0x21 => "h264",
            0x60..=0x65 => "mpeg2video",
            0x6A => "mpeg1video",
            0x6C => "mjpeg",
            _ => return None,
        })
    }
}

/// Descriptor lengths are 1–4 bytes of 7 bits each, high bit meaning "more".
fn descriptor_header(r: &mut Reader<'_>) -> Option<(u8, usize)> {
    let tag = r.u8()?;
    let mut len: usize = 0;
    for _ in 0..4 {
        let byte = r.u8()?;
        len = (len << 7) | usize::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            break;
        }
    }
    Some((tag, len))
}

/// Walks ES_Descriptor → DecoderConfigDescriptor → DecoderSpecificInfo. The chain is fixed, so this is three loops
/// over siblings, not a recursive descent; every length is bounded by its parent.
pub(crate) fn parse_esds(payload: &[u8]) -> Option<EsDescription> {
    let mut r = Reader::new(payload);
    r.skip(4)?; // version and flags
    let (tag, len) = descriptor_header(&mut r)?;
    let mut es = if tag == 0x03 {
        let mut es = Reader::new(r.take(len.min(r.remaining()))?);
        es.skip(2)?; // ES_ID
        let flags = es.u8()?;
        if flags & 0x80 != 0 {
            es.skip(2)?; // dependsOn_ES_ID
        }
        if flags & 0x40 != 0 {
            let url_len = usize::from(es.u8()?);
            es.skip(url_len)?;
        }
        if flags & 0x20 != 0 {
            es.skip(2)?; // OCR_ES_Id
        }
        es
    } else {
        // Some writers put the DecoderConfigDescriptor first; read it in place.
        Reader::new(payload.get(4..)?)
    };
    while es.remaining() > 0 {
        let (tag, len) = descriptor_header(&mut es)?;
        let body = es.take(len.min(es.remaining()))?;
        if tag != 0x04 {
            continue;
        }
        let mut config = Reader::new(body);
        let object_type = config.u8()?;
        config.skip(12)?; // streamType, bufferSizeDB, maxBitrate, avgBitrate
        let mut description = EsDescription {
            object_type,
            sample_rate: None,
            channels: None,
        };
        while config.remaining() > 0 {
            let (tag, len) = descriptor_header(&mut config)?;
            let specific = config.take(len.min(config.remaining()))?;
            if tag == 0x05 && matches!(object_type, 0x40 | 0x66..=0x68) {
                if let Some((rate, channels)) = parse_audio_specific_config(specific) {
                    description.sample_rate = rate;
                    description.channels = channels;
                }
            }
        }
        return Some(description);
    }
    None
}

/// AudioSpecificConfig: object type, sampling frequency (index or explicit), channel configuration; for explicit
/// SBR (HE-AAC, object types 5 and 29) the output rate is the extension rate, as decoders and ffprobe report.
fn parse_audio_specific_config(data: &[u8]) -> Option<(Option<u32>, Option<u32>)> {
    let mut bits = Bits::new(data);
    let object_type = read_object_type(&mut bits)?;
    let mut rate = read_sampling_frequency(&mut bits)?;
    let channel_config = bits.read(4)?;
    if matches!(object_type, 5 | 29) {
        rate = read_sampling_frequency(&mut bits)?.or(rate);
    }
    // Channel configuration 0 means "defined in a program config element": leave it to the sample entry.
    let channels = match channel_config {
        0 => None,
        1..=6 => Some(channel_config),
        7 => Some(8),
        _ => None,
    };
    Some((rate, channels))
}

fn read_object_type(bits: &mut Bits<'_>) -> Option<u32> {
    let object_type = bits.read(5)?;
    if object_type == 31 {
        Some(32 + bits.read(6)?)
    } else {
        Some(object_type)
    }
}

fn read_sampling_frequency(bits: &mut Bits<'_>) -> Option<Option<u32>> {
    let index = bits.read(4)?;
    if index == 15 {
        return Some(Some(bits.read(24)?).filter(|&rate| rate > 0));
    }
    Some(AAC_SAMPLE_RATES.get(index as usize).copied())
}

/// An `Opus` sample entry's `dOps`: output channel count.
pub(crate) fn parse_dops_channels(payload: &[u8]) -> Option<u32> {
    payload.get(1).map(|&c| u32::from(c)).filter(|&c| c > 0)
}

/// An audio frame header found at the start of an MPEG-TS/PS audio payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) codec: &'static str,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u32,
    /// Bytes in this frame, header included.
    pub(crate) frame_len: usize,
    /// Audio samples per channel in one frame.
    pub(crate) samples: u32,
}

/// ADTS (AAC in transport streams): 12 sync bits 0xFFF with layer 00.
pub(crate) fn parse_adts(data: &[u8]) -> Option<FrameHeader> {
    let h = data.get(..7)?;
    if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
        return None;
    }
    let rate_index = usize::from((h[2] >> 2) & 0x0F);
    let channels = u32::from(((h[2] & 0x01) << 2) | (h[3] >> 6));
    let frame_len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    let blocks = u32::from(h[6] & 0x03) + 1;
    let sample_rate = *AAC_SAMPLE_RATES.get(rate_index)?;
    (frame_len >= 7).then_some(FrameHeader {
        codec: "aac",
        sample_rate,
        channels,
        frame_len,
        samples: 1024 * blocks,
    })
}

/// MPEG-1/2/2.5 audio layers I–III (`mp1`, `mp2`, `mp3`).
pub(crate) fn parse_mpeg_audio(data: &[u8]) -> Option<FrameHeader> {
    let h = data.get(..4)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0x03; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (h[1] >> 1) & 0x03; // 3 = I, 2 = II, 1 = III
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 0x03);
    let padding = usize::from((h[2] >> 1) & 0x01);
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let base_rate = [44100, 48000, 32000][rate_index];
    let sample_rate = match version {
        3 => base_rate,
        2 => base_rate / 2,
        _ => base_rate / 4,
    };
    const V1_L1: [u32; 15] = [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448];
    const V1_L2: [u32; 15] = [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384];
    const V1_L3: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2_L1: [u32; 15] = [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256];
    const V2_L23: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let table = match (version == 3, layer) {
        (true, 3) => &V1_L1,
        (true, 2) => &V1_L2,
        (true, _) => &V1_L3,
        (false, 3) => &V2_L1,
        (false, _) => &V2_L23,
    };
    let bitrate = *table.get(bitrate_index)? * 1000;
    let (codec, samples, frame_len) = match layer {
        3 => ("mp1", 384, (12 * bitrate / sample_rate) as usize * 4 + padding * 4),
        2 => ("mp2", 1152, (144 * bitrate / sample_rate) as usize + padding),
        _ => {
            let samples = if version == 3 { 1152 } else { 576 };
            ("mp3", samples, (samples / 8 * bitrate / sample_rate) as usize + padding)
        }
    };
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    (frame_len >= 4).then_some(FrameHeader {
        codec,
        sample_rate,
        channels,
        frame_len,
        samples,
    })
}

/// The header of the first frame in a payload, whichever of the two kinds it is.
pub(crate) fn parse_frame_header(data: &[u8]) -> Option<FrameHeader> {
    parse_adts(data).or_else(|| parse_mpeg_audio(data))
}

/// Audio time covered by a payload made of whole frames of the kind `first` describes: frames × samples per frame.
/// Counting stops at the first byte that is not a frame of that kind (a cut-off last frame counts as one).
pub(crate) fn payload_duration_90khz(payload: &[u8], first: &FrameHeader) -> u64 {
    let mut offset = 0usize;
    let mut frames: u64 = 0;
    while let Some(frame) = payload.get(offset..).and_then(parse_frame_header) {
        if frame.codec != first.codec {
            break;
        }
        frames += 1;
        offset = offset.saturating_add(frame.frame_len);
    }
    if first.sample_rate == 0 {
        return 0;
    }
    frames * u64::from(first.samples) * 90_000 / u64::from(first.sample_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esds_from_ffmpeg_gives_aac_rate_and_channels() {
        // ES_Descriptor(ES_ID 1) → DecoderConfig(0x40 audio) → DSI 0x11 0x90 (AAC-LC, 48 kHz, mono).
        let esds = [
            0, 0, 0, 0, 0x03, 0x80, 0x80, 0x80, 0x22, 0x00, 0x01, 0x00, 0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15, 0x00,
            0x00, 0x00, 0x00, 0x01, 0xF4, 0x00, 0x00, 0x01, 0xF4, 0x00, 0x05, 0x80, 0x80, 0x80, 0x02, 0x11, 0x88, 0x06,
            0x80, 0x80, 0x80, 0x01, 0x02,
        ];
        let d = parse_esds(&esds).expect("esds");
        assert_eq!(d.codec(), Some("aac"));
        assert_eq!(d.sample_rate, Some(48000));
        assert_eq!(d.channels, Some(1));
    }

    #[test]
    fn esds_lengths_beyond_the_box_do_not_panic() {
        let esds = [0, 0, 0, 0, 0x03, 0xFF, 0xFF, 0xFF, 0x7F, 0x00];
        assert_eq!(parse_esds(&esds), None);
        for len in 0..12 {
            let _ = parse_esds(&[0, 0, 0, 0, 0x04, 0x0D, 0x6B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..len]);
        }
    }

    #[test]
    fn frame_headers_and_payload_durations() {
        // ADTS, AAC-LC 48 kHz stereo, frame length 10 bytes.
        let adts = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 0, 0, 0];
        let h = parse_adts(&adts).expect("adts");
        assert_eq!((h.sample_rate, h.channels, h.frame_len), (48000, 2, 10));
        let two = [adts, adts].concat();
        assert_eq!(payload_duration_90khz(&two, &h), 2 * 1024 * 90_000 / 48000);
        // MPEG-1 layer II, 192 kbit/s, 48 kHz, mono: 576-byte frames.
        let mp2 = parse_mpeg_audio(&[0xFF, 0xFD, 0xA4, 0xC0]).expect("mp2");
        assert_eq!(
            (mp2.codec, mp2.sample_rate, mp2.channels, mp2.frame_len),
            ("mp2", 48000, 1, 576)
        );
        let mp3 = parse_mpeg_audio(&[0xFF, 0xFB, 0x90, 0x64]).expect("mp3");
        assert_eq!((mp3.codec, mp3.sample_rate, mp3.frame_len), ("mp3", 44100, 417));
    }
}
