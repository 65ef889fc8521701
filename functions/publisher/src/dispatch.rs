//! The schedule tick: every post due within the look-ahead (and every overdue one) is handed to a worker as one
//! `post.due` event. Handing a post out twice is harmless: workers claim posts with a compare-and-set.
//!
//! There is no cap per tick: the dispatcher pages through the whole due index, so a busy minute (most posts fall on
//! round times) never pushes posts to the next tick. Events go out a page at a time in concurrent batches; an entry
//! the bus refuses is counted and left due (the next tick, whose window overlaps, hands it out again) without
//! failing what was delivered.

use futures::{stream, StreamExt};
use serde_json::json;
use shared::{
    events::{Event, EventType},
    ports::{DueEntry, EventError},
};

use crate::{PublisherDeps, PublisherError};

/// Due entries read per store call.
const PAGE: usize = 1_000;
/// Events per `publish` call: the EventBridge sink splits them into PutEvents calls of ten and sends those at once.
const EVENTS_PER_PUBLISH: usize = 100;
/// `publish` calls in flight, so a page of 1,000 goes out as 10 calls of 10 PutEvents each, not 100 in series.
const PUBLISHES_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub handed_out: usize,
    /// Refused by the bus (or lost to its outage); still due, so the next tick hands them out again.
    pub not_delivered: usize,
}

pub async fn dispatch(deps: &PublisherDeps) -> Result<DispatchReport, PublisherError> {
    let now = deps.clock.now();
    let until = now + deps.settings.lookahead;
    let mut report = DispatchReport::default();
    let mut outage = None;
    let mut after: Option<DueEntry> = None;
    loop {
        let page = deps.stores.posts.due_posts(until, after.as_ref(), PAGE).await?;
        let Some(last) = page.last().cloned() else { break };
        let events: Vec<Event> = page
            .iter()
            .map(|entry| {
                Event::new(EventType::PostDue, entry.workspace_id.clone(), now)
                    .post(&entry.post_id)
                    .data(json!({ "dueAt": entry.due_at }))
            })
            .collect();
        // Owned batches: futures borrowing the page would not be `Send` for every lifetime the spawned task needs.
        let batches: Vec<Vec<Event>> = events.chunks(EVENTS_PER_PUBLISH).map(<[Event]>::to_vec).collect();
        let mut sends = stream::iter(batches)
            .map(|batch| {
                let sink = deps.events.clone();
                async move { (batch.len(), sink.publish(&batch).await) }
            })
            .buffer_unordered(PUBLISHES_IN_FLIGHT);
        while let Some((sent, outcome)) = sends.next().await {
            match outcome {
                Ok(()) => report.handed_out += sent,
                Err(EventError::NotDelivered { failed }) => {
                    report.handed_out += sent.saturating_sub(failed.len());
                    report.not_delivered += failed.len();
                }
                Err(error) => {
                    report.not_delivered += sent;
                    outage = Some(error);
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = Some(last);
    }
    if report.not_delivered > 0 {
        tracing::warn!(
            not_delivered = report.not_delivered,
            handed_out = report.handed_out,
            "some due posts were not handed out; they stay due for the next tick"
        );
    }
    // Nothing got through at all: fail the tick so that Lambda's retry (and the alarm on errors) see the outage.
    if let Some(error) = outage.filter(|_| report.handed_out == 0) {
        return Err(error.into());
    }
    tracing::info!(count = report.handed_out, "handed out due posts");
    Ok(report)
}
