//! `POST /v1/posts` in process: the router over the embedded adapters the local runner uses (SQLite file in WAL
//! mode, media folder, event bus writing JSON lines), called through `tower::ServiceExt::oneshot`.
//!
//! `cargo bench -p intake-api --bench create_post`
//!
//! Reports latency one request at a time and throughput with 16 in flight, beside `GET /v1/posts/{id}` in the same
//! run as a read-only baseline.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
    Router,
};
use intake_api::{AppState, Deps, IntakeSettings};
use serde_json::json;
use shared::{
    accounts::TokenService,
    adapters::{local_blobs::LocalBlobStore, local_events::LocalEventSink, sqlite::SqliteStore},
    domain::{Account, ApiKey, Media, MediaKind, MediaStatus, Workspace},
    ids::{MediaId, WorkspaceId},
    ports::{EventSink, Stores},
    tiktok::{SecretString, TikTokClient, TikTokConfig, TikTokTimeouts, TokenCipher, UploadHosts},
    Clock, SystemClock,
};
use tower::ServiceExt;

const SEQUENTIAL: usize = 5_000;
const CONCURRENT_TOTAL: usize = 20_000;
const IN_FLIGHT: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open(&dir.path().join("bench.sqlite3"))?));
    let now = SystemClock.now();
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: "bench".into(),
        created_at: now,
    };
    stores.workspaces.create_workspace(&workspace).await?;
    let key = ApiKey::generate_secret();
    stores
        .workspaces
        .put_api_key(&ApiKey {
            hash: ApiKey::hash_secret(&key),
            workspace_id: workspace.id.clone(),
            created_at: now,
            revoked: false,
        })
        .await?;
    let account = Account {
        display_name: "Bench".into(),
        ..Account::new_connected(workspace.id.clone(), "bench", now)
    };
    stores.accounts.create_account(&account).await?;
    let media_id = MediaId::new();
    let media = Media {
        object_key: Media::object_key_for(&workspace.id, &media_id),
        id: media_id,
        workspace_id: workspace.id.clone(),
        kind: MediaKind::Video,
        content_type: "video/mp4".into(),
        declared_size: 1000,
        file_name: "clip.mp4".into(),
        status: MediaStatus::Validating,
        verdict: None,
        created_at: now,
        updated_at: now,
        version: 1,
        waiting_posts: Vec::new(),
    };
    stores.media.create_media(&media).await?;
    let events: Arc<dyn EventSink> = Arc::new(LocalEventSink::new(Some(dir.path().join("events.jsonl"))));
    let clock = Arc::new(SystemClock);
    // Creating a post calls no TikTok endpoint: a client pointing nowhere is enough.
    let tiktok = TikTokConfig {
        api_base_url: "http://127.0.0.1:9".into(),
        auth_base_url: "http://127.0.0.1:9".into(),
        client_key: "bench".into(),
        client_secret: SecretString::from("bench"),
        redirect_uri: "http://127.0.0.1:8080/v1/accounts/tiktok/callback".into(),
        app_audited: false,
        timeouts: TikTokTimeouts::default(),
        upload_hosts: UploadHosts::tiktok(),
    };
    let tokens = TokenService::new(
        &stores,
        TikTokClient::new(tiktok)?,
        Arc::new(TokenCipher::new(&[1; 32])),
        events.clone(),
        clock.clone(),
    );
    let router = intake_api::router(AppState::new(Deps {
        stores,
        blobs: Arc::new(LocalBlobStore::new(
            dir.path().join("media"),
            "http://127.0.0.1:8080".into(),
            [1; 32],
        )),
        events,
        timer: Arc::new(shared::adapters::memory::RecordingTimer::default()),
        clock,
        tokens,
        settings: IntakeSettings::default(),
    }));
    let body = json!({
        "platform": "tiktok", "accountId": account.id, "postType": "video", "content": "Launch day #bts",
        "media": [{"id": media.id}], "options": {"privacy": "private"},
        "scheduledAt": (now + chrono::Duration::days(1)).to_rfc3339()
    })
    .to_string();
    let create = || {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/posts")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .unwrap_or_default()
    };

    // Warm-up, and one post to read back for the baseline.
    let mut post_id = String::new();
    for _ in 0..200 {
        let response = router.clone().oneshot(create()).await?;
        anyhow::ensure!(response.status() == StatusCode::CREATED, "{}", response.status());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        post_id = serde_json::from_slice::<serde_json::Value>(&bytes)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let read = || {
        Request::builder()
            .uri(format!("/v1/posts/{post_id}"))
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap_or_default()
    };

    println!("| request | mode | requests | p50 | p99 | max | requests/s |");
    println!("|---|---|---|---|---|---|---|");
    sequential(&router, "POST /v1/posts", &create, StatusCode::CREATED).await?;
    sequential(&router, "GET /v1/posts/{id}", &read, StatusCode::OK).await?;
    concurrent(&router, "POST /v1/posts", &create, StatusCode::CREATED).await?;
    Ok(())
}

async fn sequential(
    router: &Router,
    label: &str,
    request: &dyn Fn() -> Request<Body>,
    expected: StatusCode,
) -> anyhow::Result<()> {
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        let at = Instant::now();
        let response = router.clone().oneshot(request()).await?;
        anyhow::ensure!(response.status() == expected, "{}", response.status());
        latencies.push(at.elapsed());
    }
    report(label, "one at a time", &mut latencies, started.elapsed());
    Ok(())
}

async fn concurrent(
    router: &Router,
    label: &str,
    request: &(dyn Fn() -> Request<Body> + Sync),
    expected: StatusCode,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let router = router.clone();
        let requests: Vec<Request<Body>> = (0..CONCURRENT_TOTAL / IN_FLIGHT).map(|_| request()).collect();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(requests.len());
            for request in requests {
                let at = Instant::now();
                let response = router.clone().oneshot(request).await?;
                anyhow::ensure!(response.status() == expected, "{}", response.status());
                latencies.push(at.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(CONCURRENT_TOTAL);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    report(
        label,
        &format!("{IN_FLIGHT} in flight"),
        &mut latencies,
        started.elapsed(),
    );
    Ok(())
}

fn report(label: &str, mode: &str, latencies: &mut [std::time::Duration], total: std::time::Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: std::time::Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {label} | {mode} | {} | {} | {} | {} | {:.0} |",
        latencies.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(latencies[latencies.len() - 1]),
        latencies.len() as f64 / total.as_secs_f64()
    );
}
