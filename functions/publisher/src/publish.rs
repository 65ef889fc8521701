//! Publishing one post, at most once: pre-flight, wait for `scheduledAt`, claim the post and mark the init as started
//! in one compare-and-set, take an init slot (or hand the post back), call init, save the publish id the moment it returns, then move the
//! media. Any init whose outcome is unknown ends in `needs_review`, never in a second init.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use shared::{
    accounts::{is_token_refused, AccessToken, Refused, TokenError},
    domain::{
        Exposure, Failure, Post, PostStatus, PostType, Privacy, RateLimited, Transfer, AMBIGUOUS_UPLOAD_REINITS,
        KEEPALIVE_MARGIN,
    },
    ports::{BlobError, ByteRange, Wakeup},
    tiktok::{
        ChunkAck, ChunkPlan, ErrorClass, InitOutcome, PhotoPost, PhotoPostMode, SecretUrl, TikTokError,
        VideoContentType, VideoPostInfo, VideoSource,
    },
};

use crate::{
    failure,
    limits::take_slot,
    preflight::{preflight, Preflight, Ready, Source},
    store::{write, write_held},
    Handled, PublisherDeps, PublisherError,
};

/// TikTok's upload URL lives one hour; stop a few minutes short so a chunk never starts on a dying URL.
const UPLOAD_URL_LIFETIME: Duration = Duration::minutes(55);
/// Time kept free after a chunk's timeout, for saving progress and handing over.
const CHUNK_MARGIN: Duration = Duration::seconds(5);
/// A pre-flight can go stale if the post changes before the claim; re-run it this many times at most.
const CLAIM_ATTEMPTS: usize = 3;

/// A scheduled post that is due (or will be within the look-ahead).
pub(crate) async fn publish_scheduled(
    deps: &PublisherDeps,
    mut post: Post,
    deadline: DateTime<Utc>,
) -> Result<Handled, PublisherError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let now = deps.clock.now();
        // The publish instant, not the due instant: undelivered events make a post due early, to deliver them.
        let Some(due) = post.publish_at() else {
            return Ok(Handled::NothingToDo);
        };
        if deps.settings.too_early(due, now, deadline) {
            if post.publish.keepalive_at.is_some_and(|at| at <= now) {
                return keep_alive(deps, &post, due).await;
            }
            return Ok(Handled::NotDue { due });
        }
        // A post that would have to wait for an init slot anyway does not spend TikTok's creator_info budget first.
        if let Some(account) = deps.stores.accounts.get_account(&post.account_id).await? {
            if let Some(free_at) = account.rate_windows.next_free(RateLimited::Init, due.max(now)) {
                return wait(deps, &post, free_at, "TikTok allows 6 inits a minute per account").await;
            }
        }
        let ready = match preflight(deps, &post).await? {
            Preflight::Ready(ready) => ready,
            Preflight::Fail(failure) => return fail_or_defer(deps, &post, failure).await,
            Preflight::Wait { until, reason } => return wait(deps, &post, until, reason).await,
            Preflight::AwaitMedia { until } => {
                tracing::info!(post_id = %post.id, %until, "waiting for the media's verdict");
                return Ok(Handled::Waiting { until });
            }
        };
        sleep_until(deps, due).await;
        let at = deps.clock.now();
        let attempt = post.publish.attempt + 1;
        let lease = deps.settings.lease;
        let by_upload = matches!(ready.source, Source::VideoUpload { .. });
        let exposed = ready.source.exposure().map(Exposure::keys).unwrap_or_default();
        let claimed = write(deps, &post, |p| {
            p.status = PostStatus::Publishing;
            p.publish.attempt = attempt;
            p.publish.lease_until = Some(at + lease);
            p.publish.init_started_at = Some(at);
            p.publish.init_by_upload = by_upload;
            p.publish.not_before = None;
            // Listed before they exist, so that no copy is ever made that the post does not name for removal.
            p.publish.exposed.extend(exposed);
            p.failure = None;
        })
        .await?;
        match claimed {
            Some(claimed) => {
                // The slot is taken only by the worker that won the claim: a duplicate delivery or a post edited
                // since it was read loses the claim above and so never spends one of the account's 6 inits a minute.
                if let Err(free_at) = take_slot(deps, &claimed.account_id, RateLimited::Init, at).await? {
                    tracing::info!(post_id = %claimed.id, %free_at, "no init slot; released until the window frees");
                    return release(deps, &claimed, free_at).await;
                }
                if let Some(exposure) = ready.source.exposure() {
                    if let Err(e) = expose(deps, exposure).await {
                        // Nothing was sent; the copies already made are removed with the write that follows.
                        return not_exposed(deps, &claimed, &e).await;
                    }
                }
                let lateness_ms = (deps.clock.now() - due).num_milliseconds();
                tracing::info!(post_id = %claimed.id, attempt, lateness_ms, "claimed; calling init");
                return init(deps, claimed, *ready).await;
            }
            // Edited, canceled, rescheduled or claimed by another worker since it was read: look again.
            None => match deps.stores.posts.get_post(&post.id).await? {
                Some(latest) if latest.status == PostStatus::Scheduled => post = latest,
                _ => return Ok(Handled::Lost),
            },
        }
    }
    Ok(Handled::Lost)
}

/// Makes the public copies TikTok will pull, all at once: their time is added to the init's lateness. Every copy
/// is waited for even when one fails, so that removing them afterwards finds each one that was made (a copy
/// abandoned in flight could land after its removal and stay public until the lifecycle rule).
async fn expose(deps: &PublisherDeps, exposure: &Exposure) -> Result<(), BlobError> {
    let started = tokio::time::Instant::now();
    let copied = join_all(exposure.copies.iter().map(|copy| deps.blobs.copy(&copy.from, &copy.to))).await;
    copied.into_iter().collect::<Result<Vec<()>, BlobError>>()?;
    tracing::info!(
        objects = exposure.copies.len(),
        copy_ms = started.elapsed().as_millis(),
        "public copies made"
    );
    Ok(())
}

/// The public copies could not all be made, before anything was sent: a media file gone fails the post, a store
/// that is unavailable hands it back for a retry (within `give_up_after`, like TikTok being unreachable).
async fn not_exposed(deps: &PublisherDeps, post: &Post, error: &BlobError) -> Result<Handled, PublisherError> {
    tracing::warn!(post_id = %post.id, error = %error, "public copies not made; nothing sent");
    if let BlobError::Unavailable(_) = error {
        let failure = Failure::new(
            "media_unavailable",
            "the media store could not be read for too long after the scheduled time; nothing was sent. Reschedule \
             the post",
        );
        return retry_until_given_up(deps, post, failure).await;
    }
    let failure = Failure::new(
        "media_missing",
        format!("a media file of the post is gone ({error}); upload it again and edit the post"),
    );
    end(deps, post, |p, now| p.mark_failed(failure, now)).await
}

/// A passing trouble before anything was sent: the post is handed back for another try in 10 s, until
/// `give_up_after` past its scheduled time, when it fails with `failure`.
async fn retry_until_given_up(deps: &PublisherDeps, post: &Post, failure: Failure) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    if now > post.scheduled_at.unwrap_or(now) + deps.settings.give_up_after {
        return end(deps, post, |p, now| p.mark_failed(failure, now)).await;
    }
    release(deps, post, now + Duration::seconds(10)).await
}

/// Renews the account's refresh token for a post scheduled past its life (see `Post::plan_keepalive`), then plans
/// the next renewal, if the post still needs one. TikTok down: tried again in an hour. The account lost (TikTok
/// refused the refresh): the token service has announced `account.reauth_required` now, months before the post's
/// time, and the post waits for a reconnect (or fails at its time with the reason).
async fn keep_alive(deps: &PublisherDeps, post: &Post, due: DateTime<Utc>) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let next = match deps.tokens.keep_alive(&post.account_id, KEEPALIVE_MARGIN).await {
        Ok(expires_at) => Some(expires_at),
        Err(TokenError::Transient(e)) => {
            tracing::warn!(post_id = %post.id, error = %e, "refresh token not renewed yet; trying again in an hour");
            None
        }
        Err(e) => {
            tracing::warn!(post_id = %post.id, error = %e, "refresh token cannot be renewed; the account must reconnect");
            write(deps, post, |p| p.publish.keepalive_at = None).await?;
            return Ok(Handled::NotDue { due });
        }
    };
    let written = write(deps, post, |p| match next {
        Some(expires_at) => p.plan_keepalive(expires_at, now),
        None => p.publish.keepalive_at = Some(now + Duration::hours(1)),
    })
    .await?;
    Ok(match written {
        Some(_) => Handled::NotDue { due },
        None => Handled::Lost,
    })
}

/// A post left in `publishing` by a worker whose lease expired (a crash, a timeout): carry on from what was saved.
pub(crate) async fn resume(
    deps: &PublisherDeps,
    post: Post,
    deadline: DateTime<Utc>,
) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    if post.publish.lease_until.is_some_and(|until| until > now) {
        return Ok(Handled::Lost);
    }
    if deadline - now < deps.settings.min_time_left {
        return Ok(Handled::NotDue { due: now });
    }
    let lease = deps.settings.lease;
    let Some(post) = write(deps, &post, |p| {
        p.publish.attempt += 1;
        p.publish.lease_until = Some(now + lease);
    })
    .await?
    else {
        return Ok(Handled::Lost);
    };
    tracing::info!(post_id = %post.id, attempt = post.publish.attempt, "resuming after an expired lease");
    match (&post.publish.publish_id, &post.publish.transfer) {
        // The worker died during a FILE_UPLOAD init: whatever TikTok created never got a byte and cannot be
        // published, so a new init is safe, once (as after an init without a clear answer).
        (None, _)
            if post.publish.init_started_at.is_some()
                && post.publish.init_by_upload
                && post.publish.upload_reinits < AMBIGUOUS_UPLOAD_REINITS =>
        {
            tracing::warn!(post_id = %post.id, "the worker died during a FILE_UPLOAD init; sending a new init");
            release_with(deps, &post, now, |p| p.publish.upload_reinits += 1).await
        }
        (None, _) if post.publish.init_started_at.is_some() => {
            end(deps, &post, |p, now| {
                p.mark_needs_review(failure::interrupted_init(), now)
            })
            .await
        }
        (None, _) => release(deps, &post, now).await,
        (
            Some(_),
            Some(Transfer::FileUpload {
                chunks_done,
                total_chunks,
                ..
            }),
        ) if chunks_done < total_chunks => upload(deps, post, deadline).await,
        (Some(_), _) => mark_published(deps, &post).await,
    }
}

async fn init(deps: &PublisherDeps, post: Post, ready: Ready) -> Result<Handled, PublisherError> {
    let client = deps.tokens.client();
    let mut token = ready.token;
    let mut refreshed = false;
    loop {
        let result = match (&ready.source, post.post_type) {
            (Source::Pull { .. }, PostType::Photo) => {
                client
                    .init_photo(&token.token, &photo_post(&post, ready.privacy, ready.source.urls()))
                    .await
            }
            (Source::Pull { .. }, PostType::Video) => {
                let Some(url) = ready.source.urls().into_iter().next() else {
                    let failure = Failure::new("media_missing", "the post has no video");
                    return end(deps, &post, |p, now| p.mark_failed(failure, now)).await;
                };
                client
                    .init_video(
                        &token.token,
                        &video_info(&post, ready.privacy),
                        &VideoSource::PullFromUrl(url),
                    )
                    .await
            }
            (Source::VideoUpload { plan, .. }, _) => {
                client
                    .init_video(
                        &token.token,
                        &video_info(&post, ready.privacy),
                        &VideoSource::FileUpload(*plan),
                    )
                    .await
            }
        };
        let error = match result {
            Ok(outcome) => return initialised(deps, post, &ready.source, outcome).await,
            Err(error) => error,
        };
        tracing::warn!(post_id = %post.id, error = %error, "init failed");
        // A refused token means TikTok refused the call: nothing was created, so one retry with a new token is safe.
        if is_token_refused(&error) && !refreshed {
            refreshed = true;
            token = match deps.tokens.replace_rejected(&post.account_id, &token).await {
                Ok(token) => token,
                Err(TokenError::Transient(_)) => {
                    return release(deps, &post, deps.clock.now() + Duration::seconds(15)).await
                }
                Err(e) => return end(deps, &post, |p, now| p.mark_failed(failure::token(&e), now)).await,
            };
            continue;
        }
        return init_failed(deps, &post, &ready.source, &token, &error).await;
    }
}

async fn init_failed(
    deps: &PublisherDeps,
    post: &Post,
    source: &Source,
    token: &AccessToken,
    error: &TikTokError,
) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    match error.class() {
        ErrorClass::OutcomeUnknown
            if matches!(source, Source::VideoUpload { .. })
                && post.publish.upload_reinits < AMBIGUOUS_UPLOAD_REINITS =>
        {
            tracing::warn!(post_id = %post.id, error = %error, "FILE_UPLOAD init without a clear answer; sending a new init");
            release_with(deps, post, now, |p| p.publish.upload_reinits += 1).await
        }
        ErrorClass::OutcomeUnknown => {
            end(deps, post, |p, now| {
                p.mark_needs_review(failure::init_outcome_unknown(error), now)
            })
            .await
        }
        // TikTok answered "not now": nothing was created; the post waits and goes out when allowed.
        ErrorClass::RateLimited => release(deps, post, now + Duration::seconds(20)).await,
        // The request never reached TikTok (no connection): nothing was created.
        ErrorClass::Retryable => {
            let failure = Failure::new(
                "tiktok_unavailable",
                "TikTok could not be reached for too long after the scheduled time; nothing was sent. Reschedule the \
                 post",
            );
            retry_until_given_up(deps, post, failure).await
        }
        ErrorClass::Reauthorize => {
            let _reported = deps
                .tokens
                .require_reauth(&post.account_id, Refused::Access(token), error.code())
                .await;
            end(deps, post, |p, now| p.mark_failed(failure::tiktok_refused(error), now)).await
        }
        _ => fail_or_defer(deps, post, failure::tiktok_refused(error)).await,
    }
}

/// Init returned: the publish id is saved before anything else happens, since it is the only handle on what TikTok
/// now holds. PULL_FROM_URL posts are published at this point; FILE_UPLOAD ones once the last chunk is in.
async fn initialised(
    deps: &PublisherDeps,
    post: Post,
    source: &Source,
    outcome: InitOutcome,
) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let transfer = match (source, &outcome.upload_url) {
        (Source::VideoUpload { plan, .. }, Some(url)) => Transfer::FileUpload {
            upload_url: url.expose().to_owned(),
            upload_url_expires_at: now + UPLOAD_URL_LIFETIME,
            video_size: plan.video_size,
            chunk_size: plan.chunk_size,
            total_chunks: plan.total_chunk_count,
            chunks_done: 0,
        },
        _ => Transfer::PullFromUrl,
    };
    let pulled = transfer == Transfer::PullFromUrl;
    let first_poll = now + deps.settings.first_poll_after;
    let attempt = post.publish.attempt;
    // Logged before the save (an id, not a secret): if the store never takes it, the log is what ties TikTok's post
    // to ours, and the post's resume then ends in needs_review, never in a second init.
    tracing::info!(post_id = %post.id, publish_id = %outcome.publish_id, "TikTok accepted the init; saving its publish id");
    let saved = write_held(
        deps,
        &post,
        |p| p.status == PostStatus::Publishing && p.publish.attempt == attempt,
        |p| {
            p.publish.publish_id = Some(outcome.publish_id.clone());
            p.publish.transfer = Some(transfer.clone());
            p.publish.last_log_id = outcome.log_id.clone();
            if pulled {
                p.mark_published(now, first_poll);
            }
        },
    )
    .await
    .inspect_err(|e| {
        tracing::error!(post_id = %post.id, publish_id = %outcome.publish_id, error = %e, "publish id not saved");
    })?;
    let Some(saved) = saved else { return Ok(Handled::Lost) };
    if pulled {
        record_fingerprints(deps, &saved).await;
        return Ok(Handled::Published { next_poll: first_poll });
    }
    // The bytes go in a delivery of their own: the batch that carried this init (other posts due this second) ends
    // now instead of waiting for a transfer of minutes.
    yield_for_resume(deps, &saved, now).await
}

/// FILE_UPLOAD: the video goes to TikTok chunk by chunk, read from the blob store one chunk at a time (memory is
/// bounded by the chunk size), progress saved after every acknowledged chunk so a resume continues from there.
async fn upload(deps: &PublisherDeps, mut post: Post, deadline: DateTime<Utc>) -> Result<Handled, PublisherError> {
    let Some(Transfer::FileUpload {
        upload_url,
        upload_url_expires_at,
        video_size,
        chunk_size,
        total_chunks,
        chunks_done,
    }) = post.publish.transfer.clone()
    else {
        return mark_published(deps, &post).await;
    };
    let plan = ChunkPlan {
        video_size,
        chunk_size,
        total_chunk_count: total_chunks,
    };
    let url = SecretUrl::new(upload_url);
    let Some(video) = deps.stores.media.get_media(&post.media[0]).await? else {
        let failure = shared::domain::Failure::new("media_missing", "the video vanished during the upload");
        return end(deps, &post, |p, now| p.mark_failed(failure.clone(), now)).await;
    };
    let content_type = match video.publishable_container() {
        Some("mov") => VideoContentType::QuickTime,
        _ => VideoContentType::Mp4,
    };
    let etag = video.publishable_etag().map(str::to_owned);
    let key = video.publishable_key().to_owned();
    let attempt = post.publish.attempt;
    let mut next = chunks_done;
    let mut failures = 0;
    // A chunk may take the whole upload timeout; one that could not finish before the invocation ends is not begun.
    let chunk_budget = Duration::from_std(deps.tokens.client().config().timeouts.upload_chunk)
        .ok()
        .and_then(|timeout| timeout.checked_add(&CHUNK_MARGIN))
        .unwrap_or(Duration::MAX);
    let mut heartbeat = tokio::time::interval(lease_renewal(deps));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while next < total_chunks {
        let now = deps.clock.now();
        if deadline - now < chunk_budget {
            return yield_for_resume(deps, &post, now).await;
        }
        if now >= upload_url_expires_at {
            let failure = shared::domain::Failure::new(
                "upload_expired",
                "TikTok's upload URL expired (it lives one hour) before the video was fully sent; TikTok did not \
                 publish it. Create the post again",
            );
            return end(deps, &post, |p, now| p.mark_failed(failure.clone(), now)).await;
        }
        let Some(range) = plan.chunk_range(next) else { break };
        let bytes = match deps
            .blobs
            .read_range(&key, ByteRange::Span(range), etag.as_deref())
            .await
        {
            Ok(read) => read.bytes,
            Err(e @ (BlobError::NotFound(_) | BlobError::Changed(_) | BlobError::RangeNotSatisfiable(_))) => {
                let failure = shared::domain::Failure::new(
                    "media_changed",
                    format!("the video's file is gone or was replaced during the upload ({e}); upload it again"),
                );
                return end(deps, &post, |p, now| p.mark_failed(failure.clone(), now)).await;
            }
            Err(e) => return Err(e.into()),
        };
        let sent = next;
        let chunk = deps
            .tokens
            .client()
            .upload_chunk(&url, &plan, sent, content_type, bytes);
        tokio::pin!(chunk);
        // While the chunk is in flight the lease is renewed (and the watchdog re-armed), so that the lease can stay
        // short: a worker that dies mid-chunk is noticed within one upload lease, not after a long one.
        let answer = loop {
            tokio::select! {
                answer = &mut chunk => break answer,
                _ = heartbeat.tick() => match hold_upload(deps, &post, attempt).await? {
                    Some(held) => post = held,
                    None => return Ok(Handled::Lost),
                },
            }
        };
        match answer {
            Ok(ChunkAck::Complete) => {
                let saved = save_progress(deps, &post, attempt, total_chunks).await?;
                let Some(saved) = saved else { return Ok(Handled::Lost) };
                return mark_published(deps, &saved).await;
            }
            Ok(ChunkAck::Partial { uploaded }) => {
                // TikTok's own count wins; a count that does not move forward is a failure to retry.
                next = uploaded
                    .and_then(|u| plan.next_chunk_after(u.uploaded_bytes()))
                    .unwrap_or(sent + 1);
                if next <= sent {
                    failures += 1;
                }
            }
            Err(TikTokError::UploadRangeMismatch { uploaded, .. }) => {
                next = uploaded
                    .and_then(|u| plan.next_chunk_after(u.uploaded_bytes()))
                    .unwrap_or(sent);
                failures += 1;
                if uploaded.is_some_and(|u| u.uploaded_bytes() >= video_size) {
                    next = total_chunks;
                }
            }
            Err(e @ TikTokError::UploadUrlExpired { .. }) => {
                return end(deps, &post, |p, now| p.mark_failed(failure::tiktok_refused(&e), now)).await;
            }
            Err(e) if e.class() == ErrorClass::Retryable => {
                tracing::warn!(post_id = %post.id, chunk = sent, error = %e, "chunk failed; retrying the same chunk");
                failures += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 << failures.min(5))).await;
            }
            Err(e) => return end(deps, &post, |p, now| p.mark_failed(failure::tiktok_refused(&e), now)).await,
        }
        if failures > deps.settings.chunk_retries {
            return yield_for_resume(deps, &post, deps.clock.now() + Duration::seconds(30)).await;
        }
        if next != sent {
            match save_progress(deps, &post, attempt, next).await? {
                Some(saved) => post = saved,
                None => return Ok(Handled::Lost),
            }
        }
    }
    mark_published(deps, &post).await
}

/// Renews the upload's lease and arms a wakeup just past its end: if this worker dies, that wakeup finds the lease
/// expired and resumes the upload from its saved progress.
async fn hold_upload(deps: &PublisherDeps, post: &Post, attempt: u32) -> Result<Option<Post>, PublisherError> {
    let now = deps.clock.now();
    let lease_until = now + deps.settings.upload_lease;
    let held = set_lease(deps, post, attempt, lease_until).await?;
    if held.is_some() {
        // Past the end, because a timer may deliver up to a second early and a lease is only expired after its end.
        let watchdog = Wakeup {
            post_id: post.id.clone(),
            at: lease_until + Duration::seconds(1),
        };
        if let Err(e) = deps.timer.schedule(&[watchdog], now).await {
            tracing::warn!(post_id = %post.id, error = %e, "no watchdog for the upload; the schedule tick covers it");
        }
    }
    Ok(held)
}

fn lease_renewal(deps: &PublisherDeps) -> std::time::Duration {
    (deps.settings.upload_lease / 3)
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(10))
}

async fn save_progress(
    deps: &PublisherDeps,
    post: &Post,
    attempt: u32,
    done: u32,
) -> Result<Option<Post>, PublisherError> {
    let lease_until = deps.clock.now() + deps.settings.upload_lease;
    write_held(
        deps,
        post,
        |p| p.status == PostStatus::Publishing && p.publish.attempt == attempt,
        |p| {
            if let Some(Transfer::FileUpload { chunks_done, .. }) = &mut p.publish.transfer {
                *chunks_done = done;
            }
            p.publish.lease_until = Some(lease_until);
        },
    )
    .await
}

async fn mark_published(deps: &PublisherDeps, post: &Post) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let first_poll = now + deps.settings.first_poll_after;
    let attempt = post.publish.attempt;
    let saved = write_held(
        deps,
        post,
        |p| p.status == PostStatus::Publishing && p.publish.attempt == attempt,
        |p| p.mark_published(now, first_poll),
    )
    .await?;
    match saved {
        Some(saved) => {
            record_fingerprints(deps, &saved).await;
            Ok(Handled::Published { next_poll: first_poll })
        }
        None => Ok(Handled::Lost),
    }
}

/// The files just sent, for the 30-day duplicate rule. A failure here is logged, not fatal: the post is out.
async fn record_fingerprints(deps: &PublisherDeps, post: &Post) {
    let now = deps.clock.now();
    for id in &post.media {
        let fingerprint = match deps.stores.media.get_media(id).await {
            Ok(Some(media)) => media.verdict.and_then(|v| v.fingerprint),
            _ => None,
        };
        if let Some(fingerprint) = fingerprint {
            if let Err(e) = deps
                .stores
                .posts
                .record_fingerprint(&post.account_id, &fingerprint, &post.id, now)
                .await
            {
                tracing::warn!(post_id = %post.id, error = %e, "fingerprint not recorded; the duplicate rule may miss it");
            }
        }
    }
}

/// Hands the upload to a later delivery: the lease ends at `resume_at`, when the wakeup this arms resumes it.
async fn yield_for_resume(
    deps: &PublisherDeps,
    post: &Post,
    resume_at: DateTime<Utc>,
) -> Result<Handled, PublisherError> {
    Ok(match set_lease(deps, post, post.publish.attempt, resume_at).await? {
        Some(_) => Handled::Yielded { resume_at },
        None => Handled::Lost,
    })
}

/// Moves the end of this worker's lease on a post it still holds (same attempt).
async fn set_lease(
    deps: &PublisherDeps,
    post: &Post,
    attempt: u32,
    until: DateTime<Utc>,
) -> Result<Option<Post>, PublisherError> {
    write_held(
        deps,
        post,
        |p| p.status == PostStatus::Publishing && p.publish.attempt == attempt,
        |p| p.publish.lease_until = Some(until),
    )
    .await
}

/// Nothing was sent to TikTok: back to `scheduled`, due again at `until`.
async fn release(deps: &PublisherDeps, post: &Post, until: DateTime<Utc>) -> Result<Handled, PublisherError> {
    release_with(deps, post, until, |_| {}).await
}

/// [`release`], noting why in the post as `note` does (nothing was sent, or nothing TikTok could ever publish).
async fn release_with(
    deps: &PublisherDeps,
    post: &Post,
    until: DateTime<Utc>,
    note: impl FnOnce(&mut Post),
) -> Result<Handled, PublisherError> {
    let written = write(deps, post, |p| {
        p.status = PostStatus::Scheduled;
        p.publish.lease_until = None;
        p.publish.init_started_at = None;
        p.publish.init_by_upload = false;
        p.publish.not_before = Some(until);
        note(p);
    })
    .await?;
    Ok(if written.is_some() {
        Handled::Waiting { until }
    } else {
        Handled::Lost
    })
}

/// Not possible yet: the post stays scheduled and is not due again before `until`.
async fn wait(
    deps: &PublisherDeps,
    post: &Post,
    until: DateTime<Utc>,
    reason: &str,
) -> Result<Handled, PublisherError> {
    tracing::info!(post_id = %post.id, %until, reason, "waiting");
    if post.publish.not_before == Some(until) {
        return Ok(Handled::Waiting { until });
    }
    let written = write(deps, post, |p| p.publish.not_before = Some(until)).await?;
    Ok(if written.is_some() {
        Handled::Waiting { until }
    } else {
        Handled::Lost
    })
}

/// Fails the post, unless a daily cap refused it before anything was created and it may try again tomorrow (TikTok's
/// own advice), once.
async fn fail_or_defer(deps: &PublisherDeps, post: &Post, failure: Failure) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let mut deferred = post.clone();
    if !deferred.defer_for_daily_cap(&failure, now) {
        return end(deps, post, |p, now| p.mark_failed(failure, now)).await;
    }
    tracing::info!(post_id = %post.id, code = %failure.code, "daily cap: trying again in a day");
    let written = write(deps, post, |p| {
        p.defer_for_daily_cap(&failure, now);
    })
    .await?;
    Ok(match (written, deferred.publish.not_before) {
        (Some(_), Some(until)) => Handled::Waiting { until },
        _ => Handled::Lost,
    })
}

/// Ends the post (failed or needs_review) with a compare-and-set on the version that was examined.
async fn end(
    deps: &PublisherDeps,
    post: &Post,
    transition: impl FnOnce(&mut Post, DateTime<Utc>),
) -> Result<Handled, PublisherError> {
    let now = deps.clock.now();
    let written = write(deps, post, |p| transition(p, now)).await?;
    Ok(match written {
        Some(ended) => {
            let code = ended.failure.as_ref().map(|f| f.code.clone()).unwrap_or_default();
            tracing::info!(post_id = %ended.id, status = ended.status.as_str(), code, "post ended");
            if ended.status == PostStatus::NeedsReview {
                crate::metrics::post_needs_review(now);
                Handled::NeedsReview
            } else {
                Handled::Failed { code }
            }
        }
        None => Handled::Lost,
    })
}

async fn sleep_until(deps: &PublisherDeps, at: DateTime<Utc>) {
    let wait = at - deps.clock.now();
    if let Ok(wait) = wait.to_std() {
        tokio::time::sleep(wait).await;
    }
}

fn video_info(post: &Post, privacy: Privacy) -> VideoPostInfo {
    VideoPostInfo {
        title: Some(post.content.clone()).filter(|c| !c.is_empty()),
        privacy,
        disable_comment: !post.options.allow_comments,
        disable_duet: !post.options.allow_duet,
        disable_stitch: !post.options.allow_stitch,
        video_cover_timestamp_ms: post.options.cover_timestamp_ms,
        brand_content_toggle: post.options.brand_content,
        brand_organic_toggle: post.options.brand_organic,
        is_aigc: post.options.ai_generated,
    }
}

fn photo_post(post: &Post, privacy: Privacy, images: Vec<SecretUrl>) -> PhotoPost {
    PhotoPost {
        mode: PhotoPostMode::DirectPost {
            privacy,
            disable_comment: !post.options.allow_comments,
            auto_add_music: post.options.auto_add_music,
            brand_content_toggle: post.options.brand_content,
            brand_organic_toggle: post.options.brand_organic,
        },
        title: post.options.title.clone(),
        description: Some(post.content.clone()).filter(|c| !c.is_empty()),
        images,
        cover_index: 0,
        is_aigc: post.options.ai_generated,
    }
}
