//! The sans-IO probe: a state machine fed byte ranges of one object.
//!
//! ```text
//! let mut probe = Probe::new(Budget::default());
//! issue probe.initial_reads() in parallel (head 1 MiB, suffix 1 MiB)
//! for each read: step = probe.feed(offset, bytes, object_size)
//! while step is NeedRange(r): read r, step = probe.feed(...)
//! step is Done(report) or Invalid(reason)
//! ```
//!
//! Each `feed` re-reads the structure from the windows held so far (cheap: metadata only) until it either has the
//! facts or names the next range it needs. Nothing here recurses on the input's structure, allocates from a count
//! read from the file, or indexes without a bounds check; the windows are capped by the [`Budget`].

pub(crate) mod audio;
pub(crate) mod bytes;
#[doc(hidden)]
pub mod crafted;
pub(crate) mod h264;
mod image;
mod isobmff;
pub(crate) mod mpeg;
mod report;
mod sniff;
mod window;

use std::{borrow::Cow, ops::Range};

use sha2::{Digest, Sha256};

pub use report::{
    AudioStream, Container, ImageInfo, MediaClass, ProbeReport, Truncation, Unreadable, UnreadableReason, VideoStream,
};
use window::Windows;

const MIB: u64 = 1024 * 1024;
/// The first two reads: enough for a faststart moov, a moov at the end, TS/PS timestamps at both ends, and any
/// image header; large files cost a third read only when their moov is larger than a window.
pub const HEAD_WINDOW: u64 = MIB;
pub const TAIL_WINDOW: u64 = MIB;
/// Reads made to walk box headers outside the windows.
const HOP_READ: u64 = 64 * 1024;
/// The guide's image limit (20 MB). Images up to it are read whole: the fingerprint and the PNG rendition need
/// every byte; larger ones are rejected from their header alone.
const IMAGE_WHOLE_READ_LIMIT: u64 = 20_000_000;

/// What one probe may spend on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_reads: u32,
    pub max_bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_reads: 8,
            max_bytes: 24 * MIB,
        }
    }
}

/// A read the probe asks for before it knows the object's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRequest {
    Span(Range<u64>),
    /// The last `n` bytes.
    Suffix(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Read this range (within the object) and feed it.
    NeedRange(Range<u64>),
    Done(Box<ProbeReport>),
    Invalid(Unreadable),
}

/// How many reads were fed and how many bytes they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub requests: u32,
    pub bytes: u64,
}

/// Why an analysis pass stopped short of an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Halt {
    Need(Range<u64>),
    Unreadable(Unreadable),
}

impl Halt {
    #[cfg(test)]
    pub(crate) fn need(&self) -> Option<Range<u64>> {
        match self {
            Self::Need(range) => Some(range.clone()),
            Self::Unreadable(_) => None,
        }
    }
}

pub(crate) fn unreadable(container: Option<Container>, reason: UnreadableReason) -> Halt {
    Halt::Unreadable(Unreadable::new(container, reason))
}

pub(crate) fn corrupt(container: Container, detail: impl Into<String>) -> Halt {
    unreadable(Some(container), UnreadableReason::Corrupt(detail.into()))
}

pub(crate) fn truncated(container: Container, detail: impl Into<String>) -> Halt {
    unreadable(Some(container), UnreadableReason::Truncated(detail.into()))
}

pub struct Probe {
    budget: Budget,
    windows: Option<Windows>,
    stats: ReadStats,
    finished: Option<Step>,
}

impl Probe {
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            windows: None,
            stats: ReadStats::default(),
            finished: None,
        }
    }

    /// The first two reads, to issue in parallel: they need no knowledge of the object's size.
    pub fn initial_reads(&self) -> [ReadRequest; 2] {
        [ReadRequest::Span(0..HEAD_WINDOW), ReadRequest::Suffix(TAIL_WINDOW)]
    }

    /// The first reads when the caller may know the object's size (an S3 event carries it, a file has it). A file
    /// no larger than the two windows is read once, whole: the two windows would overlap and read its middle
    /// twice. An empty object needs no read at all (feed it an empty buffer), since no range of it exists.
    /// Larger or unknown sizes get the parallel head and suffix pair.
    pub fn initial_reads_for(&self, size: Option<u64>) -> Vec<ReadRequest> {
        match size {
            Some(0) => Vec::new(),
            Some(size) if size <= HEAD_WINDOW + TAIL_WINDOW => vec![ReadRequest::Span(0..size)],
            _ => self.initial_reads().to_vec(),
        }
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Every byte of the object, when the probe read it all (images up to 20 MB, small files), given away without a
    /// copy; the probe holds no bytes afterwards, so call it once the probe is done.
    pub fn take_whole_file(&mut self) -> Option<Vec<u8>> {
        self.windows.as_mut().and_then(Windows::take_whole)
    }

    /// Adds the bytes of one read (found at `offset` in an object of `object_size` bytes) and says what comes next.
    /// When several reads are in flight (the initial pair), feed each one; only the step after the last counts.
    pub fn feed(&mut self, offset: u64, bytes: &[u8], object_size: u64) -> Step {
        self.feed_bytes(offset, Cow::Borrowed(bytes), object_size)
    }

    /// [`Probe::feed`] for a buffer the caller gives away: held as it is instead of copied.
    pub fn feed_owned(&mut self, offset: u64, bytes: Vec<u8>, object_size: u64) -> Step {
        self.feed_bytes(offset, Cow::Owned(bytes), object_size)
    }

    fn feed_bytes(&mut self, offset: u64, bytes: Cow<'_, [u8]>, object_size: u64) -> Step {
        if let Some(done) = &self.finished {
            // A read that was in flight when the answer came (the second of the initial pair) still counts.
            self.stats.requests = self.stats.requests.saturating_add(1);
            self.stats.bytes = self.stats.bytes.saturating_add(bytes.len() as u64);
            return done.clone();
        }
        let step = self
            .accept(offset, bytes, object_size)
            .unwrap_or_else(|halt| self.halt_to_step(halt));
        if !matches!(step, Step::NeedRange(_)) {
            self.finished = Some(step.clone());
        }
        step
    }

    fn accept(&mut self, offset: u64, bytes: Cow<'_, [u8]>, object_size: u64) -> Result<Step, Halt> {
        self.stats.requests = self.stats.requests.saturating_add(1);
        self.stats.bytes = self.stats.bytes.saturating_add(bytes.len() as u64);
        let windows = self.windows.get_or_insert_with(|| Windows::new(object_size));
        if windows.size() != object_size {
            return Err(unreadable(
                None,
                UnreadableReason::InconsistentReads(format!(
                    "one read said {} bytes, another {object_size}",
                    windows.size()
                )),
            ));
        }
        let end = offset.checked_add(bytes.len() as u64).filter(|&end| end <= object_size);
        if end.is_none() {
            return Err(unreadable(
                None,
                UnreadableReason::InconsistentReads(format!(
                    "a read came back beyond the object's {object_size} bytes"
                )),
            ));
        }
        if self.stats.requests > self.budget.max_reads || self.stats.bytes > self.budget.max_bytes {
            return Err(self.over_budget());
        }
        windows.insert(offset, bytes);
        Ok(Step::Done(Box::new(analyse(windows)?)))
    }

    fn halt_to_step(&self, halt: Halt) -> Step {
        match halt {
            Halt::Unreadable(reason) => Step::Invalid(reason),
            Halt::Need(range) => {
                let held = self.windows.as_ref().is_some_and(|w| w.has(range.clone()));
                if range.is_empty() || held {
                    // Asking again for bytes we hold would loop forever: a parser bug, reported as such.
                    return Step::Invalid(Unreadable::new(None, UnreadableReason::Internal));
                }
                let after_reads = self.stats.requests.saturating_add(1);
                let after_bytes = self.stats.bytes.saturating_add(range.end - range.start);
                if after_reads > self.budget.max_reads || after_bytes > self.budget.max_bytes {
                    return match self.over_budget() {
                        Halt::Unreadable(reason) => Step::Invalid(reason),
                        Halt::Need(_) => Step::Invalid(Unreadable::new(None, UnreadableReason::Internal)),
                    };
                }
                Step::NeedRange(range)
            }
        }
    }

    fn over_budget(&self) -> Halt {
        let container = self
            .windows
            .as_ref()
            .and_then(|w| sniff::sniff(w.head(), w.size()).ok());
        unreadable(
            container,
            UnreadableReason::OverBudget {
                reads: self.budget.max_reads,
                bytes: self.budget.max_bytes,
            },
        )
    }
}

/// One pass over everything fetched so far.
fn analyse(windows: &Windows) -> Result<ProbeReport, Halt> {
    let size = windows.size();
    if size == 0 {
        return Err(unreadable(None, UnreadableReason::Empty));
    }
    let head = windows.bytes_reading_ahead(0..size.min(sniff::SNIFF_BYTES), HEAD_WINDOW)?;
    let container = sniff::sniff(head, size).map_err(|reason| unreadable(None, reason))?;
    match container {
        Container::Mp4 | Container::Mov => isobmff::probe(windows, container),
        Container::MpegTs => mpeg::probe_transport_stream(windows),
        Container::MpegPs => mpeg::probe_program_stream(windows),
        Container::Jpeg | Container::Png | Container::Webp | Container::Gif => image::probe(windows, container),
        named => Ok(ProbeReport::new(named, size)),
    }
}

/// The duplicate-rule fingerprint: SHA-256 over the object's size and the given bytes.
pub(crate) fn fingerprint(size: u64, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(size.to_be_bytes());
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Probes an object held in memory through the same state machine, serving each requested range from `data`.
/// The fuzzer, the hostile-input tests and anything else without I/O use it.
pub fn probe_bytes(data: &[u8], budget: Budget) -> (Step, ReadStats) {
    let mut probe = Probe::new(budget);
    let size = data.len() as u64;
    let mut step = (size == 0).then(|| probe.feed(0, &[], 0));
    for request in probe.initial_reads_for(Some(size)) {
        let range = match request {
            ReadRequest::Span(range) => range.start.min(size)..range.end.min(size),
            ReadRequest::Suffix(n) => size.saturating_sub(n)..size,
        };
        step = Some(probe.feed(range.start, slice(data, &range), size));
    }
    let mut step = step.unwrap_or(Step::Invalid(Unreadable::new(None, UnreadableReason::Internal)));
    while let Step::NeedRange(range) = &step {
        let range = range.clone();
        step = probe.feed(range.start, slice(data, &range), size);
    }
    (step, probe.stats())
}

fn slice<'a>(data: &'a [u8], range: &Range<u64>) -> &'a [u8] {
    let start = usize::try_from(range.start).unwrap_or(usize::MAX);
    let end = usize::try_from(range.end).unwrap_or(usize::MAX);
    data.get(start..end).unwrap_or_default()
}
