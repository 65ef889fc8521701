//! Extractors and middleware that turn raw requests into what handlers need, answering every rejection in the
//! API's error shape (axum's own rejections are plain text).

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::{domain::ApiKey, ids::WorkspaceId};

use crate::{
    error::{ApiError, REQUEST_ID},
    AppState,
};

/// Bodies larger than this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives each request an id (kept in a task-local for error bodies and logs, and echoed in `x-request-id`).
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = format!("req_{}", ulid::Ulid::new());
    let span =
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response = REQUEST_ID
        .scope(id.clone(), tracing::Instrument::instrument(next.run(request), span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The authenticated caller: the workspace its API key belongs to (every read and write is scoped to it), and the
/// key's id ([`ApiKey::id`], never the key) for the audit trail.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: WorkspaceId,
    pub key_id: String,
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let key = state
            .stores
            .workspaces
            .find_api_key(&ApiKey::hash_secret(presented))
            .await?;
        match key {
            Some(key) if !key.revoked => Ok(Caller {
                key_id: key.id(),
                workspace_id: key.workspace_id,
            }),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// A JSON body read as a raw value, so that the rules can report every problem with it at once.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::MalformedRequest(format!("the body is not valid JSON: {e}")))
    }
}

/// A JSON body that may be left out: no body at all reads as `{}`; a body that is there must be JSON.
pub struct OptionalJsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            let RawBody(bytes) = RawBody::from_request(request, state).await?;
            if !bytes.is_empty() {
                return Err(ApiError::UnsupportedMediaType);
            }
            return Ok(OptionalJsonBody(Value::Object(Default::default())));
        }
        JsonBody::from_request(request, state)
            .await
            .map(|JsonBody(value)| OptionalJsonBody(value))
    }
}

/// A path's parameters, with axum's plain-text rejection (a segment that is not UTF-8 once decoded, say) answered
/// in the API's error shape.
pub struct PathParam<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParam<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|rejection| {
                ApiError::MalformedRequest(format!("the path is unreadable: {}", rejection.body_text()))
            })
    }
}

/// Query parameters, each at most once: a repeated one (`?limit=1&limit=100`) has no single meaning, so it is a 400
/// in the API's error shape rather than axum's plain text.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::MalformedRequest(format!("the query string is unreadable: {}", rejection.body_text()))
            })
    }
}

/// The body's exact bytes, whatever their type (a webhook's signature covers them byte for byte).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES }
                } else {
                    ApiError::MalformedRequest(format!("the body could not be read: {}", rejection.body_text()))
                }
            })
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}
