//! `/v1/media`: announce an upload (get a URL to PUT the bytes to), see the validator's verdict, delete media.

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::{
    domain::{Finding, Media, MediaKind, MediaStatus, MediaVerdict, Post, PostStatus},
    ids::{MediaId, WorkspaceId},
    media_jobs::MediaJob,
    ports::PostFilter,
    rules::Violation,
};

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Caller, JsonBody, PathParam},
    schemas::CreateMediaRequest,
    views::MediaView,
    AppState,
};

const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/mpeg", "video/mp2t"];
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];
const FILE_NAME_MAX: usize = 255;
/// Posts read per listing call while looking for a post that uses media being deleted.
const POSTS_PER_PAGE: usize = 100;

#[utoipa::path(
    post, path = "/v1/media", tag = "media",
    request_body = CreateMediaRequest,
    responses(
        (status = 201, description = "Created; PUT the bytes to `upload.url` with `upload.headers` (with `sourceUrl`: \
            no upload, the media is `importing`)", body = MediaView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Bad kind, type, or a size over the guide's limits", body = ErrorBody),
        (status = 503, description = "With `sourceUrl`: the import could not be started; nothing will be fetched, \
            try again", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn create_media(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<MediaView>), ApiError> {
    let request = read_media_request(&body).map_err(ApiError::Validation)?;
    if let Some(url) = request.source_url.clone() {
        return import_media(state, caller, request, url).await;
    }
    let now = state.clock.now();
    let media = new_media(caller, request, MediaStatus::PendingUpload, now);
    let upload = state
        .blobs
        .presign_upload(
            &media.object_key,
            &media.content_type,
            media.declared_size,
            now,
            state.settings.upload_url_ttl,
        )
        .await?;
    state.stores.media.create_media(&media).await?;
    Ok((StatusCode::CREATED, Json(MediaView::new(&media, Some(upload)))))
}

#[utoipa::path(
    get, path = "/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "Media id (med_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 200, description = "Status and, once validated, the verdict", body = MediaView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn get_media(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<Json<MediaView>, ApiError> {
    let media = load_media(&state, &caller.workspace_id, &id).await?;
    Ok(Json(MediaView::new(&media, None)))
}

#[utoipa::path(
    delete, path = "/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "Media id (med_...)")),
    responses(
        (status = 400, description = "Unreadable path or query: not UTF-8, a repeated parameter", body = ErrorBody),
        (status = 204, description = "Deleted: the record, the uploaded file and its rendition; the id is unknown \
            from now on (deleting again is a 404). Drafts and finished posts naming it keep the id"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`media_in_use`: a scheduled, publishing or published post uses the media; \
            cancel it, or edit it to other media, first", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn delete_media(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let media = load_media(&state, &caller.workspace_id, &id).await?;
    if let Some(post) = post_sending(&state, &media).await? {
        return Err(ApiError::Conflict {
            code: "media_in_use",
            message: format!(
                "post {} ({}) uses media {}: cancel the post, or edit it to other media, then delete the media",
                post.id,
                post.status.as_str(),
                media.id
            ),
        });
    }
    // The files first and the record last: a delete that fails midway can be repeated and finishes, since deleting a
    // missing file succeeds.
    for key in media.object_keys() {
        state.blobs.delete(key).await?;
    }
    state.stores.media.delete_media(&media.id).await?;
    tracing::info!(media_id = %media.id, "media deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A post that may still send `media` ([`PostStatus::SENDING`]), if any. A listing per state, filtered in the store
/// (in DynamoDB the workspace index is read through, so a workspace with many posts pays for each page). Not atomic
/// with the delete: a post created with the media between the listing and the delete fails at its time with
/// `media_missing`, which says what happened.
async fn post_sending(state: &AppState, media: &Media) -> Result<Option<Post>, ApiError> {
    for status in PostStatus::SENDING {
        let filter = PostFilter {
            account_id: None,
            status: Some(status),
        };
        let mut cursor = None;
        loop {
            let page = state
                .stores
                .posts
                .list_posts(&media.workspace_id, &filter, POSTS_PER_PAGE, cursor.as_deref())
                .await?;
            if let Some(post) = page.items.into_iter().find(|post| post.media.contains(&media.id)) {
                return Ok(Some(post));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(None)
}

async fn load_media(state: &AppState, workspace: &WorkspaceId, raw_id: &str) -> Result<Media, ApiError> {
    let not_found = || ApiError::NotFound(format!("media {}", raw_id.chars().take(64).collect::<String>()));
    let id: MediaId = raw_id.parse().map_err(|_| not_found())?;
    match state.stores.media.get_media(&id).await? {
        Some(media) if &media.workspace_id == workspace => Ok(media),
        _ => Err(not_found()),
    }
}

/// A media record as announced by `request`, version 1, in `status`.
fn new_media(caller: Caller, request: MediaRequest, status: MediaStatus, now: DateTime<Utc>) -> Media {
    let id = MediaId::new();
    Media {
        object_key: Media::object_key_for(&caller.workspace_id, &id),
        id,
        workspace_id: caller.workspace_id,
        kind: request.kind,
        content_type: request.content_type,
        declared_size: request.size_bytes,
        file_name: request.file_name,
        status,
        verdict: None,
        created_at: now,
        updated_at: now,
        version: 1,
        waiting_posts: Vec::new(),
    }
}

struct MediaRequest {
    kind: MediaKind,
    content_type: String,
    size_bytes: u64,
    file_name: String,
    source_url: Option<String>,
}

/// `POST /v1/media` with `sourceUrl`: the media starts `importing` and the import is handed to the media worker
/// (never run inside the request). Created first, so the worker always finds the record it is told about; when the
/// queue refuses the job the media is closed `invalid` (`import_not_started`) rather than left `importing` with
/// nothing coming, and the caller gets a 503 to try again. Where no queue is configured the field is refused before
/// anything is stored.
async fn import_media(
    state: AppState,
    caller: Caller,
    request: MediaRequest,
    url: String,
) -> Result<(StatusCode, Json<MediaView>), ApiError> {
    let Some(jobs) = state.settings.media_jobs.clone() else {
        return Err(ApiError::Validation(vec![Violation::new(
            "sourceUrl",
            "unavailable",
            "importing from a URL is not available in this deployment: upload the file instead",
        )]));
    };
    let media = new_media(caller, request, MediaStatus::Importing, state.clock.now());
    state.stores.media.create_media(&media).await?;
    let job = MediaJob::Import {
        media_id: media.id.clone(),
        url,
    };
    if let Err(error) = jobs.0.enqueue(&job).await {
        close_unqueued_import(&state, media).await;
        return Err(error.into());
    }
    Ok((StatusCode::CREATED, Json(MediaView::new(&media, None))))
}

/// Ends an import that was never queued, with a compare-and-set against the record just created. Best effort: if
/// the store fails too the media stays `importing`, but its id was never given out, so no post can wait on it.
async fn close_unqueued_import(state: &AppState, media: Media) {
    let now = state.clock.now();
    let mut closed = media.clone();
    closed.status = MediaStatus::Invalid;
    closed.verdict = Some(MediaVerdict::refused(
        Finding::new(
            "import_not_started",
            "The import could not be started (the import queue was unavailable). Create the media again.",
        ),
        now,
    ));
    closed.version += 1;
    closed.updated_at = now;
    if let Err(error) = state.stores.media.update_media(&closed, media.version).await {
        tracing::error!(media_id = %media.id, error = %error, "an import never queued could not be closed");
    }
}

/// The scheme and shape only: which addresses may be fetched is decided when connecting.
fn read_source_url(value: Option<&Value>, violations: &mut Vec<Violation>) -> Option<String> {
    let value = value.filter(|v| !v.is_null())?;
    let parsed = value
        .as_str()
        .filter(|s| s.len() <= 2048)
        .and_then(|s| url::Url::parse(s).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    match parsed {
        Some(url) => Some(url.to_string()),
        None => {
            violations.push(Violation::new(
                "sourceUrl",
                "invalid_value",
                "sourceUrl must be an https URL of at most 2048 characters",
            ));
            None
        }
    }
}

fn read_media_request(body: &Value) -> Result<MediaRequest, Vec<Violation>> {
    let mut violations = Vec::new();
    let Some(fields) = body.as_object() else {
        return Err(vec![Violation::new(
            "",
            "invalid_type",
            "the body must be a JSON object",
        )]);
    };
    for name in fields.keys() {
        if !["kind", "contentType", "sizeBytes", "fileName", "sourceUrl"].contains(&name.as_str()) {
            violations.push(Violation::new(
                name.as_str(),
                "unknown_field",
                format!("{name} is not a field of media"),
            ));
        }
    }
    let kind = match fields.get("kind").and_then(Value::as_str) {
        Some("video") => Some(MediaKind::Video),
        Some("image") => Some(MediaKind::Image),
        _ => {
            violations.push(Violation::new(
                "kind",
                "invalid_value",
                "kind must be \"video\" or \"image\"",
            ));
            None
        }
    };
    let source_url = read_source_url(fields.get("sourceUrl"), &mut violations);
    let importing = fields.get("sourceUrl").is_some_and(|v| !v.is_null());
    let content_type = fields
        .get("contentType")
        .and_then(Value::as_str)
        .map(|t| t.trim().to_ascii_lowercase())
        // An import's type is decided by its content; the declared one is only a label.
        .or_else(|| importing.then(|| "application/octet-stream".to_owned()));
    match (kind, content_type.as_deref()) {
        (_, None) => violations.push(Violation::new(
            "contentType",
            "required",
            "contentType is required, e.g. video/mp4",
        )),
        (Some(_), Some("application/octet-stream")) if importing => {}
        (Some(kind), Some(content_type)) => {
            let allowed = match kind {
                MediaKind::Video => VIDEO_TYPES,
                MediaKind::Image => IMAGE_TYPES,
            };
            if !allowed.contains(&content_type) {
                violations.push(Violation::new(
                    "contentType",
                    "unsupported_content_type",
                    format!(
                        "{} uploads must be one of {} (the guide: MP4, MOV or MPEG video; JPEG, PNG or WebP images)",
                        kind.as_str(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        (None, Some(_)) => {}
    }
    let size_bytes = match fields.get("sizeBytes").map(|v| (v, v.as_u64())) {
        // Unknown until fetched; the limits apply while streaming.
        None if importing => Some(0),
        None => {
            violations.push(Violation::new(
                "sizeBytes",
                "required",
                "sizeBytes is required: the exact file size",
            ));
            None
        }
        Some((_, Some(size))) if size > 0 => {
            if let Some(kind) = kind {
                if size > kind.max_size_bytes() {
                    violations.push(Violation::new(
                        "sizeBytes",
                        "too_large",
                        format!(
                            "{} files may be at most {} bytes (the guide: 4 GB per video, 20 MB per image)",
                            kind.as_str(),
                            kind.max_size_bytes()
                        ),
                    ));
                }
            }
            Some(size)
        }
        Some(_) => {
            violations.push(Violation::new(
                "sizeBytes",
                "invalid_type",
                "sizeBytes must be a whole number above 0",
            ));
            None
        }
    };
    let file_name = match fields.get("fileName") {
        None | Some(Value::Null) => "upload".to_owned(),
        Some(Value::String(name)) if !name.is_empty() && name.chars().count() <= FILE_NAME_MAX => name.clone(),
        Some(_) => {
            violations.push(Violation::new(
                "fileName",
                "invalid_value",
                format!("fileName must be a string of 1 to {FILE_NAME_MAX} characters"),
            ));
            String::new()
        }
    };
    match (kind, content_type, size_bytes) {
        (Some(kind), Some(content_type), Some(size_bytes)) if violations.is_empty() => Ok(MediaRequest {
            kind,
            content_type,
            size_bytes,
            file_name,
            source_url,
        }),
        _ => Err(violations),
    }
}
