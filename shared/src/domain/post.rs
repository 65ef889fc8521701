//! A post and its life cycle:
//!
//! ```text
//! draft ──publish──> scheduled ──due──> publishing ──TikTok accepted──> published ──PUBLISH_COMPLETE──> completed
//!   └─cancel─> canceled  └─cancel      ├─permanent error─> failed            └─FAILED─> failed
//!                                      └─init outcome unknown─> needs_review
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::media::Finding;
use crate::tiktok::FailRetry;
use crate::{
    events::{Event, EventType},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    /// Kept by Postato only; never sent to TikTok.
    Draft,
    /// Waiting for `scheduledAt`.
    Scheduled,
    /// Claimed by a publisher; TikTok may be in the middle of receiving it.
    Publishing,
    /// TikTok's API accepted the post (the guide's `post.published`); TikTok is processing it.
    Published,
    /// TikTok reports PUBLISH_COMPLETE.
    Completed,
    /// Ended without being posted; `failure` says why.
    Failed,
    /// The outcome of TikTok's init is unknown; a person must check the account before anything is retried.
    NeedsReview,
    /// Canceled by the caller before publishing started.
    Canceled,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::NeedsReview => "needs_review",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == value)
    }

    pub const ALL: [PostStatus; 8] = [
        Self::Draft,
        Self::Scheduled,
        Self::Publishing,
        Self::Published,
        Self::Completed,
        Self::Failed,
        Self::NeedsReview,
        Self::Canceled,
    ];

    /// Only posts that have not started publishing may be edited or canceled.
    pub fn is_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Scheduled)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::NeedsReview | Self::Canceled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostType {
    Video,
    Photo,
}

impl PostType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Photo => "photo",
        }
    }
}

/// Who sees the post. `friends` is an extension beyond the guide's three words: TikTok offers
/// MUTUAL_FOLLOW_FRIENDS to every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Privacy {
    Public,
    FollowersOnly,
    Friends,
    Private,
}

impl Privacy {
    pub const ALL: [Privacy; 4] = [Self::Public, Self::FollowersOnly, Self::Friends, Self::Private];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::FollowersOnly => "followersOnly",
            Self::Friends => "friends",
            Self::Private => "private",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    /// TikTok's `privacy_level` value.
    pub fn tiktok_level(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC_TO_EVERYONE",
            Self::FollowersOnly => "FOLLOWER_OF_CREATOR",
            Self::Friends => "MUTUAL_FOLLOW_FRIENDS",
            Self::Private => "SELF_ONLY",
        }
    }

    pub fn from_tiktok_level(level: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.tiktok_level() == level)
    }
}

/// The caller's explicit choices, kept with the post and re-checked against a fresh creator_info before init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostOptions {
    /// Required for posts that will publish: TikTok forbids a default.
    pub privacy: Option<Privacy>,
    pub allow_comments: bool,
    /// Video only; not sent for photos.
    pub allow_duet: bool,
    /// Video only; not sent for photos.
    pub allow_stitch: bool,
    /// Video only: the frame TikTok uses as cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_timestamp_ms: Option<u32>,
    /// Paid partnership / third-party brand ("Paid partnership" label).
    pub brand_content: bool,
    /// The creator's own business ("Promotional content" label).
    pub brand_organic: bool,
    pub ai_generated: bool,
    /// Photo only: TikTok's title (≤ 90 UTF-16 units); the caption travels as the description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Photo only: let TikTok add recommended music.
    pub auto_add_music: bool,
    /// Publish even if the same file went to this account in the last 30 days.
    pub allow_duplicate: bool,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            privacy: None,
            allow_comments: true,
            allow_duet: true,
            allow_stitch: true,
            cover_timestamp_ms: None,
            brand_content: false,
            brand_organic: false,
            ai_generated: false,
            title: None,
            auto_add_music: false,
            allow_duplicate: false,
        }
    }
}

/// How the media travels to TikTok, and how far a FILE_UPLOAD got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "source")]
pub enum Transfer {
    #[serde(rename = "PULL_FROM_URL")]
    PullFromUrl,
    #[serde(rename = "FILE_UPLOAD", rename_all = "camelCase")]
    FileUpload {
        /// Carries TikTok's upload token: stored, never shown in responses or logs.
        upload_url: String,
        upload_url_expires_at: DateTime<Utc>,
        video_size: u64,
        chunk_size: u64,
        total_chunks: u32,
        /// Chunks TikTok acknowledged (206/201); a resumed upload starts at this index.
        chunks_done: u32,
    },
}

/// Everything the publisher persists so that a crash or a timeout resumes instead of repeating.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishProgress {
    /// Claims so far (1 for the first).
    pub attempt: u32,
    /// The claimant's lease; another publisher may take over only after it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    /// Written before TikTok's init is called: if set without a publish id, the init outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Tracking: when to poll TikTok's status next, how often it was polled, when to give up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub polls: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiktok_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiktok_post_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_log_id: Option<String>,
    /// A scheduled post that had to wait (TikTok's per-account caps, media still validating) is not due again
    /// before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Times TikTok's daily cap deferred the post by a day (at most [`DAILY_CAP_RETRIES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cap_deferrals: u32,
    /// FILE_UPLOAD inits sent again after an init without a clear answer (at most [`AMBIGUOUS_UPLOAD_REINITS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub upload_reinits: u32,
    /// Times TikTok's processing failed for a reason it calls retryable and the post was sent again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub processing_retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// TikTok's answers meaning "this creator (or this app) posted enough today": its advice is to try again tomorrow.
pub const DAILY_CAP_CODES: [&str; 2] = ["spam_risk_too_many_posts", "reached_active_user_cap"];
/// A post refused by a daily cap waits this long and tries again, this many times; then it fails.
pub const DAILY_CAP_WAIT: chrono::Duration = chrono::Duration::hours(24);
pub const DAILY_CAP_RETRIES: u32 = 1;
/// A FILE_UPLOAD init without a clear answer is safe to send again: TikTok cannot publish a video whose bytes it never
/// received, and the first init's upload URL dies unused within the hour. Once, so that a TikTok that keeps timing out
/// does not collect abandoned drafts; a PULL_FROM_URL init (TikTok may already be pulling) is never sent again.
pub const AMBIGUOUS_UPLOAD_REINITS: u32 = 1;
/// TikTok's processing failures it calls retryable (`internal`, failed pulls): sent again this many times, the n-th
/// after `PROCESSING_RETRY_WAIT` × 2ⁿ⁻¹, then the post fails with the last reason.
pub const PROCESSING_RETRIES: u32 = 2;
pub const PROCESSING_RETRY_WAIT: chrono::Duration = chrono::Duration::minutes(1);

/// Why a post ended without being posted (or needs a person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Stable machine-readable reason, e.g. `privacy_unavailable`, `duplicate_media`, `spam_risk_too_many_posts`.
    pub code: String,
    /// What happened and what to do about it.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiktok_fail_reason: Option<String>,
    /// TikTok's log id, which TikTok support asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    pub id: PostId,
    pub workspace_id: WorkspaceId,
    pub account_id: AccountId,
    pub status: PostStatus,
    pub post_type: PostType,
    pub content: String,
    pub media: Vec<MediaId>,
    pub options: PostOptions,
    /// When to publish; for "publish now" the creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub warnings: Vec<Finding>,
    #[serde(default)]
    pub publish: PublishProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Events written with the transition that caused them and removed once delivered: a crash between the two
    /// delays an event but never loses it (the post stays due until its outbox is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<Event>,
    /// Incremented by every write; writers compare-and-set on it.
    pub version: u64,
}

impl Post {
    /// When the post next needs the publisher, if ever: the due index holds exactly these posts.
    /// Scheduled posts at their time; publishing posts when their lease runs out (a stalled publisher is
    /// replaced); published posts when their TikTok status should be polled next.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let by_status = match self.status {
            PostStatus::Scheduled => self
                .scheduled_at
                .map(|at| self.publish.not_before.map_or(at, |nb| at.max(nb))),
            PostStatus::Publishing => self.publish.lease_until,
            PostStatus::Published => self.publish.next_poll_at,
            _ => None,
        };
        // Undelivered events make the post due at once, whatever its state, so the publisher delivers them.
        let by_outbox = (!self.outbox.is_empty()).then_some(self.updated_at);
        match (by_status, by_outbox) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The transitions TikTok's answers cause, shared by the publisher (polling) and the webhook route, each with its
/// event in the outbox. Callers bump `version` and `updated_at` when they write.
impl Post {
    pub fn event(&self, event_type: EventType, now: DateTime<Utc>, data: serde_json::Value) -> Event {
        Event::new(event_type, self.workspace_id.clone(), now)
            .post(&self.id)
            .account(&self.account_id)
            .data(data)
    }

    /// TikTok accepted the post (`post.published` fires here, at API success, as the guide says).
    pub fn mark_published(&mut self, now: DateTime<Utc>, first_poll_at: DateTime<Utc>) {
        self.status = PostStatus::Published;
        self.publish.published_at = Some(now);
        self.publish.lease_until = None;
        self.publish.not_before = None;
        self.publish.next_poll_at = Some(first_poll_at);
        self.publish.polls = 0;
        let source = match self.publish.transfer {
            Some(Transfer::FileUpload { .. }) => "FILE_UPLOAD",
            _ => "PULL_FROM_URL",
        };
        let event = self.event(
            EventType::PostPublished,
            now,
            serde_json::json!({ "publishId": self.publish.publish_id, "source": source }),
        );
        self.outbox.push(event);
    }

    /// TikTok reports PUBLISH_COMPLETE; public posts may already carry TikTok's post id.
    pub fn mark_completed(&mut self, now: DateTime<Utc>, public_post_id: Option<String>, username: Option<&str>) {
        self.status = PostStatus::Completed;
        self.publish.completed_at = Some(now);
        self.publish.next_poll_at = None;
        self.publish.lease_until = None;
        self.publish.tiktok_status = Some("PUBLISH_COMPLETE".into());
        if let Some(id) = public_post_id {
            self.record_public_post_id(id, username);
        }
        let event = self.event(
            EventType::PostCompleted,
            now,
            serde_json::json!({
                "publishId": self.publish.publish_id,
                "tiktokPostId": self.publish.tiktok_post_id,
                "postUrl": self.publish.post_url,
            }),
        );
        self.outbox.push(event);
    }

    /// TikTok's post id arrives only once a public post passed moderation (maybe hours after completion).
    pub fn record_public_post_id(&mut self, post_id: String, username: Option<&str>) {
        self.publish.post_url = username.map(|name| format!("https://www.tiktok.com/@{name}/video/{post_id}"));
        self.publish.tiktok_post_id = Some(post_id);
    }

    /// A daily cap refused the post before anything was created: it waits a day and tries once more, with a
    /// `post.deferred` event; false when it already did (the caller fails it).
    pub fn defer_for_daily_cap(&mut self, failure: &Failure, now: DateTime<Utc>) -> bool {
        if !DAILY_CAP_CODES.contains(&failure.code.as_str()) || self.publish.cap_deferrals >= DAILY_CAP_RETRIES {
            return false;
        }
        self.publish.cap_deferrals += 1;
        self.send_again_at(now + DAILY_CAP_WAIT, failure, now);
        true
    }

    /// TikTok's processing failed (its status or webhook): sent again when TikTok calls the reason retryable and the
    /// budget allows (nothing was published, so a new init cannot double-post), deferred a day for its daily cap,
    /// else failed with the reason.
    pub fn mark_processing_failed(&mut self, failure: Failure, retry: FailRetry, now: DateTime<Utc>) {
        match retry {
            FailRetry::Retry if self.publish.processing_retries < PROCESSING_RETRIES => {
                let wait = PROCESSING_RETRY_WAIT * (1 << self.publish.processing_retries);
                self.publish.processing_retries += 1;
                self.send_again_at(now + wait, &failure, now);
            }
            FailRetry::AfterCap if self.defer_for_daily_cap(&failure, now) => {}
            _ => self.mark_failed(failure, now),
        }
    }

    /// Back to `scheduled` for a new init at `until`, with a `post.deferred` event saying why. What belonged to an
    /// earlier init (its publish id, its upload) is forgotten, so nothing resumes it; the counters stay.
    fn send_again_at(&mut self, until: DateTime<Utc>, why: &Failure, now: DateTime<Utc>) {
        let earlier = std::mem::take(&mut self.publish);
        self.publish = PublishProgress {
            attempt: earlier.attempt,
            cap_deferrals: earlier.cap_deferrals,
            upload_reinits: earlier.upload_reinits,
            processing_retries: earlier.processing_retries,
            not_before: Some(until),
            ..PublishProgress::default()
        };
        self.status = PostStatus::Scheduled;
        let event = self.event(
            EventType::PostDeferred,
            now,
            serde_json::json!({ "code": why.code, "message": why.message, "until": until }),
        );
        self.outbox.push(event);
    }

    pub fn mark_failed(&mut self, failure: Failure, now: DateTime<Utc>) {
        self.end(PostStatus::Failed, EventType::PostFailed, failure, now);
    }

    /// The outcome at TikTok is unknown: a person must look before anything is retried.
    pub fn mark_needs_review(&mut self, failure: Failure, now: DateTime<Utc>) {
        self.end(PostStatus::NeedsReview, EventType::PostNeedsReview, failure, now);
    }

    fn end(&mut self, status: PostStatus, event_type: EventType, failure: Failure, now: DateTime<Utc>) {
        self.status = status;
        self.publish.lease_until = None;
        self.publish.next_poll_at = None;
        self.publish.not_before = None;
        let event = self.event(
            event_type,
            now,
            serde_json::json!({
                "code": failure.code,
                "message": failure.message,
                "tiktokFailReason": failure.tiktok_fail_reason,
                "logId": failure.log_id,
                "publishId": self.publish.publish_id,
            }),
        );
        self.outbox.push(event);
        self.failure = Some(failure);
    }
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            tiktok_fail_reason: None,
            log_id: None,
        }
    }
}
