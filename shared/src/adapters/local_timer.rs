//! The timer on one machine (the local runner, tests, the cloud model): deliveries wait in memory on tokio's clock,
//! and one not acknowledged in time is delivered again, as SQS does after its visibility timeout.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::local_queue::LocalQueue;
use crate::{
    ports::{Timer, TimerDelivery, TimerError, TimerInbox, Wakeup},
    timer::plan_messages,
};

/// At most this many deliveries per receive, as SQS's ReceiveMessage (and so a batch of the event source mapping).
pub const DELIVERIES_PER_RECEIVE: usize = 10;

#[derive(Clone)]
pub struct LocalTimer {
    queue: LocalQueue<Vec<Wakeup>>,
}

impl LocalTimer {
    /// `redeliver_after` plays SQS's visibility timeout.
    pub fn new(redeliver_after: Duration) -> Self {
        Self {
            queue: LocalQueue::new(redeliver_after),
        }
    }

    /// Deliveries scheduled and not yet acknowledged.
    pub fn backlog(&self) -> usize {
        self.queue.backlog()
    }
}

#[async_trait]
impl Timer for LocalTimer {
    async fn schedule(&self, wakeups: &[Wakeup], now: DateTime<Utc>) -> Result<(), TimerError> {
        let start = Instant::now();
        self.queue.send(plan_messages(wakeups, now).into_iter().map(|message| {
            let visible_at = start + Duration::from_secs(u64::from(message.delay_seconds));
            (visible_at, message.wakeups)
        }));
        Ok(())
    }
}

#[async_trait]
impl TimerInbox for LocalTimer {
    async fn receive(&self, wait: Duration) -> Result<Vec<TimerDelivery>, TimerError> {
        let deliveries = self.queue.receive(wait, DELIVERIES_PER_RECEIVE).await;
        Ok(deliveries
            .into_iter()
            .map(|d| TimerDelivery {
                id: d.id,
                receipt: d.receipt,
                wakeups: d.body,
            })
            .collect())
    }

    async fn acknowledge(&self, delivery: &TimerDelivery) -> Result<(), TimerError> {
        self.queue.acknowledge(&delivery.id, &delivery.receipt);
        Ok(())
    }
}
