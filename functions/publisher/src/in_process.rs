//! The publisher on one machine (the local runner and the tests): the dispatcher ticks every `interval`, and the
//! timer's deliveries are handled as the Lambda's event source mapping would: one batch per task, acknowledged when
//! handled, delivered again when not. A post already being handled in this process is not handled again at once:
//! frequent local ticks arm every post several times, and the copies would only queue on the same store.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use shared::{
    ids::PostId,
    ports::{TimerDelivery, TimerInbox},
};
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
    let in_flight: Arc<Mutex<HashSet<PostId>>> = Arc::default();
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
                    let (deps, inbox, in_flight) = (deps.clone(), inbox.clone(), in_flight.clone());
                    workers.spawn(async move {
                        let deadline = deps.clock.now() + INVOCATION_BUDGET;
                        let (mine, taken) = take_posts(&in_flight, &deliveries);
                        let failed = handle_deliveries(&deps, &mine, deadline).await;
                        release_posts(&in_flight, &taken);
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

/// The deliveries without the posts another task of this process is handling, and the posts now taken by this one.
fn take_posts(in_flight: &Mutex<HashSet<PostId>>, deliveries: &[TimerDelivery]) -> (Vec<TimerDelivery>, Vec<PostId>) {
    let mut in_flight = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
    let mut taken = Vec::new();
    let mine = deliveries
        .iter()
        .map(|delivery| {
            let mut delivery = delivery.clone();
            delivery.wakeups.retain(|wakeup| {
                let first = in_flight.insert(wakeup.post_id.clone());
                if first {
                    taken.push(wakeup.post_id.clone());
                }
                first
            });
            delivery
        })
        .collect();
    (mine, taken)
}

fn release_posts(in_flight: &Mutex<HashSet<PostId>>, taken: &[PostId]) {
    let mut in_flight = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
    for post_id in taken {
        in_flight.remove(post_id);
    }
}
