//! `GET /health`: whether the runner can still do its work. The events file is where a developer follows posts and
//! where the in-process bus writes first, so a sink that fails is reported here (503 with the cause) rather than
//! discovered as posts that never move.

use std::sync::Arc;

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};
use shared::adapters::local_events::LocalEventSink;

pub fn router(events: Arc<LocalEventSink>) -> Router {
    Router::new().route("/health", get(health)).with_state(events)
}

async fn health(State(events): State<Arc<LocalEventSink>>) -> (StatusCode, Json<Value>) {
    match events.failure() {
        None => (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Some(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "degraded", "events": cause })),
        ),
    }
}
