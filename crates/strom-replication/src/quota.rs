//! Replication throttling, as Kafka's ReplicationQuotaManager decides it: which
//! partitions are throttled (the topic configs `leader.replication.throttled.replicas`
//! and `follower.replication.throttled.replicas`), and whether the bytes replicated for
//! them are over the broker's rate (`leader.replication.throttled.rate`,
//! `follower.replication.throttled.rate`).
//!
//! Kafka measures the rate over a window of samples; here a token bucket holding at most
//! one second of the rate does the same job with bounded state: bytes are recorded after
//! they are sent (as Kafka records a response's size once it is built), so the bucket
//! may go into debt by one response, and a throttled replica gets nothing more until the
//! debt is paid back at the rate. Time is passed in.

use std::collections::BTreeSet;

/// Kafka's default for both rates: unlimited.
pub const UNLIMITED_RATE: u64 = i64::MAX as u64;

/// How much of the rate may be used at once after an idle spell.
const BURST_MS: u128 = 1_000;

/// A byte rate limit over time in milliseconds.
#[derive(Debug, Clone)]
pub struct ReplicationQuota {
    /// Bytes per second.
    rate: u64,
    /// Tokens in byte-milliseconds (bytes x 1000), so refills lose no fraction; below
    /// zero is debt.
    tokens: i128,
    last_ms: i64,
}

impl ReplicationQuota {
    /// A full bucket at `rate` bytes per second.
    pub fn new(rate: u64, now_ms: i64) -> Self {
        Self {
            rate,
            tokens: Self::capacity_of(rate),
            last_ms: now_ms,
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn capacity_of(rate: u64) -> i128 {
        // One second of the rate, in byte-milliseconds.
        (u128::from(rate) * BURST_MS).min(i128::MAX as u128 / 2) as i128
    }

    /// Takes a new rate (a dynamic config changed); what is saved is kept up to the new
    /// bound, debt is kept.
    pub fn set_rate(&mut self, rate: u64, now_ms: i64) {
        if rate == self.rate {
            return;
        }
        self.refill(now_ms);
        self.rate = rate;
        self.tokens = self.tokens.min(Self::capacity_of(rate));
    }

    fn refill(&mut self, now_ms: i64) {
        // A clock going backwards adds nothing.
        let elapsed = now_ms.saturating_sub(self.last_ms).max(0) as u128;
        self.last_ms = self.last_ms.max(now_ms);
        let capacity = Self::capacity_of(self.rate);
        let room = (capacity - self.tokens).max(0) as u128;
        self.tokens += (u128::from(self.rate) * elapsed).min(room) as i128;
    }

    /// Kafka's isQuotaExceeded: more was replicated than the rate allows so far.
    pub fn is_exceeded(&mut self, now_ms: i64) -> bool {
        if self.rate >= UNLIMITED_RATE {
            return false;
        }
        self.refill(now_ms);
        self.tokens < 0
    }

    /// Counts bytes replicated for throttled partitions.
    pub fn record(&mut self, bytes: usize, now_ms: i64) {
        if self.rate >= UNLIMITED_RATE {
            return;
        }
        self.refill(now_ms);
        let spent = (bytes as i128).saturating_mul(BURST_MS as i128);
        // Bounded debt: ten seconds of the rate at most.
        let floor = -Self::capacity_of(self.rate).saturating_mul(10);
        self.tokens = (self.tokens - spent).max(floor.min(-spent));
    }
}

/// One topic's `*.replication.throttled.replicas`, as it applies to one broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ThrottledReplicas {
    #[default]
    None,
    /// `*`: every partition of the topic.
    All,
    /// The partitions listed with this broker (`partition:broker` pairs).
    Partitions(BTreeSet<i32>),
}

impl ThrottledReplicas {
    /// Parses the config for broker `broker_id` as Kafka's parseThrottledPartitions
    /// does; entries that are not `partition:broker` numbers are ignored (the config
    /// is validated when it is set).
    pub fn parse(value: &str, broker_id: i32) -> Self {
        let value = value.trim();
        if value.is_empty() {
            return Self::None;
        }
        if value == "*" {
            return Self::All;
        }
        let partitions: BTreeSet<i32> = value
            .split(',')
            .filter_map(|entry| {
                let (partition, broker) = entry.trim().split_once(':')?;
                let partition = partition.trim().parse::<i32>().ok()?;
                let broker = broker.trim().parse::<i32>().ok()?;
                (broker == broker_id).then_some(partition)
            })
            .collect();
        if partitions.is_empty() {
            Self::None
        } else {
            Self::Partitions(partitions)
        }
    }

    pub fn is_throttled(&self, partition: i32) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Partitions(set) => set.contains(&partition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_quota_is_never_exceeded() {
        let mut quota = ReplicationQuota::new(UNLIMITED_RATE, 0);
        quota.record(usize::MAX, 0);
        assert!(!quota.is_exceeded(0));
    }

    #[test]
    fn bytes_over_the_rate_throttle_until_the_debt_is_paid_back() {
        // 1000 bytes/s: a second's worth may go at once.
        let mut quota = ReplicationQuota::new(1_000, 10_000);
        quota.record(1_000, 10_000);
        assert!(!quota.is_exceeded(10_000), "exactly the burst: not over");
        quota.record(500, 10_000);
        assert!(quota.is_exceeded(10_000));
        // 500 bytes of debt take half a second to pay back.
        assert!(quota.is_exceeded(10_499));
        assert!(!quota.is_exceeded(10_500));
    }

    #[test]
    fn idle_time_saves_at_most_one_second_of_the_rate() {
        let mut quota = ReplicationQuota::new(1_000, 0);
        quota.record(1_000, 0);
        // An hour idle: still only 1000 bytes may go before the limit shows.
        quota.record(1_001, 3_600_000);
        assert!(quota.is_exceeded(3_600_000));
        assert!(!quota.is_exceeded(3_600_001));
    }

    #[test]
    fn fractions_of_a_byte_per_millisecond_add_up() {
        // 300 bytes/s is 0.3 bytes per millisecond.
        let mut quota = ReplicationQuota::new(300, 0);
        quota.record(600, 0);
        // 300 bytes of debt: paid after exactly one second of 1 ms steps.
        for now in 1..1_000 {
            assert!(quota.is_exceeded(now), "at {now} ms");
        }
        assert!(!quota.is_exceeded(1_000));
    }

    #[test]
    fn a_lower_rate_cuts_the_saved_bytes_and_a_clock_going_back_adds_none() {
        let mut quota = ReplicationQuota::new(10_000, 0);
        quota.set_rate(100, 0);
        assert_eq!(quota.rate(), 100);
        quota.record(101, 0);
        assert!(quota.is_exceeded(0));
        assert!(quota.is_exceeded(-5_000));
        // The clock came back from -5000 to 0: only real time since 0 counts.
        assert!(!quota.is_exceeded(10));
    }

    #[test]
    fn debt_is_bounded() {
        let mut quota = ReplicationQuota::new(1_000, 0);
        for _ in 0..1_000 {
            quota.record(1_000_000, 0);
        }
        // Ten seconds of the rate at most, or the last response if it was larger: the
        // million-byte response takes 1000 s, not a million.
        assert!(quota.is_exceeded(999_999));
        assert!(!quota.is_exceeded(1_001_000));
    }

    #[test]
    fn throttled_replica_lists_apply_to_this_broker_only() {
        assert_eq!(ThrottledReplicas::parse("", 1), ThrottledReplicas::None);
        assert_eq!(ThrottledReplicas::parse(" * ", 1), ThrottledReplicas::All);
        let listed = ThrottledReplicas::parse("0:1, 1:2,2:1", 1);
        assert_eq!(
            listed,
            ThrottledReplicas::Partitions(BTreeSet::from([0, 2]))
        );
        assert!(listed.is_throttled(2) && !listed.is_throttled(1));
        assert_eq!(ThrottledReplicas::parse("0:2", 1), ThrottledReplicas::None);
        assert!(ThrottledReplicas::All.is_throttled(7));
    }
}
