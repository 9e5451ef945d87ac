//! Appends, reads, compaction and retention on one log at once, as the broker runs them:
//! the writer side behind one mutex (appends, cleaner rounds, retention), readers through
//! `LogReader` without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use strom_wire::batch::Batches;

use super::compaction::{eager, put, visible};
use super::*;

const KEYS: usize = 40;
const APPENDS: usize = 3_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2_048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

#[test]
fn appends_reads_compaction_and_retention_at_once_keep_every_batch_intact() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(open(dir.path(), config())));
    let reader = log.lock().unwrap().reader();
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let log = log.clone();
        thread::spawn(move || {
            for i in 0..APPENDS {
                let key = format!("k{}", i % KEYS);
                let value = format!("v{i}");
                put(&mut log.lock().unwrap(), &[(&key, &value)]);
            }
        })
    };
    let housekeeper = {
        let (log, done) = (log.clone(), done.clone());
        thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(Ordering::Acquire) {
                let mut log = log.lock().unwrap();
                log.compact(NOW_MS, &eager()).unwrap();
                // Retention well behind the head: every key is rewritten every KEYS offsets.
                let start = log.high_watermark() - 4 * KEYS as i64;
                if start > log.log_start_offset() {
                    log.delete_records_before(start).unwrap();
                }
                rounds += 1;
                drop(log);
                thread::yield_now();
            }
            rounds
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (reader, done) = (reader.clone(), done.clone());
            thread::spawn(move || {
                let (mut reads, mut batches) = (0u64, 0u64);
                let mut pick = seed as i64 * 7_919;
                while !done.load(Ordering::Acquire) {
                    let offsets = reader.offsets().snapshot();
                    let span = (offsets.high_watermark - offsets.log_start_offset).max(1);
                    pick = (pick * 48_271 + 11) % 2_147_483_647;
                    let from = offsets.log_start_offset + pick % span;
                    let slices = match reader.read(from, 8_192, offsets.high_watermark, true) {
                        Ok(slices) => slices,
                        // Retention moved the start past `from` meanwhile.
                        Err(crate::LogError::OffsetOutOfRange {
                            offset,
                            log_start_offset,
                            ..
                        }) if offset < log_start_offset => continue,
                        Err(e) => panic!("read at {from}: {e}"),
                    };
                    let bytes = slices.to_bytes().unwrap();
                    let mut previous_last = -1;
                    for batch in Batches::new(&bytes) {
                        // Batches::new validates length, magic and CRC.
                        let (_, info) = batch.expect("an intact batch");
                        assert!(info.base_offset > previous_last, "offsets increase");
                        assert!(
                            info.base_offset + i64::from(info.last_offset_delta)
                                < offsets.high_watermark
                        );
                        previous_last = info.base_offset + i64::from(info.last_offset_delta);
                        batches += 1;
                    }
                    if let Some(first) = Batches::new(&bytes).next() {
                        let (_, info) = first.unwrap();
                        assert!(info.base_offset + i64::from(info.last_offset_delta) >= from);
                    }
                    reads += 1;
                }
                (reads, batches)
            })
        })
        .collect();

    writer.join().unwrap();
    done.store(true, Ordering::Release);
    let rounds = housekeeper.join().unwrap();
    for reader in readers {
        let (reads, batches) = reader.join().unwrap();
        assert!(reads > 0 && batches > 0, "{reads} reads, {batches} batches");
    }
    assert!(rounds > 0);

    // Every key's last acknowledged value is still there, once.
    let log = log.lock().unwrap();
    let mut latest: HashMap<String, (i64, String)> = HashMap::new();
    for (offset, key, value) in visible(&log, log.log_start_offset()) {
        latest.insert(key.unwrap(), (offset, value.unwrap()));
    }
    for i in APPENDS - KEYS..APPENDS {
        let key = format!("k{}", i % KEYS);
        assert_eq!(latest[&key], (i as i64, format!("v{i}")), "{key}");
    }
    assert_eq!(log.log_end_offset(), APPENDS as i64);
}

#[test]
fn a_read_of_a_segment_that_retention_deletes_still_returns_intact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..200 {
        put(&mut log, &[("k", &format!("value-{i}"))]);
    }
    let expected = read_all(&log, 0);
    let slices = log
        .reader()
        .read(0, usize::MAX, log.high_watermark(), true)
        .unwrap();
    assert!(slices.slices.len() > 3, "the read spans several segments");
    let first_file = dir.path().join(format!("{:020}.log", 0));
    assert!(first_file.exists());
    // Retention removes every segment the read covers but the active one: their files are
    // renamed at once and deleted after file.delete.delay.ms, once no reader holds them.
    log.delete_records_before(log.high_watermark()).unwrap();
    let renamed = dir.path().join(format!("{:020}.log.deleted", 0));
    assert!(!first_file.exists() && renamed.exists());
    assert_eq!(segment_bases(&log).len(), 1);
    assert_eq!(log.delete_due_segments(NOW_MS).unwrap(), 0);
    let delay = log.config().file_delete_delay_ms;
    assert_eq!(
        log.delete_due_segments(NOW_MS + delay).unwrap(),
        0,
        "a reader holds them"
    );
    assert_eq!(slices.to_bytes().unwrap().to_vec(), expected);
    let removed = slices.slices.len() - 1;
    drop(slices);
    assert_eq!(log.delete_due_segments(NOW_MS + delay).unwrap(), removed);
    assert!(!renamed.exists());
}

#[test]
fn deleted_segment_files_left_by_a_crash_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for i in 0..100 {
        put(&mut log, &[("k", &format!("value-{i}"))]);
    }
    log.delete_records_before(log.high_watermark()).unwrap();
    let renamed = dir.path().join(format!("{:020}.log.deleted", 0));
    assert!(renamed.exists());
    drop(log);
    let log = open(dir.path(), config());
    assert!(!renamed.exists());
    assert_eq!(log.log_start_offset(), 100);
}
