//! Writing posts: every write is a compare-and-set on the version the writer read, and every event travels in the
//! post's outbox, delivered right after the write that caused it. Public copies of the media that the written state
//! no longer needs are removed right after it too.

use futures::future::join_all;
use shared::{
    domain::Post,
    ports::{StoreError, StoreResult},
};

use crate::{PublisherDeps, PublisherError};

/// Writes `change` applied to `current`. `None` when someone else wrote first (the caller lost the race and stops).
pub(crate) async fn write(
    deps: &PublisherDeps,
    current: &Post,
    change: impl FnOnce(&mut Post),
) -> Result<Option<Post>, PublisherError> {
    let mut next = current.clone();
    change(&mut next);
    next.version = current.version + 1;
    next.updated_at = deps.clock.now();
    match deps.stores.posts.update_post(&next, current.version).await {
        Ok(()) => Ok(Some(settle(deps, next).await?)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Like [`write`] for a post this worker holds (its lease): a lost compare-and-set (an outbox delivery, say) is
/// re-applied to the latest version as long as `still_ours` says the post is still this worker's, and brief store
/// outages are retried, because what is being saved (a publish id, upload progress) must not be lost.
pub(crate) async fn write_held(
    deps: &PublisherDeps,
    current: &Post,
    still_ours: impl Fn(&Post) -> bool,
    change: impl Fn(&mut Post),
) -> Result<Option<Post>, PublisherError> {
    let mut base = current.clone();
    let mut last_error = None;
    for attempt in 0u32..10 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(25u64 << attempt.min(7))).await;
        }
        let mut next = base.clone();
        change(&mut next);
        next.version = base.version + 1;
        next.updated_at = deps.clock.now();
        match deps.stores.posts.update_post(&next, base.version).await {
            Ok(()) => return Ok(Some(settle(deps, next).await?)),
            Err(StoreError::Conflict(_)) => match reload(deps, &base).await {
                Ok(Some(latest)) if still_ours(&latest) => base = latest,
                Ok(_) => return Ok(None),
                Err(e) => last_error = Some(e),
            },
            Err(e @ StoreError::Unavailable(_)) => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error
        .map(PublisherError::from)
        .unwrap_or(PublisherError::Contended))
}

async fn reload(deps: &PublisherDeps, post: &Post) -> StoreResult<Option<Post>> {
    deps.stores.posts.get_post(&post.id).await
}

/// Delivers the post's pending events (see [`shared::outbox`]).
async fn deliver_outbox(deps: &PublisherDeps, post: Post) -> Result<Post, PublisherError> {
    Ok(shared::outbox::deliver_outbox(deps.stores.posts.as_ref(), deps.events.as_ref(), post).await?)
}

/// What follows every write (and every look at a post another process moved): its events are delivered and the
/// public copies nothing needs any more are removed.
pub(crate) async fn settle(deps: &PublisherDeps, post: Post) -> Result<Post, PublisherError> {
    let post = deliver_outbox(deps, post).await?;
    Ok(withdraw_exposure(deps, post).await)
}

/// Removes the post's public copies once nothing needs them ([`Post::exposure_to_withdraw`]) and clears their list
/// with a compare-and-set. Best effort: a copy that could not be removed stays listed and the post stays due, so a
/// later look removes it (the bucket's lifecycle rule does a day later in any case); a lost compare-and-set leaves
/// the list to the next look, for which removing again is harmless.
async fn withdraw_exposure(deps: &PublisherDeps, post: Post) -> Post {
    if !post.exposure_to_withdraw() {
        return post;
    }
    let post_id = &post.id;
    let removals = join_all(post.publish.exposed.iter().map(|key| async move {
        match deps.blobs.delete(key).await {
            Ok(()) => None,
            Err(e) => {
                // Not the key: until removed it is a working URL to the media, and logs are read more widely.
                tracing::warn!(%post_id, error = %e, "public copy not removed; trying again later");
                Some(key.clone())
            }
        }
    }))
    .await;
    let mut next = post.clone();
    next.publish.exposed = removals.into_iter().flatten().collect();
    next.version = post.version + 1;
    next.updated_at = deps.clock.now();
    match deps.stores.posts.update_post(&next, post.version).await {
        Ok(()) => {
            tracing::info!(post_id = %post.id, left = next.publish.exposed.len(), "public copies removed");
            next
        }
        Err(e) => {
            tracing::info!(post_id = %post.id, error = %e, "public copies removed, their list left to the next look");
            post
        }
    }
}
