//! The event contract: every published event arrives, once, unchanged.

use std::{collections::HashSet, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use shared::{
    events::{Event, EventType},
    ids::{AccountId, MediaId, PostId, WorkspaceId},
    ports::EventSink,
};

/// Where a test reads back what the sink delivered.
#[async_trait]
pub trait EventInbox: Send + Sync {
    /// Waits until `count` events have arrived or `within` has passed, and returns what arrived.
    async fn receive(&self, count: usize, within: Duration) -> anyhow::Result<Vec<Event>>;
}

const TYPES: [EventType; 12] = [
    EventType::MediaValidated,
    EventType::MediaRejected,
    EventType::PostScheduled,
    EventType::PostPublished,
    EventType::PostCompleted,
    EventType::PostFailed,
    EventType::PostNeedsReview,
    EventType::PostDeferred,
    EventType::PostRetried,
    EventType::PostResolved,
    EventType::PostCanceled,
    EventType::AccountReauthRequired,
];

fn sample_events(count: usize) -> Vec<Event> {
    let workspace = WorkspaceId::new();
    (0..count)
        .map(|n| {
            let event = Event::new(TYPES[n % TYPES.len()], workspace.clone(), Utc::now()).data(json!({ "n": n }));
            match n % 3 {
                0 => event.post(&PostId::new()),
                1 => event.media(&MediaId::new()),
                _ => event.account(&AccountId::new()),
            }
        })
        .collect()
}

/// Publishes 25 events (three PutEvents batches on EventBridge) and expects each back exactly once, unchanged.
/// Returns what it sent, for checks particular to one adapter.
pub async fn event_sink_contract(sink: &dyn EventSink, inbox: &dyn EventInbox) -> anyhow::Result<Vec<Event>> {
    sink.publish(&[]).await?;
    let sent = sample_events(25);
    sink.publish(&sent).await?;

    let received = inbox.receive(sent.len(), Duration::from_secs(20)).await?;
    let received_ids: Vec<String> = received.iter().map(|event| event.id.to_string()).collect();
    let unique: HashSet<&String> = received_ids.iter().collect();
    assert_eq!(unique.len(), received_ids.len(), "no event arrives twice");
    assert_eq!(received.len(), sent.len(), "every event arrives");
    for event in &sent {
        assert!(received.contains(event), "{} arrived unchanged", event.id);
    }
    Ok(sent)
}
