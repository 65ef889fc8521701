//! Serving connections, and the layer that logs every TikTok request and applies injected faults.
//!
//! Connections are served with hyper directly (not `axum::serve`) so that a fault can close one without answering:
//! each connection gets a [`ConnectionKill`] in its requests' extensions, and triggering it drops the connection.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Router,
};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::{net::TcpListener, sync::watch, sync::Notify};
use tower::ServiceExt;

use crate::{
    api::{envelope_error, oauth_error},
    types::{fingerprint, Endpoint, FaultAction, LoggedRequest},
    world::ApiError,
    Sandbox,
};

/// Bodies of API calls are small JSON or form documents; uploads are streamed and never buffered here.
const LOGGED_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Form and JSON fields that carry a secret; the log keeps only their fingerprint.
const SECRET_FIELDS: [&str; 5] = ["client_secret", "code", "refresh_token", "token", "code_verifier"];
const SECRET_QUERY: [&str; 2] = ["upload_token", "code"];

#[derive(Clone)]
pub(crate) struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes this request's connection without an answer.
    async fn drop_connection(&self) -> Response {
        self.0.notify_one();
        std::future::pending::<Response>().await
    }
}

pub(crate) async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, "sandbox accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let request_kill = ConnectionKill(kill.clone());
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(request_kill.clone());
                app.clone().oneshot(request.map(Body::new))
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future closes the socket, answered or not.
            tokio::select! {
                _ = connection => {}
                _ = kill.notified() => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// Logs each TikTok request (secrets fingerprinted) and applies the first matching fault.
pub(crate) async fn observe(State(sandbox): State<Sandbox>, request: Request, next: Next) -> Response {
    let Some(endpoint) = Endpoint::from_request(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let seq = sandbox.next_seq();
    let at = sandbox.now();
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    let (parts, body) = request.into_parts();
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();

    let (body, body_summary) = if endpoint == Endpoint::Upload {
        (body, None)
    } else {
        match axum::body::to_bytes(body, LOGGED_BODY_LIMIT).await {
            Ok(bytes) => {
                let summary = summarize_body(&parts.headers, &bytes);
                (Body::from(bytes), summary)
            }
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        }
    };

    let identity = sandbox.identify(endpoint, &parts.headers, &query, body_summary.as_ref());
    let mut entry = LoggedRequest {
        seq,
        at,
        endpoint,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: redact_query(query),
        open_id: identity.open_id.clone(),
        token_fingerprint: identity.token_fingerprint,
        publish_id: identity.publish_id,
        headers: logged_headers(&parts.headers),
        body: body_summary.map(redact_body),
        response_status: None,
        fault: None,
    };

    let fault = sandbox.take_fault(endpoint, identity.open_id.as_deref());
    entry.fault = fault.as_ref().map(describe);
    match &fault {
        Some(FaultAction::Respond { status, code, message }) => {
            let response = fault_response(endpoint, *status, code.as_deref(), message.as_deref());
            entry.response_status = Some(response.status().as_u16());
            sandbox.record(entry);
            return response;
        }
        Some(FaultAction::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Some(FaultAction::Drop) => {
            sandbox.record(entry);
            return drop_or_fail(kill).await;
        }
        _ => {}
    }

    let response = next.run(Request::from_parts(parts, body)).await;
    match &fault {
        Some(FaultAction::DropAfter) => {
            sandbox.record(entry);
            return drop_or_fail(kill).await;
        }
        Some(FaultAction::DelayAfter { ms }) => {
            // Logged before the delay: a client that gives up cancels this future, yet the change already happened
            // and tests must see it in the log.
            entry.response_status = Some(response.status().as_u16());
            sandbox.record(entry);
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return response;
        }
        _ => {}
    }
    entry.response_status = Some(response.status().as_u16());
    sandbox.record(entry);
    response
}

async fn drop_or_fail(kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(kill) => kill.drop_connection().await,
        // Only reachable when the router is served by something other than `serve`.
        None => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn describe(action: &FaultAction) -> String {
    match action {
        FaultAction::Respond { status, code, .. } => format!("respond {status} {}", code.as_deref().unwrap_or("")),
        FaultAction::Delay { ms } => format!("delay {ms}ms"),
        FaultAction::DelayAfter { ms } => format!("delay_after {ms}ms"),
        FaultAction::Drop => "drop".into(),
        FaultAction::DropAfter => "drop_after".into(),
    }
    .trim()
    .to_owned()
}

fn fault_response(endpoint: Endpoint, status: u16, code: Option<&str>, message: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let Some(code) = code else {
        // A bare gateway error, as a proxy in front of TikTok would give.
        return (status, [(header::CONTENT_TYPE, "text/plain")], "upstream error").into_response();
    };
    let error = ApiError::new(status, code, message.unwrap_or("Injected by the sandbox."));
    if endpoint.uses_oauth_errors() {
        oauth_error(error)
    } else {
        envelope_error(error)
    }
}

fn logged_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_RANGE]
        .iter()
        .filter_map(|name| Some((name.as_str().to_owned(), headers.get(name)?.to_str().ok()?.to_owned())))
        .collect()
}

/// The body as JSON: JSON bodies as they are, form bodies as an object of strings.
fn summarize_body(headers: &HeaderMap, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Map<String, Value> = url::form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Some(Value::Object(pairs));
    }
    Some(serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())))
}

fn redact_body(mut body: Value) -> Value {
    if let Value::Object(fields) = &mut body {
        for name in SECRET_FIELDS {
            if let Some(Value::String(secret)) = fields.get_mut(name) {
                *secret = fingerprint(secret);
            }
        }
    }
    body
}

fn redact_query(mut query: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for name in SECRET_QUERY {
        if let Some(secret) = query.get_mut(name) {
            *secret = fingerprint(secret);
        }
    }
    query
}

/// Who a request is about, resolved before it is handled (a refresh token is gone afterwards).
pub(crate) struct Identity {
    pub open_id: Option<String>,
    pub token_fingerprint: Option<String>,
    pub publish_id: Option<String>,
}
