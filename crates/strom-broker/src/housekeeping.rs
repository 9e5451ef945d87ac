//! Background work on every hosted log: retention on its own interval
//! (log.retention.check.interval.ms), rolling, flushing and deleting the files of
//! removed segments (file.delete.delay.ms) every second, and the
//! high watermark checkpoint (replica.high.watermark.checkpoint.interval.ms), and the
//! expiry of idle producers (producer.id.expiration.check.interval.ms), and on the
//! active controller, preferred-leader balancing (leader.imbalance.check.interval.seconds).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use strom_log::SwapStep;

use crate::broker::{now_ms, Broker};

const ROLL_AND_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub fn spawn(broker: Arc<Broker>) -> Vec<JoinHandle<()>> {
    let retention_every =
        Duration::from_millis(broker.config.log_retention_check_interval_ms.max(1));
    vec![
        tokio::spawn(every(broker.clone(), retention_every, enforce_retention)),
        tokio::spawn(every(
            broker.clone(),
            ROLL_AND_FLUSH_INTERVAL,
            roll_and_flush,
        )),
        tokio::spawn(compact_every_backoff(broker.clone())),
        tokio::spawn(every(
            broker.clone(),
            Duration::from_millis(
                broker
                    .config
                    .replica_high_watermark_checkpoint_interval_ms
                    .max(1),
            ),
            Broker::checkpoint_high_watermarks,
        )),
        tokio::spawn(every(
            broker.clone(),
            Duration::from_millis(
                broker
                    .config
                    .producer_id_expiration_check_interval_ms
                    .max(1),
            ),
            expire_producers,
        )),
        // Kafka's isr-expiration task.
        tokio::spawn(every(
            broker.clone(),
            Duration::from_millis((broker.config.cluster.replica_lag_time_max_ms / 2).max(1) as u64),
            crate::replica_manager::shrink_isrs,
        )),
        tokio::spawn(balance_leaders(broker.clone())),
        tokio::spawn(elect_unclean_leaders(broker.clone())),
        tokio::spawn(crate::coordinator_loads::run(broker.clone())),
        tokio::spawn(crate::group_coordinator::run_timers(broker.clone())),
        tokio::spawn(crate::txn_coordinator::run_timers(broker)),
    ]
}

async fn every(broker: Arc<Broker>, period: Duration, job: fn(&Broker)) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let broker = broker.clone();
        // File work blocks; keep it off the request threads.
        let _ = tokio::task::spawn_blocking(move || job(&broker)).await;
    }
}

/// A job of the active controller every `period`; a round that hit its bound (the job
/// returns true) runs again at once.
async fn on_controller_every<F>(period: Duration, mut round: impl FnMut() -> F)
where
    F: std::future::Future<Output = bool>,
{
    loop {
        tokio::time::sleep(period).await;
        while round().await {}
    }
}

/// Kafka's automatic preferred-leader balancing: every
/// `leader.imbalance.check.interval.seconds` while `auto.leader.rebalance.enable`.
async fn balance_leaders(broker: Arc<Broker>) {
    let cluster = &broker.config.cluster;
    if !cluster.auto_leader_rebalance_enable {
        return;
    }
    let period = Duration::from_secs(cluster.leader_imbalance_check_interval_seconds.max(1) as u64);
    on_controller_every(period, || broker.controller_balance_leaders()).await
}

/// Kafka's maybeElectUncleanLeaders: every `unclean.leader.election.interval.ms`, the
/// active controller gives leaderless partitions of topics that allow it an unclean leader.
async fn elect_unclean_leaders(broker: Arc<Broker>) {
    let period = Duration::from_millis(
        broker
            .config
            .cluster
            .unclean_leader_election_interval_ms
            .max(1) as u64,
    );
    on_controller_every(period, || broker.controller_elect_unclean_leaders()).await
}

/// Compaction rounds every `log.cleaner.backoff.ms`, a dynamic config, so the
/// wait is read again before each round.
async fn compact_every_backoff(broker: Arc<Broker>) {
    loop {
        let backoff: u64 = broker.effective_config(
            "log.cleaner.backoff.ms",
            broker.config.log_cleaner_backoff_ms,
        );
        tokio::time::sleep(Duration::from_millis(backoff.max(1))).await;
        let broker = broker.clone();
        let _ = tokio::task::spawn_blocking(move || compact(&broker)).await;
    }
}

/// Kafka's removeExpiredProducers on every partition: producers idle for
/// `producer.id.expiration.ms` (a dynamic config, read each time) and without an open
/// transaction are forgotten; their next batch is taken as a new producer's.
fn expire_producers(broker: &Broker) {
    let now = now_ms();
    let expiration_ms: i64 = broker.effective_config(
        "producer.id.expiration.ms",
        broker.config.producer_id_expiration_ms,
    );
    for partition in broker.all_partitions() {
        match partition.with_log(|log| Ok(log.remove_expired_producers(now, expiration_ms))) {
            Ok(0) => {}
            Ok(expired) => info!(
                topic = %partition.topic,
                partition = partition.index,
                expired,
                "expired idle producers"
            ),
            Err(e) => {
                warn!(topic = %partition.topic, partition = partition.index, error = %e, "producer expiry failed")
            }
        }
    }
}

fn enforce_retention(broker: &Broker) {
    let now = now_ms();
    for partition in broker.all_partitions() {
        if partition.data_dir().is_offline() {
            continue;
        }
        // Kafka applies retention.ms / retention.bytes only under cleanup.policy=delete;
        // the log start offset (DeleteRecords) is enforced when the log is written.
        if !partition.settings().cleanup_delete {
            // Compact only: just drop segments wholly below the log start offset.
            let result =
                partition.with_log(|log| log.delete_records_before(log.log_start_offset()));
            if let Err(e) = result {
                warn!(topic = %partition.topic, partition = partition.index, error = %e, "log start enforcement failed");
            }
            continue;
        }
        match partition.with_log(|log| log.enforce_retention(now)) {
            Ok(outcome) if outcome.deleted_segments > 0 => info!(
                topic = %partition.topic,
                partition = partition.index,
                segments = outcome.deleted_segments,
                "retention deleted segments"
            ),
            Ok(_) => {}
            Err(e) => {
                warn!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
            }
        }
    }
}

/// Tests only: while the file this names exists, a compaction round waits (at most
/// `CLEANER_PAUSE_LIMIT`) after building its key map, where it holds no lock; this is how
/// a test makes a round last as long as it needs.
const CLEANER_PAUSE_ENV: &str = "STROM_TEST_CLEANER_PAUSE_FILE";
const CLEANER_PAUSE_LIMIT: Duration = Duration::from_secs(60);

fn pause_while_file_exists(path: &std::path::Path, partition: &crate::partition::Partition) {
    if !path.exists() {
        return;
    }
    info!(topic = %partition.topic, partition = partition.index, "compaction round paused for a test");
    let started = std::time::Instant::now();
    while path.exists() && started.elapsed() < CLEANER_PAUSE_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn compact(broker: &Broker) {
    let pause_file = std::env::var_os(CLEANER_PAUSE_ENV).map(std::path::PathBuf::from);
    for partition in broker.all_partitions() {
        let settings = partition.settings();
        if !settings.cleanup_compact || partition.data_dir().is_offline() {
            continue;
        }
        // The partition's lock is taken only to plan the round and to swap each cleaned
        // group in: appends, fetches and offset commits go on while it maps and cleans.
        let mut hook = |step: SwapStep| {
            if let (SwapStep::MapBuilt, Some(path)) = (step, &pause_file) {
                pause_while_file_exists(path, &partition);
            }
            true
        };
        match strom_log::run_round(&*partition, now_ms(), &settings.compaction, None, &mut hook) {
            Ok(outcome) if outcome.cleaned => info!(
                topic = %partition.topic,
                partition = partition.index,
                records_removed = outcome.records_removed,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                "compacted"
            ),
            Ok(_) => {}
            // The round changed nothing; the next one tries again after the backoff.
            Err(e) => {
                warn!(topic = %partition.topic, partition = partition.index, error = %e, "compaction failed")
            }
        }
    }
}

fn roll_and_flush(broker: &Broker) {
    let now = now_ms();
    for partition in broker.all_partitions() {
        // An offline dir's logs are not touched again (and not warned about every round).
        if partition.data_dir().is_offline() {
            continue;
        }
        let result = partition
            .with_log(|log| {
                log.roll_if_due(now)?;
                log.delete_due_segments(now)?;
                log.flush_if_due(now)?;
                log.take_pending_flush()
            })
            .and_then(|pending| {
                // Rolled segments are fsynced without the partition's lock, so appends
                // never wait behind a segment's worth of writeback.
                let Some(pending) = pending else {
                    return Ok(());
                };
                if let Err(e) = pending.sync() {
                    // Never retried: the next fsync could succeed with the pages the kernel
                    // dropped after this one failed. The dir goes offline with the log.
                    let _ = partition.with_log(|log| {
                        log.mark_failed(format!("syncing rolled segments failed: {e}"));
                        Ok(())
                    });
                    partition.fail_dir(&e);
                    return Err(e);
                }
                partition.with_log(|log| log.complete_flush(pending))
            });
        if let Err(e) = result {
            warn!(topic = %partition.topic, partition = partition.index, error = %e, "roll or flush failed");
        }
    }
}
