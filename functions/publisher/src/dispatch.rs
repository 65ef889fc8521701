//! The schedule tick: every post due within the dispatch window gets a wakeup armed at its instant less the lead,
//! once. The window spans two ticks so that a tick that fires late, or not at all, is covered by the one before;
//! the dispatch watermark (the end of the last window armed in full) keeps the overlap from arming a post twice:
//! a tick arms only what is due after it. Arming a post twice would still be harmless (workers claim with a
//! compare-and-set), but each copy is an invocation that pre-flights and sleeps the lead.
//!
//! The tick is also the safety net: a post still due in the index after its instant (a refused message, a worker
//! that died before arming the next wakeup) is overdue, and every tick arms the overdue again.
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
    // Without a readable watermark every due post is armed: duplicates cost a little, a missed post costs lateness.
    let armed_until = match deps.stores.posts.dispatch_watermark().await {
        Ok(watermark) => watermark,
        Err(e) => {
            tracing::warn!(error = %e, "dispatch watermark unreadable; arming every due post");
            None
        }
    };
    let already_armed = |due| due > now && armed_until.is_some_and(|armed| due <= armed);
    let mut report = DispatchReport::default();
    let mut outage = None;
    let mut after: Option<DueEntry> = None;
    loop {
        let page = deps.stores.posts.due_posts(until, after.as_ref(), PAGE).await?;
        let Some(last) = page.last().cloned() else { break };
        let wakeups: Vec<Wakeup> = page
            .iter()
            .filter(|entry| !already_armed(entry.due_at))
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
    // Only a window armed in full moves the watermark, and never backwards (ticks may overlap in time).
    if report.not_armed == 0 && armed_until.is_none_or(|armed| armed < until) {
        if let Err(e) = deps.stores.posts.set_dispatch_watermark(until).await {
            tracing::warn!(error = %e, "dispatch watermark not saved; the next tick arms the overlap again");
        }
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
