//! The TikTok Content Posting API client and the pure pieces around it.
//!
//! - [`TikTokClient`]: one method per TikTok call (OAuth, user info, creator_info, inits, chunk upload, status,
//!   cancel), each returning a typed answer or a [`TikTokError`] whose class says what to do next.
//! - [`ChunkPlan`]: TikTok's chunk rules for FILE_UPLOAD.
//! - [`oauth`]: the authorize URL, `state`, scopes, token grants and when to refresh.
//! - [`webhook`]: `TikTok-Signature` signing and verification, and the event envelope.
//! - [`TokenCipher`]: tokens sealed at rest with AES-256-GCM.
//! - [`FailReason`]: TikTok's processing failures and what the user should do about each.
//!
//! Secrets (the client secret, tokens, upload URLs) are `SecretString`s or redacting types: `Debug` never shows them
//! and the client logs none of them.

pub mod chunk;
pub mod cipher;
pub mod client;
pub mod config;
pub mod error;
pub mod fail_reason;
pub mod model;
pub mod oauth;
pub mod webhook;

pub use chunk::{ChunkPlan, ChunkPlanError};
pub use cipher::{
    CipherError, SealFormat, TokenBinding, TokenCipher, TokenField, ACCEPT_UNBOUND_VARIABLE, TOKEN_KEY_VARIABLE,
};
pub use client::{ClientBuildError, TikTokClient};
pub use config::{TikTokConfig, TikTokTimeouts, UploadHosts};
pub use error::{Endpoint, ErrorClass, ErrorContext, TikTokError, UnknownCause, UploadedRange, POSTING_BLOCKED_CODES};
pub use fail_reason::{FailReason, FailRetry};
pub use model::{
    privacy_options, utf16_len, ChunkAck, CreatorInfo, InitOutcome, PhotoPost, PhotoPostMode, PublishState,
    PublishStatus, SecretUrl, UserInfo, VideoContentType, VideoPostInfo, VideoSource, PHOTO_DESCRIPTION_MAX_UTF16,
    PHOTO_MAX_IMAGES, PHOTO_TITLE_MAX_UTF16, UPLOAD_URL_LIFETIME, VIDEO_TITLE_MAX_UTF16,
};
pub use oauth::{Scopes, TokenGrant, REQUIRED_SCOPES};
pub use secrecy::{ExposeSecret, SecretString};
