//! Leader epochs stamped on appends, the leader-epoch checkpoint, and the high watermark.

use strom_wire::batch::{set_partition_leader_epoch, BatchHeader, Batches};

use super::*;
use crate::checkpoint::LEADER_EPOCH_FILE;
use crate::LogError;

/// The partition leader epoch stamped on each batch of `bytes`.
fn stamped_epochs(bytes: &[u8]) -> Vec<i32> {
    Batches::new(bytes)
        .map(|b| {
            BatchHeader::new(b.expect("valid batch").0)
                .unwrap()
                .partition_leader_epoch()
        })
        .collect()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 250,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

#[test]
fn appends_are_stamped_and_the_cache_records_each_epochs_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    // Clients send -1 (or anything): the leader's epoch replaces it.
    let mut from_client = batch(2);
    set_partition_leader_epoch(&mut from_client, -1);
    append_in_epoch(&mut log, 0, &from_client);
    append_in_epoch(&mut log, 0, &batch(1));
    append_in_epoch(&mut log, 4, &batch(3));
    assert_eq!(stamped_epochs(&read_all(&log, 0)), vec![0, 0, 4]);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (4, 3)]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LEADER_EPOCH_FILE)).unwrap(),
        "0\n2\n0 0\n4 3\n"
    );
    // OffsetForLeaderEpoch: the latest epoch ends at the log end, older ones where the
    // next starts, unknown ones as Kafka answers them.
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 6)));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(2), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    assert_eq!(log.end_offset_for_epoch(-1), None);
}

#[test]
fn epochs_survive_a_clean_close_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for epoch in [0, 0, 0, 2, 2, 5, 5] {
        append_in_epoch(&mut log, epoch, &batch(1));
    }
    let expected = vec![(0, 0), (2, 3), (5, 5)];
    assert_eq!(epoch_pairs(&log), expected);
    log.close().unwrap();
    let mut log = open(dir.path(), small_segments());
    assert_eq!(epoch_pairs(&log), expected);
    append_in_epoch(&mut log, 6, &batch(1));
    drop(log); // kill -9: no clean-shutdown marker, the tail is recovered
    let log = open(dir.path(), small_segments());
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (2, 3), (5, 5), (6, 7)]);
    assert_eq!(log.log_end_offset(), 8);
}

#[test]
fn a_lost_checkpoint_is_rebuilt_from_the_recovered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for epoch in [0, 0, 0, 2, 2, 3, 3] {
        append_in_epoch(&mut log, epoch, &batch(1));
    }
    assert_eq!(segment_bases(&log), vec![0, 3, 6]);
    flush_rolled(&mut log);
    drop(log);
    std::fs::remove_file(dir.path().join(LEADER_EPOCH_FILE)).unwrap();
    // Segments 0 and 3 were rolled and fsynced (they are trusted); the active one at 6 is recovered
    // and its batches give their epochs back, as in Kafka's log loading.
    let log = open(dir.path(), small_segments());
    assert_eq!(epoch_pairs(&log), vec![(3, 6)]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LEADER_EPOCH_FILE)).unwrap(),
        "0\n1\n3 6\n"
    );
}

#[test]
fn a_stale_checkpoint_is_cut_to_the_log_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append_in_epoch(&mut log, 1, &batch(2));
    log.close().unwrap();
    // As after a crash between a truncation and its checkpoint: entries past the log end
    // and below the log start are dropped.
    std::fs::write(dir.path().join(LEADER_EPOCH_FILE), "0\n3\n0 0\n1 0\n7 40\n").unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(epoch_pairs(&log), vec![(1, 0)]);
}

#[test]
fn logs_written_without_epochs_open_and_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    // Batches as strom stored them before it stamped epochs: the client's -1 kept.
    let mut old = stored(&batch(2), 0);
    set_partition_leader_epoch(&mut old, -1);
    log.append_with_offsets(&old, NOW_MS).unwrap();
    log.close().unwrap();
    std::fs::remove_file(dir.path().join(LEADER_EPOCH_FILE)).ok();
    let mut log = open(dir.path(), LogConfig::default());
    assert!(epoch_pairs(&log).is_empty());
    assert_eq!(log.end_offset_for_epoch(0), None);
    append_in_epoch(&mut log, 0, &batch(1));
    assert_eq!(epoch_pairs(&log), vec![(0, 2)]);
    assert_eq!(stamped_epochs(&read_all(&log, 0)), vec![-1, 0]);
    // Epoch 0 started at 2, so asking for an older one gives 0's start.
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 3)));
}

#[test]
fn retention_moves_the_first_epoch_to_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_segments());
    for epoch in [0, 0, 0, 1, 1, 1, 2] {
        append_in_epoch(&mut log, epoch, &batch(1));
    }
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (2, 6)]);
    log.delete_records_before(4).unwrap();
    assert_eq!(epoch_pairs(&log), vec![(1, 4), (2, 6)]);
    drop(log);
    let log = open(dir.path(), small_segments());
    assert_eq!(epoch_pairs(&log), vec![(1, 4), (2, 6)]);
}

#[test]
fn the_high_watermark_is_kept_within_the_log_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), NOW_MS).unwrap();
    let reader = log.reader();
    let offsets = reader.offsets();
    assert_eq!(log.high_watermark(), 0);
    log.append(&mut batch(3), 0, NOW_MS).unwrap();
    // The log does not move it: the broker does, once the replicas have the batch.
    assert_eq!((log.high_watermark(), offsets.high_watermark()), (0, 0));
    assert_eq!(offsets.log_end_offset(), 3);
    assert!(log
        .read(0, usize::MAX, log.high_watermark(), true)
        .unwrap()
        .bytes
        .is_empty());
    assert!(log.maybe_increment_high_watermark(2));
    assert!(
        !log.maybe_increment_high_watermark(1),
        "never moves back this way"
    );
    assert_eq!(offsets.high_watermark(), 2);
    assert_eq!(log.set_high_watermark(99), 3, "clamped to the log end");
    assert_eq!(offsets.snapshot().last_stable_offset, 3);
    // DeleteRecords may not pass the high watermark.
    log.append(&mut batch(1), 0, NOW_MS).unwrap();
    assert!(matches!(
        log.delete_records_before(4),
        Err(LogError::OffsetOutOfRange { offset: 4, .. })
    ));
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert_eq!(offsets.log_start_offset(), 3);
    assert_eq!(log.set_high_watermark(0), 3, "clamped to the log start");
}
