//! How wakeups travel, shared by every [`crate::ports::Timer`] adapter: grouped into messages by the whole second
//! they are due at (SQS delays count whole seconds, up to 15 minutes), and the body those messages carry.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::Wakeup;

/// SQS's longest `DelaySeconds` (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html).
pub const MAX_DELAY_SECONDS: u32 = 900;
pub const MAX_DELAY: chrono::Duration = chrono::Duration::seconds(MAX_DELAY_SECONDS as i64);
/// Wakeups per message: 100 ids and instants are about 8 KB, far below SQS's 256 KiB body, and a batch of ten
/// messages then carries 1,000 posts to one invocation.
pub const WAKEUPS_PER_MESSAGE: usize = 100;

/// How early a wakeup arrives before the instant it is for (the publisher's default lead): time for pre-flight.
pub const DEFAULT_LEAD: chrono::Duration = chrono::Duration::seconds(2);
/// How far ahead the schedule tick arms wakeups: two ticks of EventBridge's `rate(1 minute)`. A post due later is
/// left to a later tick, so whoever schedules one only needs to arm it when it is due sooner than this.
pub const DISPATCH_WINDOW: chrono::Duration = chrono::Duration::seconds(120);

/// One message to send: its wakeups, delivered after `delay_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerMessage {
    pub delay_seconds: u32,
    pub wakeups: Vec<Wakeup>,
}

/// Groups wakeups by the whole second they are due at (rounded down, so none is late), in order of delay.
pub fn plan_messages(wakeups: &[Wakeup], now: DateTime<Utc>) -> Vec<TimerMessage> {
    let mut by_delay: BTreeMap<u32, Vec<Wakeup>> = BTreeMap::new();
    for wakeup in wakeups {
        by_delay
            .entry(delay_seconds(wakeup.at, now))
            .or_default()
            .push(wakeup.clone());
    }
    by_delay
        .into_iter()
        .flat_map(|(delay_seconds, wakeups)| {
            wakeups
                .chunks(WAKEUPS_PER_MESSAGE)
                .map(|chunk| TimerMessage {
                    delay_seconds,
                    wakeups: chunk.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn delay_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    let seconds = (at - now).num_seconds().clamp(0, i64::from(MAX_DELAY_SECONDS));
    u32::try_from(seconds).unwrap_or(MAX_DELAY_SECONDS)
}

#[derive(Serialize, Deserialize)]
struct Body {
    wakeups: Vec<Wakeup>,
}

pub fn encode_body(wakeups: &[Wakeup]) -> String {
    serde_json::to_string(&Body {
        wakeups: wakeups.to_vec(),
    })
    .unwrap_or_else(|_| String::from(r#"{"wakeups":[]}"#))
}

#[derive(Debug, thiserror::Error)]
#[error("not a timer message: {0}")]
pub struct BadTimerMessage(String);

pub fn decode_body(body: &str) -> Result<Vec<Wakeup>, BadTimerMessage> {
    serde_json::from_str::<Body>(body)
        .map(|body| body.wakeups)
        .map_err(|e| BadTimerMessage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::ids::PostId;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T08:59:30.250Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(now: DateTime<Utc>, millis: i64) -> Wakeup {
        Wakeup {
            post_id: PostId::new(),
            at: now + Duration::milliseconds(millis),
        }
    }

    #[test]
    fn wakeups_due_in_the_same_second_share_a_message_whose_delay_is_never_late() {
        let now = now();
        let wakeups = [at(now, 2_100), at(now, 2_900), at(now, 3_000), at(now, -5_000)];
        let messages = plan_messages(&wakeups, now);
        let delays: Vec<(u32, usize)> = messages.iter().map(|m| (m.delay_seconds, m.wakeups.len())).collect();
        assert_eq!(delays, vec![(0, 1), (2, 2), (3, 1)]);
    }

    #[test]
    fn a_wakeup_past_the_longest_delay_arrives_early_at_that_delay() {
        let now = now();
        let messages = plan_messages(&[at(now, 3_600_000)], now);
        assert_eq!(messages[0].delay_seconds, MAX_DELAY_SECONDS);
    }

    #[test]
    fn a_crowded_second_is_split_into_messages_of_at_most_a_hundred() {
        let now = now();
        let wakeups: Vec<Wakeup> = (0..250).map(|_| at(now, 60_000)).collect();
        let sizes: Vec<usize> = plan_messages(&wakeups, now).iter().map(|m| m.wakeups.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn a_body_round_trips_and_a_foreign_one_is_refused() {
        let now = now();
        let wakeups = vec![at(now, 0), at(now, 1_000)];
        assert_eq!(decode_body(&encode_body(&wakeups)).unwrap(), wakeups);
        assert!(decode_body(r#"{"detail-type":"post.due"}"#).is_err());
    }
}
