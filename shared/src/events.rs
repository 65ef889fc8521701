//! Events on the bus (EventBridge source `postato`). Each carries a stable id so consumers can dedupe
//! redeliveries, the workspace and the ids it is about, and never a token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{AccountId, EventId, MediaId, PostId, WorkspaceId};

pub const EVENT_SOURCE: &str = "postato";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "media.validated")]
    MediaValidated,
    #[serde(rename = "media.rejected")]
    MediaRejected,
    #[serde(rename = "post.scheduled")]
    PostScheduled,
    #[serde(rename = "post.published")]
    PostPublished,
    #[serde(rename = "post.completed")]
    PostCompleted,
    #[serde(rename = "post.failed")]
    PostFailed,
    #[serde(rename = "post.needs_review")]
    PostNeedsReview,
    /// TikTok's daily cap refused the post; it tries again once, a day later.
    #[serde(rename = "post.deferred")]
    PostDeferred,
    /// A failed post was scheduled again by `POST /v1/posts/{id}/retry`.
    #[serde(rename = "post.retried")]
    PostRetried,
    /// A person recorded what they found on TikTok for a post in `needs_review`.
    #[serde(rename = "post.resolved")]
    PostResolved,
    #[serde(rename = "post.canceled")]
    PostCanceled,
    #[serde(rename = "account.reauth_required")]
    AccountReauthRequired,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MediaValidated => "media.validated",
            Self::MediaRejected => "media.rejected",
            Self::PostScheduled => "post.scheduled",
            Self::PostPublished => "post.published",
            Self::PostCompleted => "post.completed",
            Self::PostFailed => "post.failed",
            Self::PostNeedsReview => "post.needs_review",
            Self::PostDeferred => "post.deferred",
            Self::PostRetried => "post.retried",
            Self::PostResolved => "post.resolved",
            Self::PostCanceled => "post.canceled",
            Self::AccountReauthRequired => "account.reauth_required",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<PostId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<MediaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    /// Type-specific detail (a failure's code and message, TikTok's post id, a verdict...).
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(event_type: EventType, workspace_id: WorkspaceId, occurred_at: DateTime<Utc>) -> Self {
        Self {
            id: EventId::new(),
            event_type,
            occurred_at,
            workspace_id,
            post_id: None,
            media_id: None,
            account_id: None,
            data: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn post(mut self, post: &PostId) -> Self {
        self.post_id = Some(post.clone());
        self
    }

    pub fn media(mut self, media: &MediaId) -> Self {
        self.media_id = Some(media.clone());
        self
    }

    pub fn account(mut self, account: &AccountId) -> Self {
        self.account_id = Some(account.clone());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}
