//! The timer on one machine (the local runner, tests, the cloud model): deliveries wait in memory on tokio's clock,
//! and one not acknowledged in time is delivered again, as SQS does after its visibility timeout.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::{sync::Notify, time::Instant};

use crate::{
    ports::{Timer, TimerDelivery, TimerError, TimerInbox, Wakeup},
    timer::plan_messages,
};

/// At most this many deliveries per receive, as SQS's ReceiveMessage (and so a batch of the event source mapping).
pub const DELIVERIES_PER_RECEIVE: usize = 10;

#[derive(Clone)]
pub struct LocalTimer {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    arrived: Notify,
    redeliver_after: Duration,
}

#[derive(Default)]
struct Queue {
    /// By the instant they become visible, then by arrival.
    waiting: BTreeMap<(Instant, u64), Vec<Wakeup>>,
    /// Received and not yet acknowledged: visible again at the instant.
    received: HashMap<String, (Instant, TimerDelivery)>,
    next_id: u64,
}

impl LocalTimer {
    /// `redeliver_after` plays SQS's visibility timeout.
    pub fn new(redeliver_after: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::default(),
                arrived: Notify::new(),
                redeliver_after,
            }),
        }
    }

    /// Deliveries scheduled and not yet acknowledged.
    pub fn backlog(&self) -> usize {
        let queue = self.shared.lock();
        queue.waiting.len() + queue.received.len()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what is visible now, or says when the next delivery becomes visible.
    fn take_visible(&self, now: Instant) -> Result<Vec<TimerDelivery>, Option<Instant>> {
        let mut queue = self.lock();
        let mut taken: Vec<TimerDelivery> = Vec::new();
        let expired: Vec<String> = queue
            .received
            .iter()
            .filter(|(_, (visible_at, _))| *visible_at <= now)
            .map(|(id, _)| id.clone())
            .take(DELIVERIES_PER_RECEIVE)
            .collect();
        for id in expired {
            if let Some((_, mut delivery)) = queue.received.remove(&id) {
                delivery.receipt = format!("{}#{}", delivery.id, queue.next_id);
                queue.next_id += 1;
                taken.push(delivery);
            }
        }
        while taken.len() < DELIVERIES_PER_RECEIVE {
            let Some(entry) = queue.waiting.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), wakeups) = entry.remove_entry();
            let id = format!("local-{seq}");
            taken.push(TimerDelivery {
                receipt: id.clone(),
                id,
                wakeups,
            });
        }
        if taken.is_empty() {
            let next_waiting = queue.waiting.keys().next().map(|(at, _)| *at);
            let next_redelivery = queue.received.values().map(|(at, _)| *at).min();
            return Err(next_waiting.into_iter().chain(next_redelivery).min());
        }
        let visible_again = now + self.redeliver_after;
        for delivery in &taken {
            queue
                .received
                .insert(delivery.id.clone(), (visible_again, delivery.clone()));
        }
        Ok(taken)
    }
}

#[async_trait]
impl Timer for LocalTimer {
    async fn schedule(&self, wakeups: &[Wakeup], now: DateTime<Utc>) -> Result<(), TimerError> {
        let start = Instant::now();
        {
            let mut queue = self.shared.lock();
            for message in plan_messages(wakeups, now) {
                let seq = queue.next_id;
                queue.next_id += 1;
                let visible_at = start + Duration::from_secs(u64::from(message.delay_seconds));
                queue.waiting.insert((visible_at, seq), message.wakeups);
            }
        }
        self.shared.arrived.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl TimerInbox for LocalTimer {
    async fn receive(&self, wait: Duration) -> Result<Vec<TimerDelivery>, TimerError> {
        let give_up = Instant::now() + wait;
        loop {
            // Registered before looking, so a schedule between the look and the wait still wakes this receive.
            let arrived = self.shared.arrived.notified();
            let now = Instant::now();
            let next = match self.shared.take_visible(now) {
                Ok(deliveries) => return Ok(deliveries),
                Err(next) => next,
            };
            if now >= give_up {
                return Ok(Vec::new());
            }
            let until = next.map_or(give_up, |next| next.min(give_up));
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn acknowledge(&self, delivery: &TimerDelivery) -> Result<(), TimerError> {
        let mut queue = self.shared.lock();
        // Only the latest receipt counts: an old one belongs to a handling that SQS would consider timed out.
        if queue
            .received
            .get(&delivery.id)
            .is_some_and(|(_, latest)| latest.receipt == delivery.receipt)
        {
            queue.received.remove(&delivery.id);
        }
        Ok(())
    }
}
