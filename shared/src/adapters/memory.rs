//! Test doubles that other crates' unit tests share.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    events::Event,
    ports::{EventError, EventSink, Timer, TimerError, Wakeup},
};

/// Keeps every published event; can be told to refuse the next publishes, to test what callers do then.
#[derive(Default)]
pub struct RecordingEventSink {
    state: Mutex<Recording>,
}

#[derive(Default)]
struct Recording {
    events: Vec<Event>,
    publishes_to_refuse: usize,
}

impl RecordingEventSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event published so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// The next `publishes` calls fail with `NotDelivered` naming all their events, and record nothing.
    pub fn refuse_next(&self, publishes: usize) {
        self.lock().publishes_to_refuse = publishes;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventSink for RecordingEventSink {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        let mut state = self.lock();
        if state.publishes_to_refuse > 0 {
            state.publishes_to_refuse -= 1;
            return Err(EventError::NotDelivered {
                failed: events.iter().map(|event| event.id.to_string()).collect(),
            });
        }
        state.events.extend_from_slice(events);
        Ok(())
    }
}

/// A timer that only records what it was asked to arm: for tests that look at what a handler scheduled.
#[derive(Default)]
pub struct RecordingTimer {
    wakeups: Mutex<Vec<Wakeup>>,
}

impl RecordingTimer {
    /// Every wakeup armed so far, in order.
    pub fn wakeups(&self) -> Vec<Wakeup> {
        self.wakeups.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Timer for RecordingTimer {
    async fn schedule(&self, wakeups: &[Wakeup], _now: DateTime<Utc>) -> Result<(), TimerError> {
        self.wakeups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(wakeups);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{events::EventType, ids::WorkspaceId};

    #[tokio::test]
    async fn refused_publishes_record_nothing_and_later_ones_do() {
        let sink = RecordingEventSink::new();
        let event = Event::new(EventType::PostPublished, WorkspaceId::new(), Utc::now());
        sink.refuse_next(1);

        let refused = sink.publish(std::slice::from_ref(&event)).await;
        sink.publish(std::slice::from_ref(&event)).await.unwrap();

        assert!(matches!(refused, Err(EventError::NotDelivered { failed }) if failed == vec![event.id.to_string()]));
        assert_eq!(sink.events(), vec![event]);
    }
}
