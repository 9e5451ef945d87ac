//! Many seeds, each checked (no acknowledged record lost, no duplicate, replicas equal up
//! to the high watermark, one leader per leader epoch and per raft term, the consumer
//! never read what was later lost). `STROM_SIM_SEEDS` sets how many (default 300),
//! `STROM_SIM_FROM` the first. A failure prints the command that replays the seed.

use strom_sim::{run_many, SimConfig};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn every_seed_keeps_the_guarantees() {
    let count = env("STROM_SIM_SEEDS", 300);
    let from = env("STROM_SIM_FROM", 0);
    let failed = run_many(from, count, 2, SimConfig::default());
    let summary: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "seed {}: {}\n  replay: {}",
                r.seed,
                r.violations.join("; "),
                r.replay_command()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failed.len(),
        summary.join("\n")
    );
}
