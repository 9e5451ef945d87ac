use super::*;
use crate::LogError;

#[test]
fn append_assigns_offsets_and_read_returns_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let batches = [batch(1), batch(3), batch(2)];
    let mut expected = Vec::new();
    for (b, (base, last)) in batches.iter().zip([(0, 0), (1, 3), (4, 5)]) {
        let mut copy = b.clone();
        let info = log.append(&mut copy, 0, NOW_MS).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (base, last));
        assert_eq!(info.max_timestamp, NOW_MS);
        assert_eq!(info.offset_of_max_timestamp, last);
        assert_eq!(info.log_append_time_ms, -1);
        assert_eq!(copy, stored(b, base));
        expected.extend_from_slice(&copy);
    }
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.size_bytes(), expected.len() as u64);
    let result = log.read(0, usize::MAX, i64::MAX, false).unwrap();
    assert_eq!(result.bytes.to_vec(), expected);
    assert_eq!((result.log_start_offset, result.log_end_offset), (0, 6));
    // A read from a middle record starts at the batch holding it.
    let b0 = batches[0].len();
    assert_eq!(read_all(&log, 2), expected[b0..].to_vec());
    assert_eq!(
        read_all(&log, 4),
        expected[b0 + batches[1].len()..].to_vec()
    );
}

#[test]
fn read_stops_before_max_offset_and_at_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let first = append(&mut log, &batch(1));
    let second = append(&mut log, &batch(3));
    append(&mut log, &batch(2));
    // max_offset is exclusive: a batch is returned only if its last offset is below it.
    assert_eq!(
        log.read(0, usize::MAX, 4, false).unwrap().bytes.to_vec(),
        [first.clone(), second].concat()
    );
    assert_eq!(
        log.read(0, usize::MAX, 3, false).unwrap().bytes.to_vec(),
        first
    );
    assert!(log.read(1, usize::MAX, 1, true).unwrap().bytes.is_empty());
    let at_end = log.read(6, usize::MAX, i64::MAX, true).unwrap();
    assert!(at_end.bytes.is_empty());
    assert_eq!(at_end.log_end_offset, 6);
    for offset in [7, -1] {
        match log.read(offset, 100, i64::MAX, true) {
            Err(LogError::OffsetOutOfRange {
                offset: o,
                log_start_offset: 0,
                log_end_offset: 6,
            }) => assert_eq!(o, offset),
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn max_bytes_returns_whole_batches_and_min_one_batch_allows_an_oversized_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let big = append(&mut log, &batch_with(&[NOW_MS; 4], 500));
    let small = append(&mut log, &batch(1));
    let small2 = append(&mut log, &batch(1));
    assert!(big.len() > 2000);
    let limit = big.len() - 1;
    assert_eq!(
        log.read(0, limit, i64::MAX, true).unwrap().bytes.to_vec(),
        big
    );
    assert!(log
        .read(0, limit, i64::MAX, false)
        .unwrap()
        .bytes
        .is_empty());
    assert!(log.read(0, 0, i64::MAX, false).unwrap().bytes.is_empty());
    assert_eq!(log.read(0, 0, i64::MAX, true).unwrap().bytes.to_vec(), big);
    // Exactly two batches' worth, then one byte short of the second: whole batches only.
    let two = big.len() + small.len();
    assert_eq!(
        log.read(0, two, i64::MAX, false).unwrap().bytes.to_vec(),
        [big.clone(), small.clone()].concat()
    );
    assert_eq!(
        log.read(0, two - 1, i64::MAX, true).unwrap().bytes.to_vec(),
        big
    );
    assert_eq!(
        log.read(4, small.len() + 10, i64::MAX, false)
            .unwrap()
            .bytes
            .to_vec(),
        small
    );
    assert_eq!(
        log.read(5, 1, i64::MAX, true).unwrap().bytes.to_vec(),
        small2
    );
}

#[test]
fn append_rejects_empty_and_torn_input_and_oversized_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    assert!(matches!(
        log.append(&mut [], 0, NOW_MS),
        Err(LogError::EmptyAppend)
    ));
    let mut torn = batch(2);
    torn.pop();
    assert!(matches!(
        log.append(&mut torn, 0, NOW_MS),
        Err(LogError::InvalidBatch(_))
    ));
    let mut huge = batch_with(&[NOW_MS; 3], 200);
    assert!(matches!(
        log.append(&mut huge, 0, NOW_MS),
        Err(LogError::AppendTooLarge {
            segment_bytes: 300,
            ..
        })
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
}

#[test]
fn append_with_offsets_keeps_offsets_and_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &batch(2));
    let wrong = stored(&batch(1), 5);
    assert!(matches!(
        log.append_with_offsets(&wrong, NOW_MS),
        Err(LogError::UnexpectedAppendOffset {
            first_offset: 5,
            log_end_offset: 2
        })
    ));
    let overlapping = [stored(&batch(2), 2), stored(&batch(1), 3)].concat();
    assert!(matches!(
        log.append_with_offsets(&overlapping, NOW_MS),
        Err(LogError::NonMonotonicOffsets {
            base_offset: 3,
            previous_last_offset: 3
        })
    ));
    // A gap between batches (as compaction leaves) is allowed.
    let replicated = [stored(&batch(2), 2), stored(&batch(1), 10)].concat();
    let info = log.append_with_offsets(&replicated, NOW_MS).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (2, 10));
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(base_offsets(&read_all(&log, 2)), vec![2, 10]);
    assert_eq!(read_all(&log, 5), replicated[batch(2).len()..].to_vec());
}

#[test]
fn rolls_by_size_and_reads_straddle_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch(2);
    let config = LogConfig {
        segment_bytes: (one.len() * 2) as u64,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(append(&mut log, &one));
    }
    assert_eq!(segment_bases(&log), vec![0, 4, 8]);
    assert_eq!(log.log_end_offset(), 10);
    let sizes: Vec<u64> = log.segments().iter().map(|s| s.size_bytes).collect();
    assert_eq!(
        sizes,
        vec![2 * one.len() as u64, 2 * one.len() as u64, one.len() as u64]
    );
    for base in [0, 4, 8] {
        assert!(segment_file_exists(dir.path(), base));
    }
    // From the last batch of segment 0 through segment 1 into segment 2.
    let read = log
        .read(3, one.len() * 4, i64::MAX, false)
        .unwrap()
        .bytes
        .to_vec();
    assert_eq!(read, all[one.len()..one.len() * 5].to_vec());
    assert_eq!(base_offsets(&read), vec![2, 4, 6, 8]);
    assert_eq!(read_all(&log, 0), all);
    // Rolled segments are fsynced after the roll, off the append path; that moves the
    // recovery point.
    assert_eq!(log.recovery_point(), 0);
    flush_rolled(&mut log);
    assert_eq!(log.recovery_point(), 8);
    assert!(log.take_pending_flush().unwrap().is_none());
}

fn segment_file_exists(dir: &std::path::Path, base: i64) -> bool {
    ["log", "index", "timeindex"]
        .iter()
        .all(|suffix| dir.join(format!("{base:020}.{suffix}")).is_file())
}

#[test]
fn rolls_by_time_on_append_and_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    // segment.ms counts from the first batch's timestamp, compared with the incoming one.
    log.append(&mut batch_with(&[5_000], 4), 0, NOW_MS).unwrap();
    log.append(&mut batch_with(&[6_000], 4), 0, NOW_MS).unwrap();
    assert_eq!(segment_bases(&log), vec![0]);
    log.append(&mut batch_with(&[6_001], 4), 0, NOW_MS).unwrap();
    assert_eq!(segment_bases(&log), vec![0, 2]);
    // Idle: measured against now.
    assert!(!log.roll_if_due(6_001 + 1_000).unwrap());
    assert!(log.roll_if_due(6_001 + 1_001).unwrap());
    assert_eq!(segment_bases(&log), vec![0, 2, 3]);
    // An empty active segment never rolls.
    assert!(!log.roll_if_due(i64::MAX).unwrap());
    assert_eq!(segment_bases(&log), vec![0, 2, 3]);
}

#[test]
fn rolls_when_an_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 24, // three offset-index entries, two time-index entries
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..6 {
        append(&mut log, &batch(1));
    }
    // Same timestamps keep the time index at one entry; the offset index gets one for each
    // batch after the first, so it is full after four and the fifth append rolls.
    assert_eq!(segment_bases(&log), vec![0, 4]);
    assert_eq!(read_all(&log, 0).len(), 6 * batch(1).len());

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_index_bytes: 16, // two offset-index entries, one time-index entry
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for _ in 0..3 {
        append(&mut log, &batch(1));
    }
    // The time index takes its only entry with the second batch and is then full.
    assert_eq!(segment_bases(&log), vec![0, 2]);
}
