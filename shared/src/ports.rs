//! The ports: what the functions need from the world. Each has an AWS adapter and an embedded one, and each runs
//! one shared contract suite against both (`tests/`).

use std::{ops::Range, sync::Arc};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{
    domain::{Account, ApiKey, Media, Post, PostStatus, Workspace},
    events::Event,
    ids::{AccountId, MediaId, PostId, WorkspaceId},
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Storage failures, split by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-set lost: someone else wrote first. Re-read and decide again.
    #[error("the record changed concurrently: {0}")]
    Conflict(String),
    /// A create found the key taken.
    #[error("the record already exists: {0}")]
    AlreadyExists(String),
    /// The store could not be reached or refused for now; retrying later may work.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be read back: a bug or a hand edit, never retried.
    #[error("stored record {0} is unreadable")]
    Corrupt(String, #[source] BoxError),
    /// A listing cursor that no adapter handed out (garbled or forged): the caller's mistake, never retried.
    #[error("the cursor is not valid")]
    InvalidCursor,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing, newest first; `next_cursor` is opaque to callers.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostFilter {
    pub account_id: Option<AccountId>,
    pub status: Option<PostStatus>,
}

/// A post waiting for the publisher, as the due index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub post_id: PostId,
    /// Events about the post name its workspace; carried here so the dispatcher need not read every post.
    pub workspace_id: WorkspaceId,
    pub due_at: DateTime<Utc>,
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub workspace_id: WorkspaceId,
    pub key: String,
    /// SHA-256 of the canonical request (method, path, body); another body under the same key is a conflict.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub expires_at: DateTime<Utc>,
}

/// The single-use `state` of an OAuth connect, bound to the workspace that started it; and, under a new single-use
/// value, the connection TikTok authorized, waiting for that workspace to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthState {
    pub state: String,
    pub workspace_id: WorkspaceId,
    pub expires_at: DateTime<Utc>,
    /// Set once TikTok authorized: `state` is then the connection's id, handed only to the browser that completed
    /// the authorization.
    pub connection: Option<PendingConnection>,
}

/// What one TikTok authorization grants, kept until the workspace that started it claims it: the callback cannot
/// tell who completed it (anyone with an API key can send a creator an authorize link), so it attaches nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingConnection {
    /// The account the tokens are sealed for: the workspace's account of this TikTok user when it was authorized,
    /// or the id a new one gets.
    pub account_id: AccountId,
    pub open_id: String,
    pub scopes: Vec<String>,
    pub tokens: crate::domain::SealedTokens,
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[async_trait]
pub trait PostRepo: Send + Sync {
    /// Creates the post, and with it the idempotency record if given, atomically: both or neither.
    /// `AlreadyExists` when the post id or the idempotency key is taken. A stored record that expired by the post's
    /// `created_at` no longer holds its key: the caller's clock decides that, never the store's.
    async fn create_post(&self, post: &Post, idempotency: Option<&IdempotencyRecord>) -> StoreResult<()>;
    async fn get_post(&self, id: &PostId) -> StoreResult<Option<Post>>;
    /// Compare-and-set: writes `post` (whose `version` must be `expected_version + 1`) only if the stored version is
    /// still `expected_version`; else `Conflict`. Keeps the due index in step with `post.due_at()`.
    async fn update_post(&self, post: &Post, expected_version: u64) -> StoreResult<()>;
    /// The workspace's posts, newest first (ties broken by id). `next_cursor` is set only when more posts match;
    /// a cursor the adapter did not hand out is `InvalidCursor`. A `limit` of 0 is read as 1.
    async fn list_posts(
        &self,
        workspace: &WorkspaceId,
        filter: &PostFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Post>>;
    /// The post TikTok knows by this `publish_id` (its webhooks name nothing else), once the publisher saved the id.
    async fn find_post_by_publish_id(&self, publish_id: &str) -> StoreResult<Option<Post>>;
    /// Posts due at or before `until`, earliest first, across every shard of the due index; with `after`, only those
    /// that sort after that entry (the last of the previous page), so a caller can page through any number.
    async fn due_posts(
        &self,
        until: DateTime<Utc>,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> StoreResult<Vec<DueEntry>>;
    /// Whether a post of this account already sent media with this fingerprint since `since` (the duplicate rule).
    async fn fingerprint_published(
        &self,
        account: &AccountId,
        fingerprint: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<PostId>>;
    /// Records that `post` sent media with `fingerprint` to `account` at `at`. A store may forget the record once it
    /// is older than [`DUPLICATE_WINDOW_DAYS`](crate::rules::post::DUPLICATE_WINDOW_DAYS).
    async fn record_fingerprint(
        &self,
        account: &AccountId,
        fingerprint: &str,
        post: &PostId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The end of the last dispatch window that was armed in full: every post due by then has had its wakeup.
    async fn dispatch_watermark(&self) -> StoreResult<Option<DateTime<Utc>>>;
    async fn set_dispatch_watermark(&self, armed_until: DateTime<Utc>) -> StoreResult<()>;
}

/// The dispatch watermark as stored: one small record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchWatermark {
    pub armed_until: DateTime<Utc>,
}

#[async_trait]
pub trait IdempotencyRepo: Send + Sync {
    /// The live record for this key, if any (expired records read as absent).
    async fn get_idempotency(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<IdempotencyRecord>>;
}

#[async_trait]
pub trait MediaRepo: Send + Sync {
    async fn create_media(&self, media: &Media) -> StoreResult<()>;
    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>>;
    /// The records of those `ids` that exist, in no particular order, each once however often it is named. Reads in
    /// batches where the store has them, so a post naming many media costs a few round trips, not one per id.
    async fn get_media_many(&self, ids: &[MediaId]) -> StoreResult<Vec<Media>>;
    /// Compare-and-set on `version`, as for posts.
    async fn update_media(&self, media: &Media, expected_version: u64) -> StoreResult<()>;
    /// Removes the record; removing one that is not there succeeds (a repeated delete finishes what one began).
    async fn delete_media(&self, id: &MediaId) -> StoreResult<()>;
}

#[async_trait]
pub trait AccountRepo: Send + Sync {
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>>;
    /// Compare-and-set on `version`.
    async fn update_account(&self, account: &Account, expected_version: u64) -> StoreResult<()>;
    /// The workspace's accounts, oldest first.
    async fn list_accounts(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Account>>;
    /// The workspace's account for this TikTok user, if connected before (a reconnect updates it).
    async fn find_account_by_open_id(&self, workspace: &WorkspaceId, open_id: &str) -> StoreResult<Option<Account>>;
    /// Every workspace's account for this TikTok user, oldest first: TikTok's `authorization.removed` webhook names
    /// only the user, who may be connected to several workspaces.
    async fn find_accounts_by_open_id(&self, open_id: &str) -> StoreResult<Vec<Account>>;
}

#[async_trait]
pub trait WorkspaceRepo: Send + Sync {
    /// `AlreadyExists` when the name is taken.
    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()>;
    async fn get_workspace(&self, id: &WorkspaceId) -> StoreResult<Option<Workspace>>;
    async fn find_workspace_by_name(&self, name: &str) -> StoreResult<Option<Workspace>>;
    async fn put_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_api_key(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
}

#[async_trait]
pub trait OAuthStateRepo: Send + Sync {
    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()>;
    /// Removes and returns the state: a second call with the same value finds nothing (single use).
    async fn take_oauth_state(&self, state: &str, now: DateTime<Utc>) -> StoreResult<Option<OAuthState>>;
}

/// What claiming a webhook delivery's key found ([`WebhookDeliveryRepo::claim_delivery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// The caller holds the key until its lease ends: apply the delivery, then finish or release the claim.
    Claimed,
    /// A delivery with this key was applied: this one is a redelivery or a replay.
    AlreadyApplied,
    /// Another caller is applying a delivery with this key now; whether it succeeds is not known yet.
    InProgress,
}

/// The keys of TikTok's webhook deliveries ([`crate::tiktok::webhook::WebhookDelivery::dedupe_key`]), so that a
/// redelivery or a replay is recognised and dropped. Expiry is judged by the caller's `now`, never the store's clock.
#[async_trait]
pub trait WebhookDeliveryRepo: Send + Sync {
    /// Claims `key` until `lease_until`, unless a record still holds it at `now` (an applied delivery until its
    /// expiry, one being applied until its lease ends): checked and written in one step, so the first caller wins.
    async fn claim_delivery(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<DeliveryClaim>;
    /// Records the claimed delivery as applied; its key is then held until `expires_at`.
    async fn finish_delivery(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Gives up a claim whose delivery was not applied, so that the next delivery with the key is. A key already
    /// recorded as applied stays.
    async fn release_delivery(&self, key: &str) -> StoreResult<()>;
}

/// Every storage port, as one handle to wire. Adapters implement all of them; code takes the narrowest it needs.
#[derive(Clone)]
pub struct Stores {
    pub posts: Arc<dyn PostRepo>,
    pub idempotency: Arc<dyn IdempotencyRepo>,
    pub media: Arc<dyn MediaRepo>,
    pub accounts: Arc<dyn AccountRepo>,
    pub workspaces: Arc<dyn WorkspaceRepo>,
    pub oauth_states: Arc<dyn OAuthStateRepo>,
    pub webhook_deliveries: Arc<dyn WebhookDeliveryRepo>,
}

impl Stores {
    pub fn from_adapter<S>(adapter: Arc<S>) -> Self
    where
        S: PostRepo
            + IdempotencyRepo
            + MediaRepo
            + AccountRepo
            + WorkspaceRepo
            + OAuthStateRepo
            + WebhookDeliveryRepo
            + 'static,
    {
        Self {
            posts: adapter.clone(),
            idempotency: adapter.clone(),
            media: adapter.clone(),
            accounts: adapter.clone(),
            workspaces: adapter.clone(),
            oauth_states: adapter.clone(),
            webhook_deliveries: adapter,
        }
    }
}

/// Where an upload goes: the caller PUTs the bytes there with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    pub url: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// Which bytes to read: an absolute range, or the last `n` bytes (a suffix range, one request even when the size is
/// not yet known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    Span(Range<u64>),
    Suffix(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRead {
    /// Offset of `bytes[0]` within the object.
    pub offset: u64,
    pub bytes: Bytes,
    pub total_size: u64,
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object {0} not found")]
    NotFound(String),
    /// The object changed since the first read (its ETag no longer matches): start over with the new version.
    #[error("object {0} changed while being read")]
    Changed(String),
    #[error("range not satisfiable for object {0}")]
    RangeNotSatisfiable(String),
    #[error("blob store unavailable")]
    Unavailable(#[source] BoxError),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// A URL the caller can PUT exactly `content_length` bytes of `content_type` to, from `now` (the caller's clock)
    /// for `lifetime`, capped at 15 minutes; the target reports the expiry it was signed with.
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        now: DateTime<Utc>,
        lifetime: chrono::Duration,
    ) -> Result<UploadTarget, BlobError>;
    async fn head(&self, key: &str) -> Result<ObjectHead, BlobError>;
    /// Reads a range, pinned to `if_match` (an ETag) when given so that a file replaced mid-probe is noticed.
    async fn read_range(&self, key: &str, range: ByteRange, if_match: Option<&str>) -> Result<RangeRead, BlobError>;
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;
    /// Copies the object at `from` to `to` inside the store (no bytes pass through the caller), with its content type
    /// and without its tags: the copy is a new object that no upload clean-up rule should take for an upload.
    /// `NotFound` when `from` is missing.
    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError>;
    /// Removes the object; removing one that is not there succeeds, as S3's DeleteObject does, so a clean-up that
    /// is repeated after a partial failure finishes.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Starts writing an object in parts of exactly `part_size` bytes (the highest-numbered part may be shorter),
    /// so that a large object (a remuxed video, up to 4 GB) is never held whole. Parts may be written in any order:
    /// a writer that learns its header last (an MP4's `mdat` size) keeps part 1 and sends it at the end. S3 maps it
    /// to a multipart upload (`part_size` ≥ 5 MiB), files to positioned writes. Stores without it (test doubles
    /// that never see a remux) refuse.
    async fn start_parts(
        &self,
        key: &str,
        _content_type: &str,
        _part_size: u64,
    ) -> Result<Box<dyn PartWriter>, BlobError> {
        Err(BlobError::Unavailable(
            format!("this blob store cannot write {key} in parts").into(),
        ))
    }
    /// Marks an upload as turned into media, so that the clean-up of abandoned uploads spares it. Only S3 has
    /// such a clean-up (the bucket's lifecycle rule on uploads still tagged pending); elsewhere it does nothing.
    async fn mark_kept(&self, _key: &str) -> Result<(), BlobError> {
        Ok(())
    }
}

/// One object being written part by part ([`BlobStore::start_parts`]). Nothing is visible under the key until
/// `complete`; a writer dropped without it leaves nothing behind once `abort` ran (S3 also expires abandoned
/// multipart uploads by the bucket's lifecycle rule).
#[async_trait]
pub trait PartWriter: Send {
    /// Writes part `number` (1-based).
    async fn write_part(&mut self, number: u32, bytes: Bytes) -> Result<(), BlobError>;
    /// Publishes the object made of the parts written, in part order.
    async fn complete(self: Box<Self>) -> Result<ObjectHead, BlobError>;
    async fn abort(self: Box<Self>);
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Some entries were not accepted after retries; their ids are listed so nothing is lost silently.
    #[error("{} event(s) not delivered: {}", failed.len(), failed.join(", "))]
    NotDelivered { failed: Vec<String> },
    #[error("event bus unavailable")]
    Unavailable(#[source] BoxError),
}

#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes every event or fails naming those that were not delivered.
    async fn publish(&self, events: &[Event]) -> Result<(), EventError>;
}

/// A post to look at from `at` on. The publisher arms one for every instant it must act at (a due post, the end of
/// a wait, a tracking poll, a lease that may have been abandoned), so no Lambda sleeps waiting for time to pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wakeup {
    pub post_id: PostId,
    pub at: DateTime<Utc>,
}

/// The wakeups of one timer message, handed over together. `id` names the delivery for acknowledgement and partial
/// failures; `receipt` is the adapter's handle on it (SQS's receipt handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerDelivery {
    pub id: String,
    pub receipt: String,
    pub wakeups: Vec<Wakeup>,
}

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// Some wakeups were refused after retries; their posts are listed so nothing is lost silently (the schedule
    /// tick arms every due post again anyway).
    #[error("{} wakeup(s) not scheduled", failed.len())]
    NotScheduled { failed: Vec<PostId> },
    #[error("timer unavailable")]
    Unavailable(#[source] BoxError),
}

#[async_trait]
pub trait Timer: Send + Sync {
    /// Delivers each wakeup at its instant, rounded down to a whole second after `now` (never late, up to a second
    /// early); wakeups due together travel together. One further ahead than [`crate::timer::MAX_DELAY`] arrives at
    /// `now` plus that delay, early: whoever receives it arms it again.
    async fn schedule(&self, wakeups: &[Wakeup], now: DateTime<Utc>) -> Result<(), TimerError>;
}

/// The receiving end of a [`Timer`] for a process that pulls (the local runner, the contract suite). In AWS the
/// Lambda event source mapping does this: a delivery that is not acknowledged is delivered again.
#[async_trait]
pub trait TimerInbox: Send + Sync {
    /// The deliveries that are due, waiting up to `wait` for the first.
    async fn receive(&self, wait: std::time::Duration) -> Result<Vec<TimerDelivery>, TimerError>;
    async fn acknowledge(&self, delivery: &TimerDelivery) -> Result<(), TimerError>;
}

/// One received media job, for acknowledgement. `receipt` is the adapter's handle on it (SQS's receipt handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDelivery {
    pub id: String,
    pub receipt: String,
    pub job: crate::media_jobs::MediaJob,
}

#[derive(Debug, thiserror::Error)]
pub enum JobQueueError {
    /// The queue refused the job or could not be reached: nothing will run it.
    #[error("media job queue unavailable")]
    Unavailable(#[source] BoxError),
}

/// Hands long media jobs (URL imports, large remuxes) to the media worker: an SQS queue in AWS, an in-process queue
/// on one machine. `Ok` means the job will run at least once.
#[async_trait]
pub trait MediaJobQueue: Send + Sync {
    async fn enqueue(&self, job: &crate::media_jobs::MediaJob) -> Result<(), JobQueueError>;
}

/// The receiving end of a [`MediaJobQueue`] for a process that pulls (the local runner, the contract suite). In AWS
/// the worker's event source mapping does this.
#[async_trait]
pub trait MediaJobInbox: Send + Sync {
    /// The jobs waiting, up to 10, waiting up to `wait` for the first.
    async fn receive(&self, wait: std::time::Duration) -> Result<Vec<JobDelivery>, JobQueueError>;
    async fn acknowledge(&self, delivery: &JobDelivery) -> Result<(), JobQueueError>;
}
