//! Recognising a file from its first bytes, never from its name or declared type.

use super::{
    bytes::{be_u32, le_u32},
    report::{Container, MediaClass, UnreadableReason},
};

/// Enough for every signature below, including five MPEG-TS packets of 192 bytes.
pub(crate) const SNIFF_BYTES: u64 = 4096;

const ISO_TOP_LEVEL: [&[u8; 4]; 8] = [b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"styp"];
const HEIF_BRANDS: [&[u8; 4]; 8] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"];

fn other(code: &'static str, name: &'static str, class: MediaClass) -> Container {
    Container::Other { code, name, class }
}

pub(crate) fn sniff(head: &[u8], size: u64) -> Result<Container, UnreadableReason> {
    if size == 0 || head.is_empty() {
        return Err(UnreadableReason::Empty);
    }
    let starts = |sig: &[u8]| head.starts_with(sig);
    let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);

    if let Some(container) = sniff_iso_bmff(head) {
        return Ok(container);
    }
    if is_transport_stream(head, size) {
        return Ok(Container::MpegTs);
    }
    let known = if starts(&[0x00, 0x00, 0x01, 0xBA]) {
        Container::MpegPs
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Container::Jpeg
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Container::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Container::Gif
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        Container::Webp
    } else if starts(b"RIFF") && at(8, b"AVI ") {
        Container::Avi
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        other("wav", "WAV audio", MediaClass::Unknown)
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // The EBML header names its DocType near the start.
        let header = head.get(..64.min(head.len())).unwrap_or_default();
        if header.windows(4).any(|w| w == b"webm") {
            Container::Webm
        } else {
            Container::Matroska
        }
    } else if starts(&[0x00, 0x00, 0x01, 0xB3]) {
        other("mpegvideo", "raw MPEG video stream (no container)", MediaClass::Video)
    } else if starts(&[0x00, 0x00, 0x00, 0x01]) && head.get(4).is_some_and(|b| b & 0x1F == 7 || b & 0x1F == 9) {
        other("h264", "raw H.264 stream (no container)", MediaClass::Video)
    } else if starts(b"FLV\x01") {
        other("flv", "Flash video (FLV)", MediaClass::Video)
    } else if starts(&[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        other("asf", "Windows Media (ASF/WMV)", MediaClass::Video)
    } else if starts(b"OggS") {
        other("ogg", "Ogg media", MediaClass::Unknown)
    } else if starts(b"fLaC") {
        other("flac", "FLAC audio", MediaClass::Unknown)
    } else if starts(b"ID3") || is_mpeg_audio_frame(head) {
        other("mp3", "MP3 audio", MediaClass::Unknown)
    } else if starts(&[0xFF, 0xF1]) || starts(&[0xFF, 0xF9]) {
        other("aac", "AAC audio (ADTS)", MediaClass::Unknown)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        other("tiff", "TIFF image", MediaClass::Image)
    } else if starts(b"BM") && le_u32(head, 2).is_some_and(|len| u64::from(len) == size) {
        other("bmp", "BMP image", MediaClass::Image)
    } else if starts(b"8BPS") {
        other("psd", "Photoshop document", MediaClass::Image)
    } else if starts(b"%PDF") {
        other("pdf", "PDF document", MediaClass::Unknown)
    } else if starts(b"PK\x03\x04") {
        other("zip", "ZIP archive", MediaClass::Unknown)
    } else {
        return Err(UnreadableReason::Unrecognised);
    };
    Ok(known)
}

/// ISO base media (MP4, MOV, 3GP, HEIF, AVIF): a plausible first box of a known top-level type.
fn sniff_iso_bmff(head: &[u8]) -> Option<Container> {
    let kind: &[u8; 4] = head.get(4..8)?.try_into().ok()?;
    if !ISO_TOP_LEVEL.contains(&kind) {
        return None;
    }
    let size = be_u32(head, 0)?;
    // 0 (to end of file) and 1 (64-bit size follows) are legal; anything else shorter than a header is not a box.
    if (2..8).contains(&size) {
        return None;
    }
    if kind != b"ftyp" {
        // No ftyp: an old QuickTime file (moov, mdat, wide, pnot... first).
        return Some(Container::Mov);
    }
    let major: &[u8; 4] = head.get(8..12)?.try_into().ok()?;
    let brands_end = usize::try_from(size).unwrap_or(usize::MAX).min(head.len());
    let compatible = head.get(16..brands_end).unwrap_or_default();
    let has_brand = |brand: &[u8; 4]| compatible.chunks_exact(4).any(|b| b == brand);
    let container = match major {
        b"qt  " => Container::Mov,
        b"avif" | b"avis" => Container::Avif,
        b"crx " => other("cr3", "Canon raw image (CR3)", MediaClass::Image),
        b"M4A " | b"M4B " | b"M4P " => other("m4a", "MPEG-4 audio (M4A)", MediaClass::Unknown),
        brand if HEIF_BRANDS.contains(&brand) => Container::Heif,
        _ if has_brand(b"qt  ") => Container::Mov,
        _ => Container::Mp4,
    };
    Some(container)
}

/// 0x47 every 188 bytes (or every 192 after a 4-byte timecode: M2TS), checked on up to five packets.
fn is_transport_stream(head: &[u8], size: u64) -> bool {
    [(0usize, 188usize), (4, 192)].into_iter().any(|(first, stride)| {
        let available = usize::try_from(size).unwrap_or(usize::MAX).min(head.len());
        let packets = (available.saturating_sub(first) / stride).min(5);
        // One packet alone could be anything that starts with 'G'.
        packets >= 2 && (0..packets).all(|i| head.get(first + i * stride) == Some(&0x47))
    })
}

/// An MPEG audio frame header: 11 sync bits, a valid layer and bitrate.
fn is_mpeg_audio_frame(head: &[u8]) -> bool {
    match head {
        [0xFF, b1, b2, ..] => b1 & 0xE0 == 0xE0 && (b1 >> 1) & 0x3 != 0 && b2 >> 4 != 0xF && (b2 >> 2) & 0x3 != 0x3,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut b = size.to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 2, 0]);
        for brand in compatible {
            b.extend_from_slice(*brand);
        }
        b
    }

    #[test]
    fn iso_brands_decide_between_mp4_mov_and_heif() {
        assert_eq!(sniff(&ftyp(b"isom", &[b"isom", b"avc1"]), 100), Ok(Container::Mp4));
        assert_eq!(sniff(&ftyp(b"qt  ", &[b"qt  "]), 100), Ok(Container::Mov));
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1", b"heic"]), 100), Ok(Container::Heif));
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1"]), 100), Ok(Container::Avif));
        assert_eq!(
            sniff(b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", 100),
            Ok(Container::Mov)
        );
    }

    #[test]
    fn rejected_formats_are_named() {
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", 100),
            Ok(Container::Webm)
        );
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\xa3\x42\x82\x88matroska", 100),
            Ok(Container::Matroska)
        );
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00AVI LIST", 100), Ok(Container::Avi));
        assert_eq!(sniff(b"GIF89a\x01\x00\x01\x00", 100), Ok(Container::Gif));
        assert_eq!(sniff(b"ID3\x04\x00", 100).map(Container::code), Ok("mp3"));
        assert_eq!(sniff(b"%PDF-1.7", 100).map(Container::code), Ok("pdf"));
    }

    #[test]
    fn garbage_and_empty_files_are_not_guessed() {
        assert_eq!(
            sniff(b"hello world, this is text", 25),
            Err(UnreadableReason::Unrecognised)
        );
        assert_eq!(sniff(b"", 0), Err(UnreadableReason::Empty));
        // A lone 'G' is not a transport stream.
        assert_eq!(sniff(b"Garbage", 7), Err(UnreadableReason::Unrecognised));
    }

    #[test]
    fn transport_streams_need_repeated_sync_bytes() {
        let mut ts = vec![0u8; 188 * 3];
        for i in 0..3 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(sniff(&ts, ts.len() as u64), Ok(Container::MpegTs));
        let mut m2ts = vec![0u8; 192 * 3];
        for i in 0..3 {
            m2ts[4 + i * 192] = 0x47;
        }
        assert_eq!(sniff(&m2ts, m2ts.len() as u64), Ok(Container::MpegTs));
    }
}
