//! The product's TikTok client (shared::tiktok) against the sandbox: every endpoint, every error class, and
//! TikTok's errors with HTTP 200.

mod support;

use std::{sync::Arc, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use shared::{
    domain::Privacy,
    tiktok::{
        oauth::{parse_callback, CallbackOutcome},
        ChunkAck, ChunkPlan, ErrorClass, FailReason, PhotoPost, PhotoPostMode, PublishState, PublishStatus, SecretUrl,
        TikTokClient, TikTokError, UnknownCause, VideoContentType, VideoPostInfo, VideoSource, REQUIRED_SCOPES,
    },
};
use support::*;
use tiktok_sandbox::{AccountSpec, Endpoint, FaultAction, FaultSpec, IssuedTokens, ProcessingFailure};

fn token(tokens: &IssuedTokens) -> SecretString {
    SecretString::from(tokens.access_token.clone())
}

fn post_info(privacy: Privacy) -> VideoPostInfo {
    VideoPostInfo {
        title: Some("A caption #sandbox".into()),
        privacy,
        disable_comment: false,
        disable_duet: false,
        disable_stitch: false,
        video_cover_timestamp_ms: None,
        brand_content_toggle: false,
        brand_organic_toggle: false,
        is_aigc: false,
    }
}

/// Uploads `bytes` chunk by chunk, asserting TikTok's 206…206, 201 sequence.
async fn upload_all(client: &TikTokClient, url: &SecretUrl, plan: &ChunkPlan, bytes: &bytes::Bytes) {
    for index in 0..plan.total_chunk_count {
        let range = plan.chunk_range(index).expect("in plan");
        let chunk = bytes.slice(range.start as usize..range.end as usize);
        let ack = client
            .upload_chunk(url, plan, index, VideoContentType::Mp4, chunk)
            .await
            .expect("chunk accepted");
        if plan.is_last(index) {
            assert_eq!(ack, ChunkAck::Complete);
        } else {
            assert!(matches!(ack, ChunkAck::Partial { uploaded: Some(r) } if r.last + 1 == range.end));
        }
    }
}

async fn wait_final(client: &TikTokClient, token: &SecretString, publish_id: &str) -> PublishStatus {
    for _ in 0..200 {
        let status = client.fetch_status(token, publish_id).await.expect("status");
        if status.state.is_final() || status.state == PublishState::SendToUserInbox {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("publish {publish_id} never finished");
}

#[tokio::test]
async fn oauth_connect_exchange_refresh_rotation_user_info_and_revoke() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let url = client
        .authorize_url(&REQUIRED_SCOPES, "state-123", true)
        .expect("valid url");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("builds");
    let page = browser.get(url.as_str()).send().await.expect("authorize page answers");
    assert_eq!(page.status(), 302);
    let location = url::Url::parse(page.headers()["location"].to_str().expect("ascii")).expect("a URL");
    assert!(location.as_str().starts_with(REDIRECT_URI));
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let outcome = parse_callback(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).expect("a callback");
    let CallbackOutcome::Approved { code, state, granted } = outcome else {
        panic!("approved expected")
    };
    assert_eq!(state, "state-123");
    assert!(granted.missing(&REQUIRED_SCOPES).is_empty());

    let grant = client.exchange_code(&code.0).await.expect("exchange");
    assert!(grant.scopes.missing(&REQUIRED_SCOPES).is_empty());
    assert!(grant.access_expires_at > chrono::Utc::now() + chrono::Duration::minutes(119));
    let user = client.user_info(&grant.access_token).await.expect("user info");
    assert_eq!(user.open_id, grant.open_id);
    assert!(!user.display_name.is_empty());

    let again = client.exchange_code(&code.0).await.expect_err("a code works once");
    assert!(
        matches!(&again, TikTokError::Reauthorize { code, .. } if code == "invalid_grant"),
        "{again:?}"
    );
    assert!(again.log_id().is_some());

    let rotated = client.refresh(&grant.refresh_token).await.expect("refresh");
    assert_ne!(
        rotated.refresh_token.expose_secret(),
        grant.refresh_token.expose_secret()
    );
    let reused = client
        .refresh(&grant.refresh_token)
        .await
        .expect_err("the old refresh token is spent");
    assert_eq!(reused.class(), ErrorClass::Reauthorize);

    let exchange = &sandbox.requests_to(Endpoint::Token)[0];
    assert_eq!(exchange.body_str("grant_type"), Some("authorization_code"));
    assert_eq!(exchange.body_str("redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(exchange.headers["content-type"], "application/x-www-form-urlencoded");

    client.revoke(&rotated.access_token).await.expect("revoke");
    let revoked = client
        .user_info(&rotated.access_token)
        .await
        .expect_err("revoked token");
    assert!(matches!(&revoked, TikTokError::Reauthorize { code, .. } if code == "access_token_invalid"));
    assert_eq!(revoked.http_status(), Some(401));
}

#[tokio::test]
async fn a_user_who_unticks_a_scope_is_seen_before_any_call_and_refused_by_tiktok() {
    let sandbox = sandbox().await;
    let open_id = sandbox.create_account(AccountSpec {
        grantable_scopes: Some(vec!["user.info.basic".into(), "video.upload".into()]),
        ..AccountSpec::public()
    });
    sandbox.set_authorizer(Some(&open_id));
    let client = client_for(&sandbox);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("builds");
    let url = client.authorize_url(&REQUIRED_SCOPES, "s", false).expect("url");
    let page = browser.get(url.as_str()).send().await.expect("answers");
    let location = url::Url::parse(page.headers()["location"].to_str().expect("ascii")).expect("url");
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let Ok(CallbackOutcome::Approved { code, granted, .. }) =
        parse_callback(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    else {
        panic!("approved expected")
    };
    assert_eq!(granted.missing(&REQUIRED_SCOPES), vec!["video.publish"]);
    let grant = client.exchange_code(&code.0).await.expect("exchange");
    let refused = client
        .creator_info(&grant.access_token)
        .await
        .expect_err("needs video.publish");
    assert!(matches!(&refused, TikTokError::Reauthorize { code, .. } if code == "scope_not_authorized"));

    sandbox.deny_next_authorization();
    let page = browser.get(url.as_str()).send().await.expect("answers");
    let location = url::Url::parse(page.headers()["location"].to_str().expect("ascii")).expect("url");
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let outcome = parse_callback(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(matches!(outcome, Ok(CallbackOutcome::Refused { error, .. }) if error == "access_denied"));
}

#[tokio::test]
async fn creator_info_maps_options_and_reports_blocked_creators_sent_with_http_200() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let public = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let private = &sandbox.create_accounts_with_tokens(
        1,
        AccountSpec {
            comment_disabled: true,
            max_video_post_duration_sec: 180,
            ..AccountSpec::private()
        },
    )[0];

    let info = client.creator_info(&token(public)).await.expect("creator info");
    assert_eq!(
        info.privacy_options(),
        [Privacy::Public, Privacy::Friends, Privacy::Private]
    );
    assert!(!info.creator_nickname.is_empty());
    let info = client.creator_info(&token(private)).await.expect("creator info");
    assert_eq!(
        info.privacy_options(),
        [Privacy::FollowersOnly, Privacy::Friends, Privacy::Private]
    );
    assert!(info.comment_disabled && info.duet_disabled && info.stitch_disabled);
    assert_eq!(info.max_video_post_duration_sec, 180);

    sandbox.update_account(&public.open_id, |a| {
        a.posting_blocked = Some("spam_risk_user_banned_from_posting".into())
    });
    let blocked = client.creator_info(&token(public)).await.expect_err("blocked");
    assert_eq!(
        blocked.posting_blocked_code(),
        Some("spam_risk_user_banned_from_posting")
    );
    assert_eq!(
        blocked.http_status(),
        Some(200),
        "TikTok sends this refusal with HTTP 200"
    );
    assert_eq!(blocked.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn direct_post_file_upload_goes_206_then_201_and_completes_with_a_19_digit_public_id() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let bytes = mp4_bytes(25 * 1024 * 1024 + 123, 1);
    let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
    assert_eq!(plan.total_chunk_count, 2);

    let init = client
        .init_video(
            &token(tokens),
            &post_info(Privacy::Public),
            &VideoSource::FileUpload(plan),
        )
        .await
        .expect("init");
    assert!(init.publish_id.starts_with("v_pub_file~v2-1."));
    assert!(init.log_id.is_some());
    let url = init.upload_url.expect("FILE_UPLOAD returns an upload URL");
    assert!(!format!("{url:?}").contains("upload_token="), "{url:?}");
    upload_all(&client, &url, &plan, &bytes).await;

    let status = wait_final(&client, &token(tokens), &init.publish_id).await;
    assert_eq!(status.state, PublishState::PublishComplete);
    assert_eq!(status.uploaded_bytes, Some(bytes.len() as u64));
    let status = client
        .fetch_status(&token(tokens), &init.publish_id)
        .await
        .expect("status");
    assert_eq!(status.public_post_ids.len(), 1);
    assert_eq!(
        status.public_post_ids[0].len(),
        19,
        "ids beyond 2^53 survive as strings"
    );

    let sent = &sandbox.requests_to(Endpoint::VideoInit)[0];
    let body = sent.body.as_ref().expect("json body");
    assert_eq!(body["post_info"]["privacy_level"], "PUBLIC_TO_EVERYONE");
    assert_eq!(body["post_info"]["brand_content_toggle"], false);
    assert_eq!(body["post_info"]["brand_organic_toggle"], false);
    assert_eq!(body["source_info"]["chunk_size"], plan.chunk_size);
    assert_eq!(sent.headers["content-type"], "application/json; charset=UTF-8");
    let puts = sandbox.requests_to(Endpoint::Upload);
    assert_eq!(puts.len(), 2);
    assert_eq!(
        puts[0].headers["content-range"],
        format!("bytes 0-{}/{}", plan.chunk_size - 1, bytes.len())
    );
    assert_eq!(puts[1].headers["content-length"], plan.last_chunk_size().to_string());
    assert_eq!(puts[1].response_status, Some(201));
    assert!(
        puts[0].query["upload_token"].starts_with("fp:"),
        "the log keeps no upload token"
    );
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_range_tiktok_reports() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let bytes = mp4_bytes(31 * 1024 * 1024, 2);
    let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
    let init = client
        .init_video(
            &token(tokens),
            &post_info(Privacy::Private),
            &VideoSource::FileUpload(plan),
        )
        .await
        .expect("init");
    let url = init.upload_url.expect("upload url");
    let chunk = |i: u32| {
        let range = plan.chunk_range(i).expect("in plan");
        bytes.slice(range.start as usize..range.end as usize)
    };

    let early = client
        .upload_chunk(&url, &plan, 1, VideoContentType::Mp4, chunk(1))
        .await
        .expect_err("out of order");
    assert!(matches!(early, TikTokError::UploadRangeMismatch { uploaded: None, .. }));
    client
        .upload_chunk(&url, &plan, 0, VideoContentType::Mp4, chunk(0))
        .await
        .expect("first chunk");
    // The answer to chunk 0 was "lost": sending it again tells where TikTok stands.
    let repeated = client
        .upload_chunk(&url, &plan, 0, VideoContentType::Mp4, chunk(0))
        .await
        .expect_err("already there");
    let TikTokError::UploadRangeMismatch {
        uploaded: Some(range), ..
    } = repeated
    else {
        panic!("range expected")
    };
    assert_eq!(plan.next_chunk_after(range.uploaded_bytes()), Some(1));
    for index in 1..plan.total_chunk_count {
        client
            .upload_chunk(&url, &plan, index, VideoContentType::Mp4, chunk(index))
            .await
            .expect("resumed");
    }
    assert_eq!(
        wait_final(&client, &token(tokens), &init.publish_id).await.state,
        PublishState::PublishComplete
    );
    let wrong_size = client
        .upload_chunk(&url, &plan, 0, VideoContentType::Mp4, chunk(2))
        .await
        .expect_err("checked locally");
    assert!(matches!(wrong_size, TikTokError::Permanent { code, .. } if code == "invalid_chunk"));
}

#[tokio::test]
async fn an_upload_url_older_than_an_hour_is_expired() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let bytes = mp4_bytes(1_000_000, 3);
    let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
    let init = client
        .init_video(
            &token(tokens),
            &post_info(Privacy::Private),
            &VideoSource::FileUpload(plan),
        )
        .await
        .expect("init");
    sandbox.advance_clock(Duration::from_secs(61 * 60));
    let expired = client
        .upload_chunk(&init.upload_url.expect("url"), &plan, 0, VideoContentType::Mp4, bytes)
        .await
        .expect_err("expired");
    assert_eq!(expired.class(), ErrorClass::UploadUrlExpired);
    assert_eq!(expired.http_status(), Some(403));
}

#[tokio::test]
async fn pull_from_url_photo_and_inbox_inits_are_processed_from_the_real_download() {
    let base = media_host(vec![
        ("v.mp4", mp4_bytes(300_000, 4)),
        ("1.jpg", jpeg_bytes(1)),
        ("2.jpg", jpeg_bytes(2)),
        ("inbox.mp4", mp4_bytes(200_000, 5)),
    ])
    .await;
    let sandbox = sandbox_with(|s| s.verified_url_prefixes = vec![base.clone()]).await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];

    let pull = VideoSource::PullFromUrl(SecretUrl::new(format!("{base}v.mp4")));
    let init = client
        .init_video(&token(tokens), &post_info(Privacy::Friends), &pull)
        .await
        .expect("init");
    assert!(init.upload_url.is_none());
    let status = wait_final(&client, &token(tokens), &init.publish_id).await;
    assert_eq!(status.state, PublishState::PublishComplete);
    assert_eq!(status.downloaded_bytes, Some(300_000));
    assert!(status.public_post_ids.is_empty(), "friends-only posts get no public id");

    let photo = PhotoPost {
        mode: PhotoPostMode::DirectPost {
            privacy: Privacy::Public,
            disable_comment: true,
            auto_add_music: true,
            brand_content_toggle: false,
            brand_organic_toggle: true,
        },
        title: Some("Title".into()),
        description: Some("The caption #tag".into()),
        images: vec![
            SecretUrl::new(format!("{base}1.jpg")),
            SecretUrl::new(format!("{base}2.jpg")),
        ],
        cover_index: 1,
        is_aigc: true,
    };
    let init = client.init_photo(&token(tokens), &photo).await.expect("photo init");
    assert!(init.publish_id.starts_with("p_pub_url~v2."));
    assert_eq!(
        wait_final(&client, &token(tokens), &init.publish_id).await.state,
        PublishState::PublishComplete
    );
    let sent = &sandbox.requests_to(Endpoint::ContentInit)[0];
    let body = sent.body.as_ref().expect("json");
    assert_eq!(
        (body["post_mode"].as_str(), body["media_type"].as_str()),
        (Some("DIRECT_POST"), Some("PHOTO"))
    );
    assert_eq!(body["is_aigc"], true);
    assert_eq!(body["source_info"]["photo_cover_index"], 1);
    assert_eq!(body["post_info"]["description"], "The caption #tag");

    let inbox = VideoSource::PullFromUrl(SecretUrl::new(format!("{base}inbox.mp4")));
    let init = client
        .init_inbox_video(&token(tokens), &inbox)
        .await
        .expect("inbox init");
    assert!(init.publish_id.starts_with("v_inbox_url~v2."));
    assert_eq!(
        wait_final(&client, &token(tokens), &init.publish_id).await.state,
        PublishState::SendToUserInbox
    );
    assert!(sandbox.requests_to(Endpoint::InboxVideoInit)[0]
        .body
        .as_ref()
        .expect("json")
        .get("post_info")
        .is_none());

    let missing = VideoSource::PullFromUrl(SecretUrl::new(format!("{base}missing.mp4")));
    let init = client
        .init_video(&token(tokens), &post_info(Privacy::Private), &missing)
        .await
        .expect("init");
    let status = wait_final(&client, &token(tokens), &init.publish_id).await;
    assert_eq!(status.fail_reason, Some(FailReason::VideoPullFailed));

    let elsewhere = VideoSource::PullFromUrl(SecretUrl::new("https://unverified.example.com/v.mp4"));
    let refused = client
        .init_video(&token(tokens), &post_info(Privacy::Private), &elsewhere)
        .await
        .expect_err("unverified");
    assert!(matches!(&refused, TikTokError::Permanent { code, .. } if code == "url_ownership_unverified"));
    assert_eq!(refused.http_status(), Some(403));
}

#[tokio::test]
async fn cancel_stops_a_running_pull_and_refuses_a_finished_one() {
    let base = media_host(vec![("v.mp4", mp4_bytes(100_000, 6))]).await;
    let sandbox = sandbox_with(|s| {
        s.verified_url_prefixes = vec![base.clone()];
        s.processing_delay_ms = 60_000;
    })
    .await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let pull = VideoSource::PullFromUrl(SecretUrl::new(format!("{base}v.mp4")));
    let init = client
        .init_video(&token(tokens), &post_info(Privacy::Private), &pull)
        .await
        .expect("init");
    client
        .cancel(&token(tokens), &init.publish_id)
        .await
        .expect("cancellable while downloading");
    let status = client
        .fetch_status(&token(tokens), &init.publish_id)
        .await
        .expect("status");
    assert_eq!(
        (status.state, status.fail_reason),
        (PublishState::Failed, Some(FailReason::PublishCancelled))
    );
    let again = client
        .cancel(&token(tokens), &init.publish_id)
        .await
        .expect_err("not cancellable");
    assert!(matches!(again, TikTokError::Permanent { code, .. } if code == "publish_not_cancellable"));
}

#[tokio::test]
async fn processing_rejects_unreadable_media_and_flags_the_same_bytes_posted_twice() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let post = |bytes: bytes::Bytes| {
        let client = client.clone();
        let token = token(tokens);
        async move {
            let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
            let init = client
                .init_video(&token, &post_info(Privacy::Private), &VideoSource::FileUpload(plan))
                .await
                .expect("init");
            upload_all(&client, &init.upload_url.expect("url"), &plan, &bytes).await;
            wait_final(&client, &token, &init.publish_id).await
        }
    };
    let video = mp4_bytes(2_000_000, 7);
    assert_eq!(post(video.clone()).await.state, PublishState::PublishComplete);
    let duplicate = post(video).await;
    assert_eq!(
        (duplicate.state, duplicate.fail_reason),
        (PublishState::Failed, Some(FailReason::SpamRisk))
    );
    let not_a_video = post(bytes::Bytes::from(vec![0u8; 1_000_000])).await;
    assert_eq!(not_a_video.fail_reason, Some(FailReason::FileFormatCheckFailed));
    sandbox.fail_next_processing(ProcessingFailure {
        open_id: None,
        fail_reason: "duration_check_failed".into(),
        times: 1,
    });
    let too_long = post(mp4_bytes(1_000_000, 8)).await;
    assert_eq!(too_long.fail_reason, Some(FailReason::DurationCheckFailed));
}

#[tokio::test]
async fn refusals_are_permanent_with_tiktok_code_and_log_id() {
    let sandbox = sandbox_with(|s| s.daily_post_cap = 2).await;
    let client = client_for(&sandbox);
    let public = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let source = VideoSource::FileUpload(ChunkPlan::for_size(1_000_000).expect("plannable"));

    let followers = client
        .init_video(&token(public), &post_info(Privacy::FollowersOnly), &source)
        .await
        .expect_err("mismatch");
    assert!(matches!(&followers, TikTokError::Permanent { code, .. } if code == "privacy_level_option_mismatch"));
    assert!(followers.log_id().is_some_and(|id| id.len() > 14));

    let long_title = VideoPostInfo {
        title: Some("😀".repeat(1101)),
        ..post_info(Privacy::Public)
    };
    let too_long = client
        .init_video(&token(public), &long_title, &source)
        .await
        .expect_err("2202 UTF-16 units");
    assert!(matches!(&too_long, TikTokError::Permanent { code, .. } if code == "invalid_param"));

    let branded_private = VideoPostInfo {
        brand_content_toggle: true,
        ..post_info(Privacy::Private)
    };
    let branded = client
        .init_video(&token(public), &branded_private, &source)
        .await
        .expect_err("branded private");
    assert_eq!(branded.code(), "invalid_param");

    for _ in 0..2 {
        client
            .init_video(&token(public), &post_info(Privacy::Public), &source)
            .await
            .expect("within the cap");
    }
    let capped = client
        .init_video(&token(public), &post_info(Privacy::Public), &source)
        .await
        .expect_err("cap");
    assert_eq!(capped.posting_blocked_code(), Some("spam_risk_too_many_posts"));
    assert_eq!(capped.http_status(), Some(403));
    let info = client
        .creator_info(&token(public))
        .await
        .expect_err("the cap shows in creator_info");
    assert_eq!(
        (info.posting_blocked_code(), info.http_status()),
        (Some("spam_risk_too_many_posts"), Some(200))
    );

    let other = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let init = client
        .init_video(&token(other), &post_info(Privacy::Public), &source)
        .await
        .expect("init");
    let foreign = client
        .fetch_status(&token(public), &init.publish_id)
        .await
        .expect_err("not theirs");
    assert!(
        matches!(foreign, TikTokError::Permanent { code, .. } if code == "token_not_authorized_for_specified_publish_id")
    );
    let unknown = client
        .fetch_status(&token(public), "v_pub_file~v2-1.0")
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), "invalid_publish_id");

    let wrong_secret = TikTokClient::new(shared::tiktok::TikTokConfig {
        client_secret: SecretString::from("wrong"),
        ..config_for(&sandbox)
    })
    .expect("builds");
    let refused = wrong_secret
        .refresh(&SecretString::from(other.refresh_token.clone()))
        .await
        .expect_err("bad client");
    assert!(matches!(refused, TikTokError::Permanent { code, .. } if code == "invalid_client"));
}

#[tokio::test]
async fn an_unaudited_app_may_post_only_self_only_from_private_accounts() {
    let sandbox = sandbox_with(|s| s.app_audited = false).await;
    let client = client_for(&sandbox);
    let source = VideoSource::FileUpload(ChunkPlan::for_size(1_000_000).expect("plannable"));
    let public = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let private = &sandbox.create_accounts_with_tokens(1, AccountSpec::private())[0];
    let refused = client
        .init_video(&token(public), &post_info(Privacy::Private), &source)
        .await
        .expect_err("public account");
    assert_eq!(refused.code(), "unaudited_client_can_only_post_to_private_accounts");
    let refused = client
        .init_video(&token(private), &post_info(Privacy::Friends), &source)
        .await
        .expect_err("not SELF_ONLY");
    assert_eq!(refused.code(), "unaudited_client_can_only_post_to_private_accounts");
    client
        .init_video(&token(private), &post_info(Privacy::Private), &source)
        .await
        .expect("SELF_ONLY from private");
}

#[tokio::test]
async fn expired_tokens_and_both_invalid_param_spellings_are_classified() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    for code in ["invalid_param", "invalid_params"] {
        sandbox.inject_fault(FaultSpec::new(
            Endpoint::CreatorInfo,
            FaultAction::Respond {
                status: 400,
                code: Some(code.into()),
                message: None,
            },
        ));
        let error = client.creator_info(&token(tokens)).await.expect_err("injected");
        assert!(
            matches!(&error, TikTokError::Permanent { code: c, .. } if c == code),
            "{error:?}"
        );
    }
    sandbox.advance_clock(Duration::from_secs(3 * 3600));
    let expired = client.creator_info(&token(tokens)).await.expect_err("2 h access token");
    assert!(matches!(expired, TikTokError::Reauthorize { code, .. } if code == "access_token_invalid"));
    client
        .refresh(&SecretString::from(tokens.refresh_token.clone()))
        .await
        .expect("refresh token still valid");
}

#[tokio::test]
async fn rate_limits_come_back_as_rate_limited() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    for _ in 0..20 {
        client.creator_info(&token(tokens)).await.expect("within 20/min");
    }
    let limited = client.creator_info(&token(tokens)).await.expect_err("21st in a minute");
    assert_eq!(limited.class(), ErrorClass::RateLimited);
    assert_eq!(limited.http_status(), Some(429));
    assert!(limited.is_retryable());
    sandbox.advance_clock(Duration::from_secs(61));
    client.creator_info(&token(tokens)).await.expect("the window slid");
}

#[tokio::test]
async fn server_errors_are_retryable_on_reads_and_unknown_outcomes_on_inits() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let source = VideoSource::FileUpload(ChunkPlan::for_size(1_000_000).expect("plannable"));

    sandbox.inject_fault(FaultSpec::server_error(Endpoint::CreatorInfo));
    let read = client.creator_info(&token(tokens)).await.expect_err("500");
    assert!(matches!(&read, TikTokError::Retryable { code, .. } if code == "internal_error"));
    assert!(read.log_id().is_some());

    sandbox.inject_fault(FaultSpec::new(
        Endpoint::StatusFetch,
        FaultAction::Respond {
            status: 502,
            code: None,
            message: None,
        },
    ));
    let bare = client.fetch_status(&token(tokens), "x").await.expect_err("502");
    assert!(matches!(&bare, TikTokError::Retryable { code, .. } if code == "http_502"));

    sandbox.inject_fault(FaultSpec::server_error(Endpoint::VideoInit));
    let init = client
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect_err("500 on init");
    assert!(
        matches!(
            init,
            TikTokError::OutcomeUnknown {
                cause: UnknownCause::ServerError,
                ..
            }
        ),
        "{init:?}"
    );
    assert_eq!(init.http_status(), Some(500));

    sandbox.inject_fault(FaultSpec::server_error(Endpoint::Token));
    let refresh = client
        .refresh(&SecretString::from(tokens.refresh_token.clone()))
        .await
        .expect_err("500 on refresh");
    assert_eq!(
        refresh.class(),
        ErrorClass::OutcomeUnknown,
        "a refresh may have rotated the token"
    );

    sandbox.inject_fault(FaultSpec::server_error(Endpoint::Upload));
    let plan = ChunkPlan::for_size(1_000_000).expect("plannable");
    let ok = client
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect("init");
    let chunk = client
        .upload_chunk(
            &ok.upload_url.expect("url"),
            &plan,
            0,
            VideoContentType::Mp4,
            mp4_bytes(1_000_000, 9),
        )
        .await
        .expect_err("500 on a chunk");
    assert_eq!(chunk.class(), ErrorClass::Retryable, "a chunk may be sent again");
}

#[tokio::test]
async fn errors_sent_with_http_200_are_failures() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let source = VideoSource::FileUpload(ChunkPlan::for_size(1_000_000).expect("plannable"));
    sandbox.inject_fault(FaultSpec::error_with_200(
        Endpoint::VideoInit,
        "spam_risk_too_many_posts",
    ));
    let init = client
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect_err("200 error");
    assert_eq!(
        (init.code(), init.http_status()),
        ("spam_risk_too_many_posts", Some(200))
    );
    assert_eq!(init.class(), ErrorClass::Permanent);
    sandbox.inject_fault(FaultSpec::error_with_200(Endpoint::StatusFetch, "internal_error"));
    assert_eq!(
        client
            .fetch_status(&token(tokens), "x")
            .await
            .expect_err("200 error")
            .class(),
        ErrorClass::Retryable
    );
    sandbox.inject_fault(FaultSpec::error_with_200(Endpoint::UserInfo, "access_token_invalid"));
    assert_eq!(
        client.user_info(&token(tokens)).await.expect_err("200 error").class(),
        ErrorClass::Reauthorize
    );
    sandbox.inject_fault(FaultSpec::error_with_200(Endpoint::Token, "invalid_grant"));
    let refresh = client
        .refresh(&SecretString::from(tokens.refresh_token.clone()))
        .await
        .expect_err("OAuth shape");
    assert!(matches!(refresh, TikTokError::Reauthorize { code, .. } if code == "invalid_grant"));
    sandbox.inject_fault(FaultSpec::error_with_200(Endpoint::Revoke, "invalid_request"));
    assert_eq!(
        client.revoke(&token(tokens)).await.expect_err("OAuth shape").class(),
        ErrorClass::Permanent
    );
}

#[tokio::test]
async fn timeouts_and_dropped_connections_leave_inits_unknown_and_reads_retryable() {
    let sandbox = sandbox().await;
    let mut config = config_for(&sandbox);
    config.timeouts.request = Duration::from_millis(300);
    let client = TikTokClient::new(config).expect("builds");
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let source = VideoSource::FileUpload(ChunkPlan::for_size(1_000_000).expect("plannable"));

    sandbox.inject_fault(FaultSpec::new(Endpoint::CreatorInfo, FaultAction::Delay { ms: 1000 }));
    let slow_read = client.creator_info(&token(tokens)).await.expect_err("timeout");
    assert!(
        matches!(&slow_read, TikTokError::Retryable { code, .. } if code == "timeout"),
        "{slow_read:?}"
    );

    // The init is processed, then the answer comes too late: the post exists although the client gave up.
    sandbox.inject_fault(FaultSpec::new(
        Endpoint::VideoInit,
        FaultAction::DelayAfter { ms: 1000 },
    ));
    let slow_init = client
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            slow_init,
            TikTokError::OutcomeUnknown {
                cause: UnknownCause::Timeout,
                ..
            }
        ),
        "{slow_init:?}"
    );

    sandbox.inject_fault(FaultSpec::new(Endpoint::VideoInit, FaultAction::DropAfter));
    let dropped = client
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect_err("dropped");
    assert!(
        matches!(
            dropped,
            TikTokError::OutcomeUnknown {
                cause: UnknownCause::NoAnswer,
                ..
            }
        ),
        "{dropped:?}"
    );
    assert_eq!(sandbox.publishes().len(), 2, "both inits created a post at TikTok");

    sandbox.inject_fault(FaultSpec::new(Endpoint::StatusFetch, FaultAction::Drop));
    let dropped_read = client.fetch_status(&token(tokens), "x").await.expect_err("dropped");
    assert_eq!(dropped_read.class(), ErrorClass::Retryable);
    let logged = sandbox.requests_to(Endpoint::StatusFetch);
    assert_eq!(
        (logged[0].response_status, logged[0].fault.as_deref()),
        (None, Some("drop"))
    );

    // Nothing listens on the port of a stopped sandbox: the request never left, so even an init may be repeated.
    let closed = sandbox_with(|_| {}).await;
    let unreachable = client_for(&closed);
    closed.shutdown().await;
    let refused = unreachable
        .init_video(&token(tokens), &post_info(Privacy::Public), &source)
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, TikTokError::Retryable { code, .. } if code == "connection"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn webhooks_arrive_signed_and_verify_with_the_client_secret() {
    use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Router};
    use shared::tiktok::webhook::{verify, WebhookDelivery, WebhookEvent, DEFAULT_TOLERANCE};
    type Received = Arc<std::sync::Mutex<Vec<(String, Bytes)>>>;

    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/hooks",
            post(
                |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let signature = headers
                        .get("TikTok-Signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    received
                        .lock()
                        .expect("not poisoned")
                        .push((signature.to_owned(), body));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let hook_url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let sandbox = sandbox_with(|s| s.webhook_url = Some(hook_url)).await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let bytes = mp4_bytes(1_000_000, 10);
    let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
    let init = client
        .init_video(
            &token(tokens),
            &post_info(Privacy::Public),
            &VideoSource::FileUpload(plan),
        )
        .await
        .expect("init");
    upload_all(&client, &init.upload_url.expect("url"), &plan, &bytes).await;
    let deliveries = eventually(|| {
        let got = received.lock().expect("not poisoned").clone();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let secret = config_for(&sandbox).client_secret;
    let events: Vec<WebhookEvent> = deliveries
        .iter()
        .map(|(signature, body)| {
            verify(&secret, signature, body, chrono::Utc::now(), DEFAULT_TOLERANCE).expect("signed like TikTok");
            WebhookDelivery::parse(body).expect("an envelope").event
        })
        .collect();
    assert_eq!(
        events[0],
        WebhookEvent::PublishComplete {
            publish_id: init.publish_id.clone()
        }
    );
    assert!(
        matches!(&events[1], WebhookEvent::PubliclyAvailable { publish_id, post_id } if *publish_id == init.publish_id && post_id.len() == 19)
    );

    sandbox.remove_authorization(&tokens.open_id, 1);
    let removed = eventually(|| {
        let got = received.lock().expect("not poisoned").clone();
        got.get(2).cloned()
    })
    .await;
    assert_eq!(
        WebhookDelivery::parse(&removed.1).expect("envelope").event,
        WebhookEvent::AuthorizationRemoved { reason: 1 }
    );
    let wrong = SecretString::from("not-the-secret");
    assert!(verify(&wrong, &removed.0, &removed.1, chrono::Utc::now(), DEFAULT_TOLERANCE).is_err());
}

#[tokio::test]
async fn debug_output_of_every_client_type_shows_no_secret() {
    let sandbox = sandbox().await;
    let client = client_for(&sandbox);
    let tokens = &sandbox.create_accounts_with_tokens(1, AccountSpec::public())[0];
    let grant = client
        .refresh(&SecretString::from(tokens.refresh_token.clone()))
        .await
        .expect("refresh");
    let plan = ChunkPlan::for_size(1_000_000).expect("plannable");
    let init = client
        .init_video(
            &grant.access_token,
            &post_info(Privacy::Public),
            &VideoSource::FileUpload(plan),
        )
        .await
        .expect("init");
    let upload_url = init.upload_url.clone().expect("url");
    let token_part = upload_url
        .expose()
        .split("upload_token=")
        .nth(1)
        .expect("has a token")
        .to_owned();
    let cipher = shared::tiktok::TokenCipher::new(&[9u8; 32]);
    let shown = format!(
        "{client:?} {:?} {grant:?} {init:?} {upload_url:?} {cipher:?} {tokens:?} {:?}",
        config_for(&sandbox),
        sandbox.requests()
    );
    let secret = sandbox.settings().client_secret;
    for secret in [
        secret.as_str(),
        grant.access_token.expose_secret(),
        grant.refresh_token.expose_secret(),
        tokens.access_token.as_str(),
        tokens.refresh_token.as_str(),
        token_part.as_str(),
    ] {
        assert!(!shown.contains(secret), "a secret leaked into Debug output");
    }
}

#[tokio::test]
async fn a_hundred_accounts_post_concurrently() {
    let sandbox = sandbox_with(|s| s.rate_limits = tiktok_sandbox::RateLimits::unlimited()).await;
    let client = client_for(&sandbox);
    let accounts = sandbox.create_accounts_with_tokens(100, AccountSpec::public());
    let tasks = accounts.into_iter().enumerate().map(|(n, tokens)| {
        let client = client.clone();
        tokio::spawn(async move {
            let bytes = mp4_bytes(64 * 1024, n as u8);
            let plan = ChunkPlan::for_size(bytes.len() as u64).expect("plannable");
            let token = token(&tokens);
            client.creator_info(&token).await.expect("creator info");
            let init = client
                .init_video(&token, &post_info(Privacy::Public), &VideoSource::FileUpload(plan))
                .await
                .expect("init");
            upload_all(&client, &init.upload_url.expect("url"), &plan, &bytes).await;
            wait_final(&client, &token, &init.publish_id).await.state
        })
    });
    for state in futures::future::join_all(tasks).await {
        assert_eq!(state.expect("task finished"), PublishState::PublishComplete);
    }
    assert_eq!(sandbox.requests_to(Endpoint::VideoInit).len(), 100);
}
