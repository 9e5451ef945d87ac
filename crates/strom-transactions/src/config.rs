//! Transaction coordinator settings, named after Kafka's broker configs.

/// Transaction coordinator configuration. Defaults are Kafka 4.x's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000): the largest transaction timeout a producer
    /// may ask for in InitProducerId.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000 = 7 days): a transactional id that has
    /// not been updated for this long while Empty, CompleteCommit or CompleteAbort is removed.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often
    /// `tick` aborts transactions open past their timeout.
    pub abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000): how often
    /// `tick` removes expired transactional ids.
    pub remove_expired_transaction_cleanup_interval_ms: i64,
    /// `offsets.topic.num.partitions` (50): AddOffsetsToTxn adds the group's
    /// `__consumer_offsets` partition to the transaction.
    pub offsets_topic_partitions: i32,
    /// The cluster's finalized `transaction.version` feature level (0, 1 or 2). Aborts the
    /// coordinator starts itself (fencing, timeouts) use it, as Kafka does; level 2 bumps
    /// the epoch of such an abort once more (see the crate docs).
    pub transaction_version_level: i16,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            offsets_topic_partitions: 50,
            transaction_version_level: 2,
        }
    }
}
