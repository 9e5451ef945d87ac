//! Record view tests: parsing, malformed input, rebuilding in every codec.

use super::*;
use kafka_protocol::records::RecordBatchDecoder;

type Header<'a> = (&'a [u8], Option<&'a [u8]>);

fn put_field(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            put_varint(out, bytes.len() as i32);
            out.extend_from_slice(bytes);
        }
        None => put_varint(out, -1),
    }
}

/// A record encoded by hand, so tests can carry repeated header keys.
pub(crate) fn raw_record(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varlong(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    put_field(&mut body, key);
    put_field(&mut body, value);
    put_varint(&mut body, headers.len() as i32);
    for (k, v) in headers {
        put_field(&mut body, Some(k));
        put_field(&mut body, *v);
    }
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// Base offset 100, base timestamp 1000, producer 7 epoch 3 base sequence 11.
pub(crate) fn batch_of(
    records: &[Vec<u8>],
    last_offset_delta: i32,
    max_ts: i64,
    codec: Compression,
) -> Vec<u8> {
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    put_i64(&mut out, 0, 100);
    out[16] = 2;
    put_i32(&mut out, 23, last_offset_delta);
    put_i64(&mut out, BASE_TIMESTAMP_AT, 1_000);
    put_i64(&mut out, MAX_TIMESTAMP_AT, max_ts);
    put_i64(&mut out, 43, 7);
    put_i16(&mut out, 51, 3);
    put_i32(&mut out, 53, 11);
    put_i32(&mut out, RECORDS_COUNT_AT, records.len() as i32);
    for r in records {
        out.extend_from_slice(r);
    }
    seal(&mut out).unwrap();
    if codec == Compression::None {
        out
    } else {
        recompress(&out, codec, u64::MAX).unwrap()
    }
}

fn sample() -> Vec<Vec<u8>> {
    vec![
        raw_record(
            0,
            0,
            Some(b"a"),
            Some(b"one"),
            &[(b"h", Some(b"1")), (b"h", Some(b"2"))],
        ),
        raw_record(1, 5, Some(b"b"), None, &[]),
        raw_record(2, 9, None, Some(b"keyless"), &[(b"x", None)]),
        raw_record(3, 12, Some(b"a"), Some(b"two"), &[]),
    ]
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn reads_the_fields_the_cleaner_needs() {
    let records = sample();
    for codec in CODECS {
        let batch = batch_of(&records, 3, 1_012, codec);
        let section = records_section(&batch, u64::MAX).unwrap();
        let views = parse_records(&section, 4).unwrap();
        let summary: Vec<_> = views
            .iter()
            .map(|r| {
                (
                    r.offset_delta(),
                    r.timestamp_delta(),
                    r.key(),
                    r.is_tombstone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 0, Some(&b"a"[..]), false),
                (1, 5, Some(&b"b"[..]), true),
                (2, 9, None, false),
                (3, 12, Some(&b"a"[..]), false),
            ]
        );
        let raws: Vec<&[u8]> = views.iter().map(|r| r.raw()).collect();
        assert_eq!(raws, records.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}

#[test]
fn rebuilt_subset_keeps_identity_and_record_bytes_in_every_codec() {
    let records = sample();
    for codec in CODECS {
        let batch = batch_of(&records, 3, 1_012, codec);
        let section = records_section(&batch, u64::MAX).unwrap();
        let views = parse_records(&section, 4).unwrap();
        let kept = [views[0], views[2]];
        let rebuilt = rebuild_batch(&batch, &kept, None).unwrap();
        let info = validate(&rebuilt).unwrap();
        let h = BatchHeader::new(&rebuilt).unwrap();
        assert_eq!(info.compression, codec);
        assert_eq!(info.size, rebuilt.len());
        assert_eq!(
            (h.base_offset(), h.last_offset_delta(), h.records_count()),
            (100, 3, 2)
        );
        assert_eq!(
            (h.producer_id(), h.producer_epoch(), h.base_sequence()),
            (7, 3, 11)
        );
        assert_eq!((h.base_timestamp(), h.max_timestamp()), (1_000, 1_009));
        assert_eq!(delete_horizon_ms(&h), None);
        let section = records_section(&rebuilt, u64::MAX).unwrap();
        assert_eq!(
            &section[..],
            [records[0].clone(), records[2].clone()].concat()
        );
        // kafka-protocol agrees on offsets and values.
        let mut bytes = bytes::Bytes::from(rebuilt);
        let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap().records;
        let got: Vec<_> = decoded
            .iter()
            .map(|r| (r.offset, r.timestamp, r.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (100, 1_000, Some(bytes::Bytes::from_static(b"one"))),
                (102, 1_009, Some(bytes::Bytes::from_static(b"keyless"))),
            ]
        );
    }
}

#[test]
fn delete_horizon_rebases_timestamps_and_keeps_the_rest_of_each_record() {
    let records = sample();
    let batch = batch_of(&records, 3, 1_012, Compression::Lz4);
    let section = records_section(&batch, u64::MAX).unwrap();
    let views = parse_records(&section, 4).unwrap();
    let kept = [views[0], views[1]];
    let rebuilt = rebuild_batch(&batch, &kept, Some(90_000)).unwrap();
    let h = BatchHeader::new(&rebuilt).unwrap();
    assert_eq!(delete_horizon_ms(&h), Some(90_000));
    assert_eq!(h.compression_id(), Compression::Lz4.id());
    assert_eq!(h.max_timestamp(), 1_005);
    let section = records_section(&rebuilt, u64::MAX).unwrap();
    let again = parse_records(&section, 2).unwrap();
    for (new, old) in again.iter().zip(&kept) {
        assert_eq!(
            90_000 + new.timestamp_delta(),
            1_000 + old.timestamp_delta()
        );
        assert_eq!(
            new.raw()[new.offset_delta_at..],
            old.raw()[old.offset_delta_at..]
        );
        assert_eq!(new.key(), old.key());
    }
    let mut bytes = bytes::Bytes::from(rebuilt);
    let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap().records;
    assert_eq!(
        decoded.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        vec![1_000, 1_005]
    );
    assert!(decoded.iter().all(|r| r.delete_horizon));
}

#[test]
fn nothing_retained_gives_kafkas_empty_batch() {
    let batch = batch_of(&sample(), 3, 1_012, Compression::Zstd);
    let empty = rebuild_batch(&batch, &[], None).unwrap();
    assert_eq!(empty.len(), BATCH_HEADER_BYTES);
    let info = validate(&empty).unwrap();
    let h = BatchHeader::new(&empty).unwrap();
    assert_eq!(info.compression, Compression::None);
    assert_eq!(
        (h.base_offset(), h.last_offset_delta(), h.records_count()),
        (100, 3, 0)
    );
    assert_eq!((h.base_timestamp(), h.max_timestamp()), (1_012, 1_012));
    assert_eq!(
        (h.producer_id(), h.producer_epoch(), h.base_sequence()),
        (7, 3, 11)
    );
    assert!(
        parse_records(&records_section(&empty, u64::MAX).unwrap(), 0)
            .unwrap()
            .is_empty()
    );
}

fn first_error(section: &[u8], count: i32) -> RecordError {
    parse_records(section, count).unwrap_err()
}

#[test]
fn malformed_varints_and_lengths_are_errors() {
    // A length varint that never ends.
    assert!(matches!(
        first_error(&[0xff; 6], 1),
        RecordError::VarintTooLong { max_bytes: 5, .. }
    ));
    // A varint cut by the end of the section.
    assert!(matches!(
        first_error(&[0x80], 1),
        RecordError::Truncated { .. }
    ));
    // A claimed length of i32::MAX over a 6-byte section: refused, not allocated.
    let mut huge = Vec::new();
    put_varint(&mut huge, i32::MAX);
    huge.push(0);
    assert!(matches!(
        first_error(&huge, 1),
        RecordError::Truncated {
            field: "record body",
            ..
        }
    ));
    for bad_length in [0, -1, -7] {
        let mut r = Vec::new();
        put_varint(&mut r, bad_length);
        assert!(matches!(
            first_error(&r, 1),
            RecordError::InvalidLength {
                field: "record length",
                ..
            }
        ));
    }
    // The timestamp varlong runs past the body (longer than 10 bytes).
    let mut r = vec![24u8, 0];
    r.extend_from_slice(&[0xff; 11]);
    assert!(matches!(
        first_error(&r, 1),
        RecordError::VarintTooLong { max_bytes: 10, .. }
    ));
}

/// `record` with its body bytes from `at` replaced by `tail`, length fixed up.
fn patched(at: usize, tail: &[u8]) -> Vec<u8> {
    let good = raw_record(0, 0, Some(b"k"), Some(b"v"), &[]);
    let mut body = good[1..at].to_vec();
    body.extend_from_slice(tail);
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

#[test]
fn bad_field_lengths_inside_a_record_are_errors() {
    // Body: attributes, ts delta, offset delta, then key length at byte 4 of `good`.
    let key_past_end = patched(4, &[20, b'k']);
    assert!(matches!(
        first_error(&key_past_end, 1),
        RecordError::Truncated {
            field: "key length",
            ..
        }
    ));
    let negative_key = patched(4, &[3]);
    assert!(matches!(
        first_error(&negative_key, 1),
        RecordError::InvalidLength {
            field: "key length",
            value: -2,
            ..
        }
    ));
    let absurd_headers = patched(4, &[2, b'k', 2, b'v', 100, 0]);
    assert!(matches!(
        first_error(&absurd_headers, 1),
        RecordError::InvalidLength {
            field: "header count",
            value: 50,
            ..
        }
    ));
    let null_header_key = patched(4, &[2, b'k', 2, b'v', 2, 1, 0]);
    assert!(matches!(
        first_error(&null_header_key, 1),
        RecordError::InvalidLength {
            field: "header key length",
            value: -1,
            ..
        }
    ));
    let trailing = patched(4, &[2, b'k', 2, b'v', 0, 9]);
    assert!(matches!(
        first_error(&trailing, 1),
        RecordError::TrailingBodyBytes { unread: 1, .. }
    ));
}

#[test]
fn record_count_must_match_the_section() {
    let two = [sample()[0].clone(), sample()[1].clone()].concat();
    assert_eq!(parse_records(&two, 2).unwrap().len(), 2);
    assert!(matches!(
        first_error(&two, 3),
        RecordError::CountMismatch {
            problem: "ends early",
            ..
        }
    ));
    assert!(matches!(
        first_error(&two, 1),
        RecordError::CountMismatch {
            problem: "has bytes after the last record",
            ..
        }
    ));
    assert!(matches!(
        first_error(&two, -1),
        RecordError::CountMismatch { .. }
    ));
    // After an error the iterator stops.
    let mut it = Records::new(&[0xff; 6], 3);
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn garbage_compressed_section_is_an_error() {
    let mut batch = batch_of(&sample(), 3, 1_012, Compression::Gzip);
    let len = batch.len();
    batch[BATCH_HEADER_BYTES..len].fill(0x55);
    seal(&mut batch).unwrap();
    assert!(matches!(
        records_section(&batch, u64::MAX),
        Err(RecordError::Compression(_))
    ));
}
