//! `postato-dev`: the whole system on one machine with embedded defaults. The same libraries as the Lambda
//! functions, wired to a SQLite file, a media folder and an in-process event bus (or to AWS with `--backend aws`).
#![forbid(unsafe_code)]

mod composer;
pub mod config;
mod health;
mod local_routes;
mod secrets;
mod system;
mod tiktok;

pub use config::{Backend, DevConfig};
pub use system::{create_key, start, DevSystem, DEV_WORKSPACE};
pub use tiktok::DEV_OPEN_ID;
