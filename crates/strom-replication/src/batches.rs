//! Record batches as a follower receives them: the Fetch response's bytes, kept whole, and
//! where each batch lies in them. Only headers are read (and each batch's CRC checked), so
//! the broker hands the response's `Bytes` through without copying a record.

use bytes::Bytes;
use strom_wire::batch::{self, BatchError, BatchHeader};

use crate::error::ReplicationError;

/// One batch in a [`RecordBatches`] buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base_offset: i64,
    pub last_offset: i64,
    pub leader_epoch: i32,
    /// Where the batch lies in the buffer.
    pub position: usize,
    pub size: usize,
}

/// Whole, CRC-checked batches with increasing offsets, sharing one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatches {
    bytes: Bytes,
    spans: Vec<BatchSpan>,
}

impl RecordBatches {
    /// Reads the batches in `bytes`. A partial batch at the end (a response cut at its
    /// size limit) is left out, as Kafka's clients and fetchers leave it; anything else
    /// that is not a valid batch, or offsets that do not increase, is CORRUPT_RECORD.
    pub fn parse(bytes: Bytes) -> Result<Self, ReplicationError> {
        let mut spans = Vec::new();
        let mut position = 0usize;
        let mut previous_last: Option<i64> = None;
        while position < bytes.len() {
            let rest = &bytes[position..];
            let info = match batch::validate(rest) {
                Ok(info) => info,
                Err(BatchError::Truncated { .. }) => break,
                Err(e) => return Err(ReplicationError::CorruptRecord(e.to_string())),
            };
            let header = BatchHeader::new(rest)
                .map_err(|e| ReplicationError::CorruptRecord(e.to_string()))?;
            let base_offset = header.base_offset();
            let last_offset = header.last_offset();
            if base_offset < 0 || previous_last.is_some_and(|last| base_offset <= last) {
                return Err(ReplicationError::CorruptRecord(format!(
                    "batch at offset {base_offset} does not follow offset {}",
                    previous_last.unwrap_or(-1)
                )));
            }
            previous_last = Some(last_offset);
            spans.push(BatchSpan {
                base_offset,
                last_offset,
                leader_epoch: header.partition_leader_epoch(),
                position,
                size: info.size,
            });
            position += info.size;
        }
        let end = spans.last().map_or(0, |s| s.position + s.size);
        Ok(Self {
            bytes: bytes.slice(..end),
            spans,
        })
    }

    /// The whole batches' bytes (without a dropped partial tail): what the log appends.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn spans(&self) -> &[BatchSpan] {
        &self.spans
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn base_offset(&self) -> Option<i64> {
        self.spans.first().map(|s| s.base_offset)
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.spans.last().map(|s| s.last_offset)
    }

    /// The leader epoch of the last batch (the follower's next last_fetched_epoch).
    pub fn last_epoch(&self) -> Option<i32> {
        self.spans.last().map(|s| s.leader_epoch)
    }

    /// Each batch with its bytes, sliced from the shared buffer (no copy).
    pub fn iter(&self) -> impl Iterator<Item = (BatchSpan, Bytes)> + '_ {
        self.spans
            .iter()
            .map(|s| (*s, self.bytes.slice(s.position..s.position + s.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch_bytes, concat};

    #[test]
    fn parses_headers_and_keeps_the_buffer() {
        let a = batch_bytes(10, 3, &[b"a", b"b"]);
        let b = batch_bytes(12, 4, &[b"c"]);
        let all = concat(&[a.clone(), b.clone()]);
        let batches = RecordBatches::parse(all.clone()).unwrap();
        assert_eq!(
            batches.spans(),
            &[
                BatchSpan {
                    base_offset: 10,
                    last_offset: 11,
                    leader_epoch: 3,
                    position: 0,
                    size: a.len()
                },
                BatchSpan {
                    base_offset: 12,
                    last_offset: 12,
                    leader_epoch: 4,
                    position: a.len(),
                    size: b.len()
                },
            ]
        );
        assert_eq!(batches.bytes(), &all);
        assert_eq!(batches.last_epoch(), Some(4));
        let slices: Vec<Bytes> = batches.iter().map(|(_, bytes)| bytes).collect();
        assert_eq!(slices, vec![a, b]);
    }

    #[test]
    fn a_partial_tail_is_left_out() {
        let a = batch_bytes(0, 1, &[b"a"]);
        let b = batch_bytes(1, 1, &[b"b"]);
        let all = concat(&[a.clone(), b.slice(..b.len() - 5)]);
        let batches = RecordBatches::parse(all).unwrap();
        assert_eq!(batches.spans().len(), 1);
        assert_eq!(batches.bytes(), &a);
        assert!(RecordBatches::parse(b.slice(..20)).unwrap().is_empty());
    }

    #[test]
    fn corruption_and_offsets_going_back_are_refused() {
        let mut bad = batch_bytes(0, 1, &[b"a"]).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            RecordBatches::parse(Bytes::from(bad)),
            Err(ReplicationError::CorruptRecord(_))
        ));
        let back = concat(&[batch_bytes(5, 1, &[b"a", b"b"]), batch_bytes(6, 1, &[b"c"])]);
        assert!(matches!(
            RecordBatches::parse(back),
            Err(ReplicationError::CorruptRecord(_))
        ));
    }
}
