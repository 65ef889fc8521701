//! The timer contract: a wakeup is delivered no earlier than its whole second and soon after, wakeups due together
//! travel together in bounded messages, and a delivery that is not acknowledged comes again (SQS's visibility
//! timeout; the event source mapping's reported batch item failures).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use shared::{
    ids::PostId,
    ports::{Timer, TimerDelivery, TimerInbox, Wakeup},
    timer::WAKEUPS_PER_MESSAGE,
};

/// How late a delivery may be on a loaded test machine (moto polls its delayed messages).
const SLACK: Duration = Duration::from_secs(3);

/// Runs every part of the contract. `redelivery` is the adapter's visibility timeout, set short by the fixture.
pub async fn timer_contract<T: Timer + TimerInbox>(timer: &T, redelivery: Duration) -> anyhow::Result<()> {
    timer.schedule(&[], Utc::now()).await?;
    delays_are_honoured(timer).await?;
    wakeups_due_together_travel_together(timer).await?;
    unacknowledged_deliveries_come_again(timer, redelivery).await?;
    Ok(())
}

/// Receives until `wanted` distinct posts have arrived or `within` has passed, acknowledging each delivery at once
/// when `acknowledge` (else a short visibility timeout would bring it back before the others arrive).
async fn receive_until<T: TimerInbox>(
    timer: &T,
    wanted: usize,
    within: Duration,
    acknowledge: bool,
) -> anyhow::Result<Vec<(Instant, TimerDelivery)>> {
    let give_up = Instant::now() + within;
    let mut received = Vec::new();
    let mut posts: HashSet<PostId> = HashSet::new();
    while posts.len() < wanted && Instant::now() < give_up {
        for delivery in timer.receive(Duration::from_millis(500)).await? {
            if acknowledge {
                timer.acknowledge(&delivery).await?;
            }
            posts.extend(delivery.wakeups.iter().map(|w| w.post_id.clone()));
            received.push((Instant::now(), delivery));
        }
    }
    Ok(received)
}

fn wakeup(at_seconds: i64) -> Wakeup {
    Wakeup {
        post_id: PostId::new(),
        at: Utc::now() + chrono::Duration::seconds(at_seconds),
    }
}

async fn delays_are_honoured<T: Timer + TimerInbox>(timer: &T) -> anyhow::Result<()> {
    let now_wakeup = wakeup(0);
    let later = wakeup(3);
    let scheduled = Instant::now();
    timer.schedule(&[later.clone(), now_wakeup.clone()], Utc::now()).await?;
    let received = receive_until(timer, 2, Duration::from_secs(3) + SLACK + SLACK, true).await?;
    let arrival = |post: &PostId| {
        received
            .iter()
            .find(|(_, d)| d.wakeups.iter().any(|w| &w.post_id == post))
            .map(|(at, d)| (at.duration_since(scheduled), d.wakeups.clone()))
    };
    let (soon, _) = arrival(&now_wakeup.post_id).ok_or_else(|| anyhow::anyhow!("the due wakeup never came"))?;
    let (late, wakeups) = arrival(&later.post_id).ok_or_else(|| anyhow::anyhow!("the delayed wakeup never came"))?;
    assert!(soon < SLACK, "a due wakeup comes at once, came after {soon:?}");
    // Whole seconds, rounded down: at most one second early.
    assert!(late >= Duration::from_secs(2), "a 3 s wakeup came after {late:?}");
    assert!(
        late < Duration::from_secs(3) + SLACK,
        "a 3 s wakeup came after {late:?}"
    );
    assert_eq!(wakeups, vec![later], "the wakeup arrives unchanged");
    Ok(())
}

async fn wakeups_due_together_travel_together<T: Timer + TimerInbox>(timer: &T) -> anyhow::Result<()> {
    let at = Utc::now();
    let wakeups: Vec<Wakeup> = (0..250)
        .map(|_| Wakeup {
            post_id: PostId::new(),
            at,
        })
        .collect();
    timer.schedule(&wakeups, at).await?;
    let received = receive_until(timer, wakeups.len(), Duration::from_secs(5) + SLACK, true).await?;
    let delivered: Vec<&PostId> = received
        .iter()
        .flat_map(|(_, d)| d.wakeups.iter().map(|w| &w.post_id))
        .collect();
    let unique: HashSet<&PostId> = delivered.iter().copied().collect();
    assert_eq!(unique.len(), wakeups.len(), "every wakeup arrives");
    assert_eq!(delivered.len(), wakeups.len(), "each once");
    assert_eq!(received.len(), 3, "250 wakeups of one second are three messages");
    assert!(received.iter().all(|(_, d)| d.wakeups.len() <= WAKEUPS_PER_MESSAGE));
    Ok(())
}

async fn unacknowledged_deliveries_come_again<T: Timer + TimerInbox>(
    timer: &T,
    redelivery: Duration,
) -> anyhow::Result<()> {
    // Two messages due now (two calls), so both arrive at once and one is acknowledged well within the timeout.
    let (handled, failed) = (wakeup(0), wakeup(0));
    timer.schedule(std::slice::from_ref(&handled), Utc::now()).await?;
    timer.schedule(std::slice::from_ref(&failed), Utc::now()).await?;
    let first = receive_until(timer, 2, Duration::from_secs(1) + SLACK, false).await?;
    let mut failed_at = None;
    for (at, delivery) in &first {
        if delivery.wakeups.contains(&failed) {
            failed_at = Some(*at);
        } else {
            timer.acknowledge(delivery).await?;
        }
    }
    let failed_at = failed_at.ok_or_else(|| anyhow::anyhow!("the second wakeup never came"))?;
    let again = receive_until(timer, 1, redelivery + SLACK + SLACK, true).await?;
    let redelivered: Vec<&Wakeup> = again.iter().flat_map(|(_, d)| d.wakeups.iter()).collect();
    assert_eq!(
        redelivered,
        vec![&failed],
        "only the unacknowledged delivery comes again"
    );
    let waited = again[0].0.duration_since(failed_at);
    assert!(
        waited >= redelivery / 2,
        "redelivered after {waited:?}, before its visibility timeout"
    );
    // Once acknowledged, it is gone.
    let after = receive_until(timer, 1, redelivery + Duration::from_secs(1), true).await?;
    assert!(
        after.is_empty(),
        "an acknowledged delivery never comes again: {after:?}"
    );
    Ok(())
}
