//! `truncate_to` and `truncate_fully_and_start_at`, whole and stopped after each step as a
//! crash would stop them (the log is dropped without closing and reopened).

use strom_wire::batch::Batches;

use super::*;
use crate::truncation::TruncateStep;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 250,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

const EPOCHS: [i32; 10] = [0, 0, 0, 1, 1, 1, 1, 3, 3, 3];

/// Ten one-record batches in epochs 0, 1 and 3, three per segment: segments at 0, 3, 6, 9.
fn scenario(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    for epoch in EPOCHS {
        append_in_epoch(&mut log, epoch, &batch(1));
    }
    assert_eq!(segment_bases(&log), vec![0, 3, 6, 9]);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (3, 7)]);
    log
}

/// The stored batches of `bytes` with base offsets in `[from, to)`.
fn batches_in(bytes: &[u8], from: i64, to: i64) -> Vec<Vec<u8>> {
    Batches::new(bytes)
        .map(|b| b.expect("valid batch"))
        .filter(|(_, info)| (from..to).contains(&info.base_offset))
        .map(|(batch, _)| batch.to_vec())
        .collect()
}

/// The epoch cache a log holding the scenario's batches in `[start, end)` must have.
fn expected_epochs(start: i64, end: i64) -> Vec<(i32, i64)> {
    let mut expected: Vec<(i32, i64)> = Vec::new();
    for offset in start..end {
        let epoch = EPOCHS[offset as usize];
        if expected.last().is_none_or(|&(e, _)| e != epoch) {
            expected.push((epoch, offset));
        }
    }
    expected
}

/// A reopened log is a consistent prefix of `original`: byte-identical batches from its
/// start to its end, each reachable by offset through the index, and an epoch cache and
/// high watermark that match what it holds. Returns its log end offset.
fn assert_consistent(log: &PartitionLog, original: &[u8], context: &str) -> i64 {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let held = batches_in(&read_all(log, start), 0, i64::MAX);
    let first_base = held.first().map(|b| base_offsets(b)[0]);
    let wanted = batches_in(original, first_base.unwrap_or(end), end);
    assert_eq!(held, wanted, "{context}: batches");
    for offset in start..end {
        let read = log.read(offset, 1, i64::MAX, true).unwrap().bytes;
        assert_eq!(
            base_offsets(&read),
            vec![offset],
            "{context}: lookup of {offset}"
        );
    }
    if end > start {
        assert_eq!(
            epoch_pairs(log),
            expected_epochs(start, end),
            "{context}: epochs"
        );
    }
    assert!(
        (start..=end).contains(&log.high_watermark()),
        "{context}: hw"
    );
    end
}

fn truncated_to_five(original: &[u8], log: &PartitionLog, context: &str) {
    assert_eq!(log.log_end_offset(), 5, "{context}");
    assert_eq!(
        read_all(log, 0),
        batches_in(original, 0, 5).concat(),
        "{context}"
    );
    assert_eq!(epoch_pairs(log), vec![(0, 0), (1, 3)], "{context}");
    assert_eq!(segment_bases(log), vec![0, 3], "{context}");
}

#[test]
fn truncate_to_cuts_the_tail_and_its_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    let original = read_all(&log, 0);
    assert!(log.truncate_to(5, NOW_MS).unwrap());
    truncated_to_five(&original, &log, "truncated");
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.recovery_point(), 5);
    // Appends continue at the new end, in a new epoch.
    append_in_epoch(&mut log, 4, &batch(1));
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (4, 5)]);
    log.close().unwrap();
    let log = open(dir.path(), config());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (4, 5)]);
}

#[test]
fn truncate_to_past_the_end_only_drops_epochs_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    assert!(!log.truncate_to(10, NOW_MS).unwrap());
    assert!(!log.truncate_to(50, NOW_MS).unwrap());
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (3, 7)]);
}

#[test]
fn truncate_to_the_end_drops_an_empty_epoch_for_readers_too() {
    // A broker led epoch 5 from the log end without appending, then follows a leader
    // whose log never had epoch 5: the truncation to the end removes it everywhere.
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    let reader = log.reader();
    log.assign_epoch_start(5, 10).unwrap();
    assert_eq!(reader.latest_epoch(), Some(5));
    assert_eq!(reader.end_offset_for_epoch(3), Some((3, 10)));
    assert!(!log.truncate_to(10, NOW_MS).unwrap());
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (3, 7)]);
    assert_eq!(reader.latest_epoch(), Some(3));
    assert_eq!(reader.end_offset_for_epoch(3), Some((3, 10)));
    assert_eq!(reader.end_offset_for_epoch(5), None);
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3), (3, 7)]);
}

#[test]
fn truncate_to_a_segment_boundary_and_inside_a_multi_record_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    let original = read_all(&log, 0);
    assert!(log.truncate_to(6, NOW_MS).unwrap());
    assert_eq!(segment_bases(&log), vec![0, 3, 6]);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(read_all(&log, 0), batches_in(&original, 0, 6).concat());
    // A batch holding offsets 6..=8: cutting at 7 removes it whole.
    append_in_epoch(&mut log, 5, &batch(3));
    assert!(log.truncate_to(7, NOW_MS).unwrap());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (1, 3)]);
}

#[test]
fn truncate_to_below_the_first_segment_restarts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    log.delete_records_before(6).unwrap();
    assert_eq!(segment_bases(&log), vec![6, 9]);
    assert!(log.truncate_to(2, NOW_MS).unwrap());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
    assert_eq!(segment_bases(&log), vec![2]);
    assert!(epoch_pairs(&log).is_empty());
}

#[test]
fn truncate_fully_and_start_at_leaves_an_empty_log_at_the_offset() {
    for target in [20, 4, 0] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = scenario(dir.path());
        log.truncate_fully_and_start_at(target, NOW_MS).unwrap();
        let offsets = log.reader().offsets().snapshot();
        assert_eq!(
            (
                offsets.log_start_offset,
                offsets.log_end_offset,
                offsets.high_watermark
            ),
            (target, target, target)
        );
        assert_eq!(segment_bases(&log), vec![target]);
        assert!(epoch_pairs(&log).is_empty());
        append_in_epoch(&mut log, 7, &batch(1));
        drop(log);
        let log = open(dir.path(), config());
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (target, target + 1)
        );
        assert_eq!(epoch_pairs(&log), vec![(7, target)]);
    }
}

const TRUNCATE_TO_STEPS: [(TruncateStep, usize); 5] = [
    (TruncateStep::RecoveryPointLowered, 0),
    (TruncateStep::SegmentDeleted, 0),
    (TruncateStep::SegmentDeleted, 1),
    (TruncateStep::SegmentCut, 0),
    (TruncateStep::EpochsTruncated, 0),
];

#[test]
fn a_crash_at_any_step_of_truncate_to_leaves_a_consistent_log_and_a_rerun_finishes() {
    for (step, nth) in TRUNCATE_TO_STEPS {
        let context = format!("{step:?} #{nth}");
        let dir = tempfile::tempdir().unwrap();
        let mut log = scenario(dir.path());
        let original = read_all(&log, 0);
        let stopped = log.truncate_to_with_hook(5, NOW_MS, &mut stop_at(step, nth));
        assert!(stopped.is_err(), "{context}");
        drop(log);

        let mut log = open(dir.path(), config());
        let end = assert_consistent(&log, &original, &context);
        assert!((5..=10).contains(&end), "{context}: end {end}");
        assert!(log.truncate_to(5, NOW_MS).unwrap() || end == 5, "{context}");
        truncated_to_five(&original, &log, &context);
        drop(log);
        let log = open(dir.path(), config());
        truncated_to_five(&original, &log, &format!("{context}, reopened"));
    }
}

const TRUNCATE_FULLY_STEPS: [(TruncateStep, usize); 7] = [
    (TruncateStep::RecoveryPointLowered, 0),
    (TruncateStep::SegmentDeleted, 0),
    (TruncateStep::SegmentDeleted, 1),
    (TruncateStep::SegmentDeleted, 2),
    (TruncateStep::StartCheckpointed, 0),
    (TruncateStep::SegmentDeleted, 3),
    (TruncateStep::EpochsTruncated, 0),
];

#[test]
fn a_crash_at_any_step_of_truncate_fully_leaves_a_consistent_log_and_a_rerun_finishes() {
    for target in [20, 1] {
        for (step, nth) in TRUNCATE_FULLY_STEPS {
            let context = format!("start at {target}, {step:?} #{nth}");
            let dir = tempfile::tempdir().unwrap();
            let mut log = scenario(dir.path());
            let original = read_all(&log, 0);
            let stopped = log.truncate_fully_with_hook(target, NOW_MS, &mut stop_at(step, nth));
            assert!(stopped.is_err(), "{context}");
            drop(log);

            let mut log = open(dir.path(), config());
            assert_consistent(&log, &original, &context);
            log.truncate_fully_and_start_at(target, NOW_MS).unwrap();
            drop(log);
            let log = open(dir.path(), config());
            assert_eq!(
                (log.log_start_offset(), log.log_end_offset()),
                (target, target),
                "{context}"
            );
            assert_eq!(segment_bases(&log), vec![target], "{context}");
            assert!(epoch_pairs(&log).is_empty(), "{context}");
        }
    }
}
