//! The publisher on one machine (the local runner and the tests): the dispatcher ticks every `interval`, and the
//! timer's deliveries are handled as the Lambda's event source mapping would: one batch per task, acknowledged when
//! handled, delivered again when not.

use std::{sync::Arc, time::Duration};

use shared::ports::TimerInbox;
use tokio::{sync::watch, task::JoinSet};

use crate::{dispatch, handle_deliveries, PublisherDeps};

/// How long one batch may run, as a Lambda invocation's timeout would allow.
const INVOCATION_BUDGET: chrono::Duration = chrono::Duration::minutes(15);
/// How long one receive waits for a delivery before the loop looks at its other duties.
const RECEIVE_WAIT: Duration = Duration::from_millis(500);

pub async fn run(
    deps: Arc<PublisherDeps>,
    inbox: Arc<dyn TimerInbox>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut workers = JoinSet::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // The guard `wait_for` returns is not Send: drop it inside the branch's future.
            _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => break,
            _ = tick.tick() => {
                if let Err(e) = dispatch(&deps).await {
                    tracing::warn!(error = %e, "dispatch failed; the next tick tries again");
                }
            }
            received = inbox.receive(RECEIVE_WAIT) => match received {
                Ok(deliveries) if !deliveries.is_empty() => {
                    let (deps, inbox) = (deps.clone(), inbox.clone());
                    workers.spawn(async move {
                        let deadline = deps.clock.now() + INVOCATION_BUDGET;
                        let failed = handle_deliveries(&deps, &deliveries, deadline).await;
                        for delivery in deliveries.iter().filter(|d| !failed.contains(&d.id)) {
                            if let Err(e) = inbox.acknowledge(delivery).await {
                                tracing::warn!(error = %e, "delivery not acknowledged; it will come again");
                            }
                        }
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "timer unavailable; trying again");
                    tokio::time::sleep(RECEIVE_WAIT).await;
                }
            },
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
    }
    workers.abort_all();
}
