//! The cloud model (issue 10, section 4): the real publisher code on tokio's paused clock, inside a model of AWS
//! (one Lambda concurrency pool, cold starts, billing, asynchronous invocation, EventBridge's tick, the intake's
//! traffic) and against the TikTok sandbox on the same virtual clock, comparing today's design with the timer.
//!
//! Virtual time moves only when every task waits, so a run of hours takes seconds, and every sleep of the real code
//! (until `scheduledAt`, TikTok's latencies, retries) costs nothing. The store is SQLite in memory: its calls take no
//! virtual time (tokio does not advance the clock while a blocking call runs).
//!
//! `cargo bench -p postato-tests --bench cloud_model` prints the table; docs/cloud-model.md explains it.

pub mod aws;
pub mod queue;
pub mod report;
pub mod scenario;
pub mod tiktok;
mod today;

use std::{sync::Arc, time::Duration as StdDuration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use publisher::{PublisherDeps, PublisherSettings};
use shared::{
    adapters::local_timer::LocalTimer,
    domain::{PostOptions, PostType, Privacy},
    ids::PostId,
    ports::Timer,
    Clock, TokioClock,
};
use tiktok_sandbox::AccountSpec;
use tokio::time::Instant;

use crate::publishing::{Options, Publishing};
use aws::{ConcurrencyPool, Function, INTAKE, PUBLISHER};
pub use report::{table, Measured};
pub use scenario::Scenario;

/// How often the model looks whether every post is done.
const DONE_CHECK: StdDuration = StdDuration::from_secs(5);
/// Each post's video: small (one chunk) and unique, as TikTok refuses the same file twice.
const VIDEO_BYTES: usize = 4_096;
const VIDEO_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// A sleeping Lambda per post, handed out by the minute tick.
    Today,
    /// The timer: wakeups `lead` ahead of each instant through an SQS queue, batches through the event source
    /// mapping capped at `maximum_concurrency`.
    Timer {
        lead: chrono::Duration,
        maximum_concurrency: usize,
    },
}

impl Design {
    /// The timer design as template.yaml and `PublisherSettings::default()` configure it.
    pub fn timer() -> Self {
        Self::Timer {
            lead: PublisherSettings::default().lead,
            maximum_concurrency: queue::ESM_MAXIMUM_CONCURRENCY,
        }
    }

    pub fn label(self) -> String {
        match self {
            Self::Today => "today: a sleeping Lambda per post".to_owned(),
            Self::Timer {
                lead,
                maximum_concurrency,
            } => format!(
                "timer: lead {} ms, ≤ {maximum_concurrency} batches",
                lead.num_milliseconds()
            ),
        }
    }

    /// The publisher's `ReservedConcurrentExecutions` in this design's template.
    fn reserved(self) -> Option<usize> {
        match self {
            Self::Today => None,
            Self::Timer { .. } => Some(queue::PUBLISHER_RESERVED),
        }
    }

    fn settings(self) -> PublisherSettings {
        match self {
            // Today's Lambda: a post is handed out up to one tick ahead and its worker sleeps until its time.
            Self::Today => PublisherSettings {
                lead: chrono::Duration::from_std(aws::TICK_INTERVAL).unwrap_or_default(),
                ..PublisherSettings::default()
            },
            Self::Timer { lead, .. } => PublisherSettings {
                lead,
                ..PublisherSettings::default()
            },
        }
    }
}

/// Open files the model wants: in AWS each of up to 100 environments holds up to 500 TikTok connections within its
/// own 1,024 descriptors; here they all live in one process, each connection twice (client and sandbox).
const OPEN_FILES: u64 = 262_144;

/// Runs `scenario` under `design` on a fresh paused runtime and measures it.
pub fn run(scenario: &Scenario, design: Design) -> anyhow::Result<Measured> {
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    runtime.block_on(run_paused(scenario, design))
}

async fn run_paused(scenario: &Scenario, design: Design) -> anyhow::Result<Measured> {
    let origin = Instant::now();
    let clock = Arc::new(TokioClock::starting_at(scenario.start));
    let instant = |at: DateTime<Utc>| origin + (at - scenario.start).to_std().unwrap_or_default();
    let settings = design.settings();
    let publishing = Arc::new(
        Publishing::start(Options {
            settings: settings.clone(),
            sandbox: tiktok::sandbox_settings(),
            pull_videos: false,
            timeouts: tiktok::CLIENT_TIMEOUTS,
            run_loop: false,
            clock: clock.clone(),
            ..Options::default()
        })
        .await?,
    );
    tiktok::install_latencies(&publishing.sandbox);
    let posts = populate(&publishing, scenario).await?;

    let queue = LocalTimer::new(queue::VISIBILITY_TIMEOUT);
    let timer: Arc<dyn Timer> = match design {
        Design::Today => Arc::new(today::NoTimer),
        Design::Timer { .. } => Arc::new(queue::Sqs { queue: queue.clone() }),
    };
    let pool = Arc::new(ConcurrencyPool::default());
    let publisher: Arc<Function<Arc<PublisherDeps>>> = Function::new(PUBLISHER, pool.clone(), design.reserved(), {
        let publishing = publishing.clone();
        move || publishing.fresh_deps(settings.clone(), timer.clone())
    });
    let intake = Function::new(INTAKE, pool, None, || ());
    for (from, until) in &scenario.intake {
        tokio::spawn(aws::intake_traffic(intake.clone(), instant(*from), instant(*until)));
    }
    let driver = match design {
        Design::Today => tokio::spawn(today::run(publisher.clone(), origin)),
        Design::Timer {
            maximum_concurrency, ..
        } => tokio::spawn(queue::run(publisher.clone(), queue, origin, maximum_concurrency)),
    };

    let intake_ends = scenario
        .intake
        .iter()
        .map(|(_, until)| *until)
        .max()
        .unwrap_or(scenario.start);
    loop {
        tokio::time::sleep(DONE_CHECK).await;
        let now = clock.now();
        if now >= scenario.horizon || (now >= intake_ends && all_done(&publishing).await?) {
            break;
        }
    }
    driver.abort();
    let requests = publishing.sandbox.requests();
    Ok(Measured::new(
        scenario,
        &design.label(),
        &posts,
        &requests,
        (publisher.stats(), publisher.gb_seconds()),
        intake.stats(),
    ))
}

/// Connects the scenario's accounts and schedules its posts, each with its own validated video; returns the post
/// ids in the scenario's order.
async fn populate(publishing: &Publishing, scenario: &Scenario) -> anyhow::Result<Vec<PostId>> {
    let mut accounts = Vec::with_capacity(scenario.accounts);
    for _ in 0..scenario.accounts {
        accounts.push(publishing.connect(AccountSpec::public()).await?);
    }
    let options = PostOptions {
        privacy: Some(Privacy::Private),
        ..PostOptions::default()
    };
    let mut posts = Vec::with_capacity(scenario.posts.len());
    for planned in &scenario.posts {
        let video = publishing.video(VIDEO_BYTES, VIDEO_MS).await?;
        let account = accounts
            .get(planned.account)
            .context("the scenario names an account it did not create")?;
        posts.push(
            publishing
                .schedule(account, PostType::Video, vec![video], planned.at, options.clone())
                .await?,
        );
    }
    Ok(posts)
}

/// Whether this process may open enough files for scenario A at full scale (10,000 posts): the timer design holds
/// about 10,000 TikTok connections at once (20 batches, the overlapping ticks' duplicates included, of 500 posts in
/// flight), each twice here (client and sandbox).
pub fn full_scale_possible() -> bool {
    raise_open_files_limit();
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .is_none_or(|limit| limit >= FULL_SCALE_OPEN_FILES)
}

const FULL_SCALE_OPEN_FILES: u64 = 32_768;

/// Raises this process's limit of open files as far as allowed (to [`OPEN_FILES`] where the hard limit may rise, as
/// for root, else to the hard limit). Running out would fail TikTok calls and file reads in the model, not in AWS.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let wanted = Rlimit {
        current: Some(OPEN_FILES),
        maximum: Some(hard.max(OPEN_FILES)),
    };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        let _best_effort = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard.min(OPEN_FILES)),
                maximum: limit.maximum,
            },
        );
    }
}

/// Every post has ended (completed, failed or needs review): nothing is due any more.
async fn all_done(publishing: &Publishing) -> anyhow::Result<bool> {
    let far = publishing.deps.clock.now() + chrono::Duration::days(365);
    Ok(publishing.stores.posts.due_posts(far, None, 1).await?.is_empty())
}
