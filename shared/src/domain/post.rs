//! A post and its life cycle:
//!
//! ```text
//! draft ──publish──> scheduled ──due──> publishing ──TikTok accepted──> published ──PUBLISH_COMPLETE──> completed
//!   └─cancel─> canceled  └─cancel      ├─permanent error─> failed            └─FAILED─> failed
//!                                      └─init outcome unknown─> needs_review
//!
//! failed ──retry (a fixable failure, nothing accepted by TikTok)──> scheduled
//! needs_review ──resolve published──> completed
//!              └─resolve not_published─> failed (`not_published_confirmed`, which retry accepts)
//! ```
//!
//! The transitions a person asks for (retry, resolve, cancel) are recorded in the post's audit trail.

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

    /// The states of a post whose media must stay: it will be sent, is being sent, or may be sent again (TikTok
    /// accepted it and may still fail it for a reason it calls retryable). Media they use cannot be deleted.
    pub const SENDING: [PostStatus; 3] = [Self::Scheduled, Self::Publishing, Self::Published];

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
    /// Written with `init_started_at`: the init asks for a FILE_UPLOAD, so a publish it may have created gets no bytes
    /// unless we send them, and an init whose worker died may be sent again (absent in older records: never).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init_by_upload: bool,
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
    /// When the account's refresh token must be renewed for this post to find it alive at its time (a post
    /// scheduled further ahead than the token lives; see [`Post::plan_keepalive`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_at: Option<DateTime<Utc>>,
    /// Times TikTok's daily cap deferred the post by a day (at most [`DAILY_CAP_RETRIES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cap_deferrals: u32,
    /// FILE_UPLOAD inits sent again after an init without a clear answer (at most [`AMBIGUOUS_UPLOAD_REINITS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub upload_reinits: u32,
    /// Times TikTok's processing failed for a reason it calls retryable and the post was sent again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub processing_retries: u32,
    /// Public copies of the media made for TikTok to pull (see [`super::exposure`]), written by the claim before
    /// they are made and cleared once they are removed, so that none is forgotten while it is reachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<String>,
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
/// How long before a refresh token expires a post scheduled past it has the token renewed ([`Post::plan_keepalive`]).
pub const KEEPALIVE_MARGIN: chrono::Duration = chrono::Duration::days(7);
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
    /// What people did to the post through the API (retry, resolve, cancel), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditEntry>,
    /// Incremented by every write; writers compare-and-set on it.
    pub version: u64,
}

/// One action a caller took on a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The id of the API key that asked (`key_...`), never the key.
    pub by: String,
    /// `retried`, `resolved` or `canceled`.
    pub action: String,
    /// What changed, in words.
    pub detail: String,
}

/// What a person found on TikTok for a post whose outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It is on TikTok; the URL (and TikTok's post id in it) when the person gave one.
    Published {
        post_url: Option<String>,
        tiktok_post_id: Option<String>,
    },
    /// It is not on TikTok: the post may be retried.
    NotPublished,
}

/// Why a transition a caller asked for is refused (answered as 409 with this code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a user may do about a failed post, by its failure code. The one place that decides which failures
/// `POST /v1/posts/{id}/retry` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// The cause lies outside the post's record and a user can remove it (reconnect the account, verify the URL
    /// prefix, wait out a cap, upload or replace the media, change a creator setting or the post's options), or it
    /// was TikTok's passing trouble. Nothing reached TikTok's feed, so the same post may be scheduled again.
    AfterFix,
    /// TikTok may have published it (it accepted the post, or the outcome is unknown): retrying could post twice.
    MayBeLive,
    /// Nothing a user can change makes the same post go out (a posting ban, a reason nobody knows).
    Never,
}

/// The failure code a person records with `resolve` `not_published`: the post is known not to be on TikTok.
pub const NOT_PUBLISHED_CONFIRMED: &str = "not_published_confirmed";

/// Failures a user can fix, then retry: by the publisher's codes (`functions/publisher/src/failure.rs`,
/// `preflight.rs`, `publish.rs`), TikTok's error codes (`tiktok/error.rs`) and TikTok's `fail_reason`s.
const RETRY_AFTER_FIX: &[&str] = &[
    // The account: reconnect it.
    "account_not_connected",
    "token_unreadable",
    "reauth_required",
    "access_token_invalid",
    "scope_not_authorized",
    "scope_permission_missed",
    "invalid_grant",
    "auth_removed",
    // The app's setup at TikTok or in Postato: verify the URL prefix, set the account private, configure the URL.
    "url_ownership_unverified",
    "unaudited_client_can_only_post_to_private_accounts",
    "media_url_not_configured",
    // Caps: wait, then retry (TikTok advises 24 hours); the daily caps are `DAILY_CAP_CODES`.
    "spam_risk_too_many_pending_share",
    "rate_limit_exceeded",
    // The media: upload it, replace it, remux it.
    "media_missing",
    "media_rejected",
    "media_changed",
    "media_not_ready",
    "upload_expired",
    "upload_url_expired",
    "container_not_publishable",
    "file_too_large",
    "duration_over_creator_limit",
    "duplicate_media",
    "file_format_check_failed",
    "duration_check_failed",
    "frame_rate_check_failed",
    "picture_size_check_failed",
    "video_bitrate_check_failed",
    // The creator's settings or the post's options: change them in TikTok, or edit the post once it is scheduled.
    "privacy_required",
    "privacy_unavailable",
    "privacy_level_option_mismatch",
    "privacy_level_not_authorized",
    "interaction_disabled",
    "spam_risk_text",
    // TikTok's (or the media store's) passing trouble, nothing created.
    "tiktok_unavailable",
    "media_unavailable",
    "internal",
    "video_pull_failed",
    "photo_pull_failed",
    "publish_cancelled",
    // A person checked TikTok: not there.
    NOT_PUBLISHED_CONFIRMED,
];

/// Failures after which the post may be live on TikTok.
const MAY_BE_LIVE: &[&str] = &["tracking_timeout", "tracking_failed", "init_outcome_unknown"];

impl Failure {
    pub fn retry_policy(&self) -> RetryPolicy {
        let code = self.code.as_str();
        if MAY_BE_LIVE.contains(&code) {
            RetryPolicy::MayBeLive
        } else if RETRY_AFTER_FIX.contains(&code) || DAILY_CAP_CODES.contains(&code) {
            RetryPolicy::AfterFix
        } else {
            RetryPolicy::Never
        }
    }
}

impl Post {
    /// When a scheduled post may be sent to TikTok: its time, or later when a wait holds it back. Not [`Self::due_at`],
    /// which is earlier while events wait in the outbox: that makes the post due for their delivery, never for its
    /// publishing.
    pub fn publish_at(&self) -> Option<DateTime<Utc>> {
        self.scheduled_at
            .map(|at| self.publish.not_before.map_or(at, |not_before| at.max(not_before)))
    }

    /// Plans the renewal of the account's refresh token (expiring at `refresh_expires_at`) that a scheduled post
    /// needs: TikTok's refresh tokens live months, not a year, and a post scheduled past the token's life would
    /// find the account disconnected at its time. Renewed [`KEEPALIVE_MARGIN`] before expiry; none when the post
    /// goes out first.
    pub fn plan_keepalive(&mut self, refresh_expires_at: DateTime<Utc>, now: DateTime<Utc>) {
        let renew_at = refresh_expires_at - KEEPALIVE_MARGIN;
        self.publish.keepalive_at = match (self.status, self.publish_at()) {
            (PostStatus::Scheduled, Some(at)) if at > renew_at => Some(renew_at.max(now)),
            _ => None,
        };
    }

    /// Whether TikTok may still pull the post's public copies: while it is being sent, and once accepted until
    /// TikTok reports a state past the download. A post sent again gets new copies at its next claim.
    pub fn needs_exposure(&self) -> bool {
        match self.status {
            PostStatus::Publishing => true,
            PostStatus::Published => matches!(
                self.publish.tiktok_status.as_deref(),
                None | Some("PROCESSING_DOWNLOAD")
            ),
            _ => false,
        }
    }

    /// Whether public copies are left that nothing needs any more: whoever moved the post (the publisher, the
    /// intake's webhook, cancel or resolve) leaves their removal to the publisher, for which the post stays due.
    pub fn exposure_to_withdraw(&self) -> bool {
        !self.publish.exposed.is_empty() && !self.needs_exposure()
    }

    /// When the post next needs the publisher, if ever: the due index holds exactly these posts.
    /// Scheduled posts at their time; publishing posts when their lease runs out (a stalled publisher is
    /// replaced); published posts when their TikTok status should be polled next.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let by_status = match self.status {
            PostStatus::Scheduled => match (self.publish_at(), self.publish.keepalive_at) {
                (Some(at), Some(keepalive)) => Some(at.min(keepalive)),
                (at, _) => at,
            },
            PostStatus::Publishing => self.publish.lease_until,
            PostStatus::Published => self.publish.next_poll_at,
            _ => None,
        };
        // Undelivered events, and public copies no longer needed, make the post due at once, whatever its state, so
        // the publisher delivers them or removes them.
        let at_once = (!self.outbox.is_empty() || self.exposure_to_withdraw()).then_some(self.updated_at);
        match (by_status, at_once) {
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
            keepalive_at: earlier.keepalive_at,
            // The previous publish's copies, still to be removed; the next claim makes new ones.
            exposed: earlier.exposed,
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

/// The transitions callers ask for through the API, each with its event in the outbox and an entry in the audit
/// trail. `by` is the caller's API key id. Callers bump `version` and `updated_at` when they write.
impl Post {
    /// Why `retry` is refused, if it is: only failed posts that are not on TikTok, for a failure a user can fix.
    pub fn retry_refusal(&self) -> Option<Refusal> {
        match self.status {
            PostStatus::Failed => {}
            PostStatus::NeedsReview => {
                return Some(Refusal::new(
                    "needs_review",
                    format!(
                        "whether TikTok published post {} is unknown: check the TikTok account, then record what you \
                         found with POST /v1/posts/{}/resolve (outcome not_published makes it retryable)",
                        self.id, self.id
                    ),
                ))
            }
            other => {
                return Some(Refusal::new(
                    "not_retryable",
                    format!(
                        "post {} is {}: only failed posts can be retried",
                        self.id,
                        other.as_str()
                    ),
                ))
            }
        }
        // A publish id alone does not make a failed post possibly live: a post fails after TikTok's init only when
        // TikTok reported it `FAILED` (its verdict is final) or never got all of its bytes. Failures that leave the
        // outcome open end in `needs_review`, or carry a `MayBeLive` code in records from before that.
        match self.failure.as_ref().map(Failure::retry_policy) {
            None | Some(RetryPolicy::AfterFix) => None,
            Some(RetryPolicy::MayBeLive) => Some(may_double_post(&self.id, self.publish.publish_id.as_deref())),
            Some(RetryPolicy::Never) => {
                let failure = self.failure.as_ref().map(|f| format!("{}: {}", f.code, f.message));
                Some(Refusal::new(
                    "not_retryable",
                    format!(
                        "post {} failed for a reason retrying cannot fix ({}); create a new post if it still should go out",
                        self.id,
                        failure.unwrap_or_default()
                    ),
                ))
            }
        }
    }

    /// Schedules a failed post again (the caller checked [`Post::retry_refusal`] and the create-time rules): the
    /// failure and the record of the previous attempt are cleared.
    pub fn mark_retried(&mut self, scheduled_at: DateTime<Utc>, by: &str, now: DateTime<Utc>) {
        let previous = self.failure.take().map(|f| f.code).unwrap_or_default();
        self.status = PostStatus::Scheduled;
        self.scheduled_at = Some(scheduled_at);
        // Copies an earlier publish left (their removal failed so far) are still to be removed.
        self.publish = PublishProgress {
            exposed: std::mem::take(&mut self.publish.exposed),
            ..PublishProgress::default()
        };
        let event = self.event(
            EventType::PostRetried,
            now,
            serde_json::json!({ "scheduledAt": scheduled_at, "previousFailure": previous }),
        );
        self.outbox.push(event);
        self.record(
            by,
            "retried",
            format!("failed with {previous}; scheduled for {scheduled_at}"),
            now,
        );
    }

    /// Records what a person found on TikTok for a post in `needs_review`.
    pub fn resolve(&mut self, resolution: Resolution, by: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.status != PostStatus::NeedsReview {
            return Err(Refusal::new(
                "not_in_review",
                format!(
                    "post {} is {}: only posts in needs_review can be resolved",
                    self.id,
                    self.status.as_str()
                ),
            ));
        }
        let previous = self.failure.as_ref().map(|f| f.code.clone()).unwrap_or_default();
        self.publish.lease_until = None;
        self.publish.next_poll_at = None;
        let (data, detail) = match resolution {
            Resolution::Published {
                post_url,
                tiktok_post_id,
            } => {
                self.status = PostStatus::Completed;
                self.failure = None;
                self.publish.completed_at = Some(now);
                self.publish.post_url = post_url.or(self.publish.post_url.take());
                self.publish.tiktok_post_id = tiktok_post_id.or(self.publish.tiktok_post_id.take());
                let detail = match &self.publish.post_url {
                    Some(url) => format!("was {previous}; found on TikTok at {url}"),
                    None => format!("was {previous}; found on TikTok"),
                };
                let data = serde_json::json!({
                    "outcome": "published",
                    "postUrl": self.publish.post_url,
                    "tiktokPostId": self.publish.tiktok_post_id,
                    "publishId": self.publish.publish_id,
                });
                (data, detail)
            }
            Resolution::NotPublished => {
                self.status = PostStatus::Failed;
                let log_id = self.failure.take().and_then(|f| f.log_id);
                self.failure = Some(Failure {
                    log_id,
                    ..Failure::new(
                        NOT_PUBLISHED_CONFIRMED,
                        format!(
                            "checked on TikTok: the post is not there. Schedule it again with POST /v1/posts/{}/retry",
                            self.id
                        ),
                    )
                });
                let data = serde_json::json!({ "outcome": "not_published", "publishId": self.publish.publish_id });
                (data, format!("was {previous}; not found on TikTok"))
            }
        };
        let event = self.event(EventType::PostResolved, now, data);
        self.outbox.push(event);
        self.record(by, "resolved", detail, now);
        Ok(())
    }

    /// `post.scheduled`, written with the write that scheduled the post (create, edit, retry).
    pub fn note_scheduled(&mut self, now: DateTime<Utc>) {
        let scheduled_at = self.scheduled_at.unwrap_or(now);
        let event = self.event(
            EventType::PostScheduled,
            now,
            serde_json::json!({ "scheduledAt": scheduled_at }),
        );
        self.outbox.push(event);
    }

    /// Cancels a draft or scheduled post (the caller checked [`PostStatus::is_editable`]).
    pub fn mark_canceled(&mut self, by: &str, now: DateTime<Utc>) {
        let previous = self.status;
        self.status = PostStatus::Canceled;
        let event = self.event(
            EventType::PostCanceled,
            now,
            serde_json::json!({ "previousStatus": previous.as_str() }),
        );
        self.outbox.push(event);
        self.record(by, "canceled", format!("was {}", previous.as_str()), now);
    }

    fn record(&mut self, by: &str, action: &str, detail: String, now: DateTime<Utc>) {
        self.audit.push(AuditEntry {
            at: now,
            by: by.to_owned(),
            action: action.to_owned(),
            detail,
        });
    }
}

fn may_double_post(id: &PostId, publish_id: Option<&str>) -> Refusal {
    let accepted = match publish_id {
        Some(publish_id) => format!("TikTok accepted post {id} (publish id {publish_id})"),
        None => format!("TikTok may have received post {id}"),
    };
    Refusal::new(
        "may_double_post",
        format!(
            "{accepted}, so retrying could post it twice (TikTok flags duplicates as spam): check the TikTok account \
             and create a new post only if this one is missing"
        ),
    )
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn post(status: PostStatus, failure: Option<&str>) -> Post {
        Post {
            id: PostId::new(),
            workspace_id: WorkspaceId::new(),
            account_id: AccountId::new(),
            status,
            post_type: PostType::Video,
            content: String::new(),
            media: vec![MediaId::new()],
            options: PostOptions::default(),
            scheduled_at: Some(now()),
            warnings: Vec::new(),
            publish: PublishProgress::default(),
            failure: failure.map(|code| Failure::new(code, "why")),
            outbox: Vec::new(),
            audit: Vec::new(),
            created_at: now(),
            updated_at: now(),
            version: 3,
        }
    }

    fn assert_policy(codes: &[&str], expected: RetryPolicy) {
        for code in codes {
            assert_eq!(Failure::new(*code, "").retry_policy(), expected, "{code}");
        }
    }

    #[test]
    fn public_copies_stay_while_tiktok_may_pull_and_are_withdrawn_as_soon_as_nothing_needs_them() {
        let mut p = post(PostStatus::Publishing, None);
        p.scheduled_at = Some(now() + chrono::Duration::days(1));
        p.publish.exposed = vec!["public/abc/0.mp4".into()];
        assert!(!p.exposure_to_withdraw(), "being sent");
        p.mark_published(now(), now() + chrono::Duration::seconds(10));
        p.outbox.clear();
        assert!(!p.exposure_to_withdraw(), "accepted, not downloaded yet");
        p.publish.tiktok_status = Some("PROCESSING_DOWNLOAD".into());
        assert!(!p.exposure_to_withdraw(), "being downloaded");
        p.publish.tiktok_status = Some("PROCESSING_UPLOAD".into());
        assert!(p.exposure_to_withdraw(), "TikTok has the bytes");
        assert_eq!(p.due_at(), Some(p.updated_at), "due at once for the removal");

        p.mark_processing_failed(Failure::new("internal", "try again"), FailRetry::Retry, now());
        assert_eq!(p.status, PostStatus::Scheduled);
        assert_eq!(
            p.publish.exposed,
            ["public/abc/0.mp4"],
            "sent again: the old copies are still listed"
        );
        assert!(p.exposure_to_withdraw());

        p.mark_failed(Failure::new("internal", "gave up"), now());
        p.mark_retried(now() + chrono::Duration::days(2), "key_1", now());
        assert_eq!(
            p.publish.exposed,
            ["public/abc/0.mp4"],
            "a retry keeps them listed for removal"
        );
        p.publish.exposed.clear();
        p.outbox.clear();
        assert!(!p.exposure_to_withdraw());
        assert_eq!(
            p.due_at(),
            p.publish_at(),
            "nothing left to remove: due at its time only"
        );
    }

    #[test]
    fn account_failures_are_retryable_after_a_reconnect() {
        let codes = [
            "account_not_connected",
            "token_unreadable",
            "access_token_invalid",
            "scope_not_authorized",
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn app_setup_failures_are_retryable_once_fixed() {
        let codes = [
            "url_ownership_unverified",
            "unaudited_client_can_only_post_to_private_accounts",
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn caps_are_retryable_later() {
        let codes = [
            "spam_risk_too_many_posts",
            "reached_active_user_cap",
            "rate_limit_exceeded",
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn media_failures_are_retryable_once_the_media_is_fixed() {
        let codes = [
            "media_rejected",
            "media_changed",
            "upload_expired",
            "media_not_ready",
            "container_not_publishable",
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn creator_setting_failures_are_retryable_after_a_change() {
        let codes = [
            "privacy_unavailable",
            "interaction_disabled",
            "duration_over_creator_limit",
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn tiktok_trouble_is_retryable() {
        let codes = [
            "tiktok_unavailable",
            "media_unavailable",
            "internal",
            "video_pull_failed",
            NOT_PUBLISHED_CONFIRMED,
        ];
        assert_policy(&codes, RetryPolicy::AfterFix);
    }

    #[test]
    fn failures_after_tiktok_may_have_the_post_are_never_retried() {
        let codes = ["tracking_timeout", "tracking_failed", "init_outcome_unknown"];
        assert_policy(&codes, RetryPolicy::MayBeLive);
    }

    #[test]
    fn bans_and_unknown_reasons_are_not_retryable() {
        assert_policy(
            &["spam_risk_user_banned_from_posting", "something_new"],
            RetryPolicy::Never,
        );
    }

    #[test]
    fn retry_is_refused_for_other_states_and_for_posts_tiktok_accepted() {
        assert_eq!(post(PostStatus::Failed, Some("media_rejected")).retry_refusal(), None);
        let refused = |p: Post| p.retry_refusal().map(|r| r.code);
        assert_eq!(refused(post(PostStatus::Completed, None)), Some("not_retryable"));
        assert_eq!(
            refused(post(PostStatus::NeedsReview, Some("init_outcome_unknown"))),
            Some("needs_review")
        );
        assert_eq!(
            refused(post(PostStatus::Failed, Some("spam_risk_user_banned_from_posting"))),
            Some("not_retryable")
        );
        let mut accepted = post(PostStatus::Failed, Some("tracking_timeout"));
        accepted.publish.publish_id = Some("v_pub_1".into());
        assert_eq!(refused(accepted.clone()), Some("may_double_post"));
        accepted.failure = Some(Failure::new(NOT_PUBLISHED_CONFIRMED, "checked"));
        assert_eq!(refused(accepted), None, "a person confirmed it is not on TikTok");
    }

    #[test]
    fn a_post_tiktok_reported_failed_is_retryable_after_a_fix() {
        // TikTok's `FAILED` is final: the post is not live, whatever publish id it had.
        let mut refused_by_tiktok = post(PostStatus::Failed, Some("file_format_check_failed"));
        refused_by_tiktok.publish.publish_id = Some("v_pub_1".into());
        assert_eq!(refused_by_tiktok.retry_refusal(), None);
    }

    #[test]
    fn a_retry_clears_the_failure_and_the_attempt_and_records_who() {
        let mut p = post(PostStatus::Failed, Some("upload_expired"));
        p.publish.attempt = 2;
        p.publish.init_started_at = Some(now());
        p.mark_retried(now() + chrono::Duration::hours(1), "key_abc", now());
        assert_eq!(p.status, PostStatus::Scheduled);
        assert_eq!(p.failure, None);
        assert_eq!(p.publish, PublishProgress::default());
        assert_eq!(
            p.outbox.iter().map(|e| e.event_type).collect::<Vec<_>>(),
            [EventType::PostRetried]
        );
        assert_eq!(
            (p.audit[0].by.as_str(), p.audit[0].action.as_str()),
            ("key_abc", "retried")
        );
    }

    #[test]
    fn resolving_records_the_outcome_and_only_from_needs_review() {
        let mut p = post(PostStatus::NeedsReview, Some("init_outcome_unknown"));
        let found = Resolution::Published {
            post_url: Some("https://www.tiktok.com/@u/video/9".into()),
            tiktok_post_id: Some("9".into()),
        };
        p.resolve(found.clone(), "key_abc", now()).unwrap();
        assert_eq!(p.status, PostStatus::Completed);
        assert_eq!(p.publish.tiktok_post_id.as_deref(), Some("9"));
        assert_eq!(p.resolve(found, "key_abc", now()).unwrap_err().code, "not_in_review");

        let mut p = post(PostStatus::NeedsReview, Some("init_outcome_unknown"));
        p.resolve(Resolution::NotPublished, "key_abc", now()).unwrap();
        assert_eq!(p.status, PostStatus::Failed);
        assert_eq!(p.retry_refusal(), None);
        assert_eq!(
            p.outbox.iter().map(|e| e.event_type).collect::<Vec<_>>(),
            [EventType::PostResolved]
        );
    }

    /// TikTok's retryable processing failures are sent again `PROCESSING_RETRIES` times, each wait twice the one
    /// before; the failure after the last retry ends the post with that failure's reason.
    #[test]
    fn a_retryable_processing_failure_is_retried_within_its_budget_then_fails_with_the_last_reason() {
        let mut p = post(PostStatus::Publishing, None);
        let mut at = now();
        let mut waits = Vec::new();
        for round in 0..PROCESSING_RETRIES {
            p.publish.publish_id = Some(format!("v_pub_{round}"));
            p.mark_processing_failed(Failure::new("internal", format!("try {round}")), FailRetry::Retry, at);
            assert_eq!(p.status, PostStatus::Scheduled, "round {round}");
            assert_eq!(
                p.publish.publish_id, None,
                "a new init, never the old publish id resumed"
            );
            let until = p.publish.not_before.expect("sent again later");
            waits.push(until - at);
            at = until;
            p.status = PostStatus::Publishing;
        }
        assert_eq!(waits, [PROCESSING_RETRY_WAIT, PROCESSING_RETRY_WAIT * 2]);

        p.mark_processing_failed(Failure::new("internal", "the last"), FailRetry::Retry, at);
        assert_eq!(p.status, PostStatus::Failed);
        assert_eq!(
            p.failure.as_ref().map(|f| (f.code.as_str(), f.message.as_str())),
            Some(("internal", "the last"))
        );
        let kinds: Vec<EventType> = p.outbox.iter().map(|e| e.event_type).collect();
        assert_eq!(
            kinds,
            [EventType::PostDeferred, EventType::PostDeferred, EventType::PostFailed]
        );
    }

    #[test]
    fn a_post_scheduled_past_its_refresh_token_plans_a_renewal_and_is_due_for_it_first() {
        let mut p = post(PostStatus::Scheduled, None);
        p.scheduled_at = Some(now() + chrono::Duration::days(300));
        p.plan_keepalive(now() + chrono::Duration::days(180), now());
        let renew_at = now() + chrono::Duration::days(173);
        assert_eq!(p.publish.keepalive_at, Some(renew_at));
        assert_eq!(p.due_at(), Some(renew_at), "due for the renewal first");
        assert_eq!(p.publish_at(), p.scheduled_at, "published at its own time");
        // Renewed: the token now outlives the post.
        p.plan_keepalive(now() + chrono::Duration::days(180 + 173), now());
        assert_eq!(p.publish.keepalive_at, None);
        assert_eq!(p.due_at(), p.scheduled_at);
        // A token already inside its margin is renewed at once.
        p.plan_keepalive(now() + chrono::Duration::days(2), now());
        assert_eq!(p.publish.keepalive_at, Some(now()));
        // Drafts plan nothing.
        let mut draft = post(PostStatus::Draft, None);
        draft.plan_keepalive(now(), now());
        assert_eq!(draft.publish.keepalive_at, None);
    }

    #[test]
    fn a_stored_post_without_an_audit_trail_reads_with_an_empty_one() {
        let mut stored = serde_json::to_value(post(PostStatus::Draft, None)).unwrap();
        assert!(stored.get("audit").is_none(), "an empty trail is not written");
        stored.as_object_mut().unwrap().remove("audit");
        let read: Post = serde_json::from_value(stored).unwrap();
        assert!(read.audit.is_empty());
    }
}
