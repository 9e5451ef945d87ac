//! Timestamp lookups (ListOffsets): the time index narrows the search, then the candidate
//! batch is decoded (one batch at a time) to find the exact record.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strom_wire::batch::{BatchHeader, TimestampType};

use crate::error::LogError;
use crate::log::PartitionLog;
use crate::scan::{read_exact, BatchMeta, HeaderScan};
use crate::segment::Segment;

impl Segment {
    /// The first record with timestamp >= `target_ms` and offset >= `start_offset`, as
    /// (offset, timestamp).
    pub(crate) fn find_offset_by_timestamp(
        &self,
        target_ms: i64,
        start_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        // Every record before the entry's batch has a timestamp below `target_ms`.
        let (_, indexed_offset) = self.time_index.lookup(target_ms);
        let (_, position) = self.index.lookup(indexed_offset.max(start_offset));
        let file = self.log()?;
        let mut scan =
            HeaderScan::new(&file, self.log_path(), u64::from(position), self.size_bytes);
        while let Some(meta) = scan.next_batch()? {
            if meta.max_timestamp_ms < target_ms || meta.last_offset < start_offset {
                continue;
            }
            let found = self
                .record_timestamps(&meta)?
                .into_iter()
                .find(|&(offset, ts)| ts >= target_ms && offset >= start_offset);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The first record carrying the segment's largest timestamp, as (offset, timestamp).
    pub(crate) fn max_timestamp_record(&self) -> Result<Option<(i64, i64)>, LogError> {
        let (_, position) = self.index.lookup(self.offset_of_max_timestamp);
        let file = self.log()?;
        let mut scan =
            HeaderScan::new(&file, self.log_path(), u64::from(position), self.size_bytes);
        while let Some(meta) = scan.next_batch()? {
            if meta.max_timestamp_ms != self.max_timestamp_ms {
                continue;
            }
            let records = self.record_timestamps(&meta)?;
            let first_max = records.iter().find(|&&(_, ts)| ts == self.max_timestamp_ms);
            // A header max that no record carries: fall back to the batch, as Kafka's
            // shallow offset would.
            return Ok(Some(
                first_max
                    .copied()
                    .unwrap_or((meta.base_offset, meta.max_timestamp_ms)),
            ));
        }
        Ok(None)
    }

    /// (offset, timestamp) of every record in the batch; LogAppendTime batches stamp every
    /// record with the batch's max timestamp.
    fn record_timestamps(&self, meta: &BatchMeta) -> Result<Vec<(i64, i64)>, LogError> {
        // The scan checked the batch lies inside the file.
        let bytes = read_exact(&*self.log()?, meta.position, meta.size_bytes)?;
        let log_append_time = BatchHeader::new(&bytes)
            .map_err(|e| self.corrupt_at(meta.position, e.to_string()))?
            .timestamp_type()
            == TimestampType::LogAppendTime;
        let mut buf = Bytes::from(bytes);
        let set = RecordBatchDecoder::decode(&mut buf)
            .map_err(|e| self.corrupt_at(meta.position, format!("cannot decode batch: {e}")))?;
        Ok(set
            .records
            .iter()
            .map(|r| {
                let ts = if log_append_time {
                    meta.max_timestamp_ms
                } else {
                    r.timestamp
                };
                (r.offset, ts)
            })
            .collect())
    }
}

impl PartitionLog {
    /// ListOffsets by timestamp: the first record at or after the log start offset whose
    /// timestamp is >= `timestamp_ms`, as (offset, timestamp).
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let first = self.segment_index_for(self.log_start_offset);
        for segment in &self.segments[first..] {
            if segment.is_empty() || segment.max_timestamp_ms < timestamp_ms {
                continue;
            }
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp_ms, self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the first record holding the largest timestamp in the log,
    /// as (offset, timestamp); `None` when the log holds no batch.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments.iter().filter(|s| !s.is_empty()) {
            if best.is_none_or(|b| segment.max_timestamp_ms > b.max_timestamp_ms) {
                best = Some(segment);
            }
        }
        match best {
            Some(segment) => segment.max_timestamp_record(),
            None => Ok(None),
        }
    }
}
