//! The publisher on one machine against the TikTok sandbox: SQLite on a file, media in a folder served over HTTP
//! (so the sandbox really pulls it), the in-process bus and the publisher's in-process loop, with helpers to connect
//! sandbox accounts, add validated media and schedule posts.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration as StdDuration,
};

use anyhow::Context;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
    Router,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use publisher::{PublisherDeps, PublisherSettings};
use sha2::{Digest, Sha256};
use shared::{
    accounts::TokenService,
    adapters::{
        local_blobs::LocalBlobStore, local_events::LocalEventSink, local_timer::LocalTimer, sqlite::SqliteStore,
    },
    domain::{
        Account, Finding, Media, MediaFacts, MediaKind, MediaStatus, MediaVerdict, Post, PostOptions, PostStatus,
        PostType, SealedTokens,
    },
    events::Event,
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    ports::{BlobStore, EventError, EventSink, Stores, Timer},
    tiktok::{SecretString, TikTokClient, TikTokConfig, TikTokTimeouts, TokenBinding, TokenCipher, UploadHosts},
    Clock, SystemClock,
};
use tiktok_sandbox::{AccountSpec, SandboxClock, SandboxConfig, SandboxHandle};
use tokio::{sync::watch, task::JoinHandle};

/// The runner's visibility timeout: a batch not acknowledged within it is delivered again.
const REDELIVER_AFTER: StdDuration = StdDuration::from_secs(30);

pub struct Options {
    pub settings: PublisherSettings,
    pub sandbox: tiktok_sandbox::Settings,
    /// Serve media at a verified prefix so that videos go by PULL_FROM_URL (photos always do).
    pub pull_videos: bool,
    pub timeouts: TikTokTimeouts,
    pub tick: StdDuration,
    /// Run the dispatcher and the timer's workers; off when a test drives `handle_due` itself.
    pub run_loop: bool,
    /// The first this-many event deliveries fail, as an unavailable bus would.
    pub refuse_events: usize,
    /// The backend's and TikTok's time: the wall clock, or tokio's virtual one in the cloud model.
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            settings: PublisherSettings {
                // Every tick arms each post due within the window again, so window / tick is the number of times a
                // post is armed (two in AWS): three here, and no later than 1.5 s before it is due.
                dispatch_window: chrono::Duration::milliseconds(1_500),
                first_poll_after: chrono::Duration::milliseconds(500),
                max_poll_interval: chrono::Duration::seconds(2),
                ..PublisherSettings::default()
            },
            sandbox: tiktok_sandbox::Settings {
                processing_delay_ms: 200,
                ..Default::default()
            },
            pull_videos: false,
            timeouts: TikTokTimeouts {
                connect: StdDuration::from_secs(2),
                request: StdDuration::from_secs(3),
                upload_chunk: StdDuration::from_secs(30),
            },
            tick: StdDuration::from_millis(500),
            run_loop: true,
            refuse_events: 0,
            clock: Arc::new(SystemClock),
        }
    }
}

pub struct Publishing {
    pub sandbox: SandboxHandle,
    pub bus: Arc<LocalEventSink>,
    pub timer: Arc<LocalTimer>,
    tick: StdDuration,
    pub stores: Stores,
    pub blobs: Arc<LocalBlobStore>,
    pub deps: Arc<PublisherDeps>,
    pub workspace: WorkspaceId,
    pub cipher: Arc<TokenCipher>,
    pub events_file: PathBuf,
    /// Where the media route serves keys (`<media_base>/<key>`): the verified prefix TikTok pulls from.
    pub media_base: String,
    /// Every GET of the media route (TikTok's pulls): the key asked for and the status answered.
    served: Arc<Mutex<Vec<(String, StatusCode)>>>,
    parts: DepsParts,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Publishing {
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("postato.sqlite3"))?;
        let stores = Stores::from_adapter(Arc::new(store));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let media_base = format!("http://{}/media", listener.local_addr()?);
        let blobs = Arc::new(LocalBlobStore::new(
            dir.path().join("media"),
            media_base.clone(),
            [3; 32],
        ));
        let served = Arc::new(Mutex::new(Vec::new()));
        let media_server = tokio::spawn({
            let app = Router::new()
                .route("/media/{*key}", get(serve_media))
                .with_state(MediaServer {
                    blobs: blobs.clone(),
                    served: served.clone(),
                });
            async move {
                let _stopped = axum::serve(listener, app).await;
            }
        });

        let mut sandbox_settings = options.sandbox;
        sandbox_settings.verified_url_prefixes = vec![format!("{media_base}/")];
        let sandbox_clock = options.clock.clone();
        let sandbox = tiktok_sandbox::spawn(SandboxConfig {
            settings: sandbox_settings.clone(),
            clock: SandboxClock::new(move || sandbox_clock.now()),
            ..Default::default()
        })
        .await
        .context("sandbox")?;
        let tiktok = TikTokConfig {
            api_base_url: sandbox.base_url().to_owned(),
            auth_base_url: sandbox.base_url().to_owned(),
            client_key: sandbox_settings.client_key.clone(),
            client_secret: SecretString::from(sandbox_settings.client_secret.clone()),
            redirect_uri: "http://127.0.0.1/callback".into(),
            app_audited: sandbox_settings.app_audited,
            timeouts: options.timeouts,
            upload_hosts: UploadHosts::host_of(sandbox.base_url()).expect("the sandbox has a host"),
        };
        let events_file = dir.path().join("events.jsonl");
        let bus = Arc::new(LocalEventSink::new(Some(events_file.clone())));
        let cipher = Arc::new(TokenCipher::new(&[9; 32]));
        let mut settings = options.settings;
        if options.pull_videos {
            settings.media_public_base_url = Some(media_base.clone());
        } else {
            settings.media_public_base_url = None;
        }
        let events: Arc<dyn EventSink> = Arc::new(Flaky {
            inner: bus.clone(),
            refuse: AtomicUsize::new(options.refuse_events),
        });
        let timer = Arc::new(LocalTimer::new(REDELIVER_AFTER));
        let parts = DepsParts {
            stores: stores.clone(),
            blobs: blobs.clone(),
            bus: bus.clone(),
            events,
            clock: options.clock.clone(),
            tiktok: TikTokClient::with_clock(tiktok, options.clock)?,
            cipher: cipher.clone(),
        };
        let deps = parts.build(settings, timer.clone());
        let (stop, stopping) = watch::channel(false);
        let mut tasks = vec![media_server];
        if options.run_loop {
            tasks.push(tokio::spawn(publisher::in_process::run(
                deps.clone(),
                timer.clone(),
                options.tick,
                stopping,
            )));
        }
        Ok(Self {
            sandbox,
            bus,
            timer,
            tick: options.tick,
            stores,
            blobs,
            deps,
            workspace: WorkspaceId::new(),
            cipher,
            events_file,
            media_base,
            served,
            parts,
            stop,
            tasks,
            _dir: dir,
        })
    }

    /// Publisher dependencies as a new process builds them (its own token and creator_info caches, `settings`,
    /// `timer`), on the same store, media, bus and TikTok: one per Lambda execution environment in the cloud model.
    pub fn fresh_deps(&self, settings: PublisherSettings, timer: Arc<dyn Timer>) -> Arc<PublisherDeps> {
        self.parts.build(settings, timer)
    }

    /// Another dispatcher with its own workers on the same timer and store, as concurrent Lambdas would run: both
    /// ticks arm every due post, so each is delivered twice, to whichever worker receives it first.
    pub fn start_second_publisher(&mut self) {
        let stopping = self.stop.subscribe();
        let run = publisher::in_process::run(self.deps.clone(), self.timer.clone(), self.tick, stopping);
        self.tasks.push(tokio::spawn(run));
    }

    /// The same publisher reading its time from `clock`: to act as it would a day later, say.
    pub fn deps_with_clock(&self, clock: Arc<dyn shared::Clock>) -> PublisherDeps {
        let deps = &self.deps;
        let tokens = TokenService::new(
            &self.stores,
            deps.tokens.client().clone(),
            self.cipher.clone(),
            deps.events.clone(),
            clock.clone(),
        );
        PublisherDeps::new(
            self.stores.clone(),
            deps.blobs.clone(),
            deps.events.clone(),
            clock,
            tokens,
            deps.settings.clone(),
            deps.timer.clone(),
        )
    }

    /// A sandbox creator connected to the workspace with sealed tokens, as the OAuth callback stores them.
    pub async fn connect(&self, spec: AccountSpec) -> anyhow::Result<AccountId> {
        let username = spec.username.clone();
        let open_id = self.sandbox.create_account(spec);
        let issued = self.sandbox.issue_tokens(&open_id, None).context("tokens")?;
        let now = self.deps.clock.now();
        let blank = Account::new_connected(self.workspace.clone(), open_id, now);
        let tokens = SealedTokens {
            access_token: self.cipher.seal(
                &SecretString::from(issued.access_token.clone()),
                &TokenBinding::access(&blank.id),
            )?,
            access_expires_at: now + chrono::Duration::seconds(issued.expires_in),
            refresh_token: self.cipher.seal(
                &SecretString::from(issued.refresh_token.clone()),
                &TokenBinding::refresh(&blank.id),
            )?,
            refresh_expires_at: now + chrono::Duration::seconds(issued.refresh_expires_in),
        };
        let account = Account {
            display_name: "Sandbox creator".into(),
            username: Some(username).filter(|u| !u.is_empty()),
            scopes: issued.scope.split(',').map(str::to_owned).collect(),
            tokens: Some(tokens),
            terms_accepted_at: Some(now),
            ..blank
        };
        self.stores.accounts.create_account(&account).await?;
        Ok(account.id)
    }

    /// A validated MP4 of `size` bytes whose content is unique (TikTok flags the same bytes twice as spam).
    pub async fn video(&self, size: usize, duration_ms: u64) -> anyhow::Result<MediaId> {
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2");
        bytes.extend_from_slice(ulid::Ulid::new().to_string().as_bytes());
        bytes.resize(size.max(bytes.len()), 0x5a);
        let facts = MediaFacts {
            container: Some("mp4".into()),
            size_bytes: size as u64,
            duration_ms: Some(duration_ms),
            width: Some(1080),
            height: Some(1920),
            frame_rate: Some(30.0),
            video_codec: Some("h264".into()),
            audio_codec: Some("aac".into()),
            ..Default::default()
        };
        self.media(MediaKind::Video, "video/mp4", bytes, facts).await
    }

    pub async fn image(&self) -> anyhow::Result<MediaId> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend_from_slice(ulid::Ulid::new().to_string().as_bytes());
        bytes.resize(4096, 0x11);
        let facts = MediaFacts {
            container: Some("jpeg".into()),
            format: Some("jpeg".into()),
            size_bytes: 4096,
            width: Some(1080),
            height: Some(1920),
            ..Default::default()
        };
        self.media(MediaKind::Image, "image/jpeg", bytes, facts).await
    }

    async fn media(
        &self,
        kind: MediaKind,
        content_type: &str,
        bytes: Vec<u8>,
        facts: MediaFacts,
    ) -> anyhow::Result<MediaId> {
        let id = MediaId::new();
        let key = Media::object_key_for(&self.workspace, &id);
        let fingerprint = hex::encode(Sha256::digest(&bytes));
        self.blobs.put(&key, Bytes::from(bytes), content_type).await?;
        let etag = self.blobs.head(&key).await?.etag;
        let now = self.deps.clock.now();
        let media = Media {
            id: id.clone(),
            workspace_id: self.workspace.clone(),
            kind,
            content_type: content_type.into(),
            declared_size: facts.size_bytes,
            file_name: "clip".into(),
            object_key: key,
            status: MediaStatus::Valid,
            verdict: Some(MediaVerdict {
                accepted: true,
                detected_kind: kind.as_str().into(),
                violations: Vec::<Finding>::new(),
                warnings: Vec::new(),
                facts,
                fingerprint: Some(fingerprint),
                rendition_key: None,
                rendition: None,
                info: Vec::new(),
                etag: Some(etag),
                validated_at: now,
            }),
            created_at: now,
            updated_at: now,
            version: 1,
            waiting_posts: Vec::new(),
        };
        self.stores.media.create_media(&media).await?;
        Ok(id)
    }

    /// A scheduled post, stored as the intake API stores one.
    pub async fn schedule(
        &self,
        account: &AccountId,
        post_type: PostType,
        media: Vec<MediaId>,
        at: DateTime<Utc>,
        options: PostOptions,
    ) -> anyhow::Result<PostId> {
        let now = self.deps.clock.now();
        let id = PostId::new();
        let post = Post {
            // The post id in the caption lets tests find each post among TikTok's publishes.
            content: format!("Launch day #behindthescenes {id}"),
            id,
            workspace_id: self.workspace.clone(),
            account_id: account.clone(),
            status: PostStatus::Scheduled,
            post_type,
            media,
            options,
            scheduled_at: Some(at),
            warnings: Vec::new(),
            publish: Default::default(),
            failure: None,
            outbox: Vec::new(),
            audit: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.stores.posts.create_post(&post, None).await?;
        Ok(post.id)
    }

    pub async fn post(&self, id: &PostId) -> anyhow::Result<Post> {
        self.stores.posts.get_post(id).await?.context("post vanished")
    }

    /// Changes the stored post as another writer would (one compare-and-set), for arranging a test.
    pub async fn edit_post(&self, id: &PostId, change: impl FnOnce(&mut Post)) -> anyhow::Result<()> {
        let current = self.post(id).await?;
        let mut next = current.clone();
        change(&mut next);
        next.version = current.version + 1;
        Ok(self.stores.posts.update_post(&next, current.version).await?)
    }

    /// [`Self::edit_post`] for a media record.
    pub async fn edit_media(&self, id: &MediaId, change: impl FnOnce(&mut Media)) -> anyhow::Result<()> {
        let current = self.stores.media.get_media(id).await?.context("media vanished")?;
        let mut next = current.clone();
        change(&mut next);
        next.version = current.version + 1;
        Ok(self.stores.media.update_media(&next, current.version).await?)
    }

    /// [`Self::edit_post`] for an account.
    pub async fn edit_account(&self, id: &AccountId, change: impl FnOnce(&mut Account)) -> anyhow::Result<()> {
        let current = self
            .stores
            .accounts
            .get_account(id)
            .await?
            .context("account vanished")?;
        let mut next = current.clone();
        change(&mut next);
        next.version = current.version + 1;
        Ok(self.stores.accounts.update_account(&next, current.version).await?)
    }

    /// The media route's log: each key asked for, with the status answered.
    pub fn served(&self) -> Vec<(String, StatusCode)> {
        self.served.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits until the post is in one of `statuses` (and its outbox delivered), or fails after `timeout`.
    pub async fn wait_for(&self, id: &PostId, statuses: &[PostStatus], timeout: StdDuration) -> anyhow::Result<Post> {
        self.wait_until(id, |post| statuses.contains(&post.status), timeout)
            .await
    }

    /// Waits until the post satisfies `done` with its events delivered.
    pub async fn wait_until(
        &self,
        id: &PostId,
        done: impl Fn(&Post) -> bool,
        timeout: StdDuration,
    ) -> anyhow::Result<Post> {
        let started = tokio::time::Instant::now();
        loop {
            let post = self.post(id).await?;
            if done(&post) && post.outbox.is_empty() {
                return Ok(post);
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "post {id} is {} after {timeout:?}: {:?}",
                    post.status.as_str(),
                    post.failure
                );
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }

    /// Every event written to the bus's JSON-lines file, in order.
    pub fn events(&self) -> anyhow::Result<Vec<Event>> {
        let text = std::fs::read_to_string(&self.events_file).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).context("event line"))
            .collect()
    }

    /// The event types about one post, in order.
    pub fn post_events(&self, id: &PostId) -> anyhow::Result<Vec<String>> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e.post_id.as_ref() == Some(id))
            .map(|e| e.event_type.as_str().to_owned())
            .collect())
    }

    pub async fn stop(self) {
        let _sent = self.stop.send(true);
        for task in self.tasks {
            task.abort();
            let _ended = task.await;
        }
        self.sandbox.shutdown().await;
    }
}

/// What every set of publisher dependencies shares: one store, media, bus, clock and TikTok client.
#[derive(Clone)]
struct DepsParts {
    stores: Stores,
    blobs: Arc<LocalBlobStore>,
    bus: Arc<LocalEventSink>,
    /// The bus behind the flaky wrapper; the token service announces on the bus itself, as it always has here.
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    /// One client for every set of dependencies: its connection pool is shared, which changes nothing on loopback
    /// and keeps the cloud model's thousands of environments within the process's file descriptors.
    tiktok: TikTokClient,
    cipher: Arc<TokenCipher>,
}

impl DepsParts {
    fn build(&self, settings: PublisherSettings, timer: Arc<dyn Timer>) -> Arc<PublisherDeps> {
        let tokens = TokenService::new(
            &self.stores,
            self.tiktok.clone(),
            self.cipher.clone(),
            self.bus.clone(),
            self.clock.clone(),
        );
        Arc::new(PublisherDeps::new(
            self.stores.clone(),
            self.blobs.clone(),
            self.events.clone(),
            self.clock.clone(),
            tokens,
            settings,
            timer,
        ))
    }
}

/// The stand-in for CloudFront: public copies only, every request logged.
#[derive(Clone)]
struct MediaServer {
    blobs: Arc<LocalBlobStore>,
    served: Arc<Mutex<Vec<(String, StatusCode)>>>,
}

async fn serve_media(State(server): State<MediaServer>, Path(key): Path<String>) -> impl IntoResponse {
    let found = match server.blobs.public_object_path(&key) {
        Some(path) => tokio::fs::read(path).await.ok(),
        None => None,
    };
    let status = if found.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    if let Ok(mut served) = server.served.lock() {
        served.push((key, status));
    }
    (status, found.unwrap_or_default()).into_response()
}

/// The bus, refusing the first few deliveries.
struct Flaky {
    inner: Arc<LocalEventSink>,
    refuse: AtomicUsize,
}

#[async_trait::async_trait]
impl EventSink for Flaky {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EventError::NotDelivered {
                failed: events.iter().map(|e| e.id.to_string()).collect(),
            });
        }
        self.inner.publish(events).await
    }
}

/// `handle_due` as the timer would run it for one post: an init that hands its upload to a delivery of its own is
/// followed by that delivery at once, so that a test driving the publisher by hand sees the upload happen.
pub async fn handle_through_upload(
    deps: &PublisherDeps,
    post_id: &PostId,
    deadline: DateTime<Utc>,
) -> Result<publisher::Handled, publisher::PublisherError> {
    loop {
        match publisher::handle_due(deps, post_id, deadline).await? {
            publisher::Handled::Yielded { resume_at } if resume_at <= deps.clock.now() => continue,
            handled => return Ok(handled),
        }
    }
}
