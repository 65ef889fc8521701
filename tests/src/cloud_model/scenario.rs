//! The scenarios of issue 10: who posts when, when the intake API is busy, and which posts TikTok's caps allow at
//! their time.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

/// TikTok allows 6 inits a minute per token (the sandbox enforces it; RateLimits::default).
const INITS_PER_MINUTE: usize = 6;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub accounts: usize,
    pub posts: Vec<PlannedPost>,
    /// The model starts here, a few ticks before the first post.
    pub start: DateTime<Utc>,
    /// When the intake API takes its traffic.
    pub intake: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The model stops here even if some posts are not done.
    pub horizon: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
pub struct PlannedPost {
    pub account: usize,
    pub at: DateTime<Utc>,
}

/// The round time most scheduling products pick.
fn nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap_or_default()
}

/// The intake is busy from a minute before the peak to three minutes after it.
fn busy_around(peak: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (peak - Duration::minutes(1), peak + Duration::minutes(3))
}

impl Scenario {
    /// A: `posts` due at 09:00:00 over `accounts` accounts, taken in turn.
    pub fn one_instant(posts: usize, accounts: usize) -> Self {
        let at = nine();
        Self {
            name: format!("A: {posts} at 09:00:00, {accounts} accounts"),
            accounts,
            posts: (0..posts)
                .map(|k| PlannedPost {
                    account: k % accounts,
                    at,
                })
                .collect(),
            start: at - Duration::minutes(3),
            intake: vec![busy_around(at)],
            horizon: at + Duration::minutes(30),
        }
    }

    /// B: `per_day` posts a day, half of them at :00 and :30, the rest spread evenly; `hours` of the day's 24
    /// identical hours are run (every per-post figure and every peak is the day's).
    pub fn day(per_day: usize, hours: usize, accounts: usize) -> Self {
        let per_hour = per_day / 24;
        let on_the_hour = per_hour / 4;
        let on_the_half_hour = per_hour / 4;
        let spread = per_hour - on_the_hour - on_the_half_hour;
        let mut times = Vec::new();
        let mut intake = Vec::new();
        for hour in 0..hours {
            let top = nine() + Duration::hours(hour as i64);
            let half = top + Duration::minutes(30);
            intake.extend([busy_around(top), busy_around(half)]);
            let hour_times = std::iter::repeat_n(top, on_the_hour)
                .chain(std::iter::repeat_n(half, on_the_half_hour))
                .chain((0..spread).map(|k| top + Duration::milliseconds((k * 3_600_000 / spread.max(1)) as i64)));
            times.extend(hour_times);
        }
        let posts = times
            .into_iter()
            .enumerate()
            .map(|(k, at)| PlannedPost {
                account: k % accounts,
                at,
            })
            .collect();
        let end = nine() + Duration::hours(hours as i64);
        Self {
            name: format!("B: {per_day} a day (half at :00/:30), {hours} of 24 h run, {accounts} accounts"),
            accounts,
            posts,
            start: nine() - Duration::minutes(3),
            intake,
            horizon: end + Duration::minutes(30),
        }
    }

    /// C: `accounts` x `per_account` posts spread over the minute from 09:00:00, every account's over all of it
    /// (publish_lateness's scenario).
    pub fn one_minute(accounts: usize, per_account: usize) -> Self {
        let total = accounts * per_account;
        let at = nine();
        Self {
            name: format!("C: {total} in one minute, {accounts} accounts"),
            accounts,
            posts: (0..total)
                .map(|k| PlannedPost {
                    account: k % accounts,
                    at: at + Duration::milliseconds((k * 60_000 / total) as i64),
                })
                .collect(),
            start: at - Duration::minutes(3),
            intake: vec![busy_around(at)],
            horizon: at + Duration::minutes(30),
        }
    }

    /// For each post, whether TikTok's 6 inits a minute let it go at its time: fewer than 6 of its account's earlier
    /// posts fall in the minute before it. The others are held by TikTok's cap whatever the design does.
    pub fn within_caps(&self) -> Vec<bool> {
        let mut by_account: HashMap<usize, Vec<(DateTime<Utc>, usize)>> = HashMap::new();
        for (index, post) in self.posts.iter().enumerate() {
            by_account.entry(post.account).or_default().push((post.at, index));
        }
        let mut allowed = vec![true; self.posts.len()];
        for posts in by_account.values_mut() {
            posts.sort();
            for (rank, (at, index)) in posts.iter().enumerate() {
                let in_window = posts[..rank]
                    .iter()
                    .filter(|(earlier, _)| *earlier > *at - Duration::minutes(1))
                    .count();
                allowed[*index] = in_window < INITS_PER_MINUTE;
            }
        }
        allowed
    }
}
