//! What tests and the control API see of the sandbox: accounts, settings, faults, the request log, webhooks.

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Every scope the sandbox knows; an account grants all of them unless told otherwise.
pub const ALL_SCOPES: [&str; 5] = [
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.publish",
    "video.upload",
];

/// How a secret appears in the request log: enough to compare, never the secret (`fp:` + 12 hex of its SHA-256).
pub fn fingerprint(secret: &str) -> String {
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    format!("fp:{}", &digest[..12])
}

/// A sandbox TikTok user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountSpec {
    /// Empty: generated.
    pub open_id: String,
    pub display_name: String,
    pub username: String,
    pub avatar_url: String,
    /// Private accounts offer FOLLOWER_OF_CREATOR instead of PUBLIC_TO_EVERYONE, and TikTok disables duet and
    /// stitch for them.
    pub private: bool,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: u32,
    /// When set, creator_info answers HTTP 200 with this code and inits refuse with 403: the creator cannot post now
    /// (`spam_risk_user_banned_from_posting`, `reached_active_user_cap`, ...).
    pub posting_blocked: Option<String>,
    /// The scopes this user ticks on the consent page; `None` grants every requested scope.
    pub grantable_scopes: Option<Vec<String>>,
    /// Overrides the sandbox's daily post cap for this creator.
    pub daily_post_cap: Option<u32>,
}

impl Default for AccountSpec {
    fn default() -> Self {
        Self {
            open_id: String::new(),
            display_name: String::new(),
            username: String::new(),
            avatar_url: "https://sandbox.invalid/avatar.jpg".into(),
            private: false,
            comment_disabled: false,
            duet_disabled: false,
            stitch_disabled: false,
            max_video_post_duration_sec: 600,
            posting_blocked: None,
            grantable_scopes: None,
            daily_post_cap: None,
        }
    }
}

impl AccountSpec {
    pub fn public() -> Self {
        Self::default()
    }

    pub fn private() -> Self {
        Self {
            private: true,
            ..Self::default()
        }
    }

    /// TikTok's options for this account (reference §2).
    pub fn privacy_level_options(&self) -> [&'static str; 3] {
        if self.private {
            ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        } else {
            ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        }
    }
}

/// Tokens issued directly (bypassing OAuth), for tests that need many connected accounts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTokens {
    pub open_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub scope: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
}

impl fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("open_id", &self.open_id)
            .field("access_token", &fingerprint(&self.access_token))
            .field("refresh_token", &fingerprint(&self.refresh_token))
            .field("scope", &self.scope)
            .finish()
    }
}

/// Per-token limits in a 1-minute sliding window (reference §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub init_per_minute: u32,
    pub creator_info_per_minute: u32,
    pub status_per_minute: u32,
    pub user_info_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            init_per_minute: 6,
            creator_info_per_minute: 20,
            status_per_minute: 30,
            user_info_per_minute: 600,
        }
    }
}

impl RateLimits {
    /// Limits so high that nothing is ever limited.
    pub fn unlimited() -> Self {
        Self {
            init_per_minute: u32::MAX,
            creator_info_per_minute: u32::MAX,
            status_per_minute: u32::MAX,
            user_info_per_minute: u32::MAX,
        }
    }
}

/// The sandbox's behaviour, changeable while it runs (control API `PUT /_sandbox/settings`, or
/// [`crate::Sandbox::update_settings`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub client_key: String,
    pub client_secret: String,
    /// Registered redirect URIs; empty accepts any (the authorize page never redirects elsewhere).
    pub redirect_uris: Vec<String>,
    /// Unaudited apps may post only SELF_ONLY, from private accounts.
    pub app_audited: bool,
    /// Approve authorize requests at once (redirect back); otherwise show a page to choose.
    pub auto_approve: bool,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// From the last chunk (or the end of a pull) to PUBLISH_COMPLETE / FAILED.
    pub processing_delay_ms: u64,
    /// From PUBLISH_COMPLETE to the public post id for public posts.
    pub moderation_delay_ms: u64,
    pub upload_url_ttl_secs: i64,
    /// PULL_FROM_URL sources must start with one of these (a verified domain or URL prefix at TikTok).
    pub verified_url_prefixes: Vec<String>,
    pub webhook_url: Option<String>,
    pub rate_limits: RateLimits,
    /// Direct posts per creator in 24 h ("typically around 15").
    pub daily_post_cap: u32,
    /// Inbox shares per creator in 24 h.
    pub pending_inbox_cap: u32,
    /// Creators that may post through this app in 24 h (`reached_active_user_cap`); `None` for no cap.
    pub active_user_cap: Option<u32>,
    /// Refuse inits that omit `brand_content_toggle`/`brand_organic_toggle` (TikTok marks them required).
    pub require_brand_toggles: bool,
    pub pull_timeout_ms: u64,
}

/// The client secret is the product's `TIKTOK_CLIENT_SECRET` when the two run together: never printed.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        shown["client_secret"] = Value::String(fingerprint(&self.client_secret));
        write!(f, "Settings({shown})")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            client_key: "sandbox-client-key".into(),
            client_secret: "sandbox-client-secret".into(),
            redirect_uris: Vec::new(),
            app_audited: true,
            auto_approve: true,
            // The November 2026 docs: 2 h access, 180 days refresh, rotation.
            access_token_ttl_secs: 2 * 3600,
            refresh_token_ttl_secs: 180 * 86_400,
            processing_delay_ms: 300,
            moderation_delay_ms: 0,
            upload_url_ttl_secs: 3600,
            verified_url_prefixes: Vec::new(),
            webhook_url: None,
            rate_limits: RateLimits::default(),
            daily_post_cap: 15,
            pending_inbox_cap: 5,
            active_user_cap: None,
            require_brand_toggles: true,
            pull_timeout_ms: 30_000,
        }
    }
}

/// The TikTok endpoint a request addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Authorize,
    Token,
    Revoke,
    UserInfo,
    CreatorInfo,
    VideoInit,
    InboxVideoInit,
    ContentInit,
    Upload,
    StatusFetch,
    Cancel,
    Other,
}

impl Endpoint {
    pub(crate) fn from_request(method: &axum::http::Method, path: &str) -> Option<Self> {
        use axum::http::Method;
        let endpoint = match (method, path.trim_end_matches('/')) {
            (_, p) if p.starts_with("/_sandbox") => return None,
            (&Method::GET, "/v2/auth/authorize") => Self::Authorize,
            (&Method::POST, "/v2/oauth/token") => Self::Token,
            (&Method::POST, "/v2/oauth/revoke") => Self::Revoke,
            (&Method::GET, "/v2/user/info") => Self::UserInfo,
            (&Method::POST, "/v2/post/publish/creator_info/query") => Self::CreatorInfo,
            (&Method::POST, "/v2/post/publish/video/init") => Self::VideoInit,
            (&Method::POST, "/v2/post/publish/inbox/video/init") => Self::InboxVideoInit,
            (&Method::POST, "/v2/post/publish/content/init") => Self::ContentInit,
            (&Method::PUT, "/video") => Self::Upload,
            (&Method::POST, "/v2/post/publish/status/fetch") => Self::StatusFetch,
            (&Method::POST, "/v2/post/publish/cancel") => Self::Cancel,
            _ => Self::Other,
        };
        Some(endpoint)
    }

    /// Token and revoke answer in the OAuth error shape, the rest in the v2 envelope.
    pub(crate) fn uses_oauth_errors(self) -> bool {
        matches!(self, Self::Token | Self::Revoke)
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultAction {
    /// Answer at once with this status and, when `code` is set, TikTok's error body (v2 envelope, or the OAuth shape
    /// on token/revoke); `status: 200` with a code is TikTok's "error with HTTP 200". Nothing is processed.
    Respond {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// Wait, then handle normally (a client timeout shorter than this sees no answer, and nothing happened).
    Delay { ms: u64 },
    /// Handle normally, then wait before answering: the change happened even if the client gave up.
    DelayAfter { ms: u64 },
    /// Close the connection without answering; nothing is processed.
    Drop,
    /// Handle normally (the change happens), then close the connection without answering.
    DropAfter,
}

/// Which requests a fault applies to, and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// `None`: every endpoint.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Only requests of this user (from the bearer token, or the upload URL's publish).
    #[serde(default)]
    pub open_id: Option<String>,
    /// Let this many matching requests through first.
    #[serde(default)]
    pub skip: u32,
    /// Apply to this many matching requests, then retire; `None`: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    pub action: FaultAction,
}

impl FaultSpec {
    pub fn new(endpoint: Endpoint, action: FaultAction) -> Self {
        Self {
            endpoint: Some(endpoint),
            open_id: None,
            skip: 0,
            times: Some(1),
            action,
        }
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }

    pub fn for_open_id(mut self, open_id: impl Into<String>) -> Self {
        self.open_id = Some(open_id.into());
        self
    }

    /// A 5xx with TikTok's `internal_error` body.
    pub fn server_error(endpoint: Endpoint) -> Self {
        Self::new(
            endpoint,
            FaultAction::Respond {
                status: 500,
                code: Some("internal_error".into()),
                message: None,
            },
        )
    }

    /// TikTok's error with HTTP 200.
    pub fn error_with_200(endpoint: Endpoint, code: &str) -> Self {
        Self::new(
            endpoint,
            FaultAction::Respond {
                status: 200,
                code: Some(code.into()),
                message: None,
            },
        )
    }
}

/// One request as the sandbox received it. Secrets appear only as [`fingerprint`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub endpoint: Endpoint,
    pub method: String,
    pub path: String,
    /// The query with `upload_token`, `code` and `state` fingerprinted.
    pub query: BTreeMap<String, String>,
    /// From the bearer token (or the upload URL), when it names a user.
    pub open_id: Option<String>,
    pub token_fingerprint: Option<String>,
    pub publish_id: Option<String>,
    /// `content-type`, `content-length`, `content-range`.
    pub headers: BTreeMap<String, String>,
    /// The JSON or form body as JSON, secrets fingerprinted; `None` for uploads (bytes are not kept).
    pub body: Option<Value>,
    /// `None` when the connection was dropped without an answer.
    pub response_status: Option<u16>,
    /// The injected fault, if any (`"respond 500"`, `"drop"`, ...).
    pub fault: Option<String>,
}

impl LoggedRequest {
    /// A body field as text, e.g. `grant_type`.
    pub fn body_str(&self, field: &str) -> Option<&str> {
        self.body.as_ref()?.get(field)?.as_str()
    }
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub event: String,
    pub user_openid: String,
    pub body: String,
    pub signature: String,
    pub attempt: u32,
    /// The receiver's status, or `None` when it could not be reached.
    pub status: Option<u16>,
}

/// A publish as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishSnapshot {
    pub publish_id: String,
    pub open_id: String,
    /// `direct_video`, `inbox_video`, `photo_direct`, `photo_inbox`.
    pub kind: String,
    /// `FILE_UPLOAD` or `PULL_FROM_URL`.
    pub source: String,
    pub status: String,
    pub fail_reason: Option<String>,
    pub privacy_level: Option<String>,
    /// The request's `post_info` as sent.
    pub post_info: Value,
    pub received_bytes: u64,
    /// PULL_FROM_URL: the URLs TikTok was asked to pull.
    pub media_urls: Vec<String>,
    pub public_post_ids: Vec<String>,
    /// Hex SHA-256 of the media, once known.
    pub sha256: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Make the next processing outcomes fail with a given reason (e.g. `duration_check_failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingFailure {
    #[serde(default)]
    pub open_id: Option<String>,
    pub fail_reason: String,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}
