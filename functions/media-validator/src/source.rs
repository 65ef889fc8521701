//! The one driver that feeds the probe: from S3 through the [`BlobStore`] port in the Lambda, from a local file in
//! the CLI. Both go through [`RangeSource`], so the CLI reads exactly what the Lambda would.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
    sync::Mutex,
};

use async_trait::async_trait;
use bytes::Bytes;
use shared::ports::{BlobError, BlobStore, ByteRange, RangeRead};

use crate::probe::{Budget, Probe, ProbeReport, ReadRequest, ReadStats, Step, Unreadable, UnreadableReason};

#[async_trait]
pub trait RangeSource: Send + Sync {
    /// Reads `range`, pinned to `if_match` (an ETag) when given.
    async fn read(&self, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError>;

    /// The object's size when known before any read: a small object is then read once, whole.
    fn known_size(&self) -> Option<u64> {
        None
    }
}

/// One object in the blob store.
pub struct BlobObject<'a> {
    pub store: &'a dyn BlobStore,
    pub key: &'a str,
    /// From the S3 event or a `head`; `None` when unknown.
    pub size: Option<u64>,
}

#[async_trait]
impl RangeSource for BlobObject<'_> {
    async fn read(&self, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError> {
        self.store.read_range(self.key, range, if_match).await
    }

    fn known_size(&self) -> Option<u64> {
        self.size
    }
}

/// A local file, read with positioned reads like ranged GETs. Its "ETag" is empty: files are not versioned.
pub struct FileSource {
    file: Mutex<File>,
    size: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            file: Mutex::new(file),
            size,
        })
    }
}

#[async_trait]
impl RangeSource for FileSource {
    async fn read(&self, range: ByteRange, _if_match: Option<&str>) -> Result<RangeRead, BlobError> {
        let span = match range {
            ByteRange::Span(span) => span.start.min(self.size)..span.end.min(self.size),
            ByteRange::Suffix(n) => self.size.saturating_sub(n)..self.size,
        };
        let len = usize::try_from(span.end - span.start).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        let mut buffer = Vec::with_capacity(len);
        {
            let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let io = |e: std::io::Error| BlobError::Unavailable(Box::new(e));
            file.seek(SeekFrom::Start(span.start)).map_err(io)?;
            (&mut *file)
                .take(span.end - span.start)
                .read_to_end(&mut buffer)
                .map_err(io)?;
        }
        if buffer.len() != len {
            let shrunk = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank while being read");
            return Err(BlobError::Unavailable(Box::new(shrunk)));
        }
        Ok(RangeRead {
            offset: span.start,
            bytes: Bytes::from(buffer),
            total_size: self.size,
            etag: String::new(),
        })
    }

    fn known_size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// The result of probing one object.
pub struct ProbeRun {
    pub outcome: Result<ProbeReport, Unreadable>,
    pub reads: ReadStats,
    pub size: u64,
    /// The version the reads were pinned to (quotes removed), empty for files.
    pub etag: String,
    probe: Probe,
}

impl ProbeRun {
    /// Every byte of the object, when the probe read it all (images up to 20 MB): the PNG rendition's input, given
    /// away so that the conversion's thread owns it without a copy.
    pub fn take_whole_file(&mut self) -> Option<Vec<u8>> {
        self.probe.take_whole_file()
    }
}

/// ETags compare without their quotes: S3 events carry them bare, GetObject and HeadObject quoted.
pub fn normalise_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

fn to_byte_range(request: ReadRequest) -> ByteRange {
    match request {
        ReadRequest::Span(span) => ByteRange::Span(span),
        ReadRequest::Suffix(n) => ByteRange::Suffix(n),
    }
}

/// Probes one object: one read of the whole object when its known size fits the probe's windows, otherwise the
/// head and suffix reads in parallel; then one read per range the probe asks for, every read after the first ones
/// pinned to the ETag the first read returned (or to `pin` from the start, when the caller knows the version, as
/// an S3 event does). A file that cannot be read is an outcome, not an error; only the source's own failures are
/// errors (`Changed` when the object was replaced mid-probe).
pub async fn run_probe(source: &dyn RangeSource, budget: Budget, pin: Option<&str>) -> Result<ProbeRun, BlobError> {
    let mut probe = Probe::new(budget);
    let empty = || RangeRead {
        offset: 0,
        bytes: Bytes::new(),
        total_size: 0,
        etag: pin.map(normalise_etag).unwrap_or_default().to_owned(),
    };
    let reads = match probe.initial_reads_for(source.known_size()).as_slice() {
        [] => vec![empty()],
        [whole] => match source.read(to_byte_range(whole.clone()), pin).await {
            // The object was emptied since its size was taken: an empty object, as below.
            Err(BlobError::RangeNotSatisfiable(_)) => vec![empty()],
            read => vec![read?],
        },
        [head, suffix, ..] => {
            let (head, suffix) = futures::join!(
                source.read(to_byte_range(head.clone()), pin),
                source.read(to_byte_range(suffix.clone()), pin)
            );
            match (head, suffix) {
                // Only an empty object cannot satisfy a range that starts at byte 0.
                (Err(BlobError::RangeNotSatisfiable(_)), _) => vec![empty()],
                (head, suffix) => vec![head?, suffix?],
            }
        }
    };
    let etag = normalise_etag(&reads[0].etag).to_owned();
    if reads.iter().any(|r| normalise_etag(&r.etag) != etag) {
        return Err(BlobError::Changed(
            "the object was replaced between its first two reads".into(),
        ));
    }
    let size = reads[0].total_size;
    let mut step = None;
    for read in reads {
        step = Some(feed(&mut probe, read));
    }
    let mut step = step.unwrap_or_else(|| Step::Invalid(internal()));
    let pinned = (!etag.is_empty()).then_some(etag.as_str()).or(pin);
    while let Step::NeedRange(range) = step {
        let read = source.read(ByteRange::Span(range), pinned).await?;
        if normalise_etag(&read.etag) != etag {
            return Err(BlobError::Changed("the object was replaced while being probed".into()));
        }
        step = feed(&mut probe, read);
    }
    let outcome = match step {
        Step::Done(report) => Ok(*report),
        Step::Invalid(unreadable) => Err(unreadable),
        Step::NeedRange(_) => Err(internal()),
    };
    Ok(ProbeRun {
        outcome,
        reads: probe.stats(),
        size,
        etag,
        probe,
    })
}

/// Feeds one read. The probe is written not to panic; should it anyway (a bug, perhaps in a dependency), the file
/// gets an "unreadable" verdict instead of failing the whole invocation and being retried forever.
fn feed(probe: &mut Probe, read: RangeRead) -> Step {
    // Bytes made from a Vec (files; single-chunk bodies) convert back without a copy.
    let bytes = Vec::from(read.bytes);
    catch_unwind(AssertUnwindSafe(|| {
        probe.feed_owned(read.offset, bytes, read.total_size)
    }))
    .unwrap_or_else(|_| Step::Invalid(internal()))
}

fn internal() -> Unreadable {
    Unreadable {
        container: None,
        reason: UnreadableReason::Internal,
    }
}
