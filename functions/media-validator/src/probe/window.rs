//! The bytes fetched so far: a few windows of the object, merged when they touch so that a box spanning two reads
//! (a moov that starts in the head window and ends in a later read) is one contiguous slice.

use std::{borrow::Cow, ops::Range};

use super::Halt;

#[derive(Debug)]
struct Window {
    start: u64,
    data: Vec<u8>,
}

impl Window {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

#[derive(Debug, Default)]
pub(crate) struct Windows {
    /// Sorted by start, never overlapping or touching (they are merged on insert).
    parts: Vec<Window>,
    size: u64,
}

impl Windows {
    pub(crate) fn new(size: u64) -> Self {
        Self {
            parts: Vec::new(),
            size,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Adds `bytes` found at `start`. The caller has checked that they lie within the object.
    pub(crate) fn insert(&mut self, start: u64, bytes: Cow<'_, [u8]>) {
        let end = start + bytes.len() as u64;
        if bytes.is_empty() || self.parts.iter().any(|w| w.start <= start && end <= w.end()) {
            return;
        }
        // A read that continues a held window (the suffix read overlapping the head of a small file, the rest of a
        // moov) extends it in place: only the new bytes are copied, once.
        if let Some(window) = self.parts.iter_mut().find(|w| w.start <= start && start <= w.end()) {
            let skip = (window.end() - start) as usize;
            let fresh = bytes.get(skip..).unwrap_or_default();
            window.data.reserve_exact(fresh.len());
            window.data.extend_from_slice(fresh);
        } else {
            let at = self.parts.partition_point(|w| w.start < start);
            self.parts.insert(
                at,
                Window {
                    start,
                    data: bytes.into_owned(),
                },
            );
        }
        self.coalesce();
    }

    /// Merges neighbours that overlap or touch, growing the earlier one in place so that the peak memory is the
    /// union of the windows plus one growth, never a second full copy.
    fn coalesce(&mut self) {
        let mut i = 0;
        while i + 1 < self.parts.len() {
            let (left_end, right_start) = (self.parts[i].end(), self.parts[i + 1].start);
            if right_start > left_end {
                i += 1;
                continue;
            }
            let right = self.parts.remove(i + 1);
            let right_end = right.end();
            if right_end > left_end {
                let skip = (left_end - right.start) as usize;
                let left = &mut self.parts[i];
                left.data.reserve_exact((right_end - left_end) as usize);
                left.data.extend_from_slice(right.data.get(skip..).unwrap_or_default());
            }
        }
    }

    /// The bytes of `range` (clamped to the object) if one window holds all of them; otherwise asks for the part
    /// that is missing.
    pub(crate) fn bytes(&self, range: Range<u64>) -> Result<&[u8], Halt> {
        let range = range.start.min(self.size)..range.end.min(self.size);
        if let Some(slice) = self.slice(range.clone()) {
            return Ok(slice);
        }
        Err(Halt::Need(self.missing(range)))
    }

    /// Like [`Windows::bytes`], but when something is missing asks for a read of at least `read_ahead` bytes from
    /// the start of the gap, so that walking box headers does not cost one read per header.
    pub(crate) fn bytes_reading_ahead(&self, range: Range<u64>, read_ahead: u64) -> Result<&[u8], Halt> {
        self.bytes(range).map_err(|halt| match halt {
            Halt::Need(gap) => {
                let end = gap.end.max(gap.start.saturating_add(read_ahead)).min(self.size);
                Halt::Need(gap.start..end)
            }
            other => other,
        })
    }

    pub(crate) fn slice(&self, range: Range<u64>) -> Option<&[u8]> {
        if range.start > range.end {
            return None;
        }
        let window = self
            .parts
            .iter()
            .find(|w| w.start <= range.start && range.end <= w.end())?;
        let from = usize::try_from(range.start - window.start).ok()?;
        let to = usize::try_from(range.end - window.start).ok()?;
        window.data.get(from..to)
    }

    pub(crate) fn has(&self, range: Range<u64>) -> bool {
        self.slice(range).is_some()
    }

    /// The smallest range covering every byte of `range` that no window holds.
    fn missing(&self, range: Range<u64>) -> Range<u64> {
        let mut first = range.start;
        // Skip forward over windows that cover the start.
        for w in &self.parts {
            if w.start <= first && first < w.end() {
                first = w.end();
            }
        }
        let mut last = range.end;
        for w in self.parts.iter().rev() {
            if w.start < last && last <= w.end() {
                last = w.start;
            }
        }
        if first >= last {
            // Covered piecewise but not by one window: cannot happen once windows are coalesced.
            first = range.start;
            last = range.end;
        }
        first..last
    }

    /// The start of the window that ends at EOF (the suffix read), if any: the probe reads up to it rather than a
    /// little at a time when a box begins before it.
    pub(crate) fn tail_start(&self) -> Option<u64> {
        self.parts.iter().find(|w| w.end() == self.size).map(|w| w.start)
    }

    /// The window that starts at offset 0, if any: the head read.
    pub(crate) fn head(&self) -> &[u8] {
        self.parts
            .first()
            .filter(|w| w.start == 0)
            .map(|w| w.data.as_slice())
            .unwrap_or_default()
    }

    /// The window that ends at EOF, with its start offset.
    pub(crate) fn tail(&self) -> Option<(u64, &[u8])> {
        self.parts
            .iter()
            .find(|w| w.end() == self.size)
            .map(|w| (w.start, w.data.as_slice()))
    }

    /// Every byte of the object, when one window holds them all, given away: the windows are left empty.
    pub(crate) fn take_whole(&mut self) -> Option<Vec<u8>> {
        match self.parts.as_slice() {
            [only] if only.start == 0 && only.end() == self.size => self.parts.pop().map(|w| w.data),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_windows_merge_and_gaps_are_reported_exactly() {
        let mut w = Windows::new(100);
        w.insert(0, Cow::Borrowed(&[1; 10]));
        w.insert(90, Cow::Borrowed(&[2; 10]));
        assert_eq!(w.bytes(5..95).unwrap_err().need(), Some(10..90));
        assert_eq!(w.bytes(0..20).unwrap_err().need(), Some(10..20));
        w.insert(10, Cow::Borrowed(&[3; 80]));
        assert_eq!(w.bytes(5..95).map(<[u8]>::len).ok(), Some(90));
        assert_eq!(w.take_whole().map(|whole| whole.len()), Some(100));
        assert_eq!(w.take_whole(), None, "given away once");
    }

    #[test]
    fn overlapping_inserts_keep_the_first_bytes_and_extend() {
        let mut w = Windows::new(30);
        w.insert(0, Cow::Borrowed(&[1; 10]));
        w.insert(5, Cow::Borrowed(&[2; 10]));
        assert_eq!(w.slice(0..15), Some(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2][..]));
    }

    #[test]
    fn read_ahead_is_clamped_to_the_object() {
        let w = Windows::new(100);
        assert_eq!(w.bytes_reading_ahead(95..103, 64).unwrap_err().need(), Some(95..100));
        assert_eq!(w.bytes_reading_ahead(10..18, 64).unwrap_err().need(), Some(10..74));
    }
}
