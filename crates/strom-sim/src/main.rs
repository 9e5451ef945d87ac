//! Runs simulation seeds: `strom-sim --seeds 1000 [--from 0] [--threads 2]` or
//! `strom-sim --seed 12345 [--trace]`. `--no-elr` turns KIP-966 eligible leader replicas
//! off; `--strict-raft-terms` makes two raft leaders in one term a failure.

use std::process::ExitCode;
use std::time::Instant;

use strom_sim::{run, run_many, SimConfig};

fn usage() -> ExitCode {
    eprintln!("usage: strom-sim [--no-elr] [--strict-raft-terms] (--seeds N [--from S] [--threads T] | --seed S [--trace])");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)?.parse().ok()
    };
    let config = SimConfig {
        elr_enabled: !args.iter().any(|a| a == "--no-elr"),
        strict_raft_terms: args.iter().any(|a| a == "--strict-raft-terms"),
        ..SimConfig::default()
    };
    if let Some(seed) = value("--seed") {
        let started = Instant::now();
        let report = run(seed, config);
        if args.iter().any(|a| a == "--trace") {
            println!("{}", report.trace);
        }
        println!(
            "seed {seed}: {} simulated ms, {} batches acknowledged, {} crashes, {} partitions, {:.2}s",
            report.simulated_ms,
            report.acked_batches,
            report.crashes,
            report.partitions_cut,
            started.elapsed().as_secs_f64()
        );
        for v in &report.violations {
            println!("  VIOLATION {v}");
        }
        for v in &report.unclean_losses {
            println!("  after an unclean election: {v}");
        }
        for v in &report.shared_terms {
            println!("  {v}");
        }
        return if report.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let Some(count) = value("--seeds") else {
        return usage();
    };
    let from = value("--from").unwrap_or(0);
    let threads = value("--threads").unwrap_or(2) as usize;
    let started = Instant::now();
    let failed = run_many(from, count, threads, config);
    for report in &failed {
        println!("seed {} FAILED:", report.seed);
        for v in &report.violations {
            println!("  {v}");
        }
        println!("  replay: {}", report.replay_command());
    }
    println!(
        "{count} seeds from {from}: {} failed, {:.1}s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
