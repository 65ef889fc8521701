//! The schedule tick: every post due within the dispatch window (and every overdue one) gets a wakeup armed at its
//! instant less the lead. Arming a post twice is harmless: workers claim posts with a compare-and-set. The tick is
//! also the safety net: a wakeup lost anywhere (a refused message, a worker that died before arming the next one)
//! is armed again by the next tick, since the post is still due in the index.
//!
//! There is no cap per tick: the dispatcher pages through the whole due index, so a busy minute (most posts fall on
//! round times) never pushes posts to the next tick. A wakeup the timer refuses is counted and left due, without
//! failing what was armed.

use shared::ports::{DueEntry, TimerError, Wakeup};

use crate::{PublisherDeps, PublisherError};

/// Due entries read (and armed) per store call.
const PAGE: usize = 1_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub armed: usize,
    /// Refused by the timer (or lost to its outage); still due, so the next tick arms them again.
    pub not_armed: usize,
}

pub async fn dispatch(deps: &PublisherDeps) -> Result<DispatchReport, PublisherError> {
    let now = deps.clock.now();
    let until = now + deps.settings.dispatch_window;
    let mut report = DispatchReport::default();
    let mut outage = None;
    let mut after: Option<DueEntry> = None;
    loop {
        let page = deps.stores.posts.due_posts(until, after.as_ref(), PAGE).await?;
        let Some(last) = page.last().cloned() else { break };
        let wakeups: Vec<Wakeup> = page
            .iter()
            .map(|entry| Wakeup {
                post_id: entry.post_id.clone(),
                at: entry.due_at - deps.settings.lead,
            })
            .collect();
        match deps.timer.schedule(&wakeups, now).await {
            Ok(()) => report.armed += wakeups.len(),
            Err(TimerError::NotScheduled { failed }) => {
                report.armed += wakeups.len().saturating_sub(failed.len());
                report.not_armed += failed.len();
            }
            Err(error) => {
                report.not_armed += wakeups.len();
                outage = Some(error);
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = Some(last);
    }
    if report.not_armed > 0 {
        tracing::warn!(
            not_armed = report.not_armed,
            armed = report.armed,
            "some due posts were not armed; they stay due for the next tick"
        );
    }
    // Nothing got through at all: fail the tick so that the alarm on errors sees the outage.
    if let Some(error) = outage.filter(|_| report.armed == 0) {
        return Err(error.into());
    }
    tracing::info!(count = report.armed, "armed due posts");
    Ok(report)
}
