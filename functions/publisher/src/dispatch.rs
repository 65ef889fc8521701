//! The schedule tick: every post due within the look-ahead (and every overdue one) is handed to a worker as one
//! `post.due` event. Handing a post out twice is harmless: workers claim posts with a compare-and-set.

use serde_json::json;
use shared::events::{Event, EventType};

use crate::{PublisherDeps, PublisherError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchReport {
    pub handed_out: usize,
}

pub async fn dispatch(deps: &PublisherDeps) -> Result<DispatchReport, PublisherError> {
    let now = deps.clock.now();
    let due = deps
        .stores
        .posts
        .due_posts(now + deps.settings.lookahead, deps.settings.dispatch_limit)
        .await?;
    if due.is_empty() {
        return Ok(DispatchReport { handed_out: 0 });
    }
    let events: Vec<Event> = due
        .iter()
        .map(|entry| {
            Event::new(EventType::PostDue, entry.workspace_id.clone(), now)
                .post(&entry.post_id)
                .data(json!({ "dueAt": entry.due_at }))
        })
        .collect();
    // The sink batches by ten and names any entry it could not deliver; the next tick hands those out again.
    deps.events.publish(&events).await?;
    tracing::info!(count = events.len(), "handed out due posts");
    Ok(DispatchReport {
        handed_out: events.len(),
    })
}
