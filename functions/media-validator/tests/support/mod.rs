//! Test doubles for the ports (in-memory media repo, blob store, event sink) and synthetic media. Each test crate
//! uses a different subset, hence the dead-code allowance.
#![allow(dead_code)]

pub mod corpus;
pub mod media;
pub mod process;
pub mod program_stream;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use media_validator::{probe::Budget, ValidatorDeps};
use shared::{
    adapters::{local_jobs::LocalMediaJobs, memory::RecordingTimer},
    domain::{Media, MediaKind, MediaStatus},
    events::Event,
    ids::{MediaId, WorkspaceId},
    ports::{
        BlobError, BlobStore, ByteRange, EventError, EventSink, MediaRepo, ObjectHead, PartWriter, RangeRead,
        StoreError, StoreResult, UploadTarget,
    },
    ManualClock,
};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes one unit from a failure budget: `true` means "fail this call".
fn take_failure(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn unavailable(what: &str) -> Box<dyn std::error::Error + Send + Sync> {
    format!("injected failure: {what}").into()
}

#[derive(Default)]
pub struct MemoryMediaRepo {
    records: Mutex<HashMap<MediaId, Media>>,
    pub fail_gets: AtomicU32,
    pub fail_updates: AtomicU32,
    pub updates: AtomicU32,
}

impl MemoryMediaRepo {
    pub fn get(&self, id: &MediaId) -> Option<Media> {
        lock(&self.records).get(id).cloned()
    }
}

#[async_trait]
impl MediaRepo for MemoryMediaRepo {
    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        let mut records = lock(&self.records);
        if records.contains_key(&media.id) {
            return Err(StoreError::AlreadyExists(media.id.to_string()));
        }
        records.insert(media.id.clone(), media.clone());
        Ok(())
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        if take_failure(&self.fail_gets) {
            return Err(StoreError::Unavailable(unavailable("get_media")));
        }
        Ok(self.get(id))
    }

    async fn get_media_many(&self, ids: &[MediaId]) -> StoreResult<Vec<Media>> {
        let records = lock(&self.records);
        let ids: std::collections::BTreeSet<&MediaId> = ids.iter().collect();
        Ok(ids.into_iter().filter_map(|id| records.get(id).cloned()).collect())
    }

    async fn update_media(&self, media: &Media, expected_version: u64) -> StoreResult<()> {
        if take_failure(&self.fail_updates) {
            return Err(StoreError::Unavailable(unavailable("update_media")));
        }
        let mut records = lock(&self.records);
        match records.get(&media.id) {
            Some(current) if current.version == expected_version => {
                records.insert(media.id.clone(), media.clone());
                self.updates.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            _ => Err(StoreError::Conflict(media.id.to_string())),
        }
    }

    async fn delete_media(&self, id: &MediaId) -> StoreResult<()> {
        lock(&self.records).remove(id);
        Ok(())
    }
}

/// One read as the store saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLog {
    pub range: ByteRange,
    pub if_match: Option<String>,
}

/// Objects in memory with S3's ranged-read semantics: suffix ranges, 416 on an empty object, ETag pinning (412 as
/// `Changed`). `rendezvous` makes the first two reads wait for each other, which only succeeds if they were issued
/// concurrently.
pub struct MemoryBlobStore {
    objects: Arc<Mutex<HashMap<String, (Bytes, String)>>>,
    pub reads: Mutex<Vec<ReadLog>>,
    pub puts: Mutex<Vec<(String, Bytes, String)>>,
    /// Keys marked as turned into media (S3: re-tagged so the lifecycle rule spares them).
    pub kept: Mutex<Vec<String>>,
    pub fail_keeps: AtomicU32,
    pub fail_reads: AtomicU32,
    pub fail_puts: AtomicU32,
    rendezvous: Option<tokio::sync::Barrier>,
    arrivals: AtomicU32,
}

impl MemoryBlobStore {
    pub fn new() -> Self {
        Self {
            objects: Arc::default(),
            reads: Mutex::default(),
            puts: Mutex::default(),
            kept: Mutex::default(),
            fail_keeps: AtomicU32::new(0),
            fail_reads: AtomicU32::new(0),
            fail_puts: AtomicU32::new(0),
            rendezvous: None,
            arrivals: AtomicU32::new(0),
        }
    }

    pub fn requiring_parallel_first_reads() -> Self {
        Self {
            rendezvous: Some(tokio::sync::Barrier::new(2)),
            ..Self::new()
        }
    }

    /// Stores an object; its ETag is a quoted digest of the content, as S3's is.
    pub fn insert(&self, key: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let etag = format!("\"{}\"", hex::encode(&sha256(&bytes)[..16]));
        lock(&self.objects).insert(key.to_owned(), (bytes, etag.clone()));
        etag.trim_matches('"').to_owned()
    }

    pub fn remove(&self, key: &str) {
        lock(&self.objects).remove(key);
    }

    pub fn object(&self, key: &str) -> Option<Bytes> {
        lock(&self.objects).get(key).map(|(bytes, _)| bytes.clone())
    }

    pub fn read_log(&self) -> Vec<ReadLog> {
        lock(&self.reads).clone()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Parts kept until completion, checked as S3 checks them: every part but the last exactly `part_size` bytes.
struct MemoryParts {
    objects: Arc<Mutex<HashMap<String, (Bytes, String)>>>,
    key: String,
    part_size: u64,
    parts: std::collections::BTreeMap<u32, Bytes>,
}

#[async_trait]
impl PartWriter for MemoryParts {
    async fn write_part(&mut self, number: u32, bytes: Bytes) -> Result<(), BlobError> {
        self.parts.insert(number, bytes);
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<ObjectHead, BlobError> {
        let last = self.parts.keys().last().copied().unwrap_or(0);
        let numbered = self.parts.keys().copied().eq(1..=last);
        let sized = self
            .parts
            .iter()
            .all(|(n, p)| *n == last || p.len() as u64 == self.part_size);
        if !numbered || !sized {
            return Err(BlobError::Unavailable("parts missing or of the wrong size".into()));
        }
        let whole: Vec<u8> = self.parts.values().flat_map(|p| p.iter().copied()).collect();
        let etag = format!("\"{}\"", hex::encode(&sha256(&whole)[..16]));
        let size = whole.len() as u64;
        lock(&self.objects).insert(self.key.clone(), (Bytes::from(whole), etag.clone()));
        Ok(ObjectHead { size, etag })
    }

    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn presign_upload(
        &self,
        key: &str,
        _content_type: &str,
        _content_length: u64,
        now: DateTime<Utc>,
        lifetime: chrono::Duration,
    ) -> Result<UploadTarget, BlobError> {
        Ok(UploadTarget {
            url: format!("memory://{key}"),
            method: "PUT",
            headers: Vec::new(),
            expires_at: now + lifetime,
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectHead, BlobError> {
        let objects = lock(&self.objects);
        let (bytes, etag) = objects.get(key).ok_or_else(|| BlobError::NotFound(key.to_owned()))?;
        Ok(ObjectHead {
            size: bytes.len() as u64,
            etag: etag.clone(),
        })
    }

    async fn read_range(&self, key: &str, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError> {
        lock(&self.reads).push(ReadLog {
            range: range.clone(),
            if_match: if_match.map(str::to_owned),
        });
        if let Some(barrier) = &self.rendezvous {
            if self.arrivals.fetch_add(1, Ordering::SeqCst) < 2 {
                // Sequential reads would wait here forever; concurrent ones meet.
                tokio::time::timeout(Duration::from_secs(2), barrier.wait())
                    .await
                    .map_err(|_| BlobError::Unavailable("the first two reads were not issued in parallel".into()))?;
            }
        }
        if take_failure(&self.fail_reads) {
            return Err(BlobError::Unavailable(unavailable("read_range")));
        }
        let (bytes, etag) = lock(&self.objects)
            .get(key)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(key.to_owned()))?;
        if if_match.is_some_and(|expected| expected.trim_matches('"') != etag.trim_matches('"')) {
            return Err(BlobError::Changed(key.to_owned()));
        }
        let size = bytes.len() as u64;
        let span = match range {
            ByteRange::Span(span) if span.start >= size => return Err(BlobError::RangeNotSatisfiable(key.to_owned())),
            ByteRange::Span(span) => span.start..span.end.min(size),
            ByteRange::Suffix(_) if size == 0 => return Err(BlobError::RangeNotSatisfiable(key.to_owned())),
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        Ok(RangeRead {
            offset: span.start,
            bytes: bytes.slice(span.start as usize..span.end as usize),
            total_size: size,
            etag,
        })
    }

    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        if take_failure(&self.fail_puts) {
            return Err(BlobError::Unavailable(unavailable("put")));
        }
        lock(&self.puts).push((key.to_owned(), bytes.clone(), content_type.to_owned()));
        self.insert(key, bytes);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        let mut objects = lock(&self.objects);
        let object = objects
            .get(from)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(from.to_owned()))?;
        objects.insert(to.to_owned(), object);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        lock(&self.objects).remove(key);
        Ok(())
    }

    async fn start_parts(
        &self,
        key: &str,
        _content_type: &str,
        part_size: u64,
    ) -> Result<Box<dyn PartWriter>, BlobError> {
        Ok(Box::new(MemoryParts {
            objects: self.objects.clone(),
            key: key.to_owned(),
            part_size,
            parts: std::collections::BTreeMap::new(),
        }))
    }

    async fn mark_kept(&self, key: &str) -> Result<(), BlobError> {
        if take_failure(&self.fail_keeps) {
            return Err(BlobError::Unavailable(unavailable("mark_kept")));
        }
        if !lock(&self.objects).contains_key(key) {
            return Err(BlobError::NotFound(key.to_owned()));
        }
        lock(&self.kept).push(key.to_owned());
        Ok(())
    }
}

#[derive(Default)]
pub struct RecordingEventSink {
    pub events: Mutex<Vec<Event>>,
    pub fail_publishes: AtomicU32,
}

impl RecordingEventSink {
    pub fn published(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }
}

#[async_trait]
impl EventSink for RecordingEventSink {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        if take_failure(&self.fail_publishes) {
            return Err(EventError::NotDelivered {
                failed: events.iter().map(|e| e.id.to_string()).collect(),
            });
        }
        lock(&self.events).extend_from_slice(events);
        Ok(())
    }
}

/// A validator wired to the fakes, with handles on each.
pub struct Harness {
    pub repo: Arc<MemoryMediaRepo>,
    pub blobs: Arc<MemoryBlobStore>,
    pub events: Arc<RecordingEventSink>,
    pub timer: Arc<RecordingTimer>,
    /// The media worker's queue (remuxes too large for `deps.remux_max_bytes`).
    pub jobs: Arc<LocalMediaJobs>,
    pub clock: ManualClock,
    pub deps: ValidatorDeps,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_blobs(MemoryBlobStore::new())
    }

    pub fn with_blobs(blobs: MemoryBlobStore) -> Self {
        let repo = Arc::new(MemoryMediaRepo::default());
        let blobs = Arc::new(blobs);
        let events = Arc::new(RecordingEventSink::default());
        let timer = Arc::new(RecordingTimer::default());
        let jobs = Arc::new(LocalMediaJobs::new(std::time::Duration::from_secs(60)));
        let clock = ManualClock::at(
            Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
                .single()
                .unwrap_or_default(),
        );
        let deps = ValidatorDeps {
            media: repo.clone(),
            blobs: blobs.clone(),
            events: events.clone(),
            timer: timer.clone(),
            clock: Arc::new(clock.clone()),
            budget: Budget::default(),
            // No time limit here: every transport stream is remuxed.
            remux_max_bytes: u64::MAX,
            jobs: jobs.clone(),
        };
        Self {
            repo,
            blobs,
            events,
            timer,
            jobs,
            clock,
            deps,
        }
    }

    /// A media record awaiting its upload, and the object key it expects.
    pub async fn pending_media(&self, kind: MediaKind) -> Media {
        let workspace_id = WorkspaceId::new();
        let id = MediaId::new();
        let now = self.clock.now_utc();
        let media = Media {
            object_key: Media::object_key_for(&workspace_id, &id),
            id,
            workspace_id,
            kind,
            content_type: "application/octet-stream".into(),
            declared_size: 0,
            file_name: "upload".into(),
            status: MediaStatus::PendingUpload,
            verdict: None,
            created_at: now,
            updated_at: now,
            version: 1,
            waiting_posts: Vec::new(),
        };
        self.repo
            .create_media(&media)
            .await
            .unwrap_or_else(|e| panic!("creating test media: {e}"));
        media
    }
}

/// `ManualClock::now` through the trait, without importing it in every test.
trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        shared::Clock::now(self)
    }
}

/// An S3 ObjectCreated notification for one object, as S3 sends it (key URL-encoded, ETag bare).
pub fn s3_event(key: &str, etag: &str, size: u64) -> aws_lambda_events::event::s3::S3Event {
    let encoded: String = key
        .split('/')
        .map(|part| percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let fixture = include_str!("../fixtures/s3-object-created.json")
        .replace("KEY", &encoded)
        .replace("ETAG", etag)
        .replace("\"SIZE\"", &size.to_string());
    serde_json::from_str(&fixture).unwrap_or_else(|e| panic!("the S3 event fixture does not parse: {e}"))
}
