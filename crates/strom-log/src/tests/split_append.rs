//! Appends of batches split into a rewritten header and records left in place.

use strom_wire::batch::{
    set_log_append_time, set_partition_leader_epoch, validate, SplitBatch, TimestampType,
    BATCH_HEADER_BYTES,
};

use super::*;
use crate::LogError;

fn log_file(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join(format!("{:020}.log", 0))).unwrap()
}

#[test]
fn the_file_holds_each_rewritten_header_then_the_untouched_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let first = append(&mut log, &batch(2));
    let created = batch_with(&[NOW_MS - 5, NOW_MS - 1, NOW_MS - 3], 100);
    let stamped = batch_with(&[NOW_MS - 9], 1000);
    let mut split = [
        SplitBatch::new(&created).unwrap(),
        SplitBatch::new(&stamped).unwrap(),
    ];
    split[1].set_log_append_time(NOW_MS + 7);
    let info = log.append_split(&mut split, 3, NOW_MS).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (2, 5));
    assert_eq!(info.max_timestamp, NOW_MS + 7);
    assert_eq!(info.offset_of_max_timestamp, 5);

    // What a whole-buffer rewrite of each batch would have stored.
    let mut expected_created = stored(&created, 2);
    set_partition_leader_epoch(&mut expected_created, 3);
    let mut expected_stamped = stored(&stamped, 5);
    set_partition_leader_epoch(&mut expected_stamped, 3);
    set_log_append_time(&mut expected_stamped, NOW_MS + 7);
    assert_eq!(
        &split[0].header[..],
        &expected_created[..BATCH_HEADER_BYTES]
    );
    assert_eq!(
        &split[1].header[..],
        &expected_stamped[..BATCH_HEADER_BYTES]
    );
    assert_eq!(split[1].records, &stamped[BATCH_HEADER_BYTES..]);

    let expected = [first, expected_created, expected_stamped].concat();
    assert_eq!(log_file(dir.path()), expected);
    assert_eq!(read_all(&log, 0), expected);
    let stamped_info = validate(&expected[expected.len() - stamped.len()..]).unwrap();
    assert_eq!(stamped_info.timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(stamped_info.max_timestamp, NOW_MS + 7);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(epoch_pairs(&log), vec![(0, 0), (3, 2)]);
    drop(log);

    // Recovery (no clean-shutdown marker) validates every batch, CRCs included.
    let reopened = open(dir.path(), LogConfig::default());
    assert_eq!(reopened.log_end_offset(), 6);
    assert_eq!(read_all(&reopened, 0), expected);
}

#[test]
fn a_split_batch_whose_header_disagrees_with_its_records_is_refused_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let first = append(&mut log, &batch(1));
    let whole = batch(3);
    let mut cut = SplitBatch::new(&whole).unwrap();
    cut.records = &cut.records[..cut.records.len() - 1];
    assert!(matches!(
        log.append_split(&mut [cut], 0, NOW_MS),
        Err(LogError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append_split(&mut [], 0, NOW_MS),
        Err(LogError::EmptyAppend)
    ));
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log_file(dir.path()), first);
}

#[test]
fn more_batches_than_one_vectored_write_takes_are_stored_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    // 700 batches are 1,400 parts: two pwritev calls.
    let batches: Vec<Vec<u8>> = (0..700).map(|i| batch(1 + i % 3)).collect();
    let mut split: Vec<SplitBatch<'_>> = batches
        .iter()
        .map(|b| SplitBatch::new(b).unwrap())
        .collect();
    let info = log.append_split(&mut split, 0, NOW_MS).unwrap();
    let mut expected = Vec::new();
    let mut offset = 0;
    for b in &batches {
        expected.extend_from_slice(&stored(b, offset));
        offset += BatchHeader::new(b).unwrap().last_offset() + 1;
    }
    assert_eq!((info.base_offset, info.last_offset), (0, offset - 1));
    assert_eq!(log_file(dir.path()), expected);
    assert_eq!(read_all(&log, 0), expected);
    // The sparse index points at batch boundaries: a read from the middle starts on one.
    let middle = read_all(&log, offset / 2);
    assert!(expected.ends_with(&middle));
    assert_eq!(base_offsets(&middle).last(), base_offsets(&expected).last());
}

#[test]
fn prefetched_slices_across_segments_read_back_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut expected = Vec::new();
    for _ in 0..6 {
        expected.extend(append(&mut log, &batch_with(&[NOW_MS; 3], 200)));
    }
    assert!(log.segments().len() > 1);
    let slices = log.reader().read(0, usize::MAX, i64::MAX, true).unwrap();
    assert!(slices.slices.len() > 1);
    slices.prefetch();
    assert_eq!(slices.to_bytes().unwrap().to_vec(), expected);
}
