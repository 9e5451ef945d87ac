//! The rules of Kafka's per-record checks of a produced batch (LogValidator):
//! a key on every record of a compacted topic, and CreateTime timestamps
//! inside the topic's window. Each refused record is reported with its index
//! in the batch, so the broker can answer with KIP-467 record errors. The
//! checks themselves run in [`crate::validate`]'s one walk over the records.

/// Kafka's "no timestamp", which the window never refuses.
pub const NO_TIMESTAMP: i64 = -1;

/// message.timestamp.before.max.ms / after.max.ms around the broker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampWindow {
    pub now_ms: i64,
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampWindow {
    /// Kafka's test, in its wrapping long arithmetic.
    pub fn admits(&self, timestamp: i64) -> bool {
        let behind = self.now_ms.wrapping_sub(timestamp);
        behind <= self.before_max_ms && behind.wrapping_neg() <= self.after_max_ms
    }

    /// The earliest timestamp admitted, as Kafka prints it (wrapping).
    pub fn earliest(&self) -> i64 {
        self.now_ms.wrapping_sub(self.before_max_ms)
    }

    /// The latest timestamp admitted, as Kafka prints it (wrapping).
    pub fn latest(&self) -> i64 {
        self.now_ms.wrapping_add(self.after_max_ms)
    }
}

/// What the topic asks of each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRules {
    /// Compacted topics need a key on every record.
    pub require_key: bool,
    /// `Some` for CreateTime topics; LogAppendTime topics check no timestamps.
    pub window: Option<TimestampWindow>,
}

/// Why one record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFault {
    MissingKey,
    TimestampOutOfRange {
        timestamp: i64,
        offset: i64,
    },
    /// Producers may not stamp LogAppendTime; the fields describe the record.
    LogAppendTimeFromProducer {
        offset: i64,
        timestamp: i64,
        key_bytes: usize,
        value_bytes: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    /// The record's position in its batch, from 0.
    pub index: usize,
    pub fault: RecordFault,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_uses_kafkas_wrapping_arithmetic() {
        let now = 1_700_000_000_000;
        let w = TimestampWindow {
            now_ms: now,
            before_max_ms: i64::MAX,
            after_max_ms: i64::MAX,
        };
        assert!(w.admits(i64::MIN) && w.admits(i64::MAX) && w.admits(0));
        assert_eq!(w.earliest(), now.wrapping_sub(i64::MAX));
        assert_eq!(w.latest(), now.wrapping_add(i64::MAX));
        let w = TimestampWindow {
            now_ms: now,
            before_max_ms: 10,
            after_max_ms: 20,
        };
        assert!(!w.admits(now - 11) && w.admits(now - 10));
        assert!(w.admits(now + 20) && !w.admits(now + 21));
        assert_eq!((w.earliest(), w.latest()), (now - 10, now + 20));
    }
}
