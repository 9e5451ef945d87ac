//! Rebuilding idempotent-producer state from the log after a restart.
//!
//! Kafka restores it from producer snapshots plus the batches after them. strom
//! keeps no snapshots yet, so it reads the batch headers of the log's tail: a
//! producer found there gets its true latest epoch and last batches (everything it
//! wrote later is in the tail too), so a batch retried across a broker crash is
//! still answered as a duplicate. A producer whose batches all lie before the tail
//! stays unknown, and its next batch is accepted as a new producer's is.

use strom_wire::batch::BatchHeader;

use crate::error::LogError;
use crate::log::PartitionLog;
use crate::producer_state::{last_sequence_of_batch, ProducerBatch, ProducerStateTable};
use crate::scan::HeaderScan;

/// How much of the log's end is read, so a restart costs the same for any log size.
/// Retries follow a crash within seconds; their batches are at the very end.
pub const PRODUCER_STATE_TAIL_BYTES: u64 = 16 * 1024 * 1024;

impl PartitionLog {
    /// Producer state from the batch headers of the last `tail_bytes` of the log (from
    /// the indexed batch at or before that point); producers whose last batch is older
    /// than `expiration_ms` (`producer.id.expiration.ms`) are left out.
    pub fn recent_producer_state(
        &self,
        now_ms: i64,
        expiration_ms: i64,
        tail_bytes: u64,
    ) -> Result<ProducerStateTable, LogError> {
        let mut table = ProducerStateTable::default();
        let mut last_seen_ms = std::collections::HashMap::new();
        let (first, start_position) = self.tail_start(tail_bytes);
        for (i, segment) in self.segments.iter().enumerate().skip(first) {
            let start = if i == first { start_position } else { 0 };
            let file = segment.log()?;
            let mut scan = HeaderScan::new(&file, segment.log_path(), start, segment.size_bytes);
            while let Some((meta, header)) = scan.next_with_header()? {
                let header = BatchHeader::new(&header)
                    .map_err(|e| segment.corrupt_at(meta.position, e.to_string()))?;
                let producer_id = header.producer_id();
                // Control batches carry no sequence; a negative one means "not idempotent".
                if producer_id < 0 || header.is_control() || header.base_sequence() < 0 {
                    continue;
                }
                let first_sequence = header.base_sequence();
                table.record(
                    producer_id,
                    header.producer_epoch(),
                    ProducerBatch {
                        first_sequence,
                        last_sequence: last_sequence_of_batch(
                            first_sequence,
                            header.last_offset_delta(),
                        ),
                        base_offset: meta.base_offset,
                        last_offset: meta.last_offset,
                    },
                );
                last_seen_ms.insert(producer_id, meta.max_timestamp_ms);
            }
        }
        for (producer_id, timestamp_ms) in last_seen_ms {
            if now_ms.saturating_sub(timestamp_ms) >= expiration_ms {
                table.forget(producer_id);
            }
        }
        Ok(table)
    }

    /// The segment and batch position where the last `tail_bytes` begin.
    fn tail_start(&self, tail_bytes: u64) -> (usize, u64) {
        let mut remaining = tail_bytes;
        for (i, segment) in self.segments.iter().enumerate().rev() {
            if segment.size_bytes >= remaining {
                let at = segment.size_bytes - remaining;
                return (i, segment.index.batch_position_at_or_before(at));
            }
            remaining -= segment.size_bytes;
        }
        (0, 0)
    }
}
