//! The publisher: the schedule tick arms a wakeup for every post due soon ([`dispatch`]); the timer delivers them at
//! their instants ([`handle_deliveries`]), and each wakeup publishes one post at most once ([`handle_due`]), tracks it
//! at TikTok until it ends, and arms the post's next wakeup. No invocation sleeps longer than the timer's lead.
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
mod wakeups;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::{
    accounts::TokenService,
    domain::PostStatus,
    ids::PostId,
    ports::{BlobError, BlobStore, EventError, EventSink, StoreError, Stores, Timer},
    Clock,
};

pub use config::{PublisherConfig, PublisherSettings};
pub use dispatch::{dispatch, DispatchReport};
pub use wakeups::{handle_deliveries, handle_sqs_batch};

pub struct PublisherDeps {
    pub stores: Stores,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenService,
    pub settings: PublisherSettings,
    pub timer: Arc<dyn Timer>,
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
        timer: Arc<dyn Timer>,
    ) -> Self {
        Self {
            stores,
            blobs,
            events,
            clock,
            tokens,
            settings,
            timer,
            creator_info: Default::default(),
        }
    }
}

/// What handling one `post.due` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    UnknownPost,
    /// Too early (a wakeup armed far ahead, or a duplicate): look again at `due`.
    NotDue {
        due: DateTime<Utc>,
    },
    NothingToDo,
    /// Another worker holds or changed the post.
    Lost,
    /// Not possible yet; due again at `until`.
    Waiting {
        until: DateTime<Utc>,
    },
    /// Left to a later delivery at `resume_at`, which carries on from the saved progress: too little time left
    /// here, or an upload that continues in its own delivery so that no batch waits for it.
    Yielded {
        resume_at: DateTime<Utc>,
    },
    Published {
        next_poll: DateTime<Utc>,
    },
    Tracking {
        next_poll: DateTime<Utc>,
    },
    Completed,
    Failed {
        code: String,
    },
    NeedsReview,
}

impl Handled {
    /// Whether the next look is the post's scheduled instant, where the init must leave on time, so that the wakeup
    /// must come early enough for pre-flight (see `wakeups::wake_at`).
    pub fn is_before_its_time(&self) -> bool {
        matches!(self, Self::NotDue { .. })
    }

    /// When the post must be looked at next, if this handling left it waiting for an instant.
    pub fn next_look(&self) -> Option<DateTime<Utc>> {
        match *self {
            Self::NotDue { due } => Some(due),
            Self::Waiting { until } => Some(until),
            Self::Yielded { resume_at } => Some(resume_at),
            Self::Published { next_poll } | Self::Tracking { next_poll } => Some(next_poll),
            _ => None,
        }
    }
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
    #[error("timer unavailable")]
    Timer(#[from] shared::ports::TimerError),
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
    let post = store::settle(deps, post).await?;
    match post.status {
        PostStatus::Scheduled => publish::publish_scheduled(deps, post, deadline).await,
        PostStatus::Publishing => publish::resume(deps, post, deadline).await,
        PostStatus::Published => track::poll(deps, post, deadline).await,
        _ => Ok(Handled::NothingToDo),
    }
}

/// The Lambda's entry: the schedule tick (an EventBridge "Scheduled Event") or a batch of timer messages from the
/// SQS event source mapping, answered with the messages to deliver again.
pub async fn handle_event(
    deps: &PublisherDeps,
    event: Value,
    deadline: DateTime<Utc>,
) -> Result<Value, PublisherError> {
    if event.get("Records").is_some() {
        return Ok(handle_sqs_batch(deps, &event, deadline).await);
    }
    match event.get("detail-type").and_then(Value::as_str) {
        Some("Scheduled Event") => {
            let report = dispatch(deps).await?;
            Ok(serde_json::json!({ "armed": report.armed, "notArmed": report.not_armed }))
        }
        other => Err(PublisherError::BadEvent(format!("unexpected detail-type {other:?}"))),
    }
}
