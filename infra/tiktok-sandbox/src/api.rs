//! TikTok's endpoints: each handler reads the request, applies the rules in [`crate::world`] under the lock, and
//! answers in TikTok's shapes (the v2 envelope, or the OAuth shape for token and revoke).

use std::collections::HashMap;

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json,
};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::Digest;

use crate::{
    world::{ApiError, Caller, ChunkAnswer, ChunkHeaders},
    Sandbox,
};

const LOG_ID_HEADER: &str = "x-tt-logid";
/// Enough of a file's start to recognise its format.
const HEAD_BYTES: usize = 16;

/// TikTok-style log ids: a timestamp and random hex, e.g. `202210112248442CB9319E1FB30C1073F3`.
fn log_id() -> String {
    let random: [u8; 10] = rand::random();
    // A label for logs only, stamped as TikTok stamps its own.
    format!(
        "{}{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        hex::encode_upper(random)
    )
}

fn with_log_id(status: StatusCode, body: Value, log_id: String) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&log_id) {
        response.headers_mut().insert(LOG_ID_HEADER, value);
    }
    response
}

pub(crate) fn envelope_ok(data: Value) -> Response {
    let log_id = log_id();
    with_log_id(
        StatusCode::OK,
        json!({ "data": data, "error": { "code": "ok", "message": "", "log_id": log_id } }),
        log_id,
    )
}

/// Errors come with `"data": {}`, as TikTok sends them.
pub(crate) fn envelope_error(error: ApiError) -> Response {
    let log_id = log_id();
    let body = json!({ "data": {}, "error": { "code": error.code, "message": error.message, "log_id": log_id } });
    with_log_id(error.status, body, log_id)
}

pub(crate) fn oauth_error(error: ApiError) -> Response {
    let log_id = log_id();
    let body = json!({ "error": error.code, "error_description": error.message, "log_id": log_id });
    with_log_id(error.status, body, log_id)
}

fn envelope(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(data) => envelope_ok(data),
        Err(error) => envelope_error(error),
    }
}

fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_param",
            format!("The body is not valid JSON: {e}"),
        )
    })
}

fn form_body(bytes: &Bytes) -> HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

fn caller(sandbox: &Sandbox, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    sandbox.world().authenticate(authorization, sandbox.now())
}

// -------------------------------------------------------------------- OAuth

/// `GET /v2/auth/authorize/`: approves at once (the configured authorizer, else the first account), or shows a page
/// to choose an account or refuse.
pub(crate) async fn authorize(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let now = sandbox.now();
    let mut world = sandbox.world();
    if get("client_key") != world.settings.client_key {
        return (StatusCode::BAD_REQUEST, "client_key is not this sandbox app's").into_response();
    }
    let redirect_uri = get("redirect_uri");
    let registered = &world.settings.redirect_uris;
    if url::Url::parse(redirect_uri).is_err()
        || (!registered.is_empty() && !registered.iter().any(|r| r == redirect_uri))
    {
        // TikTok never redirects to an unregistered URI.
        return (StatusCode::BAD_REQUEST, "redirect_uri is not registered for this app").into_response();
    }
    let state = get("state");
    if get("response_type") != "code" {
        return redirect_back(
            redirect_uri,
            &[
                ("error", "unsupported_response_type"),
                ("error_description", "response_type must be code"),
                ("state", state),
            ],
        );
    }
    let requested: Vec<String> = get("scope")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let decision = match get("decision") {
        "approve" | "deny" => Some(get("decision") == "approve"),
        _ if world.deny_next_authorize => {
            world.deny_next_authorize = false;
            Some(false)
        }
        _ if world.settings.auto_approve => Some(true),
        _ => None,
    };
    match decision {
        Some(true) => {
            let open_id = match get("open_id") {
                id if !id.is_empty() && world.account(id).is_some() => id.to_owned(),
                _ => world.authorizing_account(),
            };
            let granted = world.granted_scopes(&open_id, &requested);
            let code = world.issue_code(&open_id, granted.clone(), redirect_uri, now);
            redirect_back(
                redirect_uri,
                &[("code", &code), ("scopes", &granted.join(",")), ("state", state)],
            )
        }
        Some(false) => redirect_back(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied the authorization."),
                ("state", state),
            ],
        ),
        None => consent_page(&query, &world.accounts()),
    }
}

fn redirect_back(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            match HeaderValue::from_str(url.as_str()) {
                Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
                Err(_) => (StatusCode::BAD_REQUEST, "redirect_uri cannot be used").into_response(),
            }
        }
        Err(_) => (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response(),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page for people driving the sandbox by hand: one link per account, and one to refuse.
fn consent_page(query: &HashMap<String, String>, accounts: &[crate::AccountSpec]) -> Response {
    let link = |extra: &[(&str, &str)]| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "decision" | "open_id"))
        {
            url.append_pair(k, v);
        }
        url.extend_pairs(extra);
        format!("/v2/auth/authorize/?{}", url.finish())
    };
    let mut items = String::new();
    for account in accounts {
        let href = link(&[("decision", "approve"), ("open_id", &account.open_id)]);
        items.push_str(&format!(
            "<li><a href=\"{}\">Authorize as {} (@{})</a></li>",
            html_escape(&href),
            html_escape(&account.display_name),
            html_escape(&account.username)
        ));
    }
    let new_account = link(&[("decision", "approve")]);
    let deny = link(&[("decision", "deny")]);
    Html(format!(
        "<!doctype html><title>TikTok sandbox: authorize</title><h1>Authorize this app?</h1>\
         <p>Scopes requested: {}</p><ul>{items}<li><a href=\"{}\">Authorize as the default account</a></li></ul>\
         <p><a href=\"{}\">Cancel</a></p>",
        html_escape(query.get("scope").map(String::as_str).unwrap_or_default()),
        html_escape(&new_account),
        html_escape(&deny)
    ))
    .into_response()
}

/// `POST /v2/oauth/token/`: no `data` wrapper on success; the OAuth error shape on failure.
pub(crate) async fn token(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let form = form_body(&body);
    let result = sandbox.world().token(&form, sandbox.now());
    match result {
        Ok(tokens) => {
            let answer = json!({
                "access_token": tokens.access_token,
                "expires_in": tokens.expires_in,
                "open_id": tokens.open_id,
                "refresh_expires_in": tokens.refresh_expires_in,
                "refresh_token": tokens.refresh_token,
                "scope": tokens.scope,
                "token_type": "Bearer",
            });
            with_log_id(StatusCode::OK, answer, log_id())
        }
        Err(error) => oauth_error(error),
    }
}

/// `POST /v2/oauth/revoke/`: `{}` on success.
pub(crate) async fn revoke(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let result = sandbox.world().revoke(&form_body(&body));
    match result {
        Ok(()) => with_log_id(StatusCode::OK, json!({}), log_id()),
        Err(error) => oauth_error(error),
    }
}

// -------------------------------------------------------------------- reads

pub(crate) async fn user_info(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    envelope(caller(&sandbox, &headers).and_then(|caller| {
        sandbox
            .world()
            .user_info(&caller, query.get("fields").map(String::as_str), sandbox.now())
    }))
}

pub(crate) async fn creator_info(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    envelope(caller(&sandbox, &headers).and_then(|caller| sandbox.world().creator_info(&caller, sandbox.now())))
}

// -------------------------------------------------------------------- inits

async fn video_init_for(sandbox: Sandbox, headers: HeaderMap, body: Bytes, inbox: bool) -> Response {
    let result = caller(&sandbox, &headers).and_then(|caller| {
        let body = json_body(&body)?;
        sandbox
            .world()
            .init_video(&caller, &body, inbox, sandbox.base_url(), sandbox.now())
    });
    match result {
        Ok((data, pull)) => {
            if let Some(job) = pull {
                sandbox.start_pull(job);
            }
            envelope_ok(data)
        }
        Err(error) => envelope_error(error),
    }
}

pub(crate) async fn video_init(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    video_init_for(sandbox, headers, body, false).await
}

pub(crate) async fn inbox_video_init(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    video_init_for(sandbox, headers, body, true).await
}

pub(crate) async fn content_init(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let result = caller(&sandbox, &headers).and_then(|caller| {
        let body = json_body(&body)?;
        sandbox.world().init_photo(&caller, &body, sandbox.now())
    });
    match result {
        Ok((data, job)) => {
            sandbox.start_pull(job);
            envelope_ok(data)
        }
        Err(error) => envelope_error(error),
    }
}

// -------------------------------------------------------------------- upload

fn chunk_response(answer: ChunkAnswer) -> Response {
    let mut response = answer.status.into_response();
    if let Some(range) = answer.content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        response.headers_mut().insert(header::CONTENT_RANGE, range);
    }
    if let Ok(value) = HeaderValue::from_str(&log_id()) {
        response.headers_mut().insert(LOG_ID_HEADER, value);
    }
    response
}

/// `PUT /video/?upload_id=…&upload_token=…`: headers are checked first, then the body is streamed into the
/// running SHA-256 without being kept.
pub(crate) async fn upload_chunk(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let chunk_headers = ChunkHeaders {
        upload_id: query.get("upload_id").map(String::as_str).unwrap_or_default(),
        upload_token: query.get("upload_token").map(String::as_str).unwrap_or_default(),
        content_type: header_text(header::CONTENT_TYPE),
        content_length: header_text(header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok()),
        content_range: header_text(header::CONTENT_RANGE),
    };
    let ticket = sandbox.world().begin_chunk(&chunk_headers, sandbox.now());
    let mut ticket = match ticket {
        Ok(ticket) => ticket,
        Err(answer) => return chunk_response(answer),
    };
    let bad_request = || {
        chunk_response(ChunkAnswer {
            status: StatusCode::BAD_REQUEST,
            content_range: None,
        })
    };
    let mut stream = body.into_data_stream();
    let (mut read, mut head) = (0u64, Vec::new());
    while let Some(frame) = stream.next().await {
        let Ok(bytes) = frame else { return bad_request() };
        read += bytes.len() as u64;
        if read > ticket.length {
            return bad_request();
        }
        if head.len() < HEAD_BYTES {
            head.extend(bytes.iter().take(HEAD_BYTES - head.len()));
        }
        ticket.hasher.update(&bytes);
    }
    if read != ticket.length {
        return bad_request();
    }
    let answer = sandbox.world().commit_chunk(ticket, &head, sandbox.now());
    chunk_response(answer)
}

// -------------------------------------------------------------------- status and cancel

pub(crate) async fn status(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let result = caller(&sandbox, &headers).and_then(|caller| {
        let body = json_body(&body)?;
        sandbox.world().status(&caller, &body, sandbox.now())
    });
    match result {
        Ok((data, hooks)) => {
            sandbox.deliver(hooks);
            envelope_ok(data)
        }
        Err(error) => envelope_error(error),
    }
}

pub(crate) async fn cancel(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let result = caller(&sandbox, &headers).and_then(|caller| {
        let body = json_body(&body)?;
        sandbox.world().cancel(&caller, &body, sandbox.now())
    });
    match result {
        Ok(hooks) => {
            sandbox.deliver(hooks);
            envelope_ok(json!({}))
        }
        Err(error) => envelope_error(error),
    }
}
