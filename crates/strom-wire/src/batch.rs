//! A zero-copy view of Kafka record batches (magic v2).
//!
//! The produce path validates and rewrites batch headers in place; it never
//! decodes individual records. Layout (big-endian):
//!
//! | offset | field                  | size |
//! |--------|------------------------|------|
//! | 0      | baseOffset             | 8    |
//! | 8      | batchLength            | 4    |
//! | 12     | partitionLeaderEpoch   | 4    |
//! | 16     | magic                  | 1    |
//! | 17     | crc (crc32c of 21..)   | 4    |
//! | 21     | attributes             | 2    |
//! | 23     | lastOffsetDelta        | 4    |
//! | 27     | baseTimestamp          | 8    |
//! | 35     | maxTimestamp           | 8    |
//! | 43     | producerId             | 8    |
//! | 51     | producerEpoch          | 2    |
//! | 53     | baseSequence           | 4    |
//! | 57     | recordsCount           | 4    |
//! | 61     | records...             |      |

use thiserror::Error;

pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s coverage starts (baseOffset + batchLength).
pub const LOG_OVERHEAD_BYTES: usize = 12;
pub const MAGIC_V2: i8 = 2;

const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_id(id: i16) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }

    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The name used by the `compression.type` config.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch is truncated: {available} bytes available, {needed} needed")]
    Truncated { available: usize, needed: usize },
    #[error("record batch length {length} is invalid")]
    InvalidLength { length: i32 },
    #[error("unsupported record batch magic {magic}")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown compression codec {id}")]
    UnknownCompression { id: i16 },
    #[error("record batch has {count} records but last offset delta {last_offset_delta}")]
    InconsistentCount { count: i32, last_offset_delta: i32 },
}

/// Read-only accessors over a batch's header. The slice must hold at least
/// the header; [`validate`] checks everything else.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a>(&'a [u8]);

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchHeader<'a> {
    /// Views the header at the front of `bytes`, if the whole header is there.
    pub fn new(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated {
                available: bytes.len(),
                needed: BATCH_HEADER_BYTES,
            });
        }
        Ok(Self(bytes))
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.0, 0)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.0, BATCH_LENGTH_AT)
    }
    /// Total bytes of the batch including the 12-byte log overhead.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length().max(0) as usize
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.0, LEADER_EPOCH_AT)
    }
    pub fn magic(&self) -> i8 {
        self.0[MAGIC_AT] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.0, CRC_AT) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.0, ATTRIBUTES_AT)
    }
    pub fn compression_id(&self) -> i16 {
        self.attributes() & COMPRESSION_MASK
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.0, LAST_OFFSET_DELTA_AT)
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.0, BASE_TIMESTAMP_AT)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.0, MAX_TIMESTAMP_AT)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.0, PRODUCER_ID_AT)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.0, PRODUCER_EPOCH_AT)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.0, BASE_SEQUENCE_AT)
    }
    pub fn records_count(&self) -> i32 {
        be_i32(self.0, RECORDS_COUNT_AT)
    }
}

/// What validation learned about a batch, without decoding its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    pub size: usize,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub max_timestamp: i64,
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    pub is_control: bool,
    pub is_transactional: bool,
}

/// Validates the complete batch at the front of `bytes`: length, magic,
/// compression codec, record count against the offset delta, and the CRC.
/// Trailing bytes after the batch are ignored (the caller iterates).
pub fn validate(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    let info = validate_frame(bytes)?;
    let (count, last_offset_delta) = (info.records_count, info.last_offset_delta);
    // Compaction may leave a batch with fewer records than its delta span,
    // but never more, and never a negative span.
    if count < 0 || last_offset_delta < 0 || (count as i64) > last_offset_delta as i64 + 1 {
        return Err(BatchError::InconsistentCount {
            count,
            last_offset_delta,
        });
    }
    check_crc(&bytes[..info.size])?;
    Ok(info)
}

/// The frame checks of [`validate`] alone: length, magic and codec, without
/// the CRC or the count. The produce path checks those itself, in Kafka's order.
pub fn validate_frame(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    // The magic byte sits at the same place in every message format, so an
    // older format is named as such even when it is shorter than a v2 header.
    if let Some(&magic) = bytes.get(MAGIC_AT) {
        if magic as i8 != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic: magic as i8 });
        }
    }
    let header = BatchHeader::new(bytes)?;
    let length = header.batch_length();
    if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchError::InvalidLength { length });
    }
    let size = header.total_size();
    if bytes.len() < size {
        return Err(BatchError::Truncated {
            available: bytes.len(),
            needed: size,
        });
    }
    let compression =
        Compression::from_id(header.compression_id()).ok_or(BatchError::UnknownCompression {
            id: header.compression_id(),
        })?;
    Ok(BatchInfo {
        size,
        base_offset: header.base_offset(),
        last_offset_delta: header.last_offset_delta(),
        records_count: header.records_count(),
        max_timestamp: header.max_timestamp(),
        compression,
        timestamp_type: header.timestamp_type(),
        is_control: header.is_control(),
        is_transactional: header.is_transactional(),
    })
}

/// Checks the CRC32C of exactly one batch (`batch` must hold the header).
pub fn check_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::new(batch)?;
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if computed != header.crc() {
        return Err(BatchError::CrcMismatch {
            stored: header.crc(),
            computed,
        });
    }
    Ok(())
}

/// Iterates over the complete batches in a buffer of concatenated batches,
/// validating each. Stops with an error at the first invalid one.
pub struct Batches<'a> {
    rest: &'a [u8],
}

impl<'a> Batches<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<(&'a [u8], BatchInfo), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match validate(self.rest) {
            Ok(info) => {
                let (batch, rest) = self.rest.split_at(info.size);
                self.rest = rest;
                Some(Ok((batch, info)))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Header rewrites done by the leader when it appends. The base offset and
/// leader epoch sit outside the CRC; the attributes and max timestamp do not.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets the timestamp-type bit and maxTimestamp, then
/// recomputes the CRC. The batch must already have passed [`validate`].
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    stamp_log_append_time(batch, now_ms);
    rewrite_crc(batch);
}

/// Kafka's `setMaxTimestamp(CreateTime, max)`: the header says CreateTime and
/// `max_timestamp`; the CRC is recomputed only if that changed anything.
pub fn set_create_time_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    if stamp_create_time(batch, max_timestamp) {
        rewrite_crc(batch);
    }
}

/// Writes the LogAppendTime fields into `header`; the caller fixes the CRC.
fn stamp_log_append_time(header: &mut [u8], now_ms: i64) {
    let attributes = be_i16(header, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
}

/// Writes the CreateTime fields into `header`; true when that changed it (the
/// caller then fixes the CRC).
fn stamp_create_time(header: &mut [u8], max_timestamp: i64) -> bool {
    let attributes = be_i16(header, ATTRIBUTES_AT);
    if attributes & TIMESTAMP_TYPE_BIT == 0 && be_i64(header, MAX_TIMESTAMP_AT) == max_timestamp {
        return false;
    }
    let attributes = attributes & !TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    true
}

/// One batch as a copy of its header, which the leader rewrites, and its
/// records, borrowed where they are (the request buffer): appending it writes
/// both parts without copying the records.
#[derive(Debug, Clone)]
pub struct SplitBatch<'a> {
    pub header: [u8; BATCH_HEADER_BYTES],
    pub records: &'a [u8],
}

impl<'a> SplitBatch<'a> {
    /// Splits exactly one framed batch (as [`validate_frame`] found it).
    pub fn new(batch: &'a [u8]) -> Result<Self, BatchError> {
        BatchHeader::new(batch)?;
        let (header, records) = batch.split_at(BATCH_HEADER_BYTES);
        Ok(Self {
            header: header.try_into().expect("a whole header"),
            records,
        })
    }

    pub fn header(&self) -> BatchHeader<'_> {
        BatchHeader(&self.header)
    }

    /// Bytes of the whole batch.
    pub fn len(&self) -> usize {
        BATCH_HEADER_BYTES + self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// [`set_log_append_time`] on the split batch.
    pub fn set_log_append_time(&mut self, now_ms: i64) {
        stamp_log_append_time(&mut self.header, now_ms);
        self.rewrite_crc();
    }

    /// [`set_create_time_max_timestamp`] on the split batch.
    pub fn set_create_time_max_timestamp(&mut self, max_timestamp: i64) {
        if stamp_create_time(&mut self.header, max_timestamp) {
            self.rewrite_crc();
        }
    }

    /// The CRC covers the header from the attributes on, then the records:
    /// computed across both parts, without joining them.
    fn rewrite_crc(&mut self) {
        let crc =
            crc32c::crc32c_append(crc32c::crc32c(&self.header[ATTRIBUTES_AT..]), self.records);
        self.header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Sets the codec bits of the attributes and recomputes the CRC.
pub fn set_compression(batch: &mut [u8], compression: Compression) {
    let attributes = (be_i16(batch, ATTRIBUTES_AT) & !COMPRESSION_MASK) | compression.id();
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    rewrite_crc(batch);
}

fn rewrite_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression as KpCompression, Record, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KpTimestampType,
    };

    pub fn encode_batch(values: &[&str], compression: KpCompression) -> BytesMut {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: KpTimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: 1_000 + i as i64,
                key: Some(bytes::Bytes::from(format!("k{i}"))),
                value: Some(bytes::Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    #[test]
    fn valid_batch_is_described_without_decoding_records() {
        let buf = encode_batch(&["a", "b", "c"], KpCompression::None);
        let info = validate(&buf).unwrap();
        assert_eq!(info.size, buf.len());
        assert_eq!(info.records_count, 3);
        assert_eq!(info.last_offset_delta, 2);
        assert_eq!(info.max_timestamp, 1_002);
        assert_eq!(info.compression, Compression::None);
        assert_eq!(info.timestamp_type, TimestampType::CreateTime);
    }

    #[test]
    fn compressed_batch_reports_codec() {
        for (kp, ours) in [
            (KpCompression::Gzip, Compression::Gzip),
            (KpCompression::Snappy, Compression::Snappy),
            (KpCompression::Lz4, Compression::Lz4),
            (KpCompression::Zstd, Compression::Zstd),
        ] {
            let buf = encode_batch(&["x"; 10], kp);
            assert_eq!(validate(&buf).unwrap().compression, ours);
        }
    }

    #[test]
    fn corrupted_byte_fails_crc() {
        let mut buf = encode_batch(&["a", "b"], KpCompression::None);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert!(matches!(
            validate(&buf),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn truncated_batch_is_reported() {
        let buf = encode_batch(&["a", "b"], KpCompression::None);
        assert!(matches!(
            validate(&buf[..buf.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            validate(&buf[..20]),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn a_short_old_format_message_is_named_by_its_magic() {
        let mut v1 = vec![0u8; 34];
        v1[16] = 1;
        assert_eq!(
            validate(&v1),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
    }

    #[test]
    fn wrong_magic_and_bad_length_are_rejected() {
        let mut buf = encode_batch(&["a"], KpCompression::None);
        buf[16] = 1;
        assert_eq!(
            validate(&buf),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
        let mut buf = encode_batch(&["a"], KpCompression::None);
        buf[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert_eq!(validate(&buf), Err(BatchError::InvalidLength { length: 3 }));
    }

    #[test]
    fn record_count_beyond_offset_span_is_rejected() {
        let mut buf = encode_batch(&["a", "b"], KpCompression::None);
        buf[57..61].copy_from_slice(&5i32.to_be_bytes());
        rewrite_crc(&mut buf);
        assert_eq!(
            validate(&buf),
            Err(BatchError::InconsistentCount {
                count: 5,
                last_offset_delta: 1
            })
        );
    }

    #[test]
    fn header_rewrites_keep_the_batch_valid() {
        let mut buf = encode_batch(&["a", "b"], KpCompression::None);
        set_base_offset(&mut buf, 42);
        set_partition_leader_epoch(&mut buf, 7);
        set_log_append_time(&mut buf, 99_999);
        let info = validate(&buf).unwrap();
        assert_eq!(info.base_offset, 42);
        assert_eq!(info.max_timestamp, 99_999);
        assert_eq!(info.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(BatchHeader::new(&buf).unwrap().partition_leader_epoch(), 7);
        assert_eq!(BatchHeader::new(&buf).unwrap().last_offset(), 43);
    }

    #[test]
    fn a_split_batch_rewrites_as_the_whole_batch_would() {
        let original = encode_batch(&["a", "bb", "ccc"], KpCompression::None);
        for stamp in [Some(99_999), None] {
            let mut whole = original.clone();
            let mut split = SplitBatch::new(&original).unwrap();
            match stamp {
                Some(now) => {
                    set_log_append_time(&mut whole, now);
                    split.set_log_append_time(now);
                }
                None => {
                    set_create_time_max_timestamp(&mut whole, 5_000);
                    split.set_create_time_max_timestamp(5_000);
                }
            }
            assert_eq!(split.len(), original.len());
            assert_eq!(split.records, &original[BATCH_HEADER_BYTES..]);
            let joined = [&split.header[..], split.records].concat();
            assert_eq!(joined, &whole[..]);
            check_crc(&joined).unwrap();
        }
        assert!(matches!(
            SplitBatch::new(&original[..BATCH_HEADER_BYTES - 1]),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn iterates_concatenated_batches() {
        let mut buf = encode_batch(&["a"], KpCompression::None);
        buf.extend_from_slice(&encode_batch(&["b", "c"], KpCompression::None));
        let counts: Vec<i32> = Batches::new(&buf)
            .map(|r| r.unwrap().1.records_count)
            .collect();
        assert_eq!(counts, vec![1, 2]);
        let mut bad = buf.clone();
        bad.truncate(bad.len() - 3);
        let results: Vec<bool> = Batches::new(&bad).map(|r| r.is_ok()).collect();
        assert_eq!(results, vec![true, false]);
    }
}
