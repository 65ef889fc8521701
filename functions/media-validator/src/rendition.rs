//! TikTok's photo posts take JPEG and WebP only, so a PNG the guide accepts gets a JPEG copy that the publisher
//! sends instead.

use std::io::Cursor;

use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageFormat, ImageReader, Limits, Rgb, RgbImage};

/// A decoded picture this large (RGBA) is far beyond any photo TikTok shows; refusing it bounds the Lambda's memory
/// against decompression bombs (a 20 MB PNG can claim gigapixels).
const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;
const MAX_SIDE: u32 = 16_384;
const JPEG_QUALITY: u8 = 90;

#[derive(Debug, thiserror::Error)]
pub enum RenditionError {
    #[error("the PNG could not be decoded")]
    Decode(#[source] image::ImageError),
    #[error("the JPEG could not be encoded")]
    Encode(#[source] image::ImageError),
}

/// Decodes a PNG and encodes it as a JPEG; transparent pixels are laid over white, as a viewer shows them.
pub fn png_to_jpeg(png: &[u8]) -> Result<Vec<u8>, RenditionError> {
    let mut reader = ImageReader::with_format(Cursor::new(png), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let decoded = reader.decode().map_err(RenditionError::Decode)?;
    let rgb = flatten_on_white(decoded);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(RenditionError::Encode)?;
    Ok(jpeg)
}

fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgba, RgbaImage};

    fn png_of(image: &RgbaImage) -> Vec<u8> {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgba8,
            )
            .expect("encoding a test PNG");
        png
    }

    #[test]
    fn transparent_png_becomes_a_jpeg_on_white_of_the_same_size() {
        let image = RgbaImage::from_pixel(90, 160, Rgba([0, 0, 0, 0]));
        let jpeg = png_to_jpeg(&png_of(&image)).expect("rendition");
        let decoded = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg)
            .expect("a JPEG")
            .into_rgb8();
        assert_eq!(decoded.dimensions(), (90, 160));
        assert!(
            decoded.get_pixel(45, 80).0.iter().all(|&c| c > 240),
            "{:?}",
            decoded.get_pixel(45, 80)
        );
    }

    #[test]
    fn broken_png_is_an_error_not_a_panic() {
        let png = png_of(&RgbaImage::from_pixel(8, 8, Rgba([1, 2, 3, 255])));
        assert!(matches!(
            png_to_jpeg(&png[..png.len() / 2]),
            Err(RenditionError::Decode(_))
        ));
    }
}
