//! The publisher on one machine (the local runner and the tests): the dispatcher ticks every `interval`, and every
//! `post.due` from the in-process bus is handled on its own task, as EventBridge invokes one Lambda per event. A post
//! already being handled is not handled twice at once here (in AWS the claim's compare-and-set sorts that out).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use shared::{
    events::{Event, EventType},
    ids::PostId,
};
use tokio::{
    sync::{mpsc::UnboundedReceiver, watch},
    task::JoinSet,
};

use crate::{dispatch, handle_due, PublisherDeps};

/// How long one handling may run, as a Lambda invocation's timeout would allow.
const INVOCATION_BUDGET: chrono::Duration = chrono::Duration::minutes(15);

pub async fn run(
    deps: Arc<PublisherDeps>,
    mut events: UnboundedReceiver<Event>,
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
            event = events.recv() => match event {
                None => break,
                Some(event) if event.event_type == EventType::PostDue => {
                    let Some(post_id) = event.post_id else { continue };
                    let first = in_flight.lock().map(|mut set| set.insert(post_id.clone())).unwrap_or(false);
                    if !first {
                        continue;
                    }
                    let (deps, in_flight) = (deps.clone(), in_flight.clone());
                    workers.spawn(async move {
                        let deadline = deps.clock.now() + INVOCATION_BUDGET;
                        match handle_due(&deps, &post_id, deadline).await {
                            Ok(handled) => tracing::debug!(%post_id, ?handled, "post.due handled"),
                            // As a failed invocation: the post stays due and the next tick hands it out again.
                            Err(e) => tracing::warn!(%post_id, error = %e, "post.due failed; will be retried"),
                        }
                        if let Ok(mut set) = in_flight.lock() {
                            set.remove(&post_id);
                        }
                    });
                }
                Some(_) => {}
            },
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
        }
    }
    workers.abort_all();
}
