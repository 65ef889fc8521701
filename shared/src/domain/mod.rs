//! The records the product keeps and the transitions between their states.

pub mod account;
pub mod exposure;
pub mod media;
pub mod post;
pub mod workspace;

pub use account::{Account, AccountStatus, RateLimited, RateWindows, SealedTokens};
pub use exposure::{ExposedCopy, Exposure};
pub use media::{Finding, Media, MediaFacts, MediaKind, MediaStatus, MediaVerdict, Rendition, RenditionStatus};
pub use post::{
    AuditEntry, Failure, Post, PostOptions, PostStatus, PostType, Privacy, PublishProgress, Refusal, Resolution,
    RetryPolicy, Transfer, AMBIGUOUS_UPLOAD_REINITS, DAILY_CAP_CODES, DAILY_CAP_RETRIES, DAILY_CAP_WAIT,
    KEEPALIVE_MARGIN,
};
pub use workspace::{ApiKey, Workspace};

use chrono::{DateTime, SecondsFormat, Utc};

/// Fixed-width UTC timestamp (`2026-11-25T22:00:00.000Z`): sorts lexicographically in the same order as time,
/// which the due index and the listing index rely on.
pub fn sortable_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
