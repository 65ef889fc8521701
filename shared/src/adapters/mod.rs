//! Adapters for the ports: AWS ones for Lambda, embedded ones for one machine.
//!
//! | port | AWS | embedded |
//! |---|---|---|
//! | storage (posts, media, accounts, idempotency, keys, OAuth states) | [`dynamo::DynamoStore`] | [`sqlite::SqliteStore`] |
//! | media bytes | [`s3::S3BlobStore`] | [`local_blobs::LocalBlobStore`] |
//! | events out | [`eventbridge::EventBridgeSink`] | [`local_events::LocalEventSink`] ([`memory::RecordingEventSink`] in unit tests) |
//! | timer (wakeups at instants) | [`sqs::SqsTimer`] | [`local_timer::LocalTimer`] |
//! | media jobs (URL imports, large remuxes) | [`sqs::SqsMediaJobs`] | [`local_jobs::LocalMediaJobs`] |

pub mod aws;
pub(crate) mod batch_send;
mod codec;
pub mod dynamo;
pub mod eventbridge;
pub mod local_blobs;
pub mod local_events;
pub mod local_jobs;
mod local_queue;
pub mod local_timer;
pub mod memory;
pub mod s3;
pub mod sqlite;
pub mod sqs;
mod upload_window;

pub use codec::DUE_SHARDS;
pub use upload_window::{ExpiryNotInFuture, MAX_UPLOAD_URL_LIFETIME_SECS};
