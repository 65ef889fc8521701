//! The cloud model's table: each scenario of issue 10 under today's design and the timer, in one run.
//!
//! `cargo bench -p postato-tests --bench cloud_model`
//!
//! With `CLOUD_MODEL_KNOBS=1`, a second table runs scenario A under the timer with other values of its knobs (the
//! lead, the mapping's maximum concurrency). See docs/cloud-model.md for what is modelled and every constant's source.

use postato_tests::cloud_model::{full_scale_possible, run, table, Design, Measured, Scenario};

fn main() -> anyhow::Result<()> {
    // Scenario A at full scale needs ~40,000 open files in this one process (see full_scale_possible); where the
    // hard limit is lower (20,000 on the project's machine), it runs at half scale: 5,000 posts over 1,000 accounts.
    let (posts, accounts) = if full_scale_possible() {
        (10_000, 2_000)
    } else {
        (5_000, 1_000)
    };
    let scenarios = [
        Scenario::one_instant(posts, accounts),
        // Two of the day's 24 identical hours (see Scenario::day).
        Scenario::day(100_000, 2, 2_000),
        Scenario::one_minute(100, 10),
    ];
    let mut runs = Vec::new();
    for scenario in &scenarios {
        for design in [Design::Today, Design::timer()] {
            runs.push(timed(scenario, design)?);
        }
    }
    print!("{}", table(&runs));

    if std::env::var_os("CLOUD_MODEL_KNOBS").is_some() {
        let knobs = [(1_000, 100), (3_000, 100), (2_000, 50), (2_000, 200)].map(|(lead_ms, maximum_concurrency)| {
            Design::Timer {
                lead: chrono::Duration::milliseconds(lead_ms),
                maximum_concurrency,
            }
        });
        let mut runs = Vec::new();
        for design in knobs {
            runs.push(timed(&scenarios[0], design)?);
        }
        println!();
        print!("{}", table(&runs));
    }
    Ok(())
}

fn timed(scenario: &Scenario, design: Design) -> anyhow::Result<Measured> {
    let started = std::time::Instant::now();
    let measured = run(scenario, design)?;
    eprintln!(
        "{} / {}: {:.1} s",
        scenario.name,
        design.label(),
        started.elapsed().as_secs_f64()
    );
    Ok(measured)
}
