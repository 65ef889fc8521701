//! Tracking a published post at TikTok until it ends: status polls within 30 a minute per token, backing off from
//! 10 s to 5 min, giving up after 24 h. Webhooks move posts too; whichever comes first wins the compare-and-set.

use chrono::{DateTime, Duration, Utc};
use shared::{
    accounts::is_token_refused,
    domain::{Failure, Post, PostStatus, RateLimited},
    tiktok::{ErrorClass, PublishState, PublishStatus},
};

use crate::{limits::take_slot, store::write, Handled, PublisherDeps, PublisherError};

pub(crate) async fn poll(deps: &PublisherDeps, post: Post, deadline: DateTime<Utc>) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let due = post.publish.next_poll_at.unwrap_or(now);
    if deps.settings.too_early(due, now, deadline) {
        return Ok(Handled::NotDue { due });
    }
    if let Ok(wait) = (due - now).to_std() {
        tokio::time::sleep(wait).await;
    }
    let now = deps.clock.now();
    let published_at = post.publish.published_at.unwrap_or(post.updated_at);
    let Some(publish_id) = post.publish.publish_id.clone() else {
        return Ok(Handled::NothingToDo);
    };
    // TikTok accepted the post, so it may well be live: `failed` would invite a repost that TikTok flags as spam.
    // `needs_review` says what is known and lets the user record what they find (`POST /v1/posts/{id}/resolve`).
    if now > published_at + deps.settings.tracking_deadline {
        let failure = Failure {
            code: "tracking_timeout".into(),
            message: format!(
                "TikTok accepted the post (publish id {publish_id}, last status {}) but reported no final status \
                 within {} hours; it may be live. Check the TikTok account and resolve the post",
                post.publish.tiktok_status.as_deref().unwrap_or("none"),
                deps.settings.tracking_deadline.num_hours()
            ),
            tiktok_fail_reason: None,
            log_id: post.publish.last_log_id.clone(),
        };
        return ended(write(deps, &post, |p| p.mark_needs_review(failure, now)).await?);
    }
    if let Err(free_at) = take_slot(deps, &post.account_id, RateLimited::Status, now).await? {
        return poll_later(deps, &post, free_at).await;
    }
    let mut token = match deps.tokens.access_token(&post.account_id).await {
        Ok(token) => token,
        // The account may need a reconnect; TikTok's webhooks can still finish the post meanwhile.
        Err(e) => {
            tracing::warn!(post_id = %post.id, error = %e, "no token to poll status with");
            return poll_later(deps, &post, now + deps.settings.max_poll_interval).await;
        }
    };
    let mut refreshed = false;
    let status = loop {
        match deps.tokens.client().fetch_status(&token.token, &publish_id).await {
            Ok(status) => break status,
            Err(e) if is_token_refused(&e) && !refreshed => {
                refreshed = true;
                match deps.tokens.replace_rejected(&post.account_id, &token).await {
                    Ok(fresh) => token = fresh,
                    Err(_) => return poll_later(deps, &post, now + deps.settings.max_poll_interval).await,
                }
            }
            Err(e) if matches!(e.class(), ErrorClass::Permanent) => {
                let failure = Failure {
                    code: "tracking_failed".into(),
                    message: format!(
                        "TikTok accepted the post (publish id {publish_id}) but refused to report its status ({}); it \
                         may be live. Check the TikTok account and resolve the post",
                        e.code()
                    ),
                    tiktok_fail_reason: None,
                    log_id: e.log_id().map(str::to_owned),
                };
                return ended(write(deps, &post, |p| p.mark_needs_review(failure, now)).await?);
            }
            Err(e) => {
                tracing::warn!(post_id = %post.id, error = %e, "status poll failed; polling again later");
                return poll_later(deps, &post, now + Duration::seconds(30)).await;
            }
        }
    };
    let username = match deps.stores.accounts.get_account(&post.account_id).await? {
        Some(account) => account.username,
        None => None,
    };
    let next_poll = now + backoff(deps, post.publish.polls + 1);
    ended(
        write(deps, &post, |p| {
            apply_status(p, &status, username.as_deref(), now, next_poll)
        })
        .await?,
    )
}

/// Moves the post as TikTok's status says; still processing means another poll later.
pub(crate) fn apply_status(
    post: &mut Post,
    status: &PublishStatus,
    username: Option<&str>,
    now: DateTime<Utc>,
    next_poll: DateTime<Utc>,
) {
    post.publish.tiktok_status = Some(status.state.as_str().to_owned());
    if status.log_id.is_some() {
        post.publish.last_log_id = status.log_id.clone();
    }
    match &status.state {
        PublishState::PublishComplete => post.mark_completed(now, status.public_post_ids.first().cloned(), username),
        PublishState::Failed => {
            let reason = status
                .fail_reason
                .clone()
                .unwrap_or_else(|| shared::tiktok::FailReason::parse("internal"));
            post.mark_processing_failed(reason.failure(status.log_id.clone()), reason.retry(), now);
        }
        _ => {
            post.publish.polls += 1;
            post.publish.next_poll_at = Some(next_poll);
        }
    }
}

/// 10 s, 20 s, 40 s ... up to 5 min between polls.
fn backoff(deps: &PublisherDeps, polls: u32) -> Duration {
    let first = deps.settings.first_poll_after;
    let factor = 1i32 << polls.min(10);
    (first * factor).min(deps.settings.max_poll_interval)
}

async fn poll_later(deps: &PublisherDeps, post: &Post, at: DateTime<Utc>) -> Result<Handled, PublisherError> {
    ended(write(deps, post, |p| p.publish.next_poll_at = Some(at)).await?)
}

fn ended(written: Option<Post>) -> Result<Handled, PublisherError> {
    Ok(match written {
        None => Handled::Lost,
        Some(post) => match post.status {
            PostStatus::Completed => Handled::Completed,
            PostStatus::Failed => Handled::Failed {
                code: post.failure.map(|f| f.code).unwrap_or_default(),
            },
            // Sent again (a retryable processing failure, a daily cap): look again when it is due.
            PostStatus::Scheduled => match post.publish.not_before {
                Some(until) => Handled::Waiting { until },
                None => Handled::NothingToDo,
            },
            PostStatus::NeedsReview => {
                crate::metrics::post_needs_review(post.updated_at);
                Handled::NeedsReview
            }
            _ => match post.publish.next_poll_at {
                Some(next_poll) => Handled::Tracking { next_poll },
                None => Handled::NothingToDo,
            },
        },
    })
}
