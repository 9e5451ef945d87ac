use kafka_protocol::records::Compression;
use strom_wire::batch::set_log_append_time;

use super::*;

/// Three batches with out-of-order timestamps inside and across batches:
/// offsets 0..=2 at [100, 300, 200], 3..=4 at [150, 400], 5 at [500].
fn timestamp_log(dir: &Path, config: LogConfig) -> PartitionLog {
    let mut log = open(dir, config);
    for ts in [&[100, 300, 200][..], &[150, 400], &[500]] {
        append(&mut log, &batch_with(ts, 8));
    }
    log
}

fn assert_timestamp_lookups(log: &PartitionLog) {
    let cases = [
        (i64::MIN, Some((0, 100))),
        (50, Some((0, 100))),
        (100, Some((0, 100))),
        (101, Some((1, 300))),
        (250, Some((1, 300))),
        (300, Some((1, 300))),
        (301, Some((4, 400))),
        (400, Some((4, 400))),
        (450, Some((5, 500))),
        (500, Some((5, 500))),
        (501, None),
    ];
    for (target, expected) in cases {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "target {target}"
        );
    }
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = timestamp_log(dir.path(), LogConfig::default());
    assert_timestamp_lookups(&log);
}

#[test]
fn offset_for_timestamp_uses_indexes_and_spans_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1,
        segment_bytes: 2 * batch_with(&[100, 300, 200], 8).len() as u64,
        ..LogConfig::default()
    };
    let log = timestamp_log(dir.path(), config.clone());
    assert_eq!(segment_bases(&log), vec![0, 5]);
    assert_timestamp_lookups(&log);
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_timestamp_lookups(&log);
}

#[test]
fn offset_for_timestamp_ignores_records_below_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = timestamp_log(dir.path(), LogConfig::default());
    assert_eq!(log.delete_records_before(2).unwrap(), 2);
    assert_eq!(log.offset_for_timestamp(100).unwrap(), Some((2, 200)));
    assert_eq!(log.offset_for_timestamp(201).unwrap(), Some((4, 400)));
}

#[test]
fn offset_for_timestamp_decodes_compressed_and_log_append_time_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, &encode(&[10, 20, 30], 16, Compression::Gzip));
    let mut stamped = batch_with(&[1, 2], 4);
    set_log_append_time(&mut stamped, 9_000);
    let mut copy = stamped.clone();
    let info = log.append(&mut copy, 0, NOW_MS).unwrap();
    assert_eq!(info.log_append_time_ms, 9_000);
    assert_eq!(log.offset_for_timestamp(15).unwrap(), Some((1, 20)));
    // LogAppendTime: every record carries the batch's time, whatever it was created with.
    assert_eq!(log.offset_for_timestamp(31).unwrap(), Some((3, 9_000)));
    assert_eq!(log.offset_for_timestamp(9_000).unwrap(), Some((3, 9_000)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((3, 9_000)));
}

#[test]
fn max_timestamp_offset_returns_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let first = batch_with(&[100, 300, 200], 8);
    let config = LogConfig {
        segment_bytes: first.len() as u64,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    assert_eq!(log.max_timestamp_offset().unwrap(), None);
    append(&mut log, &first);
    append(&mut log, &batch_with(&[300, 50], 8));
    append(&mut log, &batch_with(&[250], 8));
    assert_eq!(segment_bases(&log), vec![0, 3, 5]);
    // Tied at 300 across segments: the earlier record wins.
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((1, 300)));
    append(&mut log, &batch_with(&[10, 301, 301], 8));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((7, 301)));
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((7, 301)));
    let maxima: Vec<i64> = log.segments().iter().map(|s| s.max_timestamp_ms).collect();
    assert_eq!(maxima, vec![300, 300, 250, 301]);
}
