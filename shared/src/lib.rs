//! Postato for TikTok: everything the three functions and the local runner share.
//!
//! - [`domain`]: the post, media and account records and their life cycles.
//! - [`rules`]: the product guide's rules for a post, applied the same way by every entry point.
//! - [`ports`]: the traits the functions depend on; [`adapters`] implement them for AWS and for one machine.
//! - [`tiktok`]: the typed TikTok Content Posting API client.
//! - [`accounts`]: fresh access tokens, refreshed single-flight; [`outbox`]: a post's events, delivered after the
//!   write that caused them.
//! - [`config`] and [`telemetry`]: typed configuration that fails at start, and logging; [`secrets`]: the
//!   Secrets Manager values laid over the configuration at cold start.
//! - [`media_jobs`]: the long media jobs (URL imports, large remuxes) the media worker runs from a queue.
//! - [`webhook_dedupe`]: each TikTok webhook delivery applied once, however often it is redelivered or replayed.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod adapters;
pub mod clock;
pub mod config;
pub mod domain;
pub mod events;
pub mod ids;
pub mod media_jobs;
pub mod outbox;
pub mod ports;
pub mod rules;
pub mod secrets;
pub mod telemetry;
pub mod tiktok;
pub mod timer;
pub mod webhook_dedupe;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
