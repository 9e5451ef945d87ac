//! Coordinator settings, named after Kafka's broker configs.

/// Group coordinator configuration. Defaults are Kafka 4.x's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6000): smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000): largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000): how long the first rebalance of an
    /// empty group waits for more members before completing.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size` (2147483647): most members a classic group accepts.
    pub max_size: i32,
    /// `offsets.retention.minutes` (10080 = 7 days): how long offsets outlive an empty group.
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms` (600000): how often `tick` runs offset expiry.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes` (4096): longest commit metadata string accepted.
    pub offset_metadata_max_bytes: i32,
    /// Kafka's fixed 5-minute limit for a new member's parked JoinGroup (not a config there).
    pub new_member_join_timeout_ms: i32,
    /// `group.consumer.session.timeout.ms` (45000): a consumer-group member that does not
    /// heartbeat for this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000): returned to consumer-group members.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (2147483647): most members a consumer group accepts.
    pub consumer_max_size: i32,
    /// `group.consumer.assignors` (uniform,range): server-side assignors by name; the
    /// first is the default. Known names: `uniform`, `range`.
    pub consumer_assignors: Vec<String>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4_096,
            new_member_join_timeout_ms: 300_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: i32::MAX,
            consumer_assignors: vec!["uniform".to_owned(), "range".to_owned()],
        }
    }
}

impl GroupConfig {
    /// `offsets.retention.minutes` in milliseconds (saturating).
    pub fn offsets_retention_ms(&self) -> i64 {
        self.offsets_retention_minutes.saturating_mul(60_000)
    }
}

/// One group's own configs (KIP-848 group configs), over the broker's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    /// `consumer.session.timeout.ms`
    pub consumer_session_timeout_ms: Option<i32>,
    /// `consumer.heartbeat.interval.ms`
    pub consumer_heartbeat_interval_ms: Option<i32>,
}
