//! What a failed TikTok call means for the caller.
//!
//! Every failure lands in one class that says what to do next:
//!
//! | class | do |
//! |---|---|
//! | [`TikTokError::Retryable`] | repeat the same call later (with backoff); it certainly had no effect, or repeating it is harmless |
//! | [`TikTokError::OutcomeUnknown`] | do **not** repeat: a call with effects (an init, a token grant) may have taken effect |
//! | [`TikTokError::RateLimited`] | wait for the 1-minute sliding window |
//! | [`TikTokError::Reauthorize`] | refresh the token once; if that fails too, the user must connect again |
//! | [`TikTokError::Permanent`] | stop; `code` says why (TikTok's own code, kept verbatim) |
//! | [`TikTokError::UploadUrlExpired`] | the upload URL is gone: start again with a new init |
//! | [`TikTokError::UploadRangeMismatch`] | resume the upload from the byte TikTok reports |
//!
//! **Ambiguous inits.** An init, a code exchange and a refresh change state at TikTok. When no answer arrives (a
//! timeout, a dropped connection) or the answer is a server error (5xx, `internal_error`, an unreadable success), the
//! change may have happened: TikTok's reference (§12) says a 5xx on init may still have created a post, and a refresh
//! may have rotated the refresh token. These become [`TikTokError::OutcomeUnknown`], which keeps *why* (no answer vs.
//! the server's status) so a caller can tell them apart. A connection that was never established is
//! [`TikTokError::Retryable`] even there: the request never left.
//!
//! Every variant keeps TikTok's `log_id` (body) or `x-tt-logid` (header), which TikTok support asks for.

use std::fmt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The TikTok call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    TokenExchange,
    TokenRefresh,
    Revoke,
    UserInfo,
    CreatorInfo,
    VideoInit,
    InboxVideoInit,
    ContentInit,
    UploadChunk,
    StatusFetch,
    Cancel,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenExchange => "oauth/token (authorization_code)",
            Self::TokenRefresh => "oauth/token (refresh_token)",
            Self::Revoke => "oauth/revoke",
            Self::UserInfo => "user/info",
            Self::CreatorInfo => "creator_info/query",
            Self::VideoInit => "video/init",
            Self::InboxVideoInit => "inbox/video/init",
            Self::ContentInit => "content/init",
            Self::UploadChunk => "upload chunk",
            Self::StatusFetch => "status/fetch",
            Self::Cancel => "cancel",
        }
    }

    /// Calls whose repetition could do something twice: a second post (spam-flagged by TikTok), or a spent
    /// authorization code or rotated refresh token.
    pub fn has_effects(self) -> bool {
        matches!(
            self,
            Self::TokenExchange | Self::TokenRefresh | Self::VideoInit | Self::InboxVideoInit | Self::ContentInit
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a call failed and what TikTok said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorContext {
    pub endpoint: Endpoint,
    /// TikTok's HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// `error.log_id` from the body, else the `x-tt-logid` header.
    pub log_id: Option<String>,
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TikTok {}", self.endpoint)?;
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(log_id) = &self.log_id {
            write!(f, " [log_id {log_id}]")?;
        }
        Ok(())
    }
}

/// Why a call that may have taken effect has no known outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownCause {
    /// The request was sent and no answer came in time.
    Timeout,
    /// The connection broke after the request was sent (dropped, reset, cut mid-answer).
    NoAnswer,
    /// TikTok answered with a server error: 5xx, `internal_error`, or a success it could not finish saying.
    ServerError,
}

/// The byte range TikTok reports as received, from an upload answer's `Content-Range: bytes 0-{last}/{total}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadedRange {
    pub first: u64,
    pub last: u64,
    pub total: u64,
}

impl UploadedRange {
    /// Bytes TikTok holds (the range is inclusive).
    pub fn uploaded_bytes(&self) -> u64 {
        self.last.saturating_sub(self.first) + 1
    }

    /// Parses `bytes {first}-{last}/{total}`; anything else is `None` (TikTok's header is advisory).
    pub fn parse(header: &str) -> Option<Self> {
        let rest = header.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let parsed = Self {
            first: first.trim().parse().ok()?,
            last: last.trim().parse().ok()?,
            total: total.trim().parse().ok()?,
        };
        (parsed.first <= parsed.last).then_some(parsed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TikTokError {
    #[error("{context}: temporary failure `{code}`: {message}")]
    Retryable {
        /// TikTok's code (`internal_error`, `server_error`...) or ours: `timeout`, `connection`, `http_503`,
        /// `invalid_response`.
        code: String,
        message: String,
        context: ErrorContext,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{context}: outcome unknown ({cause:?}, `{code}`): {message}; the call must not be repeated blindly")]
    OutcomeUnknown {
        cause: UnknownCause,
        code: String,
        message: String,
        context: ErrorContext,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{context}: rate limited: {message}")]
    RateLimited { message: String, context: ErrorContext },
    #[error("{context}: authorization refused `{code}`: {message}")]
    Reauthorize {
        code: String,
        message: String,
        context: ErrorContext,
    },
    #[error("{context}: refused `{code}`: {message}")]
    Permanent {
        code: String,
        message: String,
        context: ErrorContext,
    },
    #[error("{context}: the upload URL expired or is gone; a new init is needed")]
    UploadUrlExpired { context: ErrorContext },
    #[error("{context}: TikTok's upload progress differs from the chunk sent ({uploaded:?})")]
    UploadRangeMismatch {
        uploaded: Option<UploadedRange>,
        context: ErrorContext,
    },
}

/// The class of a [`TikTokError`], for callers that only branch on what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    OutcomeUnknown,
    RateLimited,
    Reauthorize,
    Permanent,
    UploadUrlExpired,
    UploadRangeMismatch,
}

/// Codes creator_info answers with HTTP 200 when the creator cannot post right now (reference §2).
pub const POSTING_BLOCKED_CODES: [&str; 3] = [
    "spam_risk_too_many_posts",
    "spam_risk_user_banned_from_posting",
    "reached_active_user_cap",
];

impl TikTokError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Retryable { .. } => ErrorClass::Retryable,
            Self::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
            Self::RateLimited { .. } => ErrorClass::RateLimited,
            Self::Reauthorize { .. } => ErrorClass::Reauthorize,
            Self::Permanent { .. } => ErrorClass::Permanent,
            Self::UploadUrlExpired { .. } => ErrorClass::UploadUrlExpired,
            Self::UploadRangeMismatch { .. } => ErrorClass::UploadRangeMismatch,
        }
    }

    pub fn context(&self) -> &ErrorContext {
        match self {
            Self::Retryable { context, .. }
            | Self::OutcomeUnknown { context, .. }
            | Self::RateLimited { context, .. }
            | Self::Reauthorize { context, .. }
            | Self::Permanent { context, .. }
            | Self::UploadUrlExpired { context }
            | Self::UploadRangeMismatch { context, .. } => context,
        }
    }

    pub fn log_id(&self) -> Option<&str> {
        self.context().log_id.as_deref()
    }

    pub fn endpoint(&self) -> Endpoint {
        self.context().endpoint
    }

    pub fn http_status(&self) -> Option<u16> {
        self.context().http_status
    }

    /// A stable code for storing with a failure: TikTok's own where it gave one.
    pub fn code(&self) -> &str {
        match self {
            Self::Retryable { code, .. }
            | Self::OutcomeUnknown { code, .. }
            | Self::Reauthorize { code, .. }
            | Self::Permanent { code, .. } => code,
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::UploadUrlExpired { .. } => "upload_url_expired",
            Self::UploadRangeMismatch { .. } => "upload_range_mismatch",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Retryable | ErrorClass::RateLimited)
    }

    /// The code when creator_info (or an init) says the creator cannot post right now: the daily cap, a ban, or the
    /// app's active-creator cap. The composer shows "try later" instead of an error.
    pub fn posting_blocked_code(&self) -> Option<&str> {
        match self {
            Self::Permanent { code, .. } if POSTING_BLOCKED_CODES.contains(&code.as_str()) => Some(code),
            _ => None,
        }
    }
}

/// What a TikTok error code means (reference §8, OAuth errors §1.2). Unknown codes are permanent: never retry what
/// is not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeClass {
    Retryable,
    RateLimited,
    Reauthorize,
    Permanent,
}

pub(crate) fn classify_code(code: &str) -> CodeClass {
    match code {
        "internal_error" | "internal" | "server_error" | "temporarily_unavailable" => CodeClass::Retryable,
        "rate_limit_exceeded" => CodeClass::RateLimited,
        // The token is dead or lacks a scope the user must grant again; `access_denied` is the user refusing.
        "access_token_invalid"
        | "scope_not_authorized"
        | "scope_permission_missed"
        | "invalid_grant"
        | "access_denied" => CodeClass::Reauthorize,
        _ => CodeClass::Permanent,
    }
}

/// The class of an answer that carried no readable code: by HTTP status alone.
pub(crate) fn classify_status(status: u16) -> CodeClass {
    match status {
        429 => CodeClass::RateLimited,
        401 => CodeClass::Reauthorize,
        500..=599 | 408 => CodeClass::Retryable,
        _ => CodeClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_fall_in_the_documented_classes() {
        for code in ["internal_error", "internal", "server_error", "temporarily_unavailable"] {
            assert_eq!(classify_code(code), CodeClass::Retryable, "{code}");
        }
        assert_eq!(classify_code("rate_limit_exceeded"), CodeClass::RateLimited);
        for code in [
            "access_token_invalid",
            "scope_not_authorized",
            "scope_permission_missed",
            "invalid_grant",
        ] {
            assert_eq!(classify_code(code), CodeClass::Reauthorize, "{code}");
        }
        for code in [
            "invalid_param",
            "invalid_params",
            "spam_risk_too_many_posts",
            "spam_risk_user_banned_from_posting",
            "spam_risk_too_many_pending_share",
            "reached_active_user_cap",
            "unaudited_client_can_only_post_to_private_accounts",
            "url_ownership_unverified",
            "privacy_level_option_mismatch",
            "app_version_check_failed",
            "invalid_publish_id",
            "token_not_authorized_for_specified_publish_id",
            "publish_not_cancellable",
            "invalid_file_upload",
            "invalid_client",
            "something_new",
        ] {
            assert_eq!(classify_code(code), CodeClass::Permanent, "{code}");
        }
    }

    #[test]
    fn content_range_parses_or_is_ignored() {
        let range = UploadedRange::parse("bytes 0-10485759/50000123").expect("valid");
        assert_eq!(
            range,
            UploadedRange {
                first: 0,
                last: 10_485_759,
                total: 50_000_123
            }
        );
        assert_eq!(range.uploaded_bytes(), 10_485_760);
        for bad in ["", "bytes", "bytes 5-1/10", "items 0-1/2", "bytes a-b/c", "bytes 0-1"] {
            assert_eq!(UploadedRange::parse(bad), None, "{bad}");
        }
    }
}
