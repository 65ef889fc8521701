//! One contract suite per port. Each adapter's test file runs every suite against a fresh instance of the adapter
//! (a new SQLite database, a new DynamoDB table, a new bucket or bus), so a suite may assume it sees only its own
//! records.

pub mod blobs;
pub mod events;
pub mod media_jobs;
pub mod store;
pub mod timer;
