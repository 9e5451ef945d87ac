//! Per-log settings, named after Kafka's topic configs.

/// Kafka caps `segment.bytes` at `Int.MaxValue` because index positions are 4 bytes.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Bytes of one offset-index entry (relative offset + position).
pub const OFFSET_INDEX_ENTRY_BYTES: u32 = 8;
/// Bytes of one time-index entry (timestamp + relative offset).
pub const TIME_INDEX_ENTRY_BYTES: u32 = 12;

/// Default of `strom.producer.ids.per.partition.max`. An entry costs about 200 bytes of
/// memory and up to 150 bytes in each snapshot, so this caps one partition's producer
/// state near 20 MiB, while leaving room for a new producer every second for the whole
/// default expiration (86,400 in a day): far more writers than one partition sees unless
/// a client creates a producer per message, which is what the bound is for.
pub const DEFAULT_MAX_PRODUCER_IDS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes` (default 1073741824).
    pub segment_bytes: u64,
    /// `segment.ms` (default 604800000).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (default 0).
    pub segment_jitter_ms: i64,
    /// `retention.ms` (default 604800000; -1 = unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (default -1 = unlimited).
    pub retention_bytes: i64,
    /// `index.interval.bytes` (default 4096).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes` (default 10485760): the largest index file; a full index rolls.
    pub segment_index_bytes: u32,
    /// `flush.messages` (default i64::MAX: leave it to the page cache).
    pub flush_messages: i64,
    /// `flush.ms` (default i64::MAX).
    pub flush_ms: i64,
    /// `file.delete.delay.ms` (default 60000): how long a segment that retention removed keeps
    /// its (renamed `.deleted`) files, and longer while a reader still holds it.
    pub file_delete_delay_ms: i64,
    /// Broker `producer.id.expiration.ms` (86400000): producers idle this long (and with
    /// no open transaction) are left out when the log loads its producer state.
    pub producer_id_expiration_ms: i64,
    /// Broker `strom.producer.ids.per.partition.max`: the most producer ids the log
    /// tracks; a batch from one more is refused.
    pub max_producer_ids: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_jitter_ms: 0,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10_485_760,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
            max_producer_ids: DEFAULT_MAX_PRODUCER_IDS,
        }
    }
}

impl LogConfig {
    /// `segment.bytes` clamped to what 4-byte index positions can address.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }

    pub(crate) fn max_offset_index_entries(&self) -> usize {
        (self.segment_index_bytes / OFFSET_INDEX_ENTRY_BYTES).max(1) as usize
    }

    pub(crate) fn max_time_index_entries(&self) -> usize {
        (self.segment_index_bytes / TIME_INDEX_ENTRY_BYTES).max(1) as usize
    }
}
