//! Kafka's validation of a produced batch (UnifiedLog.analyzeAndValidateRecords
//! and LogValidator), in one pass over its records.
//!
//! The header is checked first, in Kafka's order: base offset 0, size against
//! `max.message.bytes`, CRC, offset range against the record count, no control
//! batch, a sequence for a producer id. Then every record is walked once,
//! uncompressed in place or through a streaming decoder: lengths and varints
//! must stay inside the record and the batch, exactly `recordsCount` records
//! must be there and nothing after them, offset deltas must run 0, 1, 2, ...
//! The same walk applies the per-record checks (a key on compacted topics, the
//! CreateTime window, no LogAppendTime from producers), computes the largest
//! timestamp for the header, and feeds the topic's codec when it differs from
//! the batch's, so a batch is decompressed at most once and never whole.
//!
//! Stricter than Kafka in one place: Kafka accepts offset deltas that do not
//! run 0, 1, 2, ... (it rewrites a compressed batch's, and stores an
//! uncompressed batch's as sent); strom stores batches as sent and its cleaner
//! trusts each record's offset, so such a batch is refused (INVALID_RECORD).
//! No Kafka client writes one.
//!
//! Decompression is bounded: the records may inflate to at most
//! [`INFLATION_FACTOR`] times `max.message.bytes`; past that the batch is
//! refused as too large. Keys, values and headers are skipped, never copied,
//! so memory stays at a decoder's buffers whatever the records claim.

use thiserror::Error;

use crate::batch::{
    check_crc, validate_frame, BatchError, BatchHeader, Compression, TimestampType,
    BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES,
};
use crate::codec::{BoundedDecoder, CappedVec, Encoder, StreamError};
use crate::record_check::{RecordFault, RecordRules, RefusedRecord, NO_TIMESTAMP};

/// The records of a compressed batch may inflate to this many times the
/// topic's `max.message.bytes` (64 MiB at the default). Kafka sets no bound;
/// producers' batches compress 2-20x in practice, and librdkafka already
/// refuses to inflate a zstd batch past `receive.message.max.bytes` (100 MB).
pub const INFLATION_FACTOR: u64 = 64;

/// The fewest bytes a v2 record takes: length, attributes, timestamp delta,
/// offset delta, key length, value length and header count, one byte each.
const MIN_RECORD_BYTES: u64 = 7;

/// Bytes of decompressed records read from a decoder at a time.
const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// How many bytes the records of a batch may inflate to.
pub fn inflation_limit(max_message_bytes: usize) -> u64 {
    (max_message_bytes as u64).saturating_mul(INFLATION_FACTOR)
}

/// Kafka's default `max.message.bytes`.
const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1_048_588;

/// The bound for a batch already in the log (the cleaner), which does not
/// know the topic's `max.message.bytes` when it was produced: the factor
/// times the batch's size or Kafka's default, whichever is larger.
pub fn stored_batch_inflation_limit(batch_size: usize) -> u64 {
    (batch_size as u64)
        .max(DEFAULT_MAX_MESSAGE_BYTES)
        .saturating_mul(INFLATION_FACTOR)
}

/// What the topic asks of a produced batch.
#[derive(Debug, Clone, Copy)]
pub struct ProduceRules<'a> {
    /// `topic-partition`, as Kafka names it in its messages.
    pub topic_partition: &'a str,
    pub max_message_bytes: usize,
    pub records: RecordRules,
    /// The topic's codec, when it stores one other than the producer's.
    pub target: Option<Compression>,
}

/// A batch that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The largest record timestamp, [`NO_TIMESTAMP`] if none is larger
    /// (Kafka writes it into the header of a CreateTime batch).
    pub max_timestamp: i64,
    /// The whole batch in the topic's codec, when that had to change.
    pub recompressed: Option<Vec<u8>>,
    /// Bytes of the records once decompressed.
    pub inflated_bytes: u64,
}

/// Why a produced batch was refused; each variant has one Kafka error code.
#[derive(Debug, Error)]
pub enum ProduceFault {
    /// Framing or CRC (CORRUPT_MESSAGE, or INVALID_RECORD for an old magic).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Kafka's InvalidRecordException: the message is Kafka's.
    #[error("{0}")]
    InvalidRecord(String),
    /// Kafka's RecordTooLargeException (MESSAGE_TOO_LARGE).
    #[error("{0}")]
    TooLarge(String),
    /// Records refused by the per-record checks (KIP-467 record errors).
    #[error("{} records refused", .0.len())]
    RecordsRefused(Vec<RefusedRecord>),
    #[error("{codec} records cannot be decompressed: {why}")]
    Decompress { codec: &'static str, why: String },
    #[error("records cannot be compressed with {codec}: {why}")]
    Compress { codec: &'static str, why: String },
}

fn invalid(message: impl Into<String>) -> ProduceFault {
    ProduceFault::InvalidRecord(message.into())
}

const PREMATURE_EOF: &str = "Incorrect declared batch size, premature EOF reached";
const RECORDS_REMAINING: &str = "Incorrect declared batch size, records still remaining in file";
const INVALID_STRUCTURE: &str = "Found invalid record structure";

/// Validates the one batch that is `batch` (as framed by the produce request)
/// against `rules`, as Kafka's leader does before appending.
pub fn validate_produce(batch: &[u8], rules: &ProduceRules<'_>) -> Result<Validated, ProduceFault> {
    let info = validate_frame(batch)?;
    let batch = &batch[..info.size];
    let header = BatchHeader::new(batch)?;
    let tp = rules.topic_partition;
    if header.base_offset() != 0 {
        return Err(invalid(format!(
            "The baseOffset of the record batch in the append to {tp} should be 0, but it is {}",
            header.base_offset()
        )));
    }
    if info.size > rules.max_message_bytes {
        return Err(ProduceFault::TooLarge(format!(
            "The record batch size in the append to {tp} is {} bytes which exceeds the maximum configured value of {}.",
            info.size, rules.max_message_bytes
        )));
    }
    check_crc(batch)?;
    check_header(&header, tp)?;
    let section = &batch[BATCH_HEADER_BYTES..];
    let target = rules.target.filter(|&codec| codec != info.compression);
    let mut walk = Walk::new(&header, &rules.records);
    if info.compression == Compression::None {
        let count = u64::try_from(header.records_count()).unwrap_or(0);
        if count.saturating_mul(MIN_RECORD_BYTES) > section.len() as u64 {
            return Err(invalid(PREMATURE_EOF));
        }
        walk.run(&mut SliceSource {
            bytes: section,
            at: 0,
        })?;
        let recompressed = match target {
            None => None,
            Some(codec) => {
                let mut encoder = new_encoder(codec, batch, rules.max_message_bytes)?;
                for chunk in section.chunks(STREAM_CHUNK_BYTES) {
                    feed(&mut encoder, codec, chunk, rules)?;
                }
                Some(seal(encoder, codec, rules)?)
            }
        };
        return walk.finish(recompressed, section.len() as u64);
    }
    let limit = inflation_limit(rules.max_message_bytes);
    let decoder = BoundedDecoder::new(info.compression, section, limit)
        .map_err(|e| stream_fault(e, info.compression, limit))?;
    let encoder = match target {
        Some(codec) => Some((new_encoder(codec, batch, rules.max_message_bytes)?, codec)),
        None => None,
    };
    let mut source = StreamSource {
        decoder,
        codec: info.compression,
        limit,
        chunk: vec![0; STREAM_CHUNK_BYTES],
        at: 0,
        end: 0,
        before_chunk: 0,
        encoder,
        rules,
        fault: None,
    };
    walk.run(&mut source)?;
    let inflated = source.decoder.produced();
    let recompressed = match source.encoder.take() {
        None => None,
        Some((encoder, codec)) => Some(seal(encoder, codec, rules)?),
    };
    walk.finish(recompressed, inflated)
}

/// LogValidator.validateBatch for a client's v2 batch.
fn check_header(header: &BatchHeader<'_>, tp: &str) -> Result<(), ProduceFault> {
    let base = header.base_offset();
    let last = header.last_offset();
    let count_from_offsets = i64::from(header.last_offset_delta()) + 1;
    if count_from_offsets <= 0 {
        return Err(invalid(format!(
            "Batch has an invalid offset range: [{base}, {last}] in topic partition {tp}"
        )));
    }
    let count = header.records_count();
    if count <= 0 {
        return Err(invalid(format!(
            "Invalid reported count for record batch: {count} in topic partition {tp}"
        )));
    }
    if count_from_offsets != i64::from(count) {
        return Err(invalid(format!(
            "Inconsistent batch offset range [{base}, {last}] and count of records {count} in topic partition {tp}"
        )));
    }
    if header.is_control() {
        return Err(invalid(format!(
            "Clients are not allowed to write control records in topic partition {tp}"
        )));
    }
    if header.producer_id() >= 0 && header.base_sequence() < 0 {
        return Err(invalid(format!(
            "Invalid sequence number {} in record batch with producerId {} in topic partition {tp}",
            header.base_sequence(),
            header.producer_id()
        )));
    }
    Ok(())
}

fn new_encoder(
    codec: Compression,
    batch: &[u8],
    max_message_bytes: usize,
) -> Result<Encoder, ProduceFault> {
    let mut head = Vec::with_capacity(BATCH_HEADER_BYTES + 4096);
    head.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    Encoder::new(codec, CappedVec::new(head, max_message_bytes)).map_err(|e| {
        ProduceFault::Compress {
            codec: codec.name(),
            why: e.to_string(),
        }
    })
}

fn too_large_after_recompression(codec: Compression, rules: &ProduceRules<'_>) -> ProduceFault {
    ProduceFault::TooLarge(format!(
        "The record batch compressed with {} in append to partition {} exceeds the maximum configured size of {}.",
        codec.name(),
        rules.topic_partition,
        rules.max_message_bytes
    ))
}

fn feed(
    encoder: &mut Encoder,
    codec: Compression,
    bytes: &[u8],
    rules: &ProduceRules<'_>,
) -> Result<(), ProduceFault> {
    encoder
        .write_all(bytes)
        .map_err(|e| ProduceFault::Compress {
            codec: codec.name(),
            why: e.to_string(),
        })?;
    if encoder.overflowed() {
        return Err(too_large_after_recompression(codec, rules));
    }
    Ok(())
}

/// Finishes the new codec's stream and fixes the header: length, codec, CRC.
fn seal(
    encoder: Encoder,
    codec: Compression,
    rules: &ProduceRules<'_>,
) -> Result<Vec<u8>, ProduceFault> {
    let out = encoder.finish().map_err(|e| ProduceFault::Compress {
        codec: codec.name(),
        why: e.to_string(),
    })?;
    if out.overflowed {
        return Err(too_large_after_recompression(codec, rules));
    }
    let mut batch = out.bytes;
    // Capped at max.message.bytes, which is an i32 config.
    let length = i32::try_from(batch.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| too_large_after_recompression(codec, rules))?;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    crate::batch::set_compression(&mut batch, codec);
    Ok(batch)
}

fn stream_fault(error: StreamError, codec: Compression, limit: u64) -> ProduceFault {
    match error {
        StreamError::InflationLimit => ProduceFault::TooLarge(format!(
            "The {} records of the batch inflate past {limit} bytes ({INFLATION_FACTOR} times max.message.bytes)",
            codec.name()
        )),
        StreamError::Corrupt(e) => ProduceFault::Decompress {
            codec: codec.name(),
            why: e.to_string(),
        },
    }
}

/// The decompressed records, byte by byte. A source that fails (a corrupt
/// stream, the inflation bound, the topic's encoder) ends as if the records
/// ended and keeps the fault for [`Source::take_fault`]: the walk's per-byte
/// reads then carry only small, copyable results.
trait Source {
    /// The next byte, `None` at the end of the records (or after a failure).
    fn byte(&mut self) -> Option<u8>;
    /// Skips up to `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> u64;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
    /// Bytes left, when known without reading (records held in memory).
    fn remaining(&self) -> Option<u64>;
    /// Why the source ended early, if it did.
    fn take_fault(&mut self) -> Option<ProduceFault>;
    /// The next `n` bytes when they are already in memory in one piece
    /// (consumed with [`Source::skip`]).
    fn contiguous(&self, n: u64) -> Option<&[u8]>;
}

struct SliceSource<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Source for SliceSource<'_> {
    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        let byte = self.bytes.get(self.at).copied();
        self.at += usize::from(byte.is_some());
        byte
    }
    #[inline(always)]
    fn skip(&mut self, n: u64) -> u64 {
        let n = n.min((self.bytes.len() - self.at) as u64);
        self.at += n as usize;
        n
    }
    #[inline(always)]
    fn position(&self) -> u64 {
        self.at as u64
    }
    #[inline(always)]
    fn remaining(&self) -> Option<u64> {
        Some((self.bytes.len() - self.at) as u64)
    }
    fn take_fault(&mut self) -> Option<ProduceFault> {
        None
    }
    #[inline(always)]
    fn contiguous(&self, n: u64) -> Option<&[u8]> {
        self.bytes[self.at..].get(..usize::try_from(n).ok()?)
    }
}

/// Records read through a bounded decoder a chunk at a time; each chunk also
/// goes to the topic's encoder when the codec changes.
struct StreamSource<'a, 'r> {
    decoder: BoundedDecoder<'a>,
    codec: Compression,
    limit: u64,
    chunk: Vec<u8>,
    at: usize,
    end: usize,
    /// Bytes consumed before the current chunk.
    before_chunk: u64,
    encoder: Option<(Encoder, Compression)>,
    rules: &'r ProduceRules<'r>,
    /// What stopped the stream early; no more is read once set.
    fault: Option<ProduceFault>,
}

impl StreamSource<'_, '_> {
    /// Reads the next chunk; false at the end of the stream or on a failure.
    #[cold]
    fn refill(&mut self) -> bool {
        self.before_chunk += self.end as u64;
        self.at = 0;
        self.end = 0;
        if self.fault.is_some() {
            return false;
        }
        match self.next_chunk() {
            Ok(end) => self.end = end,
            Err(fault) => self.fault = Some(fault),
        }
        self.end > 0
    }

    fn next_chunk(&mut self) -> Result<usize, ProduceFault> {
        let end = self
            .decoder
            .read(&mut self.chunk)
            .map_err(|e| stream_fault(e, self.codec, self.limit))?;
        if let Some((encoder, codec)) = &mut self.encoder {
            feed(encoder, *codec, &self.chunk[..end], self.rules)?;
        }
        Ok(end)
    }
}

impl Source for StreamSource<'_, '_> {
    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        if self.at == self.end && !self.refill() {
            return None;
        }
        let byte = self.chunk[self.at];
        self.at += 1;
        Some(byte)
    }
    fn skip(&mut self, n: u64) -> u64 {
        let mut left = n;
        while left > 0 {
            if self.at == self.end && !self.refill() {
                break;
            }
            let take = left.min((self.end - self.at) as u64);
            self.at += take as usize;
            left -= take;
        }
        n - left
    }
    #[inline(always)]
    fn position(&self) -> u64 {
        self.before_chunk + self.at as u64
    }
    #[inline(always)]
    fn remaining(&self) -> Option<u64> {
        None
    }
    fn take_fault(&mut self) -> Option<ProduceFault> {
        self.fault.take()
    }
    #[inline(always)]
    fn contiguous(&self, n: u64) -> Option<&[u8]> {
        self.chunk[self.at..self.end].get(..usize::try_from(n).ok()?)
    }
}

/// The per-batch state of the walk over its records.
struct Walk<'h> {
    header: &'h BatchHeader<'h>,
    rules: &'h RecordRules,
    log_append_time: bool,
    base_timestamp: i64,
    max_timestamp: i64,
    refused: Vec<RefusedRecord>,
}

/// Why the walk stopped: small and copyable so the per-record path returns it
/// in registers; [`Stop::into_fault`] writes Kafka's message once, outside it.
#[derive(Debug, Clone, Copy)]
enum Stop {
    PrematureEof,
    InvalidStructure,
    RecordsRemaining,
    /// The records in memory end before the record's declared length.
    PayloadShort {
        length: i32,
        remaining: u64,
    },
    /// The stream ended inside the record's declared length.
    PayloadEof {
        length: i32,
    },
    ReadMismatch {
        length: i32,
        read: u64,
    },
    OffsetDelta {
        index: usize,
        delta: i32,
    },
    NegativeHeaderCount(i32),
    HeaderCountPastBody(i32),
    NegativeHeaderKey(i32),
}

impl Stop {
    #[cold]
    fn into_fault(self) -> ProduceFault {
        match self {
            Stop::PrematureEof => invalid(PREMATURE_EOF),
            Stop::InvalidStructure => invalid(INVALID_STRUCTURE),
            Stop::RecordsRemaining => invalid(RECORDS_REMAINING),
            Stop::PayloadShort { length, remaining } => invalid(format!(
                "Invalid record size: expected {length} bytes in record payload, but instead the buffer has only {remaining} remaining bytes."
            )),
            Stop::PayloadEof { length } => invalid(format!(
                "Invalid record size: expected {length} bytes in record payload, but the record payload reached EOF."
            )),
            Stop::ReadMismatch { length, read } => invalid(format!(
                "Invalid record size: expected to read {length} bytes in record payload, but instead read {read}"
            )),
            Stop::OffsetDelta { index, delta } => invalid(format!(
                "Record {index} of the batch has offset delta {delta}, but record offsets must run from the batch's base offset without gaps"
            )),
            Stop::NegativeHeaderCount(headers) => {
                invalid(format!("Found invalid number of record headers {headers}"))
            }
            Stop::HeaderCountPastBody(headers) => invalid(format!(
                "Found invalid number of record headers. {headers} is larger than the remaining size of the buffer"
            )),
            Stop::NegativeHeaderKey(length) => {
                invalid(format!("Invalid negative header key size {length}"))
            }
        }
    }
}

impl<'h> Walk<'h> {
    fn new(header: &'h BatchHeader<'h>, rules: &'h RecordRules) -> Self {
        Self {
            header,
            rules,
            log_append_time: header.timestamp_type() == TimestampType::LogAppendTime,
            base_timestamp: header.base_timestamp(),
            max_timestamp: NO_TIMESTAMP,
            refused: Vec::new(),
        }
    }

    fn finish(
        self,
        recompressed: Option<Vec<u8>>,
        inflated_bytes: u64,
    ) -> Result<Validated, ProduceFault> {
        if !self.refused.is_empty() {
            return Err(ProduceFault::RecordsRefused(self.refused));
        }
        Ok(Validated {
            max_timestamp: self.max_timestamp,
            recompressed,
            inflated_bytes,
        })
    }

    fn run<S: Source>(&mut self, source: &mut S) -> Result<(), ProduceFault> {
        let walked = self.records(source);
        // A source that failed ended the records early: its fault is the cause.
        if let Some(fault) = source.take_fault() {
            return Err(fault);
        }
        walked.map_err(Stop::into_fault)
    }

    fn records<S: Source>(&mut self, source: &mut S) -> Result<(), Stop> {
        // check_header made the count positive.
        let count = self.header.records_count() as usize;
        for index in 0..count {
            self.record(source, index)?;
        }
        if source.skip(1) != 0 {
            return Err(Stop::RecordsRemaining);
        }
        Ok(())
    }

    #[inline(always)]
    fn record<S: Source>(&mut self, source: &mut S, index: usize) -> Result<(), Stop> {
        let length = match read_varint(source, u64::MAX) {
            Ok(length) => length,
            Err(Overrun::Eof) => return Err(Stop::PrematureEof),
            Err(_) => return Err(Stop::InvalidStructure),
        };
        if length < 0 {
            return Err(Stop::PrematureEof);
        }
        if let Some(remaining) = source.remaining().filter(|&r| r < length as u64) {
            return Err(Stop::PayloadShort { length, remaining });
        }
        let fields = match source.contiguous(length as u64) {
            // The usual case: the whole record is in memory, and reads are checked
            // against its end only.
            Some(bytes) => {
                let mut record = SliceSource { bytes, at: 0 };
                let fields = fields(&mut record, bytes.len() as u64).map_err(|e| match e {
                    // The record is all there: a read past it is a field past its end.
                    Overrun::Eof | Overrun::TooLong | Overrun::Body => Stop::InvalidStructure,
                    other => overrun(other, &mut record, 0, length),
                })?;
                let read = record.position();
                source.skip(length as u64);
                (read, fields)
            }
            // A record across two decompressed chunks.
            None => {
                let start = source.position();
                let end = start + length as u64;
                let fields = match fields(source, end) {
                    Ok(fields) => fields,
                    Err(e) => return Err(overrun(e, source, end, length)),
                };
                (source.position() - start, fields)
            }
        };
        let (read, fields) = fields;
        if read != length as u64 {
            return Err(Stop::ReadMismatch { length, read });
        }
        if fields.offset_delta as i64 != index as i64 {
            return Err(Stop::OffsetDelta {
                index,
                delta: fields.offset_delta,
            });
        }
        self.check(index, &fields);
        Ok(())
    }

    /// The per-record checks: a refused record is noted and the walk goes on,
    /// so every refused record is named, as Kafka does.
    #[inline(always)]
    fn check(&mut self, index: usize, fields: &Fields) {
        let timestamp = if self.log_append_time {
            self.header.max_timestamp()
        } else {
            self.base_timestamp.wrapping_add(fields.timestamp_delta)
        };
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let missing_key = self.rules.require_key && fields.key_length < 0;
        let admitted = match self.rules.window {
            Some(window) if timestamp != NO_TIMESTAMP => window.admits(timestamp),
            _ => !self.log_append_time,
        };
        if missing_key || !admitted {
            self.refuse(index, fields, timestamp);
        }
    }

    #[cold]
    fn refuse(&mut self, index: usize, fields: &Fields, timestamp: i64) {
        let offset = self
            .header
            .base_offset()
            .wrapping_add(i64::from(fields.offset_delta));
        let fault = if self.rules.require_key && fields.key_length < 0 {
            RecordFault::MissingKey
        } else if self.rules.window.is_some() && timestamp != NO_TIMESTAMP {
            RecordFault::TimestampOutOfRange { timestamp, offset }
        } else {
            RecordFault::LogAppendTimeFromProducer {
                offset,
                timestamp,
                key_bytes: fields.key_length.max(0) as usize,
                value_bytes: fields.value_length.max(0) as usize,
            }
        };
        self.refused.push(RefusedRecord { index, fault });
    }
}

/// What the walk needs of one record.
struct Fields {
    timestamp_delta: i64,
    offset_delta: i32,
    /// Negative for a null key (Kafka reads any negative length as null).
    key_length: i32,
    value_length: i32,
}

/// Reads one record's fields, none at or past `end`.
#[inline(always)]
fn fields<S: Source>(source: &mut S, end: u64) -> Result<Fields, Overrun> {
    let _attributes = read_byte(source, end)?;
    let timestamp_delta = read_varlong(source, end)?;
    let offset_delta = read_varint(source, end)?;
    let key_length = read_varint(source, end)?;
    skip_field(source, end, key_length)?;
    let value_length = read_varint(source, end)?;
    skip_field(source, end, value_length)?;
    let headers = read_varint(source, end)?;
    if headers < 0 {
        return Err(Overrun::NegativeHeaderCount(headers));
    }
    if headers as u64 > end - source.position() {
        return Err(Overrun::HeaderCountPastBody(headers));
    }
    for _ in 0..headers {
        let key_length = read_varint(source, end)?;
        if key_length < 0 {
            return Err(Overrun::NegativeHeaderKey(key_length));
        }
        skip_field(source, end, key_length)?;
        let value_length = read_varint(source, end)?;
        skip_field(source, end, value_length)?;
    }
    Ok(Fields {
        timestamp_delta,
        offset_delta,
        key_length,
        value_length,
    })
}

/// A read that stopped inside a record.
#[derive(Debug, Clone, Copy)]
enum Overrun {
    /// The records ended.
    Eof,
    /// A varint ran past its longest encoding.
    TooLong,
    /// A field reached past the record's declared length.
    Body,
    NegativeHeaderCount(i32),
    HeaderCountPastBody(i32),
    NegativeHeaderKey(i32),
}

/// Kafka's message for a read that stopped inside a record's body: the
/// payload ended before its declared length, or a field ran past it.
#[cold]
fn overrun<S: Source>(error: Overrun, source: &mut S, end: u64, length: i32) -> Stop {
    match error {
        Overrun::NegativeHeaderCount(n) => Stop::NegativeHeaderCount(n),
        Overrun::HeaderCountPastBody(n) => Stop::HeaderCountPastBody(n),
        Overrun::NegativeHeaderKey(n) => Stop::NegativeHeaderKey(n),
        Overrun::Eof => Stop::PayloadEof { length },
        Overrun::TooLong | Overrun::Body => {
            // Kafka reads the whole payload first: a short one is reported as such.
            let left = end.saturating_sub(source.position());
            if source.skip(left) < left {
                Stop::PayloadEof { length }
            } else {
                Stop::InvalidStructure
            }
        }
    }
}

#[inline(always)]
fn read_byte<S: Source>(source: &mut S, end: u64) -> Result<u8, Overrun> {
    if source.position() >= end {
        return Err(Overrun::Body);
    }
    source.byte().ok_or(Overrun::Eof)
}

/// A zigzag varint of at most 5 bytes, none at or past `end`.
#[inline(always)]
fn read_varint<S: Source>(source: &mut S, end: u64) -> Result<i32, Overrun> {
    let mut raw = 0u32;
    for i in 0..5 {
        let byte = read_byte(source, end)?;
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i32 ^ -((raw & 1) as i32));
        }
    }
    Err(Overrun::TooLong)
}

#[inline(always)]
fn read_varlong<S: Source>(source: &mut S, end: u64) -> Result<i64, Overrun> {
    let mut raw = 0u64;
    for i in 0..10 {
        let byte = read_byte(source, end)?;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(Overrun::TooLong)
}

/// Skips a field of `length` bytes (none for a negative, null, length).
#[inline(always)]
fn skip_field<S: Source>(source: &mut S, end: u64, length: i32) -> Result<(), Overrun> {
    let Ok(length) = u64::try_from(length) else {
        return Ok(());
    };
    if source.position() + length > end {
        return Err(Overrun::Body);
    }
    if source.skip(length) < length {
        return Err(Overrun::Eof);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
