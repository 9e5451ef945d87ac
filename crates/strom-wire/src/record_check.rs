//! Kafka's per-record checks of a produced batch (LogValidator): a key on
//! every record of a compacted topic, and CreateTime timestamps inside the
//! topic's window. Each refused record is reported with its index in the
//! batch, so the broker can answer with KIP-467 record errors.
//!
//! Records are decoded only when a check may fail: when keys are required,
//! when the producer flagged the batch LogAppendTime, when the header's
//! first or largest timestamp is out of the window, or when the window has a
//! lower bound (no header field gives a batch's earliest timestamp). The
//! header's max timestamp is trusted to be the records' largest.

use crate::batch::{BatchHeader, TimestampType};
use crate::record::{records_section, RecordError, Records};

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

    /// Whether some timestamp below the header's could be refused.
    fn has_lower_bound(&self) -> bool {
        self.before_max_ms != i64::MAX
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

/// Checks every record of `batch` (a validated v2 batch) against `rules` and
/// returns the refused ones in batch order, at most one fault per record (a
/// missing key before its timestamp, as Kafka). A record that cannot be
/// decoded fails the whole batch with the error.
pub fn refused_records(
    batch: &[u8],
    rules: &RecordRules,
) -> Result<Vec<RefusedRecord>, RecordError> {
    let header = BatchHeader::new(batch)?;
    let log_append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let window_may_refuse = rules.window.is_some_and(|w| {
        w.has_lower_bound()
            || !admitted(&w, header.base_timestamp())
            || !admitted(&w, header.max_timestamp())
    });
    if !rules.require_key && !log_append_time && !window_may_refuse {
        return Ok(Vec::new());
    }
    let section = records_section(batch)?;
    let mut refused = Vec::new();
    for (index, record) in Records::new(&section, header.records_count()).enumerate() {
        let record = record?;
        // A LogAppendTime batch gives every record its max timestamp (Kafka's reader).
        let timestamp = if log_append_time {
            header.max_timestamp()
        } else {
            header
                .base_timestamp()
                .wrapping_add(record.timestamp_delta())
        };
        let offset = header
            .base_offset()
            .wrapping_add(i64::from(record.offset_delta()));
        let fault = if rules.require_key && record.key().is_none() {
            Some(RecordFault::MissingKey)
        } else {
            match rules.window {
                Some(window) if timestamp != NO_TIMESTAMP => (!window.admits(timestamp))
                    .then_some(RecordFault::TimestampOutOfRange { timestamp, offset }),
                _ if log_append_time => Some(RecordFault::LogAppendTimeFromProducer {
                    offset,
                    timestamp,
                    key_bytes: record.key().map_or(0, <[u8]>::len),
                    value_bytes: record.value().map_or(0, <[u8]>::len),
                }),
                _ => None,
            }
        };
        if let Some(fault) = fault {
            refused.push(RefusedRecord { index, fault });
        }
    }
    Ok(refused)
}

fn admitted(window: &TimestampWindow, timestamp: i64) -> bool {
    timestamp == NO_TIMESTAMP || window.admits(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{set_compression, set_log_append_time, Compression};
    use crate::record::tests::{batch_of, raw_record};

    /// `batch_of` puts the base offset at 100 and the base timestamp at 1000.
    const BASE_OFFSET: i64 = 100;
    const BASE_TS: i64 = 1_000;
    const HOUR: i64 = 3_600_000;

    /// A batch of (key, timestamp delta) records whose header max is `max_ts`.
    fn batch(records: &[(Option<&str>, i64)], max_ts: i64, codec: Compression) -> Vec<u8> {
        let raw: Vec<Vec<u8>> = records
            .iter()
            .enumerate()
            .map(|(i, (key, delta))| {
                raw_record(
                    i as i32,
                    *delta,
                    key.map(str::as_bytes),
                    Some(b"value"),
                    &[],
                )
            })
            .collect();
        batch_of(&raw, records.len() as i32 - 1, max_ts, codec)
    }

    /// A window around BASE_TS: `now` is the batch's first timestamp.
    fn window(before_max_ms: i64, after_max_ms: i64) -> Option<TimestampWindow> {
        Some(TimestampWindow {
            now_ms: BASE_TS,
            before_max_ms,
            after_max_ms,
        })
    }

    fn rules(require_key: bool, window: Option<TimestampWindow>) -> RecordRules {
        RecordRules {
            require_key,
            window,
        }
    }

    fn refused(index: usize, fault: RecordFault) -> RefusedRecord {
        RefusedRecord { index, fault }
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named_by_index() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = batch(
                &[(Some("a"), 0), (None, 1), (Some("c"), 2), (None, 3)],
                BASE_TS + 3,
                codec,
            );
            assert_eq!(
                refused_records(&b, &rules(true, None)).unwrap(),
                vec![
                    refused(1, RecordFault::MissingKey),
                    refused(3, RecordFault::MissingKey)
                ],
                "{codec:?}"
            );
        }
        let keyed = batch(&[(Some("a"), 0), (Some(""), 0)], BASE_TS, Compression::None);
        assert_eq!(refused_records(&keyed, &rules(true, None)).unwrap(), vec![]);
    }

    #[test]
    fn each_record_timestamp_is_checked_not_only_the_header_bounds() {
        // The first and max timestamps are in range; record 1 is two days older.
        let b = batch(
            &[(Some("a"), 0), (Some("b"), -48 * HOUR), (Some("c"), 5)],
            BASE_TS + 5,
            Compression::Snappy,
        );
        assert_eq!(
            refused_records(&b, &rules(false, window(24 * HOUR, HOUR))).unwrap(),
            vec![refused(
                1,
                RecordFault::TimestampOutOfRange {
                    timestamp: BASE_TS - 48 * HOUR,
                    offset: BASE_OFFSET + 1
                }
            )]
        );
    }

    #[test]
    fn future_timestamps_are_refused_past_after_max_ms() {
        let b = batch(
            &[
                (Some("a"), 2 * HOUR),
                (Some("b"), HOUR),
                (Some("c"), HOUR + 1),
                (Some("d"), -BASE_TS - 1), // -1: no timestamp
            ],
            BASE_TS + 2 * HOUR,
            Compression::Lz4,
        );
        assert_eq!(
            refused_records(&b, &rules(false, window(i64::MAX, HOUR))).unwrap(),
            vec![
                refused(
                    0,
                    RecordFault::TimestampOutOfRange {
                        timestamp: BASE_TS + 2 * HOUR,
                        offset: BASE_OFFSET
                    }
                ),
                refused(
                    2,
                    RecordFault::TimestampOutOfRange {
                        timestamp: BASE_TS + HOUR + 1,
                        offset: BASE_OFFSET + 2
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_missing_key_is_reported_instead_of_a_bad_timestamp() {
        let b = batch(
            &[(None, 5 * HOUR), (Some("b"), 5 * HOUR), (None, 0)],
            BASE_TS + 5 * HOUR,
            Compression::None,
        );
        assert_eq!(
            refused_records(&b, &rules(true, window(i64::MAX, HOUR))).unwrap(),
            vec![
                refused(0, RecordFault::MissingKey),
                refused(
                    1,
                    RecordFault::TimestampOutOfRange {
                        timestamp: BASE_TS + 5 * HOUR,
                        offset: BASE_OFFSET + 1
                    }
                ),
                refused(2, RecordFault::MissingKey),
            ]
        );
    }

    #[test]
    fn producers_may_not_stamp_log_append_time() {
        let stamped = BASE_TS + 7;
        let mut b = batch(
            &[(Some("key"), 0), (None, 1)],
            BASE_TS + 1,
            Compression::Gzip,
        );
        set_log_append_time(&mut b, stamped);
        let lat = |offset, key_bytes| RecordFault::LogAppendTimeFromProducer {
            offset,
            timestamp: stamped,
            key_bytes,
            value_bytes: 5,
        };
        // A LogAppendTime topic refuses every record of such a batch.
        assert_eq!(
            refused_records(&b, &rules(false, None)).unwrap(),
            vec![
                refused(0, lat(BASE_OFFSET, 3)),
                refused(1, lat(BASE_OFFSET + 1, 0))
            ]
        );
        // A CreateTime topic takes the batch's max timestamp as every record's.
        assert_eq!(
            refused_records(&b, &rules(false, window(i64::MAX, HOUR))).unwrap(),
            vec![]
        );
        let late = Some(TimestampWindow {
            now_ms: stamped - HOUR - 1,
            before_max_ms: i64::MAX,
            after_max_ms: HOUR,
        });
        let too_late = |offset| RecordFault::TimestampOutOfRange {
            timestamp: stamped,
            offset,
        };
        assert_eq!(
            refused_records(&b, &rules(false, late)).unwrap(),
            vec![
                refused(0, too_late(BASE_OFFSET)),
                refused(1, too_late(BASE_OFFSET + 1))
            ]
        );
        // ... and a record without timestamp is refused for the flag itself.
        set_log_append_time(&mut b, NO_TIMESTAMP);
        assert_eq!(
            refused_records(&b, &rules(false, window(i64::MAX, HOUR))).unwrap()[0].fault,
            RecordFault::LogAppendTimeFromProducer {
                offset: BASE_OFFSET,
                timestamp: NO_TIMESTAMP,
                key_bytes: 3,
                value_bytes: 5
            }
        );
    }

    #[test]
    fn records_are_not_decoded_when_the_header_shows_nothing_can_fail() {
        // Make record 0's length -64 (the CRC fixed up after): decoding now fails.
        let mut b = batch(
            &[(Some("a"), 0), (Some("b"), 1)],
            BASE_TS + 1,
            Compression::None,
        );
        b[61] = 0x7f;
        set_compression(&mut b, Compression::None);
        assert_eq!(
            refused_records(&b, &rules(false, window(i64::MAX, HOUR))).unwrap(),
            vec![]
        );
        assert_eq!(refused_records(&b, &rules(false, None)).unwrap(), vec![]);
        let max_out_of_range = Some(TimestampWindow {
            now_ms: BASE_TS - HOUR - 1,
            before_max_ms: i64::MAX,
            after_max_ms: HOUR,
        });
        for rules in [
            rules(true, None),
            rules(false, window(24 * HOUR, HOUR)),
            rules(false, max_out_of_range),
        ] {
            assert!(
                matches!(
                    refused_records(&b, &rules),
                    Err(RecordError::InvalidLength { value: -64, .. })
                ),
                "{rules:?}"
            );
        }
    }

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
