//! The intake API: one axum `Router`, served by `lambda_http` in Lambda and by `axum::serve` in the local runner.
#![forbid(unsafe_code)]

pub mod config;
pub mod creator_cache;
pub mod error;
pub mod extract;
pub mod routes;
pub mod schemas;
pub mod views;

use std::{ops::Deref, sync::Arc};

use axum::{extract::DefaultBodyLimit, http::StatusCode, middleware, response::IntoResponse, Extension, Router};
use shared::{
    accounts::TokenService,
    ports::{BlobStore, EventSink, Stores, Timer},
    Clock,
};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use config::IntakeSettings;
use error::ApiError;

/// Everything a handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    deps: Arc<Deps>,
    /// Process-local: each Lambda environment keeps its own (see [`creator_cache`]).
    creators: Arc<creator_cache::CreatorCache>,
}

pub struct Deps {
    pub stores: Stores,
    pub blobs: Arc<dyn BlobStore>,
    pub events: Arc<dyn EventSink>,
    /// Arms the publisher's wakeup for a post due before the next schedule tick would.
    pub timer: Arc<dyn Timer>,
    pub clock: Arc<dyn Clock>,
    /// TikTok: fresh access tokens (refreshed single-flight), and through it the client (whose configuration holds
    /// the redirect URI and the client secret that signs webhooks) and the cipher sealing tokens at rest.
    pub tokens: TokenService,
    pub settings: IntakeSettings,
}

impl AppState {
    pub fn new(deps: Deps) -> Self {
        Self {
            deps: Arc::new(deps),
            creators: Arc::default(),
        }
    }

    pub fn creators(&self) -> &creator_cache::CreatorCache {
        &self.creators
    }
}

impl Deref for AppState {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postato for TikTok",
        description = "Schedule and publish TikTok videos and photo carousels. Authenticate with \
                       `Authorization: Bearer <API key>`; every record is scoped to the key's workspace.",
        version = "1.0.0"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "posts", description = "Create, schedule, edit and cancel posts"),
        (name = "media", description = "Upload videos and images and see their validation"),
        (name = "accounts", description = "Connect TikTok accounts, see what each creator may post now, disconnect them"),
        (name = "webhooks", description = "TikTok's signed notifications (no API key)"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API key")
                    .build(),
            ),
        );
    }
}

/// Every operation that touches a store may meet it unavailable (DynamoDB throttling, a SQLite write lock held
/// elsewhere) and answer 503 with `Retry-After` ([`ApiError::Unavailable`]); declared once here rather than on each
/// route, and the header added to the routes' own 503s (TikTok unavailable). Applied to the finished document: the
/// routes are not in it yet when `ApiDoc`'s own modifiers run.
struct RetryShortly;

impl Modify for RetryShortly {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            schema::{Object, Type},
            Content, HeaderBuilder, Ref, RefOr, Response,
        };
        let retry_after = HeaderBuilder::new()
            .schema(Object::with_type(Type::Integer))
            .description(Some(format!(
                "Seconds to wait before retrying ({})",
                error::RETRY_AFTER_SECONDS
            )))
            .build();
        let mut unavailable =
            Response::new("A backing store is busy or unavailable; retry after `Retry-After` seconds");
        unavailable.content.insert(
            "application/json".to_owned(),
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The document itself is served from memory.
            if path == "/v1/openapi.json" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let response = operation
                    .responses
                    .responses
                    .entry("503".to_owned())
                    .or_insert_with(|| RefOr::T(unavailable.clone()));
                if let RefOr::T(response) = response {
                    response.headers.insert("Retry-After".to_owned(), retry_after.clone());
                }
            }
        }
    }
}

/// The routes and their OpenAPI document, built together so that no route can be missing from the document.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::posts::create_post, routes::posts::list_posts))
        .routes(routes!(
            routes::posts::get_post,
            routes::posts::patch_post,
            routes::posts::delete_post
        ))
        .routes(routes!(routes::posts::retry_post))
        .routes(routes!(routes::posts::resolve_post))
        .routes(routes!(routes::media::create_media))
        .routes(routes!(routes::media::get_media, routes::media::delete_media))
        .routes(routes!(routes::accounts::list_accounts))
        .routes(routes!(routes::connect::connect))
        .routes(routes!(routes::connect::callback))
        .routes(routes!(routes::connect::claim_connection))
        .routes(routes!(routes::accounts::get_account, routes::accounts::delete_account))
        .routes(routes!(routes::accounts::creator_info))
        .routes(routes!(routes::webhooks::tiktok_webhook))
        .routes(routes!(openapi_json))
        .split_for_parts();
    RetryShortly.modify(&mut document);
    (routes, document)
}

/// OpenAPI links from each create to the operations on what it created, so clients (and schemathesis's stateful
/// tests) can follow the returned id instead of guessing one. Added to the JSON because utoipa 5.5 serialises its
/// `Link` type with snake_case field names (`operation_id`), which OpenAPI does not know.
fn with_links(mut document: serde_json::Value) -> serde_json::Value {
    let follow = [
        (
            "/v1/posts",
            &["get_post", "patch_post", "delete_post", "retry_post", "resolve_post"][..],
        ),
        ("/v1/media", &["get_media", "delete_media"][..]),
    ];
    for (path, targets) in follow {
        let Some(responses) = document.pointer_mut(&format!("/paths/{}/post/responses", path.replace('/', "~1")))
        else {
            continue;
        };
        let Some(responses) = responses.as_object_mut() else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if !status.starts_with('2') {
                continue;
            }
            let links: serde_json::Map<String, serde_json::Value> = targets
                .iter()
                .map(|target| {
                    let link = serde_json::json!({
                        "operationId": target,
                        "parameters": {"id": "$response.body#/id"},
                        "description": format!("{target} on the created record"),
                    });
                    ((*target).to_owned(), link)
                })
                .collect();
            response["links"] = serde_json::Value::Object(links);
        }
    }
    document
}

/// The OpenAPI document as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

pub fn router(state: AppState) -> Router {
    let (routes, document) = routes_and_document();
    let document = serde_json::to_value(&document).map(with_links).unwrap_or_default();
    let document = Arc::new(document.to_string());
    routes
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(middleware::from_fn(extract::request_id))
        .with_state(state)
}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn openapi_json(Extension(document): Extension<Arc<String>>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document.as_str().to_owned(),
    )
}

async fn route_not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response = ApiError::Conflict {
        code: "method_not_allowed",
        message: "method not allowed on this route".into(),
    }
    .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
