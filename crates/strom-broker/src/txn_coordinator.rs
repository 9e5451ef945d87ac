//! The transaction coordinator: one sans-io shard (`strom_transactions::TransactionCoordinatorShard`)
//! per `__transaction_state` partition this broker leads, on the same
//! [`CoordinatorRuntime`] as the group coordinator. This module adds what is particular
//! to transactions: creating the topic, routing a transactional id to its shard, handing
//! out fresh producer ids when a shard asks for one, and writing the commit or abort
//! markers a shard requests (to data partitions directly, to `__consumer_offsets` through
//! the group coordinator so its shard learns of them), then completing the transaction.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use strom_transactions::{
    MarkerRequest, TransactionCoordinatorShard, TxnConfig, TxnOutput, TxnRecord, TxnReply,
};
use strom_types::ErrorCode;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::coordinator_runtime::{
    CoordinatorRuntime, CoordinatorShard, ReplayFailed, Replayed, ShardOutput, ShardRecord,
};
use crate::internal_log::BatchProducer;
use crate::internal_topics::{ensure_created, InternalTopic};

pub use strom_transactions::TRANSACTION_STATE_TOPIC;

/// A shard's answer: its reply, or that it needs a fresh producer id to give one.
#[derive(Debug)]
pub enum TxnAnswer {
    Reply(TxnReply),
    NeedsProducerId,
}

type TxnShardOutput = ShardOutput<TxnAnswer, MarkerRequest>;

/// A shard's output for the runtime; `request_id` is the call's own request, which is
/// answered with [`TxnAnswer::NeedsProducerId`] when the shard asks for an id.
fn shard_output(output: TxnOutput, request_id: Option<u64>) -> TxnShardOutput {
    let mut replies: Vec<(u64, TxnAnswer)> = output
        .replies
        .into_iter()
        .map(|(id, reply)| (id, TxnAnswer::Reply(reply)))
        .collect();
    if output.needs_producer_id {
        if let Some(id) = request_id {
            replies.push((id, TxnAnswer::NeedsProducerId));
        }
    }
    ShardOutput {
        records: output
            .records
            .into_iter()
            .map(|r| ShardRecord {
                key: r.key,
                value: r.value,
            })
            .collect(),
        transactional: Vec::new(),
        replies,
        effects: output.markers,
    }
}

impl CoordinatorShard for TransactionCoordinatorShard {
    type Reply = TxnAnswer;
    type Effect = MarkerRequest;

    fn replay(&mut self, item: Replayed<'_>) -> Result<(), ReplayFailed> {
        match item {
            Replayed::Record { key, value, .. } => TransactionCoordinatorShard::replay(
                self,
                &TxnRecord {
                    key: key.to_vec(),
                    value: value.map(<[u8]>::to_vec),
                },
            )
            .map_err(|e| ReplayFailed(e.to_string())),
            // Nothing writes transactions into __transaction_state.
            Replayed::Marker { .. } => Ok(()),
        }
    }

    fn loaded(&mut self, now_ms: i64) -> TxnShardOutput {
        shard_output(TransactionCoordinatorShard::loaded(self, now_ms), None)
    }

    fn tick(&mut self, now_ms: i64) -> TxnShardOutput {
        shard_output(TransactionCoordinatorShard::tick(self, now_ms), None)
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        TransactionCoordinatorShard::next_deadline_ms(self)
    }

    fn marker_written(&mut self, _: i64, _: i64, _: i64, _: bool) -> TxnShardOutput {
        TxnShardOutput::default()
    }
}

/// The transaction coordinator's settings from the broker's.
pub fn txn_config(config: &BrokerConfig) -> TxnConfig {
    TxnConfig {
        max_timeout_ms: config.transaction_max_timeout_ms,
        transactional_id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
        abort_timed_out_transaction_cleanup_interval_ms: i64::from(
            config.transaction_abort_timed_out_cleanup_interval_ms,
        ),
        remove_expired_transaction_cleanup_interval_ms: i64::from(
            config.transaction_remove_expired_cleanup_interval_ms,
        ),
        offsets_topic_partitions: config.offsets_topic_num_partitions,
        transaction_version_level: TRANSACTION_VERSION_LEVEL,
    }
}

/// The `transaction.version` feature level this broker finalizes (KIP-890 part 2).
pub const TRANSACTION_VERSION_LEVEL: i16 = 2;

/// How long marker writes back off between attempts on a partition that refuses them.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct TransactionCoordinator {
    config: TxnConfig,
    runtime: CoordinatorRuntime<TransactionCoordinatorShard>,
    /// Serializes creating `__transaction_state`.
    creating: tokio::sync::Mutex<()>,
}

impl TransactionCoordinator {
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            runtime: CoordinatorRuntime::new("transaction"),
            creating: tokio::sync::Mutex::new(()),
        }
    }

    /// The `__transaction_state` partition that owns a transactional id.
    pub fn partition_for(&self, broker: &Broker, transactional_id: &str) -> i32 {
        strom_transactions::transaction_partition(
            transactional_id,
            broker.config.transaction_state_log_num_partitions,
        )
    }

    /// Creates `__transaction_state` if needed and waits until every shard this node leads
    /// is loaded.
    pub async fn ensure_loaded(&self, broker: &Arc<Broker>) -> Result<(), ErrorCode> {
        if broker
            .image()
            .topic(TRANSACTION_STATE_TOPIC)
            .is_some_and(|t| t.partitions.len() == self.runtime.loaded_count())
        {
            return Ok(());
        }
        if broker.image().topic(TRANSACTION_STATE_TOPIC).is_none() {
            let _creating = self.creating.lock().await;
            if broker.image().topic(TRANSACTION_STATE_TOPIC).is_none() {
                let config = &broker.config;
                ensure_created(
                    broker,
                    &InternalTopic {
                        name: TRANSACTION_STATE_TOPIC,
                        partitions: config.transaction_state_log_num_partitions,
                        replication_factor: config.transaction_state_log_replication_factor,
                        segment_bytes: config.transaction_state_log_segment_bytes,
                        min_insync_replicas: Some(config.transaction_state_log_min_isr),
                        compression: "uncompressed",
                    },
                )
                .await?;
            }
        }
        self.runtime
            .wait_for_loads(broker, TRANSACTION_STATE_TOPIC)
            .await
    }

    /// Loads a shard for every hosted `__transaction_state` partition not loaded yet;
    /// transactions a shard finds half done get their markers written.
    pub fn load_shards(&self, broker: &Arc<Broker>) {
        let Some(topic) = broker.image().topic(TRANSACTION_STATE_TOPIC).cloned() else {
            return;
        };
        for index in topic.partitions.keys() {
            let partition = broker.partition(TRANSACTION_STATE_TOPIC, *index);
            if !self.runtime.follow_leadership(*index, partition.as_deref()) {
                continue;
            }
            let Some(partition) = partition else { continue };
            let fresh =
                TransactionCoordinatorShard::new(self.config.clone(), partition.leader_epoch());
            match self
                .runtime
                .load(*index, partition, fresh, |_, _| TxnShardOutput::default())
            {
                Ok(markers) => spawn_markers(broker, *index, markers),
                Err(e) => {
                    warn!(partition = index, error = %e, "loading a transaction coordinator shard failed")
                }
            }
        }
    }

    /// Runs `op` on the shard that owns `transactional_id` and returns its reply once the
    /// markers it asked for are written (so the producer's next transaction does not meet
    /// CONCURRENT_TRANSACTIONS). `op` gets a fresh producer id when the shard asked for one.
    pub async fn call(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        op: impl Fn(&mut TransactionCoordinatorShard, i64, u64, Option<i64>) -> TxnOutput,
    ) -> Result<TxnReply, ErrorCode> {
        self.ensure_loaded(broker).await?;
        let index = self.partition_for(broker, transactional_id);
        let mut fresh_producer_id = None;
        // A fresh id is asked for at most once per call; twice means the shard changed
        // between the two calls, and the client retries.
        for _ in 0..2 {
            let (answer, markers) = self
                .runtime
                .call(index, |shard, now, request_id| {
                    shard_output(
                        op(shard, now, request_id, fresh_producer_id),
                        Some(request_id),
                    )
                })
                .await?;
            match answer {
                TxnAnswer::Reply(reply) => {
                    for request in markers {
                        write_markers(broker, index, request).await;
                    }
                    return Ok(reply);
                }
                TxnAnswer::NeedsProducerId => {
                    spawn_markers(broker, index, markers);
                    fresh_producer_id = Some(broker.next_producer_id().await.map_err(|e| {
                        warn!(error = %e, "allocating a producer id failed");
                        ErrorCode::CoordinatorNotAvailable
                    })?);
                }
            }
        }
        Err(ErrorCode::ConcurrentTransactions)
    }

    /// Runs `op` on every loaded shard (ListTransactions) and returns their replies.
    pub async fn call_all(
        &self,
        broker: &Arc<Broker>,
        op: impl Fn(&TransactionCoordinatorShard, i64, u64) -> TxnOutput,
    ) -> Result<Vec<TxnReply>, ErrorCode> {
        self.ensure_loaded(broker).await?;
        let answers = self
            .runtime
            .call_all(|shard, now, id| shard_output(op(shard, now, id), Some(id)))
            .await;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                TxnAnswer::Reply(reply) => Some(reply),
                TxnAnswer::NeedsProducerId => None,
            })
            .collect())
    }
}

/// Writes each request's markers in the background.
fn spawn_markers(broker: &Arc<Broker>, index: i32, requests: Vec<MarkerRequest>) {
    for request in requests {
        let broker = broker.clone();
        tokio::spawn(async move { write_markers(&broker, index, request).await });
    }
}

/// Writes the commit or abort marker to every partition of the transaction (as
/// WriteTxnMarkers does), then appends the record that completes it on shard `index`.
/// A partition that refuses is retried until it takes the marker or is gone.
pub async fn write_markers(broker: &Arc<Broker>, index: i32, request: MarkerRequest) {
    let producer = BatchProducer {
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
    };
    for (topic, partition) in &request.partitions {
        loop {
            match write_marker(broker, topic, *partition, producer, &request).await {
                Ok(()) => break,
                // The partition has seen a newer producer epoch or coordinator: this
                // marker is stale there and will never be taken (Kafka gives up too).
                Err(
                    code @ (ErrorCode::InvalidProducerEpoch
                    | ErrorCode::ProducerFenced
                    | ErrorCode::TransactionCoordinatorFenced),
                ) => {
                    warn!(
                        transactional_id = %request.transactional_id,
                        topic,
                        partition,
                        error = ?code,
                        "a transaction marker was refused as stale; not retrying"
                    );
                    break;
                }
                Err(code) => {
                    warn!(
                        transactional_id = %request.transactional_id,
                        topic,
                        partition,
                        error = ?code,
                        "writing a transaction marker failed; retrying"
                    );
                    tokio::time::sleep(MARKER_RETRY_BACKOFF).await;
                }
            }
        }
    }
    debug!(
        transactional_id = %request.transactional_id,
        commit = request.commit,
        partitions = request.partitions.len(),
        "transaction markers written"
    );
    let completed = broker
        .transactions
        .runtime
        .run(index, |shard, now| {
            shard_output(
                shard.markers_written(
                    now,
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                ),
                None,
            )
        })
        .await;
    match completed {
        Ok(more) => spawn_markers(broker, index, more),
        Err(code) => warn!(
            transactional_id = %request.transactional_id,
            error = ?code,
            "completing a transaction failed; it completes when the shard is loaded again"
        ),
    }
}

/// One partition's marker, written by the partition's leader: here, or sent to it as
/// WriteTxnMarkers (Kafka's TransactionMarkerChannelManager). A partition that no longer
/// exists counts as written, as in Kafka.
async fn write_marker(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    producer: BatchProducer,
    request: &MarkerRequest,
) -> Result<(), ErrorCode> {
    let image = broker.image();
    let Some(spec) = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition))
    else {
        return Ok(());
    };
    if spec.leader == broker.config.node_id || broker.config.cluster.is_single_voter() {
        return crate::apis::write_txn_markers::write_one(
            broker,
            topic,
            partition,
            producer,
            request.coordinator_epoch,
            request.commit,
        )
        .await;
    }
    let address = broker
        .inter_broker_address(&image, spec.leader)
        .ok_or(ErrorCode::NotLeaderOrFollower)?;
    drop(image);
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(producer.producer_epoch)
        .with_transaction_result(request.commit)
        .with_coordinator_epoch(request.coordinator_epoch)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_indexes(vec![partition])]);
    let response = broker
        .node_rpc
        .call_kafka(
            &address,
            &WriteTxnMarkersRequest::default().with_markers(vec![marker]),
            1,
            MARKER_REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| {
            debug!(topic, partition, error = %e, "sending a transaction marker failed");
            ErrorCode::NetworkException
        })?;
    let code = response
        .markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map_or(ErrorCode::UnknownServerError.code(), |p| p.error_code);
    match ErrorCode::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(code),
    }
}

/// How long a marker sent to another broker may take.
const MARKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the transaction shards' timers (timeouts, expiry) until the task is dropped.
pub async fn run_timers(broker: Arc<Broker>) {
    let runtime = RuntimeRef(broker.clone());
    crate::coordinator_runtime::run_timers(runtime, |markers: Vec<MarkerRequest>| {
        let broker = broker.clone();
        async move {
            for request in markers {
                let index = broker
                    .transactions
                    .partition_for(&broker, &request.transactional_id);
                let broker = broker.clone();
                tokio::spawn(async move { write_markers(&broker, index, request).await });
            }
        }
    })
    .await;
}

/// The transaction runtime, reached through the broker that owns it.
struct RuntimeRef(Arc<Broker>);

impl std::ops::Deref for RuntimeRef {
    type Target = CoordinatorRuntime<TransactionCoordinatorShard>;
    fn deref(&self) -> &Self::Target {
        &self.0.transactions.runtime
    }
}
