//! The MP4 the remuxer writes: `ftyp`, one `mdat` with a 64-bit size (patched once the samples are all written,
//! so that the output can stream into a multipart upload), then the `moov` built from the sample tables.
//!
//! Tables are kept run-length coded where the file allows it (`stts`, `ctts`, `stsc`), so that their memory is
//! the ≈ 4 bytes per sample of `stsz` plus 8 per chunk of `co64` (≈ 0.6 MB for 10 minutes at 60 fps).

/// Movie and video media time scale: the 90 kHz of MPEG timestamps, so that no timestamp is rounded.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

pub(crate) fn ftyp() -> Vec<u8> {
    let mut b = BoxWriter::new(*b"ftyp");
    b.bytes(b"isom");
    b.u32(0x200);
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        b.bytes(brand);
    }
    b.finish()
}

/// The `mdat` header with a 64-bit size: `size = 1`, the type, then the real size at byte 8 (patched at the end).
pub(crate) fn mdat_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[3] = 1;
    h[4..8].copy_from_slice(b"mdat");
    h
}

/// Offset of the 64-bit size within the `mdat` header.
pub(crate) const MDAT_SIZE_FIELD: u64 = 8;

/// A run-length coded table of `(count, value)` pairs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Runs<T: PartialEq + Copy> {
    pub(crate) runs: Vec<(u32, T)>,
}

impl<T: PartialEq + Copy> Runs<T> {
    pub(crate) fn push(&mut self, value: T) {
        match self.runs.last_mut() {
            Some((count, last)) if *last == value && *count < u32::MAX => *count += 1,
            _ => self.runs.push((1, value)),
        }
    }
}

/// Where each sample of one track went: everything `stbl` needs.
#[derive(Debug, Default)]
pub(crate) struct SampleTable {
    pub(crate) sizes: Vec<u32>,
    /// Sample durations in the track's time scale (the last one repeats the one before it).
    pub(crate) durations: Runs<u32>,
    /// Composition offsets (PTS − DTS), video only.
    pub(crate) composition: Runs<u32>,
    /// 1-based numbers of sync samples (IDR pictures), video only.
    pub(crate) sync: Vec<u32>,
    pub(crate) chunk_offsets: Vec<u64>,
    /// `(first chunk, samples per chunk)`, 1-based as in `stsc`.
    pub(crate) chunk_runs: Vec<(u32, u32)>,
    samples_in_chunk: u32,
}

impl SampleTable {
    /// Records a sample written at `offset`; `continues` says it follows this track's previous sample directly
    /// (same chunk).
    pub(crate) fn add(&mut self, size: u32, offset: u64, continues: bool) {
        self.sizes.push(size);
        if continues && !self.chunk_offsets.is_empty() {
            self.samples_in_chunk += 1;
        } else {
            self.close_chunk();
            self.chunk_offsets.push(offset);
            self.samples_in_chunk = 1;
        }
    }

    pub(crate) fn close_chunk(&mut self) {
        if self.samples_in_chunk == 0 {
            return;
        }
        let chunk = u32::try_from(self.chunk_offsets.len()).unwrap_or(u32::MAX);
        if self.chunk_runs.last().is_none_or(|&(_, n)| n != self.samples_in_chunk) {
            self.chunk_runs.push((chunk, self.samples_in_chunk));
        }
        self.samples_in_chunk = 0;
    }

    pub(crate) fn sample_count(&self) -> u32 {
        u32::try_from(self.sizes.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn media_duration(&self) -> u64 {
        self.durations
            .runs
            .iter()
            .map(|&(count, delta)| u64::from(count) * u64::from(delta))
            .sum()
    }
}

pub(crate) struct VideoTrack<'a> {
    pub(crate) table: &'a SampleTable,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) avcc: &'a [u8],
    /// Presentation start relative to the movie start, in the video time scale.
    pub(crate) delay: u64,
    /// The first presented picture's position on the media (decode) timeline.
    pub(crate) media_time: u64,
}

pub(crate) struct AudioTrack<'a> {
    pub(crate) table: &'a SampleTable,
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    pub(crate) audio_specific_config: [u8; 2],
    /// Presentation start relative to the movie start, in the movie (90 kHz) time scale.
    pub(crate) delay: u64,
}

pub(crate) fn moov(video: &VideoTrack<'_>, audio: Option<&AudioTrack<'_>>) -> Vec<u8> {
    // N pictures present for N frame durations whatever their reordering: the edit spans the whole media
    // duration from the first presented picture (as ffmpeg writes it).
    let video_presented = video.table.media_duration();
    let video_end = video.delay + video_presented;
    let audio_end = audio.map_or(0, |a| {
        a.delay
            + rescale(
                a.table.media_duration(),
                u64::from(a.sample_rate),
                u64::from(VIDEO_TIMESCALE),
            )
    });
    let duration = video_end.max(audio_end);

    let mut moov = BoxWriter::new(*b"moov");
    moov.child(&mvhd(duration, if audio.is_some() { 3 } else { 2 }));
    moov.child(&video_trak(video, video_presented));
    if let Some(audio) = audio {
        moov.child(&audio_trak(audio));
    }
    moov.finish()
}

fn mvhd(duration: u64, next_track_id: u32) -> Vec<u8> {
    let mut b = BoxWriter::full(*b"mvhd", 1, 0);
    b.u64(0);
    b.u64(0);
    b.u32(VIDEO_TIMESCALE);
    b.u64(duration);
    b.u32(0x0001_0000);
    b.u16(0x0100);
    b.bytes(&[0; 10]);
    matrix(&mut b);
    b.bytes(&[0; 24]);
    b.u32(next_track_id);
    b.finish()
}

fn matrix(b: &mut BoxWriter) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
        b.u32(v);
    }
}

fn tkhd(track_id: u32, duration: u64, audio: bool, width: u32, height: u32) -> Vec<u8> {
    let mut b = BoxWriter::full(*b"tkhd", 1, 0x3);
    b.u64(0);
    b.u64(0);
    b.u32(track_id);
    b.u32(0);
    b.u64(duration);
    b.bytes(&[0; 8]);
    b.u16(0);
    b.u16(u16::from(audio));
    b.u16(if audio { 0x0100 } else { 0 });
    b.u16(0);
    matrix(&mut b);
    b.u32(width << 16);
    b.u32(height << 16);
    b.finish()
}

/// An edit list: an empty edit for a track that starts after the movie, then the track from `media_time`.
fn edts(delay: u64, presented: u64, media_time: u64) -> Vec<u8> {
    let mut elst = BoxWriter::full(*b"elst", 1, 0);
    let empty = delay > 0;
    elst.u32(1 + u32::from(empty));
    if empty {
        elst.u64(delay);
        elst.u64(u64::MAX); // media_time −1: nothing plays
        elst.u32(0x0001_0000);
    }
    elst.u64(presented);
    elst.u64(media_time);
    elst.u32(0x0001_0000);
    let mut edts = BoxWriter::new(*b"edts");
    edts.child(&elst.finish());
    edts.finish()
}

fn video_trak(v: &VideoTrack<'_>, presented: u64) -> Vec<u8> {
    let mut trak = BoxWriter::new(*b"trak");
    trak.child(&tkhd(1, v.delay + presented, false, v.width, v.height));
    trak.child(&edts(v.delay, presented, v.media_time));
    let mut entry = BoxWriter::new(*b"avc1");
    entry.bytes(&[0; 6]);
    entry.u16(1);
    entry.bytes(&[0; 16]);
    entry.u16(u16::try_from(v.width).unwrap_or(u16::MAX));
    entry.u16(u16::try_from(v.height).unwrap_or(u16::MAX));
    entry.u32(0x0048_0000);
    entry.u32(0x0048_0000);
    entry.u32(0);
    entry.u16(1);
    entry.bytes(&[0; 32]);
    entry.u16(0x0018);
    entry.u16(0xFFFF);
    let mut avcc = BoxWriter::new(*b"avcC");
    avcc.bytes(v.avcc);
    entry.child(&avcc.finish());
    let mut vmhd = BoxWriter::full(*b"vmhd", 0, 1);
    vmhd.bytes(&[0; 8]);
    trak.child(&mdia(
        VIDEO_TIMESCALE,
        v.table,
        *b"vide",
        b"VideoHandler\0",
        &vmhd.finish(),
        &entry.finish(),
        true,
    ));
    trak.finish()
}

fn audio_trak(a: &AudioTrack<'_>) -> Vec<u8> {
    let presented = rescale(
        a.table.media_duration(),
        u64::from(a.sample_rate),
        u64::from(VIDEO_TIMESCALE),
    );
    let mut trak = BoxWriter::new(*b"trak");
    trak.child(&tkhd(2, a.delay + presented, true, 0, 0));
    trak.child(&edts(a.delay, presented, 0));
    let mut entry = BoxWriter::new(*b"mp4a");
    entry.bytes(&[0; 6]);
    entry.u16(1);
    entry.bytes(&[0; 8]);
    entry.u16(a.channels);
    entry.u16(16);
    entry.u32(0);
    // 16.16 fixed point: rates above 65535 Hz do not fit; the esds carries the real one.
    entry.u32(a.sample_rate.min(0xFFFF) << 16);
    entry.child(&esds(a.audio_specific_config));
    let mut smhd = BoxWriter::full(*b"smhd", 0, 0);
    smhd.u32(0);
    trak.child(&mdia(
        a.sample_rate,
        a.table,
        *b"soun",
        b"SoundHandler\0",
        &smhd.finish(),
        &entry.finish(),
        false,
    ));
    trak.finish()
}

fn esds(asc: [u8; 2]) -> Vec<u8> {
    let specific = [&[0x05, 2][..], &asc].concat();
    let mut config = vec![0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    config.extend_from_slice(&specific);
    let config = [&[0x04, config.len() as u8][..], &config].concat();
    let mut es = vec![0, 2, 0];
    es.extend_from_slice(&config);
    es.extend_from_slice(&[0x06, 1, 0x02]);
    let es = [&[0x03, es.len() as u8][..], &es].concat();
    let mut b = BoxWriter::full(*b"esds", 0, 0);
    b.bytes(&es);
    b.finish()
}

fn mdia(
    timescale: u32,
    table: &SampleTable,
    handler: [u8; 4],
    name: &[u8],
    media_header: &[u8],
    sample_entry: &[u8],
    video: bool,
) -> Vec<u8> {
    let mut mdhd = BoxWriter::full(*b"mdhd", 1, 0);
    mdhd.u64(0);
    mdhd.u64(0);
    mdhd.u32(timescale);
    mdhd.u64(table.media_duration());
    mdhd.u16(0x55C4); // "und"
    mdhd.u16(0);
    let mut hdlr = BoxWriter::full(*b"hdlr", 0, 0);
    hdlr.u32(0);
    hdlr.bytes(&handler);
    hdlr.bytes(&[0; 12]);
    hdlr.bytes(name);

    // One `url ` entry with flag 1: the media data is in this file.
    let mut dref = BoxWriter::full(*b"dref", 0, 0);
    dref.u32(1);
    dref.child(&BoxWriter::full(*b"url ", 0, 1).finish());
    let mut dinf = BoxWriter::new(*b"dinf");
    dinf.child(&dref.finish());

    let mut minf = BoxWriter::new(*b"minf");
    minf.child(media_header);
    minf.child(&dinf.finish());
    minf.child(&stbl(table, sample_entry, video));
    let mut mdia = BoxWriter::new(*b"mdia");
    mdia.child(&mdhd.finish());
    mdia.child(&hdlr.finish());
    mdia.child(&minf.finish());
    mdia.finish()
}

fn stbl(t: &SampleTable, sample_entry: &[u8], video: bool) -> Vec<u8> {
    let mut stbl = BoxWriter::new(*b"stbl");
    let mut stsd = BoxWriter::full(*b"stsd", 0, 0);
    stsd.u32(1);
    stsd.bytes(sample_entry);
    stbl.child(&stsd.finish());

    let mut stts = BoxWriter::full(*b"stts", 0, 0);
    stts.u32(t.durations.runs.len() as u32);
    for &(count, delta) in &t.durations.runs {
        stts.u32(count);
        stts.u32(delta);
    }
    stbl.child(&stts.finish());

    if video && t.composition.runs.iter().any(|&(_, offset)| offset != 0) {
        let mut ctts = BoxWriter::full(*b"ctts", 0, 0);
        ctts.u32(t.composition.runs.len() as u32);
        for &(count, offset) in &t.composition.runs {
            ctts.u32(count);
            ctts.u32(offset);
        }
        stbl.child(&ctts.finish());
    }
    if video && t.sync.len() != t.sizes.len() {
        let mut stss = BoxWriter::full(*b"stss", 0, 0);
        stss.u32(t.sync.len() as u32);
        for &n in &t.sync {
            stss.u32(n);
        }
        stbl.child(&stss.finish());
    }
    let mut stsc = BoxWriter::full(*b"stsc", 0, 0);
    stsc.u32(t.chunk_runs.len() as u32);
    for &(first, per_chunk) in &t.chunk_runs {
        stsc.u32(first);
        stsc.u32(per_chunk);
        stsc.u32(1);
    }
    stbl.child(&stsc.finish());

    let mut stsz = BoxWriter::full(*b"stsz", 0, 0);
    stsz.u32(0);
    stsz.u32(t.sample_count());
    for &size in &t.sizes {
        stsz.u32(size);
    }
    stbl.child(&stsz.finish());

    let mut co64 = BoxWriter::full(*b"co64", 0, 0);
    co64.u32(t.chunk_offsets.len() as u32);
    for &offset in &t.chunk_offsets {
        co64.u64(offset);
    }
    stbl.child(&co64.finish());
    stbl.finish()
}

pub(crate) fn rescale(value: u64, from: u64, to: u64) -> u64 {
    if from == 0 {
        return 0;
    }
    u64::try_from(u128::from(value) * u128::from(to) / u128::from(from)).unwrap_or(u64::MAX)
}

/// Builds one box: the size is filled in by `finish`. Sizes are 32-bit: a `moov` of a legal file is a few MB.
struct BoxWriter {
    data: Vec<u8>,
}

impl BoxWriter {
    fn new(kind: [u8; 4]) -> Self {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&[0; 4]);
        data.extend_from_slice(&kind);
        Self { data }
    }

    fn full(kind: [u8; 4], version: u8, flags: u32) -> Self {
        let mut b = Self::new(kind);
        b.u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
        b
    }

    fn u16(&mut self, v: u16) {
        self.data.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.data.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.data.extend_from_slice(&v.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.data.extend_from_slice(b);
    }

    fn child(&mut self, b: &[u8]) {
        self.data.extend_from_slice(b);
    }

    fn finish(mut self) -> Vec<u8> {
        let size = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.data[..4].copy_from_slice(&size.to_be_bytes());
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_chunks_are_run_length_coded() {
        let mut t = SampleTable::default();
        for (i, continues) in [false, true, true, false, true, true, false].into_iter().enumerate() {
            t.add(10, i as u64 * 10, continues);
            t.durations.push(3000);
        }
        t.close_chunk();
        assert_eq!(t.chunk_offsets, [0, 30, 60]);
        assert_eq!(t.chunk_runs, [(1, 3), (3, 1)]);
        assert_eq!(t.durations.runs, [(7, 3000)]);
        assert_eq!(t.media_duration(), 21_000);
    }
}
