//! Records inside a v2 batch, seen as raw byte slices, for the log cleaner
//! and the produce path's per-record checks (`record_check`).
//!
//! Only what those need is decoded from each record: its offset and
//! timestamp deltas, its key and its value (null for a tombstone).
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
use crate::compression::{inflate_records, recompress, CompressionError};

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
    value: Option<&'a [u8]>,
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
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }
    /// A null value: a delete marker for its key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
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
        value,
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
/// needs it (borrowed as is otherwise), to at most `limit` bytes.
pub fn records_section(batch: &[u8], limit: u64) -> Result<Cow<'_, [u8]>, RecordError> {
    let info = validate(batch)?;
    if info.compression == Compression::None {
        return Ok(Cow::Borrowed(&batch[BATCH_HEADER_BYTES..info.size]));
    }
    Ok(Cow::Owned(inflate_records(&batch[..info.size], limit)?))
}

impl RecordError {
    /// The records would inflate past the bound they were read with.
    pub fn is_inflation_limit(&self) -> bool {
        matches!(
            self,
            RecordError::Compression(CompressionError::InflationLimit { .. })
        )
    }
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
    // The records are `out`'s own, uncompressed: nothing to bound.
    Ok(recompress(&out, info.compression, u64::MAX)?)
}

/// All records of a (decompressed) records section declaring `count` records.
pub fn parse_records(section: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, RecordError> {
    Records::new(section, count).collect()
}

#[cfg(test)]
pub(crate) mod tests;
