//! Producer state owned by the log: checks on append, transactions and the last stable
//! offset, `.txnindex`, snapshots, replay after a restart, expiry, the bound, retention.

use kafka_protocol::records::{Compression, Record, TimestampType};

use super::{encode_records, open, NOW_MS};
use crate::producer_state::ProducerStateError;
use crate::{AbortedTxn, LogConfig, LogError, PartitionLog};

/// One batch of `count` records of `producer_id` at `epoch`, sequences from `first_sequence`
/// (-1: none, as the coordinator writes them).
fn producer_batch(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: usize,
    transactional: bool,
) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if first_sequence < 0 {
                -1
            } else {
                first_sequence + i as i32
            },
            timestamp: NOW_MS,
            key: Some(bytes::Bytes::from(format!("k{producer_id}"))),
            value: Some(bytes::Bytes::from(format!("p{producer_id}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    encode_records(&records, Compression::None)
}

/// Appends as the single replica's leader (the high watermark follows).
fn produce(log: &mut PartitionLog, batch: Vec<u8>) -> Result<crate::AppendInfo, LogError> {
    let mut batch = batch;
    let info = log.append(&mut batch, 0, NOW_MS)?;
    let end = log.log_end_offset();
    log.maybe_increment_high_watermark(end);
    Ok(info)
}

fn marker(log: &mut PartitionLog, producer_id: i64, epoch: i16, commit: bool) -> i64 {
    let info = log
        .append_control_marker(producer_id, epoch, 0, commit, 0, NOW_MS)
        .expect("marker");
    let end = log.log_end_offset();
    log.maybe_increment_high_watermark(end);
    info.base_offset
}

fn producer_error(result: Result<crate::AppendInfo, LogError>) -> ProducerStateError {
    match result {
        Err(LogError::ProducerState(e)) => e,
        other => panic!("expected a producer state error, got {other:?}"),
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    }
}

#[test]
fn retries_answer_with_the_original_offsets_and_rules_are_kafkas() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let first = produce(&mut log, producer_batch(7, 0, 0, 3, false)).unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 2, false)
    );
    produce(&mut log, producer_batch(7, 0, 3, 2, false)).unwrap();
    let retry = produce(&mut log, producer_batch(7, 0, 0, 3, false)).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (0, 2, true)
    );
    assert_eq!(log.log_end_offset(), 5, "a duplicate writes nothing");
    assert_eq!(
        producer_error(produce(&mut log, producer_batch(7, 0, 9, 1, false))),
        ProducerStateError::OutOfOrderSequence {
            producer_id: 7,
            expected: 5,
            found: 9
        }
    );
    produce(&mut log, producer_batch(7, 1, 0, 1, false)).unwrap();
    assert_eq!(
        producer_error(produce(&mut log, producer_batch(7, 0, 5, 1, false))),
        ProducerStateError::InvalidProducerEpoch {
            producer_id: 7,
            current: 1,
            found: 0
        }
    );
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn last_stable_offset_follows_open_aborted_and_committed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    produce(&mut log, producer_batch(1, 0, 0, 2, false)).unwrap(); // 0..=1
    produce(&mut log, producer_batch(2, 0, 0, 3, true)).unwrap(); // 2..=4 opens txn of 2
    produce(&mut log, producer_batch(3, 0, 0, 1, true)).unwrap(); // 5 opens txn of 3
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.reader().offsets().last_stable_offset(), 2);
    assert_eq!(
        producer_error(produce(&mut log, producer_batch(2, 0, 3, 1, false))),
        ProducerStateError::InvalidTxnState {
            producer_id: 2,
            first_offset: 2
        }
    );
    // The abort's marker at 6 is written but not yet replicated: still unstable.
    let mut batch = crate::producer_snapshot::encode_marker_batch(2, 0, 0, false, NOW_MS).unwrap();
    log.append(&mut batch, 0, NOW_MS).unwrap();
    assert_eq!(log.last_stable_offset(), 2);
    log.maybe_increment_high_watermark(7);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(
        log.reader().aborted_transactions(0, 7),
        vec![AbortedTxn {
            producer_id: 2,
            first_offset: 2
        }]
    );
    assert!(log.reader().aborted_transactions(7, 8).is_empty());
    assert_eq!(marker(&mut log, 3, 0, true), 7);
    assert_eq!(log.last_stable_offset(), 8);
    assert_eq!(log.reader().offsets().last_stable_offset(), 8);
    // An older coordinator epoch is fenced; a marker from an older producer epoch refused.
    assert!(matches!(
        log.append_control_marker(3, 0, -5, true, 0, NOW_MS),
        Err(LogError::ProducerState(
            ProducerStateError::CoordinatorFenced { .. }
        ))
    ));
    produce(&mut log, producer_batch(3, 1, 0, 1, false)).unwrap();
    assert!(matches!(
        log.append_control_marker(3, 0, 0, true, 0, NOW_MS),
        Err(LogError::ProducerState(
            ProducerStateError::InvalidProducerEpoch { .. }
        ))
    ));
    // Coordinator-written transactional batches (sequence -1) open a transaction too.
    produce(&mut log, producer_batch(4, 0, -1, 2, true)).unwrap();
    produce(&mut log, producer_batch(4, 0, -1, 1, true)).unwrap();
    assert_eq!(log.last_stable_offset(), 9);
    marker(&mut log, 4, 0, true);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn clean_restart_replays_nothing_and_keeps_state_and_txn_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    produce(&mut log, producer_batch(1, 0, 0, 2, false)).unwrap();
    produce(&mut log, producer_batch(2, 0, 0, 2, true)).unwrap(); // 2..=3
    marker(&mut log, 2, 0, false); // 4
    produce(&mut log, producer_batch(3, 0, 0, 1, true)).unwrap(); // 5, left open
    log.close().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.producer_state_replayed_batches(), 0);
    assert_eq!(log.producer_snapshot_offsets().unwrap(), vec![6]);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(
        log.reader().aborted_transactions(0, 6),
        vec![AbortedTxn {
            producer_id: 2,
            first_offset: 2
        }]
    );
    // A retry from before the restart is still a duplicate.
    let retry = produce(&mut log, producer_batch(1, 0, 0, 2, false)).unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        log.producer_state()
            .get(3)
            .unwrap()
            .current_txn_first_offset,
        Some(5)
    );
}

#[test]
fn a_crash_after_a_roll_replays_only_the_batches_after_it_and_rebuilds_the_txn_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    let mut sequence = 0;
    while log.segments().len() < 3 {
        produce(&mut log, producer_batch(1, 0, sequence, 1, false)).unwrap();
        sequence += 1;
    }
    let roll_base = log.segments()[2].base_offset;
    // The rolled segments' deferred fsync: the recovery point reaches the roll.
    let pending = log.take_pending_flush().unwrap().unwrap();
    pending.sync().unwrap();
    log.complete_flush(pending).unwrap();
    assert_eq!(log.recovery_point(), roll_base);
    assert!(log
        .producer_snapshot_offsets()
        .unwrap()
        .contains(&roll_base));
    produce(&mut log, producer_batch(9, 0, 0, 1, true)).unwrap();
    marker(&mut log, 9, 0, false);
    produce(&mut log, producer_batch(1, 0, sequence, 1, false)).unwrap();
    let end = log.log_end_offset();
    assert_eq!(
        log.segments().len(),
        3,
        "the tail stays in the active segment"
    );
    drop(log); // kill -9
    let mut log = open(dir.path(), small_segments());
    // The batch that rolled the segment, then the three after it.
    assert_eq!(log.producer_state_replayed_batches(), 4);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(
        log.reader().aborted_transactions(roll_base, end),
        vec![AbortedTxn {
            producer_id: 9,
            first_offset: roll_base + 1
        }]
    );
    assert!(
        produce(&mut log, producer_batch(1, 0, sequence, 1, false))
            .unwrap()
            .duplicate
    );
    assert_eq!(
        producer_error(produce(
            &mut log,
            producer_batch(1, 0, sequence + 5, 1, false)
        )),
        ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            expected: sequence + 1,
            found: sequence + 5
        }
    );
}

#[test]
fn a_corrupt_snapshot_falls_back_to_an_older_one_or_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    let mut sequence = 0;
    while log.segments().len() < 3 {
        produce(&mut log, producer_batch(1, 0, sequence, 1, false)).unwrap();
        sequence += 1;
    }
    let total_batches = sequence as u64;
    log.close().unwrap();
    let snapshots = PartitionLog::open(dir.path(), small_segments(), NOW_MS)
        .unwrap()
        .producer_snapshot_offsets()
        .unwrap();
    assert_eq!(snapshots.len(), 3, "{snapshots:?}");
    let newest = crate::producer_snapshot::snapshot_path(dir.path(), snapshots[2]);
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();
    let log = open(dir.path(), small_segments());
    // The next older snapshot is the second segment's base: its batches are replayed.
    let second_base = log.segments()[1].base_offset;
    assert_eq!(snapshots[1], log.segments()[2].base_offset);
    assert_eq!(
        log.producer_state_replayed_batches(),
        (log.log_end_offset() - snapshots[1]) as u64
    );
    assert!(second_base < snapshots[1]);
    assert_eq!(
        log.producer_state().get(1).unwrap().last_sequence(),
        sequence - 1
    );
    drop(log);
    for offset in crate::producer_snapshot::list_snapshots(dir.path()).unwrap() {
        std::fs::remove_file(crate::producer_snapshot::snapshot_path(dir.path(), offset)).unwrap();
    }
    let log = open(dir.path(), small_segments());
    assert_eq!(log.producer_state_replayed_batches(), total_batches);
    assert_eq!(
        log.producer_state().get(1).unwrap().last_sequence(),
        sequence - 1
    );
}

#[test]
fn truncation_cuts_the_txn_index_and_reloads_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    produce(&mut log, producer_batch(5, 0, 0, 1, true)).unwrap(); // 0
    marker(&mut log, 5, 0, false); // 1
    produce(&mut log, producer_batch(6, 0, 0, 1, true)).unwrap(); // 2
    marker(&mut log, 6, 0, false); // 3
    produce(&mut log, producer_batch(7, 0, 0, 1, true)).unwrap(); // 4, open
    assert_eq!(log.reader().aborted_transactions(0, 5).len(), 2);
    log.truncate_to(3, NOW_MS).unwrap();
    assert_eq!(
        log.reader().aborted_transactions(0, 5),
        vec![AbortedTxn {
            producer_id: 5,
            first_offset: 0
        }]
    );
    // Producer 6's transaction is open again (its marker is gone), 7 is unknown.
    assert_eq!(log.producer_state().open_transactions(), vec![(6, 2)]);
    assert!(log.producer_state().get(7).is_none());
    assert_eq!(log.last_stable_offset(), 2);
    log.close().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.reader().aborted_transactions(0, 5),
        vec![AbortedTxn {
            producer_id: 5,
            first_offset: 0
        }]
    );
    assert_eq!(log.producer_state().open_transactions(), vec![(6, 2)]);
}

#[test]
fn retention_passing_an_open_transaction_clamps_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    produce(&mut log, producer_batch(5, 0, 0, 1, true)).unwrap(); // 0, stays open
    let mut sequence = 0;
    while log.segments().len() < 4 {
        produce(&mut log, producer_batch(1, 0, sequence, 1, false)).unwrap();
        sequence += 1;
    }
    assert_eq!(log.last_stable_offset(), 0);
    let new_start = log.segments()[2].base_offset;
    log.delete_records_before(new_start).unwrap();
    assert_eq!(log.log_start_offset(), new_start);
    // Kafka keeps the transaction open and clamps the unstable offset to the log start.
    assert_eq!(log.producer_state().open_transactions(), vec![(5, 0)]);
    assert_eq!(log.last_stable_offset(), new_start);
    assert_eq!(log.reader().offsets().last_stable_offset(), new_start);
    assert!(log
        .producer_snapshot_offsets()
        .unwrap()
        .iter()
        .all(|&o| o >= new_start));
    marker(&mut log, 5, 0, true);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn idle_producers_expire_but_open_transactions_do_not_and_the_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_producer_ids: 2,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    produce(&mut log, producer_batch(1, 0, 0, 1, false)).unwrap();
    produce(&mut log, producer_batch(2, 0, 0, 1, true)).unwrap();
    assert_eq!(
        producer_error(produce(&mut log, producer_batch(3, 0, 0, 1, false))),
        ProducerStateError::TooManyProducerIds {
            producer_id: 3,
            limit: 2
        }
    );
    assert_eq!(log.remove_expired_producers(NOW_MS + 999, 1000), 0);
    assert_eq!(log.remove_expired_producers(NOW_MS + 1000, 1000), 1);
    assert!(log.producer_state().get(1).is_none());
    // Producer 1 is new now: any sequence is accepted, and 3 fits.
    produce(&mut log, producer_batch(1, 0, 17, 1, false)).unwrap();
    assert_eq!(log.producer_state().len(), 2);
    assert!(produce(&mut log, producer_batch(3, 0, 0, 1, false)).is_err());
    // A restart leaves out producers that expired meanwhile.
    log.close().unwrap();
    let config = LogConfig {
        producer_id_expiration_ms: 0,
        ..config
    };
    let log = open(dir.path(), config);
    assert_eq!(
        log.producer_state()
            .entries()
            .iter()
            .map(|e| e.producer_id)
            .collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn compaction_carries_the_txn_index_into_cleaned_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    produce(&mut log, producer_batch(5, 0, 0, 1, true)).unwrap(); // 0
    marker(&mut log, 5, 0, false); // 1
    while log.segments().len() < 4 {
        super::compaction::put(&mut log, &[("k", "v")]);
    }
    let outcome = log.compact(NOW_MS, &super::compaction::eager()).unwrap();
    assert!(outcome.cleaned);
    assert!(outcome.bytes_after < outcome.bytes_before, "{outcome:?}");
    assert_eq!(
        log.reader().aborted_transactions(0, 2),
        vec![AbortedTxn {
            producer_id: 5,
            first_offset: 0
        }]
    );
    log.close().unwrap();
    let log = open(dir.path(), small_segments());
    assert_eq!(
        log.reader().aborted_transactions(0, 2),
        vec![AbortedTxn {
            producer_id: 5,
            first_offset: 0
        }]
    );
}
