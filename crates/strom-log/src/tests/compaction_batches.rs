//! Compaction of batches that need care: repeated record headers, idempotent
//! producers' last batches, corrupt and oversized batches (transactions: in
//! `compaction_txn`).

use strom_wire::batch::{
    set_compression, validate, BatchHeader, Batches, Compression as Codec, BATCH_HEADER_BYTES,
};
use strom_wire::record::{parse_records, records_section};

use super::compaction::{
    batch_shapes, eager, producer_batch_from, producer_batch_of, put, v, visible, Entry,
};
use super::*;
use crate::CompactionPolicy;

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// A record encoded by hand: kafka-protocol keeps headers in a map and would
/// merge repeated keys.
fn raw_record(
    offset_delta: i64,
    key: &[u8],
    value: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, offset_delta);
    put_bytes(&mut body, Some(key));
    put_bytes(&mut body, value);
    put_varint(&mut body, headers.len() as i64);
    for (k, val) in headers {
        put_bytes(&mut body, Some(k.as_bytes()));
        put_bytes(&mut body, Some(val.as_bytes()));
    }
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// An uncompressed batch around hand-made records, stamped NOW_MS.
fn raw_batch(attributes: i16, producer_id: i64, records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    out[16] = 2;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[23..27].copy_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    out[27..35].copy_from_slice(&NOW_MS.to_be_bytes());
    out[35..43].copy_from_slice(&(NOW_MS + records.len() as i64 - 1).to_be_bytes());
    out[43..51].copy_from_slice(&producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&(if producer_id >= 0 { 2i16 } else { -1 }).to_be_bytes());
    out[53..57].copy_from_slice(&(if producer_id >= 0 { 0i32 } else { -1 }).to_be_bytes());
    out[57..61].copy_from_slice(&(records.len() as i32).to_be_bytes());
    for r in records {
        out.extend_from_slice(r);
    }
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    // Rewriting the (already uncompressed) codec recomputes the CRC.
    set_compression(&mut out, Codec::None);
    validate(&out).expect("hand-made batch is valid");
    out
}

#[test]
fn repeated_headers_survive_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let headers = [("trace", "1"), ("trace", "2"), ("x", "")];
    let old = raw_record(0, b"a", Some(b"old"), &headers);
    let live = raw_record(1, b"b", Some(b"live"), &headers);
    // Kept whole: nothing in it is superseded.
    let whole = raw_batch(0, -1, &[raw_record(0, b"c", Some(b"c"), &headers)]);
    append(&mut log, &raw_batch(0, -1, &[old, live.clone()]));
    let whole = append(&mut log, &whole);
    put(&mut log, &[("a", "new")]);
    log.roll(NOW_MS).unwrap();
    log.compact(NOW_MS, &eager()).unwrap();
    let stored = read_all(&log, 0);
    let batches: Vec<_> = Batches::new(&stored).map(|b| b.unwrap().0).collect();
    assert_eq!(batches.len(), 3);
    // The rebuilt batch holds exactly the surviving record's original bytes.
    assert_eq!(
        &records_section(batches[0], u64::MAX).unwrap()[..],
        &live[..]
    );
    assert_eq!(batches[1], &whole[..]);
    let section = records_section(batches[0], u64::MAX).unwrap();
    let parsed = parse_records(&section, 1).unwrap();
    assert_eq!(
        (parsed[0].key(), parsed[0].offset_delta()),
        (Some(&b"b"[..]), 1)
    );
}

#[test]
fn an_idempotent_producers_last_batch_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let one = |v: &'static str, sequence| {
        producer_batch_from(
            &[(Some("a"), Some(v))],
            Compression::Lz4,
            NOW_MS,
            5,
            false,
            sequence,
        )
    };
    append(&mut log, &one("1", 40));
    let last = append(&mut log, &one("2", 41));
    put(&mut log, &[("a", "3")]);
    log.roll(NOW_MS).unwrap();
    log.compact(NOW_MS, &eager()).unwrap();
    assert_eq!(visible(&log, 0), vec![v(2, "a", Some("3"))]);
    let stored = read_all(&log, 0);
    let kept = BatchHeader::new(&stored).unwrap();
    let original = BatchHeader::new(&last).unwrap();
    assert_eq!(validate(&stored).unwrap().size, BATCH_HEADER_BYTES);
    assert_eq!(
        (
            kept.base_offset(),
            kept.last_offset_delta(),
            kept.records_count()
        ),
        (1, 0, 0)
    );
    assert_eq!(
        (
            kept.producer_id(),
            kept.producer_epoch(),
            kept.base_sequence()
        ),
        (
            original.producer_id(),
            original.producer_epoch(),
            original.base_sequence()
        )
    );
    assert_eq!((kept.producer_id(), kept.base_sequence()), (5, 41));
}

#[test]
fn an_expired_producers_last_batch_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let entries: [Entry<'_>; 1] = [(Some("a"), Some("1"))];
    append(
        &mut log,
        &producer_batch_of(&entries, Compression::None, NOW_MS - 10_000, 5, false),
    );
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    let policy = CompactionPolicy {
        producer_id_expiration_ms: 5_000,
        ..eager()
    };
    log.compact(NOW_MS, &policy).unwrap();
    assert_eq!(base_offsets(&read_all(&log, 0)), vec![1]);
    assert_eq!(visible(&log, 0), vec![v(1, "a", Some("2"))]);
}

#[test]
fn a_corrupt_record_stops_the_round_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    put(&mut log, &[("a", "1")]);
    // Valid CRC, but the record's key length points past its body.
    let mut bad = raw_record(0, b"b", Some(b"v"), &[]);
    bad[4] = 40;
    append(&mut log, &raw_batch(0, -1, &[bad]));
    put(&mut log, &[("a", "2")]);
    log.roll(NOW_MS).unwrap();
    let before = read_all(&log, 0);
    let error = log.compact(NOW_MS, &eager()).unwrap_err();
    assert!(error.to_string().contains("bad records"), "{error}");
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(log.cleaner_checkpoint().unwrap(), None);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(log);
    assert_eq!(read_all(&open(dir.path(), LogConfig::default()), 0), before);
}

#[test]
fn a_batch_inflating_past_the_bound_is_kept_whole_and_left_unmapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    // 70 MiB of zeros gzip to about 70 KB: past 64 x max(70 KB, 1048588 bytes).
    let zeros = vec![0u8; 70 << 20];
    let plain = raw_batch(0, -1, &[raw_record(0, b"a", Some(&zeros), &[])]);
    drop(zeros);
    let bomb = strom_wire::compression::recompress(&plain, Codec::Gzip, u64::MAX).unwrap();
    drop(plain);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    put(&mut log, &[("b", "old")]);
    let bomb = append(&mut log, &bomb);
    put(&mut log, &[("a", "new"), ("b", "new")]);
    log.roll(NOW_MS).unwrap();
    log.compact(NOW_MS, &eager()).unwrap();
    let stored = read_all(&log, 0);
    let batches: Vec<_> = Batches::new(&stored).map(|b| b.unwrap().0).collect();
    // b=old is cleaned away; the bomb stays byte for byte although a=new supersedes its record.
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0], &bomb[..]);
    assert_eq!(batch_shapes(&log), vec![(1, 1), (2, 2)]);
}
