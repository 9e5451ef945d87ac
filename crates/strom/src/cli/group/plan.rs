//! The offsets `strom group reset-offsets` would commit, computed from
//! what the cluster reports; no I/O here.

use std::collections::BTreeMap;

/// Where to move each partition's committed offset (Kafka's reset scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    Earliest,
    Latest,
    /// The committed offset, or the log end where there is none.
    Current,
    /// An explicit offset, clamped into the log.
    Offset(i64),
    /// The committed offset moved by N (negative: back), clamped.
    ShiftBy(i64),
    /// The first offset with a timestamp at or after this (ms); the log
    /// end where no record is that recent.
    Timestamp(i64),
}

/// What the cluster says about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start: i64,
    pub log_end: i64,
    pub committed: Option<i64>,
    /// For [`ResetSpec::Timestamp`]: what ListOffsets found for the time.
    pub for_timestamp: Option<i64>,
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOffset {
    pub topic: String,
    pub partition: i32,
    pub new_offset: i64,
    /// Set when the requested offset was outside the log and clamped.
    pub warning: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// A shift needs a committed offset to start from.
    NoCommittedOffset(String, i32),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCommittedOffset(topic, partition) => write!(
                f,
                "cannot shift offset for partition {topic}-{partition} since there is no \
                 current committed offset"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// The new offset of one partition, and a warning if it had to be clamped
/// into `[log_start, log_end]` (as kafka-consumer-groups does).
pub fn new_offset(
    spec: ResetSpec,
    topic: &str,
    partition: i32,
    offsets: &PartitionOffsets,
) -> Result<(i64, Option<String>), PlanError> {
    let requested = match spec {
        ResetSpec::Earliest => return Ok((offsets.log_start, None)),
        ResetSpec::Latest => return Ok((offsets.log_end, None)),
        ResetSpec::Current => return Ok((offsets.committed.unwrap_or(offsets.log_end), None)),
        ResetSpec::Timestamp(_) => {
            return Ok((offsets.for_timestamp.unwrap_or(offsets.log_end), None))
        }
        ResetSpec::Offset(n) => n,
        ResetSpec::ShiftBy(n) => match offsets.committed {
            Some(committed) => committed.saturating_add(n),
            None => return Err(PlanError::NoCommittedOffset(topic.to_owned(), partition)),
        },
    };
    Ok(clamp(requested, topic, partition, offsets))
}

fn clamp(
    requested: i64,
    topic: &str,
    partition: i32,
    offsets: &PartitionOffsets,
) -> (i64, Option<String>) {
    if requested > offsets.log_end {
        let warning = format!(
            "New offset ({requested}) is higher than latest offset for topic partition \
             {topic}-{partition}. Value will be set to {}",
            offsets.log_end
        );
        (offsets.log_end, Some(warning))
    } else if requested < offsets.log_start {
        let warning = format!(
            "New offset ({requested}) is lower than earliest offset for topic partition \
             {topic}-{partition}. Value will be set to {}",
            offsets.log_start
        );
        (offsets.log_start, Some(warning))
    } else {
        (requested, None)
    }
}

/// The plan for every partition, sorted by topic and partition.
pub fn plan(
    spec: ResetSpec,
    partitions: &BTreeMap<(String, i32), PartitionOffsets>,
) -> Result<Vec<PlannedOffset>, PlanError> {
    partitions
        .iter()
        .map(|((topic, partition), offsets)| {
            let (new_offset, warning) = new_offset(spec, topic, *partition, offsets)?;
            Ok(PlannedOffset {
                topic: topic.clone(),
                partition: *partition,
                new_offset,
                warning,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log [10, 50), committed at 30, timestamp lookup found 42.
    const P: PartitionOffsets = PartitionOffsets {
        log_start: 10,
        log_end: 50,
        committed: Some(30),
        for_timestamp: Some(42),
    };
    const UNCOMMITTED: PartitionOffsets = PartitionOffsets {
        committed: None,
        for_timestamp: None,
        ..P
    };

    fn offset(spec: ResetSpec, p: &PartitionOffsets) -> i64 {
        new_offset(spec, "t", 0, p).unwrap().0
    }

    #[test]
    fn earliest_latest_and_current() {
        assert_eq!(offset(ResetSpec::Earliest, &P), 10);
        assert_eq!(offset(ResetSpec::Latest, &P), 50);
        assert_eq!(offset(ResetSpec::Current, &P), 30);
        // No commit: the current position is the log end.
        assert_eq!(offset(ResetSpec::Current, &UNCOMMITTED), 50);
    }

    #[test]
    fn explicit_offsets_are_clamped_into_the_log() {
        assert_eq!(
            new_offset(ResetSpec::Offset(25), "t", 0, &P),
            Ok((25, None))
        );
        assert_eq!(
            new_offset(ResetSpec::Offset(10), "t", 0, &P),
            Ok((10, None))
        );
        assert_eq!(
            new_offset(ResetSpec::Offset(50), "t", 0, &P),
            Ok((50, None))
        );
        assert_eq!(
            new_offset(ResetSpec::Offset(51), "t", 3, &P),
            Ok((
                50,
                Some(
                    "New offset (51) is higher than latest offset for topic partition t-3. \
                     Value will be set to 50"
                        .to_owned()
                )
            ))
        );
        assert_eq!(
            new_offset(ResetSpec::Offset(0), "t", 3, &P),
            Ok((
                10,
                Some(
                    "New offset (0) is lower than earliest offset for topic partition t-3. \
                     Value will be set to 10"
                        .to_owned()
                )
            ))
        );
        // Explicit offsets need no commit.
        assert_eq!(offset(ResetSpec::Offset(12), &UNCOMMITTED), 12);
    }

    #[test]
    fn shifts_move_the_committed_offset_and_clamp() {
        assert_eq!(offset(ResetSpec::ShiftBy(5), &P), 35);
        assert_eq!(offset(ResetSpec::ShiftBy(-5), &P), 25);
        assert_eq!(offset(ResetSpec::ShiftBy(0), &P), 30);
        assert_eq!(offset(ResetSpec::ShiftBy(100), &P), 50);
        assert_eq!(offset(ResetSpec::ShiftBy(-100), &P), 10);
        assert_eq!(offset(ResetSpec::ShiftBy(i64::MAX), &P), 50);
        assert_eq!(offset(ResetSpec::ShiftBy(i64::MIN), &P), 10);
        assert!(new_offset(ResetSpec::ShiftBy(-100), "t", 0, &P)
            .unwrap()
            .1
            .is_some());
        assert_eq!(
            new_offset(ResetSpec::ShiftBy(1), "orders", 2, &UNCOMMITTED),
            Err(PlanError::NoCommittedOffset("orders".into(), 2))
        );
        assert_eq!(
            PlanError::NoCommittedOffset("orders".into(), 2).to_string(),
            "cannot shift offset for partition orders-2 since there is no current committed offset"
        );
    }

    #[test]
    fn timestamps_use_the_lookup_or_the_log_end() {
        assert_eq!(offset(ResetSpec::Timestamp(1_000), &P), 42);
        assert_eq!(offset(ResetSpec::Timestamp(1_000), &UNCOMMITTED), 50);
    }

    #[test]
    fn plans_cover_every_partition_in_order() {
        let mut partitions = BTreeMap::new();
        partitions.insert(("b".to_owned(), 0), P);
        partitions.insert(("a".to_owned(), 1), UNCOMMITTED);
        partitions.insert(("a".to_owned(), 0), P);
        let planned = plan(ResetSpec::Offset(45), &partitions).unwrap();
        let lines: Vec<_> = planned
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.new_offset))
            .collect();
        assert_eq!(lines, vec![("a", 0, 45), ("a", 1, 45), ("b", 0, 45)]);
        assert_eq!(
            plan(ResetSpec::ShiftBy(1), &partitions),
            Err(PlanError::NoCommittedOffset("a".into(), 1))
        );
    }
}
