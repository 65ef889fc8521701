//! The media validator: decides, from a few ranged reads, whether an uploaded file meets the product guide's
//! video and image rules.
//!
//! - [`probe`]: the sans-IO probe, fed byte ranges, answering with facts or with the next range it needs.
//! - [`remux`]: MPEG-TS and MPEG-PS with H.264/AAC → MP4 without re-encoding, sans-IO as well (fed the source in
//!   order).
//! - `verdict`: the guide's rules over those facts, each violation with a stable code and what to do.
//! - `source`: the one driver that feeds the probe from a range source (S3 through the BlobStore port, or a file).
//! - `handler`: the S3-triggered Lambda's logic over the ports; `rendition`: the JPEG copy of a PNG.
//! - `worker`: the media worker's jobs (URL imports, remuxes too large for the validator), from a queue.
//!
//! Without the default `service` feature the crate is only the probe (what the fuzzer builds).
#![forbid(unsafe_code)]

pub mod probe;
pub mod remux;

#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod facts;
#[cfg(feature = "service")]
pub mod handler;
#[cfg(feature = "service")]
pub mod import;
#[cfg(feature = "service")]
pub mod rendition;
#[cfg(feature = "service")]
pub mod source;
#[cfg(feature = "service")]
pub mod verdict;
#[cfg(feature = "service")]
pub mod worker;

#[cfg(feature = "service")]
pub use handler::{handle_s3_event, import_media, validate_object, Ignored, Outcome, ValidatorDeps, ValidatorError};
