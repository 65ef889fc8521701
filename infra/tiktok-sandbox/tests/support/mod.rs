//! Shared test fixtures: a spawned sandbox, a client pointed at it, and a tiny media host for pulls.
#![allow(dead_code)]

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
    routing::get,
    Router,
};
use secrecy::SecretString;
use shared::tiktok::{TikTokClient, TikTokConfig, TikTokTimeouts, UploadHosts};
use tiktok_sandbox::{SandboxConfig, SandboxHandle, Settings};

pub const REDIRECT_URI: &str = "https://app.example.com/v1/accounts/tiktok/callback";

/// A sandbox that processes quickly, so tests wait milliseconds rather than seconds.
pub async fn sandbox() -> SandboxHandle {
    sandbox_with(|_| {}).await
}

pub async fn sandbox_with(adjust: impl FnOnce(&mut Settings)) -> SandboxHandle {
    let mut settings = Settings {
        processing_delay_ms: 20,
        ..Settings::default()
    };
    adjust(&mut settings);
    tiktok_sandbox::spawn(SandboxConfig {
        settings,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox binds a free port")
}

pub fn config_for(sandbox: &SandboxHandle) -> TikTokConfig {
    let settings = sandbox.settings();
    TikTokConfig {
        api_base_url: sandbox.base_url().to_owned(),
        auth_base_url: sandbox.base_url().to_owned(),
        client_key: settings.client_key,
        client_secret: SecretString::from(settings.client_secret),
        redirect_uri: REDIRECT_URI.to_owned(),
        app_audited: settings.app_audited,
        timeouts: TikTokTimeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(3),
            upload_chunk: Duration::from_secs(10),
        },
        upload_hosts: UploadHosts::host_of(sandbox.base_url()).expect("the sandbox has a host"),
    }
}

pub fn client_for(sandbox: &SandboxHandle) -> TikTokClient {
    TikTokClient::new(config_for(sandbox)).expect("client builds")
}

/// A file that passes the sandbox's format check: an ISO-BMFF `ftyp` box, then filler that makes it unique.
pub fn mp4_bytes(size: usize, seed: u8) -> Bytes {
    let mut bytes = vec![seed; size];
    bytes[..12].copy_from_slice(b"\0\0\0\x18ftypmp42");
    Bytes::from(bytes)
}

pub fn jpeg_bytes(seed: u8) -> Bytes {
    let mut bytes = vec![seed; 2048];
    bytes[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    Bytes::from(bytes)
}

/// Serves `files` at `{base}/media/{name}`; the base is what the sandbox must list as a verified prefix.
pub async fn media_host(files: Vec<(&str, Bytes)>) -> String {
    let files: Arc<HashMap<String, Bytes>> = Arc::new(files.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
    let app = Router::new()
        .route(
            "/media/{name}",
            get(
                |State(files): State<Arc<HashMap<String, Bytes>>>, Path(name): Path<String>| async move {
                    match files.get(&name) {
                        Some(bytes) => bytes.clone().into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                },
            ),
        )
        .with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/media/")
}

/// Polls until `check` holds or two seconds pass.
pub async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 2 s");
}
