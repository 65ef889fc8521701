//! A router over the embedded adapters, seeded with two workspaces, for HTTP-level tests; optionally with a TikTok
//! sandbox behind it for the routes that talk to TikTok.
#![allow(dead_code)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
    Router,
};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use intake_api::{AppState, Deps, IntakeSettings};
use serde_json::{json, Value};
use shared::{
    accounts::TokenService,
    adapters::{
        local_blobs::LocalBlobStore,
        memory::{RecordingEventSink, RecordingTimer},
        sqlite::SqliteStore,
    },
    domain::{
        Account, AccountStatus, ApiKey, Finding, Media, MediaFacts, MediaKind, MediaStatus, MediaVerdict, Workspace,
    },
    ids::{AccountId, MediaId, WorkspaceId},
    ports::{AccountRepo, StoreError, StoreResult, Stores},
    tiktok::{SecretString, TikTokClient, TikTokConfig, TikTokTimeouts, TokenCipher, UploadHosts},
    ManualClock,
};
use tiktok_sandbox::{SandboxConfig, SandboxHandle};
use tower::ServiceExt;

/// What the app registered at TikTok as its callback; the tests replay TikTok's redirect to it on the router.
pub const REDIRECT_URI: &str = "https://api.example.com/v1/accounts/tiktok/callback";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

pub struct Tenant {
    pub workspace: WorkspaceId,
    pub key: String,
    pub account: AccountId,
    pub video: MediaId,
    pub images: Vec<MediaId>,
}

pub struct TestApp {
    pub router: Router,
    pub stores: Stores,
    pub events: Arc<RecordingEventSink>,
    pub timer: Arc<RecordingTimer>,
    pub clock: ManualClock,
    pub tokens: TokenService,
    /// Present with [`TestApp::with_sandbox`]; otherwise TikTok is unreachable.
    pub sandbox: Option<SandboxHandle>,
    pub a: Tenant,
    pub b: Tenant,
    /// The database file with [`TestApp::on_sqlite_file`]; otherwise the store lives in memory.
    pub database_file: Option<PathBuf>,
    pub blobs: Arc<LocalBlobStore>,
    _blobs_dir: tempfile::TempDir,
    _database_dir: Option<tempfile::TempDir>,
}

#[derive(Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `details[].field` values of an error body, in order.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|v| v["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn codes(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|d| d.iter().filter_map(|v| v["code"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn detail(&self, field: &str) -> Value {
        self.body["error"]["details"]
            .as_array()
            .and_then(|d| d.iter().find(|v| v["field"] == field).cloned())
            .unwrap_or(Value::Null)
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_settings(IntakeSettings::default()).await
    }

    pub async fn audited() -> Self {
        Self::with_settings(IntakeSettings {
            app_audited: true,
            ..IntakeSettings::default()
        })
        .await
    }

    pub async fn with_settings(settings: IntakeSettings) -> Self {
        // Nothing listens on the discard port: every TikTok call fails to connect.
        let tiktok = tiktok_config("http://127.0.0.1:9", "sandbox-client-key");
        Self::build(settings, tiktok, None).await
    }

    /// An app whose TikTok is a fresh sandbox (settings adjusted by `adjust`).
    pub async fn with_sandbox(settings: IntakeSettings, adjust: impl FnOnce(&mut tiktok_sandbox::Settings)) -> Self {
        Self::with_sandbox_and_stores(settings, adjust, |_| {}).await
    }

    /// [`TestApp::with_sandbox`] with its stores rewired by `rewire`.
    pub async fn with_sandbox_and_stores(
        settings: IntakeSettings,
        adjust: impl FnOnce(&mut tiktok_sandbox::Settings),
        rewire: impl FnOnce(&mut Stores),
    ) -> Self {
        let mut sandbox_settings = tiktok_sandbox::Settings {
            processing_delay_ms: 20,
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            client_secret: CLIENT_SECRET.to_owned(),
            ..Default::default()
        };
        adjust(&mut sandbox_settings);
        let sandbox = tiktok_sandbox::spawn(SandboxConfig {
            settings: sandbox_settings,
            ..SandboxConfig::default()
        })
        .await
        .expect("the sandbox binds a free port");
        let tiktok = tiktok_config(sandbox.base_url(), &sandbox.settings().client_key);
        Self::build_with(settings, tiktok, Some(sandbox), rewire).await
    }

    /// The default app with its stores rewired by `rewire` (e.g. to count reads).
    pub async fn with_stores(rewire: impl FnOnce(&mut Stores)) -> Self {
        let tiktok = tiktok_config("http://127.0.0.1:9", "sandbox-client-key");
        Self::build_with(IntakeSettings::default(), tiktok, None, rewire).await
    }

    /// The default app on a SQLite file, as the local runner stores, so that a test can reach the file from outside.
    pub async fn on_sqlite_file() -> Self {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("postato.sqlite3");
        let store = SqliteStore::open(&path).expect("opens the database file");
        let tiktok = tiktok_config("http://127.0.0.1:9", "sandbox-client-key");
        let mut app = Self::build_on(store, IntakeSettings::default(), tiktok, None, |_| {}).await;
        app.database_file = Some(path);
        app._database_dir = Some(folder);
        app
    }

    async fn build(settings: IntakeSettings, tiktok: TikTokConfig, sandbox: Option<SandboxHandle>) -> Self {
        Self::build_with(settings, tiktok, sandbox, |_| {}).await
    }

    async fn build_with(
        settings: IntakeSettings,
        tiktok: TikTokConfig,
        sandbox: Option<SandboxHandle>,
        rewire: impl FnOnce(&mut Stores),
    ) -> Self {
        let store = SqliteStore::in_memory().expect("in-memory sqlite");
        Self::build_on(store, settings, tiktok, sandbox, rewire).await
    }

    async fn build_on(
        store: SqliteStore,
        settings: IntakeSettings,
        tiktok: TikTokConfig,
        sandbox: Option<SandboxHandle>,
        rewire: impl FnOnce(&mut Stores),
    ) -> Self {
        let mut stores = Stores::from_adapter(Arc::new(store));
        rewire(&mut stores);
        let blobs_dir = tempfile::tempdir().expect("tempdir");
        let blobs = Arc::new(LocalBlobStore::new(
            blobs_dir.path().to_path_buf(),
            "http://127.0.0.1:8080".into(),
            [7; 32],
        ));
        let events = Arc::new(RecordingEventSink::default());
        let timer = Arc::new(RecordingTimer::default());
        let clock = ManualClock::at(start());
        let tokens = TokenService::new(
            &stores,
            TikTokClient::with_clock(tiktok, Arc::new(clock.clone())).expect("client builds"),
            Arc::new(TokenCipher::new(&[5; 32])),
            events.clone(),
            Arc::new(clock.clone()),
        );
        let state = AppState::new(Deps {
            stores: stores.clone(),
            blobs: blobs.clone(),
            events: events.clone(),
            timer: timer.clone(),
            clock: Arc::new(clock.clone()),
            tokens: tokens.clone(),
            settings,
        });
        let a = seed_tenant(&stores, "alpha").await;
        let b = seed_tenant(&stores, "bravo").await;
        Self {
            router: intake_api::router(state),
            stores,
            events,
            timer,
            clock,
            tokens,
            sandbox,
            a,
            b,
            database_file: None,
            blobs,
            _blobs_dir: blobs_dir,
            _database_dir: None,
        }
    }

    pub fn sandbox(&self) -> &SandboxHandle {
        self.sandbox.as_ref().expect("this test app runs a TikTok sandbox")
    }

    /// The whole connect flow for `tenant`: the API's authorize URL, TikTok's consent (the sandbox approves as its
    /// authorizer) and the callback. Returns the callback's reply.
    /// The whole connect as the product does it: the callback's answer when it is not an authorized connection,
    /// else the workspace's claim of it.
    pub async fn connect(&self, tenant: &Tenant) -> Reply {
        let callback = self.authorize(tenant).await;
        let authorized = self.call(Method::GET, &callback, None, None).await;
        match authorized.body["connectionId"].as_str() {
            Some(connection) if authorized.status == StatusCode::OK => self.claim(tenant, connection).await,
            _ => authorized,
        }
    }

    /// Claims the connection the callback handed to the browser, with `tenant`'s API key.
    pub async fn claim(&self, tenant: &Tenant, connection: &str) -> Reply {
        let path = format!("/v1/accounts/tiktok/connections/{connection}");
        self.call(Method::POST, &path, Some(&tenant.key), None).await
    }

    /// Starts a connection and lets TikTok approve it; returns the callback path and query TikTok redirects to.
    pub async fn authorize(&self, tenant: &Tenant) -> String {
        let started = self
            .call(Method::POST, "/v1/accounts/tiktok/connect", Some(&tenant.key), None)
            .await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        let url = started.body["authorizeUrl"]
            .as_str()
            .expect("an authorize URL")
            .to_owned();
        let location = follow_authorize(&url).await;
        callback_path(&location)
    }

    /// A workspace with a key and no account.
    pub async fn empty_tenant(&self, name: &str) -> Tenant {
        seed_workspace(&self.stores, name).await
    }

    pub async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply { status, headers, body }
    }

    pub async fn post_as(&self, tenant: &Tenant, body: Value) -> Reply {
        self.call(Method::POST, "/v1/posts", Some(&tenant.key), Some(body))
            .await
    }

    /// A valid immediate video post for tenant A.
    pub fn video_post(&self) -> Value {
        json!({
            "platform": "tiktok", "accountId": self.a.account, "status": "publish", "postType": "video",
            "content": "Behind-the-scenes of our launch day.", "media": [{"id": self.a.video}],
            "options": {"privacy": "private"}
        })
    }

    pub fn photo_post(&self, count: usize) -> Value {
        json!({
            "platform": "tiktok", "accountId": self.a.account, "status": "publish", "postType": "photo",
            "content": "Summer photo dump.",
            "media": self.a.images[..count].iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "options": {"privacy": "private"}
        })
    }

    pub async fn add_media(&self, tenant: &Tenant, kind: MediaKind, status: MediaStatus) -> MediaId {
        let media = media_record(&tenant.workspace, kind, status);
        self.stores.media.create_media(&media).await.unwrap();
        media.id
    }
}

pub fn media_record(workspace: &WorkspaceId, kind: MediaKind, status: MediaStatus) -> Media {
    let id = MediaId::new();
    let verdict = match status {
        MediaStatus::Valid | MediaStatus::Invalid => Some(MediaVerdict {
            accepted: status == MediaStatus::Valid,
            detected_kind: kind.as_str().into(),
            violations: if status == MediaStatus::Invalid {
                vec![Finding::new(
                    "frame_rate_check_failed",
                    "20 fps is below TikTok's 23 fps minimum",
                )]
            } else {
                vec![]
            },
            warnings: vec![],
            facts: MediaFacts {
                size_bytes: 1000,
                duration_ms: Some(15_000),
                ..Default::default()
            },
            fingerprint: Some(format!("fp-{id}")),
            rendition_key: None,
            rendition: None,
            info: Vec::new(),
            etag: Some("etag".into()),
            validated_at: start(),
        }),
        _ => None,
    };
    Media {
        object_key: Media::object_key_for(workspace, &id),
        id,
        workspace_id: workspace.clone(),
        kind,
        content_type: if kind == MediaKind::Video {
            "video/mp4".into()
        } else {
            "image/jpeg".into()
        },
        declared_size: 1000,
        file_name: "clip".into(),
        status,
        verdict,
        created_at: start(),
        updated_at: start(),
        version: 1,
        waiting_posts: Vec::new(),
    }
}

pub fn account_record(workspace: &WorkspaceId, status: AccountStatus) -> Account {
    Account {
        display_name: "Creator".into(),
        username: Some("creator".into()),
        scopes: vec!["user.info.basic".into(), "video.publish".into(), "video.upload".into()],
        status,
        terms_accepted_at: Some(start()),
        ..Account::new_connected(workspace.clone(), format!("open-{}", ulid::Ulid::new()), start())
    }
}

async fn seed_tenant(stores: &Stores, name: &str) -> Tenant {
    let mut tenant = seed_workspace(stores, name).await;
    let account = account_record(&tenant.workspace, AccountStatus::Connected);
    stores.accounts.create_account(&account).await.unwrap();
    tenant.account = account.id;
    let video = media_record(&tenant.workspace, MediaKind::Video, MediaStatus::Valid);
    stores.media.create_media(&video).await.unwrap();
    tenant.video = video.id;
    for _ in 0..36 {
        let image = media_record(&tenant.workspace, MediaKind::Image, MediaStatus::Valid);
        stores.media.create_media(&image).await.unwrap();
        tenant.images.push(image.id);
    }
    tenant
}

/// A workspace and its key; `account` and `video` name nothing stored until [`seed_tenant`] fills them.
async fn seed_workspace(stores: &Stores, name: &str) -> Tenant {
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_at: start(),
    };
    stores.workspaces.create_workspace(&workspace).await.unwrap();
    let key = ApiKey::generate_secret();
    stores
        .workspaces
        .put_api_key(&ApiKey {
            hash: ApiKey::hash_secret(&key),
            workspace_id: workspace.id.clone(),
            created_at: start(),
            revoked: false,
        })
        .await
        .unwrap();
    Tenant {
        workspace: workspace.id,
        key,
        account: AccountId::new(),
        video: MediaId::new(),
        images: Vec::new(),
    }
}

fn tiktok_config(base_url: &str, client_key: &str) -> TikTokConfig {
    TikTokConfig {
        api_base_url: base_url.to_owned(),
        auth_base_url: base_url.to_owned(),
        client_key: client_key.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        redirect_uri: REDIRECT_URI.to_owned(),
        app_audited: true,
        timeouts: TikTokTimeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(3),
            upload_chunk: Duration::from_secs(10),
        },
        upload_hosts: UploadHosts::host_of(base_url).expect("a base URL with a host"),
    }
}

/// What a browser does at TikTok's authorize page: returns where TikTok redirects it.
pub async fn follow_authorize(url: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("builds");
    let page = browser.get(url).send().await.expect("the authorize page answers");
    assert_eq!(page.status(), 302, "the sandbox approves at once");
    page.headers()["location"].to_str().expect("ascii").to_owned()
}

/// The path and query of a redirect to [`REDIRECT_URI`], to replay on the router.
pub fn callback_path(location: &str) -> String {
    let url = url::Url::parse(location).expect("a URL");
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// Which call of [`AccountsFailingOnce`] fails.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FailingCall {
    Create,
    FindByOpenId,
}

/// Accounts whose next `failing` call fails once `armed` is set, as an unavailable store would (the flag is shared
/// so that a test arms it after the app's own setup); everything else goes through.
pub struct AccountsFailingOnce {
    inner: Arc<dyn AccountRepo>,
    failing: FailingCall,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl AccountsFailingOnce {
    pub fn wrap(
        inner: Arc<dyn AccountRepo>,
        failing: FailingCall,
        armed: Arc<std::sync::atomic::AtomicBool>,
    ) -> Arc<dyn AccountRepo> {
        Arc::new(Self { inner, failing, armed })
    }

    fn fails(&self, call: FailingCall) -> StoreResult<()> {
        if call == self.failing && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is down for this call".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl AccountRepo for AccountsFailingOnce {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        self.fails(FailingCall::Create)?;
        self.inner.create_account(account).await
    }
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        self.inner.get_account(id).await
    }
    async fn update_account(&self, account: &Account, expected_version: u64) -> StoreResult<()> {
        self.inner.update_account(account, expected_version).await
    }
    async fn list_accounts(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Account>> {
        self.inner.list_accounts(workspace).await
    }
    async fn find_account_by_open_id(&self, workspace: &WorkspaceId, open_id: &str) -> StoreResult<Option<Account>> {
        self.inner.find_account_by_open_id(workspace, open_id).await
    }
    async fn find_accounts_by_open_id(&self, open_id: &str) -> StoreResult<Vec<Account>> {
        self.fails(FailingCall::FindByOpenId)?;
        self.inner.find_accounts_by_open_id(open_id).await
    }
}
