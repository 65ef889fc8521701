//! Image headers: JPEG (marker walk to the frame header, EXIF orientation on the way), PNG (IHDR), WebP (VP8,
//! VP8L, VP8X) and GIF (logical screen). Images up to the guide's 20 MB are read whole first, because the
//! fingerprint and the PNG rendition need every byte; larger ones are read header by header.

use super::{
    bytes::{be_u16, be_u32, le_u16, le_u32, Reader},
    corrupt, fingerprint,
    report::{Container, ImageInfo, ProbeReport},
    truncated,
    window::Windows,
    Halt, HOP_READ, IMAGE_WHOLE_READ_LIMIT,
};

const MAX_JPEG_SEGMENTS: u32 = 10_000;
/// Pixel counts beyond 2^31 per side are not images anyone uploads; they are crafted headers.
const MAX_SIDE: u32 = 1 << 30;

pub(super) fn probe(w: &Windows, container: Container) -> Result<ProbeReport, Halt> {
    let size = w.size();
    let mut report = ProbeReport::new(container, size);
    let accepted_format = matches!(container, Container::Jpeg | Container::Png | Container::Webp);
    if accepted_format && size <= IMAGE_WHOLE_READ_LIMIT {
        let whole = w.bytes(0..size)?;
        report.fingerprint = Some(fingerprint(size, &[whole]));
    }
    let info = match container {
        Container::Jpeg => jpeg(w)?,
        Container::Png => png(w)?,
        Container::Webp => webp(w)?,
        _ => gif(w)?,
    };
    if info.width == 0 || info.height == 0 || info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(corrupt(
            container,
            format!("it declares a {}×{} picture", info.width, info.height),
        ));
    }
    report.image = Some(info);
    Ok(report)
}

/// Bytes `range` of the image, reading ahead when they are not held; EOF inside them means a cut file.
fn image_bytes(w: &Windows, container: Container, start: u64, len: u64) -> Result<&[u8], Halt> {
    let end = start.saturating_add(len);
    if end > w.size() {
        return Err(truncated(
            container,
            format!("its header needs {end} bytes but the file has {}", w.size()),
        ));
    }
    w.bytes_reading_ahead(start..end, HOP_READ)
}

fn jpeg(w: &Windows) -> Result<ImageInfo, Halt> {
    let container = Container::Jpeg;
    let mut orientation = None;
    let mut at = 2u64;
    for _ in 0..MAX_JPEG_SEGMENTS {
        // Markers may be preceded by any number of 0xFF fill bytes.
        let marker = loop {
            let byte = image_bytes(w, container, at, 2)?;
            match byte {
                [0xFF, 0xFF] => at += 1,
                [0xFF, marker] => break *marker,
                _ => return Err(corrupt(container, format!("expected a marker at byte {at}"))),
            }
        };
        at += 2;
        match marker {
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => continue,
            0xD9 | 0xDA => return Err(corrupt(container, "it has no frame header before its image data")),
            _ => {}
        }
        let len = u64::from(be_u16(image_bytes(w, container, at, 2)?, 0).unwrap_or(0));
        if len < 2 {
            return Err(corrupt(container, format!("a segment at byte {at} has length {len}")));
        }
        let is_frame_header = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_frame_header {
            let sof = image_bytes(w, container, at + 2, 5)?;
            let height = u32::from(be_u16(sof, 1).unwrap_or(0));
            let width = u32::from(be_u16(sof, 3).unwrap_or(0));
            return Ok(ImageInfo {
                width,
                height,
                orientation,
            });
        }
        if marker == 0xE1 && orientation.is_none() {
            let segment = image_bytes(w, container, at + 2, len - 2)?;
            orientation = exif_orientation(segment);
        }
        at += len;
    }
    Err(corrupt(
        container,
        format!("more than {MAX_JPEG_SEGMENTS} segments before the frame header"),
    ))
}

/// EXIF IFD0 tag 0x0112 (Orientation) from an APP1 segment, in either byte order.
fn exif_orientation(app1: &[u8]) -> Option<u8> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    let little = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| if little { le_u16(tiff, at) } else { be_u16(tiff, at) };
    let u32_at = |at: usize| if little { le_u32(tiff, at) } else { be_u32(tiff, at) };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    // Bounded by the segment: each entry is 12 bytes.
    for i in 0..count.min(tiff.len() / 12) {
        let entry = ifd.checked_add(2 + i * 12)?;
        if u16_at(entry)? == 0x0112 {
            let value = u16_at(entry + 8)?;
            return u8::try_from(value).ok().filter(|v| (1..=8).contains(v));
        }
    }
    None
}

fn png(w: &Windows) -> Result<ImageInfo, Halt> {
    let container = Container::Png;
    let header = image_bytes(w, container, 0, 24)?;
    if header.get(12..16) != Some(b"IHDR") {
        return Err(corrupt(container, "its first chunk is not IHDR"));
    }
    let mut r = Reader::new(header.get(16..).unwrap_or_default());
    let (width, height) = (r.u32().unwrap_or(0), r.u32().unwrap_or(0));
    Ok(ImageInfo {
        width,
        height,
        orientation: None,
    })
}

fn webp(w: &Windows) -> Result<ImageInfo, Halt> {
    let container = Container::Webp;
    let header = image_bytes(w, container, 0, 30)?;
    let chunk = header.get(12..16).unwrap_or_default();
    let data = header.get(20..).unwrap_or_default();
    let (width, height) = match chunk {
        b"VP8 " => {
            // A key frame: 3 bytes of frame tag, the start code 9D 01 2A, then 14-bit width and height.
            if data.get(3..6) != Some(&[0x9D, 0x01, 0x2A]) {
                return Err(corrupt(container, "its VP8 frame has no start code"));
            }
            (
                u32::from(le_u16(data, 6).unwrap_or(0) & 0x3FFF),
                u32::from(le_u16(data, 8).unwrap_or(0) & 0x3FFF),
            )
        }
        b"VP8L" => {
            if data.first() != Some(&0x2F) {
                return Err(corrupt(container, "its lossless header has no signature"));
            }
            let bits = le_u32(data, 1).unwrap_or(0);
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            let canvas = |at: usize| {
                data.get(at..at + 3)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]) + 1)
            };
            (canvas(4).unwrap_or(0), canvas(7).unwrap_or(0))
        }
        _ => return Err(corrupt(container, "its first chunk is not VP8, VP8L or VP8X")),
    };
    Ok(ImageInfo {
        width,
        height,
        orientation: None,
    })
}

fn gif(w: &Windows) -> Result<ImageInfo, Halt> {
    let header = image_bytes(w, Container::Gif, 0, 10)?;
    let width = u32::from(le_u16(header, 6).unwrap_or(0));
    let height = u32::from(le_u16(header, 8).unwrap_or(0));
    Ok(ImageInfo {
        width,
        height,
        orientation: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_orientation_in_both_byte_orders() {
        let big = b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0";
        assert_eq!(exif_orientation(big), Some(6));
        let little = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x08\0\0\0";
        assert_eq!(exif_orientation(little), Some(8));
        // An entry count far beyond the segment is bounded by its length.
        let lying = b"Exif\0\0MM\0*\0\0\0\x08\xFF\xFF";
        assert_eq!(exif_orientation(lying), None);
        assert_eq!(exif_orientation(b"Exif\0\0MM\0*\xFF\xFF\xFF\xFF"), None);
    }
}
