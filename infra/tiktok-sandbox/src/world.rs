//! The sandbox's state and TikTok's rules over it. Everything here is synchronous and runs under one lock for a
//! few microseconds; network work (reading upload bodies, pulling URLs, sending webhooks) happens outside it.

use std::collections::{HashMap, HashSet, VecDeque};

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::types::{AccountSpec, IssuedTokens, ProcessingFailure, PublishSnapshot, Settings, ALL_SCOPES};

const MIB: u64 = 1024 * 1024;
/// The strict reading of each chunk bound (reference §4.1 leaves MB vs MiB open), so a plan passes here only if
/// it passes under both.
const MIN_CHUNK: u64 = 5 * MIB;
const MAX_CHUNK: u64 = 64_000_000;
const MAX_LAST_CHUNK: u64 = 128_000_000;
const MAX_SINGLE_CHUNK_FILE: u64 = 64_000_000;
const MAX_VIDEO_SIZE: u64 = 4 * 1024 * MIB;
const MAX_CHUNKS: u64 = 1000;
const VIDEO_TITLE_MAX: usize = 2200;
const PHOTO_TITLE_MAX: usize = 90;
const PHOTO_DESCRIPTION_MAX: usize = 4000;
const PHOTO_MAX_IMAGES: usize = 35;
const UPLOAD_CONTENT_TYPES: [&str; 3] = ["video/mp4", "video/quicktime", "video/webm"];
const DAY: Duration = Duration::hours(24);
const RATE_WINDOW: Duration = Duration::minutes(1);
/// Authorization codes are short-lived at TikTok too.
const CODE_TTL: Duration = Duration::minutes(10);
/// Sandbox post ids are 19 digits, beyond 2^53, like TikTok's: clients must not read them as floats.
const FIRST_POST_ID: u64 = 7_300_000_000_000_000_000;

/// A refusal in TikTok's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_param", message)
    }

    fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    fn token_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found.",
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RateGroup {
    Init,
    CreatorInfo,
    Status,
    UserInfo,
}

#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub token: String,
}

impl Caller {
    fn require_any_scope(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.scopes.iter().any(|granted| granted == s)) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "scope_not_authorized",
                format!("The user did not authorize the scope required: {}", scopes.join(" or ")),
            ))
        }
    }
}

struct AccessRecord {
    open_id: String,
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
}

struct RefreshRecord {
    open_id: String,
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
}

struct CodeRecord {
    open_id: String,
    scopes: Vec<String>,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

struct AccountState {
    spec: AccountSpec,
    /// Direct-post inits in the last 24 h, oldest first.
    direct_posts: VecDeque<DateTime<Utc>>,
    inbox_shares: VecDeque<DateTime<Utc>>,
    /// SHA-256 of every media posted directly: the same bytes again are flagged as spam.
    posted_media: HashSet<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishKind {
    DirectVideo,
    InboxVideo,
    PhotoDirect,
    PhotoInbox,
}

impl PublishKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::DirectVideo => "direct_video",
            Self::InboxVideo => "inbox_video",
            Self::PhotoDirect => "photo_direct",
            Self::PhotoInbox => "photo_inbox",
        }
    }

    fn is_inbox(self) -> bool {
        matches!(self, Self::InboxVideo | Self::PhotoInbox)
    }

    fn is_photo(self) -> bool {
        matches!(self, Self::PhotoDirect | Self::PhotoInbox)
    }

    fn publish_type(self) -> &'static str {
        if self.is_inbox() {
            "INBOX_SHARE"
        } else {
            "DIRECT_PUBLISH"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    ProcessingUpload,
    ProcessingDownload,
    SendToUserInbox,
    PublishComplete,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::ProcessingUpload => "PROCESSING_UPLOAD",
            Self::ProcessingDownload => "PROCESSING_DOWNLOAD",
            Self::SendToUserInbox => "SEND_TO_USER_INBOX",
            Self::PublishComplete => "PUBLISH_COMPLETE",
            Self::Failed => "FAILED",
        }
    }
}

struct Upload {
    upload_id: String,
    upload_token: String,
    expires_at: DateTime<Utc>,
    video_size: u64,
    chunk_size: u64,
    total_chunks: u64,
    received: u64,
    hasher: Sha256,
    head: Vec<u8>,
}

enum Source {
    Upload(Box<Upload>),
    Pull { urls: Vec<String>, downloaded: u64 },
}

struct Publish {
    id: String,
    open_id: String,
    kind: PublishKind,
    source: Source,
    status: Status,
    fail_reason: Option<String>,
    privacy_level: Option<String>,
    post_info: Value,
    /// The verdict, decided once the bytes are known; applied at `ready_at`.
    verdict: Option<Result<(), String>>,
    ready_at: Option<DateTime<Utc>>,
    public_at: Option<DateTime<Utc>>,
    public_post_ids: Vec<u64>,
    sha256: Option<[u8; 32]>,
    created_at: DateTime<Utc>,
}

/// A webhook the sandbox owes its receiver.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutgoingWebhook {
    pub event: &'static str,
    pub open_id: String,
    pub content: Value,
}

/// Where a PULL_FROM_URL publish gets its media.
#[derive(Debug, Clone)]
pub(crate) struct PullJob {
    pub publish_id: String,
    pub urls: Vec<String>,
}

/// What was learned about some media: its digest and first bytes, or why it could not be fetched.
pub(crate) struct MediaFacts {
    pub sha256: [u8; 32],
    /// The first bytes of each file (one for video, one per photo).
    pub heads: Vec<Vec<u8>>,
    pub bytes: u64,
}

/// An upload chunk's headers, checked before its body is read.
pub(crate) struct ChunkHeaders<'a> {
    pub upload_id: &'a str,
    pub upload_token: &'a str,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
    pub content_range: Option<&'a str>,
}

/// Permission to read one chunk's body: what it must contain and the hash state to continue from.
pub(crate) struct ChunkTicket {
    pub publish_id: String,
    pub start: u64,
    pub length: u64,
    pub hasher: Sha256,
}

/// A chunk answer: status and the `Content-Range` of TikTok's progress.
pub(crate) struct ChunkAnswer {
    pub status: StatusCode,
    pub content_range: Option<String>,
}

pub(crate) struct World {
    pub settings: Settings,
    accounts: HashMap<String, AccountState>,
    account_order: Vec<String>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
    codes: HashMap<String, CodeRecord>,
    publishes: HashMap<String, Publish>,
    uploads: HashMap<String, String>,
    /// Publishes with a transition still ahead; the settle pass looks only at these.
    pending: HashSet<String>,
    rate: HashMap<(String, RateGroup), VecDeque<DateTime<Utc>>>,
    /// When each creator last posted through this app (for the active-creator cap).
    active_creators: HashMap<String, DateTime<Utc>>,
    pub authorizer: Option<String>,
    pub deny_next_authorize: bool,
    processing_failures: Vec<ProcessingFailure>,
    next_id: u64,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), buffer.as_mut_slice());
    hex::encode(buffer)
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn prune(times: &mut VecDeque<DateTime<Utc>>, since: DateTime<Utc>) {
    while times.front().is_some_and(|t| *t <= since) {
        times.pop_front();
    }
}

fn looks_like_video(head: &[u8]) -> bool {
    // ISO-BMFF (MP4, MOV): a box whose type is `ftyp` first; WebM: the EBML magic.
    head.get(4..8) == Some(b"ftyp".as_slice()) || head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
}

fn looks_like_photo(head: &[u8]) -> bool {
    head.starts_with(&[0xFF, 0xD8, 0xFF]) || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP".as_slice()))
}

/// TikTok's chunk rules, strictly read (reference §4.1).
fn check_chunk_plan(size: u64, chunk: u64, count: u64) -> Result<(), String> {
    if size == 0 || chunk == 0 || count == 0 {
        return Err("video_size, chunk_size and total_chunk_count must be positive".into());
    }
    if size > MAX_VIDEO_SIZE {
        return Err("video_size is over 4 GB".into());
    }
    if count > MAX_CHUNKS {
        return Err("total_chunk_count is over 1000".into());
    }
    if count != size / chunk {
        return Err(format!(
            "total_chunk_count must be floor(video_size / chunk_size) = {}",
            size / chunk
        ));
    }
    if size < MIN_CHUNK {
        return if chunk == size {
            Ok(())
        } else {
            Err("a file under 5 MB must be one chunk of its size".into())
        };
    }
    if count == 1 {
        return if size <= MAX_SINGLE_CHUNK_FILE {
            Ok(())
        } else {
            Err("a file over 64 MB must be chunked".into())
        };
    }
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
        return Err("chunk_size must be between 5 MB and 64 MB".into());
    }
    if size - (count - 1) * chunk > MAX_LAST_CHUNK {
        return Err("the last chunk would be over 128 MB".into());
    }
    Ok(())
}

fn bool_field(object: &Value, field: &str) -> Result<Option<bool>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(ApiError::invalid_param(format!("{field} must be a boolean"))),
    }
}

fn str_field<'a>(object: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(ApiError::invalid_param(format!("{field} must be a string"))),
    }
}

fn u64_field(object: &Value, field: &str) -> Result<Option<u64>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_param(format!("{field} must be a non-negative integer"))),
    }
}

impl World {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            accounts: HashMap::new(),
            account_order: Vec::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            publishes: HashMap::new(),
            uploads: HashMap::new(),
            pending: HashSet::new(),
            rate: HashMap::new(),
            active_creators: HashMap::new(),
            authorizer: None,
            deny_next_authorize: false,
            processing_failures: Vec::new(),
            next_id: 1,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    // ---------------------------------------------------------------- accounts and tokens

    pub fn create_account(&mut self, mut spec: AccountSpec) -> String {
        if spec.open_id.is_empty() {
            spec.open_id = format!("sbx-{}", random_hex(12));
        }
        let n = self.account_order.len() + 1;
        if spec.display_name.is_empty() {
            spec.display_name = format!("Sandbox Creator {n}");
        }
        if spec.username.is_empty() {
            spec.username = format!("sandbox_creator_{n}");
        }
        // TikTok disables duet and stitch for private accounts.
        if spec.private {
            spec.duet_disabled = true;
            spec.stitch_disabled = true;
        }
        let open_id = spec.open_id.clone();
        if !self.accounts.contains_key(&open_id) {
            self.account_order.push(open_id.clone());
        }
        self.accounts.insert(
            open_id.clone(),
            AccountState {
                spec,
                direct_posts: VecDeque::new(),
                inbox_shares: VecDeque::new(),
                posted_media: HashSet::new(),
            },
        );
        open_id
    }

    pub fn account(&self, open_id: &str) -> Option<AccountSpec> {
        self.accounts.get(open_id).map(|a| a.spec.clone())
    }

    pub fn accounts(&self) -> Vec<AccountSpec> {
        self.account_order.iter().filter_map(|id| self.account(id)).collect()
    }

    pub fn update_account(&mut self, open_id: &str, update: impl FnOnce(&mut AccountSpec)) -> bool {
        match self.accounts.get_mut(open_id) {
            Some(account) => {
                update(&mut account.spec);
                account.spec.open_id = open_id.to_owned();
                true
            }
            None => false,
        }
    }

    /// Issues an access and a refresh token, as a completed OAuth flow would.
    pub fn issue_tokens(&mut self, open_id: &str, scopes: Vec<String>, now: DateTime<Utc>) -> IssuedTokens {
        let access_token = format!("act.{}", random_hex(24));
        let refresh_token = format!("rft.{}", random_hex(24));
        let expires_in = self.settings.access_token_ttl_secs;
        let refresh_expires_in = self.settings.refresh_token_ttl_secs;
        self.access.insert(
            access_token.clone(),
            AccessRecord {
                open_id: open_id.to_owned(),
                scopes: scopes.clone(),
                expires_at: now + Duration::seconds(expires_in),
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshRecord {
                open_id: open_id.to_owned(),
                scopes: scopes.clone(),
                expires_at: now + Duration::seconds(refresh_expires_in),
            },
        );
        IssuedTokens {
            open_id: open_id.to_owned(),
            access_token,
            refresh_token,
            scope: scopes.join(","),
            expires_in,
            refresh_expires_in,
        }
    }

    /// The user an access token belongs to (whether or not it is still valid), for the request log.
    pub fn open_id_of_access_token(&self, token: &str) -> Option<String> {
        self.access.get(token).map(|r| r.open_id.clone())
    }

    pub fn open_id_of_refresh_token(&self, token: &str) -> Option<String> {
        self.refresh.get(token).map(|r| r.open_id.clone())
    }

    pub fn open_id_of_code(&self, code: &str) -> Option<String> {
        self.codes.get(code).map(|r| r.open_id.clone())
    }

    pub fn upload_owner(&self, upload_id: &str) -> Option<(String, String)> {
        let publish_id = self.uploads.get(upload_id)?;
        let publish = self.publishes.get(publish_id)?;
        Some((publish.open_id.clone(), publish_id.clone()))
    }

    pub fn authenticate(&self, authorization: Option<&str>, now: DateTime<Utc>) -> Result<Caller, ApiError> {
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::token_invalid)?;
        let record = self.access.get(token).ok_or_else(ApiError::token_invalid)?;
        if record.expires_at <= now {
            return Err(ApiError::token_invalid());
        }
        Ok(Caller {
            open_id: record.open_id.clone(),
            scopes: record.scopes.clone(),
            token: token.to_owned(),
        })
    }

    fn check_rate(&mut self, caller: &Caller, group: RateGroup, now: DateTime<Utc>) -> Result<(), ApiError> {
        let limits = self.settings.rate_limits;
        let limit = match group {
            RateGroup::Init => limits.init_per_minute,
            RateGroup::CreatorInfo => limits.creator_info_per_minute,
            RateGroup::Status => limits.status_per_minute,
            RateGroup::UserInfo => limits.user_info_per_minute,
        };
        let window = self.rate.entry((caller.token.clone(), group)).or_default();
        prune(window, now - RATE_WINDOW);
        if window.len() as u64 >= u64::from(limit) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "The API rate limit was exceeded. Please try again later.",
            ));
        }
        window.push_back(now);
        Ok(())
    }

    /// Picks who approves an authorize request: the configured authorizer, else the first account, else a new one.
    pub fn authorizing_account(&mut self) -> String {
        if let Some(open_id) = self.authorizer.clone().filter(|id| self.accounts.contains_key(id)) {
            return open_id;
        }
        match self.account_order.first() {
            Some(open_id) => open_id.clone(),
            None => self.create_account(AccountSpec::default()),
        }
    }

    /// The scopes the account grants out of those requested, in the requested order.
    pub fn granted_scopes(&self, open_id: &str, requested: &[String]) -> Vec<String> {
        let grantable = self.accounts.get(open_id).and_then(|a| a.spec.grantable_scopes.clone());
        requested
            .iter()
            .filter(|scope| ALL_SCOPES.contains(&scope.as_str()))
            .filter(|scope| grantable.as_ref().is_none_or(|g| g.contains(scope)))
            .cloned()
            .collect()
    }

    pub fn issue_code(&mut self, open_id: &str, scopes: Vec<String>, redirect_uri: &str, now: DateTime<Utc>) -> String {
        let code = random_hex(24);
        self.codes.insert(
            code.clone(),
            CodeRecord {
                open_id: open_id.to_owned(),
                scopes,
                redirect_uri: redirect_uri.to_owned(),
                expires_at: now + CODE_TTL,
            },
        );
        code
    }

    fn check_client(&self, form: &HashMap<String, String>) -> Result<(), ApiError> {
        let key_ok = form.get("client_key") == Some(&self.settings.client_key);
        let secret_ok = form.get("client_secret") == Some(&self.settings.client_secret);
        if key_ok && secret_ok {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client key or secret is invalid.",
            ))
        }
    }

    /// `POST /v2/oauth/token/` for both grants. Refresh rotates: the presented refresh token stops working.
    pub fn token(&mut self, form: &HashMap<String, String>, now: DateTime<Utc>) -> Result<IssuedTokens, ApiError> {
        self.check_client(form)?;
        let invalid_grant = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_grant", message);
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = form.get("code").ok_or_else(|| invalid_grant("code is missing"))?;
                let record = self
                    .codes
                    .remove(code)
                    .ok_or_else(|| invalid_grant("Authorization code is invalid or used."))?;
                if record.expires_at <= now {
                    return Err(invalid_grant("Authorization code is expired."));
                }
                if form.get("redirect_uri") != Some(&record.redirect_uri) {
                    return Err(invalid_grant("redirect_uri does not match the authorize request."));
                }
                Ok(self.issue_tokens(&record.open_id, record.scopes, now))
            }
            Some("refresh_token") => {
                let token = form
                    .get("refresh_token")
                    .ok_or_else(|| invalid_grant("refresh_token is missing"))?;
                let record = self
                    .refresh
                    .remove(token)
                    .ok_or_else(|| invalid_grant("Refresh token is invalid or expired."))?;
                if record.expires_at <= now {
                    return Err(invalid_grant("Refresh token is invalid or expired."));
                }
                Ok(self.issue_tokens(&record.open_id, record.scopes, now))
            }
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is not supported.",
            )),
        }
    }

    /// `POST /v2/oauth/revoke/`: every token of that user for this app stops working.
    pub fn revoke(&mut self, form: &HashMap<String, String>) -> Result<(), ApiError> {
        self.check_client(form)?;
        let token = form
            .get("token")
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", "token is missing"))?;
        if let Some(open_id) = self.open_id_of_access_token(token) {
            self.forget_tokens(&open_id);
        }
        Ok(())
    }

    fn forget_tokens(&mut self, open_id: &str) {
        self.access.retain(|_, r| r.open_id != open_id);
        self.refresh.retain(|_, r| r.open_id != open_id);
    }

    /// The user removes the app in TikTok (or TikTok does): tokens die, running publishes fail with `auth_removed`.
    pub fn remove_authorization(&mut self, open_id: &str, reason: i64) -> Vec<OutgoingWebhook> {
        self.forget_tokens(open_id);
        let mut hooks = Vec::new();
        let running: Vec<String> = self
            .pending
            .iter()
            .filter(|id| self.publishes.get(*id).is_some_and(|p| p.open_id == open_id))
            .cloned()
            .collect();
        for publish_id in running {
            if let Some(publish) = self.publishes.get_mut(&publish_id) {
                if !matches!(
                    publish.status,
                    Status::PublishComplete | Status::Failed | Status::SendToUserInbox
                ) {
                    hooks.push(fail(publish, "auth_removed"));
                    self.pending.remove(&publish_id);
                }
            }
        }
        hooks.push(OutgoingWebhook {
            event: "authorization.removed",
            open_id: open_id.to_owned(),
            content: json!({ "reason": reason }),
        });
        hooks
    }

    // ---------------------------------------------------------------- read endpoints

    pub fn user_info(&mut self, caller: &Caller, fields: Option<&str>, now: DateTime<Utc>) -> Result<Value, ApiError> {
        self.check_rate(caller, RateGroup::UserInfo, now)?;
        caller.require_any_scope(&["user.info.basic"])?;
        let fields = fields
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", "fields is required"))?;
        let account = self
            .accounts
            .get(&caller.open_id)
            .map(|a| a.spec.clone())
            .ok_or_else(ApiError::token_invalid)?;
        let mut user = Map::new();
        for field in fields.split(',').map(str::trim) {
            let (scope, value) = match field {
                "open_id" => ("user.info.basic", json!(account.open_id)),
                "union_id" => ("user.info.basic", json!(format!("union-{}", account.open_id))),
                "avatar_url" | "avatar_url_100" | "avatar_large_url" => ("user.info.basic", json!(account.avatar_url)),
                "display_name" => ("user.info.basic", json!(account.display_name)),
                "username" => ("user.info.profile", json!(account.username)),
                "bio_description" => ("user.info.profile", json!("")),
                "profile_deep_link" => (
                    "user.info.profile",
                    json!(format!("https://sandbox.invalid/@{}", account.username)),
                ),
                "is_verified" => ("user.info.profile", json!(false)),
                "follower_count" | "following_count" | "likes_count" | "video_count" => ("user.info.stats", json!(0)),
                other => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_params",
                        format!("unknown field {other}"),
                    ))
                }
            };
            caller.require_any_scope(&[scope])?;
            user.insert(field.to_owned(), value);
        }
        Ok(json!({ "user": Value::Object(user) }))
    }

    fn direct_posts_today(&mut self, open_id: &str, now: DateTime<Utc>) -> (usize, u32) {
        let default_cap = self.settings.daily_post_cap;
        match self.accounts.get_mut(open_id) {
            Some(account) => {
                prune(&mut account.direct_posts, now - DAY);
                (
                    account.direct_posts.len(),
                    account.spec.daily_post_cap.unwrap_or(default_cap),
                )
            }
            None => (0, default_cap),
        }
    }

    /// Why this creator cannot post now, if so: a block, the daily cap, or the app's active-creator cap.
    fn posting_refusal(&mut self, open_id: &str, now: DateTime<Utc>) -> Option<ApiError> {
        if let Some(code) = self.accounts.get(open_id).and_then(|a| a.spec.posting_blocked.clone()) {
            return Some(ApiError::forbidden(&code, "The creator cannot post at this moment."));
        }
        let (posts, cap) = self.direct_posts_today(open_id, now);
        if posts >= cap as usize {
            return Some(ApiError::forbidden(
                "spam_risk_too_many_posts",
                "The daily post cap for this creator was reached.",
            ));
        }
        if let Some(cap) = self.settings.active_user_cap {
            self.active_creators.retain(|_, last| *last > now - DAY);
            if !self.active_creators.contains_key(open_id) && self.active_creators.len() >= cap as usize {
                return Some(ApiError::forbidden(
                    "reached_active_user_cap",
                    "The daily quota of active publishing users for this client was reached.",
                ));
            }
        }
        None
    }

    /// creator_info: a creator who cannot post now gets TikTok's code **with HTTP 200**.
    pub fn creator_info(&mut self, caller: &Caller, now: DateTime<Utc>) -> Result<Value, ApiError> {
        caller.require_any_scope(&["video.publish"])?;
        self.check_rate(caller, RateGroup::CreatorInfo, now)?;
        if let Some(mut refusal) = self.posting_refusal(&caller.open_id, now) {
            refusal.status = StatusCode::OK;
            return Err(refusal);
        }
        let account = self
            .accounts
            .get(&caller.open_id)
            .map(|a| a.spec.clone())
            .ok_or_else(ApiError::token_invalid)?;
        Ok(json!({
            "creator_avatar_url": account.avatar_url,
            "creator_username": account.username,
            "creator_nickname": account.display_name,
            "privacy_level_options": account.privacy_level_options(),
            "comment_disabled": account.comment_disabled,
            "duet_disabled": account.duet_disabled,
            "stitch_disabled": account.stitch_disabled,
            "max_video_post_duration_sec": account.max_video_post_duration_sec,
        }))
    }

    // ---------------------------------------------------------------- inits

    /// Direct Post rules on `post_info`: privacy among the options, the unaudited rule, branded content not private,
    /// title length, explicit brand toggles.
    fn check_direct_post_info(&self, open_id: &str, post_info: &Value, title_max: usize) -> Result<String, ApiError> {
        let account = self
            .accounts
            .get(open_id)
            .map(|a| a.spec.clone())
            .ok_or_else(ApiError::token_invalid)?;
        let privacy = str_field(post_info, "privacy_level")?;
        let privacy = privacy
            .filter(|p| account.privacy_level_options().contains(p))
            .ok_or_else(|| {
                ApiError::forbidden(
                    "privacy_level_option_mismatch",
                    "privacy_level is missing or not among the creator's privacy_level_options.",
                )
            })?;
        if !self.settings.app_audited && (privacy != "SELF_ONLY" || !account.private) {
            return Err(ApiError::forbidden(
                "unaudited_client_can_only_post_to_private_accounts",
                "Unaudited clients can only post with SELF_ONLY visibility from private accounts.",
            ));
        }
        if let Some(title) = str_field(post_info, "title")? {
            if utf16_len(title) > title_max {
                return Err(ApiError::invalid_param(format!(
                    "title is over {title_max} UTF-16 characters"
                )));
            }
        }
        let brand_content = bool_field(post_info, "brand_content_toggle")?;
        let brand_organic = bool_field(post_info, "brand_organic_toggle")?;
        if self.settings.require_brand_toggles && (brand_content.is_none() || brand_organic.is_none()) {
            return Err(ApiError::invalid_param(
                "brand_content_toggle and brand_organic_toggle are required",
            ));
        }
        if brand_content == Some(true) && privacy == "SELF_ONLY" {
            return Err(ApiError::invalid_param(
                "Branded content visibility cannot be set to private (SELF_ONLY).",
            ));
        }
        for field in [
            "disable_comment",
            "disable_duet",
            "disable_stitch",
            "is_aigc",
            "auto_add_music",
        ] {
            bool_field(post_info, field)?;
        }
        Ok(privacy.to_owned())
    }

    fn check_verified(&self, url: &str) -> Result<(), ApiError> {
        let parsed = url::Url::parse(url).map_err(|_| ApiError::invalid_param("the media URL is not a valid URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::invalid_param("the media URL must be http(s)"));
        }
        if self
            .settings
            .verified_url_prefixes
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "url_ownership_unverified",
                "The URL's domain or prefix is not verified for this app.",
            ))
        }
    }

    /// `video/init` (`inbox == false`) and `inbox/video/init`.
    pub fn init_video(
        &mut self,
        caller: &Caller,
        body: &Value,
        inbox: bool,
        upload_base: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, Option<PullJob>), ApiError> {
        caller.require_any_scope(&[if inbox { "video.upload" } else { "video.publish" }])?;
        self.check_rate(caller, RateGroup::Init, now)?;
        let kind = if inbox {
            PublishKind::InboxVideo
        } else {
            PublishKind::DirectVideo
        };
        self.check_posting_allowed(&caller.open_id, kind, now)?;
        let source_info = body
            .get("source_info")
            .filter(|s| s.is_object())
            .ok_or_else(|| ApiError::invalid_param("source_info is required"))?;
        let (privacy, post_info) = if inbox {
            (None, body.get("post_info").cloned().unwrap_or(Value::Null))
        } else {
            let post_info = body
                .get("post_info")
                .filter(|p| p.is_object())
                .ok_or_else(|| ApiError::invalid_param("post_info is required"))?;
            (
                Some(self.check_direct_post_info(&caller.open_id, post_info, VIDEO_TITLE_MAX)?),
                post_info.clone(),
            )
        };
        let seq = self.next_id();
        let (publish_id, source, data, job) = match str_field(source_info, "source")? {
            Some("FILE_UPLOAD") => {
                let size = u64_field(source_info, "video_size")?.unwrap_or(0);
                let chunk = u64_field(source_info, "chunk_size")?.unwrap_or(0);
                let count = u64_field(source_info, "total_chunk_count")?.unwrap_or(0);
                check_chunk_plan(size, chunk, count).map_err(ApiError::invalid_param)?;
                let publish_id = if inbox {
                    format!("v_inbox_file~v2.{seq}")
                } else {
                    format!("v_pub_file~v2-1.{}", FIRST_POST_ID + seq)
                };
                let upload = Upload {
                    upload_id: format!("{seq}{}", random_hex(4)),
                    upload_token: random_hex(16),
                    expires_at: now + Duration::seconds(self.settings.upload_url_ttl_secs),
                    video_size: size,
                    chunk_size: chunk,
                    total_chunks: count,
                    received: 0,
                    hasher: Sha256::new(),
                    head: Vec::new(),
                };
                let upload_url = format!(
                    "{upload_base}/video/?upload_id={}&upload_token={}",
                    upload.upload_id, upload.upload_token
                );
                self.uploads.insert(upload.upload_id.clone(), publish_id.clone());
                let data = json!({ "publish_id": publish_id, "upload_url": upload_url });
                (publish_id, Source::Upload(Box::new(upload)), data, None)
            }
            Some("PULL_FROM_URL") => {
                let url = str_field(source_info, "video_url")?
                    .ok_or_else(|| ApiError::invalid_param("video_url is required"))?;
                self.check_verified(url)?;
                let publish_id = if inbox {
                    format!("v_inbox_url~v2.{seq}")
                } else {
                    format!("v_pub_url~v2.{seq}")
                };
                let job = PullJob {
                    publish_id: publish_id.clone(),
                    urls: vec![url.to_owned()],
                };
                let data = json!({ "publish_id": publish_id });
                (
                    publish_id,
                    Source::Pull {
                        urls: vec![url.to_owned()],
                        downloaded: 0,
                    },
                    data,
                    Some(job),
                )
            }
            _ => return Err(ApiError::invalid_param("source must be FILE_UPLOAD or PULL_FROM_URL")),
        };
        self.record_publish(caller, publish_id, kind, source, privacy, post_info, now);
        Ok((data, job))
    }

    /// `content/init` for photos: PULL_FROM_URL only, 1–35 images, cover index inside.
    pub fn init_photo(
        &mut self,
        caller: &Caller,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, PullJob), ApiError> {
        let mode = str_field(body, "post_mode")?;
        let inbox = match mode {
            Some("DIRECT_POST") => false,
            Some("MEDIA_UPLOAD") => true,
            _ => return Err(ApiError::invalid_param("post_mode must be DIRECT_POST or MEDIA_UPLOAD")),
        };
        caller.require_any_scope(&[if inbox { "video.upload" } else { "video.publish" }])?;
        self.check_rate(caller, RateGroup::Init, now)?;
        let kind = if inbox {
            PublishKind::PhotoInbox
        } else {
            PublishKind::PhotoDirect
        };
        self.check_posting_allowed(&caller.open_id, kind, now)?;
        if str_field(body, "media_type")? != Some("PHOTO") {
            return Err(ApiError::invalid_param("media_type must be PHOTO"));
        }
        bool_field(body, "is_aigc")?;
        let post_info = body.get("post_info").cloned().unwrap_or_else(|| json!({}));
        let privacy = if inbox {
            None
        } else {
            Some(self.check_direct_post_info(&caller.open_id, &post_info, PHOTO_TITLE_MAX)?)
        };
        if let Some(title) = str_field(&post_info, "title")? {
            if utf16_len(title) > PHOTO_TITLE_MAX {
                return Err(ApiError::invalid_param("title is over 90 UTF-16 characters"));
            }
        }
        if let Some(description) = str_field(&post_info, "description")? {
            if utf16_len(description) > PHOTO_DESCRIPTION_MAX {
                return Err(ApiError::invalid_param("description is over 4000 UTF-16 characters"));
            }
        }
        let source_info = body
            .get("source_info")
            .ok_or_else(|| ApiError::invalid_param("source_info is required"))?;
        if str_field(source_info, "source")? != Some("PULL_FROM_URL") {
            return Err(ApiError::invalid_param("photos support only PULL_FROM_URL"));
        }
        let images: Vec<String> = source_info
            .get("photo_images")
            .and_then(Value::as_array)
            .map(|urls| urls.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if images.is_empty() || images.len() > PHOTO_MAX_IMAGES {
            return Err(ApiError::invalid_param("photo_images must hold 1 to 35 URLs"));
        }
        let cover = u64_field(source_info, "photo_cover_index")?
            .ok_or_else(|| ApiError::invalid_param("photo_cover_index is required"))?;
        if cover >= images.len() as u64 {
            return Err(ApiError::invalid_param("photo_cover_index is outside photo_images"));
        }
        for url in &images {
            self.check_verified(url)?;
        }
        let publish_id = format!("p_pub_url~v2.{}", self.next_id());
        let job = PullJob {
            publish_id: publish_id.clone(),
            urls: images.clone(),
        };
        let source = Source::Pull {
            urls: images,
            downloaded: 0,
        };
        self.record_publish(caller, publish_id.clone(), kind, source, privacy, post_info, now);
        Ok((json!({ "publish_id": publish_id }), job))
    }

    fn check_posting_allowed(&mut self, open_id: &str, kind: PublishKind, now: DateTime<Utc>) -> Result<(), ApiError> {
        if kind.is_inbox() {
            if let Some(code) = self.accounts.get(open_id).and_then(|a| a.spec.posting_blocked.clone()) {
                return Err(ApiError::forbidden(&code, "The creator cannot post at this moment."));
            }
            let cap = self.settings.pending_inbox_cap as usize;
            if let Some(account) = self.accounts.get_mut(open_id) {
                prune(&mut account.inbox_shares, now - DAY);
                if account.inbox_shares.len() >= cap {
                    return Err(ApiError::forbidden(
                        "spam_risk_too_many_pending_share",
                        "The creator has too many pending shares in the last 24 hours.",
                    ));
                }
            }
            return Ok(());
        }
        match self.posting_refusal(open_id, now) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_publish(
        &mut self,
        caller: &Caller,
        publish_id: String,
        kind: PublishKind,
        source: Source,
        privacy_level: Option<String>,
        post_info: Value,
        now: DateTime<Utc>,
    ) {
        if let Some(account) = self.accounts.get_mut(&caller.open_id) {
            if kind.is_inbox() {
                account.inbox_shares.push_back(now);
            } else {
                account.direct_posts.push_back(now);
            }
        }
        self.active_creators.insert(caller.open_id.clone(), now);
        let status = match source {
            Source::Upload(_) => Status::ProcessingUpload,
            Source::Pull { .. } => Status::ProcessingDownload,
        };
        self.pending.insert(publish_id.clone());
        self.publishes.insert(
            publish_id.clone(),
            Publish {
                id: publish_id,
                open_id: caller.open_id.clone(),
                kind,
                source,
                status,
                fail_reason: None,
                privacy_level,
                post_info,
                verdict: None,
                ready_at: None,
                public_at: None,
                public_post_ids: Vec::new(),
                sha256: None,
                created_at: now,
            },
        );
    }

    // ---------------------------------------------------------------- uploads

    /// Checks a chunk's headers against the upload's progress; on success the body may be read.
    pub fn begin_chunk(&self, headers: &ChunkHeaders<'_>, now: DateTime<Utc>) -> Result<ChunkTicket, ChunkAnswer> {
        let answer = |status: StatusCode| ChunkAnswer {
            status,
            content_range: None,
        };
        let publish_id = self
            .uploads
            .get(headers.upload_id)
            .ok_or_else(|| answer(StatusCode::NOT_FOUND))?;
        let publish = self
            .publishes
            .get(publish_id)
            .ok_or_else(|| answer(StatusCode::NOT_FOUND))?;
        let Source::Upload(upload) = &publish.source else {
            return Err(answer(StatusCode::NOT_FOUND));
        };
        if upload.upload_token != headers.upload_token {
            return Err(answer(StatusCode::NOT_FOUND));
        }
        if upload.expires_at <= now {
            return Err(answer(StatusCode::FORBIDDEN));
        }
        let progress = ChunkAnswer {
            status: StatusCode::RANGE_NOT_SATISFIABLE,
            content_range: progress_range(upload),
        };
        if upload.received >= upload.video_size || publish.status == Status::Failed {
            return Err(progress);
        }
        if !headers
            .content_type
            .is_some_and(|t| UPLOAD_CONTENT_TYPES.contains(&t.split(';').next().unwrap_or_default().trim()))
        {
            return Err(answer(StatusCode::BAD_REQUEST));
        }
        let (first, last, total) = headers
            .content_range
            .and_then(parse_content_range)
            .ok_or_else(|| answer(StatusCode::BAD_REQUEST))?;
        if total != upload.video_size || last >= total {
            return Err(answer(StatusCode::BAD_REQUEST));
        }
        let length = last - first + 1;
        if headers.content_length != Some(length) {
            return Err(answer(StatusCode::BAD_REQUEST));
        }
        if first != upload.received {
            return Err(progress);
        }
        let index = first / upload.chunk_size;
        let is_last = index + 1 == upload.total_chunks;
        let expected_last = if is_last {
            upload.video_size - 1
        } else {
            first + upload.chunk_size - 1
        };
        if first % upload.chunk_size != 0 || last != expected_last {
            return Err(answer(StatusCode::BAD_REQUEST));
        }
        Ok(ChunkTicket {
            publish_id: publish_id.clone(),
            start: first,
            length,
            hasher: upload.hasher.clone(),
        })
    }

    /// Records a chunk whose body was read and hashed; the last one starts processing.
    pub fn commit_chunk(&mut self, ticket: ChunkTicket, head: &[u8], now: DateTime<Utc>) -> ChunkAnswer {
        let Some(publish) = self.publishes.get_mut(&ticket.publish_id) else {
            return ChunkAnswer {
                status: StatusCode::NOT_FOUND,
                content_range: None,
            };
        };
        let Source::Upload(upload) = &mut publish.source else {
            return ChunkAnswer {
                status: StatusCode::NOT_FOUND,
                content_range: None,
            };
        };
        // Another PUT of the same chunk won the race.
        if upload.received != ticket.start {
            return ChunkAnswer {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                content_range: progress_range(upload),
            };
        }
        if ticket.start == 0 {
            upload.head = head.to_vec();
        }
        upload.received += ticket.length;
        upload.hasher = ticket.hasher;
        let content_range = progress_range(upload);
        if upload.received < upload.video_size {
            return ChunkAnswer {
                status: StatusCode::PARTIAL_CONTENT,
                content_range,
            };
        }
        let facts = MediaFacts {
            sha256: upload.hasher.clone().finalize().into(),
            heads: vec![upload.head.clone()],
            bytes: upload.video_size,
        };
        let publish_id = ticket.publish_id;
        self.media_arrived(&publish_id, Ok(facts), now);
        ChunkAnswer {
            status: StatusCode::CREATED,
            content_range,
        }
    }

    // ---------------------------------------------------------------- processing

    /// The bytes are known (upload finished, or a pull ended): decide the verdict and when it applies.
    pub fn media_arrived(&mut self, publish_id: &str, facts: Result<MediaFacts, String>, now: DateTime<Utc>) {
        let delay = Duration::milliseconds(i64::try_from(self.settings.processing_delay_ms).unwrap_or(i64::MAX / 2));
        let Some(publish) = self.publishes.get(publish_id) else {
            return;
        };
        if publish.verdict.is_some() || publish.status == Status::Failed {
            return;
        }
        let (open_id, kind) = (publish.open_id.clone(), publish.kind);
        let override_reason = self.take_processing_failure(&open_id);
        let mut digest = None;
        let verdict = match (facts, override_reason) {
            (Err(reason), _) | (Ok(_), Some(reason)) => Err(reason),
            (Ok(facts), None) => {
                digest = Some(facts.sha256);
                if let Some(Publish {
                    source: Source::Pull { downloaded, .. },
                    ..
                }) = self.publishes.get_mut(publish_id)
                {
                    *downloaded = facts.bytes;
                }
                let readable = facts.heads.iter().all(|head| {
                    if kind.is_photo() {
                        looks_like_photo(head)
                    } else {
                        looks_like_video(head)
                    }
                });
                let account = self.accounts.get_mut(&open_id);
                if !readable {
                    Err("file_format_check_failed".to_owned())
                } else if !kind.is_inbox() && account.is_some_and(|a| !a.posted_media.insert(facts.sha256)) {
                    // The same bytes posted twice to one account: TikTok flags it.
                    Err("spam_risk".to_owned())
                } else {
                    Ok(())
                }
            }
        };
        if let Some(publish) = self.publishes.get_mut(publish_id) {
            publish.sha256 = digest;
            publish.verdict = Some(verdict);
            publish.ready_at = Some(now + delay);
        }
    }

    fn take_processing_failure(&mut self, open_id: &str) -> Option<String> {
        let failure = self
            .processing_failures
            .iter_mut()
            .find(|f| f.times > 0 && f.open_id.as_deref().is_none_or(|id| id == open_id))?;
        failure.times -= 1;
        let reason = failure.fail_reason.clone();
        self.processing_failures.retain(|f| f.times > 0);
        Some(reason)
    }

    pub fn add_processing_failure(&mut self, failure: ProcessingFailure) {
        self.processing_failures.push(failure);
    }

    /// Applies every transition due by `now` and returns the webhooks they owe.
    pub fn settle(&mut self, now: DateTime<Utc>) -> Vec<OutgoingWebhook> {
        let moderation =
            Duration::milliseconds(i64::try_from(self.settings.moderation_delay_ms).unwrap_or(i64::MAX / 2));
        let mut hooks = Vec::new();
        let mut done = Vec::new();
        for publish_id in &self.pending {
            let Some(publish) = self.publishes.get_mut(publish_id) else {
                done.push(publish_id.clone());
                continue;
            };
            if publish.ready_at.is_some_and(|at| at <= now)
                && !matches!(
                    publish.status,
                    Status::PublishComplete | Status::Failed | Status::SendToUserInbox
                )
            {
                match publish.verdict.clone() {
                    Some(Err(reason)) => hooks.push(fail(publish, &reason)),
                    _ if publish.kind.is_inbox() => {
                        publish.status = Status::SendToUserInbox;
                        hooks.push(publish_event(publish, "post.publish.inbox_delivered", json!({})));
                    }
                    _ => {
                        publish.status = Status::PublishComplete;
                        hooks.push(publish_event(publish, "post.publish.complete", json!({})));
                        if publish.privacy_level.as_deref() == Some("PUBLIC_TO_EVERYONE") {
                            publish.public_at = Some(now + moderation);
                        }
                    }
                }
            }
            if publish.public_at.is_some_and(|at| at <= now) {
                publish.public_at = None;
                let post_id = FIRST_POST_ID + self.next_id;
                self.next_id += 1;
                publish.public_post_ids.push(post_id);
                hooks.push(publish_event(
                    publish,
                    "post.publish.publicly_available",
                    json!({ "post_id": post_id }),
                ));
            }
            let finished = matches!(publish.status, Status::Failed | Status::SendToUserInbox)
                || (publish.status == Status::PublishComplete && publish.public_at.is_none());
            if finished {
                done.push(publish_id.clone());
            }
        }
        for publish_id in done {
            self.pending.remove(&publish_id);
        }
        hooks
    }

    fn owned_publish(&self, caller: &Caller, body: &Value) -> Result<String, ApiError> {
        let publish_id = str_field(body, "publish_id")?.filter(|id| !id.is_empty());
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_publish_id",
                "The publish_id does not exist.",
            )
        };
        let publish_id = publish_id.ok_or_else(invalid)?;
        let publish = self.publishes.get(publish_id).ok_or_else(invalid)?;
        if publish.open_id != caller.open_id {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "token_not_authorized_for_specified_publish_id",
                "The access token is not authorized for this publish_id.",
            ));
        }
        Ok(publish_id.to_owned())
    }

    pub fn status(
        &mut self,
        caller: &Caller,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<(Value, Vec<OutgoingWebhook>), ApiError> {
        caller.require_any_scope(&["video.upload", "video.publish"])?;
        self.check_rate(caller, RateGroup::Status, now)?;
        let publish_id = self.owned_publish(caller, body)?;
        let hooks = self.settle(now);
        let publish = self
            .publishes
            .get(&publish_id)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_publish_id", "gone"))?;
        let mut data = json!({
            "status": publish.status.as_str(),
            "publicaly_available_post_id": publish.public_post_ids,
        });
        if let Some(reason) = &publish.fail_reason {
            data["fail_reason"] = json!(reason);
        }
        match &publish.source {
            Source::Upload(upload) => data["uploaded_bytes"] = json!(upload.received),
            Source::Pull { downloaded, .. } => data["downloaded_bytes"] = json!(downloaded),
        }
        Ok((data, hooks))
    }

    pub fn cancel(
        &mut self,
        caller: &Caller,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutgoingWebhook>, ApiError> {
        caller.require_any_scope(&["video.upload", "video.publish"])?;
        let publish_id = self.owned_publish(caller, body)?;
        let mut hooks = self.settle(now);
        let publish = self
            .publishes
            .get_mut(&publish_id)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_publish_id", "gone"))?;
        if publish.status != Status::ProcessingDownload {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "publish_not_cancellable",
                "The publish can no longer be cancelled.",
            ));
        }
        hooks.push(fail(publish, "publish_cancelled"));
        self.pending.remove(&publish_id);
        Ok(hooks)
    }

    pub fn snapshot(&self, publish_id: &str) -> Option<PublishSnapshot> {
        let p = self.publishes.get(publish_id)?;
        let (source, received, media_urls) = match &p.source {
            Source::Upload(upload) => ("FILE_UPLOAD", upload.received, Vec::new()),
            Source::Pull { urls, downloaded } => ("PULL_FROM_URL", *downloaded, urls.clone()),
        };
        Some(PublishSnapshot {
            publish_id: p.id.clone(),
            open_id: p.open_id.clone(),
            kind: p.kind.as_str().to_owned(),
            source: source.to_owned(),
            status: p.status.as_str().to_owned(),
            fail_reason: p.fail_reason.clone(),
            privacy_level: p.privacy_level.clone(),
            post_info: p.post_info.clone(),
            received_bytes: received,
            media_urls,
            public_post_ids: p.public_post_ids.iter().map(u64::to_string).collect(),
            sha256: p.sha256.map(hex::encode),
            created_at: p.created_at,
        })
    }

    pub fn snapshots(&self) -> Vec<PublishSnapshot> {
        let mut all: Vec<_> = self.publishes.keys().filter_map(|id| self.snapshot(id)).collect();
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.publish_id.cmp(&b.publish_id))
        });
        all
    }

    pub fn is_photo(&self, publish_id: &str) -> bool {
        self.publishes.get(publish_id).is_some_and(|p| p.kind.is_photo())
    }
}

fn fail(publish: &mut Publish, reason: &str) -> OutgoingWebhook {
    publish.status = Status::Failed;
    publish.fail_reason = Some(reason.to_owned());
    publish.public_at = None;
    publish_event(publish, "post.publish.failed", json!({ "reason": reason }))
}

fn publish_event(publish: &Publish, event: &'static str, extra: Value) -> OutgoingWebhook {
    let mut content = json!({ "publish_id": publish.id, "publish_type": publish.kind.publish_type() });
    if let (Value::Object(content), Value::Object(extra)) = (&mut content, extra) {
        content.extend(extra);
    }
    OutgoingWebhook {
        event,
        open_id: publish.open_id.clone(),
        content,
    }
}

fn progress_range(upload: &Upload) -> Option<String> {
    (upload.received > 0).then(|| format!("bytes 0-{}/{}", upload.received - 1, upload.video_size))
}

fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let rest = header.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let parsed = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (parsed.0 <= parsed.1).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_plans_follow_the_strict_reading_of_the_rules() {
        let mib = MIB;
        assert_eq!(check_chunk_plan(1_000_000, 1_000_000, 1), Ok(()));
        assert!(check_chunk_plan(4 * mib, 2 * mib, 2).is_err(), "under 5 MB goes whole");
        assert_eq!(check_chunk_plan(50_000_123, 10_000_000, 5), Ok(()));
        assert!(
            check_chunk_plan(50_000_123, 10_000_000, 4).is_err(),
            "count must be floor"
        );
        assert!(
            check_chunk_plan(100_000_000, 100_000_000, 1).is_err(),
            "over 64 MB must be chunked"
        );
        assert!(check_chunk_plan(200 * mib, 100 * mib, 2).is_err(), "chunk over 64 MB");
        assert!(check_chunk_plan(130_000_000, 65_000_000, 2).is_err());
        assert!(check_chunk_plan(4 * 1024 * mib, 10 * mib, 409).is_ok());
        assert!(check_chunk_plan(0, 0, 0).is_err());
    }

    #[test]
    fn media_sniffing_knows_iso_bmff_webm_jpeg_and_webp() {
        assert!(looks_like_video(b"\0\0\0\x18ftypmp42"));
        assert!(looks_like_video(&[0x1A, 0x45, 0xDF, 0xA3, 0]));
        assert!(!looks_like_video(b"GIF89a......"));
        assert!(looks_like_photo(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(looks_like_photo(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!looks_like_photo(b"\x89PNG\r\n\x1a\n"));
    }
}
