//! The process-wide segment file cache, counted from /proc/self/fd: many logs with several
//! segments each stay within the cache's capacity, read back identical bytes after their
//! files were closed, and a reader holding a segment keeps reading it across eviction,
//! retention and truncation. One test in its own process, so nothing else opens files.

use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{LogConfig, PartitionLog};

const NOW_MS: i64 = 1_700_000_000_000;
const CAPACITY: usize = 16;
const LOGS: usize = 60;
const BATCHES_PER_LOG: usize = 6;

fn open_fds() -> usize {
    // The directory listing's own descriptor is counted: take it off.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

fn batch(value: &str) -> Vec<u8> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: NOW_MS,
        key: None,
        value: Some(bytes::Bytes::from(value.as_bytes().to_vec())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.to_vec()
}

fn config() -> LogConfig {
    LogConfig {
        // Every batch after the first in a segment rolls a new one.
        segment_bytes: 100,
        index_interval_bytes: 1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn read_all(log: &PartitionLog) -> Vec<u8> {
    let slices = log
        .reader()
        .read(log.log_start_offset(), usize::MAX, i64::MAX, true)
        .unwrap();
    slices.to_bytes().unwrap().to_vec()
}

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, config(), NOW_MS).unwrap()
}

#[test]
fn segment_files_stay_within_the_cache_and_read_back_intact() {
    strom_log::set_max_open_files(CAPACITY);
    let root = tempfile::tempdir().unwrap();
    let baseline = open_fds();
    let mut logs: Vec<PartitionLog> = (0..LOGS)
        .map(|i| open(&root.path().join(format!("log-{i}"))))
        .collect();
    let mut expected: Vec<Vec<u8>> = vec![Vec::new(); LOGS];
    for round in 0..BATCHES_PER_LOG {
        for (i, log) in logs.iter_mut().enumerate() {
            let mut bytes = batch(&format!("log {i} batch {round}"));
            log.append(&mut bytes, 0, NOW_MS).unwrap();
            log.set_high_watermark(log.log_end_offset());
            expected[i].extend_from_slice(&bytes);
            assert!(
                open_fds() - baseline <= CAPACITY,
                "after log {i} round {round}"
            );
        }
    }
    assert!(logs.iter().all(|l| l.segments().len() == BATCHES_PER_LOG));
    assert_eq!(strom_log::open_file_count(), CAPACITY);
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(read_all(log), expected[i], "log {i}");
        assert!(open_fds() - baseline <= CAPACITY);
    }

    // A reader holding log 0's first segment, its file since closed by the cache.
    let held = logs[0].reader().read(0, usize::MAX, 1, true).unwrap();
    let held_view = held.slices[0].segment.clone();
    let first_batch = expected[0][..held.len() as usize].to_vec();
    for log in &logs[1..] {
        read_all(log);
    }
    assert!(open_fds() - baseline <= CAPACITY + 1, "the held file only");
    // Retention renames the segment to .deleted; the reader still reads it, by file and
    // by view (reopened under its new name).
    logs[0].delete_records_before(1).unwrap();
    logs[0].enforce_retention(NOW_MS).unwrap();
    assert!(root
        .path()
        .join("log-0")
        .join(format!("{:020}.log.deleted", 0))
        .exists());
    drop(held.slices[0].file.clone());
    assert_eq!(held.to_bytes().unwrap().to_vec(), first_batch);
    let mut via_view = vec![0u8; first_batch.len()];
    held_view
        .file()
        .unwrap()
        .read_exact_at(&mut via_view, 0)
        .unwrap();
    assert_eq!(via_view, first_batch);
    // Held, so not deleted even though the delay is 0.
    assert_eq!(logs[0].delete_due_segments(NOW_MS).unwrap(), 0);
    drop(held);
    drop(held_view);
    assert_eq!(logs[0].delete_due_segments(NOW_MS).unwrap(), 1);

    // Truncation deletes the newest segments at once: a reader holding one still reads it.
    let last = (BATCHES_PER_LOG - 1) as i64;
    let held = logs[1]
        .reader()
        .read(last, usize::MAX, i64::MAX, true)
        .unwrap();
    let held_view = held.slices[0].segment.clone();
    let tail = read_tail(&logs[1], last);
    let removed = read_tail(&logs[1], last - 1);
    drop(held);
    for log in &logs[2..] {
        read_all(log);
    }
    // Deletes the segment of `last`, cuts the one before.
    logs[1].truncate_to(last - 1, NOW_MS).unwrap();
    assert!(!root
        .path()
        .join("log-1")
        .join(format!("{last:020}.log"))
        .exists());
    let mut via_view = vec![0u8; tail.len()];
    held_view
        .file()
        .unwrap()
        .read_exact_at(&mut via_view, 0)
        .unwrap();
    assert_eq!(via_view, tail);
    drop(held_view);
    let kept = expected[1].len() - removed.len();
    expected[1].truncate(kept);
    assert_eq!(read_all(&logs[1]), expected[1]);

    // Closed and reopened: everything reads back the same, still within the capacity.
    for log in logs.drain(..) {
        log.close().unwrap();
    }
    assert_eq!(open_fds(), baseline);
    let logs: Vec<PartitionLog> = (0..LOGS)
        .map(|i| open(&root.path().join(format!("log-{i}"))))
        .collect();
    assert!(open_fds() - baseline <= CAPACITY);
    for (i, log) in logs.iter().enumerate().skip(1) {
        assert_eq!(read_all(log), expected[i], "log {i} after reopening");
    }
    assert!(open_fds() - baseline <= CAPACITY);
}

fn read_tail(log: &PartitionLog, from: i64) -> Vec<u8> {
    log.reader()
        .read(from, usize::MAX, i64::MAX, true)
        .unwrap()
        .to_bytes()
        .unwrap()
        .to_vec()
}
