//! Every port contract against the embedded adapters: SQLite (in memory and on a file), the local blob folder, and
//! the in-process event bus with its JSON-lines journal, the in-process timer and the in-process media job queue.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use postato_tests::contracts::{
    blobs::{blob_store_contract, LocalRouteUploader},
    events::{event_sink_contract, EventInbox},
    media_jobs::media_jobs_contract,
    store,
    timer::timer_contract,
};
use shared::{
    adapters::{local_blobs::LocalBlobStore, local_events::LocalEventSink, sqlite::SqliteStore},
    events::Event,
    ports::Stores,
};
use tokio::sync::{mpsc, Mutex};

/// A store and whatever must outlive it (the temporary folder of a file database).
struct Fixture {
    stores: Stores,
    _folder: Option<tempfile::TempDir>,
}

fn in_memory() -> anyhow::Result<Fixture> {
    Ok(Fixture {
        stores: Stores::from_adapter(Arc::new(SqliteStore::in_memory()?)),
        _folder: None,
    })
}

fn on_file() -> anyhow::Result<Fixture> {
    let folder = tempfile::tempdir()?;
    let store = SqliteStore::open(&folder.path().join("nested").join("postato.db"))?;
    Ok(Fixture {
        stores: Stores::from_adapter(Arc::new(store)),
        _folder: Some(folder),
    })
}

macro_rules! store_contracts {
    ($adapter:ident, $fixture:expr) => {
        mod $adapter {
            use super::*;

            store_contracts!(@suites $fixture;
                post_crud_contract, idempotency_contract, post_listing_contract, due_index_contract,
                fingerprint_contract, media_repo_contract, media_batch_read_contract, account_repo_contract, workspace_repo_contract,
                oauth_state_repo_contract, publish_id_lookup_contract, account_user_lookup_contract,
                dispatch_watermark_contract, webhook_delivery_contract);
        }
    };
    (@suites $fixture:expr; $($suite:ident),+) => {
        $(
            #[tokio::test]
            async fn $suite() -> anyhow::Result<()> {
                let fixture = $fixture?;
                store::$suite(&fixture.stores).await
            }
        )+
    };
}

store_contracts!(sqlite_in_memory, in_memory());
store_contracts!(sqlite_file, on_file());

#[tokio::test]
async fn sqlite_file_keeps_records_across_reopening() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("postato.db");
    let workspace = postato_tests::fixtures::workspace("kept", postato_tests::fixtures::now_ms());
    {
        let store = SqliteStore::open(&path)?;
        shared::ports::WorkspaceRepo::create_workspace(&store, &workspace).await?;
    }
    let reopened = SqliteStore::open(&path)?;
    assert_eq!(
        shared::ports::WorkspaceRepo::find_workspace_by_name(&reopened, "kept").await?,
        Some(workspace)
    );
    Ok(())
}

#[tokio::test]
async fn local_blob_store_contract() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let store = Arc::new(LocalBlobStore::new(
        folder.path().to_path_buf(),
        "http://127.0.0.1:8080".to_owned(),
        [42; 32],
    ));
    blob_store_contract(store.as_ref(), &LocalRouteUploader(store.clone())).await
}

struct SubscriberInbox(Mutex<mpsc::UnboundedReceiver<Event>>);

#[async_trait]
impl EventInbox for SubscriberInbox {
    async fn receive(&self, count: usize, within: Duration) -> anyhow::Result<Vec<Event>> {
        let mut receiver = self.0.lock().await;
        let mut received = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while received.len() < count {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(event)) => received.push(event),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(received)
    }
}

#[tokio::test]
async fn local_event_sink_contract() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let journal = folder.path().join("events").join("events.jsonl");
    let sink = LocalEventSink::new(Some(journal.clone()));
    let inbox = SubscriberInbox(Mutex::new(sink.subscribe()));

    let sent = event_sink_contract(&sink, &inbox).await?;

    let lines = std::fs::read_to_string(&journal)?;
    let journaled: Vec<Event> = lines.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(journaled, sent, "one JSON line per event, in order");
    Ok(())
}

#[tokio::test]
async fn local_timer_contract() -> anyhow::Result<()> {
    let redelivery = Duration::from_secs(1);
    timer_contract(&shared::adapters::local_timer::LocalTimer::new(redelivery), redelivery).await
}

#[tokio::test]
async fn local_media_jobs_contract() -> anyhow::Result<()> {
    let redelivery = Duration::from_secs(1);
    media_jobs_contract(
        &shared::adapters::local_jobs::LocalMediaJobs::new(redelivery),
        redelivery,
    )
    .await
}
