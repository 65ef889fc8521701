//! The sandbox's own reading of TikTok's rules, driven with raw HTTP so that no client logic hides a gap.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;
use tiktok_sandbox::{AccountSpec, Endpoint, FaultAction, FaultSpec, IssuedTokens};

struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("builds");
        Self {
            http,
            base: base.to_owned(),
        }
    }

    async fn post(&self, path: &str, token: &IssuedTokens, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&token.access_token)
            .json(&body)
            .send()
            .await
            .expect("answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn init(&self, token: &IssuedTokens, post_info: Value, source_info: Value) -> (StatusCode, Value) {
        self.post(
            "/v2/post/publish/video/init/",
            token,
            json!({ "post_info": post_info, "source_info": source_info }),
        )
        .await
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn direct(privacy: &str) -> Value {
    json!({ "privacy_level": privacy, "brand_content_toggle": false, "brand_organic_toggle": false })
}

fn one_chunk(size: u64) -> Value {
    json!({ "source": "FILE_UPLOAD", "video_size": size, "chunk_size": size, "total_chunk_count": 1 })
}

#[tokio::test]
async fn init_checks_chunk_math_titles_in_utf16_units_and_explicit_brand_toggles() {
    let sandbox = sandbox_with(|s| s.rate_limits = tiktok_sandbox::RateLimits::unlimited()).await;
    let raw = Raw::new(sandbox.base_url());
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let mib = 1024 * 1024;
    let plans = [
        (
            json!({ "source": "FILE_UPLOAD", "video_size": 50_000_123, "chunk_size": 10_000_000, "total_chunk_count": 5 }),
            "ok",
        ),
        (
            json!({ "source": "FILE_UPLOAD", "video_size": 50_000_123, "chunk_size": 10_000_000, "total_chunk_count": 6 }),
            "invalid_param",
        ),
        (
            json!({ "source": "FILE_UPLOAD", "video_size": 4 * mib, "chunk_size": 2 * mib, "total_chunk_count": 2 }),
            "invalid_param",
        ),
        (one_chunk(100_000_000), "invalid_param"),
        (
            json!({ "source": "FILE_UPLOAD", "video_size": 2000 * mib, "chunk_size": mib + 1, "total_chunk_count": 1000 }),
            "invalid_param",
        ),
        (json!({ "source": "SOMETHING" }), "invalid_param"),
    ];
    for (source, expected) in plans {
        let (_, body) = raw.init(tokens, direct("SELF_ONLY"), source.clone()).await;
        assert_eq!(code(&body), expected, "{source}");
    }

    let at_limit = json!({ "title": "😀".repeat(1100), "privacy_level": "SELF_ONLY", "brand_content_toggle": false, "brand_organic_toggle": false });
    assert_eq!(
        code(&raw.init(tokens, at_limit, one_chunk(1000)).await.1),
        "ok",
        "2200 UTF-16 units fit"
    );
    let over = json!({ "title": "😀".repeat(1100) + "a", "privacy_level": "SELF_ONLY", "brand_content_toggle": false, "brand_organic_toggle": false });
    assert_eq!(code(&raw.init(tokens, over, one_chunk(1000)).await.1), "invalid_param");

    let (status, body) = raw
        .init(tokens, json!({ "privacy_level": "SELF_ONLY" }), one_chunk(1000))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param"),
        "brand toggles must be explicit"
    );
    let (status, body) = raw
        .init(
            tokens,
            json!({ "brand_content_toggle": false, "brand_organic_toggle": false }),
            one_chunk(1000),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "privacy_level_option_mismatch")
    );
    let (_, body) = raw
        .init(
            tokens,
            json!({ "privacy_level": "SELF_ONLY", "brand_content_toggle": true, "brand_organic_toggle": false }),
            one_chunk(1000),
        )
        .await;
    assert_eq!(code(&body), "invalid_param", "branded content cannot be private");
    assert!(body["error"]["log_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(
        body["data"],
        json!({}),
        "errors carry an empty data object, as TikTok's do"
    );
}

#[tokio::test]
async fn uploads_check_content_type_length_and_range() {
    let sandbox = sandbox().await;
    let raw = Raw::new(sandbox.base_url());
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let (_, body) = raw.init(tokens, direct("SELF_ONLY"), one_chunk(1000)).await;
    let url = body["data"]["upload_url"].as_str().expect("an upload url").to_owned();
    let put = |content_type: &str, range: &str, bytes: Vec<u8>| {
        raw.http
            .put(&url)
            .header("Content-Type", content_type)
            .header("Content-Range", range)
            .body(bytes)
            .send()
    };
    let mut video = vec![0u8; 1000];
    video[4..8].copy_from_slice(b"ftyp");
    let status = |r: reqwest::Result<reqwest::Response>| r.expect("answers").status();
    assert_eq!(
        status(put("image/png", "bytes 0-999/1000", video.clone()).await),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(put("video/mp4", "bytes 0-999/2000", video.clone()).await),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(put("video/mp4", "bytes 0-998/1000", video.clone()).await),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(put("video/mp4", "0-999", video.clone()).await),
        StatusCode::BAD_REQUEST
    );
    let done = put("video/mp4", "bytes 0-999/1000", video.clone())
        .await
        .expect("answers");
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(done.headers()["content-range"], "bytes 0-999/1000");
    assert_eq!(
        status(put("video/mp4", "bytes 0-999/1000", video).await),
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let unknown = raw
        .http
        .put(format!("{}/video/?upload_id=nope&upload_token=x", sandbox.base_url()))
        .body("x")
        .send()
        .await;
    assert_eq!(status(unknown), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_limits_slide_over_one_minute_per_token() {
    let sandbox = sandbox().await;
    let raw = Raw::new(sandbox.base_url());
    let accounts = sandbox.create_accounts_with_tokens(2, AccountSpec::public());
    for _ in 0..6 {
        assert_eq!(
            code(&raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await.1),
            "ok"
        );
    }
    let (status, body) = raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded")
    );
    assert_eq!(
        code(&raw.init(&accounts[1], direct("SELF_ONLY"), one_chunk(1000)).await.1),
        "ok",
        "per token"
    );
    for _ in 0..30 {
        raw.post(
            "/v2/post/publish/status/fetch/",
            &accounts[1],
            json!({ "publish_id": "x" }),
        )
        .await;
    }
    let (status, _) = raw
        .post(
            "/v2/post/publish/status/fetch/",
            &accounts[1],
            json!({ "publish_id": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    sandbox.advance_clock(Duration::from_secs(61));
    assert_eq!(
        code(&raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await.1),
        "ok"
    );
}

#[tokio::test]
async fn inbox_shares_are_capped_and_removed_authorization_fails_running_posts() {
    let sandbox = sandbox_with(|s| s.rate_limits = tiktok_sandbox::RateLimits::unlimited()).await;
    let raw = Raw::new(sandbox.base_url());
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    for _ in 0..5 {
        let (_, body) = raw
            .post(
                "/v2/post/publish/inbox/video/init/",
                tokens,
                json!({ "source_info": one_chunk(1000) }),
            )
            .await;
        assert_eq!(code(&body), "ok");
    }
    let (status, body) = raw
        .post(
            "/v2/post/publish/inbox/video/init/",
            tokens,
            json!({ "source_info": one_chunk(1000) }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "spam_risk_too_many_pending_share")
    );

    let (_, body) = raw.init(tokens, direct("SELF_ONLY"), one_chunk(1000)).await;
    let publish_id = body["data"]["publish_id"].as_str().expect("publish id").to_owned();
    sandbox.remove_authorization(&tokens.open_id, 1);
    let publish = sandbox.publish(&publish_id).expect("known");
    assert_eq!(
        (publish.status.as_str(), publish.fail_reason.as_deref()),
        ("FAILED", Some("auth_removed"))
    );
    let (status, body) = raw
        .post("/v2/post/publish/creator_info/query/", tokens, json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "access_token_invalid")
    );
    let events: Vec<String> = sandbox.webhook_deliveries().into_iter().map(|w| w.event).collect();
    // The five inbox uploads never received their bytes either: all six running publishes fail, then the app goes.
    assert_eq!(events.iter().filter(|e| *e == "post.publish.failed").count(), 6);
    assert_eq!(events.last().map(String::as_str), Some("authorization.removed"));
}

#[tokio::test]
async fn the_active_creator_cap_and_blocked_accounts_refuse_inits() {
    let sandbox = sandbox_with(|s| s.active_user_cap = Some(1)).await;
    let raw = Raw::new(sandbox.base_url());
    let accounts = sandbox.create_accounts_with_tokens(2, AccountSpec::public());
    assert_eq!(
        code(&raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await.1),
        "ok"
    );
    assert_eq!(
        code(&raw.init(&accounts[1], direct("SELF_ONLY"), one_chunk(1000)).await.1),
        "reached_active_user_cap"
    );
    assert_eq!(
        code(&raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await.1),
        "ok",
        "already active"
    );
    sandbox.update_account(&accounts[0].open_id, |a| {
        a.posting_blocked = Some("spam_risk_user_banned_from_posting".into())
    });
    let (status, body) = raw.init(&accounts[0], direct("SELF_ONLY"), one_chunk(1000)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "spam_risk_user_banned_from_posting")
    );
}

#[tokio::test]
async fn user_info_answers_only_the_fields_the_scopes_allow() {
    let sandbox = sandbox().await;
    let open_id = sandbox.create_account(AccountSpec::public());
    let tokens = sandbox
        .issue_tokens(&open_id, Some(&["user.info.basic"]))
        .expect("account exists");
    let get = |fields: &str| {
        reqwest::Client::new()
            .get(format!("{}/v2/user/info/?fields={fields}", sandbox.base_url()))
            .bearer_auth(&tokens.access_token)
            .send()
    };
    let body: Value = get("open_id,display_name")
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(body["data"]["user"]["open_id"], open_id.as_str());
    assert!(body["data"]["user"].get("username").is_none());
    let refused = get("open_id,username").await.expect("answers");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(&refused.json().await.expect("json")), "scope_not_authorized");
}

#[tokio::test]
async fn the_request_log_never_holds_a_secret() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let grant = client
        .refresh(&secrecy::SecretString::from(tokens.refresh_token.clone()))
        .await
        .expect("refresh");
    let (_, body) = Raw::new(sandbox.base_url())
        .init(tokens, direct("SELF_ONLY"), one_chunk(1000))
        .await;
    let url = body["data"]["upload_url"].as_str().expect("url");
    let _ = reqwest::Client::new().put(url).body("x").send().await;
    client.revoke(&grant.access_token).await.expect("revoke");

    let logged = serde_json::to_string(&sandbox.requests()).expect("serialises");
    let upload_token = url.split("upload_token=").nth(1).expect("has a token");
    use secrecy::ExposeSecret;
    for secret in [
        sandbox.settings().client_secret.as_str(),
        tokens.access_token.as_str(),
        tokens.refresh_token.as_str(),
        grant.access_token.expose_secret(),
        upload_token,
    ] {
        assert!(!logged.contains(secret), "the request log holds a secret");
    }
    let refresh = &sandbox.requests_to(Endpoint::Token)[0];
    assert_eq!(
        refresh.open_id.as_deref(),
        Some(tokens.open_id.as_str()),
        "resolved before rotation"
    );
    assert_eq!(
        refresh.body_str("refresh_token"),
        Some(tiktok_sandbox::fingerprint(&tokens.refresh_token).as_str())
    );
}

#[tokio::test]
async fn the_control_api_drives_faults_settings_accounts_and_the_clock() {
    let sandbox = sandbox().await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/_sandbox{path}", sandbox.base_url());
    let created: Vec<IssuedTokens> = http
        .post(control("/accounts/bulk"))
        .json(&json!({ "count": 3, "template": { "private": true } }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("tokens");
    assert_eq!(created.len(), 3);
    assert!(sandbox.account(&created[0].open_id).expect("created").private);

    let fault = FaultSpec::new(
        Endpoint::CreatorInfo,
        FaultAction::Respond {
            status: 503,
            code: None,
            message: None,
        },
    )
    .for_open_id(&created[1].open_id);
    http.post(control("/faults"))
        .json(&fault)
        .send()
        .await
        .expect("answers");
    let raw = Raw::new(sandbox.base_url());
    assert_eq!(
        raw.post("/v2/post/publish/creator_info/query/", &created[0], json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        raw.post("/v2/post/publish/creator_info/query/", &created[1], json!({}))
            .await
            .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        raw.post("/v2/post/publish/creator_info/query/", &created[1], json!({}))
            .await
            .0,
        StatusCode::OK,
        "once"
    );

    let settings: Value = http
        .put(control("/settings"))
        .json(&json!({ "daily_post_cap": 1 }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("settings");
    assert_eq!(
        (
            settings["daily_post_cap"].as_u64(),
            settings["pending_inbox_cap"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert_eq!(sandbox.settings().daily_post_cap, 1);

    let clock: Value = http
        .post(control("/clock"))
        .json(&json!({ "advance_ms": 7_200_000 }))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("clock");
    assert_eq!(clock["offset_ms"], 7_200_000);
    let (status, body) = raw
        .post("/v2/post/publish/creator_info/query/", &created[0], json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "access_token_invalid"),
        "2 h later"
    );

    let requests: Vec<Value> = http
        .get(control("/requests"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("log");
    assert_eq!(requests.len(), 4, "control calls are not logged");
    assert_eq!(requests[1]["fault"], "respond 503");
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_at_all() {
    let sandbox = sandbox().await;
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    sandbox.inject_fault(
        FaultSpec::new(Endpoint::CreatorInfo, FaultAction::Drop)
            .times(2)
            .skip(1),
    );
    let raw = Raw::new(sandbox.base_url());
    let call = || {
        raw.http
            .post(format!("{}/v2/post/publish/creator_info/query/", sandbox.base_url()))
            .bearer_auth(&tokens.access_token)
            .send()
    };
    assert!(call().await.is_ok(), "skipped once");
    assert!(call().await.is_err());
    assert!(call().await.is_err());
    assert!(call().await.is_ok(), "retired after two");
}
