//! MP4 and QuickTime (ISO base media): find the moov from box headers, read the handful of boxes the rules need,
//! and for fragmented files take timing from mehd, the last fragments (through mfra or a tail scan) or sidx.
//!
//! The walk descends only along a fixed whitelist (moov → trak → mdia → minf → stbl → stsd → sample entry →
//! codec box); each level is its own function, so nesting in the file cannot deepen the call stack. Tables are
//! folded into sums and counts as they are read; nothing is allocated from a count in the file.

use std::ops::Range;

use super::{
    audio,
    bytes::{be_u32, be_u64, Reader},
    corrupt, fingerprint, h264,
    report::{AudioStream, Container, ProbeReport, Truncation, UnreadableReason, VideoStream},
    truncated, unreadable,
    window::Windows,
    Halt, HOP_READ,
};

/// A legal ≤ 10 min file with one audio track has a moov of at most ~2.5 MB; this leaves room for odd muxers.
const MAX_MOOV_BYTES: u64 = 16 * 1024 * 1024;
const MAX_MFRA_BYTES: u64 = 4 * 1024 * 1024;
const MAX_TOP_LEVEL_BOXES: u32 = 100_000;
const MAX_TRACKS: usize = 64;
const MAX_EDITS: u32 = 256;
/// Fragments parsed per probe: the head's first ones and a tail window's worth.
const MAX_FRAGMENTS: usize = 4096;
/// Box headers the search for the last fragments (a tail without an index) may read in all. A crafted tail of
/// back-to-back `moof` boxes that never reaches the end exactly would otherwise cost every candidate a walk of up to
/// `2 × MAX_FRAGMENTS` boxes (~10⁹ header reads for a 1 MiB tail, issue 11 §4); a real tail chains to the end from
/// its first candidates within a few hundred, and a stray "moof" inside media data fails within a box or two.
const TAIL_SEARCH_STEPS: usize = 1 << 20;

type FourCc = [u8; 4];

#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    kind: FourCc,
    header_len: u64,
    /// Total size including the header; for `size = 0` boxes, up to the end of the enclosing space.
    size: u64,
}

/// Iterates the child boxes of a payload. Fewer than 8 trailing bytes are padding (QuickTime terminators); a child
/// that claims more than its parent holds ends the iteration with an error.
struct Children<'a> {
    data: &'a [u8],
    pos: usize,
}

fn children(data: &[u8]) -> Children<'_> {
    Children { data, pos: 0 }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<(FourCc, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..)?;
        if rest.len() < 8 {
            return None;
        }
        let header = match parse_header(rest, rest.len() as u64) {
            Ok(header) => header,
            Err(error) => {
                self.pos = self.data.len();
                return Some(Err(error));
            }
        };
        let (Ok(size), Ok(header_len)) = (usize::try_from(header.size), usize::try_from(header.header_len)) else {
            self.pos = self.data.len();
            return Some(Err("box size does not fit in memory".into()));
        };
        if size > rest.len() {
            self.pos = self.data.len();
            let kind = String::from_utf8_lossy(&header.kind).into_owned();
            return Some(Err(format!(
                "box `{kind}` claims {size} bytes but its parent holds {}",
                rest.len()
            )));
        }
        self.pos += size;
        Some(Ok((header.kind, rest.get(header_len..size).unwrap_or_default())))
    }
}

/// Parses a box header from `bytes` (at least 8, 16 for a 64-bit size); `space` is how many bytes remain in the
/// enclosing space (the file, or the parent box), which a `size = 0` box extends to.
fn parse_header(bytes: &[u8], space: u64) -> Result<BoxHeader, String> {
    let size32 = be_u32(bytes, 0).ok_or("box header cut short")?;
    let kind: FourCc = bytes
        .get(4..8)
        .and_then(|k| k.try_into().ok())
        .ok_or("box header cut short")?;
    let (size, mut header_len) = match size32 {
        0 => (space, 8),
        1 => (be_u64(bytes, 8).ok_or("64-bit box header cut short")?, 16),
        n => (u64::from(n), 8),
    };
    if &kind == b"uuid" {
        header_len += 16;
    }
    if size < header_len {
        let kind = String::from_utf8_lossy(&kind).into_owned();
        return Err(format!("box `{kind}` has size {size}, smaller than its own header"));
    }
    Ok(BoxHeader { kind, header_len, size })
}

// ---------------------------------------------------------------------------------------------------------------
// Top level

#[derive(Debug, Default)]
struct TopLevel {
    /// The whole moov box (header included) and where its payload starts.
    moov: Option<(Range<u64>, u64)>,
    /// moof boxes seen after the moov in bytes already held (the first fragments, or all of a small file).
    moofs: Vec<u64>,
    sidx: Option<Range<u64>>,
    /// A box that runs past the end of the object: how long the file should be.
    truncated_at: Option<u64>,
}

fn walk_top_level(w: &Windows, container: Container) -> Result<TopLevel, Halt> {
    let size = w.size();
    let mut top = TopLevel::default();
    let mut offset = 0u64;
    let mut boxes = 0u32;
    while offset < size {
        boxes += 1;
        if boxes > MAX_TOP_LEVEL_BOXES {
            return Err(corrupt(
                container,
                format!("more than {MAX_TOP_LEVEL_BOXES} top-level boxes"),
            ));
        }
        let header_bytes = (size - offset).min(16);
        if header_bytes < 8 {
            break; // a few bytes of padding at the end
        }
        let header_range = offset..offset + header_bytes;
        let bytes = if top.moov.is_some() {
            // After the moov, only look at what is already held: the first fragments in the head window.
            match w.slice(header_range) {
                Some(bytes) => bytes,
                None => break,
            }
        } else {
            w.bytes(header_range).map_err(|halt| hop(w, halt))?
        };
        let header = parse_header(bytes, size - offset).map_err(|e| corrupt(container, e))?;
        let end = offset
            .checked_add(header.size)
            .ok_or_else(|| corrupt(container, "box size overflows"))?;
        if end > size {
            top.truncated_at = Some(end);
            if &header.kind == b"moov" {
                return Err(truncated(
                    container,
                    format!("the movie header runs to byte {end} of {size}"),
                ));
            }
            break;
        }
        match &header.kind {
            b"moov" if top.moov.is_none() => top.moov = Some((offset..end, offset + header.header_len)),
            b"moof" if top.moov.is_some() && top.moofs.len() < MAX_FRAGMENTS => top.moofs.push(offset),
            b"sidx" if top.moov.is_some() && top.sidx.is_none() => top.sidx = Some(offset + header.header_len..end),
            b"cmov" => return Err(corrupt(container, "compressed movie header (cmov) is not supported")),
            _ => {}
        }
        offset = end;
    }
    Ok(top)
}

/// Turns "need these header bytes" into a useful read: when the box starts before the suffix window and could be
/// a moov reaching into it (the moov-at-end layout), read up to that window at once, so that the moov costs one
/// extra read however large it is; otherwise read a little ahead.
fn hop(w: &Windows, halt: Halt) -> Halt {
    let Halt::Need(gap) = halt else { return halt };
    match w.tail_start() {
        Some(tail) if gap.start < tail && tail - gap.start <= MAX_MOOV_BYTES => Halt::Need(gap.start..tail),
        _ => Halt::Need(gap.start..gap.start.saturating_add(HOP_READ).max(gap.end).min(w.size())),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The movie

#[derive(Debug, Default)]
struct Movie {
    timescale: u32,
    duration: u64,
    tracks: Vec<Track>,
    fragmented: bool,
    fragment_duration: Option<u64>,
    /// (track id, default sample duration) from `trex`.
    trex: Vec<(u32, u32)>,
}

#[derive(Debug, Default)]
struct Track {
    id: u32,
    handler: FourCc,
    tkhd_duration: u64,
    tkhd_size: (u32, u32),
    /// a, b (16.16) of the transformation matrix.
    matrix_ab: (i32, i32),
    /// Σ edit segment durations (movie time scale), when there is an edit list.
    edited_duration: Option<u64>,
    media_timescale: u32,
    media_duration: u64,
    entry: Option<SampleEntry>,
    samples: u64,
    sample_ticks: u64,
    /// Where the first chunk of samples starts (stco/co64), to peek at a frame header when the entry is vague.
    first_chunk: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
enum SampleEntry {
    Visual {
        codec: String,
        width: u32,
        height: u32,
        profile: Option<String>,
        level: Option<String>,
        sps: Option<h264::SpsInfo>,
        pixel_aspect: Option<(u32, u32)>,
    },
    Audio {
        codec: String,
        sample_rate: Option<u32>,
        channels: Option<u32>,
    },
    Other,
}

fn parse_movie(moov: &[u8], container: Container) -> Result<Movie, Halt> {
    let bad = |e: String| corrupt(container, e);
    let mut movie = Movie::default();
    for child in children(moov) {
        let (kind, payload) = child.map_err(bad)?;
        match &kind {
            b"mvhd" => {
                let mut r = Reader::new(payload);
                let wide = r.u8().ok_or_else(|| bad("mvhd cut short".into()))? == 1;
                r.skip(3)
                    .and_then(|_| r.skip(if wide { 16 } else { 8 }))
                    .ok_or_else(|| bad("mvhd cut short".into()))?;
                movie.timescale = r.u32().ok_or_else(|| bad("mvhd cut short".into()))?;
                movie.duration = r.u32_or_u64(wide).ok_or_else(|| bad("mvhd cut short".into()))?;
            }
            b"trak" if movie.tracks.len() < MAX_TRACKS => movie.tracks.push(parse_track(payload, container)?),
            b"mvex" => {
                movie.fragmented = true;
                for child in children(payload) {
                    let (kind, payload) = child.map_err(bad)?;
                    let mut r = Reader::new(payload);
                    match &kind {
                        b"mehd" => {
                            let wide = r.u8() == Some(1);
                            movie.fragment_duration = r.skip(3).and_then(|_| r.u32_or_u64(wide)).filter(|&d| d > 0);
                        }
                        b"trex" if movie.trex.len() < MAX_TRACKS => {
                            if let (Some(_), Some(id), Some(_), Some(duration)) = (r.skip(4), r.u32(), r.u32(), r.u32())
                            {
                                movie.trex.push((id, duration));
                            }
                        }
                        _ => {}
                    }
                }
            }
            b"cmov" => return Err(corrupt(container, "compressed movie header (cmov) is not supported")),
            _ => {}
        }
    }
    Ok(movie)
}

fn parse_track(trak: &[u8], container: Container) -> Result<Track, Halt> {
    let bad = |e: String| corrupt(container, e);
    let mut track = Track::default();
    let mut stsd: Option<&[u8]> = None;
    for child in children(trak) {
        let (kind, payload) = child.map_err(bad)?;
        match &kind {
            b"tkhd" => parse_tkhd(payload, &mut track).ok_or_else(|| bad("tkhd cut short".into()))?,
            b"edts" => {
                for child in children(payload) {
                    let (kind, payload) = child.map_err(bad)?;
                    if &kind == b"elst" {
                        track.edited_duration = parse_elst(payload).ok_or_else(|| bad("elst cut short".into()))?;
                    }
                }
            }
            b"mdia" => stsd = parse_mdia(payload, &mut track, container)?.or(stsd),
            _ => {}
        }
    }
    if let Some(stsd) = stsd {
        track.entry = parse_stsd(stsd, &track.handler, container)?;
    }
    Ok(track)
}

fn parse_tkhd(payload: &[u8], track: &mut Track) -> Option<()> {
    let mut r = Reader::new(payload);
    let wide = r.u8()? == 1;
    r.skip(3)?;
    r.skip(if wide { 16 } else { 8 })?; // creation and modification times
    track.id = r.u32()?;
    r.skip(4)?;
    track.tkhd_duration = r.u32_or_u64(wide)?;
    r.skip(8 + 2 + 2 + 2 + 2)?; // reserved, layer, alternate group, volume, reserved
    let a = r.i32()?;
    let b = r.i32()?;
    r.skip(7 * 4)?;
    track.matrix_ab = (a, b);
    track.tkhd_size = (r.u32()? >> 16, r.u32()? >> 16);
    Some(())
}

/// Σ segment durations (empty edits included: they delay the track), over at most [`MAX_EDITS`] entries.
fn parse_elst(payload: &[u8]) -> Option<Option<u64>> {
    let mut r = Reader::new(payload);
    let wide = r.u8()? == 1;
    r.skip(3)?;
    let count = r.u32()?;
    let entry_len = if wide { 20 } else { 12 };
    if u64::from(count) * entry_len > r.remaining() as u64 {
        return None;
    }
    let mut total: u64 = 0;
    for _ in 0..count.min(MAX_EDITS) {
        let segment = r.u32_or_u64(wide)?;
        r.skip(if wide { 12 } else { 8 })?;
        total = total.saturating_add(segment);
    }
    Some((count > 0).then_some(total))
}

/// Reads mdhd, hdlr and the sample table; returns the `stsd` payload to parse once the handler is known.
fn parse_mdia<'a>(mdia: &'a [u8], track: &mut Track, container: Container) -> Result<Option<&'a [u8]>, Halt> {
    let bad = |e: String| corrupt(container, e);
    let mut stsd = None;
    for child in children(mdia) {
        let (kind, payload) = child.map_err(bad)?;
        match &kind {
            b"mdhd" => {
                let mut r = Reader::new(payload);
                let wide = r.u8() == Some(1);
                let header = r.skip(3).and_then(|_| r.skip(if wide { 16 } else { 8 }));
                let (timescale, duration) = header
                    .and_then(|_| Some((r.u32()?, r.u32_or_u64(wide)?)))
                    .ok_or_else(|| bad("mdhd cut short".into()))?;
                if timescale == 0 {
                    return Err(corrupt(container, format!("track {} has a time scale of 0", track.id)));
                }
                track.media_timescale = timescale;
                track.media_duration = duration;
            }
            b"hdlr" => {
                if let Some(handler) = payload.get(8..12).and_then(|h| h.try_into().ok()) {
                    track.handler = handler;
                }
            }
            b"minf" => {
                for child in children(payload) {
                    let (kind, payload) = child.map_err(bad)?;
                    if &kind != b"stbl" {
                        continue;
                    }
                    for child in children(payload) {
                        let (kind, payload) = child.map_err(bad)?;
                        match &kind {
                            b"stsd" => stsd = Some(payload),
                            b"stco" | b"co64" => {
                                let mut r = Reader::new(payload);
                                let wide = &kind == b"co64";
                                track.first_chunk = r
                                    .skip(4)
                                    .and_then(|_| r.u32())
                                    .filter(|&count| count > 0)
                                    .and_then(|_| r.u32_or_u64(wide));
                            }
                            b"stts" => {
                                let (samples, ticks) = fold_stts(payload)
                                    .ok_or_else(|| bad("stts holds fewer entries than it says".into()))?;
                                track.samples = samples;
                                track.sample_ticks = ticks;
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(stsd)
}

/// Sample count and Σ sample durations, as ffmpeg's mov demuxer counts them for `avg_frame_rate`: a final single
/// sample lasting more than ten times the average is clamped to the average, and negative deltas count as 1.
fn fold_stts(payload: &[u8]) -> Option<(u64, u64)> {
    let mut r = Reader::new(payload);
    r.skip(4)?;
    let count = r.u32()?;
    if u64::from(count) * 8 > r.remaining() as u64 {
        return None;
    }
    let (mut samples, mut ticks) = (0u64, 0u64);
    for i in 0..count {
        let sample_count = u64::from(r.u32()?);
        let mut delta = u64::from(r.u32()?);
        if delta > i32::MAX as u64 {
            delta = 1;
        }
        if i + 1 == count && i > 0 && sample_count == 1 && samples > 100 && delta / 10 > ticks / samples {
            delta = ticks / samples;
        }
        samples = samples.saturating_add(sample_count);
        ticks = ticks.saturating_add(sample_count.saturating_mul(delta));
    }
    Some((samples, ticks))
}

fn parse_stsd(stsd: &[u8], handler: &FourCc, container: Container) -> Result<Option<SampleEntry>, Halt> {
    let bad = |e: String| corrupt(container, e);
    let mut r = Reader::new(stsd);
    r.skip(8).ok_or_else(|| bad("stsd cut short".into()))?; // version, flags, entry count
                                                            // Only the first entry describes the samples a player starts with; files switching codecs mid-way are rare.
    let Some(first) = children(r.rest()).next() else {
        return Ok(None);
    };
    let (kind, entry) = first.map_err(bad)?;
    if matches!(&kind, b"encv" | b"enca" | b"drmi" | b"drms") {
        return Err(unreadable(Some(container), UnreadableReason::Encrypted));
    }
    let visual = visual_codec(&kind);
    let parsed = if visual.is_some() || handler == b"vide" {
        parse_visual_entry(&kind, entry, visual)
    } else if handler == b"soun" || audio_codec(&kind).is_some() {
        parse_audio_entry(&kind, entry)
    } else {
        Some(SampleEntry::Other)
    };
    parsed
        .map(Some)
        .ok_or_else(|| bad(format!("sample entry `{}` cut short", fourcc_name(&kind))))
}

fn fourcc_name(kind: &FourCc) -> String {
    String::from_utf8_lossy(kind).trim().to_owned()
}

fn visual_codec(kind: &FourCc) -> Option<&'static str> {
    Some(match kind {
        b"avc1" | b"avc2" | b"avc3" | b"avc4" | b"dva1" | b"dvav" => "h264",
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "hevc",
        b"vp09" => "vp9",
        b"vp08" => "vp8",
        b"av01" => "av1",
        b"mp4v" => "mpeg4",
        b"jpeg" | b"mjpa" | b"mjpb" => "mjpeg",
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "prores",
        b"s263" | b"h263" => "h263",
        b"vvc1" | b"vvi1" => "vvc",
        _ => return None,
    })
}

fn audio_codec(kind: &FourCc) -> Option<&'static str> {
    Some(match kind {
        b"mp4a" => "aac",
        b".mp3" | b"ms\x00\x55" => "mp3",
        b"Opus" => "opus",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        b"alac" => "alac",
        b"fLaC" => "flac",
        b"samr" => "amr_nb",
        b"sawb" => "amr_wb",
        b"sowt" => "pcm_s16le",
        b"twos" => "pcm_s16be",
        b"in24" => "pcm_s24be",
        b"fl32" => "pcm_f32be",
        b"ulaw" => "pcm_mulaw",
        b"alaw" => "pcm_alaw",
        b"lpcm" => "pcm_s16le",
        _ => return None,
    })
}

/// VisualSampleEntry: 78 bytes of fixed fields, then codec boxes.
fn parse_visual_entry(kind: &FourCc, entry: &[u8], codec: Option<&'static str>) -> Option<SampleEntry> {
    let mut r = Reader::new(entry);
    r.skip(8 + 16)?;
    let width = u32::from(r.u16()?);
    let height = u32::from(r.u16()?);
    r.skip(78 - 28)?;
    let mut codec = codec.map(str::to_owned).unwrap_or_else(|| fourcc_name(kind));
    let (mut profile, mut level, mut sps, mut pixel_aspect) = (None, None, None, None);
    // Codec boxes that are cut short or malformed leave the facts from the fixed fields; the codec is still known.
    for (kind, payload) in children(r.rest()).map_while(Result::ok) {
        match &kind {
            b"avcC" => {
                if let Some(avc) = h264::parse_avcc(payload) {
                    profile = Some(h264::h264_profile_name(avc.profile_idc, avc.constraint_flags));
                    level = Some(h264::h264_level_name(
                        avc.profile_idc,
                        avc.constraint_flags,
                        avc.level_idc,
                    ));
                    sps = avc.sps;
                }
            }
            b"hvcC" => {
                if let Some((p, l)) = h264::parse_hvcc(payload) {
                    profile = Some(p);
                    level = Some(l);
                }
            }
            b"esds" => {
                if let Some(name) = audio::parse_esds(payload).and_then(|d| d.codec()) {
                    codec = name.to_owned();
                }
            }
            b"pasp" => pixel_aspect = h264::parse_pasp(payload),
            _ => {}
        }
    }
    Some(SampleEntry::Visual {
        codec,
        width,
        height,
        profile,
        level,
        sps,
        pixel_aspect,
    })
}

/// AudioSampleEntry, including QuickTime's sound description versions 1 (+16 bytes) and 2 (+36, with a f64 rate),
/// and the `wave` box in which QuickTime nests `esds`.
fn parse_audio_entry(kind: &FourCc, entry: &[u8]) -> Option<SampleEntry> {
    let mut r = Reader::new(entry);
    r.skip(8)?;
    let version = r.u16()?;
    r.skip(6)?;
    let mut channels = Some(u32::from(r.u16()?)).filter(|&c| c > 0);
    r.skip(6)?;
    let mut sample_rate = Some(r.u32()? >> 16).filter(|&rate| rate > 0);
    match version {
        1 => r.skip(16)?,
        2 => {
            r.skip(4)?;
            let rate = f64::from_bits(r.u64()?);
            sample_rate = (1.0..1e7).contains(&rate).then_some(rate.round() as u32);
            channels = Some(r.u32()?).filter(|&c| c > 0 && c < 256);
            r.skip(20)?;
        }
        _ => {}
    }
    let mut codec = audio_codec(kind)
        .map(str::to_owned)
        .unwrap_or_else(|| fourcc_name(kind));
    let mut esds = None;
    for (kind, payload) in children(r.rest()).map_while(Result::ok) {
        match &kind {
            b"esds" => esds = Some(payload),
            b"wave" => {
                for (kind, payload) in children(payload).map_while(Result::ok) {
                    if &kind == b"esds" {
                        esds = Some(payload);
                    }
                }
            }
            b"dOps" => channels = audio::parse_dops_channels(payload).or(channels),
            _ => {}
        }
    }
    if let Some(description) = esds.and_then(audio::parse_esds) {
        if let Some(name) = description.codec() {
            codec = name.to_owned();
        }
        sample_rate = description.sample_rate.or(sample_rate);
        channels = description.channels.or(channels);
    }
    if codec == "opus" {
        // Opus always decodes at 48 kHz, whatever the input rate recorded in the entry.
        sample_rate = Some(48_000);
    }
    Some(SampleEntry::Audio {
        codec,
        sample_rate,
        channels,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Fragments

/// Timing gathered from the fragments read, per track.
#[derive(Debug, Default, Clone)]
struct FragmentTiming {
    track_id: u32,
    samples: u64,
    ticks: u64,
    /// Latest end time seen (tfdt + Σ durations), in the track's time scale.
    end: u64,
    /// The most frequent sample duration (a small majority vote), to estimate frames in fragments not read.
    common_delta: MajorityVote,
}

/// Boyer–Moore majority vote over sample durations: constant memory, and exact when one duration dominates, as it
/// does in constant-frame-rate video.
#[derive(Debug, Default, Clone, Copy)]
struct MajorityVote {
    candidate: u64,
    weight: u64,
}

impl MajorityVote {
    fn add(&mut self, value: u64, count: u64) {
        if value == self.candidate {
            self.weight = self.weight.saturating_add(count);
        } else if count >= self.weight {
            self.candidate = value;
            self.weight = count - self.weight;
        } else {
            self.weight -= count;
        }
    }
}

struct Fragments<'m> {
    movie: &'m Movie,
    timings: Vec<FragmentTiming>,
    parsed: Vec<u64>,
}

impl<'m> Fragments<'m> {
    fn new(movie: &'m Movie) -> Self {
        let timings = movie
            .tracks
            .iter()
            .map(|t| FragmentTiming {
                track_id: t.id,
                samples: t.samples,
                ticks: t.sample_ticks,
                ..Default::default()
            })
            .collect();
        Self {
            movie,
            timings,
            parsed: Vec::new(),
        }
    }

    fn default_duration(&self, track_id: u32) -> u32 {
        self.movie
            .trex
            .iter()
            .find(|(id, _)| *id == track_id)
            .map_or(0, |(_, d)| *d)
    }

    /// Parses the moof at `offset`, whose bytes are held; `start_hint` is the fragment's time when known from
    /// elsewhere (tfra) and the moof has no tfdt.
    fn add_moof(&mut self, moof: &[u8], offset: u64, start_hint: Option<(u32, u64)>) -> Result<(), String> {
        if self.parsed.contains(&offset) || self.parsed.len() >= MAX_FRAGMENTS {
            return Ok(());
        }
        self.parsed.push(offset);
        for child in children(moof) {
            let (kind, traf) = child?;
            if &kind != b"traf" {
                continue;
            }
            let (mut track_id, mut default_duration, mut base_time) = (0u32, None, None);
            let (mut samples, mut ticks) = (0u64, 0u64);
            let mut vote = MajorityVote::default();
            for child in children(traf) {
                let (kind, payload) = child?;
                let mut r = Reader::new(payload);
                match &kind {
                    b"tfhd" => {
                        let flags = r.skip(1).and_then(|_| r.u24()).ok_or("tfhd cut short")?;
                        track_id = r.u32().ok_or("tfhd cut short")?;
                        let skip = if flags & 0x01 != 0 { 8 } else { 0 } + if flags & 0x02 != 0 { 4 } else { 0 };
                        r.skip(skip).ok_or("tfhd cut short")?;
                        if flags & 0x08 != 0 {
                            default_duration = Some(r.u32().ok_or("tfhd cut short")?);
                        }
                    }
                    b"tfdt" => {
                        let wide = r.u8() == Some(1);
                        base_time = r.skip(3).and_then(|_| r.u32_or_u64(wide));
                    }
                    b"trun" => {
                        let default = default_duration.unwrap_or_else(|| self.default_duration(track_id));
                        let (n, t) =
                            fold_trun(payload, default, &mut vote).ok_or("trun holds fewer samples than it says")?;
                        samples = samples.saturating_add(n);
                        ticks = ticks.saturating_add(t);
                    }
                    _ => {}
                }
            }
            let start = base_time
                .or_else(|| start_hint.filter(|(id, _)| *id == track_id).map(|(_, t)| t))
                .or_else(|| (self.parsed.len() == 1).then_some(0));
            if let Some(timing) = self.timings.iter_mut().find(|t| t.track_id == track_id) {
                timing.samples = timing.samples.saturating_add(samples);
                timing.ticks = timing.ticks.saturating_add(ticks);
                timing.common_delta.add(vote.candidate, vote.weight);
                if let Some(start) = start {
                    timing.end = timing.end.max(start.saturating_add(ticks));
                }
            }
        }
        Ok(())
    }
}

/// Sample count and Σ durations of one `trun`; per-sample durations are iterated (bounded by the box's bytes),
/// default ones multiplied.
fn fold_trun(payload: &[u8], default_duration: u32, vote: &mut MajorityVote) -> Option<(u64, u64)> {
    let mut r = Reader::new(payload);
    r.skip(1)?;
    let flags = r.u24()?;
    let count = r.u32()?;
    if flags & 0x001 != 0 {
        r.skip(4)?;
    }
    if flags & 0x004 != 0 {
        r.skip(4)?;
    }
    let fields = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count();
    let entry_len = 4 * fields;
    if u64::from(count) * entry_len as u64 > r.remaining() as u64 {
        return None;
    }
    if flags & 0x100 == 0 {
        let ticks = u64::from(count) * u64::from(default_duration);
        vote.add(u64::from(default_duration), u64::from(count));
        return Some((u64::from(count), ticks));
    }
    let mut ticks = 0u64;
    for _ in 0..count {
        let entry = r.take(entry_len)?;
        let duration = u64::from(be_u32(entry, 0)?);
        vote.add(duration, 1);
        ticks = ticks.saturating_add(duration);
    }
    Some((u64::from(count), ticks))
}

/// Collects fragment timing: the moofs after the moov that are already held, then the last fragments, found
/// through the `mfra` index at the end or by scanning the tail window for a moof chain that reaches EOF.
fn read_fragments<'m>(
    w: &Windows,
    top: &TopLevel,
    movie: &'m Movie,
    container: Container,
) -> Result<Fragments<'m>, Halt> {
    let bad = |e: String| corrupt(container, e);
    let mut fragments = Fragments::new(movie);
    for &offset in &top.moofs {
        if let Some(moof) = held_box_payload(w, offset) {
            fragments.add_moof(moof, offset, None).map_err(bad)?;
        }
    }
    let size = w.size();
    if size < 16 {
        return Ok(fragments);
    }
    let mfro = w.bytes(size - 16..size)?;
    if mfro.get(4..8) == Some(b"mfro") {
        let mfra_size = u64::from(be_u32(mfro, 12).unwrap_or(0));
        if mfra_size >= 16 + 8 && mfra_size <= size.min(MAX_MFRA_BYTES) {
            let mfra_box = w.bytes(size - mfra_size..size)?;
            let last_entries = parse_mfra(mfra_box).map_err(bad)?;
            for (track_id, time, moof_offset) in last_entries {
                if moof_offset >= size {
                    continue;
                }
                let moof = box_payload(w, moof_offset, b"moof", container)?;
                fragments
                    .add_moof(moof, moof_offset, Some((track_id, time)))
                    .map_err(bad)?;
                // Fragments after the last random-access point, if held.
                follow_chain(w, moof_offset, &mut fragments).map_err(bad)?;
            }
            return Ok(fragments);
        }
    }
    if let Some((start, tail)) = w.tail() {
        if let Some(first) = find_moof_chain(tail, start, size, &mut TAIL_SEARCH_STEPS.clone()) {
            follow_chain_from(w, first, &mut fragments).map_err(bad)?;
        }
    }
    Ok(fragments)
}

/// The latest tfra entry per track: (track id, time, moof offset).
fn parse_mfra(mfra_box: &[u8]) -> Result<Vec<(u32, u64, u64)>, String> {
    let header = parse_header(mfra_box, mfra_box.len() as u64)?;
    if &header.kind != b"mfra" {
        return Err("mfro points at something other than an mfra box".into());
    }
    let payload = mfra_box
        .get(usize::try_from(header.header_len).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    let mut last = Vec::new();
    for child in children(payload) {
        let (kind, tfra) = child?;
        if &kind != b"tfra" || last.len() >= MAX_TRACKS {
            continue;
        }
        let mut r = Reader::new(tfra);
        let wide = r.u8() == Some(1);
        let cut = || "tfra cut short".to_string();
        r.skip(3).ok_or_else(cut)?;
        let track_id = r.u32().ok_or_else(cut)?;
        let sizes = r.u32().ok_or_else(cut)?;
        let count = r.u32().ok_or_else(cut)?;
        let extra = ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3;
        let entry_len = if wide { 16 } else { 8 } + extra as usize;
        if u64::from(count) * entry_len as u64 > r.remaining() as u64 {
            return Err("tfra holds fewer entries than it says".into());
        }
        let mut latest: Option<(u64, u64)> = None;
        for _ in 0..count {
            let time = r.u32_or_u64(wide).ok_or_else(cut)?;
            let offset = r.u32_or_u64(wide).ok_or_else(cut)?;
            r.skip(extra as usize).ok_or_else(cut)?;
            if latest.is_none_or(|(t, _)| time >= t) {
                latest = Some((time, offset));
            }
        }
        if let Some((time, offset)) = latest {
            last.push((track_id, time, offset));
        }
    }
    Ok(last)
}

/// The payload of the box at `offset`, which must be of `kind`; reads its header and then its body if needed.
fn box_payload<'w>(w: &'w Windows, offset: u64, kind: &FourCc, container: Container) -> Result<&'w [u8], Halt> {
    let size = w.size();
    let header_bytes = w.bytes_reading_ahead(offset..offset.saturating_add(16).min(size), HOP_READ)?;
    let header = parse_header(header_bytes, size - offset).map_err(|e| corrupt(container, e))?;
    if &header.kind != kind {
        return Err(corrupt(
            container,
            format!("expected a `{}` box at byte {offset}", fourcc_name(kind)),
        ));
    }
    let end = offset.checked_add(header.size).filter(|&end| end <= size);
    let end = end.ok_or_else(|| truncated(container, format!("a `{}` box runs past the end", fourcc_name(kind))))?;
    if header.size > MAX_MOOV_BYTES {
        return Err(corrupt(
            container,
            format!("a `{}` box of {} bytes", fourcc_name(kind), header.size),
        ));
    }
    w.bytes(offset + header.header_len..end)
}

/// The payload of the box at `offset` if all of it is held.
fn held_box_payload(w: &Windows, offset: u64) -> Option<&[u8]> {
    let size = w.size();
    let header = parse_header(w.slice(offset..offset.checked_add(16)?.min(size))?, size - offset).ok()?;
    w.slice(offset.checked_add(header.header_len)?..offset.checked_add(header.size)?)
}

/// Parses every moof that follows the box at `offset` while their headers are held.
fn follow_chain(w: &Windows, offset: u64, fragments: &mut Fragments<'_>) -> Result<(), String> {
    let size = w.size();
    let Some(first) = w.slice(offset..offset.saturating_add(16).min(size)) else {
        return Ok(());
    };
    let header = parse_header(first, size - offset)?;
    follow_chain_from(w, offset.saturating_add(header.size), fragments)
}

fn follow_chain_from(w: &Windows, mut offset: u64, fragments: &mut Fragments<'_>) -> Result<(), String> {
    let size = w.size();
    for _ in 0..MAX_FRAGMENTS * 2 {
        if offset >= size {
            break;
        }
        let Some(bytes) = w.slice(offset..offset.saturating_add(16).min(size)) else {
            break;
        };
        let Ok(header) = parse_header(bytes, size - offset) else {
            break;
        };
        if &header.kind == b"moof" {
            if let Some(moof) = held_box_payload(w, offset) {
                fragments.add_moof(moof, offset, None)?;
            }
        }
        offset = offset.saturating_add(header.size);
    }
    Ok(())
}

/// Finds, in the tail window (`tail` starting at file offset `start`), the first `moof` from which a chain of at most
/// `2 × MAX_FRAGMENTS` plausible boxes reaches exactly the end of the file: the last fragments, without an index. A
/// stray "moof" inside media data would have to chain to EOF by chance to be mistaken for one.
///
/// Each offset's distance to the end (in boxes, or none when its chain breaks) is remembered, so a walk stops where
/// an earlier one passed and every box is read once, whatever the number of candidates. Every header read spends one
/// of `steps`; none left, and the search ends without an answer (as for a tail with no chain).
fn find_moof_chain(tail: &[u8], start: u64, size: u64, steps: &mut usize) -> Option<u64> {
    const CHAIN_KINDS: [&FourCc; 9] = [
        b"moof", b"mdat", b"free", b"skip", b"styp", b"sidx", b"prft", b"emsg", b"mfra",
    ];
    // Boxes from an offset to the end of the file; `None`: the chain from there breaks.
    let mut to_end: std::collections::HashMap<u64, Option<usize>> = std::collections::HashMap::new();
    let mut from = 0usize;
    while let Some(found) = tail.get(from..)?.windows(4).position(|w| w == b"moof") {
        let at = from + found;
        from = at + 1;
        let Some(box_start) = at.checked_sub(4) else { continue };
        let candidate = start + box_start as u64;
        let mut offset = candidate;
        let mut walked = Vec::new();
        let rest = loop {
            if let Some(known) = to_end.get(&offset) {
                break *known;
            }
            *steps = steps.checked_sub(1)?;
            walked.push(offset);
            let rel = (offset - start) as usize;
            let Some(header) = tail
                .get(rel..rel.saturating_add(16).min(tail.len()))
                .and_then(|bytes| parse_header(bytes, size - offset).ok())
                .filter(|header| CHAIN_KINDS.contains(&&header.kind))
            else {
                break None;
            };
            match offset.checked_add(header.size) {
                Some(end) if end == size => break Some(0),
                Some(end) if end < size => offset = end,
                _ => break None,
            }
        };
        for (walked_before, visited) in walked.iter().rev().enumerate() {
            to_end.insert(*visited, rest.map(|boxes| boxes + walked_before + 1));
        }
        if to_end
            .get(&candidate)
            .copied()
            .flatten()
            .is_some_and(|boxes| boxes <= MAX_FRAGMENTS * 2)
        {
            return Some(candidate);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------------------------
// Putting it together

pub(super) fn probe(w: &Windows, container: Container) -> Result<ProbeReport, Halt> {
    let size = w.size();
    let top = walk_top_level(w, container)?;
    let Some((moov_range, payload_start)) = top.moov.clone() else {
        if let Some(expected) = top.truncated_at {
            return Err(truncated(
                container,
                format!(
                    "its media data runs to byte {expected} but the file has {size}, and the movie header is missing"
                ),
            ));
        }
        return Err(unreadable(Some(container), UnreadableReason::MissingMovie));
    };
    if moov_range.end - moov_range.start > MAX_MOOV_BYTES {
        return Err(corrupt(
            container,
            format!(
                "its movie header is {} bytes, more than a 10-minute file needs",
                moov_range.end - moov_range.start
            ),
        ));
    }
    let moov_box = w.bytes(moov_range.clone())?;
    let payload = moov_box.get(usize::try_from(payload_start - moov_range.start).unwrap_or(usize::MAX)..);
    let movie = parse_movie(payload.unwrap_or_default(), container)?;
    let fragments = if movie.fragmented {
        Some(read_fragments(w, &top, &movie, container)?)
    } else {
        None
    };

    let mut report = ProbeReport::new(container, size);
    report.fingerprint = Some(fingerprint(size, &[moov_box]));
    report.truncated = top.truncated_at.map(|expected_size| Truncation { expected_size });

    let video_track = movie
        .tracks
        .iter()
        .find(|t| &t.handler == b"vide" && matches!(t.entry, Some(SampleEntry::Visual { .. })))
        .or_else(|| {
            movie
                .tracks
                .iter()
                .find(|t| matches!(t.entry, Some(SampleEntry::Visual { .. })))
        });
    let audio_track = movie
        .tracks
        .iter()
        .find(|t| &t.handler == b"soun" && matches!(t.entry, Some(SampleEntry::Audio { .. })));

    if let Some(track) = video_track {
        let timing = fragments
            .as_ref()
            .and_then(|f| f.timings.iter().find(|t| t.track_id == track.id));
        report.video = video_stream(track, timing);
    }
    if let Some(
        track @ Track {
            entry:
                Some(SampleEntry::Audio {
                    codec,
                    sample_rate,
                    channels,
                }),
            ..
        },
    ) = audio_track
    {
        let mut audio = AudioStream {
            codec: codec.clone(),
            sample_rate: *sample_rate,
            channels: *channels,
        };
        // MPEG audio in `mp4a` has no decoder config, and ISO sample entries carry a template channel count of 2;
        // the first frame's header says what the decoder will see, when it is among the bytes already held.
        if matches!(codec.as_str(), "mp3" | "mp2") {
            let frame = track.first_chunk.and_then(|at| w.slice(at..at.saturating_add(4)));
            if let Some(header) = frame.and_then(audio::parse_mpeg_audio) {
                audio.sample_rate = Some(header.sample_rate);
                audio.channels = Some(header.channels);
            }
        }
        report.audio = Some(audio);
    }
    report.duration_ms = match &fragments {
        Some(fragments) => fragmented_duration_ms(&movie, fragments, [video_track, audio_track], w, &top),
        None => movie_duration_ms(&movie),
    };
    Ok(report)
}

fn video_stream(track: &Track, fragments: Option<&FragmentTiming>) -> Option<VideoStream> {
    let Some(SampleEntry::Visual {
        codec,
        width,
        height,
        profile,
        level,
        sps,
        pixel_aspect,
    }) = &track.entry
    else {
        return None;
    };
    // The SPS is the truth for H.264 (cropping applied); then the sample entry; then the track header.
    let dimensions = sps
        .as_ref()
        .map(|s| (s.width, s.height))
        .or_else(|| (*width > 0 && *height > 0).then_some((*width, *height)))
        .or_else(|| (track.tkhd_size.0 > 0 && track.tkhd_size.1 > 0).then_some(track.tkhd_size));
    let frame_rate = match fragments {
        Some(timing) => fragmented_frame_rate(timing, track.media_timescale),
        None => average_rate(track.samples, track.sample_ticks, track.media_timescale),
    };
    Some(VideoStream {
        codec: codec.clone(),
        profile: profile.clone(),
        level: level.clone(),
        dimensions,
        rotation: rotation_from_matrix(track.matrix_ab),
        frame_rate,
        pixel_aspect: pixel_aspect.or_else(|| sps.as_ref().and_then(|s| s.sample_aspect)),
    })
}

fn average_rate(samples: u64, ticks: u64, timescale: u32) -> Option<f64> {
    (samples > 0 && ticks > 0 && timescale > 0).then(|| samples as f64 * f64::from(timescale) / ticks as f64)
}

/// Frames ÷ time over the whole track: the fragments read count exactly, and the time between them (not read)
/// is assumed to run at the most common sample duration.
fn fragmented_frame_rate(timing: &FragmentTiming, timescale: u32) -> Option<f64> {
    let span = timing.end.max(timing.ticks);
    let unread = span.saturating_sub(timing.ticks);
    let estimated = if unread > 0 && timing.common_delta.candidate > 0 {
        timing.samples.saturating_add(unread / timing.common_delta.candidate)
    } else {
        timing.samples
    };
    average_rate(estimated, span, timescale)
}

/// Clockwise rotation from the matrix's first row: FFmpeg's display rotation is −atan2(b, a) counter-clockwise,
/// i.e. atan2(b, a) clockwise, rounded to the nearest quarter turn.
fn rotation_from_matrix((a, b): (i32, i32)) -> u32 {
    if a == 0 && b == 0 {
        return 0;
    }
    let degrees = f64::from(b).atan2(f64::from(a)).to_degrees();
    let quarter_turns = (degrees / 90.0).round() as i64;
    (quarter_turns.rem_euclid(4) * 90) as u32
}

fn ticks_to_ms(ticks: u64, timescale: u32) -> Option<u64> {
    (timescale > 0).then(|| ((u128::from(ticks) * 1000 + u128::from(timescale) / 2) / u128::from(timescale)) as u64)
}

/// The presentation duration (mvhd, which covers edit lists); when it is absent or "unknown" (all ones), the
/// longest track by its edit list, track header or media duration.
fn movie_duration_ms(movie: &Movie) -> Option<u64> {
    let unknown = |d: u64| d == 0 || d == u64::from(u32::MAX) || d == u64::MAX;
    if movie.timescale > 0 && !unknown(movie.duration) {
        return ticks_to_ms(movie.duration, movie.timescale);
    }
    movie
        .tracks
        .iter()
        .filter_map(|t| {
            let presented = t.edited_duration.or(Some(t.tkhd_duration)).filter(|&d| !unknown(d));
            presented
                .and_then(|d| ticks_to_ms(d, movie.timescale))
                .or_else(|| ticks_to_ms(t.media_duration, t.media_timescale))
        })
        .max()
}

fn fragmented_duration_ms(
    movie: &Movie,
    fragments: &Fragments<'_>,
    tracks: [Option<&Track>; 2],
    w: &Windows,
    top: &TopLevel,
) -> Option<u64> {
    let from_fragments = tracks
        .into_iter()
        .flatten()
        .filter_map(|track| {
            let timing = fragments.timings.iter().find(|t| t.track_id == track.id)?;
            ticks_to_ms(timing.end.max(timing.ticks), track.media_timescale)
        })
        .max()
        .filter(|&ms| ms > 0);
    from_fragments
        .or_else(|| movie.fragment_duration.and_then(|d| ticks_to_ms(d, movie.timescale)))
        .or_else(|| {
            top.sidx
                .clone()
                .and_then(|range| w.slice(range))
                .and_then(sidx_duration_ms)
        })
}

/// Σ subsegment durations of a segment index.
fn sidx_duration_ms(payload: &[u8]) -> Option<u64> {
    let mut r = Reader::new(payload);
    let wide = r.u8()? == 1;
    r.skip(3 + 4)?;
    let timescale = r.u32()?;
    r.skip(if wide { 16 } else { 8 })?;
    r.skip(2)?;
    let count = r.u16()?;
    let mut total = 0u64;
    for _ in 0..count {
        r.skip(4)?;
        total = total.saturating_add(u64::from(r.u32()?));
        r.skip(4)?;
    }
    ticks_to_ms(total, timescale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_search_on_a_carpet_of_moof_boxes_stays_within_its_budget() {
        let tail = crate::probe::crafted::moof_carpet();
        let size = tail.len() as u64;
        let mut steps = TAIL_SEARCH_STEPS;
        assert_eq!(find_moof_chain(&tail, 0, size, &mut steps), None);
        // The first walk crosses every box to the junk; every later candidate starts on a box it remembers.
        assert_eq!(
            TAIL_SEARCH_STEPS - steps,
            crate::probe::crafted::MOOF_CARPET_BOXES + 1,
            "one header read per box"
        );
    }

    #[test]
    fn a_real_chain_after_stray_moofs_is_still_found_and_a_spent_budget_finds_none() {
        // Stray "moof" bytes in media data, then moof + mdat reaching the end exactly.
        let mut tail = b"xxxxmoofxxxxxxxxmoof".to_vec();
        let chain_start = tail.len() as u64;
        tail.extend_from_slice(&[0, 0, 0, 8, b'm', b'o', b'o', b'f']);
        tail.extend_from_slice(&[0, 0, 0, 12, b'm', b'd', b'a', b't', 1, 2, 3, 4]);
        let size = tail.len() as u64;
        assert_eq!(
            find_moof_chain(&tail, 0, size, &mut TAIL_SEARCH_STEPS.clone()),
            Some(chain_start)
        );
        assert_eq!(find_moof_chain(&tail, 0, size, &mut 2), None);
    }

    #[test]
    fn rotation_follows_ffmpeg_display_matrix_convention() {
        const ONE: i32 = 0x10000;
        assert_eq!(rotation_from_matrix((ONE, 0)), 0);
        // A phone held upright: a=0, b=1 → turn 90° clockwise (ffprobe shows rotation -90).
        assert_eq!(rotation_from_matrix((0, ONE)), 90);
        assert_eq!(rotation_from_matrix((-ONE, 0)), 180);
        assert_eq!(rotation_from_matrix((0, -ONE)), 270);
    }

    #[test]
    fn stts_clamps_a_long_last_sample_like_ffmpeg() {
        let mut stts = vec![0, 0, 0, 0, 0, 0, 0, 2];
        stts.extend_from_slice(&200u32.to_be_bytes());
        stts.extend_from_slice(&512u32.to_be_bytes());
        stts.extend_from_slice(&1u32.to_be_bytes());
        stts.extend_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(fold_stts(&stts), Some((201, 201 * 512)));
    }

    #[test]
    fn counts_larger_than_the_box_are_corrupt_not_allocations() {
        let stts = [0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 2, 0];
        assert_eq!(fold_stts(&stts), None);
        let mut vote = MajorityVote::default();
        let trun = [0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(fold_trun(&trun, 512, &mut vote), None);
    }

    #[test]
    fn majority_vote_finds_the_common_duration() {
        let mut vote = MajorityVote::default();
        vote.add(840, 1);
        vote.add(512, 59);
        vote.add(1024, 2);
        assert_eq!(vote.candidate, 512);
    }

    #[test]
    fn children_reject_oversized_and_undersized_boxes() {
        let oversized = [0, 0, 0, 100, b'f', b'r', b'e', b'e'];
        assert!(children(&oversized).next().is_some_and(|c| c.is_err()));
        let undersized = [0, 0, 0, 3, b'f', b'r', b'e', b'e'];
        assert!(children(&undersized).next().is_some_and(|c| c.is_err()));
        let wide_too_small = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 8];
        assert!(children(&wide_too_small).next().is_some_and(|c| c.is_err()));
        // Trailing bytes shorter than a header are padding.
        assert!(children(&[0, 0, 0, 0]).next().is_none());
    }
}
