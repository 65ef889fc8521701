//! The whole system on one machine: the intake API with the upload and media routes, the embedded (or AWS)
//! adapters, and TikTok (its sandbox unless a real app is configured), with a dev workspace whose TikTok account is
//! connected through the real OAuth flow.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::FutureExt;
use intake_api::{config::MediaJobs, AppState, Deps, IntakeSettings};
use media_validator::{handle_s3_event, import::ImportPolicy, probe::Budget, worker, ValidatorDeps};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use publisher::{PublisherDeps, PublisherSettings};
use shared::{
    accounts::TokenService,
    adapters::{
        aws::{AwsAdapters, AwsResources},
        local_blobs::LocalBlobStore,
        local_events::LocalEventSink,
        local_jobs::LocalMediaJobs,
        local_timer::LocalTimer,
        sqlite::SqliteStore,
    },
    domain::{Account, ApiKey, Workspace},
    events::Event,
    ids::{AccountId, WorkspaceId},
    ports::{BlobStore, EventError, EventSink, Stores},
    tiktok::{SecretString, TikTokClient, TokenCipher, TOKEN_KEY_VARIABLE},
    Clock, SystemClock,
};
use tiktok_sandbox::SandboxHandle;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    composer,
    config::{Backend, DevConfig},
    health,
    local_routes::{self, UploadHook},
    secrets::LocalSecrets,
    tiktok,
};

/// A delivery not acknowledged within this is delivered again (the runner's SQS visibility timeout): a batch whose
/// handling failed is looked at again soon, and no healthy batch runs this long.
const TIMER_REDELIVERY: std::time::Duration = std::time::Duration::from_secs(60);

pub const DEV_WORKSPACE: &str = "dev";

/// A running system. Dropping it does not stop it; call [`DevSystem::shutdown`].
pub struct DevSystem {
    pub base_url: String,
    pub api_key: String,
    pub workspace_id: WorkspaceId,
    /// The dev workspace's TikTok account. `None` only with a real TikTok app before anyone connected an account
    /// (that needs a person at TikTok's consent page: `POST /v1/accounts/tiktok/connect`, then the URL).
    pub account_id: Option<AccountId>,
    pub data_dir: PathBuf,
    pub stores: Stores,
    pub events_file: PathBuf,
    /// The TikTok sandbox the system talks to (its request log, faults, clock); `None` with a real TikTok app.
    pub sandbox: Option<SandboxHandle>,
    /// The TikTok settings in force, each with where it came from, for the banner (no secret values).
    pub tiktok_settings: Vec<(&'static str, String)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Adapters {
    stores: Stores,
    blobs: Arc<dyn BlobStore>,
    /// Present with the embedded backend: the upload and media routes serve it.
    local_blobs: Option<Arc<LocalBlobStore>>,
    events: Arc<dyn EventSink>,
}

/// Starts the system and returns once it is listening.
pub async fn start(config: DevConfig) -> anyhow::Result<DevSystem> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let secrets = LocalSecrets::load_or_create(&config.data_dir)?;
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (set POSTATO_HTTP_ADDR)", config.http_addr))?;
    let base_url = base_url(listener.local_addr()?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let events_file = config.data_dir.join("events.jsonl");
    let bus = Arc::new(LocalEventSink::new(Some(events_file.clone())));
    // A runner that cannot write its events would accept posts and never publish them: refuse to start instead.
    bus.check_writable()
        .await
        .with_context(|| format!("cannot write the events file {}", events_file.display()))?;
    let adapters = adapters(&config, &secrets, &base_url, bus.clone()).await?;

    let api_key = config
        .dev_api_key
        .clone()
        .unwrap_or_else(|| secrets.dev_api_key.clone());
    let workspace_id = seed_dev_workspace(&adapters.stores, &api_key, clock.now()).await?;

    let tiktok = tiktok::start(&config, &base_url).await?;
    let token_key = config
        .env
        .optional(TOKEN_KEY_VARIABLE)
        .unwrap_or_else(|| secrets.token_key.clone());
    let cipher = TokenCipher::from_base64_key(&SecretString::from(token_key))
        .with_context(|| format!("the token key ({TOKEN_KEY_VARIABLE} or tokenKey in secrets.json) is unusable"))?;
    let tokens = TokenService::new(
        &adapters.stores,
        TikTokClient::with_clock(tiktok.config.clone(), clock.clone())?,
        Arc::new(cipher),
        adapters.events.clone(),
        clock.clone(),
    );
    // The publisher as AWS runs it, with the in-process timer for the SQS queue: the dispatcher ticking and arming
    // wakeups, each batch of deliveries handled on its own task. Media goes by PULL_FROM_URL from the runner's own media route (a verified prefix in the sandbox) unless configured.
    let media_public_base_url = match config.env.optional_url("MEDIA_PUBLIC_BASE_URL")? {
        Some(url) => Some(url),
        None => adapters.local_blobs.as_ref().map(|_| format!("{base_url}/local/media")),
    };
    let timer = Arc::new(LocalTimer::new(TIMER_REDELIVERY));
    let publisher = Arc::new(PublisherDeps::new(
        adapters.stores.clone(),
        adapters.blobs.clone(),
        adapters.events.clone(),
        clock.clone(),
        tokens.clone(),
        PublisherSettings {
            media_public_base_url,
            // Ticks here are frequent: arming two of them ahead (plus the lead) is enough, and a longer window would
            // only arm every post once per tick.
            dispatch_window: chrono::Duration::from_std(config.dispatch_interval * 2)? + shared::timer::DEFAULT_LEAD,
            ..PublisherSettings::default()
        },
        timer.clone(),
    ));
    // The validator and the media worker run in-process when the media live in local files (uploads and URL imports
    // end there); the worker takes its jobs from the in-process queue that stands for SQS.
    let media_jobs = Arc::new(LocalMediaJobs::new(TIMER_REDELIVERY));
    let validator = adapters.local_blobs.as_ref().map(|_| {
        Arc::new(ValidatorDeps {
            media: adapters.stores.media.clone(),
            blobs: adapters.blobs.clone(),
            events: adapters.events.clone(),
            timer: timer.clone(),
            clock: clock.clone(),
            budget: Budget::default(),
            // No time limit here: every transport stream is remuxed while validating.
            remux_max_bytes: u64::MAX,
            jobs: media_jobs.clone(),
        })
    });
    // `POSTATO_IMPORT_ALLOW_LOOPBACK_HTTP=1` lets URL imports use plain http to loopback: for tests against local
    // servers only; never set in AWS.
    let import_policy = ImportPolicy {
        allow_loopback_http: config.env.flag("POSTATO_IMPORT_ALLOW_LOOPBACK_HTTP", false)?,
        ..ImportPolicy::default()
    };
    let state = AppState::new(Deps {
        stores: adapters.stores.clone(),
        blobs: adapters.blobs.clone(),
        events: adapters.events.clone(),
        timer: timer.clone(),
        clock: clock.clone(),
        tokens,
        settings: IntakeSettings {
            app_audited: config.app_audited,
            connect_success_url: config.env.optional_url("CONNECT_SUCCESS_URL")?,
            media_jobs: validator.is_some().then(|| MediaJobs(media_jobs.clone())),
            ..IntakeSettings::default()
        },
    });
    // The composer page, served here only: the intake Lambda serves the API alone.
    let mut app = intake_api::router(state)
        .merge(composer::router(api_key.clone()))
        .merge(health::router(bus.clone()));
    let validator_for_jobs = validator.clone();
    if let (Some(local_blobs), Some(validator)) = (&adapters.local_blobs, validator) {
        app = app.merge(local_routes::router(
            local_blobs.clone(),
            clock.clone(),
            validate_uploads(validator),
        ));
    }

    let (shutdown, mut stopping) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(validator) = validator_for_jobs {
        tasks.push(tokio::spawn(worker::run_in_process(
            validator,
            import_policy,
            media_jobs,
            shutdown.subscribe(),
        )));
    }
    let publishing = tokio::spawn(publisher::in_process::run(
        publisher,
        timer,
        config.dispatch_interval,
        shutdown.subscribe(),
    ));
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _closed = stopping.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });

    tasks.extend([server, publishing]);
    let mut system = DevSystem {
        base_url,
        api_key,
        workspace_id,
        account_id: None,
        events_file,
        data_dir: config.data_dir,
        stores: adapters.stores,
        sandbox: tiktok.sandbox,
        tiktok_settings: tiktok.shown,
        shutdown,
        tasks,
    };
    match dev_account(&system, config.app_audited).await {
        Ok(account_id) => system.account_id = account_id,
        Err(error) => {
            system.shutdown().await;
            return Err(error);
        }
    }
    tracing::info!(
        base_url = %system.base_url,
        tiktok = %tiktok.config.api_base_url,
        redirect_uri = %tiktok.config.redirect_uri,
        "Postato for TikTok is running"
    );
    Ok(system)
}

/// With the sandbox, the dev creator connected through OAuth (every start, as the sandbox starts empty); with a
/// real app, whichever account someone connected to the dev workspace.
async fn dev_account(system: &DevSystem, app_audited: bool) -> anyhow::Result<Option<AccountId>> {
    match &system.sandbox {
        Some(sandbox) => {
            sandbox.create_account(tiktok::dev_creator(app_audited));
            let id = tiktok::connect_dev_account(sandbox, &system.base_url, &system.api_key)
                .await
                .context("cannot connect the dev account to the TikTok sandbox")?;
            Ok(Some(id))
        }
        None => {
            let accounts = system.stores.accounts.list_accounts(&system.workspace_id).await?;
            Ok(accounts
                .into_iter()
                .find(Account::is_connected)
                .map(|account| account.id))
        }
    }
}

impl DevSystem {
    /// Stops accepting requests, lets running ones finish, and waits for every task (the sandbox's too).
    pub async fn shutdown(self) {
        let _receivers_gone = self.shutdown.send(true);
        for task in self.tasks {
            let _finished = task.await;
        }
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

async fn adapters(
    config: &DevConfig,
    secrets: &LocalSecrets,
    base_url: &str,
    bus: Arc<LocalEventSink>,
) -> anyhow::Result<Adapters> {
    match config.backend {
        Backend::Embedded => {
            let store = SqliteStore::open(&config.data_dir.join("postato.sqlite3"))
                .context("cannot open the SQLite store in the data dir")?;
            let local_blobs = Arc::new(LocalBlobStore::new(
                config.data_dir.join("media"),
                base_url.to_owned(),
                secrets.upload_signing_key()?,
            ));
            Ok(Adapters {
                stores: Stores::from_adapter(Arc::new(store)),
                blobs: local_blobs.clone(),
                local_blobs: Some(local_blobs),
                events: bus,
            })
        }
        Backend::Aws => {
            let resources = AwsResources::from_env(&config.env)?;
            let aws = AwsAdapters::connect(&resources, &config.env).await;
            if config.create_aws_resources {
                create_aws_resources(&aws, &resources).await?;
            }
            Ok(Adapters {
                stores: aws.stores,
                blobs: aws.blobs,
                local_blobs: None,
                // EventBridge for the world, and the local bus so that the runner's events file still shows them.
                events: Arc::new(FanOut(vec![aws.events, bus])),
            })
        }
    }
}

async fn create_aws_resources(aws: &AwsAdapters, resources: &AwsResources) -> anyhow::Result<()> {
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config);
    if dynamo
        .describe_table()
        .table_name(&resources.table_name)
        .send()
        .await
        .is_err()
    {
        shared::adapters::dynamo::create_table(&dynamo, &resources.table_name).await?;
    }
    let s3 = shared::adapters::s3::s3_client(&aws.sdk_config, true);
    if s3.head_bucket().bucket(&resources.media_bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(&resources.media_bucket)
            .send()
            .await
            .context("cannot create the bucket")?;
    }
    let events = aws_sdk_eventbridge::Client::new(&aws.sdk_config);
    if events
        .describe_event_bus()
        .name(&resources.event_bus_name)
        .send()
        .await
        .is_err()
    {
        events
            .create_event_bus()
            .name(&resources.event_bus_name)
            .send()
            .await
            .context("cannot create the bus")?;
    }
    Ok(())
}

/// Runs the validator on every stored upload with the event S3 would send, as its ObjectCreated notification makes
/// the Lambda do in AWS.
fn validate_uploads(validator: Arc<ValidatorDeps>) -> UploadHook {
    Arc::new(move |key: String| {
        let validator = validator.clone();
        async move {
            // The event types are non-exhaustive: built by assignment.
            let mut record = S3EventRecord::default();
            record.event_source = Some("aws:s3".into());
            record.event_name = Some("ObjectCreated:Put".into());
            // Only carried along for the logs, as S3 stamps its own; the validator decides with its `Clock`.
            record.event_time = chrono::Utc::now();
            record.s3.bucket.name = Some("local".into());
            record.s3.object.key = Some(utf8_percent_encode(&key, NON_ALPHANUMERIC).to_string());
            let mut event = S3Event::default();
            event.records.push(record);
            let result = handle_s3_event(&validator, event).await;
            if let Err(error) = result {
                tracing::error!(key, error = %error, "validation failed; upload the file again to retry");
            }
        }
        .boxed()
    })
}

/// Publishes to several sinks; fails if any fails, so nothing is lost silently.
struct FanOut(Vec<Arc<dyn EventSink>>);

#[async_trait::async_trait]
impl EventSink for FanOut {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        for sink in &self.0 {
            sink.publish(events).await?;
        }
        Ok(())
    }
}

/// Creates the dev workspace and its key at first start; later starts find them again. Its TikTok account is
/// connected through OAuth once the API is listening.
async fn seed_dev_workspace(
    stores: &Stores,
    api_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<WorkspaceId> {
    let workspace = find_or_create_workspace(stores, DEV_WORKSPACE, now).await?;
    stores
        .workspaces
        .put_api_key(&ApiKey {
            hash: ApiKey::hash_secret(api_key),
            workspace_id: workspace.id.clone(),
            created_at: now,
            revoked: false,
        })
        .await?;
    Ok(workspace.id)
}

async fn find_or_create_workspace(
    stores: &Stores,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Workspace> {
    if let Some(workspace) = stores.workspaces.find_workspace_by_name(name).await? {
        return Ok(workspace);
    }
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_at: now,
    };
    stores.workspaces.create_workspace(&workspace).await?;
    Ok(workspace)
}

/// `keys create --workspace NAME`: a new key for that workspace (created when new). Returns the key.
pub async fn create_key(config: &DevConfig, workspace_name: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(&config.data_dir)?;
    let secrets = LocalSecrets::load_or_create(&config.data_dir)?;
    let adapters = adapters(config, &secrets, "http://unused", Arc::new(LocalEventSink::new(None))).await?;
    let now = SystemClock.now();
    let workspace = find_or_create_workspace(&adapters.stores, workspace_name, now).await?;
    let key = ApiKey::generate_secret();
    adapters
        .stores
        .workspaces
        .put_api_key(&ApiKey {
            hash: ApiKey::hash_secret(&key),
            workspace_id: workspace.id,
            created_at: now,
            revoked: false,
        })
        .await?;
    Ok(key)
}
