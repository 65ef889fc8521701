//! The cloud model exercised by `cargo test`: its premise (TikTok's latencies hold in virtual time over loopback
//! HTTP) and a small scenario C under each design.

use std::{sync::Arc, time::Duration};

use postato_tests::cloud_model::{run, table, tiktok, Design, Scenario};
use shared::{Clock, TokioClock};
use tiktok_sandbox::{AccountSpec, RateLimits, SandboxClock, SandboxConfig};

/// Virtual time moves only when every task waits and the IO driver has nothing ready; loopback HTTP must not let it
/// jump while a request is on its way, or every latency in the model would be wrong.
#[test]
fn when_thousands_of_tiktok_calls_run_at_once_each_takes_its_injected_latency_in_virtual_time() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(TokioClock::starting_at(chrono::Utc::now()));
        let sandbox_clock = clock.clone();
        let sandbox = tiktok_sandbox::spawn(SandboxConfig {
            settings: tiktok_sandbox::Settings {
                rate_limits: RateLimits::unlimited(),
                ..Default::default()
            },
            clock: SandboxClock::new(move || sandbox_clock.now()),
            ..Default::default()
        })
        .await
        .unwrap();
        tiktok::install_latencies(&sandbox);
        let tokens = sandbox.create_accounts_with_tokens(50, AccountSpec::public());
        let url = format!("{}/v2/post/publish/creator_info/query/", sandbox.base_url());
        let mut calls = tokio::task::JoinSet::new();
        for k in 0..2_000usize {
            let (url, token) = (url.clone(), tokens[k % tokens.len()].access_token.clone());
            calls.spawn(async move {
                // Staggered so that calls start while others are in flight.
                tokio::time::sleep(Duration::from_millis((k % 97) as u64)).await;
                let client = reqwest::Client::new();
                let started = tokio::time::Instant::now();
                let answer = client.post(&url).bearer_auth(token).send().await.unwrap();
                assert_eq!(answer.status(), 200);
                started.elapsed()
            });
        }
        let mut worst = Duration::ZERO;
        while let Some(took) = calls.join_next().await {
            let took = took.unwrap();
            assert!(took >= tiktok::CREATOR_INFO, "{took:?}");
            worst = worst.max(took - tiktok::CREATOR_INFO);
        }
        assert!(
            worst <= Duration::from_millis(5),
            "a call took {worst:?} more than its latency"
        );
    });
}

#[test]
fn a_small_scenario_c_sends_every_post_under_each_design() {
    let scenario = Scenario::one_minute(10, 10);
    let mut runs = Vec::new();
    for design in [Design::Today, Design::timer()] {
        let measured = run(&scenario, design).unwrap();
        assert_eq!(measured.not_sent, 0, "{}", table(std::slice::from_ref(&measured)));
        assert_eq!(measured.within_caps.len(), 60);
        runs.push(measured);
    }
    println!("{}", table(&runs));
}
