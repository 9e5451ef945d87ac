//! Compaction rounds on real logs: what stays, what goes, and when.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strom_wire::batch::{BatchHeader, Batches, Compression as Codec};
use strom_wire::record::{delete_horizon_ms, parse_records, records_section};

use super::*;
use crate::checkpoint;
use crate::compaction::CLEANER_CHECKPOINT_FILE;
use crate::{CompactionOutcome, CompactionPolicy};

pub(crate) const RETENTION_MS: i64 = 1_000;

/// Cleans whenever anything is dirty; tombstones live RETENTION_MS.
pub(crate) fn eager() -> CompactionPolicy {
    CompactionPolicy {
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: RETENTION_MS,
        ..CompactionPolicy::default()
    }
}

/// Small indexes so cleaned segments get several entries.
pub(crate) fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

pub(crate) type Entry<'a> = (Option<&'a str>, Option<&'a str>);

/// One batch of keyed records, all stamped `timestamp`.
pub(crate) fn batch_of(entries: &[Entry<'_>], codec: Compression, timestamp: i64) -> Vec<u8> {
    producer_batch_of(entries, codec, timestamp, -1, false)
}

pub(crate) fn producer_batch_of(
    entries: &[Entry<'_>],
    codec: Compression,
    timestamp: i64,
    producer_id: i64,
    transactional: bool,
) -> Vec<u8> {
    producer_batch_from(entries, codec, timestamp, producer_id, transactional, 40)
}

/// [`producer_batch_of`] with sequences from `first_sequence` (the log refuses a
/// producer's repeated sequence as a retry).
pub(crate) fn producer_batch_from(
    entries: &[Entry<'_>],
    codec: Compression,
    timestamp: i64,
    producer_id: i64,
    transactional: bool,
    first_sequence: i32,
) -> Vec<u8> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 2 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if producer_id >= 0 {
                first_sequence + i as i32
            } else {
                i as i32 - 1
            },
            timestamp: timestamp + i as i64,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    encode_records(&records, codec)
}

/// Appends one uncompressed batch of `key=value` pairs stamped NOW_MS.
pub(crate) fn put(log: &mut PartitionLog, pairs: &[(&str, &str)]) -> Vec<u8> {
    let entries: Vec<Entry<'_>> = pairs.iter().map(|(k, v)| (Some(*k), Some(*v))).collect();
    append(log, &batch_of(&entries, Compression::None, NOW_MS))
}

/// Appends a tombstone for `key`.
pub(crate) fn delete(log: &mut PartitionLog, key: &str) -> Vec<u8> {
    append(
        log,
        &batch_of(&[(Some(key), None)], Compression::None, NOW_MS),
    )
}

pub(crate) type Visible = (i64, Option<String>, Option<String>);

fn text(bytes: Option<Bytes>) -> Option<String> {
    bytes.map(|b| String::from_utf8(b.to_vec()).expect("utf8"))
}

/// Every record a consumer reading from `offset` sees, as (offset, key, value).
pub(crate) fn visible(log: &PartitionLog, offset: i64) -> Vec<Visible> {
    let mut bytes = Bytes::from(read_all(log, offset));
    RecordBatchDecoder::decode_all(&mut bytes)
        .expect("decode")
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, text(r.key), text(r.value)))
        .collect()
}

pub(crate) fn v(offset: i64, key: &str, value: Option<&str>) -> Visible {
    (offset, Some(key.to_string()), value.map(str::to_string))
}

/// (base offset, records count) of each stored batch.
pub(crate) fn batch_shapes(log: &PartitionLog) -> Vec<(i64, i32)> {
    Batches::new(&read_all(log, log.log_start_offset()))
        .map(|b| {
            let (_, info) = b.expect("valid batch");
            (info.base_offset, info.records_count)
        })
        .collect()
}

fn compact(log: &mut PartitionLog, now_ms: i64, policy: &CompactionPolicy) -> CompactionOutcome {
    log.compact(now_ms, policy).expect("compact")
}

#[test]
fn many_versions_collapse_to_the_last_and_offsets_keep_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1"), ("b", "1")]);
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    let kept = [
        put(&mut log, &[("c", "1"), ("b", "2")]),
        put(&mut log, &[("a", "3")]),
    ];
    log.roll(NOW_MS).unwrap();
    let active = put(&mut log, &[("a", "4")]);
    let before = log.size_bytes();

    let outcome = compact(&mut log, NOW_MS, &eager());
    assert!(outcome.cleaned);
    assert_eq!(outcome.first_dirty_offset, 6);
    assert_eq!(outcome.first_uncleanable_offset, 6);
    assert_eq!(outcome.records_removed, 3);
    assert_eq!((outcome.segments_before, outcome.segments_after), (3, 2));
    assert_eq!(
        outcome.bytes_after,
        before - (outcome.bytes_before - outcome.bytes_after)
    );
    assert_eq!(log.cleaner_checkpoint().unwrap(), Some(6));
    // The two small segments became one; the surviving batches are byte for byte the same.
    assert_eq!(segment_bases(&log), vec![0, 6]);
    assert_eq!(read_all(&log, 0), [kept.concat(), active.clone()].concat());
    assert_eq!(
        visible(&log, 0),
        vec![
            v(3, "c", Some("1")),
            v(4, "b", Some("2")),
            v(5, "a", Some("3")),
            v(6, "a", Some("4"))
        ]
    );
    // Reads from offsets that are gaps now start at the next batch.
    for gap in [0, 1, 2] {
        assert_eq!(base_offsets(&read_all(&log, gap))[0], 3);
    }
    assert_eq!(base_offsets(&read_all(&log, 5)), vec![5, 6]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 7));

    // Nothing dirty left: the next call does nothing.
    let again = compact(&mut log, NOW_MS, &eager());
    assert!(!again.cleaned);
    assert_eq!(read_all(&log, 0), [kept.concat(), active].concat());
}

#[test]
fn cleaned_segments_reopen_with_valid_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for round in 0..20 {
        put(
            &mut log,
            &[("k", &round.to_string()), (&format!("u{round}"), "x")],
        );
    }
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS, &eager());
    let expected: Vec<Vec<Visible>> = (0..40).map(|o| visible(&log, o)).collect();
    log.close().unwrap();
    // Clean shutdown: the rebuilt indexes are trusted and must be right.
    let log = open(dir.path(), config());
    for offset in 0..40 {
        assert_eq!(
            visible(&log, offset),
            expected[offset as usize],
            "offset {offset}"
        );
    }
    assert_eq!(
        visible(&log, 38),
        vec![v(38, "k", Some("19")), v(39, "u19", Some("x"))]
    );
    drop(log);
    // And after a crash they are rebuilt from the cleaned log.
    let log = open(dir.path(), config());
    assert_eq!(visible(&log, 0), expected[0]);
}

#[test]
fn an_idle_log_loses_its_tombstones_once_their_horizon_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("b", "1")]);
    delete(&mut log, "a");
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "b", Some("1")), v(2, "a", None)]
    );

    // Nothing new is written: before the horizon no round is due...
    let early = log.compact(NOW_MS + RETENTION_MS - 1, &eager()).unwrap();
    assert!(!early.cleaned);
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "b", Some("1")), v(2, "a", None)]
    );
    // ...after it the passed horizon alone triggers one (KIP-534).
    let late = log.compact(NOW_MS + RETENTION_MS, &eager()).unwrap();
    assert!(late.cleaned);
    assert_eq!(late.records_removed, 1);
    assert_eq!(visible(&log, 0), vec![v(1, "b", Some("1"))]);
    // And with no tombstone left, nothing is due any more.
    assert!(
        !log.compact(NOW_MS + 2 * RETENTION_MS, &eager())
            .unwrap()
            .cleaned
    );
}

#[test]
fn tombstones_survive_delete_retention_then_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("b", "1")]);
    delete(&mut log, "a");
    log.roll(NOW_MS).unwrap();

    compact(&mut log, NOW_MS, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "b", Some("1")), v(2, "a", None)]
    );
    let stored = read_all(&log, 2);
    let header = BatchHeader::new(&stored).unwrap();
    assert_eq!(delete_horizon_ms(&header), Some(NOW_MS + RETENTION_MS));

    // Still inside delete.retention.ms: the tombstone stays.
    put(&mut log, &[("c", "1")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS + RETENTION_MS - 1, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "b", Some("1")), v(2, "a", None), v(3, "c", Some("1"))]
    );

    // At the horizon it goes, and nothing of `a` comes back.
    put(&mut log, &[("d", "1")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS + RETENTION_MS, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![
            v(1, "b", Some("1")),
            v(3, "c", Some("1")),
            v(4, "d", Some("1"))
        ]
    );
    assert_eq!(batch_shapes(&log), vec![(1, 1), (3, 1), (4, 1)]);
}

#[test]
fn the_last_batch_of_the_log_stays_even_when_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    delete(&mut log, "a");
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS, &eager());
    assert_eq!(visible(&log, 0), vec![v(1, "a", None)]);
    // A lost checkpoint makes the whole log dirty again (Kafka restarts from the log start).
    std::fs::remove_file(dir.path().join(CLEANER_CHECKPOINT_FILE)).unwrap();
    compact(&mut log, NOW_MS + RETENTION_MS, &eager());
    assert!(visible(&log, 0).is_empty());
    // The emptied last batch keeps the offset it ended at.
    assert_eq!(batch_shapes(&log), vec![(1, 0)]);
    drop(log);
    let mut log = open(dir.path(), config());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(base_offsets(&put(&mut log, &[("b", "1")])), vec![2]);
}

#[test]
fn the_last_batch_of_each_group_stays_empty_when_superseded() {
    let dir = tempfile::tempdir().unwrap();
    // Segments too big to merge: each is its own group.
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_bytes: 100,
            ..config()
        },
    );
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("a", "2")]);
    put(&mut log, &[("b", "1")]);
    assert_eq!(segment_bases(&log), vec![0, 1, 2]);
    compact(&mut log, NOW_MS, &eager());
    assert_eq!(batch_shapes(&log), vec![(0, 0), (1, 1), (2, 1)]);
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "a", Some("2")), v(2, "b", Some("1"))]
    );
}

fn young_and_old(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    append(
        &mut log,
        &batch_of(
            &[(Some("a"), Some("1"))],
            Compression::None,
            NOW_MS - 10_000,
        ),
    );
    append(
        &mut log,
        &batch_of(
            &[(Some("a"), Some("2"))],
            Compression::None,
            NOW_MS - 10_000,
        ),
    );
    log.roll(NOW_MS).unwrap();
    append(
        &mut log,
        &batch_of(&[(Some("a"), Some("3"))], Compression::None, NOW_MS - 10),
    );
    log.roll(NOW_MS).unwrap();
    log
}

#[test]
fn min_compaction_lag_holds_back_young_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = young_and_old(dir.path());
    let policy = CompactionPolicy {
        min_compaction_lag_ms: 1_000,
        ..eager()
    };
    let outcome = compact(&mut log, NOW_MS, &policy);
    assert_eq!(outcome.first_uncleanable_offset, 2);
    assert_eq!(log.cleaner_checkpoint().unwrap(), Some(2));
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "a", Some("2")), v(2, "a", Some("3"))]
    );
    // Once old enough, the young segment is cleaned too.
    let outcome = compact(&mut log, NOW_MS + 1_000, &policy);
    assert_eq!(outcome.first_uncleanable_offset, 3);
    assert_eq!(visible(&log, 0), vec![v(2, "a", Some("3"))]);
}

#[test]
fn dirty_ratio_gates_rounds_unless_max_compaction_lag_is_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS, &eager());
    put(&mut log, &[("a", "3")]);
    log.roll(NOW_MS).unwrap();
    let clean = log.segments()[0].size_bytes;
    let dirty = log.segments()[1].size_bytes;
    let range = log
        .cleanable_range(NOW_MS, &eager(), log.log_end_offset())
        .unwrap();
    assert_eq!((range.clean_bytes, range.cleanable_bytes), (clean, dirty));
    assert_eq!(range.dirty_ratio(), dirty as f64 / (clean + dirty) as f64);

    let strict = CompactionPolicy {
        min_cleanable_dirty_ratio: 0.9,
        max_compaction_lag_ms: 5_000,
        ..eager()
    };
    let before = read_all(&log, 0);
    assert!(!compact(&mut log, NOW_MS + 2_000, &strict).cleaned);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(log.cleaner_checkpoint().unwrap(), Some(2));
    // The dirty segment's first batch is now older than max.compaction.lag.ms.
    let outcome = compact(&mut log, NOW_MS + 5_001, &strict);
    assert!(outcome.cleaned);
    assert_eq!(visible(&log, 0), vec![v(2, "a", Some("3"))]);
    // A ratio above the threshold cleans without any lag.
    put(&mut log, &[("a", "4")]);
    put(&mut log, &[("a", "5")]);
    log.roll(NOW_MS).unwrap();
    let lenient = CompactionPolicy {
        min_cleanable_dirty_ratio: 0.5,
        ..eager()
    };
    assert!(compact(&mut log, NOW_MS, &lenient).cleaned);
    assert_eq!(visible(&log, 0), vec![v(4, "a", Some("5"))]);
}

#[test]
fn the_active_segment_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("a", "2")]);
    // Only an active segment: nothing is cleanable.
    let outcome = compact(&mut log, NOW_MS, &eager());
    assert!(!outcome.cleaned);
    assert_eq!(
        visible(&log, 0),
        vec![v(0, "a", Some("1")), v(1, "a", Some("2"))]
    );
    log.roll(NOW_MS).unwrap();
    let active = [put(&mut log, &[("a", "3")]), put(&mut log, &[("a", "4")])].concat();
    compact(&mut log, NOW_MS, &eager());
    // The inactive segment lost a@0 only: the active one's keys were not mapped.
    assert_eq!(visible(&log, 0)[0], v(1, "a", Some("2")));
    assert_eq!(read_all(&log, 2), active);
}

#[test]
fn compressed_batches_are_compacted_and_stay_in_their_codec() {
    let codecs = [
        (Compression::Gzip, Codec::Gzip),
        (Compression::Snappy, Codec::Snappy),
        (Compression::Lz4, Codec::Lz4),
        (Compression::Zstd, Codec::Zstd),
    ];
    for (kp, codec) in codecs {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), config());
        let first = [
            (Some("a"), Some("1")),
            (Some("b"), Some("1")),
            (Some("a"), Some("2")),
        ];
        let first = append(&mut log, &batch_of(&first, kp, NOW_MS));
        let second = [(Some("b"), Some("2")), (Some("c"), Some("1"))];
        let second = append(&mut log, &batch_of(&second, kp, NOW_MS));
        log.roll(NOW_MS).unwrap();
        compact(&mut log, NOW_MS, &eager());
        assert_eq!(
            visible(&log, 0),
            vec![
                v(2, "a", Some("2")),
                v(3, "b", Some("2")),
                v(4, "c", Some("1"))
            ],
            "{codec:?}"
        );
        let stored = read_all(&log, 0);
        let batches: Vec<_> = Batches::new(&stored).map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|(_, info)| info.compression == codec));
        // The rebuilt batch keeps its identity and the surviving record's bytes.
        let (rebuilt, info) = batches[0];
        assert_eq!(
            (info.base_offset, info.last_offset_delta, info.records_count),
            (0, 2, 1)
        );
        let old_section = records_section(&first, u64::MAX).unwrap();
        let old = parse_records(&old_section, 3).unwrap();
        assert_eq!(
            &records_section(rebuilt, u64::MAX).unwrap()[..],
            old[2].raw()
        );
        assert_eq!(batches[1].0, &second[..]);
    }
}

#[test]
fn keyless_records_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    append(
        &mut log,
        &batch_of(
            &[(None, Some("x")), (Some("a"), Some("1"))],
            Compression::None,
            NOW_MS,
        ),
    );
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![(0, None, Some("x".into())), v(2, "a", Some("2"))]
    );
}

#[test]
fn a_small_key_map_spreads_the_work_over_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    for (k, val) in [("a", "1"), ("b", "1"), ("a", "2"), ("b", "2")] {
        put(&mut log, &[(k, val)]);
    }
    log.roll(NOW_MS).unwrap();
    let tiny = CompactionPolicy {
        dedupe_buffer_bytes: 1,
        ..eager()
    };
    let mut checkpoints = Vec::new();
    for _ in 0..4 {
        checkpoints.push(compact(&mut log, NOW_MS, &tiny).first_dirty_offset);
    }
    assert_eq!(checkpoints, vec![1, 2, 3, 4]);
    assert_eq!(
        visible(&log, 0),
        vec![v(2, "a", Some("2")), v(3, "b", Some("2"))]
    );
}

#[test]
fn a_checkpoint_below_the_log_start_is_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config());
    put(&mut log, &[("a", "1")]);
    log.roll(NOW_MS).unwrap();
    put(&mut log, &[("a", "2")]);
    put(&mut log, &[("a", "3")]);
    log.roll(NOW_MS).unwrap();
    log.delete_records_before(1).unwrap();
    checkpoint::write_offset(dir.path(), CLEANER_CHECKPOINT_FILE, 0).unwrap();
    let range = log
        .cleanable_range(NOW_MS, &eager(), log.log_end_offset())
        .unwrap();
    assert_eq!((range.first_dirty, range.reset_checkpoint), (1, true));
    let outcome = compact(&mut log, NOW_MS, &eager());
    assert_eq!(outcome.first_dirty_offset, 3);
    assert_eq!(visible(&log, 1), vec![v(2, "a", Some("3"))]);
    // A checkpoint past the log end (a lost tail) restarts from the log start too.
    checkpoint::write_offset(dir.path(), CLEANER_CHECKPOINT_FILE, 99).unwrap();
    let range = log
        .cleanable_range(NOW_MS, &eager(), log.log_end_offset())
        .unwrap();
    assert_eq!((range.first_dirty, range.reset_checkpoint), (1, true));
}

#[test]
fn compact_and_delete_both_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            retention_ms: 60_000,
            ..config()
        },
    );
    put(&mut log, &[("a", "1"), ("b", "1")]);
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    put(&mut log, &[("c", "1")]);
    log.roll(NOW_MS + 120_000).unwrap();
    compact(&mut log, NOW_MS, &eager());
    assert_eq!(
        visible(&log, 0),
        vec![
            v(1, "b", Some("1")),
            v(2, "a", Some("2")),
            v(3, "c", Some("1"))
        ]
    );
    // Retention then drops the (cleaned) segments older than retention.ms.
    let outcome = log.enforce_retention(NOW_MS + 120_000).unwrap();
    assert_eq!(outcome.log_start_offset, 4);
    assert!(visible(&log, 4).is_empty());
    // The next round starts from the new log start.
    put(&mut log, &[("c", "2")]);
    log.roll(NOW_MS).unwrap();
    let outcome = compact(&mut log, NOW_MS + 120_000, &eager());
    assert_eq!(outcome.first_dirty_offset, 5);
}
