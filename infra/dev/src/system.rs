//! The whole system on one machine: the intake API with the upload and media routes, and the embedded (or AWS)
//! adapters, seeded with a dev workspace.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::FutureExt;
use intake_api::{AppState, Deps, IntakeSettings};
use media_validator::{handle_s3_event, probe::Budget, ValidatorDeps};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use shared::{
    adapters::{
        aws::{AwsAdapters, AwsResources},
        local_blobs::LocalBlobStore,
        local_events::LocalEventSink,
        sqlite::SqliteStore,
    },
    domain::{Account, AccountStatus, ApiKey, Workspace},
    events::Event,
    ids::{AccountId, WorkspaceId},
    ports::{BlobStore, EventError, EventSink, Stores},
    Clock, SystemClock,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    config::{Backend, DevConfig},
    local_routes::{self, UploadHook},
    secrets::LocalSecrets,
};

pub const DEV_WORKSPACE: &str = "dev";

/// A running system. Dropping it does not stop it; call [`DevSystem::shutdown`].
pub struct DevSystem {
    pub base_url: String,
    pub api_key: String,
    pub workspace_id: WorkspaceId,
    pub account_id: AccountId,
    pub data_dir: PathBuf,
    pub stores: Stores,
    pub events_file: PathBuf,
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
    let adapters = adapters(&config, &secrets, &base_url, bus.clone()).await?;

    let api_key = config
        .dev_api_key
        .clone()
        .unwrap_or_else(|| secrets.dev_api_key.clone());
    let (workspace_id, account_id) = seed_dev_workspace(&adapters.stores, &api_key, clock.now()).await?;

    let state = AppState::new(Deps {
        stores: adapters.stores.clone(),
        blobs: adapters.blobs.clone(),
        events: adapters.events.clone(),
        clock: clock.clone(),
        settings: IntakeSettings {
            app_audited: config.app_audited,
            ..IntakeSettings::default()
        },
    });
    let mut app = intake_api::router(state);
    if let Some(local_blobs) = &adapters.local_blobs {
        let validator = Arc::new(ValidatorDeps {
            media: adapters.stores.media.clone(),
            blobs: adapters.blobs.clone(),
            events: adapters.events.clone(),
            clock: clock.clone(),
            budget: Budget::default(),
        });
        app = app.merge(local_routes::router(
            local_blobs.clone(),
            clock.clone(),
            validate_uploads(validator),
        ));
    }

    let (shutdown, mut stopping) = watch::channel(false);
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _closed = stopping.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });

    Ok(DevSystem {
        base_url,
        api_key,
        workspace_id,
        account_id,
        events_file,
        data_dir: config.data_dir,
        stores: adapters.stores,
        shutdown,
        tasks: vec![server],
    })
}

impl DevSystem {
    /// Stops accepting requests, lets running ones finish, and waits for every task.
    pub async fn shutdown(self) {
        let _receivers_gone = self.shutdown.send(true);
        for task in self.tasks {
            let _finished = task.await;
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
                // EventBridge for the world, and the local bus so that this process still delivers `post.due`.
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

/// Creates the dev workspace, its key and its TikTok account at first start; later starts find them again.
async fn seed_dev_workspace(
    stores: &Stores,
    api_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(WorkspaceId, AccountId)> {
    let workspace = match stores.workspaces.find_workspace_by_name(DEV_WORKSPACE).await? {
        Some(workspace) => workspace,
        None => {
            let workspace = Workspace {
                id: WorkspaceId::new(),
                name: DEV_WORKSPACE.into(),
                created_at: now,
            };
            stores.workspaces.create_workspace(&workspace).await?;
            workspace
        }
    };
    stores
        .workspaces
        .put_api_key(&ApiKey {
            hash: ApiKey::hash_secret(api_key),
            workspace_id: workspace.id.clone(),
            created_at: now,
            revoked: false,
        })
        .await?;
    let accounts = stores.accounts.list_accounts(&workspace.id).await?;
    let account = match accounts.into_iter().find(Account::is_connected) {
        Some(account) => account,
        None => {
            let account = Account {
                id: AccountId::new(),
                workspace_id: workspace.id.clone(),
                open_id: "sandbox-dev-creator".into(),
                display_name: "Sandbox Creator".into(),
                username: Some("sandbox.creator".into()),
                avatar_url: None,
                scopes: vec!["user.info.basic".into(), "video.publish".into(), "video.upload".into()],
                status: AccountStatus::Connected,
                tokens: None,
                terms_accepted_at: Some(now),
                refresh_lock_until: None,
                rate_windows: Default::default(),
                connected_at: now,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            stores.accounts.create_account(&account).await?;
            account
        }
    };
    Ok((workspace.id, account.id))
}

/// `keys create --workspace NAME`: a new key for that workspace (created when new). Returns the key.
pub async fn create_key(config: &DevConfig, workspace_name: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(&config.data_dir)?;
    let secrets = LocalSecrets::load_or_create(&config.data_dir)?;
    let adapters = adapters(config, &secrets, "http://unused", Arc::new(LocalEventSink::new(None))).await?;
    let now = SystemClock.now();
    let workspace = match adapters
        .stores
        .workspaces
        .find_workspace_by_name(workspace_name)
        .await?
    {
        Some(workspace) => workspace,
        None => {
            let workspace = Workspace {
                id: WorkspaceId::new(),
                name: workspace_name.into(),
                created_at: now,
            };
            adapters.stores.workspaces.create_workspace(&workspace).await?;
            workspace
        }
    };
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
