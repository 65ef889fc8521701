//! The intake API's one error type, mapped to HTTP once. Every error body has the same shape and carries the
//! request id; 5xx bodies say nothing about internals (the cause chain goes to the log, with the same id).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use shared::{
    accounts::TokenError,
    ports::{BlobError, JobQueueError, StoreError},
    rules::Violation,
    tiktok::{CipherError, ErrorClass, TikTokError},
};
use utoipa::ToSchema;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware for the whole handling of one request.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// What a 503 asks the caller to wait: a SQLite write lock is waited for up to 1.5 s per attempt, DynamoDB
/// throttling passes within seconds.
pub const RETRY_AFTER_SECONDS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedRequest(String),
    /// A request understood but refused, with a code saying why (`invalid_state`, `missing_scopes`, ...).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A TikTok webhook whose `TikTok-Signature` does not prove it came from TikTok (or came too late).
    #[error("the TikTok-Signature header is missing, stale or does not match the body")]
    InvalidSignature,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request breaks {} rule(s)", .0.len())]
    Validation(Vec<Violation>),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    /// The stable code of the error body (also what the connect callback passes on in a redirect).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// What the caller is told: 5xx errors say nothing about internals.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "a backing service is unavailable; retry shortly".to_owned(),
            Self::Internal(_) => format!(
                "something went wrong on our side; quote request id {} to support",
                current_request_id()
            ),
            other => other.to_string(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedRequest(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(Box::new(error)),
            // A lost compare-and-set reaching the caller means someone else changed the record meanwhile.
            StoreError::Conflict(_) => Self::Conflict {
                code: "concurrent_update",
                message: "the record changed while this request was handled; read it again and retry".into(),
            },
            // Only listings take a cursor, so the field is always `cursor`.
            StoreError::InvalidCursor => Self::Validation(vec![Violation::new(
                "cursor",
                "invalid_cursor",
                "cursor is not one this API returned; start again without it",
            )]),
            other => Self::internal(other),
        }
    }
}

/// A queue that refused a job: nothing will run it, and the caller may try again.
impl From<JobQueueError> for ApiError {
    fn from(error: JobQueueError) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// TikTok's answers where nothing more specific applies: its outages are ours to retry (503), its rate limits the
/// caller's to wait out (429), a refused authorization the user's to renew (409).
impl From<TikTokError> for ApiError {
    fn from(error: TikTokError) -> Self {
        match error.class() {
            ErrorClass::RateLimited => Self::TooManyRequests(
                "TikTok's rate limit for this account is reached (a sliding minute); retry in a minute".into(),
            ),
            ErrorClass::Reauthorize => reconnect_required(format!(
                "TikTok refused this account's authorization ({}); connect it again with POST /v1/accounts/tiktok/connect",
                error.code()
            )),
            // Outages, unknown outcomes and answers we cannot use: nothing the caller did wrong.
            _ => Self::Unavailable(Box::new(error)),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::NotFound(id) => Self::NotFound(format!("account {id}")),
            TokenError::NotConnected { id, status } => reconnect_required(format!(
                "account {id} is {}; connect it again with POST /v1/accounts/tiktok/connect",
                status.as_str()
            )),
            TokenError::ReauthRequired(id) => reconnect_required(format!(
                "TikTok no longer accepts account {id}'s authorization; connect it again with \
                 POST /v1/accounts/tiktok/connect"
            )),
            TokenError::Transient(_) => Self::Unavailable(Box::new(error)),
            // Tokens bound elsewhere (moved into this record) or left unbound after an operator stopped accepting
            // those: only a reconnect gives the account usable tokens again. A wrong key or an altered value stays
            // ours to fix (500, alarmed).
            TokenError::Unreadable(id, CipherError::Misplaced | CipherError::Unbound) => Self::Conflict {
                code: "token_unreadable",
                message: format!(
                    "the stored TikTok tokens of account {id} cannot be used; connect it again with \
                     POST /v1/accounts/tiktok/connect"
                ),
            },
            TokenError::Unreadable(..) => Self::internal(error),
        }
    }
}

fn reconnect_required(message: String) -> ApiError {
    ApiError::Conflict {
        code: "reconnect_required",
        message,
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::Unavailable(_) => Self::Unavailable(Box::new(error)),
            other => Self::internal(other),
        }
    }
}

/// `{"error": {...}}`, the body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `not_found`, `idempotency_key_reused`.
    pub code: String,
    pub message: String,
    /// Quote it to support; the logs carry the same id.
    pub request_id: String,
    /// One entry per broken rule, each naming the request path of the offending value.
    pub details: Vec<Violation>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(request_id, error.message = %self, error.cause_chain = ?ErrorChain(&self), "request failed");
        }
        let message = self.public_message();
        // Only a missing API key is answered with the scheme to use; a webhook's signature is not a Bearer key.
        let asks_for_api_key = matches!(self, Self::Unauthorized);
        let details = match self {
            Self::Validation(violations) => violations,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                request_id,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        if asks_for_api_key {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Logs an error with every `source()` below it.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
