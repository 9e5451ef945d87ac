use std::time::{SystemTime, UNIX_EPOCH};

use super::*;
use crate::{LogError, RetentionOutcome};

fn one_batch_per_segment(batch_bytes: usize) -> LogConfig {
    LogConfig {
        segment_bytes: batch_bytes as u64,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Four two-record batches stamped 1000, 2000, 3000, 4000, one per segment (the last active).
fn aged_log(dir: &Path) -> (PartitionLog, usize) {
    let b = batch_with(&[500, 1_000], 4).len();
    let mut log = open(dir, one_batch_per_segment(b));
    for ts in [1_000, 2_000, 3_000, 4_000] {
        append(&mut log, &batch_with(&[ts - 500, ts], 4));
    }
    assert_eq!(segment_bases(&log), vec![0, 2, 4, 6]);
    (log, b)
}

fn with_config(log: &mut PartitionLog, change: impl FnOnce(&mut LogConfig)) {
    let mut config = log.config().clone();
    change(&mut config);
    log.update_config(config);
}

#[test]
fn delete_records_raises_start_deletes_segments_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, b) = aged_log(dir.path());
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert_eq!(segment_bases(&log), vec![2, 4, 6]);
    assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
    assert!(matches!(
        log.read(2, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange {
            offset: 2,
            log_start_offset: 3,
            log_end_offset: 8
        })
    ));
    // Offset 3 sits in the batch based at 2, which is returned whole.
    assert_eq!(base_offsets(&read_all(&log, 3)), vec![2, 4, 6]);
    assert_eq!(log.size_bytes(), 3 * b as u64);
    // Lower offsets change nothing; beyond the log end is an error.
    assert_eq!(log.delete_records_before(1).unwrap(), 3);
    assert!(matches!(
        log.delete_records_before(9),
        Err(LogError::OffsetOutOfRange { offset: 9, .. })
    ));
    drop(log); // crash
    let mut log = open(dir.path(), one_batch_per_segment(b));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 8));
    // Up to the log end: every segment but the active one goes.
    assert_eq!(log.delete_records_before(8).unwrap(), 8);
    assert_eq!(segment_bases(&log), vec![6]);
    assert!(log.read(8, 100, i64::MAX, true).unwrap().bytes.is_empty());
    log.close().unwrap();
    let mut log = open(dir.path(), one_batch_per_segment(b));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 8));
    assert_eq!(base_offsets(&append(&mut log, &batch(1))), vec![8]);
}

#[test]
fn retention_ms_deletes_old_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, b) = aged_log(dir.path());
    with_config(&mut log, |c| c.retention_ms = 1_000);
    // 4500 - 3000 > 1000 for the first three; 4500 - 4000 is not.
    let outcome = log.enforce_retention(4_500).unwrap();
    assert_eq!(
        outcome,
        RetentionOutcome {
            deleted_segments: 3,
            deleted_bytes: 3 * b as u64,
            log_start_offset: 6
        }
    );
    assert_eq!(segment_bases(&log), vec![6]);
    assert_eq!(base_offsets(&read_all(&log, 6)), vec![6]);
    assert_eq!(log.enforce_retention(4_500).unwrap().deleted_segments, 0);
}

#[test]
fn retention_ms_rolls_and_deletes_the_active_segment_when_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, b) = aged_log(dir.path());
    with_config(&mut log, |c| c.retention_ms = 1_000);
    let outcome = log.enforce_retention(10_000).unwrap();
    assert_eq!(outcome.deleted_segments, 4);
    assert_eq!(outcome.deleted_bytes, 4 * b as u64);
    assert_eq!(segment_bases(&log), vec![8]);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.size_bytes()
        ),
        (8, 8, 0)
    );
    // An empty active segment is never rolled or deleted.
    assert_eq!(log.enforce_retention(20_000).unwrap().deleted_segments, 0);
    assert_eq!(base_offsets(&append(&mut log, &batch(1))), vec![8]);
    drop(log);
    let log = open(dir.path(), one_batch_per_segment(b));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 9));
}

#[test]
fn retention_bytes_deletes_oldest_segments_while_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, b) = aged_log(dir.path());
    let b = b as i64;
    // 4 segments, limit just over 2: deleting one leaves 3b > limit, but a second would
    // overshoot (Kafka deletes only while the whole segment fits in the excess).
    with_config(&mut log, |c| c.retention_bytes = 2 * b + 1);
    assert_eq!(log.enforce_retention(0).unwrap().deleted_segments, 1);
    assert_eq!(segment_bases(&log), vec![2, 4, 6]);
    with_config(&mut log, |c| c.retention_bytes = 2 * b);
    assert_eq!(log.enforce_retention(0).unwrap().deleted_segments, 1);
    assert_eq!(segment_bases(&log), vec![4, 6]);
    // Zero bytes: everything, the active segment included after a roll.
    with_config(&mut log, |c| c.retention_bytes = 0);
    let outcome = log.enforce_retention(0).unwrap();
    assert_eq!((outcome.deleted_segments, outcome.log_start_offset), (2, 8));
    assert_eq!(segment_bases(&log), vec![8]);
}

#[test]
fn retention_never_deletes_past_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = aged_log(dir.path());
    with_config(&mut log, |c| c.retention_ms = 0);
    // Segment [2, 4) ends at 4 > 3: only the first segment is below the high watermark.
    assert_eq!(
        log.enforce_retention_up_to(10_000, 3)
            .unwrap()
            .deleted_segments,
        1
    );
    assert_eq!(segment_bases(&log), vec![2, 4, 6]);
    assert_eq!(
        log.enforce_retention_up_to(10_000, 6)
            .unwrap()
            .deleted_segments,
        2
    );
    assert_eq!(segment_bases(&log), vec![6]);
}

#[test]
fn unlimited_retention_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = aged_log(dir.path());
    with_config(&mut log, |c| {
        c.retention_ms = -1;
        c.retention_bytes = -1;
    });
    assert_eq!(log.enforce_retention(i64::MAX).unwrap().deleted_segments, 0);
    assert_eq!(segment_bases(&log), vec![0, 2, 4, 6]);
}

#[test]
fn segments_without_timestamps_age_by_file_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let b = batch_with(&[-1], 4).len();
    let mut log = open(dir.path(), one_batch_per_segment(b));
    append(&mut log, &batch_with(&[-1], 4));
    append(&mut log, &batch_with(&[-1], 4));
    assert_eq!(log.segments()[0].max_timestamp_ms, -1);
    with_config(&mut log, |c| c.retention_ms = 60_000);
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(log.enforce_retention(wall_ms).unwrap().deleted_segments, 0);
    assert_eq!(
        log.enforce_retention(wall_ms + 120_000)
            .unwrap()
            .deleted_segments,
        2
    );
}

#[test]
fn flush_by_message_count_and_by_time_advances_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 3,
        flush_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, &batch(2));
    assert_eq!(log.recovery_point(), 0);
    append(&mut log, &batch(1)); // 3 unflushed: flushed by the append itself
    assert_eq!(log.recovery_point(), 3);
    append(&mut log, &batch(1));
    log.flush_if_due(NOW_MS + 999).unwrap();
    assert_eq!(log.recovery_point(), 3);
    log.flush_if_due(NOW_MS + 1_000).unwrap();
    assert_eq!(log.recovery_point(), 4);
    let checkpoint =
        std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(checkpoint, "0\n4\n");
}

#[test]
fn lowering_segment_bytes_rolls_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &batch(1));
    append(&mut log, &batch(1));
    with_config(&mut log, |c| c.segment_bytes = batch(1).len() as u64 * 2);
    append(&mut log, &batch(1));
    assert_eq!(segment_bases(&log), vec![0, 2]);
}
