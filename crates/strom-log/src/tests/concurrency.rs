//! Appends, reads, compaction and retention on one log at once, as the broker runs them:
//! the writer side behind one mutex (appends, cleaner rounds, retention), readers through
//! `LogReader` without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use strom_wire::batch::Batches;

use super::compaction::{eager, put, visible};
use super::compaction_crash::leftovers;
use super::*;
use crate::swap::SwapStep;

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
                // As the broker's cleaner runs it: the lock only to plan and to swap.
                crate::run_round(&*log, NOW_MS, &eager(), None, &mut |_| true).unwrap();
                let mut log = log.lock().unwrap();
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

/// Ten segments of `KEYS` keys each written over and over, and an active segment.
fn overwritten_log(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    for i in 0..400 {
        put(&mut log, &[(&format!("k{}", i % KEYS), &format!("v{i}"))]);
    }
    assert!(segment_bases(&log).len() > 5);
    log
}

#[test]
fn a_compaction_round_holds_no_lock_while_it_maps_and_cleans() {
    let dir = tempfile::tempdir().unwrap();
    let log = Mutex::new(overwritten_log(dir.path()));
    let mut appended = Vec::new();
    let mut append_now = |step: SwapStep| {
        if matches!(step, SwapStep::MapBuilt | SwapStep::CleanedWritten) {
            let mut log = log
                .try_lock()
                .expect("the cleaner holds no lock while it maps and cleans");
            let value = format!("during-{step:?}-{}", appended.len());
            put(&mut log, &[("late", &value)]);
            appended.push((log.log_end_offset() - 1, value));
        }
        true
    };
    let outcome = crate::run_round(&log, NOW_MS, &eager(), None, &mut append_now).unwrap();
    assert!(outcome.cleaned);
    assert!(outcome.records_removed > 0);
    assert!(
        appended.len() >= 2,
        "appended at the map and after each cleaned group"
    );
    let log = log.into_inner().unwrap();
    let visible = visible(&log, 0);
    for (offset, value) in &appended {
        assert!(visible.contains(&(*offset, Some("late".into()), Some(value.clone()))));
    }
    for i in 400 - KEYS..400 {
        let record = (
            i as i64,
            Some(format!("k{}", i % KEYS)),
            Some(format!("v{i}")),
        );
        assert!(visible.contains(&record), "{record:?}");
    }
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_round_whose_segments_retention_removed_stops_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let log = Mutex::new(overwritten_log(dir.path()));
    let before = read_all(&log.lock().unwrap(), 0);
    let second_segment = segment_bases(&log.lock().unwrap())[1];
    let mut retention_now = |step: SwapStep| {
        if step == SwapStep::MapBuilt {
            let mut log = log.lock().unwrap();
            log.delete_records_before(second_segment).unwrap();
        }
        true
    };
    let outcome = crate::run_round(&log, NOW_MS, &eager(), None, &mut retention_now).unwrap();
    assert!(
        !outcome.cleaned,
        "the first group's segment is gone: the round stops"
    );
    assert!(leftovers(dir.path()).is_empty());
    let mut log = log.into_inner().unwrap();
    assert_eq!(log.cleaner_checkpoint().unwrap(), None);
    // Nothing was swapped: what remains is byte for byte what was there.
    let from_second = read_all(&log, second_segment);
    assert!(!from_second.is_empty() && before.ends_with(&from_second));
    // The next round cleans what is left.
    let outcome = log.compact(NOW_MS, &eager()).unwrap();
    assert!(outcome.cleaned && outcome.records_removed > 0);
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!(log.log_start_offset(), second_segment);
    assert_eq!(log.log_end_offset(), 400);
}
