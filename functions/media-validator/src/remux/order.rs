//! Picture order of H.264 access units, read from their slice headers: what dates a picture that its container
//! left without a timestamp. MPEG-PS dates only the first access unit that starts in each PES packet, and ffmpeg's
//! 2 KiB packs leave every picture smaller than a pack undated.

use h264_reader::{
    nal::{
        pps::PicParameterSet,
        slice::{DecRefPicMarking, FieldPic, MemoryManagementControlOperation, PicOrderCountLsb, SliceHeader},
        sps::{PicOrderCntType, SeqParameterSet},
        NalHeader,
    },
    rbsp::{decode_nal, BitReader},
    Context,
};

/// A slice header fits in this many bytes of its NAL unit, whatever the slice's size.
const SLICE_HEADER_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// Picture order count (type 0), within `period` (an IDR or a memory reset starts the next).
    Count { poc: i64, period: u32, resets_after: bool },
    /// Pictures are shown in decoding order (type 2).
    Decoding,
    /// Type 1 (derived from frame numbers and offsets): not followed here.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Picture {
    pub(super) order: Order,
    pub(super) idr: bool,
    /// One field of an interlaced frame: a sample holds a whole frame.
    pub(super) field: bool,
}

#[derive(Default)]
pub(super) struct PictureOrder {
    context: Context,
    prev_msb: i64,
    prev_lsb: i64,
    period: u32,
}

impl std::fmt::Debug for PictureOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PictureOrder")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl PictureOrder {
    /// Keeps an SPS or PPS (the slice headers that follow are read against them); damaged ones are ignored.
    pub(super) fn parameter_set(&mut self, nal: &[u8]) {
        if nal.len() < 4 || nal.len() > super::tracks::MAX_PARAMETER_SET {
            return;
        }
        let Ok(rbsp) = decode_nal(nal) else { return };
        match nal[0] & 0x1F {
            7 => {
                if let Ok(sps) = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])) {
                    self.context.put_seq_param_set(sps);
                }
            }
            8 => {
                if let Ok(pps) = PicParameterSet::from_bits(&self.context, BitReader::new(&rbsp[..])) {
                    self.context.put_pic_param_set(pps);
                }
            }
            _ => {}
        }
    }

    /// The first slice NAL of an access unit (call it for every picture, in decoding order: the count of one
    /// depends on the reference pictures before it). `None` when its header or parameter sets cannot be read.
    pub(super) fn picture(&mut self, nal: &[u8]) -> Option<Picture> {
        let header = NalHeader::new(*nal.first()?).ok()?;
        let rbsp = decode_nal(nal.get(..nal.len().min(SLICE_HEADER_BYTES))?).ok()?;
        let (slice, sps, _) =
            SliceHeader::from_bits(&self.context, &mut BitReader::new(&rbsp[..]), header, None).ok()?;
        let idr = nal[0] & 0x1F == 5;
        let field = matches!(slice.field_pic, FieldPic::Field(_));
        let resets = matches!(
            &slice.dec_ref_pic_marking,
            Some(DecRefPicMarking::Adaptive(ops))
                if ops.iter().any(|op| matches!(op, MemoryManagementControlOperation::AllRefPicturesUnused))
        );
        let order = match &sps.pic_order_cnt {
            PicOrderCntType::TypeZero {
                log2_max_pic_order_cnt_lsb_minus4,
            } => {
                // ITU-T H.264 8.2.1.1: the most significant part follows the last reference picture's.
                let max = 1i64 << (u32::from(*log2_max_pic_order_cnt_lsb_minus4) + 4).min(16);
                if idr {
                    self.prev_msb = 0;
                    self.prev_lsb = 0;
                    self.period += 1;
                }
                let lsb = i64::from(match slice.pic_order_cnt_lsb? {
                    PicOrderCountLsb::Frame(lsb) => lsb,
                    PicOrderCountLsb::FieldsAbsolute { pic_order_cnt_lsb, .. } => pic_order_cnt_lsb,
                    PicOrderCountLsb::FieldsDelta(_) => return None,
                });
                let msb = if lsb < self.prev_lsb && self.prev_lsb - lsb >= max / 2 {
                    self.prev_msb + max
                } else if lsb > self.prev_lsb && lsb - self.prev_lsb > max / 2 {
                    self.prev_msb - max
                } else {
                    self.prev_msb
                };
                let period = self.period;
                if resets {
                    self.prev_msb = 0;
                    self.prev_lsb = 0;
                    self.period += 1;
                } else if header.nal_ref_idc() != 0 {
                    self.prev_msb = msb;
                    self.prev_lsb = lsb;
                }
                Order::Count {
                    poc: msb + lsb,
                    period,
                    resets_after: resets,
                }
            }
            PicOrderCntType::TypeTwo => Order::Decoding,
            PicOrderCntType::TypeOne { .. } => Order::Unknown,
        };
        Some(Picture { order, idr, field })
    }
}
