//! Timer deliveries: each wakeup names one post to look at. The posts of a batch are handled together with bounded
//! in-flight work (most of it is waiting on TikTok), each sleeping at most the lead before its instant, and each
//! handling arms the post's next wakeup: the end of a wait, the next status poll, the upload's own delivery.
//!
//! The next wakeups of posts that finish close together are armed together ([`ARMING_WINDOW`]): wakeups due in the
//! same second then travel in one message, so their uploads or polls later run in one invocation instead of one
//! invocation each. Lambda bills each invocation for its duration, whatever runs in it concurrently.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use futures::{stream, StreamExt};
use serde_json::{json, Value};
use shared::{
    ids::PostId,
    ports::{TimerDelivery, Wakeup},
    timer::decode_body,
};
use tokio::sync::{mpsc, oneshot};

use crate::{handle_due, PublisherDeps};

/// Posts handled at once in one invocation. Each holds at most one TikTok connection and a few KB, so the bound is
/// Lambda's 1,024 file descriptors, not memory; a batch of 10 messages carries up to 1,000 posts.
pub const POSTS_IN_FLIGHT: usize = 500;
/// Timer delays count whole seconds, rounded down: arming a second later makes a wakeup arrive at or after its instant.
const TIMER_ROUNDING: Duration = Duration::seconds(1);
/// A post whose handling hit a store or timer outage is looked at again this soon.
const RETRY_AFTER: Duration = Duration::seconds(10);
/// How long a next wakeup waits for others to travel with. Wakeups carry absolute instants, so waiting never moves
/// one; it only delays the acknowledgement of the delivery that armed it.
pub const ARMING_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// A next wakeup on its way to the arming task, and where to answer whether it was armed.
type ArmRequest = (Wakeup, oneshot::Sender<bool>);

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
    let (arm, requests) = mpsc::unbounded_channel::<ArmRequest>();
    // The looks own the only sender: once they are all done (and dropped), the arming task ends.
    let looks = stream::iter(posts)
        .map(move |(delivery_id, post_id)| {
            let arm = arm.clone();
            async move { look(deps, &post_id, deadline, &arm).await.then_some(delivery_id) }
        })
        .buffer_unordered(POSTS_IN_FLIGHT)
        .filter_map(|failed| async move { failed })
        .collect::<HashSet<String>>();
    let (failed, ()) = tokio::join!(looks, arm_in_groups(deps, requests));
    failed.into_iter().collect()
}

/// Arms the wakeups sent on `requests` a group at a time: the first one waits [`ARMING_WINDOW`] for others, then
/// all go in one `schedule` call, and each sender hears whether its wakeup was armed. Ends when every sender is gone.
async fn arm_in_groups(deps: &PublisherDeps, mut requests: mpsc::UnboundedReceiver<ArmRequest>) {
    while let Some(first) = requests.recv().await {
        let mut group = vec![first];
        let window = tokio::time::sleep(ARMING_WINDOW);
        tokio::pin!(window);
        loop {
            tokio::select! {
                next = requests.recv() => match next {
                    Some(request) => group.push(request),
                    None => break,
                },
                () = &mut window => break,
            }
        }
        let wakeups: Vec<Wakeup> = group.iter().map(|(wakeup, _)| wakeup.clone()).collect();
        let armed = match deps.timer.schedule(&wakeups, deps.clock.now()).await {
            Ok(()) => true,
            Err(e) => {
                // The schedule tick arms every due post again; the delivery comes again too, for a post due sooner.
                tracing::warn!(posts = wakeups.len(), error = %e, "next wakeups not armed");
                false
            }
        };
        for (_, answer) in group {
            // A looker that is gone no longer needs the answer.
            let _gone = answer.send(armed);
        }
    }
}

/// Handles one post and arms its next wakeup; true when nothing could be armed after an outage, so that the delivery
/// must come again.
async fn look(
    deps: &PublisherDeps,
    post_id: &PostId,
    deadline: DateTime<Utc>,
    arm: &mpsc::UnboundedSender<ArmRequest>,
) -> bool {
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
    // Beyond the dispatch window the schedule tick arms it as it comes near (the post is in the due index); arming it
    // now would only chain SQS's 15-minute maximum delay for as long as the post waits (a day for a daily cap,
    // months after a refresh-token renewal).
    if at > deps.clock.now() + deps.settings.dispatch_window {
        return false;
    }
    let wakeup = Wakeup {
        post_id: post_id.clone(),
        at,
    };
    let (answer, armed) = oneshot::channel();
    if arm.send((wakeup, answer)).is_err() {
        return true;
    }
    !armed.await.unwrap_or(false)
}

/// When to deliver the wakeup for `at`. Only a post's scheduled instant needs time before it (the lead, for
/// pre-flight, so that the init leaves on time); everything else arrives at or just after its instant (delays round
/// down to whole seconds) instead of early, so no invocation sleeps waiting for it: a status poll or an upload's next
/// step has nothing to prepare, and a post waiting for a rate window, TikTok or a token is late already, by a
/// margin the lead would shave by a fraction of a second at the price of a sleeping invocation per wait.
fn wake_at(deps: &PublisherDeps, handled: &crate::Handled, at: DateTime<Utc>) -> DateTime<Utc> {
    if handled.is_before_its_time() {
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
