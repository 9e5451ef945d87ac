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

/// The decompressed records, byte by byte.
trait Source {
    /// The next byte, `None` at the end of the records.
    fn byte(&mut self) -> Result<Option<u8>, ProduceFault>;
    /// Skips up to `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> Result<u64, ProduceFault>;
    /// Bytes consumed so far.
    fn position(&self) -> u64;
    /// Bytes left, when known without reading (records held in memory).
    fn remaining(&self) -> Option<u64>;
}

struct SliceSource<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, ProduceFault> {
        let byte = self.bytes.get(self.at).copied();
        self.at += usize::from(byte.is_some());
        Ok(byte)
    }
    #[inline]
    fn skip(&mut self, n: u64) -> Result<u64, ProduceFault> {
        let n = n.min((self.bytes.len() - self.at) as u64);
        self.at += n as usize;
        Ok(n)
    }
    fn position(&self) -> u64 {
        self.at as u64
    }
    fn remaining(&self) -> Option<u64> {
        Some((self.bytes.len() - self.at) as u64)
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
}

impl StreamSource<'_, '_> {
    /// Reads the next chunk; false at the end of the stream.
    fn refill(&mut self) -> Result<bool, ProduceFault> {
        self.before_chunk += self.end as u64;
        self.at = 0;
        self.end = self
            .decoder
            .read(&mut self.chunk)
            .map_err(|e| stream_fault(e, self.codec, self.limit))?;
        if let Some((encoder, codec)) = &mut self.encoder {
            feed(encoder, *codec, &self.chunk[..self.end], self.rules)?;
        }
        Ok(self.end > 0)
    }
}

impl Source for StreamSource<'_, '_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, ProduceFault> {
        if self.at == self.end && !self.refill()? {
            return Ok(None);
        }
        let byte = self.chunk[self.at];
        self.at += 1;
        Ok(Some(byte))
    }
    fn skip(&mut self, n: u64) -> Result<u64, ProduceFault> {
        let mut left = n;
        while left > 0 {
            if self.at == self.end && !self.refill()? {
                break;
            }
            let take = left.min((self.end - self.at) as u64);
            self.at += take as usize;
            left -= take;
        }
        Ok(n - left)
    }
    fn position(&self) -> u64 {
        self.before_chunk + self.at as u64
    }
    fn remaining(&self) -> Option<u64> {
        None
    }
}

/// The per-batch state of the walk over its records.
struct Walk<'h> {
    header: &'h BatchHeader<'h>,
    rules: &'h RecordRules,
    log_append_time: bool,
    max_timestamp: i64,
    refused: Vec<RefusedRecord>,
}

/// Where a record's body ends, for reads that must not pass it.
struct Body {
    length: i32,
    start: u64,
    end: u64,
}

impl<'h> Walk<'h> {
    fn new(header: &'h BatchHeader<'h>, rules: &'h RecordRules) -> Self {
        Self {
            header,
            rules,
            log_append_time: header.timestamp_type() == TimestampType::LogAppendTime,
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
        // check_header made the count positive.
        let count = self.header.records_count() as usize;
        for index in 0..count {
            self.record(source, index)?;
        }
        if source.skip(1)? != 0 {
            return Err(invalid(RECORDS_REMAINING));
        }
        Ok(())
    }

    fn record<S: Source>(&mut self, source: &mut S, index: usize) -> Result<(), ProduceFault> {
        let length = match read_varint(source, None) {
            Ok(length) => length,
            Err(Overrun::Eof) => return Err(invalid(PREMATURE_EOF)),
            Err(Overrun::TooLong | Overrun::Body) => return Err(invalid(INVALID_STRUCTURE)),
            Err(Overrun::Fault(fault)) => return Err(fault),
        };
        if length < 0 {
            return Err(invalid(PREMATURE_EOF));
        }
        if let Some(remaining) = source.remaining().filter(|&r| r < length as u64) {
            return Err(invalid(format!(
                "Invalid record size: expected {length} bytes in record payload, but instead the buffer has only {remaining} remaining bytes."
            )));
        }
        let start = source.position();
        let body = Body {
            length,
            start,
            end: start + length as u64,
        };
        let fields = self
            .fields(source, &body)
            .map_err(|e| overrun(e, source, &body))?;
        let read = source.position() - body.start;
        if read != body.length as u64 {
            return Err(invalid(format!(
                "Invalid record size: expected to read {length} bytes in record payload, but instead read {read}"
            )));
        }
        if fields.offset_delta as i64 != index as i64 {
            return Err(invalid(format!(
                "Record {index} of the batch has offset delta {}, but record offsets must run from the batch's base offset without gaps",
                fields.offset_delta
            )));
        }
        self.check(index, &fields);
        Ok(())
    }

    fn fields<S: Source>(&self, source: &mut S, body: &Body) -> Result<Fields, Overrun> {
        let _attributes = read_byte(source, body)?;
        let timestamp_delta = read_varlong(source, body)?;
        let offset_delta = read_varint(source, Some(body))?;
        let key_length = read_varint(source, Some(body))?;
        skip_field(source, body, key_length)?;
        let value_length = read_varint(source, Some(body))?;
        skip_field(source, body, value_length)?;
        let headers = read_varint(source, Some(body))?;
        if headers < 0 {
            return Err(Overrun::Fault(invalid(format!(
                "Found invalid number of record headers {headers}"
            ))));
        }
        if headers as u64 > body.end - source.position() {
            return Err(Overrun::Fault(invalid(format!(
                "Found invalid number of record headers. {headers} is larger than the remaining size of the buffer"
            ))));
        }
        for _ in 0..headers {
            let key_length = read_varint(source, Some(body))?;
            if key_length < 0 {
                return Err(Overrun::Fault(invalid(format!(
                    "Invalid negative header key size {key_length}"
                ))));
            }
            skip_field(source, body, key_length)?;
            let value_length = read_varint(source, Some(body))?;
            skip_field(source, body, value_length)?;
        }
        Ok(Fields {
            timestamp_delta,
            offset_delta,
            key_length,
            value_length,
        })
    }

    /// The per-record checks: a refused record is noted and the walk goes on,
    /// so every refused record is named, as Kafka does.
    fn check(&mut self, index: usize, fields: &Fields) {
        let header = self.header;
        let timestamp = if self.log_append_time {
            header.max_timestamp()
        } else {
            header.base_timestamp().wrapping_add(fields.timestamp_delta)
        };
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let offset = header
            .base_offset()
            .wrapping_add(i64::from(fields.offset_delta));
        let fault = if self.rules.require_key && fields.key_length < 0 {
            Some(RecordFault::MissingKey)
        } else {
            match self.rules.window {
                Some(window) if timestamp != NO_TIMESTAMP => (!window.admits(timestamp))
                    .then_some(RecordFault::TimestampOutOfRange { timestamp, offset }),
                _ if self.log_append_time => Some(RecordFault::LogAppendTimeFromProducer {
                    offset,
                    timestamp,
                    key_bytes: fields.key_length.max(0) as usize,
                    value_bytes: fields.value_length.max(0) as usize,
                }),
                _ => None,
            }
        };
        if let Some(fault) = fault {
            self.refused.push(RefusedRecord { index, fault });
        }
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

/// A read that stopped inside a record.
enum Overrun {
    /// The records ended.
    Eof,
    /// A varint ran past its longest encoding.
    TooLong,
    /// A field reached past the record's declared length.
    Body,
    Fault(ProduceFault),
}

impl From<ProduceFault> for Overrun {
    fn from(fault: ProduceFault) -> Self {
        Overrun::Fault(fault)
    }
}

/// Kafka's message for a read that stopped inside a record's body: the
/// payload ended before its declared length, or a field ran past it.
fn overrun<S: Source>(error: Overrun, source: &mut S, body: &Body) -> ProduceFault {
    match error {
        Overrun::Fault(fault) => fault,
        Overrun::Eof => invalid(format!(
            "Invalid record size: expected {} bytes in record payload, but the record payload reached EOF.",
            body.length
        )),
        Overrun::TooLong | Overrun::Body => {
            // Kafka reads the whole payload first: a short one is reported as such.
            let left = body.end.saturating_sub(source.position());
            match source.skip(left) {
                Ok(skipped) if skipped < left => overrun(Overrun::Eof, source, body),
                Ok(_) => invalid(INVALID_STRUCTURE),
                Err(fault) => fault,
            }
        }
    }
}

#[inline]
fn read_byte<S: Source>(source: &mut S, body: &Body) -> Result<u8, Overrun> {
    if source.position() >= body.end {
        return Err(Overrun::Body);
    }
    source.byte()?.ok_or(Overrun::Eof)
}

/// A zigzag varint of at most 5 bytes, inside `body` when given.
#[inline]
fn read_varint<S: Source>(source: &mut S, body: Option<&Body>) -> Result<i32, Overrun> {
    let mut raw = 0u32;
    for i in 0..5 {
        if body.is_some_and(|b| source.position() >= b.end) {
            return Err(Overrun::Body);
        }
        let byte = source.byte()?.ok_or(Overrun::Eof)?;
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i32 ^ -((raw & 1) as i32));
        }
    }
    Err(Overrun::TooLong)
}

#[inline]
fn read_varlong<S: Source>(source: &mut S, body: &Body) -> Result<i64, Overrun> {
    let mut raw = 0u64;
    for i in 0..10 {
        let byte = read_byte(source, body)?;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(Overrun::TooLong)
}

/// Skips a field of `length` bytes (none for a negative, null, length).
#[inline]
fn skip_field<S: Source>(source: &mut S, body: &Body, length: i32) -> Result<(), Overrun> {
    let Ok(length) = u64::try_from(length) else {
        return Ok(());
    };
    if source.position() + length > body.end {
        return Err(Overrun::Body);
    }
    if source.skip(length)? < length {
        return Err(Overrun::Eof);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
