//! Issue 12 §1: a post is checked against the creator's TikTok settings (creator_info, from the sandbox) when it is
//! created or edited, so that what would fail at fire time fails now, with the same codes as pre-flight.

mod support;

use axum::http::{Method, StatusCode};
use intake_api::IntakeSettings;
use serde_json::{json, Value};
use shared::{
    domain::{MediaKind, MediaStatus},
    ids::{AccountId, MediaId},
};
use support::{media_record, Reply, Tenant, TestApp};
use tiktok_sandbox::{AccountSpec, Endpoint, FaultSpec};

/// An app on the sandbox, a workspace whose account is the creator `spec` describes, and a valid 15 s video.
async fn creator_with(spec: AccountSpec) -> (TestApp, Tenant, AccountId, MediaId) {
    // Audited, so that public posts are allowed and only the creator's settings decide.
    let settings = IntakeSettings {
        app_audited: true,
        ..IntakeSettings::default()
    };
    let app = TestApp::with_sandbox(settings, |_| {}).await;
    let tenant = app.empty_tenant("creators").await;
    let open_id = app.sandbox().create_account(spec);
    app.sandbox().set_authorizer(Some(&open_id));
    let connected = app.connect(&tenant).await;
    assert_eq!(connected.status, StatusCode::CREATED, "{}", connected.body);
    let account: AccountId = connected.body["id"].as_str().expect("id").parse().expect("account id");
    let video = media_record(&tenant.workspace, MediaKind::Video, MediaStatus::Valid);
    app.stores.media.create_media(&video).await.expect("media");
    (app, tenant, account, video.id)
}

fn video_post(account: &AccountId, video: &MediaId, options: Value) -> Value {
    json!({
        "platform": "tiktok", "accountId": account, "postType": "video", "content": "Launch day",
        "media": [{"id": video}], "options": options
    })
}

fn codes(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    (
                        item["field"].as_str().unwrap_or_default().to_owned(),
                        item["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn violations(reply: &Reply) -> Vec<(String, String)> {
    codes(&reply.body["error"]["details"])
}

#[tokio::test]
async fn an_interaction_left_at_its_default_is_sent_as_off_with_a_warning_when_the_creator_disabled_it() {
    // A private account: TikTok disables duets and stitches (what every account of an unaudited app is).
    let (app, tenant, account, video) = creator_with(AccountSpec::private()).await;

    let reply = app
        .post_as(&tenant, video_post(&account, &video, json!({"privacy": "private"})))
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["options"]["allowDuet"], false);
    assert_eq!(reply.body["options"]["allowStitch"], false);
    assert_eq!(reply.body["options"]["allowComments"], true);
    assert_eq!(
        codes(&reply.body["warnings"]),
        [
            (String::new(), "interaction_disabled_by_creator".to_owned()),
            (String::new(), "interaction_disabled_by_creator".to_owned())
        ]
    );
    assert!(reply.body["warnings"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("options.allowDuet is sent as false")));
}

#[tokio::test]
async fn comments_a_creator_disabled_are_sent_as_off_on_videos_and_photos_alike_and_refused_when_asked_for() {
    let (app, tenant, account, video) = creator_with(AccountSpec {
        comment_disabled: true,
        ..AccountSpec::public()
    })
    .await;

    let defaulted = app
        .post_as(&tenant, video_post(&account, &video, json!({"privacy": "public"})))
        .await;
    assert_eq!(defaulted.status, StatusCode::CREATED, "{}", defaulted.body);
    assert_eq!(defaulted.body["options"]["allowComments"], false);
    assert_eq!(
        defaulted.body["options"]["allowDuet"], true,
        "a public creator's duets stay on"
    );

    let asked = app
        .post_as(
            &tenant,
            video_post(&account, &video, json!({"privacy": "public", "allowComments": true})),
        )
        .await;
    assert_eq!(asked.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", asked.body);
    assert_eq!(
        violations(&asked),
        [("options.allowComments".to_owned(), "interaction_disabled".to_owned())]
    );
}

#[tokio::test]
async fn an_interaction_asked_for_explicitly_that_the_creator_disabled_is_a_422_naming_the_field() {
    let (app, tenant, account, video) = creator_with(AccountSpec::private()).await;

    let reply = app
        .post_as(
            &tenant,
            video_post(&account, &video, json!({"privacy": "private", "allowDuet": true})),
        )
        .await;

    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    // Stitch was left at its default: turned off, not refused.
    assert_eq!(
        violations(&reply),
        [("options.allowDuet".to_owned(), "interaction_disabled".to_owned())]
    );
}

#[tokio::test]
async fn a_privacy_tiktok_does_not_offer_and_a_video_over_the_creators_limit_are_422s() {
    let (app, tenant, account, video) = creator_with(AccountSpec {
        private: true,
        // The fixture video lasts 15 s.
        max_video_post_duration_sec: 10,
        ..AccountSpec::default()
    })
    .await;

    let reply = app
        .post_as(
            &tenant,
            video_post(
                &account,
                &video,
                json!({"privacy": "public", "allowDuet": false, "allowStitch": false}),
            ),
        )
        .await;

    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert_eq!(
        violations(&reply),
        [
            ("options.privacy".to_owned(), "privacy_unavailable".to_owned()),
            ("media[0].id".to_owned(), "duration_over_creator_limit".to_owned())
        ]
    );
    let message = reply.body["error"]["details"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("it offers"), "names what TikTok offers: {message}");
}

#[tokio::test]
async fn an_edit_is_checked_too_and_drafts_are_not_until_they_publish() {
    let (app, tenant, account, video) = creator_with(AccountSpec::private()).await;
    let mut draft = video_post(&account, &video, json!({"privacy": "private", "allowDuet": true}));
    draft["status"] = json!("draft");
    let created = app.post_as(&tenant, draft).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "a draft never reaches TikTok: {}",
        created.body
    );
    assert_eq!(created.body["options"]["allowDuet"], true);
    let path = format!("/v1/posts/{}", created.body["id"].as_str().unwrap_or_default());

    let asked = app
        .call(
            Method::PATCH,
            &path,
            Some(&tenant.key),
            Some(json!({"status": "publish", "options": {"allowDuet": true}})),
        )
        .await;
    assert_eq!(asked.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", asked.body);
    assert_eq!(
        violations(&asked),
        [("options.allowDuet".to_owned(), "interaction_disabled".to_owned())]
    );

    // An edit that does not name an option treats the stored value as a default: sent as false, with a warning.
    let published = app
        .call(
            Method::PATCH,
            &path,
            Some(&tenant.key),
            Some(json!({"status": "publish"})),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    assert_eq!(
        (
            &published.body["options"]["allowDuet"],
            &published.body["options"]["allowStitch"]
        ),
        (&json!(false), &json!(false))
    );
    assert_eq!(
        codes(&published.body["warnings"]),
        [
            (String::new(), "interaction_disabled_by_creator".to_owned()),
            (String::new(), "interaction_disabled_by_creator".to_owned())
        ]
    );
}

#[tokio::test]
async fn when_tiktok_cannot_answer_the_post_is_accepted_and_the_check_deferred_to_pre_flight() {
    let (app, tenant, account, video) = creator_with(AccountSpec::private()).await;
    app.sandbox()
        .inject_fault(FaultSpec::server_error(Endpoint::CreatorInfo).times(10));

    let reply = app
        .post_as(&tenant, video_post(&account, &video, json!({"privacy": "private"})))
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        codes(&reply.body["warnings"]),
        [(String::new(), "creator_check_deferred".to_owned())]
    );
    assert_eq!(
        reply.body["options"]["allowDuet"], true,
        "nothing changed without TikTok's word"
    );
}

#[tokio::test]
async fn creator_info_is_read_once_a_minute_per_account_however_many_posts_are_created() {
    let (app, tenant, account, video) = creator_with(AccountSpec::public()).await;
    let reads_at_connect = app.sandbox().requests_to(Endpoint::CreatorInfo).len();

    for _ in 0..5 {
        let reply = app
            .post_as(
                &tenant,
                video_post(&account, &video, json!({"privacy": "public", "allowDuplicate": true})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["warnings"], json!([]));
    }

    assert_eq!(
        app.sandbox().requests_to(Endpoint::CreatorInfo).len(),
        reads_at_connect + 1
    );
}
