//! A test-side MPEG-PS muxer: ffmpeg cannot write AAC into a program stream ("Unsupported audio codec"), so the
//! H.264 + AAC program streams of the remux tests are made here from the PES packets of an ffmpeg-made transport
//! stream. Like ffmpeg's own PS muxer it cuts each elementary stream into fixed-size packets whatever the access
//! units' sizes, dating each packet with the first unit that starts in it; ADTS frames run across packets. Each
//! packet gets a pack header (ISO 13818-1 2.5.3.3, with stuffing bytes); the first pack adds a system header and a
//! Program Stream Map naming H.264 (0x1B, stream 0xE0) and AAC (0x0F, stream 0xC0, an MPEG audio stream id, which
//! 13818-1 table 2-22 assigns to 13818-7 and 14496-3 audio too); padding packets every few packs; an end code.

use std::collections::HashMap;

/// Elementary-stream bytes per PES packet (ffmpeg writes 2048-byte packs).
pub const VIDEO_CHUNK: usize = 2000;
pub const AUDIO_CHUNK: usize = 700;

struct Elementary {
    id: u8,
    chunk: usize,
    data: Vec<u8>,
    /// `(position in data, pts, dts)` of each PES of the source, in order.
    stamps: Vec<(usize, u64, Option<u64>)>,
    emitted: usize,
}

/// The transport stream's first H.264 and AAC streams as an MPEG-2 program stream.
pub fn from_transport_stream(ts: &[u8]) -> Vec<u8> {
    let mut pmt_pid = None;
    let mut pids: HashMap<u16, usize> = HashMap::new();
    let mut streams = vec![
        Elementary {
            id: 0xE0,
            chunk: VIDEO_CHUNK,
            data: Vec::new(),
            stamps: Vec::new(),
            emitted: 0,
        },
        Elementary {
            id: 0xC0,
            chunk: AUDIO_CHUNK,
            data: Vec::new(),
            stamps: Vec::new(),
            emitted: 0,
        },
    ];
    let mut pes: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    let mut packs = 0u64;
    let complete = |index: usize, data: &[u8], streams: &mut Vec<Elementary>, out: &mut Vec<u8>, packs: &mut u64| {
        let (pts, dts, payload) = pes_fields(data);
        let s = &mut streams[index];
        if let Some(pts) = pts {
            // Every unit's time: a video PES is one access unit; an audio PES holds ADTS frames of 1024 samples.
            s.stamps.push((s.data.len(), pts, dts));
            let mut at = 0;
            while s.id == 0xC0 && at + 7 <= payload.len() {
                let h = &payload[at..];
                let rate = [
                    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
                ][usize::from((h[2] >> 2) & 0x0F)];
                let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
                at += len;
                if at < payload.len() {
                    let earlier = s.stamps.iter().filter(|&&(p, _, _)| p >= s.data.len()).count() as u64;
                    s.stamps
                        .push((s.data.len() + at, pts + earlier * 1024 * 90_000 / rate, None));
                }
            }
        }
        s.data.extend_from_slice(payload);
        while s.data.len() - s.emitted >= s.chunk {
            write_packet(s, out, packs);
        }
    };
    for packet in ts.chunks_exact(188) {
        let pid = (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2]);
        let start = packet[1] & 0x40 != 0;
        let control = (packet[3] >> 4) & 0x3;
        if control & 1 == 0 {
            continue;
        }
        let at = if control & 2 != 0 {
            5 + usize::from(packet[4])
        } else {
            4
        };
        let payload = &packet[at.min(188)..];
        if pid == 0 && start {
            let section = &payload[1 + usize::from(payload[0])..];
            pmt_pid = Some((u16::from(section[10] & 0x1F) << 8) | u16::from(section[11]));
        } else if Some(pid) == pmt_pid && start && pids.is_empty() {
            let section = &payload[1 + usize::from(payload[0])..];
            let length = (usize::from(section[1] & 0x0F) << 8) | usize::from(section[2]);
            let info = (usize::from(section[10] & 0x0F) << 8) | usize::from(section[11]);
            let mut i = 12 + info;
            while i + 5 <= 3 + length - 4 {
                let es_pid = (u16::from(section[i + 1] & 0x1F) << 8) | u16::from(section[i + 2]);
                match section[i] {
                    0x1B => drop(pids.insert(es_pid, 0)),
                    0x0F => drop(pids.insert(es_pid, 1)),
                    _ => {}
                }
                i += 5 + ((usize::from(section[i + 3] & 0x0F) << 8) | usize::from(section[i + 4]));
            }
            write_headers(&mut out);
        } else if let Some(&index) = pids.get(&pid) {
            if start {
                if let Some(previous) = pes.insert(pid, payload.to_vec()) {
                    complete(index, &previous, &mut streams, &mut out, &mut packs);
                }
            } else if let Some(buffer) = pes.get_mut(&pid) {
                buffer.extend_from_slice(payload);
            }
        }
    }
    for (pid, data) in pes {
        complete(pids[&pid], &data, &mut streams, &mut out, &mut packs);
    }
    for s in &mut streams {
        while s.emitted < s.data.len() {
            write_packet(s, &mut out, &mut packs);
        }
    }
    out.extend_from_slice(&[0, 0, 1, 0xB9]);
    out
}

fn pes_fields(pes: &[u8]) -> (Option<u64>, Option<u64>, &[u8]) {
    let flags = pes[7] >> 6;
    let header_len = usize::from(pes[8]);
    let pts = (flags & 2 != 0).then(|| read_timestamp(&pes[9..14]));
    let dts = (flags == 3).then(|| read_timestamp(&pes[14..19]));
    (pts, dts, &pes[9 + header_len..])
}

fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | (u64::from(b[2]) >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4]) >> 1
}

fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    [
        (prefix << 4) | ((ts >> 29) as u8 & 0x0E) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xFE) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8 & 0xFE) | 1,
    ]
}

/// An MPEG-2 pack header with two stuffing bytes.
fn pack_header(out: &mut Vec<u8>, scr: u64) {
    let mux_rate: u32 = 25_000;
    out.extend_from_slice(&[0, 0, 1, 0xBA]);
    out.extend_from_slice(&[
        0x44 | ((scr >> 27) as u8 & 0x38) | ((scr >> 28) as u8 & 0x03),
        (scr >> 20) as u8,
        ((scr >> 12) as u8 & 0xF8) | 0x04 | ((scr >> 13) as u8 & 0x03),
        (scr >> 5) as u8,
        ((scr << 3) as u8 & 0xF8) | 0x04,
        0x01,
        (mux_rate >> 14) as u8,
        (mux_rate >> 6) as u8,
        ((mux_rate << 2) as u8 & 0xFC) | 0x03,
        0xF8 | 2,
        0xFF,
        0xFF,
    ]);
}

fn write_headers(out: &mut Vec<u8>) {
    pack_header(out, 0);
    // System header: rate bound, one audio and one video stream, their buffer bounds.
    out.extend_from_slice(&[0, 0, 1, 0xBB, 0, 12, 0x80, 0x01, 0x01, 0x04, 0xE1, 0xFF]);
    out.extend_from_slice(&[0xE0, 0xE0, 0xE8, 0xC0, 0xC0, 0x20]);
    // Program Stream Map.
    let mut psm = vec![0, 0, 1, 0xBC, 0, 18, 0x80, 0x01, 0, 0, 0, 8];
    psm.extend_from_slice(&[0x1B, 0xE0, 0, 0, 0x0F, 0xC0, 0, 0]);
    let crc = crc32_mpeg(&psm);
    psm.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&psm);
}

/// One PES packet of at most `chunk` payload bytes, dated by the first unit that starts in it.
fn write_packet(s: &mut Elementary, out: &mut Vec<u8>, packs: &mut u64) {
    let from = s.emitted;
    let to = (from + s.chunk).min(s.data.len());
    let stamp = s.stamps.iter().find(|(p, _, _)| *p >= from && *p < to).copied();
    *packs += 1;
    pack_header(
        out,
        stamp.map_or(0, |(_, pts, dts)| dts.unwrap_or(pts).saturating_sub(9000)),
    );
    let mut header = vec![0x80];
    match stamp {
        Some((_, pts, Some(dts))) if dts != pts => {
            header.extend_from_slice(&[0xC0, 10]);
            header.extend_from_slice(&timestamp(3, pts));
            header.extend_from_slice(&timestamp(1, dts));
        }
        Some((_, pts, _)) => {
            header.extend_from_slice(&[0x80, 5]);
            header.extend_from_slice(&timestamp(2, pts));
        }
        None => header.extend_from_slice(&[0, 0]),
    }
    let len = (header.len() + to - from) as u16;
    out.extend_from_slice(&[0, 0, 1, s.id]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&s.data[from..to]);
    s.emitted = to;
    if (*packs).is_multiple_of(7) {
        out.extend_from_slice(&[0, 0, 1, 0xBE, 0, 16]);
        out.extend_from_slice(&[0xFF; 16]);
    }
}

fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}
