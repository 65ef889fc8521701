//! Synthetic media built in memory: JPEG and PNG through the `image` crate, and MP4 files box by box (so tests can
//! also build the hostile ones).

use image::{codecs::jpeg::JpegEncoder, codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| [(i % 251) as u8, (i % 13) as u8 * 19, 128])
        .collect();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80)
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .unwrap_or_else(|e| panic!("encoding a test JPEG: {e}"));
    out
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| [(i % 251) as u8, 40, 200, (i % 256) as u8])
        .collect();
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, ExtendedColorType::Rgba8)
        .unwrap_or_else(|e| panic!("encoding a test PNG: {e}"));
    out
}

/// A box: 32-bit size, type, payload.
pub fn bx(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&u32::try_from(8 + len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// A full box: version and flags first.
pub fn full(kind: &[u8; 4], version: u8, flags: u32, parts: &[&[u8]]) -> Vec<u8> {
    let mut head = flags.to_be_bytes();
    head[0] = version;
    let mut all: Vec<&[u8]> = vec![&head];
    all.extend_from_slice(parts);
    bx(kind, &all)
}

/// x264's SPS for 1080×1920 High@4.0.
pub const SPS_1080X1920: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x44, 0x03, 0xc7, 0x97, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00,
    0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
];

pub const IDENTITY: (i32, i32) = (0x10000, 0);
/// A phone held upright: stored landscape, shown turned 90° clockwise.
pub const PORTRAIT_PHONE: (i32, i32) = (0, 0x10000);

#[derive(Debug, Clone)]
pub struct SyntheticMovie {
    pub width: u16,
    pub height: u16,
    pub timescale: u32,
    pub frames: u32,
    pub frame_ticks: u32,
    pub audio: bool,
    pub matrix_ab: (i32, i32),
    pub moov_first: bool,
    pub mdat_bytes: usize,
}

impl Default for SyntheticMovie {
    fn default() -> Self {
        Self {
            width: 1080,
            height: 1920,
            timescale: 15_360,
            frames: 60,
            frame_ticks: 512,
            audio: true,
            matrix_ab: IDENTITY,
            moov_first: true,
            mdat_bytes: 64 * 1024,
        }
    }
}

fn matrix((a, b): (i32, i32)) -> Vec<u8> {
    // a b u / c d v / x y w, with c = -b and d = a for a pure rotation.
    [a, b, 0, -b, a, 0, 0, 0, 0x4000_0000]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

pub fn avc_sample_entry(width: u16, height: u16) -> Vec<u8> {
    let mut avcc = vec![1, 0x64, 0x00, 0x28, 0xFF, 0xE1];
    avcc.extend_from_slice(&(SPS_1080X1920.len() as u16).to_be_bytes());
    avcc.extend_from_slice(SPS_1080X1920);
    avcc.extend_from_slice(&[1, 0, 4, 0x68, 0xeb, 0xe3, 0xcb]);
    let mut fixed = vec![0u8; 78];
    fixed[7] = 1; // data reference index
    fixed[24..26].copy_from_slice(&width.to_be_bytes());
    fixed[26..28].copy_from_slice(&height.to_be_bytes());
    fixed[74..76].copy_from_slice(&24u16.to_be_bytes());
    fixed[76..78].copy_from_slice(&(-1i16).to_be_bytes());
    bx(b"avc1", &[&fixed, &bx(b"avcC", &[&avcc])])
}

fn aac_sample_entry() -> Vec<u8> {
    let mut fixed = vec![0u8; 28];
    fixed[7] = 1;
    fixed[17] = 2; // channels
    fixed[19] = 16; // sample size
    fixed[24..28].copy_from_slice(&(48_000u32 << 16).to_be_bytes());
    let esds_body = [
        0x03, 0x19, 0x00, 0x01, 0x00, 0x04, 0x11, 0x40, 0x15, 0x00, 0x00, 0x00, 0x00, 0x01, 0xF4, 0x00, 0x00, 0x01,
        0xF4, 0x00, 0x05, 0x02, 0x11, 0x90, 0x06, 0x01, 0x02,
    ];
    bx(b"mp4a", &[&fixed, &full(b"esds", 0, 0, &[&esds_body])])
}

fn track(
    id: u32,
    handler: &[u8; 4],
    entry: &[u8],
    movie: &SyntheticMovie,
    media_timescale: u32,
    samples: u32,
    ticks: u32,
) -> Vec<u8> {
    let duration_ms = u64::from(movie.frames) * u64::from(movie.frame_ticks) * 1000 / u64::from(movie.timescale);
    let mut tkhd = u32s(&[0, 0, id, 0, duration_ms as u32, 0, 0, 0, 0]);
    tkhd.extend_from_slice(&matrix(movie.matrix_ab));
    let (w, h) = if handler == b"vide" {
        (movie.width, movie.height)
    } else {
        (0, 0)
    };
    tkhd.extend_from_slice(&u32s(&[u32::from(w) << 16, u32::from(h) << 16]));
    let mdhd = u32s(&[0, 0, media_timescale, samples * ticks, 0x55C4_0000]);
    let hdlr = [&[0u8; 4][..], handler, &[0u8; 13][..]].concat();
    let stsd = full(b"stsd", 0, 0, &[&1u32.to_be_bytes(), entry]);
    let stts = full(b"stts", 0, 0, &[&u32s(&[1, samples, ticks])]);
    let stsz = full(b"stsz", 0, 0, &[&u32s(&[100, samples])]);
    let stbl = bx(b"stbl", &[&stsd, &stts, &stsz]);
    let minf = bx(b"minf", &[&stbl]);
    let mdia = bx(
        b"mdia",
        &[&full(b"mdhd", 0, 0, &[&mdhd]), &full(b"hdlr", 0, 0, &[&hdlr]), &minf],
    );
    bx(b"trak", &[&full(b"tkhd", 0, 3, &[&tkhd]), &mdia])
}

pub fn moov(movie: &SyntheticMovie) -> Vec<u8> {
    let duration_ms = u64::from(movie.frames) * u64::from(movie.frame_ticks) * 1000 / u64::from(movie.timescale);
    let mut mvhd = u32s(&[0, 0, 1000, duration_ms as u32, 0x0001_0000]);
    mvhd.extend_from_slice(&[1, 0]);
    mvhd.extend_from_slice(&[0; 10]);
    mvhd.extend_from_slice(&matrix(IDENTITY));
    mvhd.extend_from_slice(&[0; 24]);
    mvhd.extend_from_slice(&3u32.to_be_bytes());
    let video = track(
        1,
        b"vide",
        &avc_sample_entry(movie.width, movie.height),
        movie,
        movie.timescale,
        movie.frames,
        movie.frame_ticks,
    );
    let audio_frames = (duration_ms * 48 / 1024).max(1) as u32;
    let audio = track(2, b"soun", &aac_sample_entry(), movie, 48_000, audio_frames, 1024);
    let mvhd = full(b"mvhd", 0, 0, &[&mvhd]);
    if movie.audio {
        bx(b"moov", &[&mvhd, &video, &audio])
    } else {
        bx(b"moov", &[&mvhd, &video])
    }
}

/// The moov of a fragmented movie: `mvex` with a `trex` for track 1 (512-tick samples), no `mehd`, so its duration
/// comes from the fragments.
pub fn fragmented_moov(movie: &SyntheticMovie) -> Vec<u8> {
    let mut moov = moov(movie);
    let trex = full(
        b"trex",
        0,
        0,
        &[&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    );
    moov.extend_from_slice(&bx(b"mvex", &[&trex]));
    let len = moov.len() as u32;
    moov[..4].copy_from_slice(&len.to_be_bytes());
    moov
}

/// A fragmented MP4 with no `mfra` whose media data ends in the probe's crafted 1 MiB carpet of `moof` boxes: its
/// tail window is all carpet, which the search for the last fragments must cross (issue 11 §4).
pub fn mp4_with_moof_carpet_tail() -> Vec<u8> {
    let ftyp = bx(b"ftyp", &[b"isom", &[0, 0, 2, 0], b"isomiso2avc1mp41"]);
    let moov = fragmented_moov(&SyntheticMovie::default());
    // Past the head window, so that the tail window holds nothing but carpet.
    let media = [vec![0xA5; 1536 * 1024], media_validator::probe::crafted::moof_carpet()].concat();
    [ftyp, moov, bx(b"mdat", &[&media])].concat()
}

pub fn mp4(movie: &SyntheticMovie) -> Vec<u8> {
    let ftyp = bx(b"ftyp", &[b"isom", &[0, 0, 2, 0], b"isomiso2avc1mp41"]);
    let mdat = bx(b"mdat", &[&vec![0xA5; movie.mdat_bytes]]);
    let moov = moov(movie);
    if movie.moov_first {
        [ftyp, moov, mdat].concat()
    } else {
        [ftyp, mdat, moov].concat()
    }
}

/// A PNG of any colour type and bit depth, progressive or Adam7-interlaced (the `png` crate writes only
/// progressive ones, so the rows are filtered and deflated here), optionally padded with a private chunk before its
/// image data up to `pad_to` bytes (a file at the guide's 20 MB limit without 20 MB of pixels to compress).
#[derive(Debug, Clone)]
pub struct PngSpec {
    pub width: u32,
    pub height: u32,
    pub color: png::ColorType,
    pub depth: png::BitDepth,
    pub interlaced: bool,
    pub palette: Option<Vec<u8>>,
    pub trns: Option<Vec<u8>>,
    pub pad_to: usize,
}

impl PngSpec {
    pub fn new(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth) -> Self {
        Self {
            width,
            height,
            color,
            depth,
            interlaced: false,
            palette: None,
            trns: None,
            pad_to: 0,
        }
    }

    pub fn interlaced(self) -> Self {
        Self {
            interlaced: true,
            ..self
        }
    }

    /// Encodes the picture whose samples at (x, y) are `pixel(x, y)` (one value per channel, at the bit depth).
    pub fn encode(&self, pixel: impl Fn(u32, u32) -> [u16; 4]) -> Vec<u8> {
        let channels = self.color.samples();
        let bits = self.depth as usize;
        let bytes_per_pixel = (channels * bits).div_ceil(8);
        // (x step, x offset, y step, y offset) of each Adam7 pass; one pass covering everything when progressive.
        let passes: &[(u32, u32, u32, u32)] = if self.interlaced {
            &[
                (8, 0, 8, 0),
                (8, 4, 8, 0),
                (4, 0, 8, 4),
                (4, 2, 4, 0),
                (2, 0, 4, 2),
                (2, 1, 2, 0),
                (1, 0, 2, 1),
            ]
        } else {
            &[(1, 0, 1, 0)]
        };
        let mut raw = Vec::new();
        for &(x_step, x_offset, y_step, y_offset) in passes {
            let xs: Vec<u32> = (x_offset..self.width).step_by(x_step as usize).collect();
            if xs.is_empty() {
                continue;
            }
            for y in (y_offset..self.height).step_by(y_step as usize) {
                let mut line = vec![0u8; (xs.len() * channels * bits).div_ceil(8)];
                let mut bit = 0;
                for &x in &xs {
                    for &sample in &pixel(x, y)[..channels] {
                        match bits {
                            16 => line[bit / 8..bit / 8 + 2].copy_from_slice(&sample.to_be_bytes()),
                            8 => line[bit / 8] = sample as u8,
                            _ => line[bit / 8] |= (sample as u8) << (8 - bits - bit % 8),
                        }
                        bit += bits;
                    }
                }
                // Filter "Sub": smooth test pictures deflate to almost nothing.
                raw.push(1);
                raw.extend(
                    (0..line.len())
                        .map(|i| line[i].wrapping_sub(i.checked_sub(bytes_per_pixel).map_or(0, |left| line[left]))),
                );
            }
        }
        let mut info = png::Info::with_size(self.width, self.height);
        info.color_type = self.color;
        info.bit_depth = self.depth;
        info.interlaced = self.interlaced;
        info.palette = self.palette.clone().map(Into::into);
        info.trns = self.trns.clone().map(Into::into);
        let mut out = Vec::new();
        {
            let encoder = png::Encoder::with_info(&mut out, info).unwrap_or_else(|e| panic!("PNG header: {e}"));
            let mut writer = encoder.write_header().unwrap_or_else(|e| panic!("PNG header: {e}"));
            let idat = zlib(&raw);
            // Chunk overhead: 12 bytes for the padding chunk, 12 for IDAT, 12 for IEND.
            let written = writer_len_estimate(self) + idat.len() + 36;
            if self.pad_to > written {
                let padding = vec![0x5A; self.pad_to - written];
                writer
                    .write_chunk(png::chunk::ChunkType(*b"paDd"), &padding)
                    .unwrap_or_else(|e| panic!("padding chunk: {e}"));
            }
            writer
                .write_chunk(png::chunk::IDAT, &idat)
                .unwrap_or_else(|e| panic!("IDAT: {e}"));
            writer.finish().unwrap_or_else(|e| panic!("IEND: {e}"));
        }
        out
    }
}

/// A zlib stream, as a PNG's image data is.
pub fn zlib(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap_or_else(|e| panic!("deflating: {e}"));
    encoder.finish().unwrap_or_else(|e| panic!("deflating: {e}"))
}

/// Signature, IHDR and the optional PLTE and tRNS chunks: what `write_header` writes.
fn writer_len_estimate(spec: &PngSpec) -> usize {
    let chunk = |data: Option<&Vec<u8>>| data.map_or(0, |d| 12 + d.len());
    8 + 12 + 13 + chunk(spec.palette.as_ref()) + chunk(spec.trns.as_ref())
}

/// The guide's image limit (20 MB, decimal): the largest PNG file it allows.
pub const GUIDE_MAX_IMAGE_BYTES: usize = 20_000_000;

/// The PNGs the guide allows that cost the rendition the most: the most pixels a PNG may have (4096 × 4096, the
/// validator's `PNG_MAX_PIXELS`) in 16-bit RGBA (the widest rows), padded to the guide's 20 MB; the same interlaced
/// (its passes are gathered in a canvas); and 1081 × 15520 interlaced, the narrowest picture that is still scaled,
/// so that both the canvas and the scaled copy are near 16.8 megapixels.
pub fn largest_allowed_pngs() -> Vec<(&'static str, PngSpec)> {
    let rgba16 = |width, height| PngSpec {
        pad_to: GUIDE_MAX_IMAGE_BYTES,
        ..PngSpec::new(width, height, png::ColorType::Rgba, png::BitDepth::Sixteen)
    };
    vec![
        ("4096×4096 RGBA 16-bit, 20 MB", rgba16(4096, 4096)),
        (
            "4096×4096 RGBA 16-bit interlaced, 20 MB",
            rgba16(4096, 4096).interlaced(),
        ),
        (
            "1081×15520 RGBA 16-bit interlaced, 20 MB",
            rgba16(1081, 15_520).interlaced(),
        ),
    ]
}

/// Gradients in every channel, alpha included: every sample differs, yet the file deflates well below 20 MB.
pub fn rgba16_gradient(x: u32, y: u32) -> [u16; 4] {
    let wrap = |v: u32| (v % 65_536) as u16;
    [wrap(x * 16), wrap(y * 4), wrap((x + y) * 8), 32_768 + wrap(x * 4) / 2]
}
