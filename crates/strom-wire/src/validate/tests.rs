//! The one-pass validation of produced batches: Kafka's header checks, every
//! malformed record layout, the per-record (KIP-467) checks, recompression
//! and the inflation bound.

use super::*;
use crate::batch::{set_log_append_time, BatchHeader};
use crate::compression::recompress;
use crate::record::tests::raw_record;
use crate::record_check::TimestampWindow;

const TP: &str = "t-0";
const BASE_TS: i64 = 1_000;
const HOUR: i64 = 3_600_000;
const MAX_MESSAGE_BYTES: usize = 1_048_588;
const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn put_i32(out: &mut [u8], at: usize, value: i32) {
    out[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
fn put_i64(out: &mut [u8], at: usize, value: i64) {
    out[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

/// A batch with base offset 0 and base timestamp 1000 around any records
/// section, which `codec` then compresses.
fn batch_around(
    section: &[u8],
    count: i32,
    last_offset_delta: i32,
    max_ts: i64,
    codec: Compression,
) -> Vec<u8> {
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    out[16] = 2;
    put_i32(&mut out, 23, last_offset_delta);
    put_i64(&mut out, 27, BASE_TS);
    put_i64(&mut out, 35, max_ts);
    put_i64(&mut out, 43, -1);
    out[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    put_i32(&mut out, 53, -1);
    put_i32(&mut out, 57, count);
    out.extend_from_slice(section);
    let length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    put_i32(&mut out, 8, length);
    crate::batch::set_compression(&mut out, Compression::None);
    if codec == Compression::None {
        out
    } else {
        recompress(&out, codec, u64::MAX).unwrap()
    }
}

/// Records (key, timestamp delta) with offset deltas 0, 1, 2, ...
fn section_of(records: &[(Option<&str>, i64)]) -> Vec<u8> {
    records
        .iter()
        .enumerate()
        .flat_map(|(i, (key, delta))| {
            raw_record(
                i as i32,
                *delta,
                key.map(str::as_bytes),
                Some(b"value"),
                &[],
            )
        })
        .collect()
}

fn batch(records: &[(Option<&str>, i64)], max_ts: i64, codec: Compression) -> Vec<u8> {
    let n = records.len() as i32;
    batch_around(&section_of(records), n, n - 1, max_ts, codec)
}

fn simple(n: usize, codec: Compression) -> Vec<u8> {
    let records: Vec<(Option<&str>, i64)> = (0..n).map(|i| (Some("k"), i as i64)).collect();
    batch(&records, BASE_TS + n as i64 - 1, codec)
}

fn rules(records: RecordRules) -> ProduceRules<'static> {
    ProduceRules {
        topic_partition: TP,
        max_message_bytes: MAX_MESSAGE_BYTES,
        records,
        target: None,
    }
}

fn plain() -> ProduceRules<'static> {
    rules(RecordRules {
        require_key: false,
        window: None,
    })
}

fn invalid_message(batch: &[u8], rules: &ProduceRules<'_>) -> String {
    match validate_produce(batch, rules) {
        Err(ProduceFault::InvalidRecord(message)) => message,
        other => panic!("expected InvalidRecord, got {other:?}"),
    }
}

fn too_large_message(batch: &[u8], rules: &ProduceRules<'_>) -> String {
    match validate_produce(batch, rules) {
        Err(ProduceFault::TooLarge(message)) => message,
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn valid_batches_pass_in_every_codec_and_report_their_largest_timestamp() {
    for codec in CODECS {
        let records = [(Some("a"), 5), (Some("b"), 9), (Some("c"), 2)];
        // The header's max timestamp is wrong on purpose: Kafka takes the records'.
        let b = batch(&records, 0, codec);
        let validated = validate_produce(&b, &plain()).unwrap();
        assert_eq!(validated.max_timestamp, BASE_TS + 9, "{codec:?}");
        assert_eq!(validated.recompressed, None);
        assert_eq!(validated.inflated_bytes, section_of(&records).len() as u64);
    }
}

#[test]
fn header_checks_come_in_kafkas_order_with_its_messages() {
    let mut b = simple(2, Compression::None);
    put_i64(&mut b, 0, 7); // outside the CRC
    assert_eq!(
        invalid_message(&b, &plain()),
        "The baseOffset of the record batch in the append to t-0 should be 0, but it is 7"
    );
    let b = simple(2, Compression::None);
    let small = ProduceRules {
        max_message_bytes: b.len() - 1,
        ..plain()
    };
    assert_eq!(
        too_large_message(&b, &small),
        format!(
            "The record batch size in the append to t-0 is {} bytes which exceeds the maximum configured value of {}.",
            b.len(),
            b.len() - 1
        )
    );
    let mut corrupt = b.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert!(matches!(
        validate_produce(&corrupt, &plain()),
        Err(ProduceFault::Batch(BatchError::CrcMismatch { .. }))
    ));
    let section = section_of(&[(Some("a"), 0), (Some("b"), 1)]);
    let cases = [
        (
            2,
            -1,
            "Batch has an invalid offset range: [0, -1] in topic partition t-0",
        ),
        (
            0,
            1,
            "Invalid reported count for record batch: 0 in topic partition t-0",
        ),
        (
            -3,
            1,
            "Invalid reported count for record batch: -3 in topic partition t-0",
        ),
        (
            5,
            1,
            "Inconsistent batch offset range [0, 1] and count of records 5 in topic partition t-0",
        ),
        (
            2,
            4,
            "Inconsistent batch offset range [0, 4] and count of records 2 in topic partition t-0",
        ),
    ];
    for (count, last_offset_delta, message) in cases {
        let b = batch_around(
            &section,
            count,
            last_offset_delta,
            BASE_TS,
            Compression::None,
        );
        assert_eq!(invalid_message(&b, &plain()), message);
    }
    let mut control = simple(1, Compression::None);
    control[22] |= 0x20;
    crate::batch::set_compression(&mut control, Compression::None);
    assert_eq!(
        invalid_message(&control, &plain()),
        "Clients are not allowed to write control records in topic partition t-0"
    );
    let mut idempotent = simple(1, Compression::None);
    put_i64(&mut idempotent, 43, 42);
    crate::batch::set_compression(&mut idempotent, Compression::None);
    assert_eq!(
        invalid_message(&idempotent, &plain()),
        "Invalid sequence number -1 in record batch with producerId 42 in topic partition t-0"
    );
}

#[test]
fn a_count_beyond_the_records_is_refused_without_walking_two_billion_records() {
    // The header claims i32::MAX records, consistently with its offset range, over 10 bytes.
    for codec in CODECS {
        let section = section_of(&[(Some("a"), 0)]);
        let b = batch_around(&section, i32::MAX, i32::MAX - 1, BASE_TS, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Incorrect declared batch size, premature EOF reached",
            "{codec:?}"
        );
    }
}

#[test]
fn records_short_of_the_count_or_beyond_it_are_refused() {
    let three = section_of(&[(Some("a"), 0), (Some("b"), 1), (Some("c"), 2)]);
    for codec in CODECS {
        // Four claimed, three present.
        let b = batch_around(&three, 4, 3, BASE_TS, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Incorrect declared batch size, premature EOF reached",
            "{codec:?}"
        );
        // Two claimed, three present.
        let b = batch_around(&three, 2, 1, BASE_TS, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Incorrect declared batch size, records still remaining in file",
            "{codec:?}"
        );
        // Garbage after the last record.
        let mut garbage = three.clone();
        garbage.extend_from_slice(&[0xde, 0xad]);
        let b = batch_around(&garbage, 3, 2, BASE_TS, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Incorrect declared batch size, records still remaining in file",
            "{codec:?}"
        );
    }
}

#[test]
fn offset_deltas_must_run_without_gaps() {
    for codec in CODECS {
        let mut section = raw_record(0, 0, Some(b"a"), Some(b"v"), &[]);
        section.extend(raw_record(2, 0, Some(b"b"), Some(b"v"), &[]));
        let b = batch_around(&section, 2, 1, BASE_TS, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Record 1 of the batch has offset delta 2, but record offsets must run from the batch's base offset without gaps",
            "{codec:?}"
        );
        let mut section = raw_record(0, 0, Some(b"a"), Some(b"v"), &[]);
        section.extend(raw_record(0, 0, Some(b"b"), Some(b"v"), &[]));
        let b = batch_around(&section, 2, 1, BASE_TS, codec);
        assert!(
            invalid_message(&b, &plain()).starts_with("Record 1 of the batch has offset delta 0")
        );
    }
}

#[test]
fn a_truncated_record_is_refused_with_kafkas_message_per_path() {
    let mut section = raw_record(0, 0, Some(b"a"), Some(b"value"), &[]);
    let full = section.len();
    section.truncate(full - 3);
    let body = (full - 1) as i32;
    let b = batch_around(&section, 1, 0, BASE_TS, Compression::None);
    assert_eq!(
        invalid_message(&b, &plain()),
        format!(
            "Invalid record size: expected {body} bytes in record payload, but instead the buffer has only {} remaining bytes.",
            full - 4
        )
    );
    for codec in &CODECS[1..] {
        let b = batch_around(&section, 1, 0, BASE_TS, *codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            format!("Invalid record size: expected {body} bytes in record payload, but the record payload reached EOF."),
            "{codec:?}"
        );
    }
}

/// A record whose body (after the length varint) is `body`.
fn with_body(body: &[u8]) -> Vec<u8> {
    let mut out = vec![(body.len() as u8) << 1];
    out.extend_from_slice(body);
    out
}

#[test]
fn fields_must_fit_their_record_and_lengths_must_be_sane() {
    let cases: [(Vec<u8>, &str); 6] = [
        // Key length 10 inside a body of 7 bytes.
        (with_body(&[0, 0, 0, 20, b'k', 2, b'v']), "Found invalid record structure"),
        // Header count -1.
        (with_body(&[0, 0, 0, 2, b'k', 2, b'v', 1]), "Found invalid number of record headers -1"),
        // Header count 5 with one byte left.
        (
            with_body(&[0, 0, 0, 2, b'k', 2, b'v', 10, 0]),
            "Found invalid number of record headers. 5 is larger than the remaining size of the buffer",
        ),
        // A header key of length -2.
        (with_body(&[0, 0, 0, 2, b'k', 2, b'v', 2, 3, 0]), "Invalid negative header key size -2"),
        // Two bytes of the body left unread.
        (
            with_body(&[0, 0, 0, 2, b'k', 2, b'v', 0, 9, 9]),
            "Invalid record size: expected to read 10 bytes in record payload, but instead read 8",
        ),
        // A 6-byte varint for the offset delta.
        (with_body(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0]), "Found invalid record structure"),
    ];
    for (record, message) in cases {
        for codec in CODECS {
            let b = batch_around(&record, 1, 0, BASE_TS, codec);
            assert_eq!(
                invalid_message(&b, &plain()),
                message,
                "{codec:?} {record:?}"
            );
        }
    }
    // A negative key or value length other than -1 reads as null, as in Kafka.
    let b = batch_around(
        &with_body(&[0, 0, 0, 3, 5, 0]),
        1,
        0,
        BASE_TS,
        Compression::None,
    );
    validate_produce(&b, &plain()).unwrap();
}

#[test]
fn recompression_streams_into_the_topics_codec() {
    for from in CODECS {
        let original = simple(50, from);
        for to in CODECS {
            let rules = ProduceRules {
                target: Some(to),
                ..plain()
            };
            let validated = validate_produce(&original, &rules).unwrap();
            if from == to {
                assert_eq!(validated.recompressed, None);
                continue;
            }
            let converted = validated.recompressed.unwrap();
            let info = crate::batch::validate(&converted).unwrap();
            assert_eq!(
                (info.compression, info.records_count, info.size),
                (to, 50, converted.len())
            );
            // The converted batch holds the same records section byte for byte.
            let back = recompress(&converted, Compression::None, u64::MAX).unwrap();
            assert_eq!(back, simple(50, Compression::None), "{from:?} -> {to:?}");
        }
    }
}

#[test]
fn recompression_stops_once_past_max_message_bytes() {
    // 200 KiB of incompressible-ish values, gzip-compressed well, stored uncompressed.
    let values: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            (0..1024u32)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(17)) as u8)
                .collect()
        })
        .collect();
    let section: Vec<u8> = values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| raw_record(i as i32, 0, Some(b"k"), Some(v), &[]))
        .collect();
    let b = batch_around(&section, 200, 199, BASE_TS, Compression::Gzip);
    let rules = ProduceRules {
        max_message_bytes: 100_000,
        target: Some(Compression::None),
        ..plain()
    };
    assert!(b.len() <= rules.max_message_bytes);
    assert_eq!(
        too_large_message(&b, &rules),
        "The record batch compressed with none in append to partition t-0 exceeds the maximum configured size of 100000."
    );
}

/// One record whose value is `zeros` zero bytes: compresses to almost nothing.
fn bomb(zeros: usize, codec: Compression) -> Vec<u8> {
    let section = raw_record(0, 0, Some(b"k"), Some(&vec![0u8; zeros]), &[]);
    batch_around(&section, 1, 0, BASE_TS, codec)
}

#[test]
fn a_decompression_bomb_is_refused_at_the_inflation_bound() {
    let max_message_bytes = 256 * 1024;
    let limit = inflation_limit(max_message_bytes);
    assert_eq!(limit, 16 * 1024 * 1024);
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let b = bomb(32 << 20, codec);
        assert!(b.len() <= max_message_bytes, "{codec:?}: {}", b.len());
        // Storing it uncompressed passes max.message.bytes first: also too large.
        let uncompressed = ProduceRules {
            max_message_bytes,
            target: Some(Compression::None),
            ..plain()
        };
        assert!(too_large_message(&b, &uncompressed)
            .starts_with("The record batch compressed with none"));
        for target in [None, Some(Compression::Zstd)] {
            let rules = ProduceRules {
                max_message_bytes,
                target,
                ..plain()
            };
            assert_eq!(
                too_large_message(&b, &rules),
                format!(
                    "The {} records of the batch inflate past {limit} bytes (64 times max.message.bytes)",
                    codec.name()
                )
            );
        }
        // Just under the bound is fine.
        let fits = bomb(limit as usize - 64, codec);
        let rules = ProduceRules {
            max_message_bytes,
            ..plain()
        };
        assert!(validate_produce(&fits, &rules).unwrap().inflated_bytes <= limit);
    }
}

#[test]
fn a_snappy_block_claiming_more_than_snappy_can_inflate_is_corrupt() {
    let mut b = simple(3, Compression::None);
    // A raw snappy section: varint length claim of 1 GiB, then junk.
    let section = [0x80, 0x80, 0x80, 0x80, 0x04, 0, 0, 0];
    b.truncate(BATCH_HEADER_BYTES);
    b.extend_from_slice(&section);
    let length = (b.len() - LOG_OVERHEAD_BYTES) as i32;
    put_i32(&mut b, 8, length);
    crate::batch::set_compression(&mut b, Compression::Snappy);
    assert!(matches!(
        validate_produce(&b, &plain()),
        Err(ProduceFault::Decompress {
            codec: "snappy",
            ..
        })
    ));
}

// --- the per-record (KIP-467) checks, in the same walk ---------------------

fn window(before_max_ms: i64, after_max_ms: i64) -> Option<TimestampWindow> {
    Some(TimestampWindow {
        now_ms: BASE_TS,
        before_max_ms,
        after_max_ms,
    })
}

fn refused_of(b: &[u8], require_key: bool, window: Option<TimestampWindow>) -> Vec<RefusedRecord> {
    match validate_produce(
        b,
        &rules(RecordRules {
            require_key,
            window,
        }),
    ) {
        Ok(_) => Vec::new(),
        Err(ProduceFault::RecordsRefused(refused)) => refused,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn refused(index: usize, fault: RecordFault) -> RefusedRecord {
    RefusedRecord { index, fault }
}

#[test]
fn keyless_records_of_a_compacted_topic_are_named_by_index() {
    for codec in CODECS {
        let b = batch(
            &[(Some("a"), 0), (None, 1), (Some("c"), 2), (None, 3)],
            BASE_TS + 3,
            codec,
        );
        assert_eq!(
            refused_of(&b, true, None),
            vec![
                refused(1, RecordFault::MissingKey),
                refused(3, RecordFault::MissingKey)
            ],
            "{codec:?}"
        );
    }
    let keyed = batch(&[(Some("a"), 0), (Some(""), 0)], BASE_TS, Compression::None);
    assert_eq!(refused_of(&keyed, true, None), vec![]);
}

#[test]
fn each_record_timestamp_is_checked_not_only_the_header_bounds() {
    let b = batch(
        &[(Some("a"), 0), (Some("b"), -48 * HOUR), (Some("c"), 5)],
        BASE_TS + 5,
        Compression::Snappy,
    );
    assert_eq!(
        refused_of(&b, false, window(24 * HOUR, HOUR)),
        vec![refused(
            1,
            RecordFault::TimestampOutOfRange {
                timestamp: BASE_TS - 48 * HOUR,
                offset: 1
            }
        )]
    );
    // A header claiming a small max timestamp does not hide a future record.
    let b = batch(
        &[(Some("a"), 0), (Some("b"), 2 * HOUR)],
        BASE_TS,
        Compression::None,
    );
    assert_eq!(
        refused_of(&b, false, window(i64::MAX, HOUR)),
        vec![refused(
            1,
            RecordFault::TimestampOutOfRange {
                timestamp: BASE_TS + 2 * HOUR,
                offset: 1
            }
        )]
    );
}

#[test]
fn a_missing_key_is_reported_instead_of_a_bad_timestamp() {
    let b = batch(
        &[(None, 5 * HOUR), (Some("b"), 5 * HOUR), (None, 0)],
        BASE_TS + 5 * HOUR,
        Compression::Lz4,
    );
    assert_eq!(
        refused_of(&b, true, window(i64::MAX, HOUR)),
        vec![
            refused(0, RecordFault::MissingKey),
            refused(
                1,
                RecordFault::TimestampOutOfRange {
                    timestamp: BASE_TS + 5 * HOUR,
                    offset: 1
                }
            ),
            refused(2, RecordFault::MissingKey),
        ]
    );
}

#[test]
fn producers_may_not_stamp_log_append_time() {
    let stamped = BASE_TS + 7;
    let mut b = batch(
        &[(Some("key"), 0), (None, 1)],
        BASE_TS + 1,
        Compression::Gzip,
    );
    set_log_append_time(&mut b, stamped);
    let lat = |offset, key_bytes| RecordFault::LogAppendTimeFromProducer {
        offset,
        timestamp: stamped,
        key_bytes,
        value_bytes: 5,
    };
    assert_eq!(
        refused_of(&b, false, None),
        vec![refused(0, lat(0, 3)), refused(1, lat(1, 0))]
    );
    // A CreateTime topic takes the batch's max timestamp as every record's.
    let validated = validate_produce(
        &b,
        &rules(RecordRules {
            require_key: false,
            window: window(i64::MAX, HOUR),
        }),
    )
    .unwrap();
    assert_eq!(validated.max_timestamp, stamped);
    set_log_append_time(&mut b, NO_TIMESTAMP);
    assert_eq!(
        refused_of(&b, false, window(i64::MAX, HOUR))[0].fault,
        RecordFault::LogAppendTimeFromProducer {
            offset: 0,
            timestamp: NO_TIMESTAMP,
            key_bytes: 3,
            value_bytes: 5
        }
    );
}

#[test]
fn a_structural_fault_wins_over_refused_records() {
    // Record 0 is keyless (refusable), record 1 is cut short: the batch is invalid.
    let mut section = raw_record(0, 0, None, Some(b"v"), &[]);
    let mut second = raw_record(1, 0, Some(b"k"), Some(b"value"), &[]);
    second.truncate(second.len() - 2);
    section.extend(second);
    let b = batch_around(&section, 2, 1, BASE_TS, Compression::Zstd);
    let rules = rules(RecordRules {
        require_key: true,
        window: None,
    });
    assert!(invalid_message(&b, &rules).starts_with("Invalid record size: expected"));
    assert_eq!(BatchHeader::new(&b).unwrap().records_count(), 2);
}

/// Records of `value_bytes` each, enough that decompressed chunks end inside
/// some of them: those are read across two chunks, the others in one piece.
fn section_across_chunks(count: usize, value_bytes: usize) -> Vec<u8> {
    let value = vec![b'v'; value_bytes];
    (0..count)
        .flat_map(|i| raw_record(i as i32, i as i64 % 50, Some(b"k"), Some(&value), &[]))
        .collect()
}

#[test]
fn records_split_across_decompressed_chunks_are_walked_like_the_rest() {
    let section = section_across_chunks(3_000, 97);
    assert!(section.len() > 4 * STREAM_CHUNK_BYTES);
    for codec in CODECS {
        let b = batch_around(&section, 3_000, 2_999, 0, codec);
        let validated = validate_produce(&b, &plain()).unwrap();
        assert_eq!(validated.max_timestamp, BASE_TS + 49, "{codec:?}");
        assert_eq!(validated.inflated_bytes, section.len() as u64, "{codec:?}");
    }
    // A fault in the last record, after every chunk boundary, is still found.
    let mut section = section_across_chunks(2_999, 97);
    section.extend(raw_record(7, 0, Some(b"k"), Some(b"v"), &[]));
    for codec in CODECS {
        let b = batch_around(&section, 3_000, 2_999, 0, codec);
        assert_eq!(
            invalid_message(&b, &plain()),
            "Record 2999 of the batch has offset delta 7, but record offsets must run from the batch's base offset without gaps",
            "{codec:?}"
        );
    }
    // A record cut short by the end of the stream, whatever chunk it starts in.
    let mut section = section_across_chunks(3_000, 97);
    section.truncate(section.len() - 5);
    for codec in &CODECS[1..] {
        let b = batch_around(&section, 3_000, 2_999, 0, *codec);
        assert!(
            invalid_message(&b, &plain()).ends_with("but the record payload reached EOF."),
            "{codec:?}"
        );
    }
}
