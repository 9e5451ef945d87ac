//! Records inside a v2 batch, seen as raw byte slices, for the log cleaner.
//!
//! Only what compaction needs is decoded from each record: its offset and
//! timestamp deltas, its key, and whether its value is null (a tombstone).
//! Headers are walked for bounds only and never interpreted, so a rebuilt
//! batch carries them byte for byte (repeated header keys included).
//! Every varint and length is checked against the slice it lives in; nothing
//! is allocated from a length read off the wire.
//!
//! Record layout: length (varint) | attributes (1) | timestampDelta (varlong)
//! | offsetDelta (varint) | keyLength (varint, -1 = null) | key
//! | valueLength (varint, -1 = null) | value | headerCount (varint)
//! | headers (keyLength varint, key, valueLength varint, value)...

use std::borrow::Cow;

use thiserror::Error;

use crate::batch::{validate, BatchError, BatchHeader, Compression, TimestampType};
use crate::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::compression::{recompress, CompressionError};

/// Attribute bit 6: the base timestamp holds the delete horizon (KIP-534).
pub const DELETE_HORIZON_BIT: i16 = 0x40;

// Header fields the cleaner rewrites (the layout table is in `batch.rs`).
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

#[derive(Debug, Error)]
pub enum RecordError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("record {index}: varint at byte {at} is longer than {max_bytes} bytes")]
    VarintTooLong {
        index: usize,
        at: usize,
        max_bytes: usize,
    },
    #[error("record {index}: {field} runs past the end of its {available} bytes")]
    Truncated {
        index: usize,
        field: &'static str,
        available: usize,
    },
    #[error("record {index}: invalid {field} {value}")]
    InvalidLength {
        index: usize,
        field: &'static str,
        value: i64,
    },
    #[error("record {index}: {unread} bytes of its body were not used by its fields")]
    TrailingBodyBytes { index: usize, unread: usize },
    #[error("batch declares {declared} records but its records section {problem}")]
    CountMismatch {
        declared: i32,
        problem: &'static str,
    },
    #[error("{retained} records retained from a batch of {count}")]
    TooManyRetained { retained: usize, count: i32 },
    #[error("rebuilt batch is too large")]
    TooLarge,
}

/// One record of a batch: its raw bytes plus the fields the cleaner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    raw: &'a [u8],
    /// Where the offset delta starts in `raw`: everything from here on is
    /// copied untouched when only the timestamp delta changes.
    offset_delta_at: usize,
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value_is_null: bool,
}

impl<'a> RecordView<'a> {
    /// The whole record, length prefix included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    pub fn attributes(&self) -> i8 {
        self.attributes
    }
    pub fn timestamp_delta(&self) -> i64 {
        self.timestamp_delta
    }
    pub fn offset_delta(&self) -> i32 {
        self.offset_delta
    }
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }
    /// A null value: a delete marker for its key.
    pub fn is_tombstone(&self) -> bool {
        self.value_is_null
    }
}

/// Reads consecutive zigzag varints/varlongs and length-prefixed fields out of
/// one slice, failing instead of reading past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    index: usize,
}

impl<'a> Cursor<'a> {
    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, RecordError> {
        let start = self.at;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(RecordError::Truncated {
                    index: self.index,
                    field: "varint",
                    available: self.bytes.len(),
                });
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::VarintTooLong {
            index: self.index,
            at: start,
            max_bytes,
        })
    }

    /// A zigzag varint of at most 5 bytes; like Kafka, bits past 32 are dropped.
    fn varint(&mut self) -> Result<i32, RecordError> {
        let raw = self.unsigned(5)? as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, RecordError> {
        let raw = self.unsigned(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, RecordError> {
        let byte = self
            .bytes
            .get(self.at)
            .copied()
            .ok_or(RecordError::Truncated {
                index: self.index,
                field,
                available: self.bytes.len(),
            })?;
        self.at += 1;
        Ok(byte)
    }

    /// A length-prefixed field: `None` for length -1 when `nullable`.
    fn field(
        &mut self,
        field: &'static str,
        nullable: bool,
    ) -> Result<Option<&'a [u8]>, RecordError> {
        let length = self.varint()?;
        if length == -1 && nullable {
            return Ok(None);
        }
        let len = usize::try_from(length).map_err(|_| RecordError::InvalidLength {
            index: self.index,
            field,
            value: i64::from(length),
        })?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(RecordError::Truncated {
                index: self.index,
                field,
                available: self.bytes.len(),
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(Some(slice))
    }
}

/// Parses the record at the front of `bytes`; `raw` of the result is its extent.
fn parse_record(bytes: &[u8], index: usize) -> Result<RecordView<'_>, RecordError> {
    let mut prefix = Cursor {
        bytes,
        at: 0,
        index,
    };
    let length = prefix.varint()?;
    let body_len =
        usize::try_from(length)
            .ok()
            .filter(|&len| len > 0)
            .ok_or(RecordError::InvalidLength {
                index,
                field: "record length",
                value: i64::from(length),
            })?;
    let body_at = prefix.at;
    let end = body_at
        .checked_add(body_len)
        .filter(|&end| end <= bytes.len())
        .ok_or(RecordError::Truncated {
            index,
            field: "record body",
            available: bytes.len(),
        })?;
    let raw = &bytes[..end];
    // Fields are read from the body only, so none can reach the next record.
    let mut body = Cursor {
        bytes: &raw[body_at..],
        at: 0,
        index,
    };
    let attributes = body.byte("attributes")? as i8;
    let timestamp_delta = body.varlong()?;
    let offset_delta_at = body_at + body.at;
    let offset_delta = body.varint()?;
    let key = body.field("key length", true)?;
    let value = body.field("value length", true)?;
    let header_count = body.varint()?;
    // Each header takes at least two bytes: reject absurd counts before looping.
    let remaining = body.bytes.len() - body.at;
    let headers = usize::try_from(header_count)
        .ok()
        .filter(|&count| count <= remaining / 2)
        .ok_or(RecordError::InvalidLength {
            index,
            field: "header count",
            value: i64::from(header_count),
        })?;
    for _ in 0..headers {
        body.field("header key length", false)?;
        body.field("header value length", true)?;
    }
    if body.at != body.bytes.len() {
        return Err(RecordError::TrailingBodyBytes {
            index,
            unread: body.bytes.len() - body.at,
        });
    }
    Ok(RecordView {
        raw,
        offset_delta_at,
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value_is_null: value.is_none(),
    })
}

/// Iterates exactly `count` records of an uncompressed records section and
/// fails if the section holds fewer, or bytes beyond them.
pub struct Records<'a> {
    rest: &'a [u8],
    declared: i32,
    next_index: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    pub fn new(section: &'a [u8], count: i32) -> Self {
        Self {
            rest: section,
            declared: count,
            next_index: 0,
            failed: false,
        }
    }

    fn fail(&mut self, error: RecordError) -> Option<Result<RecordView<'a>, RecordError>> {
        self.failed = true;
        Some(Err(error))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Ok(declared) = usize::try_from(self.declared) else {
            return self.fail(RecordError::CountMismatch {
                declared: self.declared,
                problem: "cannot hold a negative count",
            });
        };
        if self.next_index == declared {
            if self.rest.is_empty() {
                return None;
            }
            return self.fail(RecordError::CountMismatch {
                declared: self.declared,
                problem: "has bytes after the last record",
            });
        }
        if self.rest.is_empty() {
            return self.fail(RecordError::CountMismatch {
                declared: self.declared,
                problem: "ends early",
            });
        }
        match parse_record(self.rest, self.next_index) {
            Ok(record) => {
                self.rest = &self.rest[record.raw.len()..];
                self.next_index += 1;
                Some(Ok(record))
            }
            Err(e) => self.fail(e),
        }
    }
}

/// The records section of a validated batch, decompressed when its codec
/// needs it (borrowed as is otherwise).
pub fn records_section(batch: &[u8]) -> Result<Cow<'_, [u8]>, RecordError> {
    let info = validate(batch)?;
    if info.compression == Compression::None {
        return Ok(Cow::Borrowed(&batch[BATCH_HEADER_BYTES..info.size]));
    }
    let plain = recompress(&batch[..info.size], Compression::None)?;
    Ok(Cow::Owned(plain[BATCH_HEADER_BYTES..].to_vec()))
}

/// The delete horizon of a batch whose attributes carry bit 6.
pub fn delete_horizon_ms(header: &BatchHeader<'_>) -> Option<i64> {
    (header.attributes() & DELETE_HORIZON_BIT != 0).then(|| header.base_timestamp())
}

fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Writes `record` with a new timestamp delta; bytes from the offset delta on
/// are copied untouched.
fn put_rebased(
    out: &mut Vec<u8>,
    record: &RecordView<'_>,
    timestamp_delta: i64,
) -> Result<(), RecordError> {
    let tail = &record.raw[record.offset_delta_at..];
    let mut head = vec![record.attributes as u8];
    put_varlong(&mut head, timestamp_delta);
    let body_len = i32::try_from(head.len() + tail.len()).map_err(|_| RecordError::TooLarge)?;
    put_varint(out, body_len);
    out.extend_from_slice(&head);
    out.extend_from_slice(tail);
    Ok(())
}

fn put_i16(batch: &mut [u8], at: usize, value: i16) {
    batch[at..at + 2].copy_from_slice(&value.to_be_bytes());
}
fn put_i32(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
fn put_i64(batch: &mut [u8], at: usize, value: i64) {
    batch[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

/// Sets the batch length and CRC once everything else is in place.
fn seal(batch: &mut [u8]) -> Result<(), RecordError> {
    let length =
        i32::try_from(batch.len() - LOG_OVERHEAD_BYTES).map_err(|_| RecordError::TooLarge)?;
    put_i32(batch, BATCH_LENGTH_AT, length);
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Rebuilds `original` (a validated batch) with only `retained`, which must be
/// records parsed from it, in order. Base offset, producer id/epoch, base
/// sequence, leader epoch and the original last offset delta are kept (so
/// producer state survives compaction); the count, length, max timestamp and
/// CRC are new and the codec is the original's. Record bytes are copied as
/// they are, unless `delete_horizon_ms` is given: the batch then gets bit 6
/// and the horizon as its base timestamp, and each record's timestamp delta
/// is re-encoded against it (everything after it stays byte for byte).
/// With no record retained the result is Kafka's empty batch: header only,
/// uncompressed, base and max timestamp both the original max timestamp.
pub fn rebuild_batch(
    original: &[u8],
    retained: &[RecordView<'_>],
    delete_horizon_ms: Option<i64>,
) -> Result<Vec<u8>, RecordError> {
    let info = validate(original)?;
    let header = BatchHeader::new(original)?;
    let mut out = original[..BATCH_HEADER_BYTES].to_vec();
    let kept_bits = TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT;
    if retained.is_empty() {
        put_i16(&mut out, ATTRIBUTES_AT, header.attributes() & kept_bits);
        put_i64(&mut out, BASE_TIMESTAMP_AT, header.max_timestamp());
        put_i32(&mut out, RECORDS_COUNT_AT, 0);
        seal(&mut out)?;
        return Ok(out);
    }
    if retained.len() > info.records_count as usize {
        return Err(RecordError::TooManyRetained {
            retained: retained.len(),
            count: info.records_count,
        });
    }
    let base_timestamp = header.base_timestamp();
    let mut max_timestamp = i64::MIN;
    for record in retained {
        max_timestamp = max_timestamp.max(base_timestamp.saturating_add(record.timestamp_delta));
    }
    if info.timestamp_type == TimestampType::LogAppendTime {
        max_timestamp = header.max_timestamp();
    }
    let mut attributes = header.attributes() & !COMPRESSION_MASK;
    match delete_horizon_ms {
        Some(horizon) => {
            attributes |= DELETE_HORIZON_BIT;
            put_i64(&mut out, BASE_TIMESTAMP_AT, horizon);
            for record in retained {
                let absolute = base_timestamp.saturating_add(record.timestamp_delta);
                put_rebased(&mut out, record, absolute.saturating_sub(horizon))?;
            }
        }
        None => {
            for record in retained {
                out.extend_from_slice(record.raw);
            }
        }
    }
    put_i16(&mut out, ATTRIBUTES_AT, attributes);
    put_i64(&mut out, MAX_TIMESTAMP_AT, max_timestamp);
    put_i32(&mut out, RECORDS_COUNT_AT, retained.len() as i32);
    seal(&mut out)?;
    if info.compression == Compression::None {
        return Ok(out);
    }
    Ok(recompress(&out, info.compression)?.to_vec())
}

/// All records of a (decompressed) records section declaring `count` records.
pub fn parse_records(section: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, RecordError> {
    Records::new(section, count).collect()
}

#[cfg(test)]
mod tests {
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
    fn batch_of(
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
            recompress(&out, codec).unwrap().to_vec()
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
            let section = records_section(&batch).unwrap();
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
            let section = records_section(&batch).unwrap();
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
            let section = records_section(&rebuilt).unwrap();
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
        let section = records_section(&batch).unwrap();
        let views = parse_records(&section, 4).unwrap();
        let kept = [views[0], views[1]];
        let rebuilt = rebuild_batch(&batch, &kept, Some(90_000)).unwrap();
        let h = BatchHeader::new(&rebuilt).unwrap();
        assert_eq!(delete_horizon_ms(&h), Some(90_000));
        assert_eq!(h.compression_id(), Compression::Lz4.id());
        assert_eq!(h.max_timestamp(), 1_005);
        let section = records_section(&rebuilt).unwrap();
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
        assert!(parse_records(&records_section(&empty).unwrap(), 0)
            .unwrap()
            .is_empty());
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
            records_section(&batch),
            Err(RecordError::Compression(_))
        ));
    }
}
