//! TikTok's webhooks over HTTP: only a fresh, valid signature is trusted; each event moves its post (or account)
//! once, with one event, however often TikTok delivers it.

mod support;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use chrono::Duration;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::{
    domain::{AccountStatus, Post, PostStatus, SealedTokens},
    events::EventType,
    ids::PostId,
    tiktok::{webhook, FailReason, SecretString},
    Clock,
};
use support::{account_record, AccountsFailingOnce, FailingCall, Reply, TestApp, CLIENT_SECRET};

const PUBLISH_ID: &str = "v_pub_file~v2-1.7300000000000000001";

/// A post TikTok accepted under `PUBLISH_ID`, for tenant A's account (whose username is `creator`).
async fn published_post(app: &TestApp, status: PostStatus) -> Post {
    let reply = app.post_as(&app.a, app.video_post()).await;
    let id: PostId = reply.body["id"].as_str().unwrap().parse().unwrap();
    let created = app.stores.posts.get_post(&id).await.unwrap().unwrap();
    let mut accepted = created.clone();
    accepted.status = status;
    accepted.publish.publish_id = Some(PUBLISH_ID.into());
    accepted.publish.published_at = Some(app.clock.now());
    accepted.version += 1;
    app.stores.posts.update_post(&accepted, created.version).await.unwrap();
    accepted
}

/// An event TikTok created a minute after the harness's start (after every record the tests create).
fn envelope(event: &str, open_id: &str, content: Value) -> String {
    json!({
        "client_key": "sandbox-client-key", "event": event, "create_time": support::start().timestamp() + 60,
        "user_openid": open_id, "content": content.to_string(),
    })
    .to_string()
}

fn publish_event(event: &str, content: Value) -> String {
    envelope(event, "open-user", content)
}

async fn deliver_signed(app: &TestApp, body: &str, secret: &str, at: chrono::DateTime<chrono::Utc>) -> Reply {
    let signature = webhook::sign(&SecretString::from(secret), at.timestamp(), body.as_bytes());
    deliver_with(app, body, Some(&signature)).await
}

async fn deliver(app: &TestApp, body: &str) -> Reply {
    deliver_signed(app, body, CLIENT_SECRET, app.clock.now()).await
}

async fn deliver_with(app: &TestApp, body: &str, signature: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/webhooks/tiktok")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(signature) = signature {
        request = request.header("TikTok-Signature", signature);
    }
    app.send(request.body(Body::from(body.to_owned())).unwrap()).await
}

fn events_of(app: &TestApp, event_type: EventType) -> usize {
    app.events
        .events()
        .iter()
        .filter(|e| e.event_type == event_type)
        .count()
}

async fn stored(app: &TestApp, post: &Post) -> Post {
    app.stores.posts.get_post(&post.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn when_the_signature_is_bad_should_answer_401_and_change_nothing() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;
    let before = app.events.events().len();
    let body = publish_event("post.publish.complete", json!({ "publish_id": PUBLISH_ID }));
    let good = webhook::sign(
        &SecretString::from(CLIENT_SECRET),
        app.clock.now().timestamp(),
        body.as_bytes(),
    );

    let attempts = [
        deliver_signed(&app, &body, "someone-elses-secret", app.clock.now()).await,
        deliver_with(&app, &format!("{body} "), Some(&good)).await,
        deliver_with(&app, &body, None).await,
        deliver_with(&app, &body, Some("t=abc,s=def")).await,
        deliver_with(&app, &body, Some(&good.replace("s=", "s=00"))).await,
    ];

    for reply in attempts {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_signature");
        assert!(
            !reply.headers.contains_key(header::WWW_AUTHENTICATE),
            "not an API key matter"
        );
    }
    assert_eq!(stored(&app, &post).await, post, "the post is unchanged");
    assert_eq!(app.events.events().len(), before, "no event");
}

#[tokio::test]
async fn when_the_signature_is_older_or_newer_than_five_minutes_should_answer_401() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;
    let body = publish_event("post.publish.complete", json!({ "publish_id": PUBLISH_ID }));

    let stale = deliver_signed(&app, &body, CLIENT_SECRET, app.clock.now() - Duration::seconds(301)).await;
    let future = deliver_signed(&app, &body, CLIENT_SECRET, app.clock.now() + Duration::seconds(301)).await;

    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert_eq!(future.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stored(&app, &post).await.status, PostStatus::Published);
    let recent = deliver_signed(&app, &body, CLIENT_SECRET, app.clock.now() - Duration::seconds(240)).await;
    assert_eq!(recent.status, StatusCode::OK, "within the tolerance");
}

#[tokio::test]
async fn when_publish_complete_arrives_should_complete_the_post_once_with_one_event() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;
    let body = publish_event(
        "post.publish.complete",
        json!({ "publish_id": PUBLISH_ID, "publish_type": "DIRECT_PUBLISH" }),
    );

    let first = deliver(&app, &body).await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body, json!({ "outcome": "applied" }));
    let completed = stored(&app, &post).await;
    assert_eq!(completed.status, PostStatus::Completed);
    assert_eq!(completed.publish.tiktok_status.as_deref(), Some("PUBLISH_COMPLETE"));
    assert_eq!(completed.publish.completed_at, Some(app.clock.now()));
    assert!(
        completed.outbox.is_empty(),
        "the event was delivered and left the outbox"
    );
    assert_eq!(events_of(&app, EventType::PostCompleted), 1);

    app.clock.advance(Duration::seconds(30));
    let again = deliver(&app, &body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, json!({ "outcome": "duplicate" }));
    assert_eq!(
        events_of(&app, EventType::PostCompleted),
        1,
        "a redelivery emits nothing"
    );
    assert_eq!(stored(&app, &post).await, completed);
}

#[tokio::test]
async fn when_the_same_delivery_arrives_concurrently_should_move_the_post_once() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Publishing).await;
    let body = publish_event("post.publish.complete", json!({ "publish_id": PUBLISH_ID }));

    let replies = join_all((0..8).map(|_| deliver(&app, &body))).await;

    let applied = replies.iter().filter(|r| r.body["outcome"] == "applied").count();
    assert_eq!(applied, 1);
    // A copy that came while the first was being applied is told to come back: a 200 would end TikTok's retries
    // before it is known that the first copy succeeds.
    for reply in &replies {
        let retry_later =
            reply.status == StatusCode::SERVICE_UNAVAILABLE && reply.headers.contains_key(header::RETRY_AFTER);
        assert!(
            reply.status == StatusCode::OK || retry_later,
            "{} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(events_of(&app, EventType::PostCompleted), 1);
    assert_eq!(stored(&app, &post).await.status, PostStatus::Completed);
    assert_eq!(
        deliver(&app, &body).await.body,
        json!({ "outcome": "duplicate" }),
        "the retry, later"
    );
}

#[tokio::test]
async fn when_publish_failed_arrives_should_fail_the_post_with_tiktoks_reason_and_its_advice() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;
    let body = publish_event(
        "post.publish.failed",
        json!({ "publish_id": PUBLISH_ID, "reason": "frame_rate_check_failed" }),
    );

    let reply = deliver(&app, &body).await;

    assert_eq!(reply.body, json!({ "outcome": "applied" }));
    let failed = stored(&app, &post).await;
    assert_eq!(failed.status, PostStatus::Failed);
    let failure = failed.failure.expect("a failure");
    assert_eq!(failure.code, "frame_rate_check_failed");
    assert_eq!(failure.message, FailReason::FrameRateCheckFailed.message());
    assert_eq!(failure.tiktok_fail_reason.as_deref(), Some("frame_rate_check_failed"));
    let events: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::PostFailed)
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["code"], "frame_rate_check_failed");

    let shown = app
        .call(Method::GET, &format!("/v1/posts/{}", post.id), Some(&app.a.key), None)
        .await;
    assert_eq!(shown.body["status"], "failed");
    assert_eq!(
        shown.body["failure"]["message"],
        FailReason::FrameRateCheckFailed.message()
    );
    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "duplicate" }));
    assert_eq!(events_of(&app, EventType::PostFailed), 1);
}

#[tokio::test]
async fn when_the_post_already_ended_should_leave_it_as_it_is() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Completed).await;
    let body = publish_event(
        "post.publish.failed",
        json!({ "publish_id": PUBLISH_ID, "reason": "internal" }),
    );

    let reply = deliver(&app, &body).await;

    assert_eq!(reply.body, json!({ "outcome": "unchanged" }));
    assert_eq!(stored(&app, &post).await, post);
    assert_eq!(events_of(&app, EventType::PostFailed), 0);
}

#[tokio::test]
async fn when_the_post_becomes_public_should_keep_tiktoks_post_id_exactly_and_its_url() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Completed).await;
    // A 19-digit id as a JSON number: more than a float can hold.
    let body = publish_event(
        "post.publish.publicly_available",
        json!({ "publish_id": PUBLISH_ID, "post_id": 7_300_000_000_000_000_123_u64 }),
    );

    let reply = deliver(&app, &body).await;

    assert_eq!(reply.body, json!({ "outcome": "applied" }));
    let public = stored(&app, &post).await;
    assert_eq!(public.publish.tiktok_post_id.as_deref(), Some("7300000000000000123"));
    assert_eq!(
        public.publish.post_url.as_deref(),
        Some("https://www.tiktok.com/@creator/video/7300000000000000123")
    );
    let shown = app
        .call(Method::GET, &format!("/v1/posts/{}", post.id), Some(&app.a.key), None)
        .await;
    assert_eq!(shown.body["tiktokPostId"], "7300000000000000123");
    assert_eq!(
        shown.body["postUrl"],
        "https://www.tiktok.com/@creator/video/7300000000000000123"
    );
    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "duplicate" }));
}

#[tokio::test]
async fn when_an_inbox_upload_is_delivered_should_record_tiktoks_status() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;
    let body = publish_event(
        "post.publish.inbox_delivered",
        json!({ "publish_id": PUBLISH_ID, "publish_type": "INBOX_SHARE" }),
    );

    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "applied" }));

    let delivered = stored(&app, &post).await;
    assert_eq!(delivered.publish.tiktok_status.as_deref(), Some("SEND_TO_USER_INBOX"));
    assert_eq!(
        delivered.status,
        PostStatus::Published,
        "the user finishes it in the app"
    );
    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "duplicate" }));
}

#[tokio::test]
async fn when_the_publish_id_the_event_or_the_body_is_unknown_should_answer_200_and_ignore_it() {
    let app = TestApp::new().await;
    let post = published_post(&app, PostStatus::Published).await;

    for body in [
        publish_event(
            "post.publish.complete",
            json!({ "publish_id": "v_pub_file~v2-1.unknown" }),
        ),
        publish_event("video.something_new", json!({ "anything": 1 })),
        publish_event(
            "post.publish.no_longer_publicaly_available",
            json!({ "publish_id": PUBLISH_ID, "post_id": "1" }),
        ),
        "not json at all".to_owned(),
        json!({ "event": "post.publish.complete", "content": "{}" }).to_string(),
    ] {
        let reply = deliver(&app, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
        assert_eq!(reply.body, json!({ "outcome": "ignored" }), "{body}");
    }
    assert_eq!(stored(&app, &post).await, post);
    assert_eq!(events_of(&app, EventType::PostCompleted), 0);
}

#[tokio::test]
async fn when_the_user_removes_the_app_should_disconnect_each_of_their_accounts_once() {
    let app = TestApp::new().await;
    let sealed = SealedTokens {
        access_token: "sealed-access".into(),
        access_expires_at: app.clock.now() + Duration::hours(2),
        refresh_token: "sealed-refresh".into(),
        refresh_expires_at: app.clock.now() + Duration::days(180),
    };
    let mut accounts = Vec::new();
    for workspace in [&app.a.workspace, &app.b.workspace] {
        let mut account = account_record(workspace, AccountStatus::Connected);
        account.open_id = "open-shared-user".into();
        account.tokens = Some(sealed.clone());
        app.stores.accounts.create_account(&account).await.unwrap();
        accounts.push(account);
    }
    let body = envelope("authorization.removed", "open-shared-user", json!({ "reason": 1 }));

    let reply = deliver(&app, &body).await;

    assert_eq!(reply.body, json!({ "outcome": "applied" }));
    for account in &accounts {
        let stored = app.stores.accounts.get_account(&account.id).await.unwrap().unwrap();
        assert_eq!(stored.status, AccountStatus::Disconnected);
        assert_eq!(stored.tokens, None, "tokens forgotten");
    }
    assert_eq!(events_of(&app, EventType::AccountReauthRequired), 2);
    let untouched = app.stores.accounts.get_account(&app.a.account).await.unwrap().unwrap();
    assert_eq!(untouched.status, AccountStatus::Connected, "other users' accounts stay");

    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "duplicate" }));
    assert_eq!(events_of(&app, EventType::AccountReauthRequired), 2);
    let stranger = envelope("authorization.removed", "open-nobody", json!({ "reason": 1 }));
    assert_eq!(deliver(&app, &stranger).await.body, json!({ "outcome": "ignored" }));
}

/// Issue 12 §2: the announcement names the posts that fail unless the user reconnects first, soonest first.
#[tokio::test]
async fn when_the_user_removes_the_app_should_name_the_accounts_scheduled_posts_at_risk() {
    let app = TestApp::new().await;
    let mut scheduled = Vec::new();
    for hours in [48, 24] {
        let mut body = app.video_post();
        body["scheduledAt"] = json!(app.clock.now() + Duration::hours(hours));
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        scheduled.push(reply.body["id"].clone());
    }
    let mut draft = app.video_post();
    draft["status"] = json!("draft");
    assert_eq!(app.post_as(&app.a, draft).await.status, StatusCode::CREATED);
    let account = app.stores.accounts.get_account(&app.a.account).await.unwrap().unwrap();

    let removed = envelope("authorization.removed", &account.open_id, json!({ "reason": 1 }));
    assert_eq!(deliver(&app, &removed).await.body, json!({ "outcome": "applied" }));

    let announced = app
        .events
        .events()
        .into_iter()
        .find(|e| e.event_type == EventType::AccountReauthRequired)
        .expect("announced");
    let at_risk: Vec<_> = announced.data["postsAtRisk"]
        .as_array()
        .expect("postsAtRisk")
        .iter()
        .map(|p| p["postId"].clone())
        .collect();
    assert_eq!(
        at_risk,
        [scheduled[1].clone(), scheduled[0].clone()],
        "scheduled ones, soonest first; no draft"
    );
    assert_eq!(announced.data["morePostsAtRisk"], false);
}

/// Issue 12 §4: `account.reauth_required` travels through the account's outbox, written by the same write as the
/// disconnect: a bus that refuses keeps it there, and it leaves the next time the account's tokens are asked for
/// (here the composer's creator-info; in the publisher, every due post of the account).
#[tokio::test]
async fn when_the_bus_refuses_account_reauth_required_it_waits_in_the_accounts_outbox_and_leaves_later() {
    let app = TestApp::new().await;
    let mut account = account_record(&app.a.workspace, AccountStatus::Connected);
    account.open_id = "open-outbox-user".into();
    app.stores.accounts.create_account(&account).await.unwrap();
    app.events.refuse_next(1);

    let removed = envelope("authorization.removed", "open-outbox-user", json!({ "reason": 1 }));
    assert_eq!(deliver(&app, &removed).await.body, json!({ "outcome": "applied" }));

    assert_eq!(
        events_of(&app, EventType::AccountReauthRequired),
        0,
        "the bus refused it"
    );
    let stored = app.stores.accounts.get_account(&account.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Disconnected);
    assert_eq!(stored.outbox.len(), 1, "kept, not lost");

    let path = format!("/v1/accounts/{}/creator-info", account.id);
    let info = app.call(Method::GET, &path, Some(&app.a.key), None).await;
    assert_eq!(info.status, StatusCode::CONFLICT, "{}", info.body);
    assert_eq!(events_of(&app, EventType::AccountReauthRequired), 1);
    let stored = app.stores.accounts.get_account(&account.id).await.unwrap().unwrap();
    assert!(stored.outbox.is_empty());
}

/// A delivery whose key was claimed but whose applying failed must not be taken for a duplicate later: TikTok
/// redelivers it because we answered 503, and that redelivery is applied.
#[tokio::test]
async fn when_applying_fails_should_answer_503_and_apply_tiktoks_redelivery() {
    let app = TestApp::with_stores(|stores| {
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        stores.accounts = AccountsFailingOnce::wrap(stores.accounts.clone(), FailingCall::FindByOpenId, armed);
    })
    .await;
    let mut account = account_record(&app.a.workspace, AccountStatus::Connected);
    account.open_id = "open-flaky-user".into();
    app.stores.accounts.create_account(&account).await.unwrap();
    let body = envelope("authorization.removed", "open-flaky-user", json!({ "reason": 1 }));

    let failed = deliver(&app, &body).await;
    app.clock.advance(Duration::seconds(5));
    let redelivered = deliver(&app, &body).await;

    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", failed.body);
    assert!(failed.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(redelivered.body, json!({ "outcome": "applied" }), "not a duplicate");
    let stored = app.stores.accounts.get_account(&account.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Disconnected);
    assert_eq!(deliver(&app, &body).await.body, json!({ "outcome": "duplicate" }));
}
