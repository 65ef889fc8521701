//! Lateness of 1,000 posts due in the same minute: init time (as TikTok's sandbox logged it) minus `scheduledAt`.
//!
//! `cargo bench -p postato-tests --bench publish_lateness`
//!
//! Two populations: 100 accounts x 10 posts (the scenario: 4 of every account's 10 must wait for TikTok's 6
//! inits per minute per token, so their lateness is TikTok's cap, reported apart) and 200 accounts x 5 posts (every
//! post within TikTok's limits).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use postato_tests::publishing::{Options, Publishing};
use shared::{
    domain::{PostOptions, PostStatus, PostType, Privacy},
    ids::PostId,
};
use tiktok_sandbox::{AccountSpec, Endpoint};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    println!("| accounts x posts | population | posts | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (accounts, per_account) in [(100, 10), (200, 5)] {
        run(accounts, per_account).await?;
    }
    Ok(())
}

async fn run(accounts: usize, per_account: usize) -> anyhow::Result<()> {
    let mut options = Options::default();
    options.settings.first_poll_after = Duration::seconds(5);
    options.sandbox.processing_delay_ms = 1_000;
    let p = Publishing::start(options).await?;
    let mut ids = Vec::new();
    for _ in 0..accounts {
        ids.push(p.connect(AccountSpec::public()).await?);
    }
    let total = accounts * per_account;
    let minute = Utc::now() + Duration::seconds(30);
    let post_options = PostOptions {
        privacy: Some(Privacy::Private),
        ..PostOptions::default()
    };
    let mut scheduled: HashMap<PostId, (usize, DateTime<Utc>)> = HashMap::new();
    for k in 0..total {
        let account = k % accounts;
        // Spread over the minute, every account's posts over all of it.
        let at = minute + Duration::milliseconds((k * 60_000 / total) as i64);
        let video = p.video(4096, 10_000).await?;
        let id = p
            .schedule(&ids[account], PostType::Video, vec![video], at, post_options.clone())
            .await?;
        scheduled.insert(id, (account, at));
    }
    for id in scheduled.keys() {
        p.wait_for(
            id,
            &[PostStatus::Published, PostStatus::Completed],
            std::time::Duration::from_secs(400),
        )
        .await?;
    }

    let mut init_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    for request in p.sandbox.requests_to(Endpoint::VideoInit) {
        let caption = request
            .body
            .as_ref()
            .and_then(|b| b["post_info"]["title"].as_str())
            .unwrap_or_default();
        if let Some(id) = caption.rsplit(' ').next() {
            init_at.entry(id.to_owned()).or_insert(request.at);
        }
    }
    // Per account, in init order: the first 6 were never held by TikTok's cap.
    let mut by_account: HashMap<usize, Vec<(DateTime<Utc>, i64)>> = HashMap::new();
    for (id, (account, at)) in &scheduled {
        let init = init_at.get(id.as_str()).copied().unwrap_or(*at);
        by_account
            .entry(*account)
            .or_default()
            .push((init, (init - *at).num_milliseconds()));
    }
    let (mut free, mut held, mut all) = (Vec::new(), Vec::new(), Vec::new());
    for inits in by_account.values_mut() {
        inits.sort();
        for (rank, (_, lateness)) in inits.iter().enumerate() {
            all.push(*lateness);
            if rank < 6 {
                free.push(*lateness)
            } else {
                held.push(*lateness)
            }
        }
    }
    let label = format!("{accounts} x {per_account}");
    row(&label, "all posts", &mut all);
    if !held.is_empty() {
        row(&label, "within TikTok's 6 inits/min", &mut free);
        row(&label, "held by TikTok's cap", &mut held);
    }
    p.stop().await;
    Ok(())
}

fn row(label: &str, population: &str, values: &mut [i64]) {
    values.sort();
    let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "| {label} | {population} | {} | {} ms | {} ms | {} ms |",
        values.len(),
        at(0.5),
        at(0.99),
        values[values.len() - 1]
    );
}
