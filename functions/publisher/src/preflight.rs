//! Everything checked before a post is claimed, cheapest first: media verdicts, the account, how the media will
//! travel, the duplicate rule, a fresh token, and a fresh creator_info against the post's choices. Nothing here has
//! an effect at TikTok, so it may run before `scheduledAt` and again after an edit.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures::future::try_join_all;
use shared::{
    accounts::{is_token_refused, AccessToken, Refused, TokenError},
    domain::{Exposure, Failure, Media, MediaStatus, Post, PostType, Privacy, RateLimited},
    ids::AccountId,
    rules::{creator::creator_conflicts, post::DUPLICATE_WINDOW_DAYS},
    tiktok::{ChunkPlan, CreatorInfo, ErrorClass, SecretUrl, TikTokError},
};

use crate::{failure, limits::take_slot, PublisherDeps, PublisherError};

pub(crate) enum Preflight {
    Ready(Box<Ready>),
    Fail(Failure),
    /// Not possible yet (TikTok busy or rate-limited, a token refresh elsewhere): try again at `until`.
    Wait {
        until: DateTime<Utc>,
        reason: &'static str,
    },
    /// Media still on its way: the post stays due (not held back to `until`), so the validator's wakeup when the
    /// verdict lands finds it ready at once; `until` is only when to look again if no wakeup comes.
    AwaitMedia {
        until: DateTime<Utc>,
    },
}

pub(crate) struct Ready {
    /// The post's privacy, checked against what TikTok offers the creator now.
    pub privacy: Privacy,
    pub token: AccessToken,
    pub source: Source,
}

pub(crate) enum Source {
    /// TikTok pulls public copies of the media (made at the claim) from under `base_url`: photos always, a video
    /// when the bucket is served from a verified prefix and the video is small enough to copy in time.
    Pull {
        exposure: Exposure,
        base_url: String,
    },
    VideoUpload {
        plan: ChunkPlan,
    },
}

impl Source {
    /// The public copies TikTok pulls, if it pulls.
    pub fn exposure(&self) -> Option<&Exposure> {
        match self {
            Self::Pull { exposure, .. } => Some(exposure),
            Self::VideoUpload { .. } => None,
        }
    }

    /// The URLs of the public copies, in the post's media order.
    pub fn urls(&self) -> Vec<SecretUrl> {
        match self {
            Self::Pull { exposure, base_url } => exposure.urls(base_url).into_iter().map(SecretUrl::new).collect(),
            Self::VideoUpload { .. } => Vec::new(),
        }
    }
}

pub(crate) async fn preflight(deps: &PublisherDeps, post: &Post) -> Result<Preflight, PublisherError> {
    let now = deps.clock.now();
    let media = try_join_all(post.media.iter().map(|id| deps.stores.media.get_media(id))).await?;
    let mut found = Vec::with_capacity(media.len());
    for (id, media) in post.media.iter().zip(media) {
        let Some(media) = media.filter(|m| m.workspace_id == post.workspace_id) else {
            return Ok(Preflight::Fail(Failure::new(
                "media_missing",
                format!("media {id} no longer exists"),
            )));
        };
        match media.status {
            MediaStatus::Invalid => return Ok(Preflight::Fail(failure::media_rejected(&media))),
            // An accepted transport stream whose MP4 rendition the media worker is still making waits like media
            // still validating (issue 13).
            _ if media.awaits_verdict_or_rendition() => {
                let scheduled = post.scheduled_at.unwrap_or(now);
                let deadline = scheduled + deps.settings.media_wait;
                if now > deadline {
                    let what = if media.status == MediaStatus::Valid {
                        "still being remuxed to MP4; reschedule the post once its rendition is ready"
                    } else {
                        "still not uploaded and validated; upload it (PUT to its upload URL), then reschedule the post"
                    };
                    return Ok(Preflight::Fail(Failure::new(
                        "media_not_ready",
                        format!(
                            "media {} was {what} ({} minutes after the scheduled time)",
                            media.id,
                            deps.settings.media_wait.num_minutes()
                        ),
                    )));
                }
                // Woken by the validator (or the media worker) the moment the verdict or rendition lands; the later
                // look is only the safety net.
                let next_look = if wait_for_verdict(deps, &media, post).await {
                    MEDIA_LOOK_WHEN_WAITING
                } else {
                    MEDIA_LOOK_UNREGISTERED
                };
                return Ok(Preflight::AwaitMedia {
                    until: (now + next_look).min(deadline + Duration::seconds(1)),
                });
            }
            _ => found.push(media),
        }
    }

    let source = match transfer_source(deps, post, &found) {
        Ok(source) => source,
        Err(failure) => return Ok(Preflight::Fail(failure)),
    };
    if !post.options.allow_duplicate {
        if let Some(failure) = duplicate(deps, post, &found, now).await? {
            return Ok(Preflight::Fail(failure));
        }
    }

    let token = match deps.tokens.access_token(&post.account_id).await {
        Ok(token) => token,
        Err(TokenError::Transient(e)) => {
            tracing::warn!(post_id = %post.id, error = %e, "no fresh token yet");
            return Ok(wait_for_tiktok(deps, post, now, "token refresh unavailable"));
        }
        Err(e) => return Ok(Preflight::Fail(failure::token(&e))),
    };
    let (creator, token) = match creator_info(deps, post, token).await? {
        Ok(found) => found,
        Err(verdict) => return Ok(verdict),
    };
    let privacy = match against_creator(post, &found, &creator) {
        Ok(privacy) => privacy,
        Err(failure) => return Ok(Preflight::Fail(failure)),
    };
    Ok(Preflight::Ready(Box::new(Ready { privacy, token, source })))
}

/// How soon a post looks at media still being validated again when the validator will wake it (a lost wakeup
/// costs this much), and when it could not be put on the media's waiting list (a write conflict, a full list).
const MEDIA_LOOK_WHEN_WAITING: Duration = Duration::seconds(30);
const MEDIA_LOOK_UNREGISTERED: Duration = Duration::seconds(5);

/// Puts the post on the media's waiting list with a compare-and-set against the version just read, so a verdict
/// stored in between makes the write fail (and the post looks again soon) rather than leave it waiting unwoken.
async fn wait_for_verdict(deps: &PublisherDeps, media: &Media, post: &Post) -> bool {
    let mut next = media.clone();
    if !next.add_waiting_post(&post.id) {
        return false;
    }
    if next == *media {
        return true;
    }
    next.version += 1;
    next.updated_at = deps.clock.now();
    match deps.stores.media.update_media(&next, media.version).await {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(post_id = %post.id, media_id = %media.id, error = %error, "not on the media's waiting list");
            false
        }
    }
}

/// Photos always travel by PULL_FROM_URL; videos too when a verified prefix serves the bucket and the video is small
/// enough to copy to it at the claim without making the post late (`pull_video_max_bytes`), else by FILE_UPLOAD.
fn transfer_source(deps: &PublisherDeps, post: &Post, media: &[Media]) -> Result<Source, Failure> {
    let base_url = deps.settings.media_public_base_url.clone();
    match post.post_type {
        PostType::Photo => match base_url {
            Some(base_url) => Ok(Source::Pull {
                exposure: Exposure::plan(media),
                base_url,
            }),
            None => Err(Failure::new(
                "media_url_not_configured",
                "TikTok takes photos only by pulling them from a verified URL: an operator must set \
                 MEDIA_PUBLIC_BASE_URL to a TikTok-verified prefix serving the media bucket",
            )),
        },
        PostType::Video => {
            let video = media
                .first()
                .ok_or_else(|| Failure::new("media_missing", "the post has no video"))?;
            // A remuxed MPEG transport or program stream is sent as its MP4 rendition.
            if video.publishable_container().is_none() {
                return Err(Failure::new(
                    "container_not_publishable",
                    "the video's container is unknown; upload it again as MP4 or MOV",
                ));
            }
            if let Some(fix) = video.unpublishable_container() {
                return Err(Failure::new("container_not_publishable", fix));
            }
            let size = video.publishable_size();
            if let Some(base_url) = base_url.filter(|_| size <= deps.settings.pull_video_max_bytes) {
                return Ok(Source::Pull {
                    exposure: Exposure::plan(std::slice::from_ref(video)),
                    base_url,
                });
            }
            ChunkPlan::for_size(size)
                .map(|plan| Source::VideoUpload { plan })
                .map_err(|e| Failure::new("file_too_large", format!("the video cannot be uploaded to TikTok: {e}")))
        }
    }
}

async fn duplicate(
    deps: &PublisherDeps,
    post: &Post,
    media: &[Media],
    now: DateTime<Utc>,
) -> Result<Option<Failure>, PublisherError> {
    let since = now - Duration::days(DUPLICATE_WINDOW_DAYS);
    for item in media {
        let Some(fingerprint) = item.verdict.as_ref().and_then(|v| v.fingerprint.as_deref()) else {
            continue;
        };
        if let Some(other) = deps
            .stores
            .posts
            .fingerprint_published(&post.account_id, fingerprint, since)
            .await?
        {
            if other != post.id {
                return Ok(Some(Failure::new(
                    "duplicate_media",
                    format!(
                        "media {} was already posted to this account within {DUPLICATE_WINDOW_DAYS} days ({other}); \
                         TikTok flags re-uploads as spam. Use a different file, or set options.allowDuplicate",
                        item.id
                    ),
                )));
            }
        }
    }
    Ok(None)
}

/// How long one creator_info answer serves the posts of its account in this process: still fresh for TikTok's
/// purposes, and posts due together (or delivered twice) share one call instead of exhausting 20 a minute.
const CREATOR_INFO_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Default)]
pub(crate) struct CreatorInfoCache(std::sync::Mutex<HashMap<AccountId, (tokio::time::Instant, CreatorInfo)>>);

impl CreatorInfoCache {
    fn get(&self, account: &AccountId) -> Option<CreatorInfo> {
        let cache = self.0.lock().ok()?;
        cache
            .get(account)
            .filter(|(at, _)| at.elapsed() < CREATOR_INFO_FRESH_FOR)
            .map(|(_, info)| info.clone())
    }

    fn put(&self, account: &AccountId, info: &CreatorInfo) {
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < CREATOR_INFO_FRESH_FOR);
            cache.insert(account.clone(), (tokio::time::Instant::now(), info.clone()));
        }
    }
}

/// A fresh creator_info, within TikTok's 20 calls a minute per token; on a refused token, one refresh and retry.
async fn creator_info(
    deps: &PublisherDeps,
    post: &Post,
    mut token: AccessToken,
) -> Result<Result<(CreatorInfo, AccessToken), Preflight>, PublisherError> {
    if let Some(info) = deps.creator_info.get(&post.account_id) {
        return Ok(Ok((info, token)));
    }
    let mut refreshed = false;
    loop {
        let now = deps.clock.now();
        if let Err(free_at) = take_slot(deps, &post.account_id, RateLimited::CreatorInfo, now).await? {
            return Ok(Err(Preflight::Wait {
                until: free_at,
                reason: "creator_info rate limit",
            }));
        }
        match deps.tokens.client().creator_info(&token.token).await {
            Ok(info) => {
                deps.creator_info.put(&post.account_id, &info);
                return Ok(Ok((info, token)));
            }
            Err(e) if is_token_refused(&e) && !refreshed => {
                refreshed = true;
                token = match deps.tokens.replace_rejected(&post.account_id, &token).await {
                    Ok(token) => token,
                    Err(TokenError::Transient(_)) => {
                        return Ok(Err(wait_for_tiktok(deps, post, now, "token refresh unavailable")))
                    }
                    Err(e) => return Ok(Err(Preflight::Fail(failure::token(&e)))),
                };
            }
            Err(e) => return Ok(Err(creator_info_failed(deps, post, &token, &e, now).await)),
        }
    }
}

async fn creator_info_failed(
    deps: &PublisherDeps,
    post: &Post,
    token: &AccessToken,
    error: &TikTokError,
    now: DateTime<Utc>,
) -> Preflight {
    tracing::warn!(post_id = %post.id, error = %error, "creator_info failed");
    match error.class() {
        ErrorClass::RateLimited => Preflight::Wait {
            until: now + Duration::seconds(20),
            reason: "TikTok rate limit",
        },
        ErrorClass::Retryable | ErrorClass::OutcomeUnknown => wait_for_tiktok(deps, post, now, "TikTok unavailable"),
        ErrorClass::Reauthorize => {
            let _reported = deps
                .tokens
                .require_reauth(&post.account_id, Refused::Access(token), error.code())
                .await;
            Preflight::Fail(failure::tiktok_refused(error))
        }
        _ => Preflight::Fail(failure::tiktok_refused(error)),
    }
}

/// TikTok trouble before anything was sent: wait and retry, but not forever.
fn wait_for_tiktok(deps: &PublisherDeps, post: &Post, now: DateTime<Utc>, reason: &'static str) -> Preflight {
    let scheduled = post.scheduled_at.unwrap_or(now);
    if now > scheduled + deps.settings.give_up_after {
        return Preflight::Fail(Failure::new(
            "tiktok_unavailable",
            format!(
                "TikTok could not be reached for {} minutes after the scheduled time ({reason}); nothing was sent. \
                 Reschedule the post",
                deps.settings.give_up_after.num_minutes()
            ),
        ));
    }
    Preflight::Wait {
        until: now + Duration::seconds(10),
        reason,
    }
}

/// TikTok's UX rules, enforced server-side: the chosen privacy must be on offer, no interaction the creator
/// disabled may be enabled, and the video must fit the creator's maximum duration.
fn against_creator(post: &Post, media: &[Media], creator: &CreatorInfo) -> Result<Privacy, Failure> {
    let Some(privacy) = post.options.privacy else {
        return Err(Failure::new(
            "privacy_required",
            "the post has no privacy choice; set options.privacy",
        ));
    };
    let duration_ms = media
        .first()
        .and_then(|m| m.verdict.as_ref())
        .and_then(|v| v.facts.duration_ms);
    // Nothing is changed for the user at fire time: the first conflict fails the post, with the intake's codes.
    match creator_conflicts(post.post_type, &post.options, duration_ms, creator).first() {
        Some(conflict) => Err(Failure::new(conflict.code(), conflict.message())),
        None => Ok(privacy),
    }
}
