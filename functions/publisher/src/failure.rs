//! Why a post failed, in words that say what to do. Codes are stable; TikTok's own codes are kept where they apply.

use shared::{
    accounts::TokenError,
    domain::{Failure, Media},
    tiktok::TikTokError,
};

pub(crate) fn tiktok_refused(error: &TikTokError) -> Failure {
    let code = error.code().to_owned();
    let advice = match code.as_str() {
        "spam_risk_too_many_posts" => {
            "TikTok's daily post limit for this creator is reached (about 15 posts a day, across every app); \
             schedule the post for tomorrow"
                .to_owned()
        }
        "spam_risk_user_banned_from_posting" => {
            "TikTok has banned this creator from posting; nothing can be published until TikTok lifts the ban".into()
        }
        "reached_active_user_cap" => "this app reached TikTok's daily cap of creators posting through it; try again \
                                      tomorrow or ask TikTok to raise the cap"
            .into(),
        "unaudited_client_can_only_post_to_private_accounts" => {
            "this TikTok app is not audited yet: TikTok accepts only private posts, from accounts set to private. \
             Set the TikTok account to private in the app (or get the app audited), then post again"
                .into()
        }
        "privacy_level_option_mismatch" => "TikTok refused the post's privacy for this creator; read \
                                            GET /v1/accounts/{id}/creator-info and choose one of its privacyOptions"
            .into(),
        "url_ownership_unverified" => "TikTok has not verified MEDIA_PUBLIC_BASE_URL for this app; verify the domain \
                                       or URL prefix under URL properties in TikTok's developer portal"
            .into(),
        "scope_not_authorized" => "the user did not grant the video.publish scope; reconnect the account and \
                                   allow posting"
            .into(),
        "invalid_param" | "invalid_params" => {
            format!("TikTok refused the request as invalid: {}", error_message(error))
        }
        _ => format!("TikTok refused the post ({code}): {}", error_message(error)),
    };
    Failure {
        code,
        message: advice,
        tiktok_fail_reason: None,
        log_id: error.log_id().map(str::to_owned),
    }
}

fn error_message(error: &TikTokError) -> String {
    match error {
        TikTokError::Permanent { message, .. } | TikTokError::Reauthorize { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn init_outcome_unknown(error: &TikTokError) -> Failure {
    Failure {
        code: "init_outcome_unknown".into(),
        message: "TikTok may or may not have received this post (the init call got no clear answer). It is not \
                  retried automatically, because TikTok flags duplicates as spam: check the TikTok account, and \
                  create a new post only if this one is missing"
            .into(),
        tiktok_fail_reason: None,
        log_id: error.log_id().map(str::to_owned),
    }
}

pub(crate) fn interrupted_init() -> Failure {
    Failure::new(
        "init_outcome_unknown",
        "the publisher stopped while TikTok's init was under way, so whether TikTok created the post is unknown. It \
         is not retried automatically (TikTok may already be pulling the media, and flags duplicates as spam): \
         check the TikTok account, then resolve the post (POST /v1/posts/{id}/resolve) as published or not",
    )
}

pub(crate) fn token(error: &TokenError) -> Failure {
    match error {
        TokenError::Unreadable(..) => Failure::new(
            "token_unreadable",
            "the stored TikTok tokens cannot be opened: sealed with another key (was TOKEN_ENCRYPTION_KEY rotated \
             without re-encrypting?), altered, moved from another account, or sealed before the account binding \
             while TOKEN_ACCEPT_UNBOUND is false; an operator must fix the key, or the user must reconnect the account",
        ),
        other => Failure::new(
            "account_not_connected",
            format!("{other}; reconnect it, then post again"),
        ),
    }
}

pub(crate) fn media_rejected(media: &Media) -> Failure {
    let reasons = media.rejection_reasons();
    Failure::new(
        "media_rejected",
        format!("media {} was rejected by validation: {reasons}", media.id),
    )
}
