//! Today's design, "a sleeping Lambda per post", around the real `handle_due`: every minute the schedule tick (an
//! asynchronous publisher invocation) hands every post due within the next minute out as one `post.due` event, sent
//! by PutEvents; EventBridge invokes the publisher asynchronously once per event; each invocation sleeps until the
//! post's time (up to a minute) and publishes. A wait (a rate window, a 429, a tracking poll) is picked up by a later
//! tick. The tick is the model's, written as the dispatcher of the template in use until issue 10.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use publisher::{handle_due, Handled, PublisherDeps};
use shared::{
    ids::PostId,
    ports::{Timer, TimerError, Wakeup},
};
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
            invoke_async(publisher.clone(), AsyncRetries::Default, move |deps| {
                post_due(deps, post_id.clone())
            });
        }
        if page.len() < PAGE {
            return Ok(());
        }
        after = page.last().cloned();
    }
}

/// One `post.due` invocation: the real handler, with the invocation's deadline. Today's handler carried on with the
/// upload right after init; the timer's hands it to a delivery of its own (`Yielded` at once), so the model carries
/// on here, as today did.
async fn post_due(deps: Arc<PublisherDeps>, post_id: PostId) -> Result<(), ()> {
    let deadline = deps.clock.now() + chrono::Duration::from_std(PUBLISHER_TIMEOUT).map_err(|_| ())?;
    loop {
        // An error fails the invocation, and Lambda retries it.
        match handle_due(&deps, &post_id, deadline).await.map_err(|_| ())? {
            Handled::Yielded { resume_at } if resume_at <= deps.clock.now() => continue,
            _ => return Ok(()),
        }
    }
}

/// Today's design has no timer: a wakeup the code arms (an upload's watchdog) is dropped, and the tick finds the
/// post by its due time instead, as it did.
pub struct NoTimer;

#[async_trait::async_trait]
impl Timer for NoTimer {
    async fn schedule(&self, _wakeups: &[Wakeup], _now: DateTime<Utc>) -> Result<(), TimerError> {
        Ok(())
    }
}
