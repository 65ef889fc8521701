//! The media job queue on one machine (the local runner, tests): jobs wait in memory, and one not acknowledged in
//! time is delivered again, as SQS does after its visibility timeout.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use tokio::{sync::Notify, time::Instant};

use crate::{
    media_jobs::MediaJob,
    ports::{JobDelivery, JobQueueError, MediaJobInbox, MediaJobQueue},
};

/// At most this many jobs per receive, as SQS's ReceiveMessage.
const JOBS_PER_RECEIVE: usize = 10;

#[derive(Clone)]
pub struct LocalMediaJobs {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    arrived: Notify,
    redeliver_after: Duration,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<JobDelivery>,
    /// Received and not yet acknowledged: visible again at the instant.
    received: HashMap<String, (Instant, JobDelivery)>,
    next_id: u64,
}

impl LocalMediaJobs {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what is visible now, or says when the next redelivery becomes visible.
    fn take_visible(&self, now: Instant) -> Result<Vec<JobDelivery>, Option<Instant>> {
        let mut queue = self.lock();
        let expired: Vec<String> = queue
            .received
            .iter()
            .filter(|(_, (visible_at, _))| *visible_at <= now)
            .map(|(id, _)| id.clone())
            .take(JOBS_PER_RECEIVE)
            .collect();
        let mut taken = Vec::new();
        for id in expired {
            if let Some((_, mut delivery)) = queue.received.remove(&id) {
                delivery.receipt = format!("{}#{}", delivery.id, queue.next_id);
                queue.next_id += 1;
                taken.push(delivery);
            }
        }
        while taken.len() < JOBS_PER_RECEIVE {
            let Some(delivery) = queue.waiting.pop_front() else {
                break;
            };
            taken.push(delivery);
        }
        if taken.is_empty() {
            return Err(queue.received.values().map(|(at, _)| *at).min());
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

#[async_trait]
impl MediaJobQueue for LocalMediaJobs {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), JobQueueError> {
        {
            let mut queue = self.lock();
            let id = format!("job-{}", queue.next_id);
            queue.next_id += 1;
            queue.waiting.push_back(JobDelivery {
                receipt: id.clone(),
                id,
                job: job.clone(),
            });
        }
        self.shared.arrived.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl MediaJobInbox for LocalMediaJobs {
    async fn receive(&self, wait: Duration) -> Result<Vec<JobDelivery>, JobQueueError> {
        let give_up = Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue between the look and the wait still wakes this receive.
            let arrived = self.shared.arrived.notified();
            let now = Instant::now();
            let next = match self.take_visible(now) {
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

    async fn acknowledge(&self, delivery: &JobDelivery) -> Result<(), JobQueueError> {
        let mut queue = self.lock();
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
