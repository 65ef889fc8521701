//! Delivering a post's outbox: the events a transition wrote into the post (with the same compare-and-set) are
//! published, then removed from it. Written together, an event is never lost between the state change and the bus;
//! a failed delivery leaves it in the outbox, and the post stays due until the publisher delivers it.

use std::collections::HashSet;

use crate::{
    domain::Post,
    ids::EventId,
    ports::{EventSink, PostRepo, StoreError, StoreResult},
};

/// How often removing delivered events is re-applied after losing a compare-and-set to another writer.
const REMOVE_ATTEMPTS: u32 = 10;

/// Publishes `post.outbox` and removes what was delivered; returns the post as last written (or read). A bus that
/// refuses leaves the outbox as it is (logged), which is not an error for the caller: the transition itself is saved.
pub async fn deliver_outbox(posts: &dyn PostRepo, events: &dyn EventSink, post: Post) -> StoreResult<Post> {
    if post.outbox.is_empty() {
        return Ok(post);
    }
    if let Err(error) = events.publish(&post.outbox).await {
        tracing::warn!(post_id = %post.id, error = %error, "events not delivered yet; they stay in the outbox");
        return Ok(post);
    }
    let sent: HashSet<EventId> = post.outbox.iter().map(|event| event.id.clone()).collect();
    let mut current = post;
    for _ in 0..REMOVE_ATTEMPTS {
        let mut next = current.clone();
        next.outbox.retain(|event| !sent.contains(&event.id));
        if next.outbox.len() == current.outbox.len() {
            return Ok(current);
        }
        next.version = current.version + 1;
        match posts.update_post(&next, current.version).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict(_)) => match posts.get_post(&current.id).await? {
                Some(latest) => current = latest,
                None => return Ok(next),
            },
            // Delivered but still listed: consumers dedupe by event id, and the next delivery removes them.
            Err(error) => {
                tracing::warn!(post_id = %current.id, error = %error, "delivered events not yet removed from the outbox");
                return Ok(current);
            }
        }
    }
    Ok(current)
}
