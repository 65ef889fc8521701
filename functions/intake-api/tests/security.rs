//! Hostile input over HTTP (issue 11): each test is named after the attack it replays. Every refusal is a 4xx in the
//! API's error shape, and changes nothing.

mod support;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use serde_json::json;
use shared::{
    domain::{Post, PostStatus},
    ids::PostId,
    tiktok::{webhook, SecretString},
    Clock,
};
use support::{Reply, TestApp, CLIENT_SECRET};

const PUBLISH_ID: &str = "v_pub_file~v2-1.7300000000000000001";

/// The documented error shape: `{"error":{"code","message","requestId",...}}`.
fn assert_error_shape(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(reply.body["error"]["message"].is_string(), "{}", reply.body);
    assert!(
        reply.body["error"]["requestId"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")),
        "{}",
        reply.body
    );
}

/// A post TikTok accepted under `PUBLISH_ID`, so that a webhook could move it.
async fn published_post(app: &TestApp) -> Post {
    let reply = app.post_as(&app.a, app.video_post()).await;
    let id: PostId = reply.body["id"].as_str().unwrap().parse().unwrap();
    let created = app.stores.posts.get_post(&id).await.unwrap().unwrap();
    let mut accepted = created.clone();
    accepted.status = PostStatus::Published;
    accepted.publish.publish_id = Some(PUBLISH_ID.into());
    accepted.publish.published_at = Some(app.clock.now());
    accepted.version += 1;
    app.stores.posts.update_post(&accepted, created.version).await.unwrap();
    accepted
}

async fn deliver_webhook(app: &TestApp, body: &str, signature: &str) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/webhooks/tiktok")
        .header(header::CONTENT_TYPE, "application/json")
        .header("TikTok-Signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap();
    app.send(request).await
}

fn complete_event(client_key: &str) -> String {
    json!({
        "client_key": client_key, "event": "post.publish.complete", "create_time": 1_700_000_000,
        "user_openid": "open-user", "content": json!({ "publish_id": PUBLISH_ID }).to_string(),
    })
    .to_string()
}

#[tokio::test]
async fn attack_webhook_timestamp_i64_min_is_refused_without_panic() {
    let app = TestApp::new().await;
    let post = published_post(&app).await;
    let before = app.events.events().len();
    let body = complete_event("sandbox-client-key");

    for timestamp in [i64::MIN, i64::MAX] {
        let signature = webhook::sign(&SecretString::from(CLIENT_SECRET), timestamp, body.as_bytes());
        let reply = deliver_webhook(&app, &body, &signature).await;
        assert_error_shape(&reply, StatusCode::UNAUTHORIZED, "invalid_signature");
    }
    let reply = deliver_webhook(&app, &body, "t=-9223372036854775808,s=00").await;
    assert_error_shape(&reply, StatusCode::UNAUTHORIZED, "invalid_signature");

    assert_eq!(app.stores.posts.get_post(&post.id).await.unwrap().unwrap(), post);
    assert_eq!(app.events.events().len(), before, "no event");
}

#[tokio::test]
async fn attack_webhook_for_another_client_key_is_refused_and_changes_nothing() {
    let app = TestApp::new().await;
    let post = published_post(&app).await;
    let before = app.events.events().len();

    for client_key in ["another-apps-client-key", ""] {
        let body = complete_event(client_key);
        let signature = webhook::sign(
            &SecretString::from(CLIENT_SECRET),
            app.clock.now().timestamp(),
            body.as_bytes(),
        );
        let reply = deliver_webhook(&app, &body, &signature).await;
        assert_error_shape(&reply, StatusCode::BAD_REQUEST, "foreign_client_key");
    }

    assert_eq!(app.stores.posts.get_post(&post.id).await.unwrap().unwrap(), post);
    assert_eq!(app.events.events().len(), before, "no event");
}
