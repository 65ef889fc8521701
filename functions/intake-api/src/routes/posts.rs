//! `/v1/posts`: create (with `Idempotency-Key`), read, list, edit and cancel posts; retry failed ones and resolve
//! those in review. Every transition writes its events into the post's outbox with the same compare-and-set, then
//! delivers them (what the bus refuses stays there for the publisher to deliver).

use std::collections::HashMap;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::{
    domain::{Account, Finding, Media, Post, PostStatus, Refusal},
    ids::{MediaId, PostId, WorkspaceId},
    outbox::deliver_outbox,
    ports::{IdempotencyRecord, PostFilter, StoreError, Wakeup},
    rules::{
        post::{
            apply_patch, build_post, check_draft, fit_to_creator, media_count_violation, read_new_post, read_patch,
            read_retry, report, Intent, PostDraft, RuleContext, CREATOR_CHECK_DEFERRED, PHOTO_MAX_IMAGES,
        },
        resolution::read_resolution,
        Violation,
    },
    timer,
};
use utoipa::IntoParams;

use super::accounts::creator_settings;
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Caller, JsonBody, OptionalJsonBody, PathParam, QueryParams},
    schemas::{CreatePostRequest, PatchPostRequest, ResolvePostRequest, RetryPostRequest},
    views::{PostList, PostView},
    AppState,
};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";
const IDEMPOTENCY_TTL_HOURS: i64 = 24;
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

#[utoipa::path(
    post, path = "/v1/posts", tag = "posts",
    request_body = CreatePostRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retry safely: the same key and body return the first response again (for 24 h) without a \
                       second post; the same key with another body is refused with 409.")),
    responses(
        (status = 201, description = "Created (or replayed)", body = PostView),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "Idempotency key reused with another body", body = ErrorBody),
        (status = 413, description = "Body over 1 MB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Rule violations, all of them, including conflicts with the creator's TikTok \
                                      settings (privacy_unavailable, interaction_disabled, \
                                      duration_over_creator_limit)", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn create_post(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let request_hash = request_fingerprint("POST /v1/posts", &body);
    if let Some(key) = &key {
        if let Some(replay) = replay(&state, &caller.workspace_id, key, &request_hash).await? {
            return Ok(replay);
        }
    }

    let (draft, mut violations) = read_new_post(&body);
    let mut post = checked(
        &state,
        &caller.workspace_id,
        draft,
        &mut violations,
        |draft, warnings, now| {
            let account_id = draft.account_id.clone()?;
            let post_type = draft.post_type?;
            Some(build_post(
                draft,
                PostId::new(),
                caller.workspace_id.clone(),
                account_id,
                post_type,
                warnings,
                now,
            ))
        },
    )
    .await?;
    if post.status == PostStatus::Scheduled {
        post.note_scheduled(post.created_at);
    }

    let response_body = serde_json::to_string(&PostView::from(&post)).map_err(ApiError::internal)?;
    let record = key.map(|key| IdempotencyRecord {
        workspace_id: caller.workspace_id.clone(),
        key,
        request_hash: request_hash.clone(),
        status: StatusCode::CREATED.as_u16(),
        body: response_body.clone(),
        expires_at: post.created_at + chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS),
    });
    match state.stores.posts.create_post(&post, record.as_ref()).await {
        Ok(()) => {}
        // Two requests with one key raced; the winner's response is the answer to both.
        Err(StoreError::AlreadyExists(_)) if record.is_some() => {
            let key = record.as_ref().map(|r| r.key.as_str()).unwrap_or_default();
            return replay(&state, &caller.workspace_id, key, &request_hash)
                .await?
                .ok_or_else(|| ApiError::internal("idempotency record vanished after a conflicting create"));
        }
        Err(e) => return Err(e.into()),
    }
    let post = deliver(&state, post).await;
    if post.status == PostStatus::Scheduled {
        arm_wakeup(&state, &post).await;
    }
    Ok(json_response(StatusCode::CREATED, response_body))
}

#[utoipa::path(
    get, path = "/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "Post id (post_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, body = PostView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such post in this workspace", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn get_post(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<PostView>, ApiError> {
    let post = load_post(&state, &caller.workspace_id, &id).await?;
    Ok(Json(PostView::from(&post)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this account's posts.
    account_id: Option<String>,
    /// Only posts in this state.
    status: Option<String>,
    /// Page size, 1–100 (default 20).
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/posts", tag = "posts",
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = PostList),
        (status = 400, description = "Unreadable query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Bad filter, limit or cursor", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn list_posts(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<PostList>, ApiError> {
    let mut violations = Vec::new();
    let mut filter = PostFilter::default();
    if let Some(raw) = query.account_id.as_deref().filter(|s| !s.is_empty()) {
        match raw.parse() {
            Ok(id) => filter.account_id = Some(id),
            Err(e) => violations.push(Violation::new("accountId", "invalid_id", format!("{e}"))),
        }
    }
    if let Some(raw) = query.status.as_deref().filter(|s| !s.is_empty()) {
        match PostStatus::parse(raw) {
            Some(status) => filter.status = Some(status),
            None => violations.push(Violation::new(
                "status",
                "invalid_value",
                format!(
                    "status must be one of {}",
                    PostStatus::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    let limit = match query.limit.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                violations.push(Violation::new(
                    "limit",
                    "out_of_range",
                    format!("limit must be 1 to {MAX_PAGE}"),
                ));
                DEFAULT_PAGE
            }
        },
    };
    if !violations.is_empty() {
        return Err(ApiError::Validation(violations));
    }
    let cursor = query.cursor.as_deref().filter(|s| !s.is_empty());
    let page = state
        .stores
        .posts
        .list_posts(&caller.workspace_id, &filter, limit, cursor)
        .await?;
    Ok(Json(PostList {
        data: page.items.iter().map(PostView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    patch, path = "/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "Post id (post_...)")),
    request_body = PatchPostRequest,
    responses(
        (status = 200, body = PostView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Publishing already started (only draft and scheduled posts can change)", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn patch_post(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<PostView>, ApiError> {
    let existing = load_post(&state, &caller.workspace_id, &id).await?;
    if !existing.status.is_editable() {
        return Err(not_editable(&existing, "changed"));
    }
    let (draft, mut violations) = read_patch(&existing, &body);
    let mut updated = checked(
        &state,
        &caller.workspace_id,
        draft,
        &mut violations,
        |draft, warnings, now| Some(apply_patch(&existing, draft, warnings, now)),
    )
    .await?;
    let rescheduled = updated.status == PostStatus::Scheduled
        && (existing.status != PostStatus::Scheduled || existing.scheduled_at != updated.scheduled_at);
    if rescheduled {
        updated.note_scheduled(updated.updated_at);
    }
    let updated = save(&state, updated, existing.version).await?;
    if rescheduled {
        arm_wakeup(&state, &updated).await;
    }
    Ok(Json(PostView::from(&updated)))
}

#[utoipa::path(
    delete, path = "/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "Post id (post_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, description = "Canceled (also when it already was)", body = PostView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Publishing already started", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn delete_post(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<PostView>, ApiError> {
    let existing = load_post(&state, &caller.workspace_id, &id).await?;
    if existing.status == PostStatus::Canceled {
        return Ok(Json(PostView::from(&existing)));
    }
    if !existing.status.is_editable() {
        return Err(not_editable(&existing, "canceled"));
    }
    let now = state.clock.now();
    let mut canceled = next_write(&existing, now);
    canceled.mark_canceled(&caller.key_id, now);
    let canceled = save(&state, canceled, existing.version).await?;
    Ok(Json(PostView::from(&canceled)))
}

#[utoipa::path(
    post, path = "/v1/posts/{id}/retry", tag = "posts",
    params(("id" = String, Path, description = "Post id (post_...)")),
    request_body(content = Option<RetryPostRequest>,
        description = "Optional: `{\"scheduledAt\": ...}` to publish later; no body publishes now"),
    responses(
        (status = 200, description = "Scheduled again: failure and previous attempt cleared, `post.retried` sent, \
                                      an `audit` entry added", body = PostView),
        (status = 400, description = "Malformed JSON or an unreadable path", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such post in this workspace", body = ErrorBody),
        (status = 409, description = "Not retryable: `may_double_post` (TikTok may have published it), \
                                      `needs_review` (resolve it first), `not_retryable` (not failed, or failed for \
                                      a reason retrying cannot fix), `concurrent_update`", body = ErrorBody),
        (status = 413, description = "Body over 1 MB", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 422, description = "The create-time rules, all violations (media, account, schedule, options)",
            body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn retry_post(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<Json<PostView>, ApiError> {
    let existing = load_post(&state, &caller.workspace_id, &id).await?;
    if let Some(refusal) = existing.retry_refusal() {
        return Err(conflict(refusal));
    }
    let (draft, mut violations) = read_retry(&existing, &body);
    let retried = checked(
        &state,
        &caller.workspace_id,
        draft,
        &mut violations,
        |draft, warnings, now| {
            let mut post = apply_patch(&existing, draft, warnings, now);
            post.mark_retried(post.scheduled_at?, &caller.key_id, now);
            post.note_scheduled(now);
            Some(post)
        },
    )
    .await?;
    let retried = save(&state, retried, existing.version).await?;
    arm_wakeup(&state, &retried).await;
    Ok(Json(PostView::from(&retried)))
}

#[utoipa::path(
    post, path = "/v1/posts/{id}/resolve", tag = "posts",
    params(("id" = String, Path, description = "Post id (post_...)")),
    request_body = ResolvePostRequest,
    responses(
        (status = 200, description = "Recorded: `completed` (published) or `failed` with `not_published_confirmed` \
                                      (not published; `retry` then accepts it); `post.resolved` sent, an `audit` \
                                      entry added", body = PostView),
        (status = 400, description = "Malformed JSON or an unreadable path", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such post in this workspace", body = ErrorBody),
        (status = 409, description = "`not_in_review`: only posts in needs_review can be resolved; \
                                      `concurrent_update`", body = ErrorBody),
        (status = 413, description = "Body over 1 MB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "`outcome` not one of the two, `postUrl` not an https URL on tiktok.com",
            body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn resolve_post(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<PostView>, ApiError> {
    let existing = load_post(&state, &caller.workspace_id, &id).await?;
    let resolution = read_resolution(&body).map_err(ApiError::Validation)?;
    let now = state.clock.now();
    let mut resolved = next_write(&existing, now);
    resolved.resolve(resolution, &caller.key_id, now).map_err(conflict)?;
    let resolved = save(&state, resolved, existing.version).await?;
    Ok(Json(PostView::from(&resolved)))
}

/// The stored post as the next write starts it: one version on, updated now.
fn next_write(existing: &Post, now: chrono::DateTime<chrono::Utc>) -> Post {
    Post {
        updated_at: now,
        version: existing.version + 1,
        ..existing.clone()
    }
}

/// Writes a transition (compare-and-set on the version read) and delivers the events it put in the outbox.
async fn save(state: &AppState, post: Post, expected_version: u64) -> Result<Post, ApiError> {
    state.stores.posts.update_post(&post, expected_version).await?;
    Ok(deliver(state, post).await)
}

/// Delivers what the written post holds in its outbox. The transition is saved whatever happens here, so a failure
/// is logged, not answered: the events stay in the outbox and the post stays due until the publisher delivers them
/// (an error would invite the caller to repeat a create that succeeded).
async fn deliver(state: &AppState, post: Post) -> Post {
    let written = post.clone();
    match deliver_outbox(state.stores.posts.as_ref(), state.events.as_ref(), post).await {
        Ok(post) => post,
        Err(error) => {
            tracing::warn!(post_id = %written.id, error = %error, "outbox not delivered; the publisher will deliver it");
            written
        }
    }
}

fn conflict(refusal: Refusal) -> ApiError {
    ApiError::Conflict {
        code: refusal.code,
        message: refusal.message,
    }
}

/// Loads what the draft names from the caller's workspace, checks the rules, and builds the post; all violations
/// (from reading and from checking) come back together in one 422.
async fn checked(
    state: &AppState,
    workspace: &WorkspaceId,
    mut draft: PostDraft,
    violations: &mut Vec<Violation>,
    build: impl FnOnce(PostDraft, Vec<shared::domain::Finding>, chrono::DateTime<chrono::Utc>) -> Option<Post>,
) -> Result<Post, ApiError> {
    // More media than any post takes is refused for its shape alone, before a single record is read (each named id
    // would cost a read); a smaller wrong count is reported with everything else.
    if draft.media.len() > PHOTO_MAX_IMAGES {
        if let Some(count) = media_count_violation(&draft) {
            report(violations, count);
            return Err(ApiError::Validation(std::mem::take(violations)));
        }
    }
    let (account, media) = load_references(state, workspace, &draft).await?;
    let now = state.clock.now();
    let ctx = RuleContext {
        now,
        app_audited: state.settings.app_audited,
        account: account.as_ref(),
        media: &media,
    };
    let mut warnings = check_draft(&draft, &ctx, violations);
    if !violations.is_empty() {
        return Err(ApiError::Validation(std::mem::take(violations)));
    }
    if let (Intent::Publish, Some(account)) = (draft.intent, &account) {
        warnings.extend(check_creator(state, account, &mut draft, &media, violations).await);
        if !violations.is_empty() {
            return Err(ApiError::Validation(std::mem::take(violations)));
        }
    }
    let mut post = build(draft, warnings, now)
        .ok_or_else(|| ApiError::internal("a draft without violations lacked a required field"))?;
    if let Some(tokens) = account.as_ref().and_then(|account| account.tokens.as_ref()) {
        post.plan_keepalive(tokens.refresh_expires_at, now);
    }
    Ok(post)
}

/// A post that will publish, against the creator's TikTok settings now, so that what would fail at fire time fails
/// here (see [`fit_to_creator`]). Drafts are not checked: they never reach TikTok until published, when they are.
async fn check_creator(
    state: &AppState,
    account: &Account,
    draft: &mut PostDraft,
    media: &HashMap<MediaId, Media>,
    violations: &mut Vec<Violation>,
) -> Vec<Finding> {
    let Some(creator) = creator_settings(state, account).await else {
        return vec![Finding::new(
            CREATOR_CHECK_DEFERRED,
            "TikTok could not be asked for this creator's settings just now; the post is checked against them \
             before it is sent, and fails then if they do not allow it",
        )];
    };
    let (conflicts, warnings) = fit_to_creator(draft, media, &creator);
    violations.extend(conflicts);
    warnings
}

async fn load_references(
    state: &AppState,
    workspace: &WorkspaceId,
    draft: &PostDraft,
) -> Result<(Option<Account>, HashMap<MediaId, Media>), ApiError> {
    let account = async {
        match &draft.account_id {
            Some(id) => state.stores.accounts.get_account(id).await,
            None => Ok(None),
        }
    };
    let ids: Vec<MediaId> = draft.media.iter().flatten().cloned().collect();
    let media = state.stores.media.get_media_many(&ids);
    let (account, media) = tokio::try_join!(account, media)?;
    // Another workspace's records are invisible: they read as not found.
    let account = account.filter(|a| &a.workspace_id == workspace);
    let media = media
        .into_iter()
        .filter(|m| &m.workspace_id == workspace)
        .map(|m| (m.id.clone(), m))
        .collect();
    Ok((account, media))
}

pub(crate) async fn load_post(state: &AppState, workspace: &WorkspaceId, raw_id: &str) -> Result<Post, ApiError> {
    let not_found = || ApiError::NotFound(format!("post {}", raw_id.chars().take(64).collect::<String>()));
    let id: PostId = raw_id.parse().map_err(|_| not_found())?;
    match state.stores.posts.get_post(&id).await? {
        Some(post) if &post.workspace_id == workspace => Ok(post),
        _ => Err(not_found()),
    }
}

fn not_editable(post: &Post, verb: &str) -> ApiError {
    ApiError::Conflict {
        code: "not_editable",
        message: format!(
            "post {} is {} and can no longer be {verb}: only draft and scheduled posts can",
            post.id,
            post.status.as_str()
        ),
    }
}

/// Arms the post's wakeup at once when it is due before the schedule tick would arm it, so that "publish now" goes
/// out in seconds, and because the ticks that already armed its window will not look at it again before it is due.
/// A lost wakeup loses nothing: the post sits in the due index and the first tick after its instant arms it.
async fn arm_wakeup(state: &AppState, post: &Post) {
    let now = state.clock.now();
    let scheduled_at = post.scheduled_at.unwrap_or(now);
    if scheduled_at < now + timer::DISPATCH_WINDOW {
        let wakeup = Wakeup {
            post_id: post.id.clone(),
            at: scheduled_at - timer::DEFAULT_LEAD,
        };
        if let Err(error) = state.timer.schedule(&[wakeup], now).await {
            tracing::warn!(post_id = %post.id, error = %error, "wakeup not armed; the schedule tick will arm it");
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::MalformedRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)".into(),
        )),
    }
}

/// Same route and same JSON (whatever its key order or spacing) hash the same.
fn request_fingerprint(route: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    write_canonical(body, &mut hasher);
    hex::encode(hasher.finalize())
}

/// Object keys in sorted order whatever the map implementation (serde_json's `preserve_order` feature, if any
/// dependency ever turns it on, would otherwise make key order significant). Depth is bounded by serde_json's
/// parser recursion limit.
fn write_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                write_canonical(&map[key.as_str()], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                write_canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

async fn replay(
    state: &AppState,
    workspace: &WorkspaceId,
    key: &str,
    request_hash: &str,
) -> Result<Option<Response>, ApiError> {
    let Some(record) = state
        .stores
        .idempotency
        .get_idempotency(workspace, key, state.clock.now())
        .await?
    else {
        return Ok(None);
    };
    if record.request_hash != request_hash {
        return Err(ApiError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used with another request body; use a new key for a new post".into(),
        });
    }
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, record.body);
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(Some(response))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}
