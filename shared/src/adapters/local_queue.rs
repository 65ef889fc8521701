//! A queue in memory on tokio's clock, as SQS behaves for the ports' in-process adapters (the timer, the media job
//! queue): a message becomes visible at its instant, at most `max` are handed out per receive, and one not
//! acknowledged within the redelivery delay (SQS's visibility timeout) is handed out again under a new receipt.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// One message handed out: `id` names it, `receipt` this hand-out (only the latest acknowledges it).
#[derive(Debug, Clone)]
pub(crate) struct Delivery<T> {
    pub id: String,
    pub receipt: String,
    pub body: T,
}

pub(crate) struct LocalQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for LocalQueue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    arrived: Notify,
    redeliver_after: Duration,
}

struct Queue<T> {
    /// By the instant they become visible, then by arrival.
    waiting: BTreeMap<(Instant, u64), T>,
    /// Received and not yet acknowledged: visible again at the instant.
    received: HashMap<String, (Instant, Delivery<T>)>,
    next_id: u64,
}

impl<T: Clone> LocalQueue<T> {
    pub fn new(redeliver_after: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    waiting: BTreeMap::new(),
                    received: HashMap::new(),
                    next_id: 0,
                }),
                arrived: Notify::new(),
                redeliver_after,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages sent and not yet acknowledged.
    pub fn backlog(&self) -> usize {
        let queue = self.lock();
        queue.waiting.len() + queue.received.len()
    }

    /// Adds each body, visible from its instant.
    pub fn send(&self, messages: impl IntoIterator<Item = (Instant, T)>) {
        {
            let mut queue = self.lock();
            for (visible_at, body) in messages {
                let seq = queue.next_id;
                queue.next_id += 1;
                queue.waiting.insert((visible_at, seq), body);
            }
        }
        self.shared.arrived.notify_waiters();
    }

    /// Up to `max` visible messages, waiting up to `wait` for the first.
    pub async fn receive(&self, wait: Duration, max: usize) -> Vec<Delivery<T>> {
        let give_up = Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait still wakes this receive.
            let arrived = self.shared.arrived.notified();
            let now = Instant::now();
            let next = match self.take_visible(now, max) {
                Ok(deliveries) => return deliveries,
                Err(next) => next,
            };
            if now >= give_up {
                return Vec::new();
            }
            let until = next.map_or(give_up, |next| next.min(give_up));
            tokio::select! {
                () = arrived => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Only the latest receipt counts: an old one belongs to a handling that SQS would consider timed out.
    pub fn acknowledge(&self, id: &str, receipt: &str) {
        let mut queue = self.lock();
        if queue
            .received
            .get(id)
            .is_some_and(|(_, latest)| latest.receipt == receipt)
        {
            queue.received.remove(id);
        }
    }

    /// Takes what is visible now, or says when the next message becomes visible.
    fn take_visible(&self, now: Instant, max: usize) -> Result<Vec<Delivery<T>>, Option<Instant>> {
        let mut queue = self.lock();
        let mut taken: Vec<Delivery<T>> = Vec::new();
        let expired: Vec<String> = queue
            .received
            .iter()
            .filter(|(_, (visible_at, _))| *visible_at <= now)
            .map(|(id, _)| id.clone())
            .take(max)
            .collect();
        for id in expired {
            if let Some((_, mut delivery)) = queue.received.remove(&id) {
                delivery.receipt = format!("{}#{}", delivery.id, queue.next_id);
                queue.next_id += 1;
                taken.push(delivery);
            }
        }
        while taken.len() < max {
            let Some(entry) = queue.waiting.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), body) = entry.remove_entry();
            let id = format!("local-{seq}");
            taken.push(Delivery {
                receipt: id.clone(),
                id,
                body,
            });
        }
        if taken.is_empty() {
            let next_waiting = queue.waiting.keys().next().map(|(at, _)| *at);
            let next_redelivery = queue.received.values().map(|(at, _)| *at).min();
            return Err(next_waiting.into_iter().chain(next_redelivery).min());
        }
        let visible_again = now + self.shared.redeliver_after;
        for delivery in &taken {
            queue
                .received
                .insert(delivery.id.clone(), (visible_again, delivery.clone()));
        }
        Ok(taken)
    }
}
