//! A micro-benchmark of the storage calls behind one POST /v1/posts on the SQLite store (file, WAL): key lookup,
//! account, media, idempotency check, then the post and its idempotency record in one transaction.
//! Ignored by default; run with `cargo test -p postato-tests --test sqlite_hot_path -- --ignored --nocapture`.

use std::{sync::Arc, time::Instant};

use chrono::Duration;
use postato_tests::fixtures;
use shared::{
    adapters::sqlite::SqliteStore,
    ids::{AccountId, MediaId, WorkspaceId},
    ports::{IdempotencyRecord, Stores},
};

const REQUESTS_PER_TASK: usize = 2_000;

/// The records every request reads: what the API key, the payload's account and media point at.
struct Seeded {
    workspace: WorkspaceId,
    key_hash: String,
    account: AccountId,
    media: MediaId,
}

async fn one_request(stores: &Stores, seeded: &Seeded) -> anyhow::Result<()> {
    let now = fixtures::now_ms();
    stores.workspaces.find_api_key(&seeded.key_hash).await?;
    stores.accounts.get_account(&seeded.account).await?;
    stores.media.get_media(&seeded.media).await?;
    let key = ulid::Ulid::new().to_string();
    stores.idempotency.get_idempotency(&seeded.workspace, &key, now).await?;
    let post = fixtures::post(&seeded.workspace, &seeded.account, now);
    let record = IdempotencyRecord {
        workspace_id: seeded.workspace.clone(),
        key,
        request_hash: "0".repeat(64),
        status: 201,
        body: serde_json::to_string(&post)?,
        expires_at: now + Duration::hours(24),
    };
    stores.posts.create_post(&post, Some(&record)).await?;
    Ok(())
}

fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn sqlite_store_hot_path_latency() -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open(&folder.path().join("bench.db"))?));
    let now = fixtures::now_ms();
    let workspace = fixtures::workspace("bench", now);
    stores.workspaces.create_workspace(&workspace).await?;
    let key = fixtures::api_key(&workspace.id, now);
    stores.workspaces.put_api_key(&key).await?;
    let account = fixtures::account(&workspace.id, "open-bench", now);
    stores.accounts.create_account(&account).await?;
    let media = fixtures::media(&workspace.id, now);
    stores.media.create_media(&media).await?;
    let seeded = Arc::new(Seeded {
        workspace: workspace.id,
        key_hash: key.hash,
        account: account.id,
        media: media.id,
    });

    for concurrency in [1usize, 8] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (stores, seeded) = (stores.clone(), seeded.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(REQUESTS_PER_TASK);
                for _ in 0..REQUESTS_PER_TASK {
                    let start = Instant::now();
                    one_request(&stores, &seeded).await?;
                    latencies.push(start.elapsed());
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "concurrency {concurrency}: {} requests in {:.2?}: {:.0} req/s, p50 {:.0?}, p99 {:.0?}, max {:.0?}",
            latencies.len(),
            elapsed,
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
        );
    }
    Ok(())
}
