//! Hostile input over HTTP (issue 11): each test is named after the attack it replays. Every refusal is a 4xx in the
//! API's error shape, and changes nothing.

mod support;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use serde_json::{json, Value};
use shared::{
    accounts::{Refused, TokenError},
    domain::{Account, Media, Post, PostStatus, SealedTokens},
    ids::{AccountId, MediaId, PostId},
    ports::{MediaRepo, StoreResult},
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

/// Counts every media record the API asks its store for.
struct CountingMedia {
    inner: Arc<dyn MediaRepo>,
    reads: Arc<AtomicUsize>,
}

#[async_trait]
impl MediaRepo for CountingMedia {
    async fn create_media(&self, media: &Media) -> StoreResult<()> {
        self.inner.create_media(media).await
    }

    async fn get_media(&self, id: &MediaId) -> StoreResult<Option<Media>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_media(id).await
    }

    async fn get_media_many(&self, ids: &[MediaId]) -> StoreResult<Vec<Media>> {
        self.reads.fetch_add(ids.len(), Ordering::SeqCst);
        self.inner.get_media_many(ids).await
    }

    async fn update_media(&self, media: &Media, expected_version: u64) -> StoreResult<()> {
        self.inner.update_media(media, expected_version).await
    }

    async fn delete_media(&self, id: &MediaId) -> StoreResult<()> {
        self.inner.delete_media(id).await
    }
}

async fn app_counting_media_reads() -> (TestApp, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    let app = TestApp::with_stores(|stores| {
        stores.media = Arc::new(CountingMedia {
            inner: stores.media.clone(),
            reads: counter,
        })
    })
    .await;
    (app, reads)
}

#[tokio::test]
async fn attack_photo_post_naming_24500_unknown_media_is_refused_before_any_store_read() {
    let (app, reads) = app_counting_media_reads().await;
    let media: Vec<Value> = (0..24_500).map(|_| json!({ "id": MediaId::new() })).collect();
    let mut body = app.photo_post(2);
    body["media"] = Value::Array(media);

    let reply = app.post_as(&app.a, body).await;

    assert_error_shape(&reply, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(reply.body["error"]["details"][0]["field"], "media", "{}", reply.body);
    assert_eq!(reply.body["error"]["details"][0]["code"], "wrong_count");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        0,
        "refused for its shape, before any store read"
    );
}

#[tokio::test]
async fn attack_post_without_type_naming_36_media_is_refused_before_any_store_read() {
    let (app, reads) = app_counting_media_reads().await;
    let media: Vec<Value> = (0..36).map(|_| json!({ "id": MediaId::new() })).collect();
    let patch = json!({ "media": media });
    let created = app.post_as(&app.a, app.photo_post(2)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let before = reads.load(Ordering::SeqCst);

    let path = format!("/v1/posts/{}", created.body["id"].as_str().unwrap());
    let reply = app.call(Method::PATCH, &path, Some(&app.a.key), Some(patch)).await;

    assert_error_shape(&reply, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        before,
        "no media read for a refused patch"
    );
}

#[tokio::test]
async fn a_valid_photo_post_reads_its_media_in_one_batch() {
    let (app, reads) = app_counting_media_reads().await;
    let reply = app.post_as(&app.a, app.photo_post(3)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn attack_invalid_utf8_in_a_path_is_a_400_in_the_error_shape() {
    let app = TestApp::new().await;
    for path in [
        "/v1/posts/%FF%FE",
        "/v1/media/med_%C0%AF",
        "/v1/accounts/%80",
        "/v1/accounts/%FF/creator-info",
    ] {
        let reply = app.call(Method::GET, path, Some(&app.a.key), None).await;
        assert_error_shape(&reply, StatusCode::BAD_REQUEST, "malformed_request");
    }
    let reply = app.call(Method::DELETE, "/v1/posts/%FF", Some(&app.a.key), None).await;
    assert_error_shape(&reply, StatusCode::BAD_REQUEST, "malformed_request");
}

#[tokio::test]
async fn attack_duplicate_query_parameters_are_a_400_in_the_error_shape() {
    let app = TestApp::new().await;
    for query in [
        "limit=1&limit=100",
        "status=draft&status=published",
        "cursor=a&cursor=b",
    ] {
        let reply = app
            .call(Method::GET, &format!("/v1/posts?{query}"), Some(&app.a.key), None)
            .await;
        assert_error_shape(&reply, StatusCode::BAD_REQUEST, "malformed_request");
    }
}

#[tokio::test]
async fn attack_unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::new().await;
    let reply = app.call(Method::GET, "/v1/%FF/../../etc/passwd", None, None).await;
    assert_error_shape(&reply, StatusCode::NOT_FOUND, "not_found");
    let reply = app.call(Method::PUT, "/v1/posts", Some(&app.a.key), None).await;
    assert_error_shape(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

/// An unauthenticated callback with a 5,000-character state: refused as unknown before any store lookup (in
/// DynamoDB it would be a key past the 2 KB limit, a 503 and an alarm), in the error shape.
#[tokio::test]
async fn attack_callback_with_an_unbounded_state_is_refused_as_unknown_in_the_error_shape() {
    let app = TestApp::new().await;
    let huge = "s".repeat(5_000);
    for query in [
        format!("code=abc&state={huge}&scopes=user.info.basic,video.publish,video.upload"),
        format!("error=access_denied&state={huge}"),
        "code=abc&state=%00%01&scopes=user.info.basic".to_owned(),
    ] {
        let reply = app
            .call(
                Method::GET,
                &format!("/v1/accounts/tiktok/callback?{query}"),
                None,
                None,
            )
            .await;
        assert!(reply.status == StatusCode::BAD_REQUEST, "{query:.60}: {}", reply.status);
        assert!(reply.body["error"]["code"].is_string(), "{}", reply.body);
    }
}

/// Two workspaces hold the same creator. TikTok's revoke ends every token of the app for that creator, so one
/// workspace disconnecting must not break the other: it forgets its own tokens and revokes nothing; the last one to
/// disconnect revokes.
/// Issue 11 §1: anyone with an API key can send a creator an authorize link. The creator's consent completes in the
/// creator's browser, which alone receives the connection's id; the workspace that sent the link can claim nothing
/// it holds, and the id is no use to any other workspace either, so the account lands nowhere.
#[tokio::test]
async fn attack_a_connect_link_completed_in_another_browser_never_attaches_the_account() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let (attacker, creator) = (
        app.empty_tenant("attacker").await,
        app.empty_tenant("creator-own").await,
    );
    let started = app
        .call(Method::POST, "/v1/accounts/tiktok/connect", Some(&attacker.key), None)
        .await;
    let authorize_url = started.body["authorizeUrl"].as_str().unwrap().to_owned();
    let state_in_link = url::Url::parse(&authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .unwrap();

    // The creator's browser: TikTok's consent, then the callback.
    let callback = support::callback_path(&support::follow_authorize(&authorize_url).await);
    let in_creators_browser = app.call(Method::GET, &callback, None, None).await;
    assert_eq!(
        in_creators_browser.status,
        StatusCode::OK,
        "{}",
        in_creators_browser.body
    );
    let connection = in_creators_browser.body["connectionId"].as_str().unwrap().to_owned();
    assert_ne!(connection, state_in_link);

    // The attacker holds the link and its state, nothing else.
    let with_the_state = app.claim(&attacker, &state_in_link).await;
    assert_eq!(with_the_state.status, StatusCode::NOT_FOUND, "{}", with_the_state.body);
    assert_eq!(with_the_state.body["error"]["code"], "not_found");
    // Another workspace that got hold of the id (the creator's own, say) cannot take it, and ends it.
    assert_eq!(app.claim(&creator, &connection).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.claim(&attacker, &connection).await.status, StatusCode::NOT_FOUND);

    for tenant in [&attacker, &creator] {
        let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
        assert_eq!(listed.body["data"], json!([]), "no account attached");
    }
    assert!(
        !in_creators_browser.body.to_string().contains("access"),
        "no token in the answer: {}",
        in_creators_browser.body
    );
}

/// A connection's id is not a `state`: the callback refuses it, so it cannot start a second exchange.
#[tokio::test]
async fn attack_a_connection_id_passed_as_the_callbacks_state_is_unknown() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let tenant = app.empty_tenant("replayer").await;
    let callback = app.authorize(&tenant).await;
    let authorized = app.call(Method::GET, &callback, None, None).await;
    let connection = authorized.body["connectionId"].as_str().unwrap().to_owned();

    let replayed = app
        .call(
            Method::GET,
            &format!("/v1/accounts/tiktok/callback?code=another-code&state={connection}"),
            None,
            None,
        )
        .await;

    assert_eq!(replayed.status, StatusCode::BAD_REQUEST, "{}", replayed.body);
    assert_eq!(replayed.body["error"]["code"], "invalid_state");
}

#[tokio::test]
async fn attack_one_workspace_disconnecting_a_shared_creator_leaves_the_other_connected() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let (alpha, bravo) = (
        app.empty_tenant("alpha-shared").await,
        app.empty_tenant("bravo-shared").await,
    );
    let alpha_account = app.connect(&alpha).await.body["id"].as_str().unwrap().to_owned();
    let bravo_account = app.connect(&bravo).await.body["id"].as_str().unwrap().to_owned();
    let revokes = || app.sandbox().requests_to(tiktok_sandbox::Endpoint::Revoke).len();

    let gone = app
        .call(
            Method::DELETE,
            &format!("/v1/accounts/{alpha_account}"),
            Some(&alpha.key),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(revokes(), 0, "the creator is still connected to another workspace");
    let info = app
        .call(
            Method::GET,
            &format!("/v1/accounts/{bravo_account}/creator-info"),
            Some(&bravo.key),
            None,
        )
        .await;
    assert_eq!(
        info.status,
        StatusCode::OK,
        "the other workspace still posts: {}",
        info.body
    );

    let last = app
        .call(
            Method::DELETE,
            &format!("/v1/accounts/{bravo_account}"),
            Some(&bravo.key),
            None,
        )
        .await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(revokes(), 1, "the last connection revokes at TikTok");
}

/// An `authorization.removed` for `open_id` that TikTok created at `create_time`.
fn removal(open_id: &str, create_time: i64) -> String {
    json!({
        "client_key": "sandbox-client-key", "event": "authorization.removed", "create_time": create_time,
        "user_openid": open_id, "content": json!({ "reason": 1 }).to_string(),
    })
    .to_string()
}

/// TikTok's signature of `body`, sent at the app's now.
fn signed_now(app: &TestApp, body: &str) -> String {
    webhook::sign(
        &SecretString::from(CLIENT_SECRET),
        app.clock.now().timestamp(),
        body.as_bytes(),
    )
}

/// A signed `authorization.removed` for `open_id` that TikTok created at `create_time`.
async fn deliver_removal(app: &TestApp, open_id: &str, create_time: i64) -> Reply {
    let body = removal(open_id, create_time);
    deliver_webhook(app, &body, &signed_now(app, &body)).await
}

/// A redelivered (TikTok retries for 72 h) or replayed `authorization.removed` older than the user's latest
/// connection must not disconnect it; one newer than the connection does.
#[tokio::test]
async fn attack_replayed_authorization_removed_never_undoes_a_newer_connection() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let tenant = app.empty_tenant("reconnected").await;
    let account: shared::ids::AccountId = app.connect(&tenant).await.body["id"].as_str().unwrap().parse().unwrap();
    let connected_at = app
        .stores
        .accounts
        .get_account(&account)
        .await
        .unwrap()
        .unwrap()
        .connected_at;
    let stale = deliver_removal(&app, &open_id, connected_at.timestamp() - 60).await;
    assert_eq!(stale.status, StatusCode::OK, "{}", stale.body);
    assert_eq!(stale.body["outcome"], "unchanged", "{}", stale.body);
    let kept = app.stores.accounts.get_account(&account).await.unwrap().unwrap();
    assert!(
        kept.tokens.is_some(),
        "a removal older than the connection leaves it connected"
    );

    let fresh = deliver_removal(&app, &open_id, connected_at.timestamp() + 1).await;
    assert_eq!(fresh.body["outcome"], "applied", "{}", fresh.body);
    let gone = app.stores.accounts.get_account(&account).await.unwrap().unwrap();
    assert!(gone.tokens.is_none(), "a removal after the connection disconnects it");
}

/// Each sealed token is bound to its account and field (AES-GCM associated data): a value copied into another record,
/// or into the other field of its own, never opens. Using the account then fails cleanly, a 409 saying to reconnect,
/// and TikTok is never asked to refresh with a token that is not the account's own.
#[tokio::test]
async fn attack_a_sealed_token_moved_to_another_account_or_field_never_opens() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let tenant = app.empty_tenant("moved-tokens").await;
    let mut connected = Vec::new();
    for _ in 0..2 {
        let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
        app.sandbox().set_authorizer(Some(&open_id));
        let id: AccountId = app.connect(&tenant).await.body["id"].as_str().unwrap().parse().unwrap();
        connected.push(app.stores.accounts.get_account(&id).await.unwrap().unwrap());
    }
    let (alpha, bravo) = (&connected[0], &connected[1]);
    let (alpha_tokens, bravo_tokens) = (alpha.tokens.clone().unwrap(), bravo.tokens.clone().unwrap());
    let expired = app.clock.now() - chrono::Duration::minutes(1);
    let refreshes = || app.sandbox().requests_to(tiktok_sandbox::Endpoint::Token).len();
    let connect_calls = refreshes();

    let cases = [
        (
            "alpha's access token in bravo's record",
            bravo,
            SealedTokens {
                access_token: alpha_tokens.access_token.clone(),
                ..bravo_tokens.clone()
            },
        ),
        (
            "alpha's refresh token in bravo's record, bravo's access token expired",
            bravo,
            SealedTokens {
                access_expires_at: expired,
                refresh_token: alpha_tokens.refresh_token.clone(),
                ..bravo_tokens.clone()
            },
        ),
        (
            "alpha's access token in alpha's refresh field, the access token expired",
            alpha,
            SealedTokens {
                access_expires_at: expired,
                refresh_token: alpha_tokens.access_token.clone(),
                ..alpha_tokens.clone()
            },
        ),
    ];
    for (attack, target, tokens) in cases {
        let current = app.stores.accounts.get_account(&target.id).await.unwrap().unwrap();
        let moved = Account {
            tokens: Some(tokens),
            version: current.version + 1,
            ..current.clone()
        };
        app.stores
            .accounts
            .update_account(&moved, current.version)
            .await
            .unwrap();

        let reply = app
            .call(
                Method::GET,
                &format!("/v1/accounts/{}/creator-info", target.id),
                Some(&tenant.key),
                None,
            )
            .await;

        assert_error_shape(&reply, StatusCode::CONFLICT, "token_unreadable");
        let after = app.stores.accounts.get_account(&target.id).await.unwrap().unwrap();
        assert_eq!(after.refresh_lock_until, None, "{attack}: the refresh lock is released");
        assert_eq!(
            after.tokens, moved.tokens,
            "{attack}: nothing is re-sealed from a token that is not its own"
        );
    }
    assert_eq!(
        refreshes(),
        connect_calls,
        "TikTok never saw a refresh with a moved token"
    );
}

/// Issue 11 §2: the same signed `authorization.removed`, replayed within the signature's 5 minutes, after the user
/// reconnected in the removal's own second. The `create_time` rule alone counts such a reconnect as older than the
/// removal (TikTok counts whole seconds) and would disconnect it again; the delivery's key says it was handled.
#[tokio::test]
async fn attack_replayed_authorization_removed_is_a_duplicate_and_leaves_the_reconnected_account_alone() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let tenant = app.empty_tenant("replayed").await;
    let account: shared::ids::AccountId = app.connect(&tenant).await.body["id"].as_str().unwrap().parse().unwrap();
    let removed_at = app.clock.now().timestamp() + 1;
    let body = removal(&open_id, removed_at);
    let signature = signed_now(&app, &body);
    let removed = deliver_webhook(&app, &body, &signature).await;
    assert_eq!(removed.body["outcome"], "applied", "{}", removed.body);
    app.clock.advance(chrono::Duration::seconds(1));
    let reconnected = app.connect(&tenant).await;
    assert_eq!(reconnected.status, StatusCode::OK, "{}", reconnected.body);
    let before = app.stores.accounts.get_account(&account).await.unwrap().unwrap();
    assert_eq!(
        before.connected_at.timestamp(),
        removed_at,
        "reconnected in the removal's second"
    );
    let reauth_events = app.events.events().len();

    let replayed = deliver_webhook(&app, &body, &signature).await;

    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert_eq!(replayed.body["outcome"], "duplicate", "{}", replayed.body);
    let after = app.stores.accounts.get_account(&account).await.unwrap().unwrap();
    assert_eq!(after, before, "the reconnected account is untouched");
    assert!(after.tokens.is_some());
    assert_eq!(
        app.events.events().len(),
        reauth_events,
        "no second account.reauth_required"
    );
}

/// Issue 11 §2: TikTok redelivers `post.publish.complete` (freshly signed) for up to 72 hours; each redelivery is
/// acknowledged as a duplicate, and changes and emits nothing.
#[tokio::test]
async fn attack_redelivered_publish_complete_is_a_duplicate_for_72_hours_and_changes_nothing() {
    let app = TestApp::new().await;
    let post = published_post(&app).await;
    let body = complete_event("sandbox-client-key");
    let first = deliver_webhook(&app, &body, &signed_now(&app, &body)).await;
    assert_eq!(first.body["outcome"], "applied", "{}", first.body);
    let completed = app.stores.posts.get_post(&post.id).await.unwrap().unwrap();
    let events = app.events.events().len();

    for later in [chrono::Duration::minutes(1), chrono::Duration::hours(71)] {
        app.clock.advance(later);
        let again = deliver_webhook(&app, &body, &signed_now(&app, &body)).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(again.body["outcome"], "duplicate", "{}", again.body);
    }
    assert_eq!(app.stores.posts.get_post(&post.id).await.unwrap().unwrap(), completed);
    assert_eq!(app.events.events().len(), events, "no second post.completed");
}

/// Issue 11 §2: a worker holding a token TikTok refuses must not mark an account the user reconnected meanwhile:
/// the refusal is of a token no longer stored, so the account stays connected and nothing is announced.
#[tokio::test]
async fn attack_a_refusal_of_a_replaced_token_never_undoes_a_reconnect() {
    let app = TestApp::with_sandbox(intake_api::IntakeSettings::default(), |_| {}).await;
    let open_id = app.sandbox().create_account(tiktok_sandbox::AccountSpec::public());
    app.sandbox().set_authorizer(Some(&open_id));
    let tenant = app.empty_tenant("reconnecting").await;
    let account: shared::ids::AccountId = app.connect(&tenant).await.body["id"].as_str().unwrap().parse().unwrap();
    let held_by_a_worker = app.tokens.access_token(&account).await.unwrap();
    assert_eq!(app.connect(&tenant).await.status, StatusCode::OK, "reconnected");
    let reauth_events = || {
        app.events
            .events()
            .iter()
            .filter(|e| e.event_type == shared::events::EventType::AccountReauthRequired)
            .count()
    };

    let stale = app
        .tokens
        .require_reauth(
            &account,
            Refused::Access(&held_by_a_worker),
            "TikTok refused the old token",
        )
        .await;

    assert!(matches!(stale, TokenError::Transient(_)), "{stale:?}");
    let stored = app.stores.accounts.get_account(&account).await.unwrap().unwrap();
    assert_eq!(stored.status, shared::domain::AccountStatus::Connected);
    assert_eq!(reauth_events(), 0);

    let current = app.tokens.access_token(&account).await.unwrap();
    let refused = app
        .tokens
        .require_reauth(&account, Refused::Access(&current), "TikTok refused the current token")
        .await;
    assert!(matches!(refused, TokenError::ReauthRequired(_)), "{refused:?}");
    assert_eq!(reauth_events(), 1, "the current token's refusal still counts");
}
