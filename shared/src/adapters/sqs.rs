//! The timer in AWS: an SQS standard queue whose messages carry wakeups and wait out their delay (up to 15 minutes)
//! in the queue, so nothing runs (or bills) until a post must be looked at. The publisher consumes it through a
//! Lambda event source mapping; [`TimerInbox`] is the same consumption for a process that polls (the runner with
//! `--backend aws`, the contract suite). [`SqsMediaJobs`] is the media worker's queue: one job a message, no delay.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::{
    types::{Message, SendMessageBatchRequestEntry},
    Client,
};
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt};

use super::batch_send::{deliver_with_retries, BatchFailure};
use crate::{
    ids::PostId,
    media_jobs::{decode_job, encode_job, MediaJob},
    ports::{
        BoxError, JobDelivery, JobQueueError, MediaJobInbox, MediaJobQueue, Timer, TimerDelivery, TimerError,
        TimerInbox, Wakeup,
    },
    timer::{decode_body, encode_body, plan_messages},
};

/// SQS takes at most 10 entries per SendMessageBatch and returns at most 10 messages per receive.
const MAX_ENTRIES_PER_CALL: usize = 10;
/// Batch calls in flight: a tick arming 10,000 posts due in one second sends 100 messages, i.e. 10 calls.
const CALLS_IN_FLIGHT: usize = 8;
/// SQS's longest long poll.
const MAX_WAIT_SECONDS: u64 = 20;

#[derive(Clone, Debug)]
pub struct SqsTimer {
    client: Client,
    queue_url: String,
}

impl SqsTimer {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// One SendMessageBatch; per entry, in order, whether SQS accepted it.
    async fn send_batch(&self, entries: Vec<SendMessageBatchRequestEntry>) -> Result<Vec<bool>, BoxError> {
        let ids: Vec<String> = entries.iter().map(|entry| entry.id().to_owned()).collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        let accepted: std::collections::HashSet<&str> = output.successful().iter().map(|ok| ok.id()).collect();
        Ok(ids.iter().map(|id| accepted.contains(id.as_str())).collect())
    }
}

#[async_trait]
impl Timer for SqsTimer {
    async fn schedule(&self, wakeups: &[Wakeup], now: DateTime<Utc>) -> Result<(), TimerError> {
        let messages = plan_messages(wakeups, now);
        let mut entries = Vec::with_capacity(messages.len());
        for (n, message) in messages.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(n.to_string())
                .message_body(encode_body(&message.wakeups))
                .delay_seconds(i32::try_from(message.delay_seconds).unwrap_or(i32::MAX))
                .build()
                .map_err(|e| TimerError::Unavailable(Box::new(e)))?;
            entries.push((n.to_string(), entry));
        }
        let batches: Vec<Vec<(String, SendMessageBatchRequestEntry)>> =
            entries.chunks(MAX_ENTRIES_PER_CALL).map(<[_]>::to_vec).collect();
        let outcomes: Vec<Result<(), BatchFailure>> = stream::iter(batches)
            .map(|batch| deliver_with_retries(batch, |entries| self.send_batch(entries)))
            .buffer_unordered(CALLS_IN_FLIGHT)
            .collect()
            .await;
        let mut failed: Vec<PostId> = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(()) => {}
                Err(BatchFailure::Refused(ids)) => {
                    for id in ids {
                        let message = id.parse::<usize>().ok().and_then(|n| messages.get(n));
                        failed.extend(
                            message
                                .into_iter()
                                .flat_map(|m| m.wakeups.iter().map(|w| w.post_id.clone())),
                        );
                    }
                }
                Err(BatchFailure::Unavailable(source)) => return Err(TimerError::Unavailable(source)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(TimerError::NotScheduled { failed })
        }
    }
}

#[async_trait]
impl TimerInbox for SqsTimer {
    async fn receive(&self, wait: Duration) -> Result<Vec<TimerDelivery>, TimerError> {
        let messages = receive_messages(&self.client, &self.queue_url, wait)
            .await
            .map_err(TimerError::Unavailable)?;
        Ok(messages
            .iter()
            .map(|message| {
                let body = message.body().unwrap_or_default();
                TimerDelivery {
                    id: message.message_id().unwrap_or_default().to_owned(),
                    receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                    // A body that is not ours has no post to wake: delivered empty, acknowledged, gone.
                    wakeups: decode_body(body).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "a timer message without wakeups; dropped");
                        Vec::new()
                    }),
                }
            })
            .collect())
    }

    async fn acknowledge(&self, delivery: &TimerDelivery) -> Result<(), TimerError> {
        delete_message(&self.client, &self.queue_url, &delivery.receipt)
            .await
            .map_err(TimerError::Unavailable)
    }
}

/// The media worker's queue (`MEDIA_JOBS_QUEUE_URL`): one [`MediaJob`] a message, consumed by the worker's event
/// source mapping; [`MediaJobInbox`] is the same consumption for a process that polls (the contract suite).
#[derive(Clone, Debug)]
pub struct SqsMediaJobs {
    client: Client,
    queue_url: String,
}

impl SqsMediaJobs {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl MediaJobQueue for SqsMediaJobs {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), JobQueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(encode_job(job))
            .send()
            .await
            .map_err(|e| JobQueueError::Unavailable(Box::new(e)))?;
        Ok(())
    }
}

#[async_trait]
impl MediaJobInbox for SqsMediaJobs {
    async fn receive(&self, wait: Duration) -> Result<Vec<JobDelivery>, JobQueueError> {
        let messages = receive_messages(&self.client, &self.queue_url, wait)
            .await
            .map_err(JobQueueError::Unavailable)?;
        Ok(messages
            .iter()
            .filter_map(|message| {
                let id = message.message_id().unwrap_or_default().to_owned();
                match decode_job(message.body().unwrap_or_default()) {
                    Ok(job) => Some(JobDelivery {
                        id,
                        receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                        job,
                    }),
                    // Left unacknowledged: the queue's redrive policy sets it aside for a person to look at.
                    Err(e) => {
                        tracing::warn!(message_id = %id, error = %e, "a message that is not a media job; skipped");
                        None
                    }
                }
            })
            .collect())
    }

    async fn acknowledge(&self, delivery: &JobDelivery) -> Result<(), JobQueueError> {
        delete_message(&self.client, &self.queue_url, &delivery.receipt)
            .await
            .map_err(JobQueueError::Unavailable)
    }
}

/// One long poll of up to 10 messages, for the processes that consume a queue themselves.
async fn receive_messages(client: &Client, queue_url: &str, wait: Duration) -> Result<Vec<Message>, BoxError> {
    let wait_seconds = wait.as_secs().min(MAX_WAIT_SECONDS);
    let output = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(MAX_ENTRIES_PER_CALL as i32)
        .wait_time_seconds(i32::try_from(wait_seconds).unwrap_or(0))
        .send()
        .await?;
    Ok(output.messages.unwrap_or_default())
}

async fn delete_message(client: &Client, queue_url: &str, receipt: &str) -> Result<(), BoxError> {
    client
        .delete_message()
        .queue_url(queue_url)
        .receipt_handle(receipt)
        .send()
        .await?;
    Ok(())
}
