//! strom's transaction coordinator, sans-io.
//!
//! The broker hosts one [`TransactionCoordinatorShard`] per partition of the internal
//! compacted topic `__transaction_state` (`transaction.state.log.num.partitions`, 50 by
//! default) and routes each transactional id to the shard of
//! [`transaction_partition`]`(transactional_id, partitions)`. A shard does no I/O, spawns
//! nothing and never reads a clock: every call takes `now_ms`.
//!
//! # Driving a shard
//!
//! * Load: [`TransactionCoordinatorShard::new`]`(config, coordinator_epoch)` (the
//!   partition's leader epoch), [`replay`](TransactionCoordinatorShard::replay) every
//!   record of the partition in offset order, then
//!   [`loaded`](TransactionCoordinatorShard::loaded) once: its output re-issues the markers
//!   of transactions left in PrepareCommit/PrepareAbort.
//! * Requests (arguments are the decoded request's fields; every call takes
//!   `(now_ms, request_id, ...)` and answers `request_id` in its own output):
//!   `init_producer_id` (transactional ids only; the idempotent path stays in the
//!   broker), `add_partitions_to_txn` (v0-3), `add_partitions_to_txn_batched` (v4+, one
//!   call per transaction of the batch, `verify_only` included), `verify_for_produce`
//!   (the produce path, KIP-890), `add_offsets_to_txn`, `end_txn`, `describe_transaction`
//!   (one id), `list_transactions` (this shard's part). Replies are final `kafka-protocol`
//!   responses (PRODUCER_FENCED already mapped to INVALID_PRODUCER_EPOCH for old request
//!   versions, throttle time left 0).
//! * Producer ids: `init_producer_id` and `end_txn` take `fresh_producer_id:
//!   Option<i64>`. When the shard needs a new id (a new transactional id, an exhausted
//!   epoch) and none was given, the output is only `needs_producer_id = true`: allocate
//!   one and repeat the call with it (a runtime may also always pass one; unused ids are
//!   simply skipped, as Kafka's are).
//! * [`TxnOutput`]: append `records` to the partition in order; once they are durable
//!   send `replies` and start writing `markers` (an output without records is released
//!   once everything appended before it is durable). So EndTxn is answered after its
//!   PrepareCommit/PrepareAbort record is durable and before the markers are written, as
//!   Kafka does; InitProducerId that fences an open transaction answers
//!   CONCURRENT_TRANSACTIONS once the abort's prepare record is durable.
//! * Markers: for each [`MarkerRequest`] write one control batch per partition (commit or
//!   abort marker, the request's producer id, epoch and coordinator epoch), then call
//!   [`markers_written`](TransactionCoordinatorShard::markers_written) and append its
//!   record (CompleteCommit/CompleteAbort). A partition whose topic is gone counts as
//!   written. Until then the id answers CONCURRENT_TRANSACTIONS.
//! * Time: call [`tick`](TransactionCoordinatorShard::tick) at
//!   [`next_deadline_ms`](TransactionCoordinatorShard::next_deadline_ms): it aborts timed
//!   out transactions (records and markers, no replies) and tombstones expired ids.
//!
//! # Transaction versions
//!
//! Version 1 (EndTxn v0-4): the epoch changes only in InitProducerId. Version 2 (EndTxn
//! v5+, KIP-890 part 2): every commit or abort bumps the epoch (in the Prepare record) and
//! EndTxn answers with the producer id and epoch for the next transaction; an exhausted
//! epoch moves the id to a new producer id at epoch 0 when the markers are done (the
//! reply already carries it; this is where strom answers with the id the producer must
//! use next). Partitions are added implicitly by produce (`verify_for_produce`). An abort
//! the coordinator starts (fencing, timeout) follows the cluster's
//! `transaction_version_level`; at level 2 it bumps the epoch twice (fence, then abort),
//! as Kafka does, so a fenced producer's retried EndTxn is refused.
//!
//! # State and records
//!
//! The persisted state of a transactional id ([`TransactionMetadata`]) changes only by
//! applying a record through [`replay`](TransactionCoordinatorShard::replay), on the live
//! path too, so loading the partition reproduces it exactly. There is no transient
//! state besides the check timers. Records are JSON ([`TxnRecord`]):
//!
//! | key | value |
//! |---|---|
//! | `{"type":"transaction","transactional_id":T}` | `{"version":1,"producer_id","previous_producer_id","next_producer_id","producer_epoch","last_producer_epoch","timeout_ms","state":"Empty"\|"Ongoing"\|"PrepareCommit"\|"PrepareAbort"\|"CompleteCommit"\|"CompleteAbort"\|"Dead"\|"PrepareEpochFence","partitions":[{"topic","partitions":[i32]}],"start_timestamp_ms","last_update_timestamp_ms","client_transaction_version":1\|2}` |
//!
//! A tombstone (value `None`) removes an expired id. Kafka never persists Dead or
//! PrepareEpochFence; replay treats Dead as a tombstone and `loaded` turns a
//! PrepareEpochFence into an abort.

mod config;
mod output;
mod records;
mod shard;
mod state;

pub use config::TxnConfig;
pub use output::{MarkerRequest, TxnOutput, TxnReply};
pub use records::{
    DecodedTxnRecord, TxnRecord, TxnRecordError, TxnRecordKey, TxnRecordValue, TxnTopicPartitions,
    TXN_RECORD_VALUE_VERSION,
};
pub use shard::{
    produce_verification_error, ListTransactionsFilter, TransactionCoordinatorShard, TxnPartitions,
    OFFSETS_TOPIC,
};
pub use state::{
    epoch_exhausted, TransactionMetadata, TransactionVersion, TxnState, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};

/// Kafka's `transaction.state.log.num.partitions` default.
pub const DEFAULT_TRANSACTION_STATE_PARTITIONS: i32 = 50;

/// The name of the transaction coordinator's internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The `__transaction_state` partition that owns `transactional_id`, as Kafka computes
/// it (`Utils.abs(transactionalId.hashCode) % partitions`). 0 when `partitions` <= 0.
pub fn transaction_partition(transactional_id: &str, partitions: i32) -> i32 {
    strom_types::internal_topic_partition(transactional_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_matches_kafka() {
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE in Java; abs masks the sign.
        assert_eq!(transaction_partition("polygenelubricants", 50), 0);
        // "ab".hashCode() == 3105.
        assert_eq!(transaction_partition("ab", 50), 3105 % 50);
        assert_eq!(transaction_partition("ab", 0), 0);
    }
}
