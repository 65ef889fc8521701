//! A TikTok sandbox: an HTTP server that behaves as TikTok's documented Content Posting API (OAuth, user info,
//! creator_info, inits, chunked upload, pulls, status, cancel, signed webhooks) with TikTok's checks and limits, plus
//! fault injection and a request log for tests.
//!
//! It is an independent reading of `tiktok-content-posting-api.md`: it shares no code with the product's client, so
//! a misreading on one side shows up as a failing test instead of agreeing with itself.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let sandbox = tiktok_sandbox::spawn(tiktok_sandbox::SandboxConfig::default()).await?;
//! let tokens = sandbox.create_accounts_with_tokens(100, tiktok_sandbox::AccountSpec::public());
//! // point TIKTOK_API_BASE_URL and TIKTOK_AUTH_BASE_URL at sandbox.base_url()
//! # Ok(()) }
//! ```

mod api;
mod control;
mod server;
pub mod types;
mod world;

use std::{
    net::SocketAddr,
    ops::Deref,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderMap},
    routing::{get, post, put},
    Router,
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use types::{
    fingerprint, AccountSpec, Endpoint, FaultAction, FaultSpec, IssuedTokens, LoggedRequest, ProcessingFailure,
    PublishSnapshot, RateLimits, Settings, WebhookRecord, ALL_SCOPES,
};
use world::{MediaFacts, OutgoingWebhook, PullJob, World};

/// How often due transitions (processing finished, moderation passed) are applied and their webhooks sent.
const SETTLE_INTERVAL: Duration = Duration::from_millis(20);
/// Webhook retries: TikTok retries for 72 h; the sandbox keeps it short so tests finish.
const WEBHOOK_BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(500)];
const HEAD_BYTES: usize = 16;

/// Where to listen and how to behave at start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// `127.0.0.1:0` picks a free port.
    pub addr: SocketAddr,
    pub settings: Settings,
    /// Accounts to create at start.
    pub accounts: Vec<AccountSpec>,
    /// TikTok's time; the wall clock unless a test or the cloud model runs TikTok on virtual time.
    pub clock: SandboxClock,
}

/// Where the sandbox reads the time. TikTok keeps its own clock, so by default this is the wall clock, not the
/// backend's `Clock`; a model on tokio's paused clock gives it the same virtual time as everything else.
#[derive(Clone)]
pub struct SandboxClock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl SandboxClock {
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for SandboxClock {
    fn default() -> Self {
        Self::new(Utc::now)
    }
}

impl std::fmt::Debug for SandboxClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxClock")
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            settings: Settings::default(),
            accounts: Vec::new(),
            clock: SandboxClock::default(),
        }
    }
}

struct ActiveFault {
    id: u64,
    spec: FaultSpec,
    seen: u32,
    applied: u32,
}

struct Inner {
    base_url: String,
    world: Mutex<World>,
    clock: SandboxClock,
    clock_offset_ms: AtomicI64,
    seq: AtomicU64,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<Vec<ActiveFault>>,
    webhooks: Mutex<Vec<WebhookRecord>>,
    /// Pulls media and sends webhooks; never follows redirects (TikTok treats a 3xx as a failed pull).
    http: reqwest::Client,
}

/// The control surface: accounts, tokens, settings, faults, clock, request log, webhooks, publishes. Cheap to
/// clone; every clone controls the same sandbox.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

/// A running sandbox. Dropping it (or [`SandboxHandle::shutdown`]) stops the server. Derefs to [`Sandbox`].
pub struct SandboxHandle {
    sandbox: Sandbox,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Deref for SandboxHandle {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl SandboxHandle {
    pub fn control(&self) -> Sandbox {
        self.sandbox.clone()
    }

    /// Stops accepting, closes open connections and waits for the server tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Binds `config.addr` and serves until the handle is dropped.
pub async fn spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let mut world = World::new(config.settings);
    for account in config.accounts {
        world.create_account(account);
    }
    let sandbox = Sandbox {
        inner: Arc::new(Inner {
            base_url: format!("http://{addr}"),
            world: Mutex::new(world),
            clock: config.clock,
            clock_offset_ms: AtomicI64::new(0),
            seq: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            webhooks: Mutex::new(Vec::new()),
            http,
        }),
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, router(sandbox.clone()), shutdown_rx.clone()));
    let settler = tokio::spawn(settle_loop(sandbox.clone(), shutdown_rx));
    tracing::info!(base_url = %sandbox.base_url(), "TikTok sandbox listening");
    Ok(SandboxHandle {
        sandbox,
        shutdown,
        tasks: vec![server, settler],
    })
}

fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/v2/auth/authorize/", get(api::authorize))
        .route("/v2/oauth/token/", post(api::token))
        .route("/v2/oauth/revoke/", post(api::revoke))
        .route("/v2/user/info/", get(api::user_info))
        .route("/v2/post/publish/creator_info/query/", post(api::creator_info))
        .route("/v2/post/publish/video/init/", post(api::video_init))
        .route("/v2/post/publish/inbox/video/init/", post(api::inbox_video_init))
        .route("/v2/post/publish/content/init/", post(api::content_init))
        .route("/video/", put(api::upload_chunk))
        .route("/v2/post/publish/status/fetch/", post(api::status))
        .route("/v2/post/publish/cancel/", post(api::cancel))
        .nest("/_sandbox", control::router())
        .layer(axum::middleware::from_fn_with_state(sandbox.clone(), server::observe))
        // Chunks of up to 128 MB are streamed by the upload handler; other bodies are bounded in `observe`.
        .layer(DefaultBodyLimit::disable())
        .with_state(sandbox)
}

async fn settle_loop(sandbox: Sandbox, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SETTLE_INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
        let hooks = sandbox.world().settle(sandbox.now());
        sandbox.deliver(hooks);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sandbox {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.inner.world)
    }

    /// `http://127.0.0.1:PORT`: both TikTok's API base and its auth base.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    // ------------------------------------------------------------ clock

    /// The sandbox's time: its clock (the wall clock unless configured) plus the offset the control API set.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now() + chrono::Duration::milliseconds(self.inner.clock_offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the sandbox's clock forward (token expiry, upload URL expiry, 24-hour caps, rate windows).
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.inner.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn clock_offset(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.inner.clock_offset_ms.load(Ordering::SeqCst))
    }

    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.inner
            .clock_offset_ms
            .store(offset.num_milliseconds(), Ordering::SeqCst);
    }

    // ------------------------------------------------------------ settings and accounts

    pub fn settings(&self) -> Settings {
        self.world().settings.clone()
    }

    pub fn update_settings(&self, update: impl FnOnce(&mut Settings)) {
        update(&mut self.world().settings);
    }

    /// Creates a sandbox TikTok user; returns its `open_id`.
    pub fn create_account(&self, spec: AccountSpec) -> String {
        self.world().create_account(spec)
    }

    pub fn account(&self, open_id: &str) -> Option<AccountSpec> {
        self.world().account(open_id)
    }

    pub fn accounts(&self) -> Vec<AccountSpec> {
        self.world().accounts()
    }

    /// Changes an account (privacy, disabled interactions, posting block, grantable scopes...); false if unknown.
    pub fn update_account(&self, open_id: &str, update: impl FnOnce(&mut AccountSpec)) -> bool {
        self.world().update_account(open_id, update)
    }

    /// Tokens for an existing account, as if it had connected; `None` scopes grants every scope.
    pub fn issue_tokens(&self, open_id: &str, scopes: Option<&[&str]>) -> Option<IssuedTokens> {
        let now = self.now();
        let mut world = self.world();
        world.account(open_id)?;
        let scopes = scopes.unwrap_or(&ALL_SCOPES).iter().map(|s| (*s).to_owned()).collect();
        Some(world.issue_tokens(open_id, scopes, now))
    }

    /// `count` accounts like `template` (each with a fresh open_id), each with tokens for every scope: for tests
    /// that need many connected creators without running OAuth.
    pub fn create_accounts_with_tokens(&self, count: usize, template: AccountSpec) -> Vec<IssuedTokens> {
        let now = self.now();
        let mut world = self.world();
        let scopes: Vec<String> = ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        (0..count)
            .map(|_| {
                let open_id = world.create_account(AccountSpec {
                    open_id: String::new(),
                    ..template.clone()
                });
                world.issue_tokens(&open_id, scopes.clone(), now)
            })
            .collect()
    }

    /// Which account approves the next authorize requests (`None`: the first account, created if none exists).
    pub fn set_authorizer(&self, open_id: Option<&str>) {
        self.world().authorizer = open_id.map(str::to_owned);
    }

    /// The next authorize request is refused (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.world().deny_next_authorize = true;
    }

    /// The user removes the app in TikTok: tokens stop working, running publishes fail with `auth_removed`, and an
    /// `authorization.removed` webhook goes out.
    pub fn remove_authorization(&self, open_id: &str, reason: i64) {
        let hooks = self.world().remove_authorization(open_id, reason);
        self.deliver(hooks);
    }

    /// The next processing outcomes (of one account, or any) fail with this reason.
    pub fn fail_next_processing(&self, failure: ProcessingFailure) {
        self.world().add_processing_failure(failure);
    }

    pub fn publish(&self, publish_id: &str) -> Option<PublishSnapshot> {
        self.world().snapshot(publish_id)
    }

    pub fn publishes(&self) -> Vec<PublishSnapshot> {
        self.world().snapshots()
    }

    /// Applies transitions due now (normally done every 20 ms) and returns at once.
    pub fn settle_now(&self) {
        let hooks = self.world().settle(self.now());
        self.deliver(hooks);
    }

    // ------------------------------------------------------------ faults

    /// Adds a fault; faults are checked in the order added, the first that applies wins. Returns its id.
    pub fn inject_fault(&self, spec: FaultSpec) -> u64 {
        let id = self.next_seq();
        lock(&self.inner.faults).push(ActiveFault {
            id,
            spec,
            seen: 0,
            applied: 0,
        });
        id
    }

    pub fn remove_fault(&self, id: u64) {
        lock(&self.inner.faults).retain(|f| f.id != id);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    pub(crate) fn take_fault(&self, endpoint: Endpoint, open_id: Option<&str>) -> Option<FaultAction> {
        let mut faults = lock(&self.inner.faults);
        let mut chosen = None;
        for fault in faults.iter_mut() {
            let spec = &fault.spec;
            let endpoint_matches = spec.endpoint.is_none_or(|e| e == endpoint);
            let user_matches = spec.open_id.as_deref().is_none_or(|id| Some(id) == open_id);
            if !(endpoint_matches && user_matches) {
                continue;
            }
            fault.seen += 1;
            if fault.seen <= spec.skip {
                continue;
            }
            fault.applied += 1;
            chosen = Some(spec.action.clone());
            break;
        }
        faults.retain(|f| f.spec.times.is_none_or(|times| f.applied < times));
        chosen
    }

    // ------------------------------------------------------------ request log

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn record(&self, entry: LoggedRequest) {
        tracing::debug!(endpoint = ?entry.endpoint, status = entry.response_status, fault = entry.fault.as_deref(), "sandbox request");
        lock(&self.inner.log).push(entry);
    }

    /// Every TikTok request received so far, in arrival order. Secrets appear only as [`fingerprint`]s.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let mut entries = lock(&self.inner.log).clone();
        entries.sort_by_key(|e| e.seq);
        entries
    }

    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<LoggedRequest> {
        self.requests().into_iter().filter(|e| e.endpoint == endpoint).collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
    }

    pub(crate) fn identify(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        query: &std::collections::BTreeMap<String, String>,
        body: Option<&Value>,
    ) -> server::Identity {
        let world = self.world();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let body_str = |field: &str| body.and_then(|b| b.get(field)).and_then(Value::as_str);
        let mut identity = server::Identity {
            open_id: bearer.and_then(|t| world.open_id_of_access_token(t)),
            token_fingerprint: bearer.map(fingerprint),
            publish_id: body_str("publish_id").map(str::to_owned),
        };
        match endpoint {
            Endpoint::Token => {
                if let Some(token) = body_str("refresh_token") {
                    identity.open_id = world.open_id_of_refresh_token(token);
                    identity.token_fingerprint = Some(fingerprint(token));
                } else if let Some(code) = body_str("code") {
                    identity.open_id = world.open_id_of_code(code);
                }
            }
            Endpoint::Revoke => {
                if let Some(token) = body_str("token") {
                    identity.open_id = world.open_id_of_access_token(token);
                    identity.token_fingerprint = Some(fingerprint(token));
                }
            }
            Endpoint::Upload => {
                if let Some((open_id, publish_id)) = query.get("upload_id").and_then(|id| world.upload_owner(id)) {
                    identity.open_id = Some(open_id);
                    identity.publish_id = Some(publish_id);
                }
            }
            _ => {}
        }
        identity
    }

    // ------------------------------------------------------------ webhooks

    /// Every webhook attempt so far. Without a configured URL each event is recorded once with `status: None`.
    pub fn webhook_deliveries(&self) -> Vec<WebhookRecord> {
        lock(&self.inner.webhooks).clone()
    }

    pub fn set_webhook_url(&self, url: Option<&str>) {
        self.world().settings.webhook_url = url.map(str::to_owned);
    }

    /// Sends the webhooks, signed like TikTok's, in order (one batch is one task), each with a few quick retries.
    pub(crate) fn deliver(&self, hooks: Vec<OutgoingWebhook>) {
        if hooks.is_empty() {
            return;
        }
        let (url, client_key, secret) = {
            let world = self.world();
            let s = &world.settings;
            (s.webhook_url.clone(), s.client_key.clone(), s.client_secret.clone())
        };
        let timestamp = self.now().timestamp();
        let records: Vec<WebhookRecord> = hooks
            .into_iter()
            .map(|hook| {
                let body = json!({
                    "client_key": client_key,
                    "event": hook.event,
                    "create_time": timestamp,
                    "user_openid": hook.open_id,
                    // TikTok sends `content` as a JSON string, not an object.
                    "content": hook.content.to_string(),
                })
                .to_string();
                WebhookRecord {
                    event: hook.event.to_owned(),
                    user_openid: hook.open_id,
                    signature: sign_webhook(&secret, timestamp, body.as_bytes()),
                    body,
                    attempt: 0,
                    status: None,
                }
            })
            .collect();
        let Some(url) = url else {
            lock(&self.inner.webhooks).extend(records);
            return;
        };
        let sandbox = self.clone();
        tokio::spawn(async move {
            for record in records {
                sandbox.send_webhook(&url, record).await;
            }
        });
    }

    async fn send_webhook(&self, url: &str, record: WebhookRecord) {
        for attempt in 1..=(WEBHOOK_BACKOFF.len() as u32 + 1) {
            let sent = self
                .inner
                .http
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header("TikTok-Signature", &record.signature)
                .body(record.body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let status = sent.ok().map(|r| r.status().as_u16());
            lock(&self.inner.webhooks).push(WebhookRecord {
                attempt,
                status,
                ..record.clone()
            });
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            if let Some(wait) = WEBHOOK_BACKOFF.get(attempt as usize - 1) {
                tokio::time::sleep(*wait).await;
            }
        }
    }

    // ------------------------------------------------------------ pulls

    /// Downloads the media of a PULL_FROM_URL publish, as TikTok would, then lets processing decide.
    pub(crate) fn start_pull(&self, job: PullJob) {
        let sandbox = self.clone();
        tokio::spawn(async move {
            let (photo, timeout) = {
                let world = sandbox.world();
                (
                    world.is_photo(&job.publish_id),
                    Duration::from_millis(world.settings.pull_timeout_ms),
                )
            };
            let failed = if photo {
                "photo_pull_failed"
            } else {
                "video_pull_failed"
            };
            let facts = sandbox
                .download(&job.urls, timeout)
                .await
                .map_err(|()| failed.to_owned());
            sandbox.world().media_arrived(&job.publish_id, facts, sandbox.now());
        });
    }

    async fn download(&self, urls: &[String], timeout: Duration) -> Result<MediaFacts, ()> {
        let mut hasher = Sha256::new();
        let (mut heads, mut bytes) = (Vec::new(), 0u64);
        for url in urls {
            let mut response = self.inner.http.get(url).timeout(timeout).send().await.map_err(|_| ())?;
            // A redirect counts as a failed pull at TikTok (reference §4.3).
            if !response.status().is_success() {
                return Err(());
            }
            let mut head = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|_| ())? {
                if head.len() < HEAD_BYTES {
                    head.extend(chunk.iter().take(HEAD_BYTES - head.len()));
                }
                bytes += chunk.len() as u64;
                hasher.update(&chunk);
            }
            heads.push(head);
        }
        Ok(MediaFacts {
            sha256: hasher.finalize().into(),
            heads,
            bytes,
        })
    }
}

/// `t={timestamp},s={hex HMAC-SHA256(client_secret, "{timestamp}.{body}")}`, as TikTok signs webhooks.
pub fn sign_webhook(client_secret: &str, timestamp: i64, body: &[u8]) -> String {
    let signature = match Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of every length; this arm only keeps the function total.
        Err(_) => String::new(),
    };
    format!("t={timestamp},s={signature}")
}
