//! Timer deliveries: each wakeup names one post to look at. The posts of a batch are handled together with bounded
//! in-flight work (most of it is waiting on TikTok), each sleeping at most the lead before its instant, and each
//! handling arms the post's next wakeup at once: the end of a wait, the next status poll, the upload's own delivery.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use futures::{stream, StreamExt};
use serde_json::{json, Value};
use shared::{
    ids::PostId,
    ports::{TimerDelivery, Wakeup},
    timer::decode_body,
};

use crate::{handle_due, PublisherDeps};

/// Posts handled at once in one invocation. Each holds at most one TikTok connection and a few KB, so the bound is
/// Lambda's 1,024 file descriptors, not memory; a batch of 10 messages carries up to 1,000 posts.
pub const POSTS_IN_FLIGHT: usize = 500;
/// Timer delays count whole seconds, rounded down: arming a second later makes a wakeup arrive at or after its instant.
const TIMER_ROUNDING: Duration = Duration::seconds(1);
/// A post whose handling hit a store or timer outage is looked at again this soon.
const RETRY_AFTER: Duration = Duration::seconds(10);

/// Handles every post of `deliveries`; answers the ids of the deliveries that must come again (a post whose
/// outage could not even be answered with a later wakeup).
pub async fn handle_deliveries(
    deps: &PublisherDeps,
    deliveries: &[TimerDelivery],
    deadline: DateTime<Utc>,
) -> Vec<String> {
    // The ticks' windows overlap, so one post often arrives twice in a batch: one look is enough. Owned pairs: a
    // stream of borrowed ones would not be `Send` for every lifetime a spawned batch needs.
    let mut seen: HashSet<PostId> = HashSet::new();
    let posts: Vec<(String, PostId)> = deliveries
        .iter()
        .flat_map(|delivery| {
            delivery
                .wakeups
                .iter()
                .map(move |w| (delivery.id.clone(), w.post_id.clone()))
        })
        .filter(|(_, post_id)| seen.insert(post_id.clone()))
        .collect();
    let failed: HashSet<String> = stream::iter(posts)
        .map(|(delivery_id, post_id)| async move { look(deps, &post_id, deadline).await.then_some(delivery_id) })
        .buffer_unordered(POSTS_IN_FLIGHT)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    failed.into_iter().collect()
}

/// Handles one post and arms its next wakeup; true when nothing could be armed after an outage, so that the delivery
/// must come again.
async fn look(deps: &PublisherDeps, post_id: &PostId, deadline: DateTime<Utc>) -> bool {
    let next = match handle_due(deps, post_id, deadline).await {
        Ok(handled) => {
            tracing::debug!(%post_id, ?handled, "wakeup handled");
            handled.next_look().map(|at| wake_at(deps, &handled, at))
        }
        Err(e) => {
            tracing::warn!(%post_id, error = %e, "wakeup failed; looking again shortly");
            Some(deps.clock.now() + RETRY_AFTER)
        }
    };
    let Some(at) = next else { return false };
    let wakeup = Wakeup {
        post_id: post_id.clone(),
        at,
    };
    match deps.timer.schedule(&[wakeup], deps.clock.now()).await {
        Ok(()) => false,
        Err(e) => {
            // The schedule tick arms every due post again; the delivery comes again too, for a post due sooner.
            tracing::warn!(%post_id, error = %e, "next wakeup not armed");
            true
        }
    }
}

/// When to deliver the wakeup for `at`. Only an init needs time before its instant (the lead, for pre-flight); a
/// status poll or an upload's next step has nothing to prepare, so it arrives at or just after its instant (delays
/// round down to whole seconds) instead of early, and no invocation sleeps waiting for it.
fn wake_at(deps: &PublisherDeps, handled: &crate::Handled, at: DateTime<Utc>) -> DateTime<Utc> {
    if handled.leads_to_an_init() {
        at - deps.settings.lead
    } else {
        at + TIMER_ROUNDING
    }
}

/// The SQS event source mapping's batch: `{"Records": [{"messageId", "receiptHandle", "body"}, ...]}`, answered with
/// `{"batchItemFailures": [{"itemIdentifier": messageId}]}` (the mapping's `ReportBatchItemFailures`). A message
/// that is not a timer message is logged and dropped: delivering it again could never succeed.
pub async fn handle_sqs_batch(deps: &PublisherDeps, event: &Value, deadline: DateTime<Utc>) -> Value {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let deliveries: Vec<TimerDelivery> = records
        .iter()
        .filter_map(|record| {
            let id = record.get("messageId").and_then(Value::as_str)?.to_owned();
            let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
            match decode_body(body) {
                Ok(wakeups) => Some(TimerDelivery {
                    receipt: record
                        .get("receiptHandle")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    id,
                    wakeups,
                }),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "dropped a message that is not a timer message");
                    None
                }
            }
        })
        .collect();
    let failed = handle_deliveries(deps, &deliveries, deadline).await;
    json!({ "batchItemFailures": failed.iter().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>() })
}
