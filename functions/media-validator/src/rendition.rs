//! TikTok's photo posts take JPEG and WebP only, so a PNG the guide accepts gets a JPEG copy that the publisher
//! sends instead.
//!
//! The copy is at most [`MAX_WIDTH`] wide: TikTok shows photos at "maximum 1080p" (the contract in
//! `tiktok-content-posting-api.md` §9.2), so more pixels are never seen, and a narrower PNG keeps its size. The PNG is
//! decoded row by row and each row is composited over white and area-averaged into the copy at once, so memory is a
//! few rows plus the copy, whatever the PNG's dimensions. An interlaced (Adam7) PNG's rows arrive in seven passes
//! over the whole picture; they are gathered into one RGB canvas first, at most 48 MiB under the validator's pixel
//! budget. The conversion is CPU work of up to a second: [`render_off_thread`] keeps it off the threads that serve
//! requests.

use std::io::Cursor;

use image::{codecs::jpeg::JpegEncoder, ExtendedColorType, ImageEncoder};
use png::{ColorType, Decoder, InterlaceInfo, Transformations};
use tokio::sync::Semaphore;

use crate::verdict::PNG_MAX_PIXELS;

/// TikTok's photo maximum; wider PNGs are scaled down to it, keeping their aspect ratio, never up.
pub const MAX_WIDTH: u32 = 1080;
const JPEG_QUALITY: u8 = 90;
/// A JPEG stores each side in 16 bits.
const JPEG_MAX_SIDE: u32 = 65_535;
/// Conversions at once per process. Each holds its PNG (≤ 20 MB) and up to 96 MiB of pixels, and keeps a core busy:
/// the runner serves requests on the same two cores, and the Lambda handles one record at a time anyway.
const CONCURRENT_CONVERSIONS: usize = 2;
static CONVERSION_SLOTS: Semaphore = Semaphore::const_new(CONCURRENT_CONVERSIONS);

#[derive(Debug, thiserror::Error)]
pub enum RenditionError {
    #[error("the PNG could not be decoded")]
    Decode(#[source] png::DecodingError),
    #[error("the PNG ended after {rows} of its {height} rows")]
    Truncated { rows: u32, height: u32 },
    #[error("the PNG is {width}×{height}, more than the {PNG_MAX_PIXELS} pixels a PNG may have")]
    TooManyPixels { width: u32, height: u32 },
    #[error("the JPEG would be {width}×{height}, and a JPEG side is at most {JPEG_MAX_SIDE} px")]
    TooLongForJpeg { width: u32, height: u32 },
    #[error("the PNG's colour type {0:?} was not expanded to 8-bit samples")]
    UnexpandedColour(ColorType),
    #[error("the JPEG could not be encoded")]
    Encode(#[source] image::ImageError),
    #[error("the conversion stopped before finishing")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// [`png_to_jpeg`] on a blocking thread, at most [`CONCURRENT_CONVERSIONS`] at once in this process: the Lambda and
/// the local runner both convert through here, so a burst of PNG uploads neither starves the runner's request
/// threads nor multiplies its memory.
pub async fn render_off_thread(png: Vec<u8>) -> Result<Vec<u8>, RenditionError> {
    // The semaphore is never closed, so acquiring only waits.
    let _slot = CONVERSION_SLOTS.acquire().await;
    tokio::task::spawn_blocking(move || png_to_jpeg(&png))
        .await
        .map_err(RenditionError::Interrupted)?
}

/// Decodes a PNG and encodes it as a JPEG at most [`MAX_WIDTH`] wide; transparent pixels are laid over white, as a
/// viewer shows them.
pub fn png_to_jpeg(png: &[u8]) -> Result<Vec<u8>, RenditionError> {
    let (width, height, pixels) = decode_scaled(png)?;
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .map_err(RenditionError::Encode)?;
    Ok(jpeg)
}

/// The PNG as RGB over white, scaled to the rendition's size: (width, height, pixels).
fn decode_scaled(png: &[u8]) -> Result<(u32, u32, Vec<u8>), RenditionError> {
    let mut decoder = Decoder::new(Cursor::new(png));
    // Palette, sub-byte grey and tRNS to 8-bit samples (with alpha where there is transparency), 16-bit to 8.
    decoder.set_transformations(Transformations::normalize_to_color8());
    // The JPEG carries no metadata, and compressed text or ICC chunks are decompression bombs of their own.
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(RenditionError::Decode)?;
    let (width, height) = (reader.info().width, reader.info().height);
    // The verdict refuses these from the header already; checked again because the canvas below is sized by them.
    if u64::from(width) * u64::from(height) > PNG_MAX_PIXELS {
        return Err(RenditionError::TooManyPixels { width, height });
    }
    let (out_width, out_height) = rendition_size(width, height);
    if out_height > JPEG_MAX_SIDE {
        return Err(RenditionError::TooLongForJpeg {
            width: out_width,
            height: out_height,
        });
    }
    let samples = Samples::of(reader.output_color_type().0)?;
    let mut scaler = AreaScaler::new((width, height), (out_width, out_height));
    let mut rgb = vec![0u8; width as usize * 3];
    if reader.info().interlaced {
        let stride = width as usize * 3;
        let mut canvas = vec![u8::MAX; stride * height as usize];
        while let Some(row) = reader.next_interlaced_row().map_err(RenditionError::Decode)? {
            let InterlaceInfo::Adam7(pass) = *row.interlace() else {
                continue;
            };
            let pass_rgb = samples.over_white(row.data(), &mut rgb);
            png::expand_interlaced_row(&mut canvas, stride, pass_rgb, &pass, 24);
        }
        if scaler.is_identity() {
            return Ok((width, height, canvas));
        }
        canvas.chunks_exact(stride).for_each(|line| scaler.push_row(line));
    } else {
        while let Some(row) = reader.next_row().map_err(RenditionError::Decode)? {
            let line = samples.over_white(row.data(), &mut rgb);
            scaler.push_row(line);
        }
    }
    let pixels = scaler.finish()?;
    Ok((out_width, out_height, pixels))
}

/// [`MAX_WIDTH`] wide at most, aspect ratio kept (rounded, at least one row), never enlarged.
pub fn rendition_size(width: u32, height: u32) -> (u32, u32) {
    if width <= MAX_WIDTH {
        return (width, height);
    }
    let scaled = (u64::from(height) * u64::from(MAX_WIDTH) + u64::from(width) / 2) / u64::from(width);
    (MAX_WIDTH, u32::try_from(scaled).unwrap_or(u32::MAX).max(1))
}

/// The 8-bit layouts the decoder's transformations leave.
#[derive(Debug, Clone, Copy)]
enum Samples {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
}

impl Samples {
    fn of(color: ColorType) -> Result<Self, RenditionError> {
        match color {
            ColorType::Grayscale => Ok(Self::Grey),
            ColorType::GrayscaleAlpha => Ok(Self::GreyAlpha),
            ColorType::Rgb => Ok(Self::Rgb),
            ColorType::Rgba => Ok(Self::Rgba),
            ColorType::Indexed => Err(RenditionError::UnexpandedColour(color)),
        }
    }

    /// `row` as RGB composited over white, written to the front of `rgb`; the written part is returned.
    fn over_white<'a>(self, row: &[u8], rgb: &'a mut [u8]) -> &'a [u8] {
        let over = |c: u8, a: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8;
        let pixels = match self {
            Self::Grey => row.len(),
            Self::GreyAlpha => row.len() / 2,
            Self::Rgb => row.len() / 3,
            Self::Rgba => row.len() / 4,
        };
        let out = &mut rgb[..pixels * 3];
        match self {
            Self::Grey => out.chunks_exact_mut(3).zip(row).for_each(|(o, &v)| o.fill(v)),
            Self::GreyAlpha => {
                for (o, p) in out.chunks_exact_mut(3).zip(row.chunks_exact(2)) {
                    o.fill(over(p[0], p[1]));
                }
            }
            Self::Rgb => out.copy_from_slice(&row[..pixels * 3]),
            Self::Rgba => {
                for (o, p) in out.chunks_exact_mut(3).zip(row.chunks_exact(4)) {
                    o[0] = over(p[0], p[3]);
                    o[1] = over(p[1], p[3]);
                    o[2] = over(p[2], p[3]);
                }
            }
        }
        out
    }
}

/// Area averaging (a box filter with exact fractional coverage) fed one RGB source row at a time. Coordinates are
/// integers: a source column spans `[x·out_w, (x+1)·out_w)` and an output column `[ox·src_w, (ox+1)·src_w)`, so
/// every weight is a whole number and an output pixel is its weighted sum divided by `src_w·src_h`. Memory: two
/// output rows of sums and the output picture.
struct AreaScaler {
    src: (u32, u32),
    out: (u32, u32),
    /// Per source column: the output column it starts in and its weight there; the rest of `out_w` goes to the next.
    columns: Vec<(usize, u64)>,
    /// The current source row's horizontal sums, per output sample.
    row: Vec<u64>,
    /// Sums for the output row being filled and the one after it (a source row can straddle their boundary).
    current: Vec<u64>,
    next: Vec<u64>,
    rows_in: u32,
    pixels: Vec<u8>,
}

impl AreaScaler {
    fn new(src: (u32, u32), out: (u32, u32)) -> Self {
        let (src_w, out_w) = (u64::from(src.0), u64::from(out.0));
        let columns = (0..src_w)
            .map(|x| {
                let start = x * out_w;
                let column = start / src_w;
                let boundary = (column + 1) * src_w;
                (column as usize, (start + out_w).min(boundary) - start)
            })
            .collect();
        let samples = out.0 as usize * 3;
        Self {
            src,
            out,
            columns,
            row: vec![0; samples],
            current: vec![0; samples],
            next: vec![0; samples],
            rows_in: 0,
            pixels: Vec::with_capacity(samples * out.1 as usize),
        }
    }

    fn is_identity(&self) -> bool {
        self.src == self.out
    }

    fn push_row(&mut self, rgb: &[u8]) {
        if self.rows_in >= self.src.1 {
            return;
        }
        self.rows_in += 1;
        if self.is_identity() {
            self.pixels.extend_from_slice(rgb);
            return;
        }
        let out_w = u64::from(self.out.0);
        self.row.fill(0);
        for (pixel, &(column, weight)) in rgb.chunks_exact(3).zip(&self.columns) {
            let spill = out_w - weight;
            for (c, &value) in pixel.iter().enumerate() {
                let value = u64::from(value);
                self.row[column * 3 + c] += value * weight;
                if spill > 0 {
                    if let Some(sum) = self.row.get_mut((column + 1) * 3 + c) {
                        *sum += value * spill;
                    }
                }
            }
        }
        let (src_h, out_h) = (u64::from(self.src.1), u64::from(self.out.1));
        let start = u64::from(self.rows_in - 1) * out_h;
        let boundary = (start / src_h + 1) * src_h;
        let weight = (start + out_h).min(boundary) - start;
        let spill = out_h - weight;
        for ((sum, next), &value) in self.current.iter_mut().zip(&mut self.next).zip(&self.row) {
            *sum += value * weight;
            *next += value * spill;
        }
        if start + out_h >= boundary {
            self.emit_row();
        }
    }

    /// Writes the filled output row and moves on to the next.
    fn emit_row(&mut self) {
        let area = u64::from(self.src.0) * u64::from(self.src.1);
        self.pixels
            .extend(self.current.iter().map(|&sum| ((sum + area / 2) / area).min(255) as u8));
        std::mem::swap(&mut self.current, &mut self.next);
        self.next.fill(0);
    }

    fn finish(self) -> Result<Vec<u8>, RenditionError> {
        if self.rows_in < self.src.1 {
            return Err(RenditionError::Truncated {
                rows: self.rows_in,
                height: self.src.1,
            });
        }
        Ok(self.pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(src: (u32, u32), out: (u32, u32), rgb: &[u8]) -> Vec<u8> {
        let mut scaler = AreaScaler::new(src, out);
        rgb.chunks_exact(src.0 as usize * 3)
            .for_each(|row| scaler.push_row(row));
        scaler.finish().expect("every row")
    }

    #[test]
    fn a_wide_picture_is_scaled_to_tiktoks_width_and_a_narrow_one_is_left_alone() {
        assert_eq!(rendition_size(4096, 4096), (1080, 1080));
        assert_eq!(rendition_size(1920, 1080), (1080, 608));
        assert_eq!(rendition_size(1081, 15_520), (1080, 15_506));
        assert_eq!(rendition_size(500, 300), (500, 300));
        assert_eq!(rendition_size(1080, 1920), (1080, 1920));
        assert_eq!(rendition_size(16_777, 1), (1080, 1));
    }

    #[test]
    fn each_output_pixel_is_the_average_of_the_area_it_covers() {
        // 4×2 → 2×1: each output pixel averages a 2×2 block.
        let rgb = [
            [0, 0, 0],
            [100, 100, 100],
            [10, 20, 30],
            [10, 20, 30],
            [200, 200, 200],
            [100, 100, 100],
            [30, 40, 50],
            [30, 40, 50],
        ]
        .concat();
        assert_eq!(scale((4, 2), (2, 1), &rgb), [100, 100, 100, 20, 30, 40]);
    }

    #[test]
    fn fractional_coverage_is_weighted() {
        // 3 → 2 columns: output 0 takes all of column 0 and half of column 1.
        let rgb = [[0, 0, 0], [90, 90, 90], [180, 180, 180]].concat();
        assert_eq!(scale((3, 1), (2, 1), &rgb), [30, 30, 30, 150, 150, 150]);
        // 3 → 2 rows, the same the other way.
        assert_eq!(scale((1, 3), (1, 2), &rgb), [30, 30, 30, 150, 150, 150]);
    }

    #[test]
    fn missing_rows_are_an_error() {
        let mut scaler = AreaScaler::new((2, 4), (1, 2));
        scaler.push_row(&[0; 6]);
        assert!(matches!(
            scaler.finish(),
            Err(RenditionError::Truncated { rows: 1, height: 4 })
        ));
    }
}
