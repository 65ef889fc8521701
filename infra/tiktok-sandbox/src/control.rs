//! The control API under `/_sandbox`, for driving a sandbox from outside the process (the binary, scripts). Each
//! route mirrors a [`Sandbox`] method; none of it is logged or subject to faults.

use std::time::Duration;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{AccountSpec, FaultSpec, ProcessingFailure, Sandbox, Settings};

pub(crate) fn router() -> Router<Sandbox> {
    Router::new()
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/bulk", post(create_accounts_bulk))
        .route("/accounts/{open_id}", put(replace_account))
        .route("/accounts/{open_id}/tokens", post(issue_tokens))
        .route("/accounts/{open_id}/remove-authorization", post(remove_authorization))
        .route("/authorizer", put(set_authorizer))
        .route("/deny-next-authorization", post(deny_next_authorization))
        .route("/settings", get(get_settings).put(update_settings))
        .route("/faults", post(inject_fault).delete(clear_faults))
        .route("/faults/{id}", axum::routing::delete(remove_fault))
        .route("/clock", get(get_clock).post(move_clock))
        .route("/requests", get(list_requests).delete(clear_requests))
        .route("/webhooks", get(list_webhooks))
        .route("/processing-failures", post(fail_next_processing))
        .route("/publishes", get(list_publishes))
        .route("/publishes/{publish_id}", get(get_publish))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("{what} not found") })),
    )
        .into_response()
}

async fn list_accounts(State(sandbox): State<Sandbox>) -> Json<Vec<AccountSpec>> {
    Json(sandbox.accounts())
}

async fn create_account(State(sandbox): State<Sandbox>, Json(spec): Json<AccountSpec>) -> Json<Value> {
    Json(json!({ "open_id": sandbox.create_account(spec) }))
}

#[derive(Deserialize)]
struct BulkAccounts {
    count: usize,
    #[serde(default)]
    template: AccountSpec,
}

async fn create_accounts_bulk(State(sandbox): State<Sandbox>, Json(bulk): Json<BulkAccounts>) -> Response {
    Json(sandbox.create_accounts_with_tokens(bulk.count, bulk.template)).into_response()
}

async fn replace_account(
    State(sandbox): State<Sandbox>,
    Path(open_id): Path<String>,
    Json(spec): Json<AccountSpec>,
) -> Response {
    if sandbox.update_account(&open_id, |account| *account = spec) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found("account")
    }
}

#[derive(Deserialize, Default)]
struct TokenRequest {
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn issue_tokens(
    State(sandbox): State<Sandbox>,
    Path(open_id): Path<String>,
    body: Option<Json<TokenRequest>>,
) -> Response {
    let request = body.map(|Json(r)| r).unwrap_or_default();
    let scopes: Option<Vec<&str>> = request.scopes.as_ref().map(|s| s.iter().map(String::as_str).collect());
    match sandbox.issue_tokens(&open_id, scopes.as_deref()) {
        Some(tokens) => Json(tokens).into_response(),
        None => not_found("account"),
    }
}

#[derive(Deserialize)]
struct RemoveAuthorization {
    #[serde(default = "user_disconnected")]
    reason: i64,
}

fn user_disconnected() -> i64 {
    1
}

async fn remove_authorization(
    State(sandbox): State<Sandbox>,
    Path(open_id): Path<String>,
    body: Option<Json<RemoveAuthorization>>,
) -> StatusCode {
    let reason = body.map(|Json(b)| b.reason).unwrap_or_else(user_disconnected);
    sandbox.remove_authorization(&open_id, reason);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Authorizer {
    open_id: Option<String>,
}

async fn set_authorizer(State(sandbox): State<Sandbox>, Json(authorizer): Json<Authorizer>) -> StatusCode {
    sandbox.set_authorizer(authorizer.open_id.as_deref());
    StatusCode::NO_CONTENT
}

async fn deny_next_authorization(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.deny_next_authorization();
    StatusCode::NO_CONTENT
}

async fn get_settings(State(sandbox): State<Sandbox>) -> Json<Settings> {
    Json(sandbox.settings())
}

/// Merges the given fields into the current settings, so a caller can change one thing.
async fn update_settings(State(sandbox): State<Sandbox>, Json(patch): Json<Value>) -> Response {
    let mut current = match serde_json::to_value(sandbox.settings()) {
        Ok(current) => current,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let (Value::Object(current), Value::Object(patch)) = (&mut current, patch) {
        current.extend(patch);
    }
    match serde_json::from_value::<Settings>(current) {
        Ok(settings) => {
            sandbox.update_settings(|s| *s = settings.clone());
            Json(settings).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn inject_fault(State(sandbox): State<Sandbox>, Json(spec): Json<FaultSpec>) -> Json<Value> {
    Json(json!({ "id": sandbox.inject_fault(spec) }))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(sandbox): State<Sandbox>, Path(id): Path<u64>) -> StatusCode {
    sandbox.remove_fault(id);
    StatusCode::NO_CONTENT
}

async fn get_clock(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({ "now": sandbox.now(), "offset_ms": sandbox.clock_offset().num_milliseconds() }))
}

#[derive(Deserialize)]
struct MoveClock {
    #[serde(default)]
    advance_ms: Option<u64>,
    #[serde(default)]
    offset_ms: Option<i64>,
}

async fn move_clock(State(sandbox): State<Sandbox>, Json(change): Json<MoveClock>) -> Json<Value> {
    if let Some(offset) = change.offset_ms {
        sandbox.set_clock_offset(chrono::Duration::milliseconds(offset));
    }
    if let Some(advance) = change.advance_ms {
        sandbox.advance_clock(Duration::from_millis(advance));
    }
    get_clock(State(sandbox)).await
}

async fn list_requests(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.requests()).into_response()
}

async fn clear_requests(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.clear_requests();
    StatusCode::NO_CONTENT
}

async fn list_webhooks(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.webhook_deliveries()).into_response()
}

async fn fail_next_processing(State(sandbox): State<Sandbox>, Json(failure): Json<ProcessingFailure>) -> StatusCode {
    sandbox.fail_next_processing(failure);
    StatusCode::NO_CONTENT
}

async fn list_publishes(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.publishes()).into_response()
}

async fn get_publish(State(sandbox): State<Sandbox>, Path(publish_id): Path<String>) -> Response {
    match sandbox.publish(&publish_id) {
        Some(publish) => Json(publish).into_response(),
        None => not_found("publish"),
    }
}
