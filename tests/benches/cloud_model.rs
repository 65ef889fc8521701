//! The cloud model's table: each scenario of issue 10 under today's design and the timer, in one run.
//!
//! `cargo bench -p postato-tests --bench cloud_model`
//!
//! See docs/cloud-model.md for what is modelled and every constant's source.

use postato_tests::cloud_model::{run, table, Design, Scenario};

fn main() -> anyhow::Result<()> {
    let scenarios = [
        Scenario::one_instant(10_000, 2_000),
        // Two of the day's 24 identical hours (see Scenario::day).
        Scenario::day(100_000, 2, 2_000),
        Scenario::one_minute(100, 10),
    ];
    let mut runs = Vec::new();
    for scenario in &scenarios {
        for design in [Design::Today, Design::timer()] {
            let started = std::time::Instant::now();
            let measured = run(scenario, design)?;
            eprintln!(
                "{} / {}: {:.1} s",
                scenario.name,
                design.label(),
                started.elapsed().as_secs_f64()
            );
            runs.push(measured);
        }
    }
    print!("{}", table(&runs));
    Ok(())
}
