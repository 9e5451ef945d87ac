//! Compaction of logs holding transactions, as Kafka's LogCleaner does it: aborted
//! data goes, committed records compact like plain ones at their offsets, markers
//! stay while their data does and go after their delete horizon, producers' last
//! batches and markers stay (empty), nothing at or past the last stable offset
//! (nor the high watermark) is touched, and a crash mid-round changes nothing of it.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strom_wire::batch::{BatchHeader, Batches};
use strom_wire::record::delete_horizon_ms;

use super::compaction::{eager, producer_batch_from, put, v, Visible, RETENTION_MS};
use super::compaction_crash::leftovers;
use super::*;
use crate::cleaner_txn::{control_kind, ControlKind};
use crate::swap::SwapStep;
use crate::{AbortedTxn, CompactionPolicy};

/// The epoch `producer_batch_from` stamps.
const EPOCH: i16 = 2;

/// Appends one transactional batch of `producer_id` (epoch 2); returns its base offset.
fn txn_put(log: &mut PartitionLog, producer_id: i64, sequence: i32, pairs: &[(&str, &str)]) -> i64 {
    let entries: Vec<_> = pairs.iter().map(|(k, v)| (Some(*k), Some(*v))).collect();
    let batch = producer_batch_from(
        &entries,
        Compression::None,
        NOW_MS,
        producer_id,
        true,
        sequence,
    );
    BatchHeader::new(&append(log, &batch))
        .unwrap()
        .base_offset()
}

/// Writes a commit or abort marker in `epoch`, as the coordinator does; returns its offset.
fn end_txn_in(log: &mut PartitionLog, producer_id: i64, epoch: i16, commit: bool) -> i64 {
    let info = log
        .append_control_marker(producer_id, epoch, 0, commit, 0, NOW_MS)
        .expect("marker");
    log.maybe_increment_high_watermark(info.last_offset + 1);
    info.base_offset
}

fn end_txn(log: &mut PartitionLog, producer_id: i64, commit: bool) -> i64 {
    end_txn_in(log, producer_id, EPOCH, commit)
}

/// What a stored batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Base offset, last offset, records kept.
    Data(i64, i64, i32),
    Commit(i64),
    Abort(i64),
    /// A control batch cleaned down to its header.
    EmptyControl(i64),
}

fn shapes(log: &PartitionLog) -> Vec<Shape> {
    Batches::new(&read_all(log, log.log_start_offset()))
        .map(|b| {
            let (bytes, info) = b.expect("valid batch");
            let header = BatchHeader::new(bytes).unwrap();
            if !header.is_control() {
                return Shape::Data(info.base_offset, header.last_offset(), info.records_count);
            }
            match control_kind(bytes).unwrap() {
                Some(ControlKind::Commit) => Shape::Commit(info.base_offset),
                Some(ControlKind::Abort) => Shape::Abort(info.base_offset),
                None => Shape::EmptyControl(info.base_offset),
                Some(ControlKind::Other) => panic!("unexpected control batch"),
            }
        })
        .collect()
}

/// The delete horizon of the control batch at `offset`.
fn marker_horizon(log: &PartitionLog, offset: i64) -> Option<i64> {
    Batches::new(&read_all(log, log.log_start_offset()))
        .map(|b| b.expect("valid batch").0)
        .find(|bytes| BatchHeader::new(bytes).unwrap().base_offset() == offset)
        .map(|bytes| delete_horizon_ms(&BatchHeader::new(bytes).unwrap()))
        .expect("batch at offset")
}

/// The data records a read_uncommitted consumer sees, as (offset, key, value).
fn data(log: &PartitionLog) -> Vec<Visible> {
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut bytes = Bytes::from(read_all(log, 0));
    RecordBatchDecoder::decode_all(&mut bytes)
        .expect("decode")
        .into_iter()
        .flat_map(|set| set.records)
        .filter(|r| !r.control)
        .map(|r| (r.offset, text(r.key), text(r.value)))
        .collect()
}

fn aborted(log: &PartitionLog) -> Vec<AbortedTxn> {
    log.reader().aborted_transactions(0, log.log_end_offset())
}

fn txn(producer_id: i64, first_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id,
        first_offset,
    }
}

fn compact(log: &mut PartitionLog, now_ms: i64) -> crate::CompactionOutcome {
    log.compact(now_ms, &eager()).expect("compact")
}

/// Plain a=0; committed txn of 7 (a, b); aborted txn of 8 (a, c); plain b; a later
/// committed txn of 8 (d), so the aborted batch is not its producer's last.
fn mixed(log: &mut PartitionLog) {
    put(log, &[("a", "plain")]); // 0
    assert_eq!(txn_put(log, 7, 0, &[("a", "t7"), ("b", "t7")]), 1); // 1..=2
    assert_eq!(end_txn(log, 7, true), 3);
    assert_eq!(txn_put(log, 8, 0, &[("a", "aborted"), ("c", "aborted")]), 4); // 4..=5
    assert_eq!(end_txn(log, 8, false), 6);
    put(log, &[("b", "plain")]); // 7
    assert_eq!(txn_put(log, 8, 2, &[("d", "t8")]), 8);
    assert_eq!(end_txn(log, 8, true), 9);
    log.roll(NOW_MS).unwrap();
}

#[test]
fn aborted_data_goes_and_committed_records_compact_like_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    mixed(&mut log);
    assert_eq!(aborted(&log), vec![txn(8, 4)]);

    let outcome = compact(&mut log, NOW_MS);
    assert!(outcome.cleaned);
    // plain a (superseded by the committed a, not by the aborted one), committed b
    // (superseded by plain b) and both aborted records.
    assert_eq!(outcome.records_removed, 4);
    assert_eq!(
        data(&log),
        vec![
            v(1, "a", Some("t7")),
            v(7, "b", Some("plain")),
            v(8, "d", Some("t8"))
        ]
    );
    // Every marker stays: each transaction had data read in this round. The committed
    // batch keeps its original offsets (last offset 2 although b went).
    assert_eq!(
        shapes(&log),
        vec![
            Shape::Data(1, 2, 1),
            Shape::Commit(3),
            Shape::Abort(6),
            Shape::Data(7, 7, 1),
            Shape::Data(8, 8, 1),
            Shape::Commit(9),
        ]
    );
    // The abort marker stays with data read: its entry is carried into the cleaned index.
    assert_eq!(aborted(&log), vec![txn(8, 4)]);
    assert_eq!(log.last_stable_offset(), 10);

    // The same after a clean restart (the cleaned `.txnindex` is on disk).
    log.close().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(aborted(&log), vec![txn(8, 4)]);
    assert_eq!(data(&log).len(), 3);
    // After a crash, recovery rebuilds the index from what is left: the aborted data is
    // gone, so nothing needs filtering.
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(data(&log).len(), 3);
    assert!(matches!(
        aborted(&log)[..],
        [] | [AbortedTxn {
            producer_id: 8,
            first_offset: 4
        }]
    ));
}

#[test]
fn a_producers_last_aborted_batch_stays_empty_with_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    put(&mut log, &[("a", "plain")]); // 0
    txn_put(&mut log, 8, 0, &[("a", "aborted"), ("c", "aborted")]); // 1..=2
    end_txn(&mut log, 8, false); // 3
    put(&mut log, &[("z", "1")]); // 4
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS);
    assert_eq!(
        data(&log),
        vec![v(0, "a", Some("plain")), v(4, "z", Some("1"))]
    );
    // The aborted batch holds producer 8's last sequence: it stays, empty, and so does
    // its marker (data of the transaction is still read every round).
    let expected = vec![
        Shape::Data(0, 0, 1),
        Shape::Data(1, 2, 0),
        Shape::Abort(3),
        Shape::Data(4, 4, 1),
    ];
    assert_eq!(shapes(&log), expected);
    let stored = read_all(&log, 1);
    let kept = BatchHeader::new(&stored).unwrap();
    assert_eq!(
        (
            kept.producer_id(),
            kept.producer_epoch(),
            kept.base_sequence(),
            kept.is_transactional()
        ),
        (8, EPOCH, 0, true)
    );
    put(&mut log, &[("z", "2")]);
    log.roll(NOW_MS).unwrap();
    let later = NOW_MS + 10 * RETENTION_MS;
    compact(&mut log, later);
    assert_eq!(shapes(&log)[..3], expected[..3]);
    assert_eq!(marker_horizon(&log, 3), None);
    assert_eq!(aborted(&log), vec![txn(8, 1)]);
    // The empty batch still replays as producer 8's state after a restart.
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    let entry = log.producer_state().get(8).expect("producer 8").clone();
    assert_eq!(
        (
            entry.epoch,
            entry.last_sequence(),
            entry.current_txn_first_offset
        ),
        (EPOCH, 1, None)
    );
}

#[test]
fn markers_stay_while_their_data_does_then_go_after_their_delete_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    txn_put(&mut log, 7, 0, &[("a", "t7")]); // 0
    end_txn(&mut log, 7, true); // 1
    put(&mut log, &[("a", "plain")]); // 2
    txn_put(&mut log, 8, 0, &[("c", "aborted")]); // 3
    end_txn(&mut log, 8, false); // 4
                                 // Later batches of both producers: the ones above are not their last.
    txn_put(&mut log, 7, 1, &[("b", "t7")]); // 5
    end_txn(&mut log, 7, true); // 6
    txn_put(&mut log, 8, 1, &[("d", "t8")]); // 7
    end_txn(&mut log, 8, true); // 8
    log.roll(NOW_MS).unwrap();

    // Round 1: the superseded and the aborted data go; their markers stay as written,
    // data of their transactions having been read.
    compact(&mut log, NOW_MS);
    let settled = [
        Shape::Data(2, 2, 1),
        Shape::Data(5, 5, 1),
        Shape::Commit(6),
        Shape::Data(7, 7, 1),
        Shape::Commit(8),
    ];
    assert_eq!(
        shapes(&log),
        [
            &[Shape::Commit(1), settled[0], Shape::Abort(4)][..],
            &settled[1..]
        ]
        .concat()
    );
    assert_eq!(
        (marker_horizon(&log, 1), marker_horizon(&log, 4)),
        (None, None)
    );
    assert_eq!(aborted(&log), vec![txn(8, 3)]);

    // Round 2: no data of theirs is left: the markers get a delete horizon, and the
    // aborted transaction leaves the index (nothing remains to filter).
    put(&mut log, &[("x", "1")]); // 9
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS);
    let horizon = NOW_MS + RETENTION_MS;
    assert_eq!(
        (marker_horizon(&log, 1), marker_horizon(&log, 4)),
        (Some(horizon), Some(horizon))
    );
    assert_eq!(
        marker_horizon(&log, 6),
        None,
        "a marker with data keeps none"
    );
    assert_eq!(shapes(&log).len(), 8);
    assert_eq!(aborted(&log), vec![]);

    // Just before the horizon a round keeps them; at it they go, with no new dirty data
    // needed to start the round.
    put(&mut log, &[("x", "2")]); // 10
    log.roll(NOW_MS).unwrap();
    compact(&mut log, horizon - 1);
    assert_eq!(
        shapes(&log)[..3],
        [Shape::Commit(1), settled[0], Shape::Abort(4)]
    );
    let outcome = compact(&mut log, horizon);
    assert!(outcome.cleaned);
    assert_eq!(
        shapes(&log),
        [&settled[..], &[Shape::Data(10, 10, 1)][..]].concat()
    );
    assert_eq!(
        data(&log),
        vec![
            v(2, "a", Some("plain")),
            v(5, "b", Some("t7")),
            v(7, "d", Some("t8")),
            v(10, "x", Some("2"))
        ]
    );
}

#[test]
fn a_marker_that_bumped_the_epoch_stays_as_the_producers_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    txn_put(&mut log, 7, 0, &[("a", "t7")]); // 0, epoch 2
                                             // Transaction version 2: the marker carries the bumped epoch.
    end_txn_in(&mut log, 7, EPOCH + 1, true); // 1
    put(&mut log, &[("a", "plain")]); // 2
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS);
    // The data batch is not the producer's last record (its epoch moved on): it goes.
    assert_eq!(shapes(&log), vec![Shape::Commit(1), Shape::Data(2, 2, 1)]);
    put(&mut log, &[("x", "1")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS);
    assert_eq!(marker_horizon(&log, 1), Some(NOW_MS + RETENTION_MS));
    put(&mut log, &[("x", "2")]);
    log.roll(NOW_MS).unwrap();
    compact(&mut log, NOW_MS + RETENTION_MS);
    // Past its horizon the marker's record goes, but the batch stays, empty, with the
    // producer's epoch.
    assert_eq!(
        shapes(&log),
        vec![
            Shape::EmptyControl(1),
            Shape::Data(2, 2, 1),
            Shape::Data(4, 4, 1)
        ]
    );
    let stored = read_all(&log, 1);
    let kept = BatchHeader::new(&stored).unwrap();
    assert_eq!(
        (
            kept.producer_id(),
            kept.producer_epoch(),
            kept.is_transactional()
        ),
        (7, EPOCH + 1, true)
    );
    // Once the producer expires the empty marker goes too.
    put(&mut log, &[("x", "3")]);
    log.roll(NOW_MS).unwrap();
    let policy = CompactionPolicy {
        producer_id_expiration_ms: 1,
        ..eager()
    };
    log.compact(NOW_MS + RETENTION_MS, &policy).unwrap();
    assert_eq!(
        shapes(&log),
        vec![Shape::Data(2, 2, 1), Shape::Data(5, 5, 1)]
    );
}

#[test]
fn nothing_at_or_past_the_last_stable_offset_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    put(&mut log, &[("a", "1")]); // 0
    put(&mut log, &[("b", "1")]); // 1
    log.roll(NOW_MS).unwrap();
    put(&mut log, &[("a", "2")]); // 2
    txn_put(&mut log, 9, 0, &[("a", "open"), ("b", "open")]); // 3..=4, left open
    put(&mut log, &[("a", "3")]); // 5
    put(&mut log, &[("b", "2")]); // 6
    put(&mut log, &[("b", "3")]); // 7
    log.roll(NOW_MS).unwrap();
    assert_eq!(log.last_stable_offset(), 3);
    let tail = read_all(&log, 3);

    let outcome = compact(&mut log, NOW_MS);
    // Only a=1 goes: the open transaction shadows nothing, and from its first offset on
    // nothing is touched (b=2 stays though b=3 follows) although its segment was cleaned.
    assert_eq!(outcome.first_uncleanable_offset, 3);
    assert_eq!(outcome.records_removed, 1);
    assert_eq!(log.cleaner_checkpoint().unwrap(), Some(3));
    assert_eq!(read_all(&log, 3), tail);
    assert_eq!(
        data(&log)[..2],
        [v(1, "b", Some("1")), v(2, "a", Some("2"))]
    );
    assert_eq!(data(&log).len(), 7);

    // Aborted, the transaction's records go with everything superseded.
    let marker = end_txn(&mut log, 9, false); // 8
    log.roll(NOW_MS).unwrap();
    let outcome = compact(&mut log, NOW_MS);
    assert_eq!(outcome.first_uncleanable_offset, 9);
    assert_eq!(data(&log), vec![v(5, "a", Some("3")), v(7, "b", Some("3"))]);
    // Producer 9's aborted batch is its last data batch: it stays empty, with its marker.
    assert_eq!(
        shapes(&log),
        vec![
            Shape::Data(3, 4, 0),
            Shape::Data(5, 5, 1),
            Shape::Data(7, 7, 1),
            Shape::Abort(marker)
        ]
    );
    assert_eq!(aborted(&log), vec![txn(9, 3)]);
}

#[test]
fn the_high_watermark_bounds_the_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    put(&mut log, &[("a", "1")]); // 0
    put(&mut log, &[("a", "2")]); // 1
    put(&mut log, &[("a", "3")]); // 2
    log.roll(NOW_MS).unwrap();
    // A follower has only offset 0: nothing past it may shadow anything.
    log.set_high_watermark(1);
    assert_eq!(log.last_stable_offset(), 1);
    let outcome = compact(&mut log, NOW_MS);
    assert_eq!(outcome.first_uncleanable_offset, 1);
    assert_eq!(data(&log).len(), 3);
    log.set_high_watermark(3);
    compact(&mut log, NOW_MS);
    assert_eq!(data(&log), vec![v(2, "a", Some("3"))]);
}

fn crash_config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

/// Small segments (several cleaning groups) with an aborted transaction spread over the
/// first ones and its marker further on.
fn crash_scenario(dir: &Path) -> PartitionLog {
    let mut log = open(dir, crash_config());
    put(&mut log, &[("a", "1")]); // 0
    txn_put(&mut log, 8, 0, &[("a", "aborted")]); // 1
    put(&mut log, &[("b", "1")]); // 2
    txn_put(&mut log, 8, 1, &[("b", "aborted")]); // 3
    txn_put(&mut log, 7, 0, &[("c", "t7")]); // 4
    end_txn(&mut log, 7, true); // 5
    end_txn(&mut log, 8, false); // 6
    put(&mut log, &[("a", "2"), ("z", "1")]); // 7..=8
    txn_put(&mut log, 8, 2, &[("z", "t8")]); // 9
    end_txn(&mut log, 8, true); // 10
    log.roll(NOW_MS).unwrap();
    assert!(segment_bases(&log).len() >= 4, "{:?}", segment_bases(&log));
    log
}

/// Aborted data still in the log is still filtered for read_committed consumers.
fn assert_aborted_data_indexed(log: &PartitionLog, what: &str) {
    let aborted_left = data(log)
        .iter()
        .any(|(_, _, value)| value.as_deref() == Some("aborted"));
    if aborted_left {
        assert_eq!(aborted(log), vec![txn(8, 1)], "{what}");
    }
}

#[test]
fn a_crash_at_any_step_keeps_committed_data_and_aborted_data_filtered() {
    let reference = tempfile::tempdir().unwrap();
    let mut log = crash_scenario(reference.path());
    let groups = segment_bases(&log).len() - 1;
    assert_eq!(aborted(&log), vec![txn(8, 1)]);
    compact(&mut log, NOW_MS);
    let kept = data(&log);
    assert_eq!(
        kept,
        vec![
            v(2, "b", Some("1")),
            v(4, "c", Some("t7")),
            v(7, "a", Some("2")),
            v(9, "z", Some("t8"))
        ]
    );
    assert_eq!(aborted(&log), vec![txn(8, 1)]);
    drop(log);
    for group in 0..groups {
        for step in [
            SwapStep::CleanedWritten,
            SwapStep::IndexesSwapped,
            SwapStep::Committed,
            SwapStep::OldDeleted,
            SwapStep::IndexesInstalled,
            SwapStep::Installed,
        ] {
            let what = format!("{step:?} in group {group}");
            let dir = tempfile::tempdir().unwrap();
            let mut log = crash_scenario(dir.path());
            let mut hook = stop_at(step, group);
            let bound = log.last_stable_offset();
            let stopped = log.compact_with_hook(NOW_MS, &eager(), bound, &mut hook);
            if stopped.is_ok() {
                // Fewer groups than segments (small ones were merged): nothing to stop.
                continue;
            }
            drop(log);
            let mut log = open(dir.path(), crash_config());
            assert!(leftovers(dir.path()).is_empty(), "{what}");
            assert_aborted_data_indexed(&log, &what);
            for record in &kept {
                assert!(data(&log).contains(record), "{record:?} lost: {what}");
            }
            // A rerun finishes the job (a marker whose data went in the stopped round may
            // already count as guarding none).
            compact(&mut log, NOW_MS);
            assert_eq!(data(&log), kept, "{what}");
            assert_aborted_data_indexed(&log, &what);
        }
    }
}
