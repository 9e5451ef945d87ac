//! Crashes in the middle of a compaction round: the round is stopped after each
//! swap step (the files stay exactly as a kill -9 would leave them), the log is
//! dropped without closing and reopened.

use strom_wire::batch::Batches;

use super::compaction::{delete, eager, put, v, visible, RETENTION_MS};
use super::*;
use crate::swap::SwapStep;

const STEPS: [SwapStep; 6] = [
    SwapStep::CleanedWritten,
    SwapStep::IndexesSwapped,
    SwapStep::Committed,
    SwapStep::OldDeleted,
    SwapStep::IndexesInstalled,
    SwapStep::Installed,
];

/// Segments hold three ~70-byte batches: each is a cleaning group of its own.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 250,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

/// Segments at 0, 3 and 6 (three groups) and an active one at 9.
fn scenario(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    for (k, val) in [("a", "1"), ("b", "1"), ("c", "1"), ("a", "2")] {
        put(&mut log, &[(k, val)]);
    }
    delete(&mut log, "b");
    for (k, val) in [("d", "1"), ("a", "3"), ("c", "2"), ("e", "1"), ("f", "1")] {
        put(&mut log, &[(k, val)]);
    }
    assert_eq!(segment_bases(&log), vec![0, 3, 6, 9]);
    log
}

const GROUP_ENDS: [i64; 3] = [3, 6, 9];

/// The batches of `bytes` whose base offset lies in `[from, to)`.
fn batches_in(bytes: &[u8], from: i64, to: i64) -> Vec<u8> {
    Batches::new(bytes)
        .map(|b| b.expect("valid batch"))
        .filter(|(_, info)| (from..to).contains(&info.base_offset))
        .flat_map(|(batch, _)| batch.to_vec())
        .collect()
}

pub(crate) fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

fn reference() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    let original = read_all(&log, 0);
    log.compact(NOW_MS, &eager()).unwrap();
    (original, read_all(&log, 0))
}

#[test]
fn a_crash_at_any_step_leaves_old_or_new_segments_and_a_rerun_finishes() {
    let (original, cleaned) = reference();
    assert_ne!(original, cleaned);
    for (group, &end) in GROUP_ENDS.iter().enumerate() {
        let start = if group == 0 { 0 } else { GROUP_ENDS[group - 1] };
        for step in STEPS {
            let dir = tempfile::tempdir().unwrap();
            let mut log = scenario(dir.path());
            let mut hook = stop_at(step, group);
            let bound = log.log_end_offset();
            let stopped = log.compact_with_hook(NOW_MS, &eager(), bound, &mut hook);
            assert!(stopped.is_err(), "{step:?} in group {group}");
            drop(log);

            let mut log = open(dir.path(), config());
            assert!(
                leftovers(dir.path()).is_empty(),
                "{step:?}: {:?}",
                leftovers(dir.path())
            );
            // Groups before this one are cleaned; this one is iff its swap committed.
            let cut = if step == SwapStep::CleanedWritten || step == SwapStep::IndexesSwapped {
                start
            } else {
                end
            };
            let expected = [
                batches_in(&cleaned, 0, cut),
                batches_in(&original, cut, i64::MAX),
            ]
            .concat();
            assert_eq!(read_all(&log, 0), expected, "{step:?} in group {group}");
            assert_eq!(log.cleaner_checkpoint().unwrap(), None);

            log.compact(NOW_MS, &eager()).unwrap();
            assert_eq!(
                read_all(&log, 0),
                cleaned,
                "rerun after {step:?} in group {group}"
            );
            assert_eq!(log.cleaner_checkpoint().unwrap(), Some(9));
            drop(log);
            assert_eq!(read_all(&open(dir.path(), config()), 0), cleaned);
        }
    }
}

#[test]
fn a_crash_before_the_checkpoint_is_written_only_repeats_the_round() {
    let (_, cleaned) = reference();
    let dir = tempfile::tempdir().unwrap();
    let mut log = scenario(dir.path());
    let bound = log.log_end_offset();
    assert!(log
        .compact_with_hook(
            NOW_MS,
            &eager(),
            bound,
            &mut stop_at(SwapStep::RoundDone, 0)
        )
        .is_err());
    drop(log);
    let mut log = open(dir.path(), config());
    assert_eq!(read_all(&log, 0), cleaned);
    assert_eq!(log.cleaner_checkpoint().unwrap(), None);
    assert!(log.compact(NOW_MS, &eager()).unwrap().cleaned);
    assert_eq!(read_all(&log, 0), cleaned);
}

#[test]
fn a_failure_after_the_commit_is_finished_by_the_next_round() {
    let (_, cleaned) = reference();
    for step in [
        SwapStep::Committed,
        SwapStep::OldDeleted,
        SwapStep::IndexesInstalled,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = scenario(dir.path());
        let bound = log.log_end_offset();
        assert!(log
            .compact_with_hook(NOW_MS, &eager(), bound, &mut stop_at(step, 1))
            .is_err());
        // The log keeps serving: the committed group reads as cleaned already.
        assert_eq!(
            batches_in(&read_all(&log, 0), 0, 6),
            batches_in(&cleaned, 0, 6)
        );
        log.compact(NOW_MS, &eager()).unwrap();
        assert_eq!(read_all(&log, 0), cleaned, "{step:?}");
        assert!(leftovers(dir.path()).is_empty());
        drop(log);
        assert_eq!(read_all(&open(dir.path(), config()), 0), cleaned);
    }
}

/// After one round `a`'s value is gone and its tombstone carries a horizon.
fn deleted_key(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    put(&mut log, &[("a", "1")]);
    put(&mut log, &[("x", "1")]);
    log.roll(NOW_MS).unwrap();
    delete(&mut log, "a");
    put(&mut log, &[("y", "1")]);
    log.roll(NOW_MS).unwrap();
    log.compact(NOW_MS, &eager()).unwrap();
    assert_eq!(
        visible(&log, 0),
        vec![v(1, "x", Some("1")), v(2, "a", None), v(3, "y", Some("1"))]
    );
    put(&mut log, &[("z", "1")]);
    log.roll(NOW_MS).unwrap();
    log
}

#[test]
fn a_deleted_key_never_comes_back_after_a_crash() {
    let after = NOW_MS + RETENTION_MS;
    for step in STEPS.into_iter().chain([SwapStep::RoundDone]) {
        for nth in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let mut log = deleted_key(dir.path());
            let bound = log.log_end_offset();
            let _ = log.compact_with_hook(after, &eager(), bound, &mut stop_at(step, nth));
            drop(log);
            let mut log = open(dir.path(), config());
            let seen = visible(&log, 0);
            assert!(
                seen.iter()
                    .all(|(_, key, value)| key.as_deref() != Some("a") || value.is_none()),
                "{step:?}/{nth}: {seen:?}"
            );
            log.compact(after, &eager()).unwrap();
            assert_eq!(
                visible(&log, 0),
                vec![
                    v(1, "x", Some("1")),
                    v(3, "y", Some("1")),
                    v(4, "z", Some("1"))
                ],
                "{step:?}/{nth}"
            );
        }
    }
}

/// Three small segments that one round merges into one; the last one's records are
/// all superseded by the second's except its last batch.
fn mergeable(dir: &Path) -> PartitionLog {
    let mut log = open(dir, super::compaction::config());
    for segment in [
        [("a", "1"), ("b", "1")],
        [("c", "1"), ("a", "2")],
        [("b", "2"), ("c", "2")],
    ] {
        for (k, val) in segment {
            put(&mut log, &[(k, val)]);
        }
        log.roll(NOW_MS).unwrap();
    }
    log
}

#[test]
fn a_crash_while_merging_segments_leaves_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = mergeable(dir.path());
    let original = read_all(&log, 0);
    log.compact(NOW_MS, &eager()).unwrap();
    let cleaned = read_all(&log, 0);
    assert_eq!(segment_bases(&log), vec![0, 6]);
    for step in STEPS {
        let dir = tempfile::tempdir().unwrap();
        let mut log = mergeable(dir.path());
        let bound = log.log_end_offset();
        assert!(log
            .compact_with_hook(NOW_MS, &eager(), bound, &mut stop_at(step, 0))
            .is_err());
        drop(log);
        let mut log = open(dir.path(), super::compaction::config());
        let committed = !matches!(step, SwapStep::CleanedWritten | SwapStep::IndexesSwapped);
        let (expected, bases) = if committed {
            (&cleaned, vec![0, 6])
        } else {
            (&original, vec![0, 2, 4, 6])
        };
        assert_eq!(&read_all(&log, 0), expected, "{step:?}");
        assert_eq!(segment_bases(&log), bases, "{step:?}");
        log.compact(NOW_MS, &eager()).unwrap();
        assert_eq!(read_all(&log, 0), cleaned, "{step:?}");
    }
}
