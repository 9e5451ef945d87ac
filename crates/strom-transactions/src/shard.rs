//! One transaction coordinator shard: the transactional ids of one `__transaction_state`
//! partition.

use std::collections::BTreeMap;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    describe_transactions_response, list_transactions_response, AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse, EndTxnResponse, InitProducerIdResponse, ListTransactionsResponse,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;

use crate::config::TxnConfig;
use crate::output::{MarkerRequest, TxnOutput, TxnReply};
use crate::records::{TxnRecord, TxnRecordError};
use crate::state::{
    epoch_exhausted, TransactionMetadata, TransactionVersion, TxnState, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};

/// Kafka's name of the group coordinator's topic, whose partitions AddOffsetsToTxn adds.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One transaction of an AddPartitionsToTxn v4+ request (sent by brokers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnPartitions {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// KIP-890 part 1: only check that the partitions are already in the transaction.
    pub verify_only: bool,
    pub partitions: Vec<(String, i32)>,
}

/// ListTransactions filters, as the request carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTransactionsFilter {
    /// State names; empty means all. Unknown names come back in `unknown_state_filters`.
    pub states: Vec<String>,
    /// Producer ids; empty means all.
    pub producer_ids: Vec<i64>,
    /// v1+: only transactions running longer than this (ms); -1 means no filter.
    pub duration_filter_ms: i64,
    /// v2+: a regular expression the whole transactional id must match.
    pub transactional_id_pattern: Option<String>,
}

/// The transaction coordinator for one `__transaction_state` partition. Sans-io: every
/// call takes the current time and returns what to append, answer and write
/// (see [`TxnOutput`]).
#[derive(Debug, Clone)]
pub struct TransactionCoordinatorShard {
    config: TxnConfig,
    coordinator_epoch: i32,
    txns: BTreeMap<String, TransactionMetadata>,
    next_abort_check_ms: Option<i64>,
    next_expiry_check_ms: Option<i64>,
}

/// Kafka answers PRODUCER_FENCED as INVALID_PRODUCER_EPOCH to clients whose request
/// version predates it (KIP-588).
fn for_version(code: ErrorCode, api_version: i16, first_fenced_version: i16) -> ErrorCode {
    if code == ErrorCode::ProducerFenced && api_version < first_fenced_version {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
}

fn code_of(code: Option<ErrorCode>) -> i16 {
    code.map_or(0, |c| c.code())
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// `(partition, error)` pairs as per-topic results, topics in first-seen order.
fn topic_results(
    results: &[((String, i32), Option<ErrorCode>)],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in results {
        let entry = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(*partition)
            .with_partition_error_code(code_of(*code));
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.results_by_partition.push(entry),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_results_by_partition(vec![entry]),
            ),
        }
    }
    topics
}

fn same_error(
    partitions: &[(String, i32)],
    code: Option<ErrorCode>,
) -> Vec<((String, i32), Option<ErrorCode>)> {
    partitions.iter().map(|p| (p.clone(), code)).collect()
}

fn init_reply(code: Option<ErrorCode>, producer_id: i64, producer_epoch: i16) -> TxnReply {
    TxnReply::InitProducerId(
        InitProducerIdResponse::default()
            .with_error_code(code_of(code))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
    )
}

fn end_reply(code: Option<ErrorCode>, producer_id: i64, producer_epoch: i16) -> TxnReply {
    TxnReply::EndTxn(
        EndTxnResponse::default()
            .with_error_code(code_of(code))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
    )
}

/// Why a partition-adding call was refused, or `None` to go ahead. Shared by
/// AddPartitionsToTxn, AddOffsetsToTxn and verification (Kafka checks the same things
/// in the same order).
fn partition_call_error(
    m: Option<&TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
) -> Option<ErrorCode> {
    let Some(m) = m else {
        return Some(ErrorCode::InvalidProducerIdMapping);
    };
    if m.producer_id != producer_id {
        // A version 2 producer whose epoch overflowed already holds the next id while
        // the markers are written: that is a retriable wait, not a wrong mapping.
        if m.state.is_prepare()
            && m.next_producer_id != NO_PRODUCER_ID
            && m.next_producer_id == producer_id
        {
            return Some(ErrorCode::ConcurrentTransactions);
        }
        return Some(ErrorCode::InvalidProducerIdMapping);
    }
    if m.producer_epoch != producer_epoch {
        return Some(ErrorCode::ProducerFenced);
    }
    if m.state.is_prepare() {
        return Some(ErrorCode::ConcurrentTransactions);
    }
    None
}

/// The state after the markers of a Prepare* transaction are written (Kafka's
/// `prepareComplete` as applied by `completeTransitionTo`).
fn completed(m: &TransactionMetadata, now_ms: i64) -> TransactionMetadata {
    let mut next = m.clone();
    next.state = if m.state == TxnState::PrepareCommit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    next.partitions.clear();
    next.last_update_timestamp_ms = now_ms;
    if m.client_transaction_version.bumps_epoch_on_end() {
        if m.next_producer_id != NO_PRODUCER_ID {
            next.producer_id = m.next_producer_id;
            next.producer_epoch = 0;
        }
        next.last_producer_epoch = m.producer_epoch;
        next.previous_producer_id = m.producer_id;
    }
    next.next_producer_id = NO_PRODUCER_ID;
    next
}

impl TransactionCoordinatorShard {
    /// An empty shard for a partition led at `coordinator_epoch` (the partition's leader
    /// epoch; markers carry it). Replay the partition, then call [`loaded`](Self::loaded).
    pub fn new(config: TxnConfig, coordinator_epoch: i32) -> Self {
        Self {
            config,
            coordinator_epoch,
            txns: BTreeMap::new(),
            next_abort_check_ms: None,
            next_expiry_check_ms: None,
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    /// The state of `transactional_id`, if the shard holds it.
    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.txns.get(transactional_id)
    }

    /// Every transactional id and its state, in id order.
    pub fn transactions(&self) -> impl Iterator<Item = (&str, &TransactionMetadata)> {
        self.txns.iter().map(|(id, m)| (id.as_str(), m))
    }

    /// Applies one record of the partition (load, and the live path for its own records).
    /// A tombstone, or a Dead state, removes the transactional id.
    pub fn replay(&mut self, record: &TxnRecord) -> Result<(), TxnRecordError> {
        let decoded = record.decode()?;
        match decoded.value {
            Some(value) if value.state != TxnState::Dead => {
                self.txns
                    .insert(decoded.transactional_id, value.into_metadata());
            }
            _ => {
                self.txns.remove(&decoded.transactional_id);
            }
        }
        Ok(())
    }

    /// Writes `metadata` as `transactional_id`'s new state: a record, applied through replay.
    fn put(&mut self, out: &mut TxnOutput, transactional_id: &str, metadata: &TransactionMetadata) {
        let record = TxnRecord::transaction(transactional_id, Some(metadata));
        // Our own encoding of a valid state always decodes.
        let _ = self.replay(&record);
        out.records.push(record);
    }

    /// Writes a Prepare* state and asks for its markers; a transaction without
    /// partitions completes at once, as Kafka's marker manager does.
    fn prepare(
        &mut self,
        out: &mut TxnOutput,
        now_ms: i64,
        transactional_id: &str,
        m: TransactionMetadata,
    ) {
        self.put(out, transactional_id, &m);
        if m.partitions.is_empty() {
            self.put(out, transactional_id, &completed(&m, now_ms));
        } else {
            out.markers.push(self.marker_request(transactional_id, &m));
        }
    }

    fn marker_request(&self, transactional_id: &str, m: &TransactionMetadata) -> MarkerRequest {
        MarkerRequest {
            transactional_id: transactional_id.to_owned(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: self.coordinator_epoch,
            commit: m.state == TxnState::PrepareCommit,
            partitions: m.partitions.iter().cloned().collect(),
        }
    }

    /// Aborts `transactional_id`'s Ongoing transaction on the coordinator's own account
    /// (a new producer's InitProducerId, or its timeout), fencing the current producer:
    /// Kafka's `prepareFenceProducerEpoch` followed by an abort at the cluster's
    /// transaction version. With version 2 the abort bumps the epoch once more, so a
    /// retried EndTxn of the fenced producer cannot pass for a retry of this abort.
    fn fence_and_abort(&mut self, out: &mut TxnOutput, now_ms: i64, transactional_id: &str) {
        let Some(m) = self.txns.get(transactional_id) else {
            return;
        };
        let fenced = m.producer_epoch.checked_add(1).unwrap_or(m.producer_epoch);
        let version = TransactionVersion::from_feature_level(self.config.transaction_version_level);
        let (epoch, last_epoch) = if version.bumps_epoch_on_end() {
            (fenced.checked_add(1).unwrap_or(fenced), fenced)
        } else {
            (fenced, NO_PRODUCER_EPOCH)
        };
        let mut next = m.clone();
        next.state = TxnState::PrepareAbort;
        next.producer_epoch = epoch;
        next.last_producer_epoch = last_epoch;
        next.next_producer_id = NO_PRODUCER_ID;
        next.last_update_timestamp_ms = now_ms;
        next.client_transaction_version = version;
        self.prepare(out, now_ms, transactional_id, next);
    }

    /// Called once after the partition has been replayed: transactions in PrepareCommit
    /// or PrepareAbort get their markers again, a PrepareEpochFence state (never written
    /// by this crate, accepted from a log) is aborted, and the periodic checks start.
    pub fn loaded(&mut self, now_ms: i64) -> TxnOutput {
        let mut out = TxnOutput::default();
        self.start_timers(now_ms);
        let ids: Vec<String> = self.txns.keys().cloned().collect();
        for id in ids {
            let Some(m) = self.txns.get(&id) else {
                continue;
            };
            match m.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    let m = m.clone();
                    if m.partitions.is_empty() {
                        self.put(&mut out, &id, &completed(&m, now_ms));
                    } else {
                        out.markers.push(self.marker_request(&id, &m));
                    }
                }
                TxnState::PrepareEpochFence => {
                    let mut next = m.clone();
                    next.state = TxnState::PrepareAbort;
                    next.last_producer_epoch = NO_PRODUCER_EPOCH;
                    next.next_producer_id = NO_PRODUCER_ID;
                    next.last_update_timestamp_ms = now_ms;
                    next.client_transaction_version = TransactionVersion::V1;
                    self.prepare(&mut out, now_ms, &id, next);
                }
                _ => {}
            }
        }
        out
    }

    fn start_timers(&mut self, now_ms: i64) {
        if self.next_abort_check_ms.is_none() {
            self.next_abort_check_ms = Some(
                now_ms.saturating_add(self.config.abort_timed_out_transaction_cleanup_interval_ms),
            );
        }
        if self.next_expiry_check_ms.is_none() {
            self.next_expiry_check_ms = Some(
                now_ms.saturating_add(self.config.remove_expired_transaction_cleanup_interval_ms),
            );
        }
    }

    /// InitProducerId with a (non-null) transactional id. `producer_id`/`producer_epoch`
    /// are the request's (-1/-1 unless a KIP-360 producer recovers). When the shard needs
    /// a new producer id and `fresh_producer_id` is `None`, the output only says
    /// `needs_producer_id`: call again with one.
    #[allow(clippy::too_many_arguments)]
    pub fn init_producer_id(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        transactional_id: &str,
        transaction_timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
        fresh_producer_id: Option<i64>,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let fail = |out: &mut TxnOutput, code: ErrorCode| {
            out.reply(
                request_id,
                init_reply(
                    Some(for_version(code, api_version, 4)),
                    NO_PRODUCER_ID,
                    NO_PRODUCER_EPOCH,
                ),
            );
        };
        if transactional_id.is_empty()
            || (producer_id == NO_PRODUCER_ID) != (producer_epoch == NO_PRODUCER_EPOCH)
        {
            fail(&mut out, ErrorCode::InvalidRequest);
            return out;
        }
        if transaction_timeout_ms <= 0 || transaction_timeout_ms > self.config.max_timeout_ms {
            fail(&mut out, ErrorCode::InvalidTransactionTimeout);
            return out;
        }
        let expected = (producer_id != NO_PRODUCER_ID).then_some((producer_id, producer_epoch));

        let Some(m) = self.txns.get(transactional_id) else {
            let Some(new_id) = fresh_producer_id else {
                out.needs_producer_id = true;
                return out;
            };
            let created = TransactionMetadata {
                producer_id: new_id,
                previous_producer_id: NO_PRODUCER_ID,
                next_producer_id: NO_PRODUCER_ID,
                producer_epoch: 0,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms: transaction_timeout_ms,
                state: TxnState::Empty,
                partitions: Default::default(),
                start_timestamp_ms: -1,
                last_update_timestamp_ms: now_ms,
                client_transaction_version: TransactionVersion::V1,
            };
            self.put(&mut out, transactional_id, &created);
            out.reply(request_id, init_reply(None, new_id, 0));
            return out;
        };

        // Kafka's isValidProducerId: the expected id is current, or the previous one
        // whose epoch ran out (a retry after a rotation the producer did not hear of).
        let valid_producer = expected.is_none_or(|(id, epoch)| {
            id == m.producer_id || (id == m.previous_producer_id && epoch_exhausted(epoch))
        });
        if !valid_producer {
            fail(&mut out, ErrorCode::ProducerFenced);
            return out;
        }
        match m.state {
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::PrepareEpochFence
            | TxnState::Dead => {
                fail(&mut out, ErrorCode::ConcurrentTransactions);
                out
            }
            TxnState::Ongoing => {
                // Abort the open transaction first; the producer retries and then gets
                // a second bump (or a new id if this one exhausted the epoch).
                self.fence_and_abort(&mut out, now_ms, transactional_id);
                fail(&mut out, ErrorCode::ConcurrentTransactions);
                out
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = m.clone();
                next.state = TxnState::Empty;
                next.previous_producer_id = m.producer_id;
                next.next_producer_id = NO_PRODUCER_ID;
                next.timeout_ms = transaction_timeout_ms;
                next.partitions.clear();
                next.start_timestamp_ms = -1;
                next.last_update_timestamp_ms = now_ms;
                next.client_transaction_version = TransactionVersion::V1;
                if epoch_exhausted(m.producer_epoch)
                    && expected.is_none_or(|(_, epoch)| epoch == m.producer_epoch)
                {
                    let Some(new_id) = fresh_producer_id else {
                        out.needs_producer_id = true;
                        return out;
                    };
                    next.producer_id = new_id;
                    next.producer_epoch = 0;
                    next.last_producer_epoch = if expected.is_some() {
                        m.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                } else {
                    // Kafka's prepareIncrementProducerEpoch.
                    let (epoch, last) = match expected {
                        None => (m.producer_epoch + 1, NO_PRODUCER_EPOCH),
                        Some((_, e)) if e == m.producer_epoch => {
                            (m.producer_epoch + 1, m.producer_epoch)
                        }
                        // A retry of a bump that succeeded: answer the same epoch again.
                        Some((_, e)) if e == m.last_producer_epoch => {
                            (m.producer_epoch, m.last_producer_epoch)
                        }
                        Some(_) => {
                            fail(&mut out, ErrorCode::ProducerFenced);
                            return out;
                        }
                    };
                    next.producer_epoch = epoch;
                    next.last_producer_epoch = last;
                }
                let (id, epoch) = (next.producer_id, next.producer_epoch);
                self.put(&mut out, transactional_id, &next);
                out.reply(request_id, init_reply(None, id, epoch));
                out
            }
        }
    }

    /// Adds partitions (Kafka's handleAddPartitionsToTransaction). Returns the error for
    /// every partition, writing an Ongoing record when something is added.
    #[allow(clippy::too_many_arguments)]
    fn add_partitions(
        &mut self,
        out: &mut TxnOutput,
        now_ms: i64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        version: TransactionVersion,
    ) -> Option<ErrorCode> {
        if transactional_id.is_empty() {
            return Some(ErrorCode::InvalidRequest);
        }
        let m = self.txns.get(transactional_id);
        if let Some(code) = partition_call_error(m, producer_id, producer_epoch) {
            return Some(code);
        }
        let m = m?;
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return None;
        }
        let mut next = m.clone();
        if matches!(
            m.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) {
            next.start_timestamp_ms = now_ms;
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_timestamp_ms = now_ms;
        next.client_transaction_version = version;
        self.put(out, transactional_id, &next);
        None
    }

    /// Kafka's handleVerifyPartitionsInTransaction (KIP-890 part 1): no state change.
    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<((String, i32), Option<ErrorCode>)> {
        if transactional_id.is_empty() {
            return same_error(partitions, Some(ErrorCode::InvalidRequest));
        }
        let m = self.txns.get(transactional_id);
        if let Some(code) = partition_call_error(m, producer_id, producer_epoch) {
            return same_error(partitions, Some(code));
        }
        partitions
            .iter()
            .map(|p| {
                let in_txn = m.is_some_and(|m| m.partitions.contains(p));
                (
                    p.clone(),
                    (!in_txn).then_some(ErrorCode::TransactionAbortable),
                )
            })
            .collect()
    }

    /// AddPartitionsToTxn v0-3 (from a producer): one transaction; every partition gets
    /// the same error. Topic authorization and unknown partitions are the broker's to
    /// check first (it answers those itself, with OPERATION_NOT_ATTEMPTED for the rest).
    #[allow(clippy::too_many_arguments)]
    pub fn add_partitions_to_txn(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let code = self
            .add_partitions(
                &mut out,
                now_ms,
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
                TransactionVersion::V1,
            )
            .map(|c| for_version(c, api_version, 2));
        out.reply(
            request_id,
            TxnReply::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
                    topic_results(&same_error(partitions, code)),
                ),
            ),
        );
        out
    }

    /// One transaction of AddPartitionsToTxn v4+ (from a broker): `verify_only` checks
    /// (TRANSACTION_ABORTABLE for a partition not in the transaction), otherwise adds
    /// (v5+ adds for a version 2 producer). Replies with an `AddPartitionsToTxnResult`.
    pub fn add_partitions_to_txn_batched(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        transaction: &TxnPartitions,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let results = if transaction.verify_only {
            self.verify_partitions(
                &transaction.transactional_id,
                transaction.producer_id,
                transaction.producer_epoch,
                &transaction.partitions,
            )
        } else {
            let version = if api_version >= 5 {
                TransactionVersion::V2
            } else {
                TransactionVersion::V1
            };
            let code = self.add_partitions(
                &mut out,
                now_ms,
                &transaction.transactional_id,
                transaction.producer_id,
                transaction.producer_epoch,
                &transaction.partitions,
                version,
            );
            same_error(&transaction.partitions, code)
        };
        out.reply(
            request_id,
            TxnReply::AddPartitionsToTxnResult(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(str_bytes(
                        &transaction.transactional_id,
                    )))
                    .with_topic_results(topic_results(&results)),
            ),
        );
        out
    }

    /// The produce path's check of a transactional batch (KIP-890): a version 1 producer's
    /// partitions must already be in its transaction (verify only); a version 2 producer's
    /// are added implicitly. Replies with an `AddPartitionsToTxnResult` holding the
    /// coordinator's error per partition; map them for the producer with
    /// [`produce_verification_error`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify_for_produce(
        &mut self,
        now_ms: i64,
        request_id: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        version: TransactionVersion,
    ) -> TxnOutput {
        let transaction = TxnPartitions {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch,
            verify_only: version == TransactionVersion::V1,
            partitions: partitions.to_vec(),
        };
        self.add_partitions_to_txn_batched(now_ms, request_id, 5, &transaction)
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition.
    #[allow(clippy::too_many_arguments)]
    pub fn add_offsets_to_txn(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let partition = (
            OFFSETS_TOPIC.to_owned(),
            strom_types::internal_topic_partition(group_id, self.config.offsets_topic_partitions),
        );
        let code = self
            .add_partitions(
                &mut out,
                now_ms,
                transactional_id,
                producer_id,
                producer_epoch,
                &[partition],
                TransactionVersion::V1,
            )
            .map(|c| for_version(c, api_version, 2));
        out.reply(
            request_id,
            TxnReply::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(code_of(code)),
            ),
        );
        out
    }

    /// EndTxn. A commit or abort of an Ongoing transaction writes PrepareCommit or
    /// PrepareAbort and answers in the same output, with the markers to write (Kafka
    /// answers once that record is durable, before the markers; strom's broker writes the
    /// markers and completes the transaction first, so the producer's next transaction
    /// never meets CONCURRENT_TRANSACTIONS). EndTxn v5+ (transaction version 2) bumps the epoch and the reply carries the
    /// producer id and epoch to use next; if the epoch is exhausted the shard needs a
    /// fresh producer id (see `needs_producer_id`) and the reply carries it at epoch 0.
    #[allow(clippy::too_many_arguments)]
    pub fn end_txn(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        fresh_producer_id: Option<i64>,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let fail = |out: &mut TxnOutput, code: ErrorCode| {
            out.reply(
                request_id,
                end_reply(
                    Some(for_version(code, api_version, 2)),
                    NO_PRODUCER_ID,
                    NO_PRODUCER_EPOCH,
                ),
            );
        };
        if transactional_id.is_empty() {
            fail(&mut out, ErrorCode::InvalidRequest);
            return out;
        }
        let Some(m) = self.txns.get(transactional_id) else {
            fail(&mut out, ErrorCode::InvalidProducerIdMapping);
            return out;
        };
        let request_version = TransactionVersion::for_end_txn(api_version);
        let state_v2 = m.client_transaction_version.bumps_epoch_on_end();
        // Version 2 retries: the answer to the first try bumped the epoch (or moved to a
        // new producer id because the epoch ran out).
        let retry_on_overflow = state_v2
            && m.previous_producer_id == producer_id
            && producer_epoch == i16::MAX - 1
            && m.producer_epoch == 0;
        let retry_on_bump =
            state_v2 && i32::from(m.producer_epoch) == i32::from(producer_epoch) + 1;
        let valid_epoch = if state_v2 {
            match m.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
                TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    retry_on_bump || retry_on_overflow
                }
                _ => producer_epoch == m.producer_epoch,
            }
        } else {
            producer_epoch == m.producer_epoch
        };
        if m.producer_id != producer_id && !retry_on_overflow {
            fail(&mut out, ErrorCode::InvalidProducerIdMapping);
            return out;
        }
        if !valid_epoch {
            fail(&mut out, ErrorCode::ProducerFenced);
            return out;
        }
        let wanted = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        match m.state {
            TxnState::Ongoing => {
                let bump = request_version.bumps_epoch_on_end();
                let next_producer_id = if bump && epoch_exhausted(m.producer_epoch) {
                    match fresh_producer_id {
                        Some(id) => id,
                        None => {
                            out.needs_producer_id = true;
                            return out;
                        }
                    }
                } else {
                    NO_PRODUCER_ID
                };
                let mut next = m.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                if bump {
                    next.producer_epoch =
                        m.producer_epoch.checked_add(1).unwrap_or(m.producer_epoch);
                    next.last_producer_epoch = m.producer_epoch;
                }
                next.next_producer_id = next_producer_id;
                next.last_update_timestamp_ms = now_ms;
                next.client_transaction_version = request_version;
                let (id, epoch) = if next_producer_id != NO_PRODUCER_ID {
                    (next_producer_id, 0)
                } else {
                    (next.producer_id, next.producer_epoch)
                };
                self.prepare(&mut out, now_ms, transactional_id, next);
                out.reply(request_id, end_reply(None, id, epoch));
            }
            // A retry of an EndTxn that already completed.
            state if state == wanted => {
                out.reply(request_id, end_reply(None, m.producer_id, m.producer_epoch));
            }
            TxnState::PrepareCommit if commit => fail(&mut out, ErrorCode::ConcurrentTransactions),
            TxnState::PrepareAbort if !commit => fail(&mut out, ErrorCode::ConcurrentTransactions),
            _ => fail(&mut out, ErrorCode::InvalidTxnState),
        }
        out
    }

    /// Every marker of a [`MarkerRequest`] is written: the transaction completes
    /// (CompleteCommit or CompleteAbort). Ignored unless the id is still in that Prepare
    /// state with that producer id and epoch.
    pub fn markers_written(
        &mut self,
        now_ms: i64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        if let Some(m) = self.txns.get(transactional_id) {
            if m.state.is_prepare()
                && m.producer_id == producer_id
                && m.producer_epoch == producer_epoch
            {
                let next = completed(m, now_ms);
                self.put(&mut out, transactional_id, &next);
            }
        }
        out
    }

    /// DescribeTransactions for one transactional id of this shard.
    pub fn describe_transaction(
        &self,
        _now_ms: i64,
        request_id: u64,
        transactional_id: &str,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let mut state = describe_transactions_response::TransactionState::default()
            .with_transactional_id(TransactionalId(str_bytes(transactional_id)));
        match self.txns.get(transactional_id) {
            _ if transactional_id.is_empty() => state.error_code = ErrorCode::InvalidRequest.code(),
            None => state.error_code = ErrorCode::TransactionalIdNotFound.code(),
            Some(m) => {
                let mut topics: Vec<describe_transactions_response::TopicData> = Vec::new();
                for (topic, partition) in &m.partitions {
                    match topics.last_mut() {
                        Some(t) if t.topic.as_str() == topic => t.partitions.push(*partition),
                        _ => topics.push(
                            describe_transactions_response::TopicData::default()
                                .with_topic(TopicName(str_bytes(topic)))
                                .with_partitions(vec![*partition]),
                        ),
                    }
                }
                state = state
                    .with_transaction_state(str_bytes(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.start_timestamp_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(topics);
            }
        }
        out.reply(request_id, TxnReply::DescribeTransaction(state));
        out
    }

    /// This shard's ListTransactions answer (Kafka's listTransactionStates).
    pub fn list_transactions(
        &self,
        now_ms: i64,
        request_id: u64,
        filter: &ListTransactionsFilter,
    ) -> TxnOutput {
        let mut out = TxnOutput::default();
        let mut response = ListTransactionsResponse::default();
        let pattern = match filter.transactional_id_pattern.as_deref() {
            None => None,
            Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(re) => Some(re),
                Err(_) => {
                    response.error_code = ErrorCode::InvalidRegularExpression.code();
                    out.reply(request_id, TxnReply::ListTransactions(response));
                    return out;
                }
            },
        };
        let mut states = Vec::new();
        for name in &filter.states {
            match TxnState::from_name(name) {
                Some(state) => states.push(state),
                None => response.unknown_state_filters.push(str_bytes(name)),
            }
        }
        for (id, m) in &self.txns {
            let excluded = m.state == TxnState::Dead
                || (!filter.producer_ids.is_empty()
                    && !filter.producer_ids.contains(&m.producer_id))
                || (!filter.states.is_empty() && !states.contains(&m.state))
                || (filter.duration_filter_ms >= 0
                    && now_ms.saturating_sub(m.start_timestamp_ms) <= filter.duration_filter_ms)
                || pattern.as_ref().is_some_and(|re| !re.is_match(id));
            if !excluded {
                response.transaction_states.push(
                    list_transactions_response::TransactionState::default()
                        .with_transactional_id(TransactionalId(str_bytes(id)))
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_transaction_state(str_bytes(m.state.name())),
                );
            }
        }
        out.reply(request_id, TxnReply::ListTransactions(response));
        out
    }

    /// Runs the periodic checks that are due: every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, Ongoing transactions
    /// open longer than their timeout are aborted with a bumped epoch (fencing their
    /// producer); every `transaction.remove.expired.transaction.cleanup.interval.ms`,
    /// ids idle in Empty/CompleteCommit/CompleteAbort for `transactional.id.expiration.ms`
    /// are tombstoned.
    pub fn tick(&mut self, now_ms: i64) -> TxnOutput {
        let mut out = TxnOutput::default();
        if self.next_abort_check_ms.is_none() || self.next_expiry_check_ms.is_none() {
            self.start_timers(now_ms);
            return out;
        }
        if self.next_abort_check_ms.is_some_and(|t| t <= now_ms) {
            let timed_out: Vec<String> = self
                .txns
                .iter()
                .filter(|(_, m)| {
                    m.state == TxnState::Ongoing
                        && m.start_timestamp_ms.saturating_add(i64::from(m.timeout_ms)) < now_ms
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in timed_out {
                self.fence_and_abort(&mut out, now_ms, &id);
            }
            self.next_abort_check_ms = Some(
                now_ms.saturating_add(self.config.abort_timed_out_transaction_cleanup_interval_ms),
            );
        }
        if self.next_expiry_check_ms.is_some_and(|t| t <= now_ms) {
            let horizon = now_ms.saturating_sub(self.config.transactional_id_expiration_ms);
            let expired: Vec<String> = self
                .txns
                .iter()
                .filter(|(_, m)| {
                    m.state.expiration_allowed() && m.last_update_timestamp_ms <= horizon
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                let record = TxnRecord::transaction(&id, None);
                let _ = self.replay(&record);
                out.records.push(record);
            }
            self.next_expiry_check_ms = Some(
                now_ms.saturating_add(self.config.remove_expired_transaction_cleanup_interval_ms),
            );
        }
        out
    }

    /// When [`tick`](Self::tick) next has work to check (`None` before the first
    /// `loaded` or `tick`).
    pub fn next_deadline_ms(&self) -> Option<i64> {
        match (self.next_abort_check_ms, self.next_expiry_check_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The error a producer gets for its transactional batch from the coordinator's
/// verification `code`, as Kafka's produce path maps it (AddPartitionsToTxnManager):
/// PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH, and TRANSACTION_ABORTABLE becomes
/// INVALID_TXN_STATE for Produce v10 and older, which predate it.
pub fn produce_verification_error(code: i16, produce_api_version: i16) -> i16 {
    if code == ErrorCode::ProducerFenced.code() {
        ErrorCode::InvalidProducerEpoch.code()
    } else if code == ErrorCode::TransactionAbortable.code() && produce_api_version <= 10 {
        ErrorCode::InvalidTxnState.code()
    } else {
        code
    }
}
