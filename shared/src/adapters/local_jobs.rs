//! The media job queue on one machine (the local runner, tests): jobs wait in memory, and one not acknowledged in
//! time is delivered again, as SQS does after its visibility timeout.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::local_queue::LocalQueue;
use crate::{
    media_jobs::MediaJob,
    ports::{JobDelivery, JobQueueError, MediaJobInbox, MediaJobQueue},
};

/// At most this many jobs per receive, as SQS's ReceiveMessage.
const JOBS_PER_RECEIVE: usize = 10;

#[derive(Clone)]
pub struct LocalMediaJobs {
    queue: LocalQueue<MediaJob>,
}

impl LocalMediaJobs {
    /// `redeliver_after` plays SQS's visibility timeout.
    pub fn new(redeliver_after: Duration) -> Self {
        Self {
            queue: LocalQueue::new(redeliver_after),
        }
    }
}

#[async_trait]
impl MediaJobQueue for LocalMediaJobs {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), JobQueueError> {
        self.queue.send([(Instant::now(), job.clone())]);
        Ok(())
    }
}

#[async_trait]
impl MediaJobInbox for LocalMediaJobs {
    async fn receive(&self, wait: Duration) -> Result<Vec<JobDelivery>, JobQueueError> {
        let deliveries = self.queue.receive(wait, JOBS_PER_RECEIVE).await;
        Ok(deliveries
            .into_iter()
            .map(|d| JobDelivery {
                id: d.id,
                receipt: d.receipt,
                job: d.body,
            })
            .collect())
    }

    async fn acknowledge(&self, delivery: &JobDelivery) -> Result<(), JobQueueError> {
        self.queue.acknowledge(&delivery.id, &delivery.receipt);
        Ok(())
    }
}
