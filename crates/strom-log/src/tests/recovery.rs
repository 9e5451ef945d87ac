use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;

use super::*;

fn log_path(dir: &Path, base: i64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Appends `count` two-record batches and drops the log without closing it.
fn crashed_log(dir: &Path, count: usize) -> Vec<Vec<u8>> {
    let mut log = open(dir, LogConfig::default());
    let stored: Vec<Vec<u8>> = (0..count).map(|_| append(&mut log, &batch(2))).collect();
    drop(log);
    stored
}

#[test]
fn recovery_cuts_a_torn_tail_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), 5);
    let path = log_path(dir.path(), 0);
    let full = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(full - 7)
        .unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(read_all(&log, 0), stored[..4].concat());
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        (stored[0].len() * 4) as u64
    );
    let next = append(&mut log, &batch(1));
    assert_eq!(base_offsets(&next), vec![8]);
    assert_eq!(read_all(&log, 6), [stored[3].clone(), next].concat());
}

#[test]
fn recovery_cuts_garbage_written_over_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), 4);
    let path = log_path(dir.path(), 0);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    // Corrupt a record byte of the third batch (the CRC catches it) and add junk after it.
    let third = (stored[0].len() * 2) as u64;
    file.write_all_at(&[0xAB; 5], third + 70).unwrap();
    file.write_all_at(&[0xFF; 100], (stored[0].len() * 4) as u64)
        .unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log, 0), stored[..2].concat());
    assert!(read_all(&log, 4).is_empty());
    let next = append(&mut log, &batch(2));
    assert_eq!(base_offsets(&next), vec![4]);
}

#[test]
fn recovery_survives_a_huge_length_and_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let stored = crashed_log(dir.path(), 2);
    let path = log_path(dir.path(), 0);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    // The second batch claims ~2 GiB: must be rejected against the file size, not allocated.
    file.write_all_at(&i32::MAX.to_be_bytes(), stored[0].len() as u64 + 8)
        .unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log, 0), stored[0]);
    drop(log);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
}

#[test]
fn truncation_in_an_older_segment_deletes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(2);
    let config = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let stored: Vec<Vec<u8>> = (0..5).map(|_| append(&mut log, &one)).collect();
    drop(log);
    // Nothing was flushed: the recovery point is 0 (no checkpoint was written).
    assert!(!dir.path().join("recovery-point-offset-checkpoint").exists());
    let file = OpenOptions::new()
        .write(true)
        .open(log_path(dir.path(), 4))
        .unwrap();
    file.set_len(one.len() as u64 + 3).unwrap();
    let log = open(dir.path(), config);
    assert_eq!(segment_bases(&log), vec![0, 4]);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(read_all(&log, 0), stored[..3].concat());
    assert!(!log_path(dir.path(), 8).exists());
}

/// A clean close leaves a marker; reopening trusts the files without validating batches,
/// so a CRC-corrupted batch stays. Without the marker the same file is recovered.
#[test]
fn clean_close_skips_recovery_and_a_missing_marker_triggers_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let stored: Vec<Vec<u8>> = (0..3).map(|_| append(&mut log, &batch(2))).collect();
    log.close().unwrap();
    let marker = dir.path().join(".kafka_cleanshutdown");
    assert!(marker.is_file());
    let file = OpenOptions::new()
        .write(true)
        .open(log_path(dir.path(), 0))
        .unwrap();
    let second_record_byte = stored[0].len() as u64 + 70;
    file.write_all_at(&[0xAB], second_record_byte).unwrap();
    let mut corrupted = stored.concat();
    corrupted[second_record_byte as usize] = 0xAB;

    let log = open(dir.path(), LogConfig::default());
    assert!(!marker.exists(), "the marker is consumed on open");
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(read_all(&log, 0), corrupted);
    drop(log); // crash: no marker now

    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log, 0), stored[0]);
}

#[test]
fn clean_reopen_restores_state_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let mut all = Vec::new();
    for i in 0..6 {
        all.extend(append(&mut log, &batch_with(&[NOW_MS + i, NOW_MS + i], 20)));
    }
    let before = log.segments();
    log.close().unwrap();
    let mut log = open(dir.path(), config);
    assert_eq!(log.segments(), before);
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(read_all(&log, 0), all);
    for offset in 0..12 {
        let first = log.read(offset, 1, i64::MAX, true).unwrap().bytes.to_vec();
        assert_eq!(base_offsets(&first), vec![offset - offset % 2]);
    }
    let next = append(&mut log, &batch(1));
    assert_eq!(base_offsets(&next), vec![12]);
}

/// After a crash only segments from the recovery point on are validated: a rolled and
/// fsynced segment is trusted as is, while the active one is checked batch by batch.
#[test]
fn crash_recovery_starts_at_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(2);
    let config = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    let stored: Vec<Vec<u8>> = (0..4).map(|_| append(&mut log, &one)).collect();
    assert_eq!(segment_bases(&log), vec![0, 4]);
    flush_rolled(&mut log);
    assert_eq!(log.recovery_point(), 4);
    drop(log);
    let record_byte = one.len() as u64 + 70;
    for base in [0, 4] {
        let file = OpenOptions::new()
            .write(true)
            .open(log_path(dir.path(), base))
            .unwrap();
        file.write_all_at(&[0xAB], record_byte).unwrap();
    }
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 6);
    let mut trusted = stored[..2].concat();
    trusted[record_byte as usize] = 0xAB;
    assert_eq!(read_all(&log, 0), [trusted, stored[2].clone()].concat());
}

/// The inode of a checkpoint file: a rewrite (temp file + rename) gives it a new one.
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().ino()
}

#[test]
fn close_rewrites_only_what_changed_and_the_log_reopens_clean() {
    let dir = tempfile::tempdir().unwrap();
    let start_file = dir.path().join("log-start-offset-checkpoint");
    let marker = dir.path().join(".kafka_cleanshutdown");
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &batch(2));
    log.close().unwrap();
    assert!(marker.is_file());
    let start_inode = inode(&start_file);

    // Nothing written since: the log start offset checkpoint stays as it was.
    let log = open(dir.path(), LogConfig::default());
    assert!(!marker.exists());
    log.close().unwrap();
    assert_eq!(inode(&start_file), start_inode);
    assert!(marker.is_file());

    // A new start (DeleteRecords) is checkpointed on close; appended data survives it.
    let mut log = open(dir.path(), LogConfig::default());
    let second = append(&mut log, &batch(3));
    assert_eq!(log.delete_records_before(2).unwrap(), 2);
    log.close().unwrap();
    assert_ne!(inode(&start_file), start_inode);
    assert_eq!(fs::read_to_string(&start_file).unwrap(), "0\n2\n");
    let log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 5));
    assert_eq!(read_all(&log, 2), stored(&second, 2));
}

/// Closing the logs of a log dir writes no marker of their own; the log dir's one, written
/// after a filesystem sync, makes the next open trust the files (a CRC-corrupted batch
/// stays). Once it is removed, a crash after new appends is recovered batch by batch.
#[test]
fn log_dir_marker_is_trusted_once_and_a_crash_after_it_recovers() {
    let log_dir = tempfile::tempdir().unwrap();
    let handle = fs::File::open(log_dir.path()).unwrap();
    let dirs = [log_dir.path().join("a-0"), log_dir.path().join("b-0")];
    let mut stored = Vec::new();
    let mut closing = Vec::new();
    for dir in &dirs {
        let mut log = open(dir, LogConfig::default());
        stored.push(
            (0..3)
                .map(|_| append(&mut log, &batch(2)))
                .collect::<Vec<_>>(),
        );
        closing.push(log.close_unsynced().unwrap());
    }
    crate::sync_filesystem(&handle).unwrap();
    for log in &closing {
        log.finish().unwrap();
    }
    drop(closing);
    crate::write_log_dir_clean_shutdown(log_dir.path(), &handle).unwrap();
    let marker = log_dir.path().join(".kafka_cleanshutdown");
    assert!(marker.is_file());
    for dir in &dirs {
        assert!(!dir.join(".kafka_cleanshutdown").exists());
        assert_eq!(
            fs::read_to_string(dir.join("recovery-point-offset-checkpoint")).unwrap(),
            "0\n6\n"
        );
    }

    let file = OpenOptions::new()
        .write(true)
        .open(log_path(&dirs[0], 0))
        .unwrap();
    let record_byte = stored[0][0].len() as u64 + 70;
    file.write_all_at(&[0xAB], record_byte).unwrap();
    assert!(crate::log_dir_had_clean_shutdown(log_dir.path()));
    let mut log =
        PartitionLog::open_in_log_dir(&dirs[0], LogConfig::default(), NOW_MS, true).unwrap();
    assert_eq!(log.log_end_offset(), 6, "trusted as closed");
    crate::remove_log_dir_clean_shutdown(log_dir.path()).unwrap();
    assert!(!marker.exists());
    let mut copy = batch(1);
    log.append(&mut copy, 0, NOW_MS).unwrap();
    drop(log); // kill -9

    assert!(!crate::log_dir_had_clean_shutdown(log_dir.path()));
    let log = PartitionLog::open_in_log_dir(&dirs[0], LogConfig::default(), NOW_MS, false).unwrap();
    assert_eq!(
        log.log_end_offset(),
        2,
        "the corrupted batch and all after it are cut off"
    );
    assert_eq!(read_all(&log, 0), stored[0][0]);
}

/// A log closed by today's `close` (its own marker) opens in a log dir without recovery,
/// and the leftover marker is removed.
#[test]
fn own_marker_still_counts_in_a_log_dir_and_is_removed() {
    let log_dir = tempfile::tempdir().unwrap();
    let dir = log_dir.path().join("a-0");
    let mut log = open(&dir, LogConfig::default());
    let stored: Vec<Vec<u8>> = (0..2).map(|_| append(&mut log, &batch(2))).collect();
    log.close().unwrap();
    let own = dir.join(".kafka_cleanshutdown");
    assert!(own.is_file());
    let file = OpenOptions::new()
        .write(true)
        .open(log_path(&dir, 0))
        .unwrap();
    let record_byte = stored[0].len() as u64 + 70;
    file.write_all_at(&[0xAB], record_byte).unwrap();
    let log = PartitionLog::open_in_log_dir(&dir, LogConfig::default(), NOW_MS, false).unwrap();
    assert_eq!(log.log_end_offset(), 4, "trusted: closed cleanly");
    assert!(!own.exists());
    drop(log);
    let log = PartitionLog::open_in_log_dir(&dir, LogConfig::default(), NOW_MS, false).unwrap();
    assert_eq!(log.log_end_offset(), 2);
}
