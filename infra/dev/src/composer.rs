//! The reference "Post to TikTok" page (`infra/dev/composer/`), embedded in the binary so that running the runner is
//! all it takes to see it: `/` and `/composer/*`. The page talks only to the public API. The one thing only the
//! runner adds is `/composer/dev-key`, which hands the dev workspace's key to a page of its own origin; hosted next
//! to the API in AWS the same files ask the user for a key instead. Not part of the product's API (nor its OpenAPI
//! document).

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

/// Every file of the page: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../composer/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../composer/api.js"),
    ),
    (
        "rules.js",
        "text/javascript; charset=utf-8",
        include_str!("../composer/rules.js"),
    ),
    (
        "composer.css",
        "text/css; charset=utf-8",
        include_str!("../composer/composer.css"),
    ),
    (
        "config.json",
        "application/json",
        include_str!("../composer/config.json"),
    ),
];
const INDEX: &str = include_str!("../composer/index.html");

/// Scripts, styles and connections from this origin only; images and videos also from the page's own blob: URLs
/// (previews of the files being uploaded). Media of TikTok's own (avatars) is not shown, so nothing else is needed.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

#[derive(Clone)]
struct ComposerState {
    dev_api_key: String,
}

pub fn router(dev_api_key: String) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/composer/dev-key", get(dev_key))
        .route("/composer/{file}", get(file))
        .with_state(ComposerState { dev_api_key })
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Same-origin only (no CORS header): another site open in the same browser cannot read it. Only to a loopback
/// host name too: a site that rebinds its own name to 127.0.0.1 (DNS rebinding) would be same-origin with itself.
async fn dev_key(State(state): State<ComposerState>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_host(host) {
        return (
            StatusCode::FORBIDDEN,
            "the dev key is offered only at a loopback address",
        )
            .into_response();
    }
    let mut response = Json(json!({ "apiKey": state.dev_api_key })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `127.0.0.1:8080`, `localhost`, `[::1]:8080`: a Host header naming this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "[::1]") || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the binary: a browser must not keep last build's page.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, String, String) {
        get_from("127.0.0.1:8080", path).await
    }

    async fn get_from(host: &str, path: &str) -> (StatusCode, String, String) {
        let response = router("pk_test".into())
            .oneshot(
                Request::get(path)
                    .header(header::HOST, host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn root_serves_the_composer_page() {
        let (status, content_type, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"));
        assert!(body.contains("composer/app.js"));
    }

    #[tokio::test]
    async fn every_file_the_page_names_is_served_with_its_type() {
        let (_, _, index) = get("/").await;
        let (_, _, app) = get("/composer/app.js").await;
        for (name, content_type, _) in FILES {
            let named = index.contains(&format!("composer/{name}")) || app.contains(&format!("./{name}"));
            assert!(named || *name == "config.json", "{name} is served but not used");
            let (status, served_type, _) = get(&format!("/composer/{name}")).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(served_type, *content_type, "{name}");
        }
    }

    #[tokio::test]
    async fn unknown_files_are_not_found() {
        let (status, _, _) = get("/composer/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get("/composer/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_dev_key_is_served_to_the_page() {
        let (status, _, body) = get("/composer/dev-key").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"apiKey":"pk_test"}"#);
    }

    #[tokio::test]
    async fn the_dev_key_is_refused_to_other_host_names() {
        for host in ["localhost:8080", "[::1]:8080", "127.0.0.2"] {
            assert_eq!(get_from(host, "/composer/dev-key").await.0, StatusCode::OK, "{host}");
        }
        for host in ["evil.example:8080", "evil.example", "192.168.1.5:8080", ""] {
            assert_eq!(
                get_from(host, "/composer/dev-key").await.0,
                StatusCode::FORBIDDEN,
                "{host}"
            );
        }
    }
}
