//! The timer design around the real `dispatch` and `handle_deliveries`: the minute tick arms a wakeup for every post
//! due within two ticks; the timer is an SQS queue (here the in-memory `LocalTimer`, which keeps SQS's whole-second
//! delays, behind SQS's call latency); the event source mapping hands batches of up to 10 messages to publisher
//! invocations, scaling as AWS documents, capped by `MaximumConcurrency`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use publisher::{dispatch, handle_deliveries, PublisherDeps};
use shared::{
    adapters::local_timer::LocalTimer,
    ports::{Timer, TimerError, TimerInbox, Wakeup},
    timer::plan_messages,
};
use tokio::time::Instant;

use super::aws::{minute_schedule, AsyncRetries, Function, Throttled, PUBLISHER_TIMEOUT};

/// The event source mapping "starts with 5 concurrent batches" and "adds up to 300 concurrent invocations a minute"
/// (docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html): 5 more each second while every poller is busy.
pub const ESM_INITIAL_CONCURRENCY: usize = 5;
pub const ESM_SCALE_UP: usize = 5;
pub const ESM_SCALE_STEP: Duration = Duration::from_secs(1);
/// template.yaml, the publisher's `Wakeups` event: `ScalingConfig.MaximumConcurrency: 100`.
pub const ESM_MAXIMUM_CONCURRENCY: usize = 100;
/// template.yaml, PublisherFunction: `ReservedConcurrentExecutions: 110` (the mapping's 100 plus 10 for ticks).
pub const PUBLISHER_RESERVED: usize = 110;
/// Long polling: a ReceiveMessage waits up to 20 s for a message (SQS's maximum `WaitTimeSeconds`).
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// From a message becoming visible to its batch's invocation starting: the poller's receive returns at once, then
/// the mapping invokes. Assumption: 50 ms (AWS documents no figure).
pub const ESM_PICKUP: Duration = Duration::from_millis(50);
/// A batch the function's concurrency refused is tried again after this long. Assumption: 1 s (the reservation
/// above the mapping's maximum makes it rare).
pub const ESM_THROTTLE_BACKOFF: Duration = Duration::from_secs(1);
/// One SendMessageBatch call (at most 10 messages, aws-limits.md); the SQS adapter sends its calls 8 at a time.
/// Assumption: 20 ms within the Region.
pub const SEND_MESSAGE_BATCH_CALL: Duration = Duration::from_millis(20);
const MESSAGES_PER_CALL: usize = 10;
const CALLS_IN_FLIGHT: usize = 8;
/// template.yaml, TimerQueue: `VisibilityTimeout: 960`.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(960);

pub type Publisher = Arc<Function<Arc<PublisherDeps>>>;

/// The timer as the publisher's SQS adapter uses it: its SendMessageBatch calls take time, then SQS counts each
/// message's whole-second delay from when it arrived.
pub struct Sqs {
    pub queue: LocalTimer,
}

#[async_trait]
impl Timer for Sqs {
    async fn schedule(&self, wakeups: &[Wakeup], now: DateTime<Utc>) -> Result<(), TimerError> {
        let calls = plan_messages(wakeups, now).len().div_ceil(MESSAGES_PER_CALL);
        let rounds = calls.div_ceil(CALLS_IN_FLIGHT);
        tokio::time::sleep(SEND_MESSAGE_BATCH_CALL * u32::try_from(rounds).unwrap_or(u32::MAX)).await;
        self.queue.schedule(wakeups, now).await
    }
}

/// The schedule's ticks and the event source mapping on `queue`, forever.
pub async fn run(publisher: Publisher, queue: LocalTimer, first_minute: Instant, maximum_concurrency: usize) {
    let arm = |deps: Arc<PublisherDeps>| async move { dispatch(&deps).await.map(|_| ()).map_err(|_| ()) };
    tokio::spawn(minute_schedule(
        publisher.clone(),
        AsyncRetries::None,
        first_minute,
        arm,
    ));
    let mapping = Arc::new(Mapping {
        publisher,
        queue,
        pollers: Mutex::new(Pollers::default()),
    });
    for _ in 0..ESM_INITIAL_CONCURRENCY {
        mapping.clone().add_poller();
    }
    let mut step = tokio::time::interval(ESM_SCALE_STEP);
    loop {
        step.tick().await;
        let add = {
            let pollers = mapping.lock();
            if pollers.busy == pollers.running {
                ESM_SCALE_UP.min(maximum_concurrency.saturating_sub(pollers.running))
            } else {
                0
            }
        };
        for _ in 0..add {
            mapping.clone().add_poller();
        }
    }
}

struct Mapping {
    publisher: Publisher,
    queue: LocalTimer,
    pollers: Mutex<Pollers>,
}

#[derive(Default)]
struct Pollers {
    running: usize,
    /// Pollers whose batch is being handled (or waiting out a throttle).
    busy: usize,
}

impl Mapping {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pollers> {
        self.pollers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_poller(self: Arc<Self>) {
        self.lock().running += 1;
        tokio::spawn(async move { self.poll().await });
    }

    /// One concurrent batch: receive, invoke, delete what succeeded; an idle poller beyond the first five retires,
    /// as the mapping scales down when the queue is empty.
    async fn poll(&self) {
        loop {
            // The in-memory queue never fails; an empty answer is an idle poll either way.
            let deliveries = self.queue.receive(LONG_POLL).await.unwrap_or_default();
            if deliveries.is_empty() {
                let mut pollers = self.lock();
                if pollers.running > ESM_INITIAL_CONCURRENCY {
                    pollers.running -= 1;
                    return;
                }
                continue;
            }
            self.lock().busy += 1;
            tokio::time::sleep(ESM_PICKUP).await;
            let failed = loop {
                let batch = &deliveries;
                let handled = self
                    .publisher
                    .invoke(|deps| async move {
                        let deadline =
                            deps.clock.now() + chrono::Duration::from_std(PUBLISHER_TIMEOUT).unwrap_or_default();
                        handle_deliveries(&deps, batch, deadline).await
                    })
                    .await;
                match handled {
                    Ok(failed) => break failed.into_iter().collect::<HashSet<String>>(),
                    Err(Throttled) => tokio::time::sleep(ESM_THROTTLE_BACKOFF).await,
                }
            };
            // ReportBatchItemFailures: the failed messages stay and come back after the visibility timeout.
            for delivery in deliveries.iter().filter(|d| !failed.contains(&d.id)) {
                let _deleted = self.queue.acknowledge(delivery).await;
            }
            self.lock().busy -= 1;
        }
    }
}
