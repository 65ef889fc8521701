//! Events out through EventBridge PutEvents: source `postato`, detail type = the event type, detail = the event.

use std::{future::Future, time::Duration};

use async_trait::async_trait;
use aws_sdk_eventbridge::{primitives::DateTime as AwsDateTime, types::PutEventsRequestEntry, Client};
use futures::future::join_all;

use crate::{
    events::{Event, EVENT_SOURCE},
    ports::{BoxError, EventError, EventSink},
};

/// EventBridge takes at most 10 entries per PutEvents call.
const MAX_ENTRIES_PER_CALL: usize = 10;
/// Entries EventBridge refused (throttled, internal failure) are sent again this many times in all.
const MAX_ATTEMPTS: u32 = 3;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);

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

/// Why a batch did not get through.
enum BatchFailure {
    /// EventBridge refused these event ids on every attempt.
    Refused(Vec<String>),
    /// The call itself failed (after the SDK's own retries).
    Unavailable(BoxError),
}

/// Sends `entries` (each with its event id) and re-sends only those refused, with a doubling delay, up to
/// [`MAX_ATTEMPTS`] calls.
async fn deliver_with_retries<T, F, Fut>(mut pending: Vec<(String, T)>, put: F) -> Result<(), BatchFailure>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<bool>, BoxError>>,
{
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=MAX_ATTEMPTS {
        let accepted = put(pending.iter().map(|(_, entry)| entry.clone()).collect())
            .await
            .map_err(BatchFailure::Unavailable)?;
        let mut flags = accepted.into_iter();
        // A missing flag counts as refused, so a short answer can never drop an entry.
        pending.retain(|_| !flags.next().unwrap_or(false));
        if pending.is_empty() {
            return Ok(());
        }
        if attempt < MAX_ATTEMPTS {
            tracing::warn!(
                refused = pending.len(),
                attempt,
                "EventBridge refused some entries; sending them again"
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(BatchFailure::Refused(pending.into_iter().map(|(id, _)| id).collect()))
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn entries(count: usize) -> Vec<(String, usize)> {
        (0..count).map(|n| (format!("evt_{n}"), n)).collect()
    }

    #[tokio::test]
    async fn only_refused_entries_are_sent_again() {
        let calls = Mutex::new(Vec::new());
        let result = deliver_with_retries(entries(4), |batch: Vec<usize>| {
            calls.lock().unwrap().push(batch.clone());
            let first_call = calls.lock().unwrap().len() == 1;
            // The first call refuses entries 1 and 3; the second accepts everything.
            async move { Ok(batch.iter().map(|n| !first_call || n % 2 == 0).collect()) }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1, 2, 3], vec![1, 3]]);
    }

    #[tokio::test]
    async fn entries_refused_on_every_attempt_are_named() {
        let calls = Mutex::new(0);
        let result = deliver_with_retries(entries(3), |batch: Vec<usize>| {
            *calls.lock().unwrap() += 1;
            async move { Ok(batch.iter().map(|n| *n != 2).collect()) }
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Refused(ids)) if ids == vec!["evt_2".to_owned()]));
        assert_eq!(*calls.lock().unwrap(), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_short_answer_counts_the_missing_entries_as_refused() {
        // One flag short on every call: the last entry of each batch never gets an answer.
        let result = deliver_with_retries(entries(2), |batch: Vec<usize>| async move {
            Ok(vec![true; batch.len() - 1])
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Refused(ids)) if ids == vec!["evt_1".to_owned()]));
    }

    #[tokio::test]
    async fn a_failed_call_is_reported_with_its_cause() {
        let result = deliver_with_retries(entries(1), |_batch: Vec<usize>| async move {
            Err::<Vec<bool>, BoxError>("connection refused".into())
        })
        .await;
        assert!(matches!(result, Err(BatchFailure::Unavailable(e)) if e.to_string() == "connection refused"));
    }
}
