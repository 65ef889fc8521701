//! What a run measured, and the markdown table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shared::ids::PostId;
use tiktok_sandbox::{Endpoint, LoggedRequest};

use super::{aws::FunctionStats, scenario::Scenario};

/// A post counts as waiting for something (a tick, a retry) when its init leaves this late.
pub const LATE: chrono::Duration = chrono::Duration::seconds(1);

#[derive(Debug, Clone)]
pub struct Measured {
    pub scenario: String,
    pub design: String,
    pub posts: usize,
    /// Init accepted − `scheduledAt`, in ms, of the posts TikTok's caps allow at their time; sorted.
    pub within_caps: Vec<i64>,
    /// The same for posts that TikTok's 6 inits a minute hold back whatever the design does; sorted.
    pub held_by_caps: Vec<i64>,
    /// Posts never initialised by the end of the run.
    pub not_sent: usize,
    pub publisher: FunctionStats,
    pub publisher_gb_seconds: f64,
    pub intake: FunctionStats,
    pub tiktok_calls: usize,
}

impl Measured {
    pub fn new(
        scenario: &Scenario,
        design: &str,
        posts: &[PostId],
        requests: &[LoggedRequest],
        publisher: (FunctionStats, f64),
        intake: FunctionStats,
    ) -> Self {
        let inits = first_accepted_inits(requests);
        let (mut within_caps, mut held_by_caps, mut not_sent) = (Vec::new(), Vec::new(), 0);
        for ((id, planned), allowed) in posts.iter().zip(&scenario.posts).zip(scenario.within_caps()) {
            let Some(init) = inits.get(id.as_str()) else {
                not_sent += 1;
                continue;
            };
            let lateness = (*init - planned.at).num_milliseconds();
            if allowed {
                within_caps.push(lateness);
            } else {
                held_by_caps.push(lateness);
            }
        }
        within_caps.sort_unstable();
        held_by_caps.sort_unstable();
        Self {
            scenario: scenario.name.clone(),
            design: design.to_owned(),
            posts: posts.len(),
            within_caps,
            held_by_caps,
            not_sent,
            publisher: publisher.0,
            publisher_gb_seconds: publisher.1,
            intake,
            tiktok_calls: requests.len(),
        }
    }

    pub fn late(&self) -> usize {
        self.within_caps
            .iter()
            .filter(|ms| **ms > LATE.num_milliseconds())
            .count()
    }

    pub fn p99_ms(&self) -> Option<i64> {
        quantile(&self.within_caps, 0.99)
    }

    pub fn gb_seconds_per_thousand_posts(&self) -> f64 {
        self.publisher_gb_seconds * 1_000.0 / self.posts.max(1) as f64
    }
}

/// The first init TikTok accepted for each post, found by the post id the caption ends with.
fn first_accepted_inits(requests: &[LoggedRequest]) -> HashMap<String, DateTime<Utc>> {
    let mut inits = HashMap::new();
    for request in requests
        .iter()
        .filter(|r| r.endpoint == Endpoint::VideoInit && r.response_status == Some(200))
    {
        let caption = request
            .body
            .as_ref()
            .and_then(|b| b["post_info"]["title"].as_str())
            .unwrap_or_default();
        if let Some(id) = caption.rsplit(' ').next() {
            inits.entry(id.to_owned()).or_insert(request.at);
        }
    }
    inits
}

fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[((last as f64) * q).round() as usize])
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or_else(|| "–".to_owned(), |ms| format!("{:.2} s", ms as f64 / 1_000.0))
}

pub fn table(runs: &[Measured]) -> String {
    let mut out = String::from(
        "| scenario | design | lateness within caps p50 / p99 / max | within caps > 1 s late | held by TikTok's \
         caps: posts, p50 / max | not sent | peak publisher | peak intake | intake throttled | publisher \
         invocations / post | publisher GB-s / 1,000 posts | TikTok calls / post |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for run in runs {
        let held = if run.held_by_caps.is_empty() {
            "0".to_owned()
        } else {
            format!(
                "{}, {} / {}",
                run.held_by_caps.len(),
                seconds(quantile(&run.held_by_caps, 0.5)),
                seconds(run.held_by_caps.last().copied())
            )
        };
        let posts = run.posts.max(1) as f64;
        out.push_str(&format!(
            "| {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.2} |\n",
            run.scenario,
            run.design,
            seconds(quantile(&run.within_caps, 0.5)),
            seconds(run.p99_ms()),
            seconds(run.within_caps.last().copied()),
            run.late(),
            held,
            run.not_sent,
            run.publisher.peak_running,
            run.intake.peak_running,
            run.intake.throttled,
            run.publisher.invocations as f64 / posts,
            run.gb_seconds_per_thousand_posts(),
            run.tiktok_calls as f64 / posts,
        ));
    }
    out
}
