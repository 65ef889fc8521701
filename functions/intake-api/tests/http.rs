//! The intake API over HTTP: every rule of the guide (status and `details[].field`), auth and workspace scoping,
//! idempotency, listing, editing, media, and the OpenAPI document.

mod support;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use std::sync::Arc;

use bytes::Bytes;
use intake_api::config::MediaJobs;
use serde_json::{json, Value};
use shared::{
    adapters::local_jobs::LocalMediaJobs,
    domain::{AccountStatus, Failure, Media, MediaKind, MediaStatus, PostStatus},
    events::EventType,
    ids::MediaId,
    media_jobs::MediaJob,
    ports::{BlobError, BlobStore, JobQueueError, MediaJobInbox, MediaJobQueue},
};
use support::{account_record, TestApp};

// ---------------------------------------------------------------- rules of the guide, one by one

#[tokio::test]
async fn when_the_post_is_valid_should_return_201_with_the_post() {
    let app = TestApp::new().await;
    let reply = app.post_as(&app.a, app.video_post()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(reply.body["id"].as_str().unwrap().starts_with("post_"));
    assert_eq!(reply.body["status"], "scheduled");
    assert_eq!(reply.body["platform"], "tiktok");
    // This app's TikTok is unreachable: the creator's settings are checked at pre-flight instead, and it says so.
    assert_eq!(reply.body["warnings"][0]["code"], "creator_check_deferred");
    assert_eq!(reply.body["warnings"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn when_platform_is_not_tiktok_should_refuse_it() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["platform"] = json!("instagram");
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["platform"]);
}

#[tokio::test]
async fn when_post_type_is_not_video_or_photo_should_say_tiktok_cannot_create_it() {
    let app = TestApp::new().await;
    for kind in ["live", "duet", "stitch", "story"] {
        let mut body = app.video_post();
        body["postType"] = json!(kind);
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["postType"]);
        let message = reply.detail("postType")["message"].as_str().unwrap().to_owned();
        assert!(message.contains("TikTok's API cannot create"), "{message}");
    }
}

#[tokio::test]
async fn when_status_is_unknown_should_refuse_it() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["status"] = json!("queued");
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["status"]);
}

#[tokio::test]
async fn when_status_is_draft_should_store_it_without_announcing_it() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["status"] = json!("draft");
    body["options"] = json!({});
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["status"], "draft");
    assert!(
        app.events.events().is_empty(),
        "a draft never reaches TikTok, nor the bus"
    );
}

#[tokio::test]
async fn when_published_without_a_time_should_be_due_now_and_handed_to_the_publisher() {
    let app = TestApp::new().await;
    let reply = app.post_as(&app.a, app.video_post()).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["scheduledAt"], json!(support::start()));
    let types: Vec<EventType> = app.events.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::PostScheduled]);
    let armed: Vec<(String, chrono::DateTime<chrono::Utc>)> = app
        .timer
        .wakeups()
        .into_iter()
        .map(|w| (w.post_id.to_string(), w.at))
        .collect();
    let lead = shared::timer::DEFAULT_LEAD;
    assert_eq!(
        armed,
        [(reply.body["id"].as_str().unwrap().to_owned(), support::start() - lead)],
        "publish now arms the publisher's wakeup at once, not at the next tick"
    );
}

#[tokio::test]
async fn when_scheduled_later_should_announce_it_without_making_it_due() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["scheduledAt"] = json!("2026-11-26T09:30:00+01:00");
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["scheduledAt"], "2026-11-26T08:30:00Z");
    let types: Vec<EventType> = app.events.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::PostScheduled]);
    assert!(
        app.timer.wakeups().is_empty(),
        "a post due after the next tick is armed by that tick"
    );
}

#[tokio::test]
async fn when_scheduled_at_is_malformed_past_or_too_far_should_refuse_it() {
    let app = TestApp::new().await;
    for (at, code) in [
        ("2026-11-26T09:30:00", "invalid_format"),
        ("next tuesday", "invalid_format"),
        ("2026-11-25T11:58:59Z", "in_the_past"),
        ("2027-11-25T12:00:01Z", "too_far_ahead"),
    ] {
        let mut body = app.video_post();
        body["scheduledAt"] = json!(at);
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{at}");
        assert_eq!(reply.fields(), ["scheduledAt"], "{at}");
        assert_eq!(reply.codes(), [code], "{at}");
    }
    let mut body = app.video_post();
    body["scheduledAt"] = json!("2026-11-25T11:59:30Z");
    assert_eq!(
        app.post_as(&app.a, body).await.status,
        StatusCode::CREATED,
        "30 s of clock skew is tolerated"
    );
}

#[tokio::test]
async fn when_the_caption_is_over_2200_utf16_units_should_refuse_it() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["content"] = json!(format!("{}#x", "🎉".repeat(1099)));
    assert_eq!(
        app.post_as(&app.a, body.clone()).await.status,
        StatusCode::CREATED,
        "2,200 units exactly"
    );
    body["content"] = json!(format!("{}#xy", "🎉".repeat(1099)));
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["content"]);
}

#[tokio::test]
async fn when_a_photo_title_is_over_90_units_should_refuse_it() {
    let app = TestApp::new().await;
    let mut body = app.photo_post(2);
    body["options"]["title"] = json!("t".repeat(91));
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["options.title"]);
}

#[tokio::test]
async fn when_media_counts_or_kinds_are_wrong_should_name_the_offending_item() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["media"] = json!([{"id": app.a.video}, {"id": app.a.images[0]}]);
    assert_eq!(app.post_as(&app.a, body).await.fields(), ["media", "media[1].id"]);

    let mut body = app.video_post();
    body["media"] = json!([{"id": app.a.images[0]}]);
    assert_eq!(app.post_as(&app.a, body).await.fields(), ["media[0].id"]);

    for count in [1, 36] {
        let reply = app.post_as(&app.a, app.photo_post(count)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{count} images");
        assert_eq!(reply.fields(), ["media"], "{count} images");
    }
    assert_eq!(
        app.post_as(&app.a, app.photo_post(35)).await.status,
        StatusCode::CREATED
    );

    let mut body = app.photo_post(3);
    body["media"][2] = json!({"id": app.a.images[0]});
    assert_eq!(app.post_as(&app.a, body).await.fields(), ["media[2].id"]);

    let mut body = app.photo_post(2);
    body["media"][1] = json!({"id": app.a.video});
    assert_eq!(app.post_as(&app.a, body).await.fields(), ["media[1].id"]);

    let mut body = app.photo_post(2);
    body["media"][1] = json!({"id": "not-an-id"});
    assert_eq!(app.post_as(&app.a, body).await.fields(), ["media[1].id"]);
}

#[tokio::test]
async fn when_media_is_missing_foreign_or_rejected_should_refuse_it_and_pending_media_should_wait() {
    let app = TestApp::new().await;
    let foreign = app.b.video.clone();
    let rejected = app.add_media(&app.a, MediaKind::Video, MediaStatus::Invalid).await;
    let pending = app.add_media(&app.a, MediaKind::Video, MediaStatus::Validating).await;
    let unknown = shared::ids::MediaId::new();
    for (id, code) in [
        (&foreign, "not_found"),
        (&unknown, "not_found"),
        (&rejected, "media_rejected"),
    ] {
        let mut body = app.video_post();
        body["media"] = json!([{"id": id}]);
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["media[0].id"]);
        assert_eq!(reply.codes(), [code]);
    }
    let mut body = app.video_post();
    body["media"] = json!([{"id": pending}]);
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["warnings"][0]["code"], "media_not_validated_yet");
}

#[tokio::test]
async fn when_privacy_is_missing_or_unknown_should_refuse_it_unless_the_post_is_a_draft() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["options"] = json!({});
    let reply = app.post_as(&app.a, body.clone()).await;
    assert_eq!(reply.fields(), ["options.privacy"]);
    assert_eq!(reply.codes(), ["required"]);
    body["options"] = json!({"privacy": "everyone"});
    assert_eq!(app.post_as(&app.a, body.clone()).await.fields(), ["options.privacy"]);
    body["status"] = json!("draft");
    body["options"] = json!({});
    assert_eq!(app.post_as(&app.a, body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn when_interaction_flags_are_omitted_should_default_to_true() {
    let app = TestApp::new().await;
    let reply = app.post_as(&app.a, app.video_post()).await;
    let options = &reply.body["options"];
    assert_eq!(
        (
            &options["allowComments"],
            &options["allowDuet"],
            &options["allowStitch"]
        ),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(
        (
            &options["brandContent"],
            &options["brandOrganic"],
            &options["aiGenerated"]
        ),
        (&json!(false), &json!(false), &json!(false))
    );
    assert_eq!(options["allowDuplicate"], false);
}

#[tokio::test]
async fn when_duet_or_stitch_is_set_on_a_photo_post_should_warn_that_it_is_not_sent() {
    let app = TestApp::new().await;
    let mut body = app.photo_post(2);
    body["options"]["allowDuet"] = json!(true);
    body["options"]["allowStitch"] = json!(false);
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let codes: Vec<&str> = reply.body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["not_sent_for_photo", "not_sent_for_photo", "creator_check_deferred"]
    );
}

#[tokio::test]
async fn when_branded_content_is_private_should_refuse_it() {
    let app = TestApp::audited().await;
    let mut body = app.video_post();
    body["options"]["brandContent"] = json!(true);
    let reply = app.post_as(&app.a, body.clone()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["options.brandContent"]);
    body["options"]["privacy"] = json!("public");
    assert_eq!(app.post_as(&app.a, body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn when_the_app_is_unaudited_should_accept_only_private_and_explain_the_audit() {
    let app = TestApp::new().await;
    for privacy in ["public", "followersOnly", "friends"] {
        let mut body = app.video_post();
        body["options"]["privacy"] = json!(privacy);
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["options.privacy"]);
        assert!(reply.detail("options.privacy")["message"]
            .as_str()
            .unwrap()
            .contains("audit"));
    }
    let audited = TestApp::audited().await;
    let mut body = audited.video_post();
    body["options"]["privacy"] = json!("public");
    assert_eq!(audited.post_as(&audited.a, body).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn when_cover_or_music_fields_are_sent_should_refuse_them_with_the_guides_advice() {
    let app = TestApp::new().await;
    for field in ["cover", "coverImage", "thumbnail"] {
        let mut body = app.video_post();
        body[field] = json!("https://example.com/cover.jpg");
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.fields(), [field]);
        assert!(reply.detail(field)["message"].as_str().unwrap().contains("first frame"));
    }
    let mut body = app.video_post();
    body["options"]["music"] = json!("track-1");
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.fields(), ["options.music"]);
    assert!(reply.detail("options.music")["message"]
        .as_str()
        .unwrap()
        .contains("mix"));
}

#[tokio::test]
async fn when_an_unknown_field_is_sent_should_refuse_and_name_it() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["hashtags"] = json!(["a"]);
    body["options"]["schedule"] = json!(true);
    body["media"][0]["url"] = json!("https://x");
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.fields(), ["hashtags", "media[0].url", "options.schedule"]);
}

#[tokio::test]
async fn when_the_account_is_foreign_unknown_or_disconnected_should_refuse_it() {
    let app = TestApp::new().await;
    let disconnected = account_record(&app.a.workspace, AccountStatus::ReauthRequired);
    app.stores.accounts.create_account(&disconnected).await.unwrap();
    for (account, code) in [
        (json!(app.b.account), "not_found"),
        (json!(shared::ids::AccountId::new()), "not_found"),
        (json!("acc_nope"), "invalid_id"),
        (json!(disconnected.id), "account_not_connected"),
    ] {
        let mut body = app.video_post();
        body["accountId"] = account;
        let reply = app.post_as(&app.a, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["accountId"]);
        assert_eq!(reply.codes(), [code]);
    }
}

#[tokio::test]
async fn when_many_rules_break_at_once_should_return_them_all_in_one_422() {
    let app = TestApp::new().await;
    let body = json!({
        "platform": "x", "postType": "story", "content": 5, "media": "none", "options": {"privacy": 1},
        "thumbnail": "t"
    });
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["error"]["code"], "validation_failed");
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "accountId",
            "content",
            "media",
            "options.privacy",
            "platform",
            "postType",
            "thumbnail"
        ]
    );
    assert!(reply.body["error"]["requestId"].as_str().unwrap().starts_with("req_"));
}

// ---------------------------------------------------------------- edges: auth, scoping, body handling

#[tokio::test]
async fn when_the_key_is_missing_or_wrong_should_return_401() {
    let app = TestApp::new().await;
    assert_eq!(
        app.call(Method::GET, "/v1/posts", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let reply = app.call(Method::GET, "/v1/posts", Some("pk_wrong"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn when_another_workspace_asks_for_a_post_or_media_should_return_404() {
    let app = TestApp::new().await;
    let created = app.post_as(&app.a, app.video_post()).await;
    let post_path = format!("/v1/posts/{}", created.body["id"].as_str().unwrap());
    assert_eq!(
        app.call(Method::GET, &post_path, Some(&app.a.key), None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, &post_path, Some(&app.b.key), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &post_path, Some(&app.b.key), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let patch = app
        .call(
            Method::PATCH,
            &post_path,
            Some(&app.b.key),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);

    let media_path = format!("/v1/media/{}", app.a.video);
    assert_eq!(
        app.call(Method::GET, &media_path, Some(&app.a.key), None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(Method::GET, &media_path, Some(&app.b.key), None).await.status,
        StatusCode::NOT_FOUND
    );

    let listed = app.call(Method::GET, "/v1/posts", Some(&app.b.key), None).await;
    assert_eq!(listed.body["data"], json!([]));
}

#[tokio::test]
async fn when_the_body_is_malformed_not_json_or_too_big_should_return_400_415_413() {
    let app = TestApp::new().await;
    let raw = |content_type: &str, body: Vec<u8>| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/posts")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.a.key))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let reply = app.send(raw("application/json", b"{\"platform\": ".to_vec())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "malformed_request");
    assert_eq!(
        app.send(raw("text/plain", b"{}".to_vec())).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = format!("{{\"content\": \"{}\"}}", "a".repeat(1024 * 1024 + 1));
    let reply = app.send(raw("application/json", big.into_bytes())).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error"]["code"], "payload_too_large");
    let reply = app.post_as(&app.a, json!([1, 2])).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn when_a_route_or_method_does_not_exist_should_answer_in_the_error_shape() {
    let app = TestApp::new().await;
    let reply = app.call(Method::GET, "/v1/nothing", Some(&app.a.key), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error"]["code"], "not_found");
    let reply = app.call(Method::PUT, "/v1/posts", Some(&app.a.key), None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.body["error"]["code"], "method_not_allowed");
}

// ---------------------------------------------------------------- idempotency

#[tokio::test]
async fn when_the_same_idempotency_key_and_body_are_replayed_should_return_the_first_response_once() {
    let app = TestApp::new().await;
    let request = |body: &Value| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/posts")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.a.key))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "order-42")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let body = app.video_post();
    let first = app.send(request(&body)).await;
    let second = app.send(request(&body)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    let listed = app.call(Method::GET, "/v1/posts", Some(&app.a.key), None).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "no second post");

    let mut other = body.clone();
    other["content"] = json!("another caption");
    let conflict = app.send(request(&other)).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.body["error"]["code"], "idempotency_key_reused");

    // Another workspace may use the same key for its own post.
    let mut b_body = body.clone();
    b_body["accountId"] = json!(app.b.account);
    b_body["media"] = json!([{"id": app.b.video}]);
    let b_request = Request::builder()
        .method(Method::POST)
        .uri("/v1/posts")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.b.key))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", "order-42")
        .body(Body::from(b_body.to_string()))
        .unwrap();
    assert_eq!(app.send(b_request).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn when_replayed_concurrently_should_create_exactly_one_post() {
    let app = TestApp::new().await;
    let body = app.video_post().to_string();
    let replies = futures::future::join_all((0..8).map(|_| {
        app.send(
            Request::builder()
                .method(Method::POST)
                .uri("/v1/posts")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.a.key))
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "same")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
    }))
    .await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    assert_eq!(ids.len(), 1, "{ids:?}");
}

// ---------------------------------------------------------------- listing, editing, canceling

#[tokio::test]
async fn when_listing_should_page_newest_first_and_filter() {
    let app = TestApp::new().await;
    let mut created = Vec::new();
    for i in 0..5 {
        app.clock.advance(chrono::Duration::seconds(1));
        let mut body = app.video_post();
        if i % 2 == 0 {
            body["status"] = json!("draft");
        }
        created.push(app.post_as(&app.a, body).await.body["id"].as_str().unwrap().to_owned());
    }
    let page1 = app.call(Method::GET, "/v1/posts?limit=2", Some(&app.a.key), None).await;
    let cursor = page1.body["nextCursor"].as_str().unwrap().to_owned();
    let page2 = app
        .call(
            Method::GET,
            &format!("/v1/posts?limit=2&cursor={cursor}"),
            Some(&app.a.key),
            None,
        )
        .await;
    let page3_cursor = page2.body["nextCursor"].as_str().unwrap().to_owned();
    let page3 = app
        .call(
            Method::GET,
            &format!("/v1/posts?limit=2&cursor={page3_cursor}"),
            Some(&app.a.key),
            None,
        )
        .await;
    let seen: Vec<String> = [page1, page2, page3.clone()]
        .iter()
        .flat_map(|p| {
            p.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    created.reverse();
    assert_eq!(seen, created);
    assert!(page3.body.get("nextCursor").is_none());

    let drafts = app
        .call(Method::GET, "/v1/posts?status=draft", Some(&app.a.key), None)
        .await;
    assert_eq!(drafts.body["data"].as_array().unwrap().len(), 3);
    let by_account = app
        .call(
            Method::GET,
            &format!("/v1/posts?accountId={}", app.a.account),
            Some(&app.a.key),
            None,
        )
        .await;
    assert_eq!(by_account.body["data"].as_array().unwrap().len(), 5);

    let bad = app
        .call(Method::GET, "/v1/posts?status=bogus&limit=1000", Some(&app.a.key), None)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), ["status", "limit"]);
    let bad_cursor = app
        .call(Method::GET, "/v1/posts?cursor=garbage", Some(&app.a.key), None)
        .await;
    assert_eq!(bad_cursor.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_cursor.fields(), ["cursor"]);
}

#[tokio::test]
async fn when_patching_a_draft_into_publish_should_apply_the_same_rules() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["status"] = json!("draft");
    body["options"] = json!({});
    let id = app.post_as(&app.a, body).await.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/posts/{id}");

    let refused = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.a.key),
            Some(json!({"status": "publish"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.fields(), ["options.privacy"]);

    let refused = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.a.key),
            Some(json!({"postType": "photo", "thumbnail": "x"})),
        )
        .await;
    assert_eq!(refused.fields(), ["postType", "thumbnail"]);

    let ok = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.a.key),
            Some(
                json!({"status": "publish", "options": {"privacy": "private"}, "scheduledAt": "2026-11-30T10:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["status"], "scheduled");
    assert_eq!(ok.body["options"]["allowComments"], true, "options merge key by key");
    let types: Vec<EventType> = app.events.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::PostScheduled]);
}

#[tokio::test]
async fn when_publishing_started_should_refuse_edits_and_cancels_with_409() {
    let app = TestApp::new().await;
    let id = app.post_as(&app.a, app.video_post()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let post_id: shared::ids::PostId = id.parse().unwrap();
    let mut post = app.stores.posts.get_post(&post_id).await.unwrap().unwrap();
    let version = post.version;
    post.status = shared::domain::PostStatus::Publishing;
    post.version += 1;
    app.stores.posts.update_post(&post, version).await.unwrap();
    let path = format!("/v1/posts/{id}");
    let patch = app
        .call(Method::PATCH, &path, Some(&app.a.key), Some(json!({"content": "new"})))
        .await;
    assert_eq!(patch.status, StatusCode::CONFLICT);
    assert_eq!(patch.body["error"]["code"], "not_editable");
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&app.a.key), None).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn when_canceling_a_scheduled_post_should_cancel_it_once() {
    let app = TestApp::new().await;
    let mut body = app.video_post();
    body["scheduledAt"] = json!("2026-11-26T09:30:00Z");
    let id = app.post_as(&app.a, body).await.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/posts/{id}");
    let first = app.call(Method::DELETE, &path, Some(&app.a.key), None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["status"], "canceled");
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&app.a.key), None).await.status,
        StatusCode::OK
    );
    let due = app
        .stores
        .posts
        .due_posts(support::start() + chrono::Duration::days(2), None, 10)
        .await
        .unwrap();
    assert!(due.is_empty(), "a canceled post leaves the due index");
    assert_eq!(
        event_types(&app),
        [EventType::PostScheduled, EventType::PostCanceled],
        "one post.canceled, for the cancel that changed something"
    );
    let canceled = app.events.events().pop().unwrap();
    assert_eq!(canceled.post_id.unwrap().to_string(), id);
    assert_eq!(canceled.data["previousStatus"], "scheduled");
    assert_eq!(first.body["audit"][0]["action"], "canceled");
    assert_eq!(first.body["audit"][0]["by"], key_id(&app.a.key));
}

#[tokio::test]
async fn when_the_bus_refuses_the_cancel_event_should_keep_it_in_the_outbox_for_the_publisher() {
    let app = TestApp::new().await;
    let id = created(&app, app.video_post()).await;
    app.events.refuse_next(1);
    let reply = app
        .call(Method::DELETE, &format!("/v1/posts/{id}"), Some(&app.a.key), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let post = stored(&app, &id).await;
    let waiting: Vec<EventType> = post.outbox.iter().map(|e| e.event_type).collect();
    assert_eq!(waiting, [EventType::PostCanceled]);
    let due = app.stores.posts.due_posts(support::start(), None, 10).await.unwrap();
    assert_eq!(
        due.len(),
        1,
        "a post with undelivered events is due, so the publisher delivers them"
    );
}

// ---------------------------------------------------------------- retry and resolve

/// Creates a post for tenant A; its id.
async fn created(app: &TestApp, body: Value) -> String {
    let reply = app.post_as(&app.a, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn stored(app: &TestApp, id: &str) -> shared::domain::Post {
    let id: shared::ids::PostId = id.parse().unwrap();
    app.stores.posts.get_post(&id).await.unwrap().unwrap()
}

/// Writes the post as the publisher would have left it.
async fn as_publisher_left_it(app: &TestApp, id: &str, change: impl FnOnce(&mut shared::domain::Post)) {
    let mut post = stored(app, id).await;
    let version = post.version;
    change(&mut post);
    post.version += 1;
    app.stores.posts.update_post(&post, version).await.unwrap();
}

/// A post for tenant A that ended `status` with `code`, its events already delivered.
async fn ended(app: &TestApp, status: PostStatus, code: &str) -> String {
    let id = created(app, app.video_post()).await;
    as_publisher_left_it(app, &id, |post| {
        post.status = status;
        post.publish.attempt = 1;
        post.failure = Some(Failure::new(code, "what the publisher said"));
    })
    .await;
    id
}

fn event_types(app: &TestApp) -> Vec<EventType> {
    app.events.events().iter().map(|e| e.event_type).collect()
}

fn key_id(key: &str) -> String {
    format!("key_{}", &shared::domain::ApiKey::hash_secret(key)[..16])
}

async fn retry(app: &TestApp, id: &str, body: Option<Value>) -> support::Reply {
    app.call(Method::POST, &format!("/v1/posts/{id}/retry"), Some(&app.a.key), body)
        .await
}

async fn resolve(app: &TestApp, id: &str, body: Value) -> support::Reply {
    app.call(
        Method::POST,
        &format!("/v1/posts/{id}/resolve"),
        Some(&app.a.key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn when_a_failed_post_is_retried_without_a_body_should_schedule_it_now_with_an_event_and_an_audit_entry() {
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::Failed, "upload_expired").await;
    app.clock.advance(chrono::Duration::hours(2));
    let before = stored(&app, &id).await;

    let reply = retry(&app, &id, None).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let now = support::start() + chrono::Duration::hours(2);
    assert_eq!(reply.body["status"], "scheduled");
    assert_eq!(reply.body["scheduledAt"], json!(now));
    assert!(
        reply.body.get("failure").is_none(),
        "the failure is cleared: {}",
        reply.body
    );
    let audit = &reply.body["audit"];
    assert_eq!(audit.as_array().unwrap().len(), 1);
    assert_eq!(audit[0]["action"], "retried");
    assert_eq!(audit[0]["by"], key_id(&app.a.key));
    assert_eq!(audit[0]["at"], json!(now));
    assert!(!audit.to_string().contains(&app.a.key), "the key itself is never shown");
    let post = stored(&app, &id).await;
    assert_eq!(
        post.publish,
        Default::default(),
        "the previous attempt's record is cleared"
    );
    assert!(post.outbox.is_empty(), "its events were delivered");
    assert!(post.version > before.version);
    assert_eq!(
        event_types(&app),
        [
            EventType::PostScheduled,
            EventType::PostRetried,
            EventType::PostScheduled
        ]
    );
    let retried = &app.events.events()[1];
    assert_eq!(retried.data["previousFailure"], "upload_expired");
    assert!(
        app.timer
            .wakeups()
            .iter()
            .any(|w| w.post_id == post.id && w.at == now - shared::timer::DEFAULT_LEAD),
        "a retry for now arms the publisher at once"
    );
}

#[tokio::test]
async fn when_a_retry_names_a_time_should_schedule_it_then_under_the_create_rules() {
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::Failed, "spam_risk_too_many_posts").await;
    for (body, field) in [
        (json!({"scheduledAt": "2026-11-20T09:00:00Z"}), "scheduledAt"),
        (json!({"scheduledAt": "tomorrow"}), "scheduledAt"),
        (json!({"content": "new caption"}), "content"),
    ] {
        let reply = retry(&app, &id, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.body);
        assert_eq!(reply.fields(), [field], "{body}");
    }
    assert_eq!(
        stored(&app, &id).await.status,
        PostStatus::Failed,
        "a refused retry changes nothing"
    );

    let reply = retry(&app, &id, Some(json!([]))).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a body that is there must be an object"
    );
    let other = ended(&app, PostStatus::Failed, "internal").await;
    assert_eq!(
        retry(&app, &other, Some(Value::Null)).await.status,
        StatusCode::OK,
        "a JSON null body is no body"
    );

    let reply = retry(&app, &id, Some(json!({"scheduledAt": "2026-11-26T12:00:00+01:00"}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["scheduledAt"], "2026-11-26T11:00:00Z");
    assert_eq!(reply.body["status"], "scheduled");
}

#[tokio::test]
async fn when_the_media_or_account_went_bad_should_refuse_the_retry_with_the_same_422_as_a_create() {
    let app = TestApp::new().await;
    let rejected = app.add_media(&app.a, MediaKind::Video, MediaStatus::Invalid).await;
    let disconnected = account_record(&app.a.workspace, AccountStatus::ReauthRequired);
    app.stores.accounts.create_account(&disconnected).await.unwrap();

    let mut bad_media = app.video_post();
    bad_media["media"] = json!([{"id": rejected}]);
    let mut bad_account = app.video_post();
    bad_account["accountId"] = json!(disconnected.id);
    for create in [bad_media, bad_account] {
        let id = ended(&app, PostStatus::Failed, "media_rejected").await;
        as_publisher_left_it(&app, &id, |post| {
            post.media = vec![create["media"][0]["id"].as_str().unwrap().parse().unwrap()];
            post.account_id = create["accountId"].as_str().unwrap().parse().unwrap();
        })
        .await;
        let as_create = app.post_as(&app.a, create.clone()).await;
        let reply = retry(&app, &id, None).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
        assert_eq!(reply.fields(), as_create.fields());
        assert_eq!(reply.codes(), as_create.codes());
    }
}

#[tokio::test]
async fn when_retrying_could_double_post_or_the_post_has_not_failed_should_refuse_with_409() {
    let app = TestApp::new().await;
    let tracking = ended(&app, PostStatus::Failed, "tracking_timeout").await;
    as_publisher_left_it(&app, &tracking, |post| {
        post.publish.publish_id = Some("v_pub_file~v2.123".into())
    })
    .await;
    let banned = ended(&app, PostStatus::Failed, "spam_risk_user_banned_from_posting").await;
    let in_review = ended(&app, PostStatus::NeedsReview, "init_outcome_unknown").await;
    let completed = ended(&app, PostStatus::Completed, "unused").await;
    let scheduled = created(&app, app.video_post()).await;
    for (id, code) in [
        (&tracking, "may_double_post"),
        (&banned, "not_retryable"),
        (&in_review, "needs_review"),
        (&completed, "not_retryable"),
        (&scheduled, "not_retryable"),
    ] {
        let before = stored(&app, id).await;
        let reply = retry(&app, id, None).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{code}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], code);
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(
            stored(&app, id).await,
            before,
            "{code}: a refused retry changes nothing"
        );
    }
    assert!(!event_types(&app).contains(&EventType::PostRetried));
}

#[tokio::test]
async fn when_tiktok_reported_the_post_failed_should_retry_it_despite_its_publish_id() {
    // TikTok's `FAILED` is final, so the post is not live: a user who fixed the file may send it again.
    let app = TestApp::new().await;
    let refused = ended(&app, PostStatus::Failed, "file_format_check_failed").await;
    as_publisher_left_it(&app, &refused, |post| {
        post.publish.publish_id = Some("v_pub_file~v2.123".into())
    })
    .await;
    let reply = retry(&app, &refused, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "scheduled");
    assert_eq!(
        stored(&app, &refused).await.publish.publish_id,
        None,
        "the next init starts afresh"
    );
}

#[tokio::test]
async fn when_another_workspace_retries_or_resolves_a_post_should_return_404() {
    let app = TestApp::new().await;
    let failed = ended(&app, PostStatus::Failed, "media_changed").await;
    let in_review = ended(&app, PostStatus::NeedsReview, "init_outcome_unknown").await;
    let retried = app
        .call(
            Method::POST,
            &format!("/v1/posts/{failed}/retry"),
            Some(&app.b.key),
            None,
        )
        .await;
    let resolved = app
        .call(
            Method::POST,
            &format!("/v1/posts/{in_review}/resolve"),
            Some(&app.b.key),
            Some(json!({"outcome": "not_published"})),
        )
        .await;
    assert_eq!(retried.status, StatusCode::NOT_FOUND);
    assert_eq!(resolved.status, StatusCode::NOT_FOUND);
    assert_eq!(stored(&app, &failed).await.status, PostStatus::Failed);
    assert_eq!(stored(&app, &in_review).await.status, PostStatus::NeedsReview);
}

#[tokio::test]
async fn when_a_post_in_review_is_found_on_tiktok_should_complete_it_with_tiktoks_post_id() {
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::NeedsReview, "init_outcome_unknown").await;
    let url = "https://www.tiktok.com/@launchteam/video/7311234567890123456";

    let reply = resolve(&app, &id, json!({"outcome": "published", "postUrl": url})).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "completed");
    assert_eq!(reply.body["postUrl"], url);
    assert_eq!(reply.body["tiktokPostId"], "7311234567890123456");
    assert_eq!(reply.body["completedAt"], json!(support::start()));
    assert_eq!(reply.body["audit"][0]["action"], "resolved");
    assert_eq!(reply.body["audit"][0]["by"], key_id(&app.a.key));
    let resolved = app.events.events().pop().unwrap();
    assert_eq!(resolved.event_type, EventType::PostResolved);
    assert_eq!(resolved.data["outcome"], "published");
    assert_eq!(resolved.data["tiktokPostId"], "7311234567890123456");
    assert_eq!(
        retry(&app, &id, None).await.status,
        StatusCode::CONFLICT,
        "a post found on TikTok is never retried"
    );
}

#[tokio::test]
async fn when_a_post_in_review_is_not_on_tiktok_should_let_it_be_retried() {
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::NeedsReview, "init_outcome_unknown").await;
    assert_eq!(retry(&app, &id, None).await.body["error"]["code"], "needs_review");

    let reply = resolve(&app, &id, json!({"outcome": "not_published"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "failed");
    assert_eq!(reply.body["failure"]["code"], "not_published_confirmed");

    let retried = retry(&app, &id, None).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["status"], "scheduled");
    let actions: Vec<&str> = retried.body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["resolved", "retried"]);
    assert_eq!(
        event_types(&app),
        [
            EventType::PostScheduled,
            EventType::PostResolved,
            EventType::PostRetried,
            EventType::PostScheduled
        ],
        "the post's events in the order of its transitions"
    );
}

#[tokio::test]
async fn when_tiktok_accepted_a_post_whose_tracking_ended_in_review_should_retry_only_after_a_person_found_it_missing()
{
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::NeedsReview, "tracking_timeout").await;
    as_publisher_left_it(&app, &id, |post| {
        post.publish.publish_id = Some("v_pub_file~v2.77".into())
    })
    .await;
    assert_eq!(retry(&app, &id, None).await.body["error"]["code"], "needs_review");

    let reply = resolve(&app, &id, json!({"outcome": "not_published"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["publishId"], "v_pub_file~v2.77",
        "what TikTok said stays on record until the retry"
    );
    let resolved = app.events.events().pop().unwrap();
    assert_eq!(resolved.data["publishId"], "v_pub_file~v2.77");

    let retried = retry(&app, &id, None).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert!(
        retried.body.get("publishId").is_none(),
        "the retry starts a new attempt"
    );
}

#[tokio::test]
async fn when_a_resolution_is_unreadable_should_name_outcome_or_post_url() {
    let app = TestApp::new().await;
    let id = ended(&app, PostStatus::NeedsReview, "init_outcome_unknown").await;
    for (body, field) in [
        (json!({}), "outcome"),
        (json!({"outcome": "deleted"}), "outcome"),
        (
            json!({"outcome": "published", "postUrl": "http://www.tiktok.com/@u/video/1"}),
            "postUrl",
        ),
        (
            json!({"outcome": "published", "postUrl": "https://tiktok.com.example/@u/video/1"}),
            "postUrl",
        ),
        (json!({"outcome": "published", "postUrl": 7}), "postUrl"),
    ] {
        let reply = resolve(&app, &id, body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.fields(), [field], "{body}");
    }
    assert_eq!(stored(&app, &id).await.status, PostStatus::NeedsReview);
}

#[tokio::test]
async fn when_the_post_is_not_in_review_should_refuse_to_resolve_it_with_409() {
    let app = TestApp::new().await;
    let failed = ended(&app, PostStatus::Failed, "media_changed").await;
    let scheduled = created(&app, app.video_post()).await;
    for id in [failed, scheduled] {
        let reply = resolve(&app, &id, json!({"outcome": "not_published"})).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(reply.body["error"]["code"], "not_in_review");
    }
}

// ---------------------------------------------------------------- a busy database

/// Issue 11 §5: on SQLite, reads used to queue behind a writer (10–12 s GETs while another connection held the write
/// lock for 12 s). Reads now have connections of their own, and a write gives up within the lock wait with a 503.
#[tokio::test]
async fn a_write_lock_held_elsewhere_neither_stalls_reads_nor_holds_writes_for_longer_than_a_quick_503() {
    let app = TestApp::on_sqlite_file().await;
    let path = app.database_file.clone().expect("a database file");
    let (locked, is_locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let other = rusqlite::Connection::open(path).expect("a second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("takes the write lock");
        locked.send(()).expect("the test waits");
        // The 12 s, cut short once the test has seen what it needs.
        let _ = released.recv_timeout(std::time::Duration::from_secs(12));
        other.execute_batch("COMMIT").expect("lets go");
    });
    is_locked.recv().expect("the lock is held");

    // The create goes first and waits for the lock; the read comes while it waits, as in the issue.
    let timed_create = async {
        let started = std::time::Instant::now();
        (app.post_as(&app.a, app.video_post()).await, started.elapsed())
    };
    let timed_read = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let listed = app.call(Method::GET, "/v1/posts", Some(&app.a.key), None).await;
        (listed, started.elapsed())
    };
    let ((refused, write_took), (listed, read_took)) = tokio::join!(timed_create, timed_read);
    release.send(()).expect("the holder waits");
    tokio::task::spawn_blocking(move || holder.join().expect("the holder ends"))
        .await
        .expect("joined");
    let created = app.post_as(&app.a, app.video_post()).await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert!(
        read_took < std::time::Duration::from_secs(1),
        "the read took {read_took:?}"
    );
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "service_unavailable");
    assert!(refused.body["error"]["requestId"].is_string(), "{}", refused.body);
    assert_eq!(refused.headers[header::RETRY_AFTER], "2");
    assert!(
        write_took < std::time::Duration::from_secs(3),
        "the refused write took {write_took:?}"
    );
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let listed = app.call(Method::GET, "/v1/posts", Some(&app.a.key), None).await;
    assert_eq!(
        listed.body["data"].as_array().map(Vec::len),
        Some(1),
        "only the post created after the lock"
    );
    println!("while another connection held the write lock: GET /v1/posts {read_took:?}, POST /v1/posts 503 in {write_took:?}");
}

// ---------------------------------------------------------------- media

#[tokio::test]
async fn when_media_is_announced_should_return_an_upload_target_and_refuse_oversize_declarations() {
    let app = TestApp::new().await;
    let reply = app
        .call(
            Method::POST,
            "/v1/media",
            Some(&app.a.key),
            Some(
                json!({"kind": "video", "contentType": "video/mp4", "sizeBytes": 1_234_567, "fileName": "launch.mp4"}),
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(reply.body["id"].as_str().unwrap().starts_with("med_"));
    assert_eq!(reply.body["status"], "pending_upload");
    assert_eq!(reply.body["upload"]["method"], "PUT");
    assert!(reply.body["upload"]["url"].as_str().unwrap().starts_with("http"));
    assert_eq!(reply.body["upload"]["headers"]["content-type"], "video/mp4");

    let shown = app
        .call(
            Method::GET,
            &format!("/v1/media/{}", reply.body["id"].as_str().unwrap()),
            Some(&app.a.key),
            None,
        )
        .await;
    assert_eq!(shown.body["status"], "pending_upload");
    assert!(shown.body.get("upload").is_none(), "the upload URL is shown once");

    for (body, field) in [
        (
            json!({"kind": "video", "contentType": "video/mp4", "sizeBytes": 4_000_000_001u64}),
            "sizeBytes",
        ),
        (
            json!({"kind": "image", "contentType": "image/png", "sizeBytes": 20_000_001}),
            "sizeBytes",
        ),
        (
            json!({"kind": "image", "contentType": "image/gif", "sizeBytes": 10}),
            "contentType",
        ),
        (
            json!({"kind": "audio", "contentType": "audio/mpeg", "sizeBytes": 10}),
            "kind",
        ),
        (
            json!({"kind": "video", "contentType": "video/mp4", "sizeBytes": 0}),
            "sizeBytes",
        ),
    ] {
        let reply = app
            .call(Method::POST, "/v1/media", Some(&app.a.key), Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            reply.fields().contains(&field.to_owned()),
            "{body} -> {:?}",
            reply.fields()
        );
    }
}

/// Issue 13 §2: `sourceUrl` instead of an upload. Without a media job queue it is refused before anything is stored;
/// with one (SQS in AWS; here the in-process queue that stands for it) the media starts `importing`, no upload URL
/// is returned, and an import job naming the media and the URL is queued for the media worker.
#[tokio::test]
async fn when_media_names_a_source_url_should_queue_an_import_or_refuse_where_unavailable() {
    let app = TestApp::new().await;
    let body = json!({"kind": "video", "sourceUrl": "https://cdn.example.com/clip.mp4"});
    let reply = app
        .call(Method::POST, "/v1/media", Some(&app.a.key), Some(body.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert_eq!(reply.fields(), ["sourceUrl"]);

    let queue = Arc::new(LocalMediaJobs::new(std::time::Duration::from_secs(60)));
    let settings = intake_api::IntakeSettings {
        media_jobs: Some(MediaJobs(queue.clone())),
        ..intake_api::IntakeSettings::default()
    };
    let app = TestApp::with_settings(settings).await;
    let reply = app.call(Method::POST, "/v1/media", Some(&app.a.key), Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["status"], "importing");
    assert!(reply.body.get("upload").is_none(), "{}", reply.body);
    let queued = queue
        .receive(std::time::Duration::ZERO)
        .await
        .expect("the in-process queue answers");
    let jobs: Vec<MediaJob> = queued.into_iter().map(|delivery| delivery.job).collect();
    let media_id: MediaId = reply.body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        jobs,
        [MediaJob::Import {
            media_id,
            url: "https://cdn.example.com/clip.mp4".into()
        }]
    );

    for bad in [json!("ftp://example.com/x.mp4"), json!("not a url"), json!(42)] {
        let reply = app
            .call(
                Method::POST,
                "/v1/media",
                Some(&app.a.key),
                Some(json!({"kind": "image", "sourceUrl": bad})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(reply.fields(), ["sourceUrl"], "{bad}");
    }
}

/// Issue 11 §3: `DELETE /v1/media/{id}` removes the record and every file of it, refuses media a post still on its
/// way to TikTok uses, and knows no other workspace's media.
#[tokio::test]
async fn when_media_is_deleted_should_remove_its_files_unless_a_sending_post_uses_it() {
    let app = TestApp::new().await;
    let mut photo = support::media_record(&app.a.workspace, MediaKind::Image, MediaStatus::Valid);
    let rendition = Media::rendition_key_for(&app.a.workspace, &photo.id);
    if let Some(verdict) = photo.verdict.as_mut() {
        verdict.rendition_key = Some(rendition.clone());
    }
    app.stores.media.create_media(&photo).await.unwrap();
    for key in [&photo.object_key, &rendition] {
        app.blobs
            .put(key, Bytes::from_static(b"bytes"), "image/jpeg")
            .await
            .unwrap();
    }
    let path = format!("/v1/media/{}", photo.id);

    let foreign = app.call(Method::DELETE, &path, Some(&app.b.key), None).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    assert!(
        app.blobs.head(&photo.object_key).await.is_ok(),
        "another workspace deletes nothing"
    );

    let deleted = app.call(Method::DELETE, &path, Some(&app.a.key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for key in [&photo.object_key, &rendition] {
        assert!(
            matches!(app.blobs.head(key).await, Err(BlobError::NotFound(_))),
            "{key} is gone"
        );
    }
    assert_eq!(app.stores.media.get_media(&photo.id).await.unwrap(), None);
    assert_eq!(
        app.call(Method::GET, &path, Some(&app.a.key), None).await.status,
        StatusCode::NOT_FOUND
    );
    let again = app.call(Method::DELETE, &path, Some(&app.a.key), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "deleting again: {}", again.body);

    let post = app.post_as(&app.a, app.video_post()).await;
    assert_eq!(post.status, StatusCode::CREATED, "{}", post.body);
    let video = format!("/v1/media/{}", app.a.video);
    let in_use = app.call(Method::DELETE, &video, Some(&app.a.key), None).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{}", in_use.body);
    assert_eq!(in_use.body["error"]["code"], "media_in_use");
    let post_id = post.body["id"].as_str().unwrap();
    assert!(
        in_use.body["error"]["message"].as_str().unwrap().contains(post_id),
        "names the post: {}",
        in_use.body
    );
    assert!(app.stores.media.get_media(&app.a.video).await.unwrap().is_some());

    let canceled = app
        .call(Method::DELETE, &format!("/v1/posts/{post_id}"), Some(&app.a.key), None)
        .await;
    assert_eq!(canceled.status, StatusCode::OK, "{}", canceled.body);
    let freed = app.call(Method::DELETE, &video, Some(&app.a.key), None).await;
    assert_eq!(
        freed.status,
        StatusCode::NO_CONTENT,
        "a canceled post holds nothing: {}",
        freed.body
    );
}

// ---------------------------------------------------------------- the OpenAPI document

#[tokio::test]
async fn when_asked_for_the_openapi_document_should_list_every_route() {
    let app = TestApp::new().await;
    let reply = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = [
        ("post", "/v1/posts"),
        ("get", "/v1/posts"),
        ("get", "/v1/posts/{id}"),
        ("patch", "/v1/posts/{id}"),
        ("delete", "/v1/posts/{id}"),
        ("post", "/v1/posts/{id}/retry"),
        ("post", "/v1/posts/{id}/resolve"),
        ("post", "/v1/media"),
        ("get", "/v1/media/{id}"),
        ("delete", "/v1/media/{id}"),
        ("get", "/v1/accounts"),
        ("post", "/v1/accounts/tiktok/connect"),
        ("get", "/v1/accounts/tiktok/callback"),
        ("get", "/v1/accounts/{id}"),
        ("delete", "/v1/accounts/{id}"),
        ("get", "/v1/accounts/{id}/creator-info"),
        ("post", "/v1/webhooks/tiktok"),
        ("get", "/v1/openapi.json"),
    ];
    let paths = &reply.body["paths"];
    let link = &paths["/v1/posts"]["post"]["responses"]["201"]["links"]["get_post"];
    assert_eq!(
        link["operationId"], "get_post",
        "creates link to reads of what they created: {link}"
    );
    assert_eq!(link["parameters"]["id"], "$response.body#/id");
    for (method, path) in routes {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    // And every documented operation is served (none falls through to the 404 fallback).
    for (path, operations) in paths.as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if path != "/v1/openapi.json" {
                let unavailable = &operation["responses"]["503"];
                assert!(
                    unavailable["headers"]["Retry-After"].is_object(),
                    "{method} {path} declares no 503 with Retry-After: {unavailable}"
                );
            }
            let concrete = path.replace("{id}", "post_01HZX3V8Q6Y2M4N5P7R9S1T3W5");
            let method: Method = method.to_uppercase().parse().unwrap();
            let reply = app
                .call(method.clone(), &concrete, Some(&app.a.key), Some(json!({})))
                .await;
            let fallback = reply.status == StatusCode::NOT_FOUND && reply.body["error"]["message"] == "route not found";
            assert!(
                !fallback && reply.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
        }
    }
}

// ---------------------------------------------------------------- refresh-token keepalive

/// Issue 12 §2: TikTok's refresh tokens live months, not a year. A post that goes out after its account's refresh
/// token expires has a renewal planned a week before that, at create and at edit, and is due for it then; a post
/// that goes out first needs none.
#[tokio::test]
async fn when_a_post_goes_out_after_the_accounts_refresh_token_expires_should_plan_the_renewal() {
    let app = TestApp::new().await;
    let now = support::start();
    let refresh_expires_at = now + chrono::Duration::days(20);
    let mut account = app.stores.accounts.get_account(&app.a.account).await.unwrap().unwrap();
    account.tokens = Some(shared::domain::SealedTokens {
        access_token: "sealed-access".into(),
        access_expires_at: now + chrono::Duration::hours(2),
        refresh_token: "sealed-refresh".into(),
        refresh_expires_at,
    });
    account.version += 1;
    app.stores
        .accounts
        .update_account(&account, account.version - 1)
        .await
        .unwrap();
    let renew_at = refresh_expires_at - shared::domain::KEEPALIVE_MARGIN;
    let schedule = |days: i64| {
        let mut body = app.video_post();
        body["scheduledAt"] = json!(now + chrono::Duration::days(days));
        body
    };

    let late = app.post_as(&app.a, schedule(30)).await;
    let soon = app.post_as(&app.a, schedule(2)).await;

    assert_eq!(late.status, StatusCode::CREATED, "{}", late.body);
    let late = stored(&app, late.body["id"].as_str().unwrap()).await;
    assert_eq!(late.publish.keepalive_at, Some(renew_at));
    assert_eq!(late.due_at(), Some(renew_at), "due for the renewal, not its publishing");
    let soon_id = soon.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        stored(&app, &soon_id).await.publish.keepalive_at,
        None,
        "goes out first"
    );

    let moved = app
        .call(
            Method::PATCH,
            &format!("/v1/posts/{soon_id}"),
            Some(&app.a.key),
            Some(json!({"scheduledAt": now + chrono::Duration::days(40)})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(stored(&app, &soon_id).await.publish.keepalive_at, Some(renew_at));
}

/// A media job queue that refuses every job, remembering which media it was asked about.
#[derive(Default)]
struct RefusingQueue(std::sync::Mutex<Vec<MediaId>>);

#[async_trait::async_trait]
impl MediaJobQueue for RefusingQueue {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), JobQueueError> {
        self.0.lock().unwrap().push(job.media_id().clone());
        Err(JobQueueError::Unavailable("queue refused the message".into()))
    }
}

/// Issue 13 §2: a queue that refuses the import job fails the request with a 503 (the caller retries) and the media
/// created for it is closed `invalid` with `import_not_started`, never left `importing` with nothing coming.
#[tokio::test]
async fn when_the_import_queue_refuses_the_job_should_answer_503_and_close_the_media() {
    let queue = Arc::new(RefusingQueue::default());
    let settings = intake_api::IntakeSettings {
        media_jobs: Some(MediaJobs(queue.clone())),
        ..intake_api::IntakeSettings::default()
    };
    let app = TestApp::with_settings(settings).await;
    let body = json!({"kind": "video", "sourceUrl": "https://cdn.example.com/clip.mp4"});
    let reply = app.call(Method::POST, "/v1/media", Some(&app.a.key), Some(body)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "service_unavailable");
    assert!(!reply.body.to_string().contains("queue refused"), "{}", reply.body);
    let asked = queue.0.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    let media = app
        .stores
        .media
        .get_media(&asked[0])
        .await
        .unwrap()
        .expect("the media was created");
    assert_eq!(media.status, MediaStatus::Invalid);
    let verdict = media.verdict.expect("a verdict says why");
    assert_eq!(verdict.violations[0].code, "import_not_started");
}
