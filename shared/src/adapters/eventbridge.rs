//! Events out through EventBridge PutEvents: source `postato`, detail type = the event type, detail = the event.

use async_trait::async_trait;
use aws_sdk_eventbridge::{primitives::DateTime as AwsDateTime, types::PutEventsRequestEntry, Client};
use futures::future::join_all;

use super::batch_send::{deliver_with_retries, BatchFailure};
use crate::{
    events::{Event, EVENT_SOURCE},
    ports::{BoxError, EventError, EventSink},
};

/// EventBridge takes at most 10 entries per PutEvents call.
const MAX_ENTRIES_PER_CALL: usize = 10;
#[derive(Clone, Debug)]
pub struct EventBridgeSink {
    client: Client,
    bus_name: String,
}

impl EventBridgeSink {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    fn entry(&self, event: &Event) -> Result<PutEventsRequestEntry, EventError> {
        let detail = serde_json::to_string(event).map_err(|e| EventError::Unavailable(Box::new(e)))?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(event.event_type.as_str())
            .detail(detail)
            .time(AwsDateTime::from_millis(event.occurred_at.timestamp_millis()))
            .build())
    }

    /// One PutEvents call; per entry, in order, whether EventBridge accepted it.
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<Vec<bool>, BoxError> {
        let sent = entries.len();
        let output = self.client.put_events().set_entries(Some(entries)).send().await?;
        if output.failed_entry_count() == 0 {
            return Ok(vec![true; sent]);
        }
        let results = output.entries();
        if results.len() != sent {
            // Without one result per entry we cannot tell which failed: count them all as failed and send again.
            return Ok(vec![false; sent]);
        }
        Ok(results.iter().map(|result| result.error_code().is_none()).collect())
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        let entries = events
            .iter()
            .map(|event| Ok((event.id.to_string(), self.entry(event)?)))
            .collect::<Result<Vec<_>, EventError>>()?;
        let batches = entries
            .chunks(MAX_ENTRIES_PER_CALL)
            .map(|batch| deliver_with_retries(batch.to_vec(), |entries| self.put_events(entries)));
        // Every batch runs to its end before reporting, so the error names every event that was not delivered.
        let mut refused = Vec::new();
        for outcome in join_all(batches).await {
            match outcome {
                Ok(()) => {}
                Err(BatchFailure::Refused(ids)) => refused.extend(ids),
                Err(BatchFailure::Unavailable(source)) => return Err(EventError::Unavailable(source)),
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(EventError::NotDelivered { failed: refused })
        }
    }
}
