//! Connecting TikTok accounts over HTTP, against the TikTok sandbox: the authorize URL, the callback and every way it
//! can go wrong, reconnects, reading and disconnecting accounts, and creator_info in the product's terms with its
//! refreshes (one token call for twenty concurrent requests).

mod support;

use axum::http::{header, Method, StatusCode};
use chrono::Duration as ChronoDuration;
use futures::future::join_all;
use intake_api::IntakeSettings;
use serde_json::json;
use shared::Clock;
use shared::{
    domain::AccountStatus,
    events::EventType,
    ids::AccountId,
    tiktok::{oauth::STATE_LIFETIME, ExposeSecret, SealFormat, TokenBinding},
};
use support::{AccountsFailingOnce, FailingCall, Reply, TestApp, REDIRECT_URI};
use tiktok_sandbox::{AccountSpec, Endpoint, FaultAction, FaultSpec};

async fn sandboxed() -> TestApp {
    TestApp::with_sandbox(IntakeSettings::default(), |_| {}).await
}

/// A sandbox creator who approves the next connections.
fn creator(app: &TestApp, spec: AccountSpec) -> String {
    let open_id = app.sandbox().create_account(spec);
    app.sandbox().set_authorizer(Some(&open_id));
    open_id
}

fn account_id(reply: &Reply) -> AccountId {
    reply.body["id"]
        .as_str()
        .expect("an account id")
        .parse()
        .expect("a valid id")
}

fn token_calls(app: &TestApp, grant_type: &str) -> usize {
    app.sandbox()
        .requests_to(Endpoint::Token)
        .iter()
        .filter(|request| request.body_str("grant_type") == Some(grant_type))
        .count()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

// ---------------------------------------------------------------- connect

#[tokio::test]
async fn when_connecting_should_answer_tiktoks_authorize_url_with_the_three_scopes_and_a_ten_minute_state() {
    let app = TestApp::new().await;
    let fresh = app.empty_tenant("fresh").await;

    let first = app
        .call(Method::POST, "/v1/accounts/tiktok/connect", Some(&fresh.key), None)
        .await;

    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let url = first.body["authorizeUrl"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:9/v2/auth/authorize/?"), "{url}");
    assert_eq!(
        query_value(url, "scope").as_deref(),
        Some("user.info.basic,video.publish,video.upload")
    );
    assert_eq!(query_value(url, "response_type").as_deref(), Some("code"));
    assert_eq!(query_value(url, "redirect_uri").as_deref(), Some(REDIRECT_URI));
    assert_eq!(
        query_value(url, "disable_auto_auth").as_deref(),
        Some("1"),
        "always TikTok's consent page, so nobody is connected without seeing what they grant"
    );
    assert_eq!(first.body["expiresAt"], json!(support::start() + STATE_LIFETIME));
    let state = query_value(url, "state").unwrap();
    let stored = app
        .stores
        .oauth_states
        .take_oauth_state(&state, support::start())
        .await
        .unwrap()
        .expect("the state is stored");
    assert_eq!(stored.workspace_id, fresh.workspace, "bound to the caller's workspace");

    let further = app
        .call(Method::POST, "/v1/accounts/tiktok/connect", Some(&app.a.key), None)
        .await;
    let url = further.body["authorizeUrl"].as_str().unwrap();
    assert_eq!(
        query_value(url, "disable_auto_auth").as_deref(),
        Some("1"),
        "a further account too, so the user can switch accounts"
    );
    assert_ne!(query_value(url, "state").unwrap(), state, "a new state per connection");
}

#[tokio::test]
async fn when_connect_has_no_api_key_should_return_401() {
    let app = TestApp::new().await;
    let reply = app.call(Method::POST, "/v1/accounts/tiktok/connect", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"]["code"], "unauthorized");
}

// ---------------------------------------------------------------- callback

#[tokio::test]
async fn when_tiktok_approves_should_connect_the_account_with_its_scopes_sealed_tokens_and_accepted_terms() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(
        &app,
        AccountSpec {
            display_name: "Ada Creates".into(),
            username: "ada.creates".into(),
            ..AccountSpec::public()
        },
    );

    let reply = app.connect(&tenant).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["status"], "connected");
    assert_eq!(reply.body["displayName"], "Ada Creates");
    assert_eq!(
        reply.body["username"], "ada.creates",
        "from creator_info, for post URLs"
    );
    assert_eq!(reply.body["termsAcceptedAt"], json!(support::start()));
    let scopes: Vec<&str> = reply.body["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for scope in ["user.info.basic", "video.publish", "video.upload"] {
        assert!(scopes.contains(&scope), "{scope} in {scopes:?}");
    }
    let text = reply.body.to_string();
    assert!(
        !text.contains("act.") && !text.contains("rft.") && !text.contains("oken"),
        "{text}"
    );

    let stored = app
        .stores
        .accounts
        .get_account(&account_id(&reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.workspace_id, tenant.workspace);
    let sealed = stored.tokens.expect("tokens are stored");
    assert!(!sealed.access_token.contains("act."), "sealed at rest");
    assert_eq!(
        SealFormat::of(&sealed.refresh_token),
        SealFormat::Bound,
        "bound to the account the callback created"
    );
    let access = app
        .tokens
        .cipher()
        .open(&sealed.access_token, &TokenBinding::access(&stored.id))
        .unwrap();
    assert!(access.expose_secret().starts_with("act."));
    assert_eq!(token_calls(&app, "authorization_code"), 1);

    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"][0]["id"], reply.body["id"]);
    assert_eq!(listed.body["data"][0]["scopes"], reply.body["scopes"]);
}

#[tokio::test]
async fn when_the_same_tiktok_user_reconnects_should_update_that_account_with_new_tokens() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let first = app.connect(&tenant).await;
    let id = account_id(&first);
    let before = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    let mut lapsed = before.clone();
    lapsed.status = AccountStatus::ReauthRequired;
    lapsed.version += 1;
    app.stores
        .accounts
        .update_account(&lapsed, before.version)
        .await
        .unwrap();
    app.clock.advance(ChronoDuration::minutes(5));

    let second = app.connect(&tenant).await;

    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(account_id(&second), id, "the same account, not a second one");
    assert_eq!(second.body["status"], "connected");
    assert_eq!(
        second.body["termsAcceptedAt"],
        json!(support::start() + ChronoDuration::minutes(5))
    );
    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let after = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    let (old, new) = (before.tokens.unwrap(), after.tokens.unwrap());
    let refresh = app
        .tokens
        .cipher()
        .open(&new.refresh_token, &TokenBinding::refresh(&id))
        .unwrap();
    assert!(
        refresh.expose_secret().starts_with("rft."),
        "never an empty refresh token"
    );
    assert_ne!(
        app.tokens
            .cipher()
            .open(&old.refresh_token, &TokenBinding::refresh(&id))
            .unwrap()
            .expose_secret(),
        refresh.expose_secret(),
        "the new grant's tokens"
    );
}

#[tokio::test]
async fn when_the_state_is_unknown_expired_or_reused_should_refuse_with_400_and_connect_nothing() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());

    let unknown = app
        .call(
            Method::GET,
            "/v1/accounts/tiktok/callback?code=abc&state=never-issued&scopes=user.info.basic,video.publish,video.upload",
            None,
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"]["code"], "invalid_state");

    let callback = app.authorize(&tenant).await;
    app.clock.advance(STATE_LIFETIME + ChronoDuration::seconds(1));
    let expired = app.call(Method::GET, &callback, None, None).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert_eq!(expired.body["error"]["code"], "invalid_state");
    assert!(expired.body["error"]["message"].as_str().unwrap().contains("expired"));

    let callback = app.authorize(&tenant).await;
    let used = app.call(Method::GET, &callback, None, None).await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.body);
    let claimed = app.claim(&tenant, used.body["connectionId"].as_str().unwrap()).await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    let reused = app.call(Method::GET, &callback, None, None).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(reused.body["error"]["code"], "invalid_state");

    assert_eq!(
        token_calls(&app, "authorization_code"),
        1,
        "only the valid state spent its code"
    );
    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn when_tiktok_reports_an_error_should_refuse_with_400_and_spend_the_state() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    app.sandbox().deny_next_authorization();

    let callback = app.authorize(&tenant).await;
    let reply = app.call(Method::GET, &callback, None, None).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "authorization_refused");
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("access_denied"));
    let state = query_value(&format!("https://x{callback}"), "state").unwrap();
    assert_eq!(
        app.stores
            .oauth_states
            .take_oauth_state(&state, app.clock.now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(token_calls(&app, "authorization_code"), 0);
}

#[tokio::test]
async fn when_a_required_scope_was_not_granted_should_refuse_without_spending_the_code() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(
        &app,
        AccountSpec {
            grantable_scopes: Some(vec!["user.info.basic".into(), "video.upload".into()]),
            ..AccountSpec::public()
        },
    );

    let reply = app.connect(&tenant).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "missing_scopes");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("video.publish") && message.contains("nothing was connected"),
        "{message}"
    );
    assert_eq!(token_calls(&app, "authorization_code"), 0);
    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"], json!([]));
}

#[tokio::test]
async fn when_tiktok_refuses_or_fails_the_code_exchange_should_answer_400_or_503_and_connect_nothing() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());

    app.sandbox().inject_fault(FaultSpec::new(
        Endpoint::Token,
        FaultAction::Respond {
            status: 400,
            code: Some("invalid_grant".into()),
            message: Some("Authorization code is expired.".into()),
        },
    ));
    let refused = app.connect(&tenant).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "tiktok_refused");

    app.sandbox().inject_fault(FaultSpec::server_error(Endpoint::Token));
    let down = app.connect(&tenant).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{}", down.body);
    assert_eq!(down.body["error"]["code"], "service_unavailable");
    assert!(down.body["error"]["requestId"].as_str().unwrap().starts_with("req_"));

    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"], json!([]));
}

#[tokio::test]
async fn when_a_success_url_is_configured_should_redirect_there_with_the_connection_or_the_error() {
    let settings = IntakeSettings {
        connect_success_url: Some("https://app.example.com/connected?from=postato".into()),
        ..IntakeSettings::default()
    };
    let app = TestApp::with_sandbox(settings, |_| {}).await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());

    let connected = app.connect(&tenant).await;
    assert_eq!(connected.status, StatusCode::SEE_OTHER);
    let location = connected.headers[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("https://app.example.com/connected?from=postato&"),
        "{location}"
    );
    let connection = query_value(location, "connection").unwrap();
    let listed = app.call(Method::GET, "/v1/accounts", Some(&tenant.key), None).await;
    assert_eq!(listed.body["data"], json!([]), "nothing attached before the claim");
    let claimed = app.claim(&tenant, &connection).await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    let id: AccountId = claimed.body["id"].as_str().unwrap().parse().unwrap();
    assert!(app.stores.accounts.get_account(&id).await.unwrap().is_some());

    app.sandbox().deny_next_authorization();
    let refused = app.connect(&tenant).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let location = refused.headers[header::LOCATION].to_str().unwrap();
    assert_eq!(query_value(location, "error").as_deref(), Some("authorization_refused"));
    assert!(query_value(location, "errorDescription")
        .unwrap()
        .contains("access_denied"));
    assert_eq!(query_value(location, "connection"), None);
}

#[tokio::test]
async fn when_the_callback_carries_neither_a_code_nor_an_error_should_answer_400() {
    let app = sandboxed().await;
    for query in [
        "",
        "?state=abc",
        "?code=&state=abc",
        "?code=%FF%FE&state=%C3%28",
        "?foo=bar",
    ] {
        let reply = app
            .call(Method::GET, &format!("/v1/accounts/tiktok/callback{query}"), None, None)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            matches!(
                reply.body["error"]["code"].as_str(),
                Some("invalid_callback" | "invalid_state")
            ),
            "{query}: {}",
            reply.body
        );
    }
}

// ---------------------------------------------------------------- one account

#[tokio::test]
async fn when_asking_for_another_workspaces_account_should_return_404() {
    let app = TestApp::new().await;
    let a_account = app.a.account.to_string();
    for (method, path) in [
        (Method::GET, format!("/v1/accounts/{a_account}")),
        (Method::DELETE, format!("/v1/accounts/{a_account}")),
        (Method::GET, format!("/v1/accounts/{a_account}/creator-info")),
        (Method::GET, "/v1/accounts/not-an-id".to_owned()),
        (Method::GET, format!("/v1/accounts/{}", AccountId::new())),
    ] {
        let reply = app.call(method.clone(), &path, Some(&app.b.key), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(reply.body["error"]["code"], "not_found");
    }
    let own = app
        .call(
            Method::GET,
            &format!("/v1/accounts/{a_account}"),
            Some(&app.a.key),
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["id"], a_account);
}

#[tokio::test]
async fn when_deleting_an_account_should_revoke_it_at_tiktok_and_forget_its_tokens_once() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    let path = format!("/v1/accounts/{id}");

    let deleted = app.call(Method::DELETE, &path, Some(&tenant.key), None).await;

    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["status"], "disconnected");
    let stored = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    assert_eq!(stored.tokens, None, "tokens forgotten");
    assert_eq!(app.sandbox().requests_to(Endpoint::Revoke).len(), 1);

    let again = app.call(Method::DELETE, &path, Some(&tenant.key), None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "disconnected");
    assert_eq!(app.sandbox().requests_to(Endpoint::Revoke).len(), 1, "idempotent");

    let info = app
        .call(Method::GET, &format!("{path}/creator-info"), Some(&tenant.key), None)
        .await;
    assert_eq!(info.status, StatusCode::CONFLICT);
    assert_eq!(info.body["error"]["code"], "reconnect_required");
}

#[tokio::test]
async fn when_tiktok_fails_the_revoke_should_disconnect_anyway() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    app.sandbox().inject_fault(FaultSpec::server_error(Endpoint::Revoke));

    let deleted = app
        .call(Method::DELETE, &format!("/v1/accounts/{id}"), Some(&tenant.key), None)
        .await;

    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["status"], "disconnected");
}

// ---------------------------------------------------------------- creator info

#[tokio::test]
async fn when_asking_for_creator_info_should_answer_fresh_in_the_products_terms() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(
        &app,
        AccountSpec {
            display_name: "Private Pat".into(),
            username: "pat".into(),
            comment_disabled: true,
            max_video_post_duration_sec: 300,
            ..AccountSpec::private()
        },
    );
    let id = account_id(&app.connect(&tenant).await);
    let path = format!("/v1/accounts/{id}/creator-info");

    let reply = app.call(Method::GET, &path, Some(&tenant.key), None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "nickname": "Private Pat", "username": "pat", "avatarUrl": "https://sandbox.invalid/avatar.jpg",
            "privacyOptions": ["followersOnly", "friends", "private"],
            "commentDisabled": true, "duetDisabled": true, "stitchDisabled": true,
            "maxVideoDurationSec": 300, "canPost": true, "appAudited": false
        })
    );

    let open_id = app.stores.accounts.get_account(&id).await.unwrap().unwrap().open_id;
    app.sandbox().update_account(&open_id, |spec| {
        spec.private = false;
        spec.duet_disabled = false;
        spec.stitch_disabled = false;
    });
    let again = app.call(Method::GET, &path, Some(&tenant.key), None).await;
    assert_eq!(
        again.body["privacyOptions"],
        json!(["public", "friends", "private"]),
        "fresh each time"
    );
    assert_eq!(again.body["duetDisabled"], false);
}

#[tokio::test]
async fn when_tiktok_says_the_creator_cannot_post_should_answer_200_with_can_post_false_and_the_reason() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(
        &app,
        AccountSpec {
            display_name: "Busy Bee".into(),
            posting_blocked: Some("spam_risk_too_many_posts".into()),
            ..AccountSpec::public()
        },
    );
    let id = account_id(&app.connect(&tenant).await);
    let path = format!("/v1/accounts/{id}/creator-info");

    let capped = app.call(Method::GET, &path, Some(&tenant.key), None).await;

    assert_eq!(capped.status, StatusCode::OK, "{}", capped.body);
    assert_eq!(capped.body["canPost"], false);
    assert_eq!(capped.body["nickname"], "Busy Bee");
    assert_eq!(capped.body["privacyOptions"], json!([]));
    assert_eq!(capped.body["cannotPostReason"]["code"], "spam_risk_too_many_posts");
    assert!(capped.body["cannotPostReason"]["message"]
        .as_str()
        .unwrap()
        .contains("tomorrow"));

    app.sandbox().inject_fault(FaultSpec::error_with_200(
        Endpoint::CreatorInfo,
        "reached_active_user_cap",
    ));
    let app_cap = app.call(Method::GET, &path, Some(&tenant.key), None).await;
    assert_eq!(app_cap.status, StatusCode::OK);
    assert_eq!(app_cap.body["canPost"], false);
    assert_eq!(app_cap.body["cannotPostReason"]["code"], "reached_active_user_cap");
}

#[tokio::test]
async fn when_tiktok_is_down_or_limits_should_answer_creator_info_with_503_or_429_in_the_error_shape() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    let path = format!("/v1/accounts/{id}/creator-info");

    app.sandbox()
        .inject_fault(FaultSpec::server_error(Endpoint::CreatorInfo));
    let down = app.call(Method::GET, &path, Some(&tenant.key), None).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{}", down.body);
    assert_eq!(down.body["error"]["code"], "service_unavailable");
    assert!(down.headers.contains_key(header::RETRY_AFTER));

    app.sandbox()
        .inject_fault(FaultSpec::new(Endpoint::CreatorInfo, FaultAction::Drop));
    let dropped = app.call(Method::GET, &path, Some(&tenant.key), None).await;
    assert_eq!(dropped.status, StatusCode::SERVICE_UNAVAILABLE);

    app.sandbox().inject_fault(FaultSpec::new(
        Endpoint::CreatorInfo,
        FaultAction::Respond {
            status: 429,
            code: Some("rate_limit_exceeded".into()),
            message: None,
        },
    ));
    let limited = app.call(Method::GET, &path, Some(&tenant.key), None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["error"]["code"], "rate_limited");

    let account = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    assert_eq!(account.status, AccountStatus::Connected, "outages change nothing");
}

#[tokio::test]
async fn when_tiktok_refuses_the_access_token_should_refresh_once_and_answer() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    app.sandbox().inject_fault(FaultSpec::new(
        Endpoint::CreatorInfo,
        FaultAction::Respond {
            status: 401,
            code: Some("access_token_invalid".into()),
            message: None,
        },
    ));

    let reply = app
        .call(
            Method::GET,
            &format!("/v1/accounts/{id}/creator-info"),
            Some(&tenant.key),
            None,
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["canPost"], true);
    assert_eq!(token_calls(&app, "refresh_token"), 1);
}

#[tokio::test]
async fn when_tiktok_refuses_the_refresh_should_answer_409_and_announce_that_the_account_needs_reconnecting() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    app.clock.advance(ChronoDuration::hours(2));
    app.sandbox().inject_fault(FaultSpec::new(
        Endpoint::Token,
        FaultAction::Respond {
            status: 400,
            code: Some("invalid_grant".into()),
            message: None,
        },
    ));

    let reply = app
        .call(
            Method::GET,
            &format!("/v1/accounts/{id}/creator-info"),
            Some(&tenant.key),
            None,
        )
        .await;

    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "reconnect_required");
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("POST /v1/accounts/tiktok/connect"));
    let account = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    assert_eq!(account.status, AccountStatus::ReauthRequired);
    let announced: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.event_type == EventType::AccountReauthRequired)
        .collect();
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].account_id.as_ref(), Some(&id));
}

#[tokio::test]
async fn when_the_account_has_no_tokens_should_answer_creator_info_with_409() {
    let app = TestApp::new().await;
    let reply = app
        .call(
            Method::GET,
            &format!("/v1/accounts/{}/creator-info", app.a.account),
            Some(&app.a.key),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body["error"]["code"], "reconnect_required");
}

#[tokio::test]
async fn when_20_requests_need_a_refresh_at_once_should_make_exactly_one_token_call() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    // Past the refresh margin of a 2-hour token.
    app.clock.advance(ChronoDuration::minutes(100));
    app.sandbox().clear_requests();
    let path = format!("/v1/accounts/{id}/creator-info");

    let replies = join_all((0..20).map(|_| app.call(Method::GET, &path, Some(&tenant.key), None))).await;

    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(
        token_calls(&app, "refresh_token"),
        1,
        "one refresh, reused by all twenty"
    );
    let creator_calls = app.sandbox().requests_to(Endpoint::CreatorInfo);
    assert_eq!(creator_calls.len(), 20);
    let fingerprints: std::collections::HashSet<_> =
        creator_calls.iter().map(|r| r.token_fingerprint.clone()).collect();
    assert_eq!(fingerprints.len(), 1, "every call used the one fresh token");
}

/// The code is spent once exchanged: a TikTok that then answers the profile calls slowly (or not at all) must not
/// lose the connection or outlast the API's 29 s. The account is saved with its tokens, without a display name.
#[tokio::test]
async fn when_the_profile_calls_hang_after_the_exchange_should_still_save_the_connection_in_time() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    for endpoint in [Endpoint::UserInfo, Endpoint::CreatorInfo] {
        app.sandbox()
            .inject_fault(FaultSpec::new(endpoint, FaultAction::Delay { ms: 15_000 }).times(1));
    }
    let started = std::time::Instant::now();
    let reply = app.connect(&tenant).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let stored = app
        .stores
        .accounts
        .get_account(&account_id(&reply))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.tokens.is_some(), "the spent code's tokens are saved");
    assert_eq!(token_calls(&app, "authorization_code"), 1);
}

/// A refresher's lock must outlive its worst case (TikTok's request timeout, then sealing and saving with retries):
/// a second refresher taking over meanwhile would spend the refresh token TikTok just rotated and lose the account.
#[tokio::test]
async fn when_a_refresh_is_slow_should_hold_the_lock_past_tiktoks_timeout_and_the_saves() {
    let app = sandboxed().await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let id = account_id(&app.connect(&tenant).await);
    app.clock.advance(ChronoDuration::minutes(100));
    app.sandbox()
        .inject_fault(FaultSpec::new(Endpoint::Token, FaultAction::Delay { ms: 1_000 }).times(1));
    let path = format!("/v1/accounts/{id}/creator-info");
    let refreshing = app.call(Method::GET, &path, Some(&tenant.key), None);
    let lock = async {
        loop {
            let account = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
            if let Some(until) = account.refresh_lock_until {
                return until - app.clock.now();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (reply, held_for) = tokio::join!(refreshing, lock);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let request_timeout = ChronoDuration::seconds(3); // the harness's TikTok request timeout
    assert!(
        held_for >= request_timeout + ChronoDuration::seconds(30),
        "the lock covers the call and the saves: {held_for}"
    );
    let released = app.stores.accounts.get_account(&id).await.unwrap().unwrap();
    assert_eq!(released.refresh_lock_until, None, "released once saved");
}

/// The authorization is spent only once the account is saved: a claim that failed on our side (503) leaves the
/// connection claimable, and the caller's retry attaches it.
#[tokio::test]
async fn when_a_claim_fails_on_our_side_should_answer_503_and_keep_the_connection_claimable() {
    let store_down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = TestApp::with_sandbox_and_stores(
        IntakeSettings::default(),
        |_| {},
        |stores| {
            stores.accounts =
                AccountsFailingOnce::wrap(stores.accounts.clone(), FailingCall::Create, store_down.clone());
        },
    )
    .await;
    let tenant = app.empty_tenant("creators").await;
    creator(&app, AccountSpec::public());
    let callback = app.authorize(&tenant).await;
    let authorized = app.call(Method::GET, &callback, None, None).await;
    let connection = authorized.body["connectionId"].as_str().unwrap().to_owned();

    store_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = app.claim(&tenant, &connection).await;
    let retried = app.claim(&tenant, &connection).await;

    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", failed.body);
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    assert_eq!(
        app.claim(&tenant, &connection).await.status,
        StatusCode::NOT_FOUND,
        "claimed once"
    );
}
