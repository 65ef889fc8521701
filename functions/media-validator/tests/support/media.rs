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
