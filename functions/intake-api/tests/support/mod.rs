//! A router over the embedded adapters, seeded with two workspaces, for HTTP-level tests.
#![allow(dead_code)]

use std::sync::Arc;

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
    adapters::{local_blobs::LocalBlobStore, memory::RecordingEventSink, sqlite::SqliteStore},
    domain::{
        Account, AccountStatus, ApiKey, Finding, Media, MediaFacts, MediaKind, MediaStatus, MediaVerdict, Workspace,
    },
    ids::{AccountId, MediaId, WorkspaceId},
    ports::Stores,
    ManualClock,
};
use tower::ServiceExt;

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
    pub clock: ManualClock,
    pub a: Tenant,
    pub b: Tenant,
    _blobs_dir: tempfile::TempDir,
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
        let store = Arc::new(SqliteStore::in_memory().expect("in-memory sqlite"));
        let stores = Stores::from_adapter(store);
        let blobs_dir = tempfile::tempdir().expect("tempdir");
        let blobs = Arc::new(LocalBlobStore::new(
            blobs_dir.path().to_path_buf(),
            "http://127.0.0.1:8080".into(),
            [7; 32],
        ));
        let events = Arc::new(RecordingEventSink::default());
        let clock = ManualClock::at(start());
        let state = AppState::new(Deps {
            stores: stores.clone(),
            blobs,
            events: events.clone(),
            clock: Arc::new(clock.clone()),
            settings,
        });
        let a = seed_tenant(&stores, "alpha").await;
        let b = seed_tenant(&stores, "bravo").await;
        Self {
            router: intake_api::router(state),
            stores,
            events,
            clock,
            a,
            b,
            _blobs_dir: blobs_dir,
        }
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
    }
}

pub fn account_record(workspace: &WorkspaceId, status: AccountStatus) -> Account {
    Account {
        id: AccountId::new(),
        workspace_id: workspace.clone(),
        open_id: format!("open-{}", ulid::Ulid::new()),
        display_name: "Creator".into(),
        username: Some("creator".into()),
        avatar_url: None,
        scopes: vec!["user.info.basic".into(), "video.publish".into(), "video.upload".into()],
        status,
        tokens: None,
        terms_accepted_at: Some(start()),
        refresh_lock_until: None,
        rate_windows: Default::default(),
        connected_at: start(),
        created_at: start(),
        updated_at: start(),
        version: 1,
    }
}

async fn seed_tenant(stores: &Stores, name: &str) -> Tenant {
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
    let account = account_record(&workspace.id, AccountStatus::Connected);
    stores.accounts.create_account(&account).await.unwrap();
    let video = media_record(&workspace.id, MediaKind::Video, MediaStatus::Valid);
    stores.media.create_media(&video).await.unwrap();
    let mut images = Vec::new();
    for _ in 0..36 {
        let image = media_record(&workspace.id, MediaKind::Image, MediaStatus::Valid);
        stores.media.create_media(&image).await.unwrap();
        images.push(image.id);
    }
    Tenant {
        workspace: workspace.id,
        key,
        account: account.id,
        video: video.id,
        images,
    }
}
