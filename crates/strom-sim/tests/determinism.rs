//! A seed replays a run exactly: the same trace byte for byte, on any thread; another
//! seed gives another run.

use strom_sim::{run, SimConfig};

fn first_difference(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("first difference:\n  {x}\n  {y}"))
        .unwrap_or_else(|| format!("lengths {} and {}", a.len(), b.len()))
}

#[test]
fn a_seed_replays_its_run_byte_for_byte_and_another_seed_differs() {
    let config = SimConfig::default();
    let first = run(7, config);
    // A fresh thread: nothing carried over in thread-locals or the runtime.
    let again = std::thread::spawn(move || run(7, config)).join().unwrap();
    assert!(
        first.trace == again.trace,
        "seed 7 ran differently: {}",
        first_difference(&first.trace, &again.trace)
    );
    assert_eq!(first.violations, again.violations);
    // The run did something worth replaying: faults, and the whole workload acknowledged.
    assert!(first.crashes + first.partitions_cut > 0, "{}", first.trace);
    assert_eq!(
        first.acked_batches,
        (config.partitions * config.batches_per_partition) as usize
    );
    let other = run(8, config);
    assert_ne!(first.trace, other.trace);
}
