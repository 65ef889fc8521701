//! The runner's stand-ins for S3: the upload route that presigned upload URLs point at, and the media route that
//! serves files to the TikTok sandbox for PULL_FROM_URL. Not part of the product's API (nor its OpenAPI document).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use futures::future::BoxFuture;
use intake_api::{
    error::{current_request_id, ErrorBody, ErrorDetail},
    extract::{request_id, PathParam, QueryParams},
};
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
        // Errors here carry a request id like the API's: the router merged with the API's does not share its layers.
        .layer(middleware::from_fn(request_id))
}

async fn upload(
    State(state): State<LocalState>,
    PathParam(key): PathParam<String>,
    QueryParams(signed): QueryParams<SignedUpload>,
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

async fn serve_media(State(state): State<LocalState>, PathParam(key): PathParam<String>) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such object");
    // Uploads and renditions answer as if absent: only what is being published is reachable (CloudFront's rule).
    let Some(path) = state.blobs.public_object_path(&key) else {
        return not_found();
    };
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return not_found();
    };
    // A key naming a folder of objects opens too (as a directory): only a file is an object.
    let length = match file.metadata().await {
        Ok(metadata) if metadata.is_file() => metadata.len(),
        _ => return not_found(),
    };
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

/// The API's error shape, request id included, for the statuses the API's own errors do not have (403 here).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            request_id: current_request_id(),
            details: Vec::new(),
        },
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::{body::to_bytes, http::Request};
    use bytes::Bytes;
    use serde_json::Value;
    use shared::{ports::BlobStore, SystemClock};
    use tower::ServiceExt;

    use super::*;

    struct Local {
        router: Router,
        blobs: Arc<LocalBlobStore>,
        root: std::path::PathBuf,
    }

    impl Drop for Local {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn local() -> Local {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("postato-local-routes-{}-{n}", std::process::id()));
        let blobs = Arc::new(LocalBlobStore::new(root.clone(), "http://127.0.0.1:1".into(), [3; 32]));
        let hook: UploadHook = Arc::new(|_key| Box::pin(async {}));
        Local {
            router: router(blobs.clone(), Arc::new(SystemClock), hook),
            blobs,
            root,
        }
    }

    async fn call(local: &Local, method: &str, uri: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("a request");
        let response = local.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.expect("a body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn assert_error_shape(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
        let (got, body) = answer;
        assert_eq!(*got, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(
            body["error"]["requestId"]
                .as_str()
                .is_some_and(|id| id.starts_with("req_")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn attack_local_media_folder_is_a_404_not_a_directory_read() {
        let local = local();
        local
            .blobs
            .put("public/ws_1/med_1.mp4", Bytes::from_static(b"video"), "video/mp4")
            .await
            .expect("stored");
        let (status, _) = call(&local, "GET", "/local/media/public/ws_1/med_1.mp4").await;
        assert_eq!(status, StatusCode::OK, "the object itself is served");

        for folder in [
            "/local/media/public",
            "/local/media/public/ws_1",
            "/local/media/public/ws_1/",
        ] {
            assert_error_shape(&call(&local, "GET", folder).await, StatusCode::NOT_FOUND, "not_found");
        }
    }

    #[tokio::test]
    async fn attack_an_upload_or_a_rendition_is_a_404_on_the_media_route() {
        let local = local();
        for key in ["uploads/ws_1/med_1", "renditions/ws_1/med_1.jpg", "public"] {
            local
                .blobs
                .put(key, Bytes::from_static(b"private bytes"), "image/jpeg")
                .await
                .expect("stored");
            assert_error_shape(
                &call(&local, "GET", &format!("/local/media/{key}")).await,
                StatusCode::NOT_FOUND,
                "not_found",
            );
        }
    }

    #[tokio::test]
    async fn attack_local_routes_with_invalid_utf8_or_repeated_parameters_answer_in_the_error_shape() {
        let local = local();
        assert_error_shape(
            &call(&local, "GET", "/local/media/%FF%FE").await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
        assert_error_shape(
            &call(
                &local,
                "PUT",
                "/local/uploads/%FF?content_type=video%2Fmp4&content_length=5&expires=1&sig=a",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
        assert_error_shape(
            &call(
                &local,
                "PUT",
                "/local/uploads/media/ws_1/a.mp4?content_type=video%2Fmp4&content_length=5&expires=1&expires=2&sig=a",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
        assert_error_shape(
            &call(&local, "PUT", "/local/uploads/media/ws_1/a.mp4").await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
        assert_error_shape(
            &call(
                &local,
                "PUT",
                "/local/uploads/media/ws_1/a.mp4?content_type=video%2Fmp4&content_length=5&expires=9999999999&sig=00",
            )
            .await,
            StatusCode::FORBIDDEN,
            "upload_refused",
        );
    }
}
