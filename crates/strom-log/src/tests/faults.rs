//! Storage faults: a failed write is cut off, a failed fsync fails the log for good.

use super::*;
use crate::vectored::faults::{FAIL_SYNC, WRITE_LIMIT};
use crate::LogError;

fn active_log_file_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("00000000000000000000.log"))
        .unwrap()
        .len()
}

fn recovery_point_file(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("recovery-point-offset-checkpoint")).ok()
}

#[test]
fn a_failed_write_is_cut_off_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut expected = append(&mut log, &batch(3));
    expected.extend(append(&mut log, &batch(2)));
    let size_before = active_log_file_len(dir.path());

    // Part of the next batch lands, then the disk is full.
    WRITE_LIMIT.with(|l| l.set(Some(30)));
    let mut failing = batch(4);
    let error = log.append(&mut failing, 0, NOW_MS).unwrap_err();
    match &error {
        LogError::Io(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    assert_eq!(
        active_log_file_len(dir.path()),
        size_before,
        "the torn write is cut off"
    );
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_all(&log, 0), expected);
    assert!(
        log.failure().is_none(),
        "a cut-off write leaves the log usable"
    );

    // The next append takes the offset the failed one did not.
    let next = append(&mut log, &batch(1));
    assert_eq!(base_offsets(&next), vec![5]);
    expected.extend(next);
    drop(log);
    let reopened = open(dir.path(), LogConfig::default());
    assert_eq!(reopened.log_end_offset(), 6);
    assert_eq!(read_all(&reopened, 0), expected);
}

#[test]
fn a_failed_fsync_is_never_retried_as_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut expected = append(&mut log, &batch(2));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 2);
    let checkpoint = recovery_point_file(dir.path());
    expected.extend(append(&mut log, &batch(3)));

    FAIL_SYNC.with(|f| f.set(true));
    assert!(matches!(log.flush(), Err(LogError::Io(_))));
    FAIL_SYNC.with(|f| f.set(false));
    // The disk would take an fsync now; the pages it dropped would not be in it.
    assert!(matches!(log.flush(), Err(LogError::Failed(_))));
    assert!(matches!(
        log.append(&mut batch(1), 0, NOW_MS),
        Err(LogError::Failed(_))
    ));
    assert!(log.take_pending_flush().is_err());
    assert_eq!(
        log.recovery_point(),
        2,
        "the recovery point never passes a failed fsync"
    );
    assert_eq!(recovery_point_file(dir.path()), checkpoint);
    assert_eq!(log.log_end_offset(), 5);

    // Reopening recovers everything past the recovery point from what the file holds.
    drop(log);
    let reopened = open(dir.path(), LogConfig::default());
    assert!(reopened.failure().is_none());
    assert_eq!(read_all(&reopened, 0), expected);
}

#[test]
fn a_failed_sync_of_rolled_segments_fails_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..4 {
        append(&mut log, &batch(2));
    }
    assert!(log.segments().len() > 1);
    let pending = log.take_pending_flush().unwrap().expect("rolled segments");
    FAIL_SYNC.with(|f| f.set(true));
    let error = pending.sync().unwrap_err();
    FAIL_SYNC.with(|f| f.set(false));
    log.mark_failed(error.to_string());
    assert!(matches!(
        log.complete_flush(pending),
        Err(LogError::Failed(_))
    ));
    assert_eq!(log.recovery_point(), 0);
    assert!(log.take_pending_flush().is_err());
}

#[test]
fn a_tail_is_cut_after_a_failure_with_no_space_needed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let mut expected = Vec::new();
    for _ in 0..3 {
        expected.extend(append(&mut log, &batch(2)));
    }
    log.flush().unwrap();
    let durable_end = log.log_end_offset();
    // Written, perhaps into a new segment, but never made durable.
    for _ in 0..3 {
        append(&mut log, &batch(2));
    }
    log.cut_after_failure(durable_end).unwrap();
    assert!(log.failure().is_some());
    assert!(matches!(
        log.append(&mut batch(1), 0, NOW_MS),
        Err(LogError::Failed(_))
    ));
    drop(log);
    let reopened = open(dir.path(), config);
    assert_eq!(reopened.log_end_offset(), durable_end);
    assert_eq!(read_all(&reopened, 0), expected);
}
