use std::fs;

use super::*;

/// (offset, position) entries of a segment's `.index` file.
fn index_entries(dir: &Path, base: i64) -> Vec<(i64, u64)> {
    let bytes = fs::read(dir.join(format!("{base:020}.index"))).unwrap();
    bytes
        .chunks_exact(8)
        .map(|c| {
            let relative = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let position = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            (base + i64::from(relative), u64::from(position))
        })
        .collect()
}

/// 8 three-record batches of equal size; with the interval at 1.5 batches an entry lands on
/// every other batch, and segments hold 4 batches each.
fn indexed_log(dir: &Path) -> (PartitionLog, LogConfig, Vec<u8>, usize) {
    let one = batch(3);
    let config = LogConfig {
        index_interval_bytes: (one.len() * 3 / 2) as u32,
        segment_bytes: (one.len() * 4) as u64,
        ..LogConfig::default()
    };
    let mut log = open(dir, config.clone());
    let mut all = Vec::new();
    for _ in 0..8 {
        all.extend(append(&mut log, &one));
    }
    (log, config, all, one.len())
}

/// The first batch a one-byte read returns for each offset is the batch holding it.
fn assert_every_offset_finds_its_batch(log: &PartitionLog, all: &[u8], batch_bytes: usize) {
    for offset in 0..24 {
        let first = log.read(offset, 1, i64::MAX, true).unwrap().bytes.to_vec();
        let k = (offset / 3) as usize;
        assert_eq!(
            first,
            all[k * batch_bytes..(k + 1) * batch_bytes].to_vec(),
            "offset {offset}"
        );
    }
    assert!(log.read(24, 1, i64::MAX, true).unwrap().bytes.is_empty());
}

#[test]
fn index_entries_land_every_interval_and_lookups_hit_every_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _, all, b) = indexed_log(dir.path());
    assert_eq!(segment_bases(&log), vec![0, 12]);
    let b = b as u64;
    // An entry (last offset of the batch, its position) once > 1.5 batches have passed.
    assert_eq!(index_entries(dir.path(), 0), vec![(8, 2 * b)]);
    assert_eq!(index_entries(dir.path(), 12), vec![(20, 2 * b)]);
    assert_every_offset_finds_its_batch(&log, &all, b as usize);
    let starts = |offset| base_offsets(&log.read(offset, 1, i64::MAX, true).unwrap().bytes);
    assert_eq!(starts(12), vec![12]); // first offset of a segment
    assert_eq!(starts(11), vec![9]); // last offset of a segment
    assert_eq!(starts(8), vec![6]); // exactly at an index entry
    assert_eq!(starts(9), vec![9]); // just past an index entry
    assert_eq!(starts(22), vec![21]); // a middle record of a batch
}

#[test]
fn indexes_survive_clean_reopen_and_are_rebuilt_identically_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (log, config, all, b) = indexed_log(dir.path());
    log.close().unwrap();
    let files = |base: i64| {
        (
            fs::read(dir.path().join(format!("{base:020}.index"))).unwrap(),
            fs::read(dir.path().join(format!("{base:020}.timeindex"))).unwrap(),
        )
    };
    let before = (files(0), files(12));
    let log = open(dir.path(), config.clone());
    assert_every_offset_finds_its_batch(&log, &all, b);
    drop(log);
    // Crash: no marker, and stale indexes that recovery must replace.
    for base in [0, 12] {
        fs::write(dir.path().join(format!("{base:020}.index")), [0xFF; 16]).unwrap();
        fs::remove_file(dir.path().join(format!("{base:020}.timeindex"))).unwrap();
    }
    fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    let log = open(dir.path(), config);
    assert_every_offset_finds_its_batch(&log, &all, b);
    assert_eq!(index_entries(dir.path(), 0), vec![(8, 2 * b as u64)]);
    // The active segment's final time-index entry is written on close, not by a rebuild.
    assert_eq!(files(0), before.0);
    assert_eq!(files(12).0, before.1 .0);
}

#[test]
fn corrupt_index_after_clean_shutdown_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (log, config, all, b) = indexed_log(dir.path());
    log.close().unwrap();
    // An entry pointing past the end of the log fails the sanity check.
    let mut bad = index_entries(dir.path(), 12)
        .iter()
        .flat_map(|&(o, p)| [((o - 12) as u32).to_be_bytes(), (p as u32).to_be_bytes()].concat())
        .collect::<Vec<u8>>();
    bad.extend_from_slice(&[0, 0, 0, 23, 0x7F, 0, 0, 0]);
    fs::write(dir.path().join(format!("{:020}.index", 12)), bad).unwrap();
    let log = open(dir.path(), config);
    assert_every_offset_finds_its_batch(&log, &all, b);
    assert_eq!(index_entries(dir.path(), 12), vec![(20, 2 * b as u64)]);
}
