//! The runner's stand-ins for S3: the upload route that presigned upload URLs point at, and the media route that
//! serves files to the TikTok sandbox for PULL_FROM_URL. Not part of the product's API (nor its OpenAPI document).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use futures::future::BoxFuture;
use serde_json::json;
use shared::{
    adapters::local_blobs::{LocalBlobStore, SignedUpload, UploadRejection, UploadWriteError},
    Clock,
};
use tokio_util::io::ReaderStream;

/// Runs after an upload is stored, with its object key: the local runner validates it, as S3's ObjectCreated
/// notification makes the validator do in AWS.
pub type UploadHook = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
struct LocalState {
    blobs: Arc<LocalBlobStore>,
    clock: Arc<dyn Clock>,
    on_upload: UploadHook,
}

pub fn router(blobs: Arc<LocalBlobStore>, clock: Arc<dyn Clock>, on_upload: UploadHook) -> Router {
    Router::new()
        .route("/local/uploads/{*key}", put(upload))
        .route("/local/media/{*key}", get(serve_media))
        .with_state(LocalState {
            blobs,
            clock,
            on_upload,
        })
        // Uploads are up to 4 GB; the body is streamed to disk and its length checked against the signature.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn upload(
    State(state): State<LocalState>,
    Path(key): Path<String>,
    Query(signed): Query<SignedUpload>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Err(rejection) = state
        .blobs
        .verify_upload(&key, &signed, content_type, content_length, state.clock.now())
    {
        let status = match rejection {
            UploadRejection::BadSignature | UploadRejection::Expired | UploadRejection::InvalidKey => {
                StatusCode::FORBIDDEN
            }
            UploadRejection::WrongContentType { .. } | UploadRejection::WrongContentLength { .. } => {
                StatusCode::BAD_REQUEST
            }
        };
        return error(status, "upload_refused", &rejection.to_string());
    }
    match state.blobs.write_upload(&key, &signed, body.into_data_stream()).await {
        Ok(head) => {
            tracing::info!(key, size = head.size, "upload stored; validating");
            tokio::spawn((state.on_upload)(key));
            (StatusCode::OK, [(header::ETAG, head.etag)]).into_response()
        }
        Err(e @ (UploadWriteError::TooShort { .. } | UploadWriteError::TooLong { .. })) => {
            error(StatusCode::BAD_REQUEST, "upload_refused", &e.to_string())
        }
        Err(e) => {
            tracing::error!(key, error = %e, "upload could not be stored");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the upload could not be stored",
            )
        }
    }
}

async fn serve_media(State(state): State<LocalState>, Path(key): Path<String>) -> Response {
    let Ok(path) = state.blobs.object_path(&key) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such object");
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return error(StatusCode::NOT_FOUND, "not_found", "no such object"),
    };
    let length = file.metadata().await.map(|m| m.len()).unwrap_or_default();
    let content_type = state
        .blobs
        .content_type(&key)
        .await
        .unwrap_or_else(|_| "application/octet-stream".into());
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}
