//! The publisher: the schedule tick hands out due posts ([`dispatch`]); each `post.due` publishes one post at most
//! once ([`handle_due`]) and tracks it at TikTok until it ends.
#![forbid(unsafe_code)]

pub mod config;
mod dispatch;
mod failure;
pub mod in_process;
mod limits;
pub mod metrics;
mod preflight;
mod publish;
mod store;
mod track;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::{
    accounts::TokenService,
    domain::PostStatus,
    ids::PostId,
    ports::{BlobError, BlobStore, EventError, EventSink, StoreError, Stores},
    Clock,
};

pub use config::{PublisherConfig, PublisherSettings};
pub use dispatch::{dispatch, DispatchReport};

pub struct PublisherDeps {
    pub stores: Stores,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenService,
    pub settings: PublisherSettings,
    creator_info: preflight::CreatorInfoCache,
}

impl PublisherDeps {
    pub fn new(
        stores: Stores,
        blobs: Arc<dyn BlobStore>,
        events: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
        tokens: TokenService,
        settings: PublisherSettings,
    ) -> Self {
        Self {
            stores,
            blobs,
            events,
            clock,
            tokens,
            settings,
            creator_info: Default::default(),
        }
    }
}

/// What handling one `post.due` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    UnknownPost,
    NotDue,
    NothingToDo,
    /// Another worker holds or changed the post.
    Lost,
    /// Not possible yet; due again at `until`.
    Waiting {
        until: DateTime<Utc>,
    },
    /// Too little time left; the post resumes from its saved progress on a later delivery.
    Yielded,
    Published,
    Tracking,
    Completed,
    Failed {
        code: String,
    },
    NeedsReview,
}

/// Infrastructure trouble: the invocation fails so that Lambda retries it (and the on-failure destination catches
/// it at last). Every TikTok outcome is a post state instead, never an error here.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    #[error("store unavailable")]
    Store(#[from] StoreError),
    #[error("blob store unavailable")]
    Blob(#[from] BlobError),
    #[error("event bus unavailable")]
    Events(#[from] EventError),
    #[error("the post kept changing under a write")]
    Contended,
    #[error("event not understood: {0}")]
    BadEvent(String),
}

impl From<PublisherError> for lambda_runtime::Diagnostic {
    fn from(error: PublisherError) -> Self {
        let error_type = match error {
            PublisherError::BadEvent(_) => "BadEvent",
            _ => "Retryable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// Handles one `post.due` for `post_id`, within an invocation that must end by `deadline`.
#[tracing::instrument(skip(deps), fields(post_id = %post_id))]
pub async fn handle_due(
    deps: &PublisherDeps,
    post_id: &PostId,
    deadline: DateTime<Utc>,
) -> Result<Handled, PublisherError> {
    let Some(post) = deps.stores.posts.get_post(post_id).await? else {
        tracing::warn!("post.due for an unknown post; ignored");
        return Ok(Handled::UnknownPost);
    };
    let post = store::deliver_outbox(deps, post).await?;
    match post.status {
        PostStatus::Scheduled => publish::publish_scheduled(deps, post, deadline).await,
        PostStatus::Publishing => publish::resume(deps, post, deadline).await,
        PostStatus::Published => track::poll(deps, post, deadline).await,
        _ => Ok(Handled::NothingToDo),
    }
}

/// The Lambda's entry: an EventBridge event that is either the schedule tick or a `post.due`.
pub async fn handle_event(
    deps: &PublisherDeps,
    event: Value,
    deadline: DateTime<Utc>,
) -> Result<Value, PublisherError> {
    match event.get("detail-type").and_then(Value::as_str) {
        Some("post.due") => {
            let post_id = event
                .pointer("/detail/postId")
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<PostId>().ok())
                .ok_or_else(|| PublisherError::BadEvent("post.due without a valid detail.postId".into()))?;
            let handled = handle_due(deps, &post_id, deadline).await?;
            Ok(serde_json::json!({ "postId": post_id, "handled": format!("{handled:?}") }))
        }
        Some("Scheduled Event") => {
            let report = dispatch(deps).await?;
            Ok(serde_json::json!({ "handedOut": report.handed_out, "notDelivered": report.not_delivered }))
        }
        other => Err(PublisherError::BadEvent(format!("unexpected detail-type {other:?}"))),
    }
}
