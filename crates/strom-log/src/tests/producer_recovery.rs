//! Idempotent-producer state rebuilt from the newest segments after a restart.

use bytes::Bytes;

use super::*;
use crate::producer_recovery::PRODUCER_STATE_TAIL_BYTES;
use crate::producer_state::{ProducerBatch, ProducerStateError, SequenceCheck};

const DAY_MS: i64 = 86_400_000;

/// One batch of `count` records of `producer_id` at `epoch`, sequences from `first_sequence`.
fn idempotent_batch(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: usize,
    timestamp: i64,
) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first_sequence + i as i32,
            timestamp,
            key: None,
            value: Some(Bytes::from(format!(
                "p{producer_id}-s{}",
                first_sequence + i as i32
            ))),
            headers: Default::default(),
        })
        .collect();
    encode_records(&records, Compression::None)
}

fn append_at(log: &mut PartitionLog, batch: &[u8]) -> (i64, i64) {
    let mut copy = batch.to_vec();
    let info = log.append(&mut copy, 0, NOW_MS).expect("append");
    (info.base_offset, info.last_offset)
}

#[test]
fn a_retried_batch_is_a_duplicate_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append_at(&mut log, &batch(3));
    let first = append_at(&mut log, &idempotent_batch(7, 3, 0, 2, NOW_MS));
    let second = append_at(&mut log, &idempotent_batch(7, 3, 2, 2, NOW_MS));
    append_at(&mut log, &idempotent_batch(9, 0, 0, 1, NOW_MS));
    drop(log); // no clean close: the restart recovers the tail first

    let log = open(dir.path(), LogConfig::default());
    let table = log
        .recent_producer_state(NOW_MS, DAY_MS, PRODUCER_STATE_TAIL_BYTES)
        .unwrap();
    assert_eq!(table.len(), 2);
    assert_eq!(
        table.check(7, 3, 2, 3),
        Ok(SequenceCheck::Duplicate(ProducerBatch {
            first_sequence: 2,
            last_sequence: 3,
            base_offset: second.0,
            last_offset: second.1,
        }))
    );
    assert_eq!((first, second), ((3, 4), (5, 6)));
    assert_eq!(table.check(7, 3, 4, 4), Ok(SequenceCheck::Append));
    assert_eq!(
        table.check(7, 3, 5, 5),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: 7,
            expected: 4,
            found: 5
        })
    );
    assert_eq!(
        table.check(7, 2, 4, 4),
        Err(ProducerStateError::InvalidProducerEpoch {
            producer_id: 7,
            current: 3,
            found: 2
        })
    );
    assert!(matches!(
        table.check(9, 0, 0, 0),
        Ok(SequenceCheck::Duplicate(_))
    ));
}

#[test]
fn only_the_tail_is_read_and_idle_producers_expire() {
    let dir = tempfile::tempdir().unwrap();
    let one_batch = idempotent_batch(1, 0, 0, 1, NOW_MS).len() as u64;
    // Every segment holds exactly one batch.
    let config = LogConfig {
        segment_bytes: one_batch + 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    append_at(&mut log, &idempotent_batch(1, 0, 0, 1, NOW_MS));
    append_at(&mut log, &idempotent_batch(4, 0, 0, 1, NOW_MS));
    append_at(
        &mut log,
        &idempotent_batch(2, 0, 10, 1, NOW_MS - 2 * DAY_MS),
    );
    append_at(&mut log, &idempotent_batch(3, 5, 20, 1, NOW_MS));
    assert_eq!(segment_bases(&log), vec![0, 1, 2, 3]);
    log.close().unwrap();

    let log = open(dir.path(), config);
    let table = log
        .recent_producer_state(NOW_MS, DAY_MS, 2 * one_batch)
        .unwrap();
    // The tail is the last two segments. Producer 3 is in the newest; 2 is in the one
    // before but idle for two days; 1 and 4 are only before the tail, so they are
    // unknown and start anew.
    assert_eq!(table.len(), 1);
    assert!(matches!(
        table.check(3, 5, 20, 20),
        Ok(SequenceCheck::Duplicate(_))
    ));
    assert_eq!(table.check(2, 0, 99, 99), Ok(SequenceCheck::Append));
    assert_eq!(table.check(1, 0, 42, 42), Ok(SequenceCheck::Append));
}

#[test]
fn the_tail_starts_at_an_indexed_batch_inside_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let sizes: Vec<u64> = (0..4)
        .map(|p| {
            let b = idempotent_batch(p, 0, 0, 1, NOW_MS);
            append_at(&mut log, &b);
            b.len() as u64
        })
        .collect();
    assert_eq!(segment_bases(&log), vec![0]);
    // One byte more than the last two batches: the tail begins at the batch before them.
    let table = log
        .recent_producer_state(NOW_MS, DAY_MS, sizes[2] + sizes[3] + 1)
        .unwrap();
    assert_eq!(table.len(), 3);
    assert_eq!(table.check(0, 0, 7, 7), Ok(SequenceCheck::Append));
    for producer in 1..4 {
        assert!(matches!(
            table.check(producer, 0, 0, 0),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }
}
