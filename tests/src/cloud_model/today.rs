//! Today's design, "a sleeping Lambda per post", around the real `handle_due`: every minute the schedule tick (an
//! asynchronous publisher invocation) hands every post due within the next minute out as one `post.due` event, sent
//! by PutEvents; EventBridge invokes the publisher asynchronously once per event; each invocation sleeps until the
//! post's time (up to a minute) and publishes. A wait (a rate window, a 429, a tracking poll) is picked up by a later
//! tick. The tick is the model's, written as the dispatcher of the template in use until issue 10.

use std::sync::Arc;

use publisher::{handle_due, PublisherDeps};
use shared::ids::PostId;
use tokio::time::Instant;

use super::aws::{
    invoke_async, minute_schedule, AsyncRetries, Function, PUBLISHER_TIMEOUT, PUT_EVENTS_CALL, TICK_INTERVAL,
};

/// Today's dispatcher: due entries read per store call, events per sink call (split into PutEvents of 10 sent at
/// once), sink calls in flight (functions/publisher/src/dispatch.rs before issue 10).
const PAGE: usize = 1_000;
const EVENTS_PER_PUBLISH: usize = 100;
const PUBLISHES_IN_FLIGHT: usize = 4;

pub type Publisher = Arc<Function<Arc<PublisherDeps>>>;

/// Fires the schedule from `first_minute` on, forever.
pub async fn run(publisher: Publisher, first_minute: Instant) {
    let handed_out_by = publisher.clone();
    let tick = move |deps| tick(deps, handed_out_by.clone());
    minute_schedule(publisher, AsyncRetries::Default, first_minute, tick).await;
}

/// One tick: every post due within the next minute (and every overdue one) becomes a `post.due` invocation.
async fn tick(deps: Arc<PublisherDeps>, publisher: Publisher) -> Result<(), ()> {
    let until = deps.clock.now() + chrono::Duration::from_std(TICK_INTERVAL).map_err(|_| ())?;
    let mut after = None;
    loop {
        let page = deps
            .stores
            .posts
            .due_posts(until, after.as_ref(), PAGE)
            .await
            .map_err(|_| ())?;
        let publishes = page.len().div_ceil(EVENTS_PER_PUBLISH);
        let rounds = publishes.div_ceil(PUBLISHES_IN_FLIGHT);
        tokio::time::sleep(PUT_EVENTS_CALL * u32::try_from(rounds).unwrap_or(u32::MAX)).await;
        for entry in &page {
            let post_id = entry.post_id.clone();
            invoke_async(publisher.clone(), AsyncRetries::Default, move |deps| post_due(deps, post_id.clone()));
        }
        if page.len() < PAGE {
            return Ok(());
        }
        after = page.last().cloned();
    }
}

/// One `post.due` invocation: the real handler, with the invocation's deadline.
async fn post_due(deps: Arc<PublisherDeps>, post_id: PostId) -> Result<(), ()> {
    let deadline = deps.clock.now() + chrono::Duration::from_std(PUBLISHER_TIMEOUT).map_err(|_| ())?;
    // An error fails the invocation, and Lambda retries it.
    handle_due(&deps, &post_id, deadline).await.map(|_| ()).map_err(|_| ())
}
