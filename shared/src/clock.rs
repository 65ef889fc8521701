//! Time as a port, so tests can hold it still or move it on.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Cloned handles share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn at(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A clock that reads tokio's: under a paused runtime (the cloud model, tests) time is virtual and jumps to the next
/// timer whenever every task waits, so the real code's sleeps and deadlines cost no wall time; otherwise it follows
/// the machine's monotonic clock. It reads `start` at the instant it was made.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        // Elapsed time fits chrono's range for ~292 billion years: the fallback only keeps the function total.
        self.start + Duration::from_std(self.origin.elapsed()).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_virtual_time_to_the_millisecond() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T08:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = TokioClock::starting_at(start);
        tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(clock.now(), start + Duration::milliseconds(3_600_250));
    }
}
