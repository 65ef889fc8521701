//! `POST /v1/webhooks/tiktok`: TikTok's notifications (reference §7.2). No API key: only a valid `TikTok-Signature`
//! (HMAC of `t.body` with the client secret, at most 5 minutes old) is trusted; anything else is 401 and changes
//! nothing.
//!
//! TikTok delivers at least once and retries for 72 hours until it gets a 200, so every delivery it signed gets a
//! 200 unless our store is down (then TikTok's retry is what we want). A delivery whose key was handled before is
//! answered `duplicate` without touching anything ([`shared::webhook_dedupe`]: the key is claimed before applying,
//! recorded once applied, released when applying failed). Beneath that, handling is idempotent: each transition
//! applies only from the states it leaves, so a poll that got there first, or a copy whose key was not recorded,
//! changes nothing and emits no second event. Every write is a compare-and-set that re-reads on conflict.

use axum::{extract::State, http::HeaderMap, Json};
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::{
    accounts::PostsAtRisk,
    domain::{Account, AccountStatus, Post, PostStatus},
    outbox::{deliver_account_outbox, deliver_outbox},
    ports::StoreError,
    tiktok::{
        webhook::{self, WebhookDelivery, WebhookEvent, DEFAULT_TOLERANCE, SIGNATURE_HEADER},
        FailReason,
    },
    webhook_dedupe::{apply_once, Once},
};

use crate::{
    error::{ApiError, ErrorBody},
    extract::RawBody,
    routes::accounts::{forget_tokens, update_account},
    views::{WebhookAck, WebhookOutcome},
    AppState,
};

/// Lost compare-and-sets re-read and re-applied this often; beyond it the delivery fails and TikTok retries it.
const WRITE_ATTEMPTS: u32 = 8;
/// TikTok's status once an inbox upload reached the user.
const INBOX_DELIVERED: &str = "SEND_TO_USER_INBOX";

#[utoipa::path(
    post, path = "/v1/webhooks/tiktok", tag = "webhooks",
    params(("TikTok-Signature" = String, Header, description = "`t={unix seconds},s={hex HMAC-SHA256 of \"t.body\" \
                                                                 keyed with the app's client secret}`")),
    request_body(content = String, content_type = "application/json",
        description = "TikTok's envelope: `client_key`, `event`, `create_time`, `user_openid`, `content` (a JSON string)"),
    responses(
        (status = 200, description = "Received: applied, unchanged (already in that state), ignored (not ours) or \
                                      duplicate (this delivery was handled before: a redelivery or a replay)", body = WebhookAck),
        (status = 400, description = "`foreign_client_key`: the envelope names another app's client key; nothing changed", body = ErrorBody),
        (status = 401, description = "Bad or stale signature; nothing changed", body = ErrorBody),
        (status = 503, description = "Our store is unavailable, or another copy of this delivery is being applied; \
                                      TikTok retries", body = ErrorBody),
    )
)]
pub async fn tiktok_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let secret = &state.tokens.client().config().client_secret;
    if let Err(refusal) = webhook::verify(secret, signature, &body, state.clock.now(), DEFAULT_TOLERANCE) {
        tracing::warn!(reason = %refusal, "webhook refused");
        return Err(ApiError::InvalidSignature);
    }
    let delivery = match WebhookDelivery::parse(&body) {
        Ok(delivery) => delivery,
        // Signed by TikTok yet unreadable: a retry would be just as unreadable.
        Err(error) => {
            tracing::warn!(%error, "signed webhook not understood; acknowledged so that TikTok stops retrying it");
            return Ok(ack(WebhookOutcome::Ignored));
        }
    };
    // The signature proves the secret, not the app: a delivery addressed to another client key is not ours to apply.
    if delivery.envelope.client_key != state.tokens.client().config().client_key {
        tracing::warn!("signed webhook for another client key refused");
        return Err(ApiError::BadRequest {
            code: "foreign_client_key",
            message: "the webhook's client_key is not this app's".into(),
        });
    }
    let key = delivery.dedupe_key();
    let once = apply_once(
        state.stores.webhook_deliveries.as_ref(),
        state.clock.as_ref(),
        &key,
        apply(&state, &delivery),
    )
    .await?;
    let outcome = match once {
        Once::Applied(outcome) => outcome,
        Once::Duplicate => WebhookOutcome::Duplicate,
        // A 200 now would end TikTok's retries before we know that the other copy succeeds.
        Once::InProgress => {
            return Err(ApiError::Unavailable(
                format!("webhook delivery {key} is being applied by another request").into(),
            ))
        }
    };
    tracing::info!(
        event = %delivery.envelope.event,
        delivery = %key,
        outcome = ?outcome,
        "TikTok webhook handled"
    );
    Ok(ack(outcome))
}

fn ack(outcome: WebhookOutcome) -> Json<WebhookAck> {
    Json(WebhookAck { outcome })
}

async fn apply(state: &AppState, delivery: &WebhookDelivery) -> Result<WebhookOutcome, ApiError> {
    match &delivery.event {
        WebhookEvent::PublishComplete { publish_id } => {
            move_post(state, publish_id, |post, _, now| {
                if !is_with_tiktok(post) {
                    return false;
                }
                post.mark_completed(now, None, None);
                true
            })
            .await
        }
        WebhookEvent::PublishFailed { publish_id, reason } => {
            // TikTok's reason is kept verbatim; an absent one reads as unexplained.
            let reason = FailReason::parse(if reason.is_empty() { "unknown" } else { reason });
            move_post(state, publish_id, |post, _, now| {
                if !is_with_tiktok(post) {
                    return false;
                }
                post.publish.tiktok_status = Some("FAILED".into());
                post.mark_processing_failed(reason.failure(None), reason.retry(), now);
                true
            })
            .await
        }
        WebhookEvent::PubliclyAvailable { publish_id, post_id } => {
            move_post(state, publish_id, |post, username, _| {
                if post.publish.tiktok_post_id.as_deref() == Some(post_id.as_str()) {
                    return false;
                }
                post.record_public_post_id(post_id.clone(), username);
                true
            })
            .await
        }
        WebhookEvent::InboxDelivered { publish_id } => {
            move_post(state, publish_id, |post, _, _| {
                if post.publish.tiktok_status.as_deref() == Some(INBOX_DELIVERED) {
                    return false;
                }
                post.publish.tiktok_status = Some(INBOX_DELIVERED.into());
                true
            })
            .await
        }
        WebhookEvent::AuthorizationRemoved { reason } => {
            let Some(removed_at) = DateTime::from_timestamp(delivery.envelope.create_time, 0) else {
                return Ok(WebhookOutcome::Ignored);
            };
            disconnect_user(state, &delivery.envelope.user_openid, *reason, removed_at).await
        }
        WebhookEvent::NoLongerPubliclyAvailable { .. } | WebhookEvent::Other { .. } => Ok(WebhookOutcome::Ignored),
    }
}

/// Only a post TikTok is handling can be finished by TikTok: a completed, failed or canceled post stays as it is.
fn is_with_tiktok(post: &Post) -> bool {
    matches!(post.status, PostStatus::Publishing | PostStatus::Published)
}

/// Applies `change` (given the account's username, for post URLs) to the post TikTok knows by `publish_id`, then
/// delivers the events the change put in the post's outbox.
async fn move_post(
    state: &AppState,
    publish_id: &str,
    change: impl Fn(&mut Post, Option<&str>, DateTime<Utc>) -> bool,
) -> Result<WebhookOutcome, ApiError> {
    let posts = &state.stores.posts;
    let Some(mut current) = posts.find_post_by_publish_id(publish_id).await? else {
        tracing::info!(publish_id, "no post has this publish id; acknowledged");
        return Ok(WebhookOutcome::Ignored);
    };
    let account = state.stores.accounts.get_account(&current.account_id).await?;
    let username = account.and_then(|account| account.username);
    for _ in 0..WRITE_ATTEMPTS {
        let now = state.clock.now();
        let mut next = current.clone();
        if !change(&mut next, username.as_deref(), now) {
            return Ok(WebhookOutcome::Unchanged);
        }
        next.version = current.version + 1;
        next.updated_at = now;
        match posts.update_post(&next, current.version).await {
            Ok(()) => {
                tracing::info!(post_id = %next.id, status = next.status.as_str(), "post moved by TikTok");
                deliver_outbox(posts.as_ref(), state.events.as_ref(), next).await?;
                return Ok(WebhookOutcome::Applied);
            }
            Err(StoreError::Conflict(_)) => match posts.get_post(&current.id).await? {
                Some(latest) => current = latest,
                None => return Ok(WebhookOutcome::Ignored),
            },
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Unavailable(
        format!("post {} kept changing while a webhook applied", current.id).into(),
    ))
}

/// The user removed the app at TikTok (the tokens are already dead): every workspace's account of that user is
/// disconnected and its tokens forgotten, and the product hears that the account must be connected again.
/// Disconnects the user's connections made before `removed_at` (to the second): TikTok redelivers for days and a signed delivery can be
/// replayed within the signature's tolerance, and neither may undo a connection the user made since.
async fn disconnect_user(
    state: &AppState,
    open_id: &str,
    reason: i64,
    removed_at: DateTime<Utc>,
) -> Result<WebhookOutcome, ApiError> {
    let accounts = state.stores.accounts.find_accounts_by_open_id(open_id).await?;
    if accounts.is_empty() {
        tracing::info!("authorization.removed for a TikTok user with no account here; acknowledged");
        return Ok(WebhookOutcome::Ignored);
    }
    let mut outcome = WebhookOutcome::Unchanged;
    for account in accounts {
        let at_risk = if is_disconnected(&account) {
            None
        } else {
            PostsAtRisk::of(state.stores.posts.as_ref(), &account).await
        };
        // Judged on every read of the compare-and-set, so a reconnect that lands meanwhile is never undone either.
        let written = update_account(state, account, |account, now| {
            // TikTok counts whole seconds: a connection in the same second as the removal counts as before it.
            if is_disconnected(account) || account.connected_at.timestamp() > removed_at.timestamp() {
                return false;
            }
            forget_tokens(account, now);
            let why = json!({ "reason": "authorization_removed", "tiktokReason": reason, "status": "disconnected" });
            account
                .outbox
                .push(PostsAtRisk::announcement(at_risk.as_ref(), account, why, now));
            true
        })
        .await?;
        if !written.changed {
            continue;
        }
        let disconnected = written.account;
        outcome = WebhookOutcome::Applied;
        tracing::info!(account_id = %disconnected.id, reason, "TikTok authorization removed; account disconnected");
        let id = disconnected.id.clone();
        if let Err(error) =
            deliver_account_outbox(state.stores.accounts.as_ref(), state.events.as_ref(), disconnected).await
        {
            tracing::warn!(account_id = %id, %error, "account.reauth_required delivered but not yet removed from the outbox");
        }
    }
    Ok(outcome)
}

fn is_disconnected(account: &Account) -> bool {
    account.status == AccountStatus::Disconnected && account.tokens.is_none()
}
