//! The JPEG copy of a PNG: every colour type and bit depth, interlaced or not, laid over white, at most 1080 px wide.

mod support;

use image::{ImageFormat, RgbImage};
use media_validator::rendition::{png_to_jpeg, RenditionError};
use png::{BitDepth, ColorType};
use support::media::PngSpec;

fn decoded(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("the rendition is not a JPEG: {e}"))
        .into_rgb8()
}

fn rendition_of(png: &[u8]) -> RgbImage {
    decoded(&png_to_jpeg(png).unwrap_or_else(|e| panic!("rendition: {e}")))
}

fn assert_close(label: &str, got: [u8; 3], want: [u8; 3]) {
    let off = got.iter().zip(want).map(|(&g, w)| g.abs_diff(w)).max().unwrap_or(0);
    // A uniform picture survives JPEG within a step or two.
    assert!(off <= 3, "{label}: got {got:?}, expected {want:?}");
}

#[test]
fn every_colour_type_and_bit_depth_becomes_the_same_colours_in_the_jpeg() {
    let palette = vec![10, 20, 30, 200, 100, 50, 0, 0, 0];
    let cases: Vec<(&str, PngSpec, [u16; 4], [u8; 3])> = vec![
        (
            "grey 1-bit",
            PngSpec::new(16, 9, ColorType::Grayscale, BitDepth::One),
            [1, 0, 0, 0],
            [255; 3],
        ),
        (
            "grey 2-bit",
            PngSpec::new(16, 9, ColorType::Grayscale, BitDepth::Two),
            [1, 0, 0, 0],
            [85; 3],
        ),
        (
            "grey 4-bit",
            PngSpec::new(16, 9, ColorType::Grayscale, BitDepth::Four),
            [8, 0, 0, 0],
            [136; 3],
        ),
        (
            "grey 8-bit",
            PngSpec::new(16, 9, ColorType::Grayscale, BitDepth::Eight),
            [100, 0, 0, 0],
            [100; 3],
        ),
        (
            "grey 16-bit",
            PngSpec::new(16, 9, ColorType::Grayscale, BitDepth::Sixteen),
            [100 << 8 | 0xFF, 0, 0, 0],
            [100; 3],
        ),
        (
            "grey + alpha 8-bit, half transparent black",
            PngSpec::new(16, 9, ColorType::GrayscaleAlpha, BitDepth::Eight),
            [0, 128, 0, 0],
            [127; 3],
        ),
        (
            "grey + alpha 16-bit, half transparent black",
            PngSpec::new(16, 9, ColorType::GrayscaleAlpha, BitDepth::Sixteen),
            [0, 128 << 8, 0, 0],
            [127; 3],
        ),
        (
            "RGB 8-bit",
            PngSpec::new(16, 9, ColorType::Rgb, BitDepth::Eight),
            [200, 100, 50, 0],
            [200, 100, 50],
        ),
        (
            "RGB 16-bit",
            PngSpec::new(16, 9, ColorType::Rgb, BitDepth::Sixteen),
            [200 << 8, 100 << 8, 50 << 8, 0],
            [200, 100, 50],
        ),
        (
            "RGBA 8-bit, half transparent blue",
            PngSpec::new(16, 9, ColorType::Rgba, BitDepth::Eight),
            [0, 0, 255, 128],
            [127, 127, 255],
        ),
        (
            "RGBA 16-bit, opaque",
            PngSpec::new(16, 9, ColorType::Rgba, BitDepth::Sixteen),
            [200 << 8, 100 << 8, 50 << 8, 0xFFFF],
            [200, 100, 50],
        ),
        (
            "palette 8-bit",
            PngSpec {
                palette: Some(palette.clone()),
                ..PngSpec::new(16, 9, ColorType::Indexed, BitDepth::Eight)
            },
            [1, 0, 0, 0],
            [200, 100, 50],
        ),
        (
            "palette 1-bit",
            PngSpec {
                palette: Some(palette[..6].to_vec()),
                ..PngSpec::new(16, 9, ColorType::Indexed, BitDepth::One)
            },
            [1, 0, 0, 0],
            [200, 100, 50],
        ),
        (
            "palette 4-bit with a transparent entry",
            PngSpec {
                palette: Some(palette.clone()),
                trns: Some(vec![255, 255, 0]),
                ..PngSpec::new(16, 9, ColorType::Indexed, BitDepth::Four)
            },
            [2, 0, 0, 0],
            [255; 3],
        ),
        (
            "RGB with a transparent colour key (tRNS)",
            PngSpec {
                trns: Some(vec![0, 7, 0, 7, 0, 7]),
                ..PngSpec::new(16, 9, ColorType::Rgb, BitDepth::Eight)
            },
            [7, 7, 7, 0],
            [255; 3],
        ),
    ];
    for (label, spec, sample, want) in cases {
        for spec in [spec.clone(), spec.interlaced()] {
            let label = format!("{label}{}", if spec.interlaced { ", interlaced" } else { "" });
            let jpeg = rendition_of(&spec.encode(|_, _| sample));
            assert_eq!(jpeg.dimensions(), (16, 9), "{label}");
            assert_close(&label, jpeg.get_pixel(8, 4).0, want);
        }
    }
}

fn gradient(x: u32, y: u32) -> [u16; 4] {
    [(x * 7 % 256) as u16, (y * 5 % 256) as u16, ((x + y) % 256) as u16, 255]
}

#[test]
fn an_interlaced_png_gives_the_same_jpeg_as_the_progressive_one() {
    // Odd sizes leave some Adam7 passes partial or empty; 2000 wide goes through the downscaling.
    for (width, height) in [(1, 1), (3, 2), (37, 23), (2000, 30)] {
        let spec = PngSpec::new(width, height, ColorType::Rgba, BitDepth::Eight);
        let progressive = png_to_jpeg(&spec.encode(gradient)).expect("progressive");
        let interlaced = png_to_jpeg(&spec.clone().interlaced().encode(gradient)).expect("interlaced");
        assert!(progressive == interlaced, "{width}×{height}");
    }
}

#[test]
fn transparent_png_becomes_a_jpeg_on_white_of_the_same_size() {
    let png = PngSpec::new(90, 160, ColorType::Rgba, BitDepth::Eight).encode(|_, _| [0, 0, 0, 0]);
    let jpeg = rendition_of(&png);
    assert_eq!(jpeg.dimensions(), (90, 160));
    assert!(
        jpeg.get_pixel(45, 80).0.iter().all(|&c| c > 250),
        "{:?}",
        jpeg.get_pixel(45, 80)
    );
}

#[test]
fn a_4096_square_png_becomes_a_1080_square_jpeg_with_its_colours_averaged() {
    // Alternate black and white columns: an output column covers 3.79 of them, so it is 120–135, and the picture
    // as a whole stays mid grey (area averaging keeps the mean).
    let png =
        PngSpec::new(4096, 4096, ColorType::Rgb, BitDepth::Eight)
            .encode(|x, _| if x % 2 == 0 { [0; 4] } else { [255; 4] });
    let jpeg = rendition_of(&png);
    assert_eq!(jpeg.dimensions(), (1080, 1080));
    let mean = jpeg.as_raw().iter().map(|&c| f64::from(c)).sum::<f64>() / jpeg.as_raw().len() as f64;
    assert!((mean - 127.5).abs() < 1.0, "mean {mean}");
    assert!(jpeg.pixels().all(|p| (115..=140).contains(&p.0[0])));
}

#[test]
fn a_wide_png_keeps_its_aspect_ratio() {
    let png = PngSpec::new(1920, 1080, ColorType::Rgb, BitDepth::Eight).encode(gradient);
    assert_eq!(rendition_of(&png).dimensions(), (1080, 608));
}

#[test]
fn a_png_within_1080_px_keeps_its_size() {
    let png = PngSpec::new(500, 300, ColorType::Rgb, BitDepth::Eight).encode(gradient);
    assert_eq!(rendition_of(&png).dimensions(), (500, 300));
    let portrait = PngSpec::new(1080, 1920, ColorType::Rgb, BitDepth::Eight).encode(gradient);
    assert_eq!(rendition_of(&portrait).dimensions(), (1080, 1920));
}

#[test]
fn a_truncated_png_is_an_error_not_a_panic() {
    for spec in [
        PngSpec::new(64, 64, ColorType::Rgba, BitDepth::Eight),
        PngSpec::new(64, 64, ColorType::Rgba, BitDepth::Eight).interlaced(),
    ] {
        let png = spec.encode(gradient);
        for cut in [png.len() / 2, png.len() - 13, 40] {
            assert!(
                matches!(png_to_jpeg(&png[..cut]), Err(RenditionError::Decode(_))),
                "cut at {cut} of {}",
                png.len()
            );
        }
    }
}

/// A header and a few bytes of image data: a refusal can only come from the header.
fn header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(ColorType::Grayscale);
    let mut writer = encoder.write_header().expect("header");
    writer
        .write_chunk(png::chunk::IDAT, &support::media::zlib(&[0; 16]))
        .expect("IDAT");
    writer.finish().expect("IEND");
    out
}

#[test]
fn a_png_over_the_pixel_budget_is_refused_before_decoding() {
    assert!(matches!(
        png_to_jpeg(&header_only(4097, 4096)),
        Err(RenditionError::TooManyPixels {
            width: 4097,
            height: 4096
        })
    ));
}

#[test]
fn a_png_too_long_for_a_jpeg_is_refused_before_decoding() {
    assert!(matches!(
        png_to_jpeg(&header_only(1, 70_000)),
        Err(RenditionError::TooLongForJpeg {
            width: 1,
            height: 70_000
        })
    ));
}
