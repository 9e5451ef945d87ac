//! Transaction administration: listing transactions on every broker
//! (ListTransactions), describing transactional ids at their coordinators
//! (DescribeTransactions) and the producers of partitions at their leaders
//! (DescribeProducers), as Kafka's admin client does.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::{
    describe_producers_request::TopicRequest, describe_transactions_response, ApiKey,
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    ListTransactionsRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::admin::Admin;
use crate::client::BrokerInfo;
use crate::coordinator::{CoordinatorType, COORDINATOR_LOAD_IN_PROGRESS};
use crate::error::{check, Error, Result};
use crate::groups::TopicPartitions;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// ListTransactions v1 added the duration filter.
const FIRST_DURATION_FILTER_VERSION: i16 = 1;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Which transactions ListTransactions returns; empty lists match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilters {
    /// Kafka's state names, e.g. "Ongoing", "CompleteCommit".
    pub states: Vec<String>,
    pub producer_ids: Vec<i64>,
    /// Only transactions running for longer than this (ListTransactions v1+).
    pub min_duration_ms: Option<i64>,
}

/// A transaction as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    /// The broker that listed it (its coordinator).
    pub coordinator: i32,
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub transactional_id: String,
    pub coordinator: BrokerInfo,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the current transaction started; `None` when none is open.
    pub start_time_ms: Option<i64>,
    /// The partitions in the transaction, sorted.
    pub partitions: Vec<TopicPartitions>,
}

/// One producer of a partition, from DescribeProducers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    /// `None` when the broker does not know (-1).
    pub last_timestamp_ms: Option<i64>,
    /// `None` when no transaction marker has been written for it.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn non_negative<T: Copy + PartialOrd + Default>(value: T) -> Option<T> {
    (value >= T::default()).then_some(value)
}

/// Topic partitions grouped by topic, both sorted.
fn partitions_from(topics: Vec<describe_transactions_response::TopicData>) -> Vec<TopicPartitions> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for t in topics {
        by_topic
            .entry(t.topic.0.to_string())
            .or_default()
            .extend(t.partitions);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            partitions.dedup();
            TopicPartitions { topic, partitions }
        })
        .collect()
}

fn describe_transaction(
    state: describe_transactions_response::TransactionState,
    coordinator: BrokerInfo,
) -> Result<TransactionDescription> {
    let id = state.transactional_id.0.to_string();
    check(
        state.error_code,
        None,
        CoordinatorType::Transaction.describe(&id),
    )?;
    Ok(TransactionDescription {
        transactional_id: id,
        coordinator,
        state: state.transaction_state.to_string(),
        producer_id: state.producer_id.0,
        producer_epoch: state.producer_epoch,
        timeout_ms: state.transaction_timeout_ms,
        start_time_ms: non_negative(state.transaction_start_time_ms),
        partitions: partitions_from(state.topics),
    })
}

impl Admin {
    /// Transactions on every broker (each lists those it coordinates),
    /// sorted by transactional id.
    pub async fn list_transactions(
        &mut self,
        filters: &TransactionFilters,
    ) -> Result<Vec<ListedTransaction>> {
        let mut listed = Vec::new();
        for id in self.client().broker_ids().await? {
            listed.extend(self.list_transactions_on(id, filters).await?);
        }
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    async fn list_transactions_on(
        &mut self,
        broker: i32,
        filters: &TransactionFilters,
    ) -> Result<Vec<ListedTransaction>> {
        let deadline = Instant::now() + self.client().config().request_timeout;
        loop {
            let conn = self.client().broker_connection(broker).await?;
            let version = conn.version(ApiKey::ListTransactions)?;
            let mut request = ListTransactionsRequest::default()
                .with_state_filters(filters.states.iter().map(|st| s(st)).collect())
                .with_producer_id_filters(
                    filters
                        .producer_ids
                        .iter()
                        .map(|&p| ProducerId(p))
                        .collect(),
                );
            if let Some(ms) = filters.min_duration_ms {
                if version < FIRST_DURATION_FILTER_VERSION {
                    return Err(Error::UnsupportedVersion {
                        addr: conn.addr().to_owned(),
                        api: "ListTransactions with a duration filter".to_owned(),
                    });
                }
                request.duration_filter = ms;
            }
            let response = conn.send(&request).await?;
            // Only a loading coordinator is worth waiting for (as Kafka's admin client does).
            if response.error_code == COORDINATOR_LOAD_IN_PROGRESS && Instant::now() < deadline {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            check(
                response.error_code,
                None,
                format!("list transactions on broker {broker}"),
            )?;
            if !response.unknown_state_filters.is_empty() {
                let unknown: Vec<String> = response
                    .unknown_state_filters
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                tracing::warn!(broker, ?unknown, "the broker does not know these states");
            }
            return Ok(response
                .transaction_states
                .into_iter()
                .map(|t| ListedTransaction {
                    transactional_id: t.transactional_id.0.to_string(),
                    producer_id: t.producer_id.0,
                    state: t.transaction_state.to_string(),
                    coordinator: broker,
                })
                .collect());
        }
    }

    /// Describes transactional ids, each at its transaction coordinator.
    /// Results are per id, in the order given; an unknown id is
    /// TRANSACTIONAL_ID_NOT_FOUND.
    pub async fn describe_transactions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        let kind = CoordinatorType::Transaction;
        // One batched lookup first; an id it fails for is looked up (and
        // retried) again on its own below.
        if ids.len() > 1 {
            self.client().find_coordinators_of(kind, ids).await?;
        }
        let timeout = self.client().config().request_timeout;
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            let sent = self
                .client()
                .send_to_coordinator_of(
                    kind,
                    id,
                    ApiKey::DescribeTransactions,
                    i16::MAX,
                    timeout,
                    |_| {
                        DescribeTransactionsRequest::default()
                            .with_transactional_ids(vec![TransactionalId(s(id))])
                    },
                    |r| r.transaction_states.first().map(|t| t.error_code),
                )
                .await;
            let result = match sent {
                Ok((response, _)) => {
                    let coordinator = self.client().coordinator_of(kind, id).await?;
                    response
                        .transaction_states
                        .into_iter()
                        .find(|t| t.transactional_id.0.as_str() == id)
                        .ok_or_else(|| {
                            Error::Protocol(format!(
                                "DescribeTransactions response does not mention {}",
                                kind.describe(id)
                            ))
                        })
                        .and_then(|state| describe_transaction(state, coordinator))
                }
                Err(e) => Err(e),
            };
            results.push((id.clone(), result));
        }
        Ok(results)
    }

    /// The active producers of some partitions of `topic` (all partitions
    /// when `partitions` is empty), each asked of the partition's leader.
    /// Results are per partition, sorted; a moved leader is looked up again
    /// until the request timeout has passed.
    pub async fn describe_producers(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Result<Vec<ProducerDescription>>)>> {
        let wait = self.client().config().request_timeout;
        let deadline = Instant::now() + wait;
        let existing: Vec<i32> = self
            .client()
            .topic(topic, false, wait)
            .await?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        let mut pending: Vec<i32> = if partitions.is_empty() {
            existing.clone()
        } else {
            partitions.to_vec()
        };
        pending.sort_unstable();
        pending.dedup();
        let mut done: BTreeMap<i32, Result<Vec<ProducerDescription>>> = BTreeMap::new();
        pending.retain(|p| {
            let exists = existing.contains(p);
            if !exists {
                let message = format!("topic {topic} has no partition {p}");
                let context = format!("{topic}-{p}");
                done.insert(
                    *p,
                    Err(Error::kafka(
                        UNKNOWN_TOPIC_OR_PARTITION,
                        Some(message),
                        context,
                    )),
                );
            }
            exists
        });
        while !pending.is_empty() {
            let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            let mut retry = Vec::new();
            for &p in &pending {
                match self.client().leader(topic, p, wait).await {
                    Ok(leader) => by_leader.entry(leader).or_default().push(p),
                    Err(e) if is_moved(&e) && Instant::now() < deadline => retry.push(p),
                    Err(e) => {
                        done.insert(p, Err(e));
                    }
                }
            }
            for (leader, ps) in by_leader {
                let mut answered = match self.describe_producers_on(leader, topic, &ps).await {
                    Ok(answered) => answered,
                    // A broken connection fails all of its partitions alike.
                    Err(e) if e.is_retriable() && Instant::now() < deadline => {
                        retry.extend(ps);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for p in ps {
                    let result = answered.remove(&p).unwrap_or_else(|| {
                        Err(Error::Protocol(format!(
                            "the DescribeProducers response does not mention {topic}-{p}"
                        )))
                    });
                    match result {
                        Err(e) if is_moved(&e) && Instant::now() < deadline => retry.push(p),
                        result => {
                            done.insert(p, result);
                        }
                    }
                }
            }
            if !retry.is_empty() {
                self.client().invalidate(topic);
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            pending = retry;
        }
        Ok(done.into_iter().collect())
    }

    /// One DescribeProducers request to `broker`; per partition the
    /// producers or the partition's error.
    async fn describe_producers_on(
        &mut self,
        broker: i32,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Result<Vec<ProducerDescription>>>> {
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(partitions.to_vec())]);
        let conn = self.client().broker_connection(broker).await?;
        conn.version(ApiKey::DescribeProducers)?;
        let response = conn.send(&request).await?;
        Ok(producer_answers(response, topic))
    }
}

fn producer_answers(
    response: DescribeProducersResponse,
    topic: &str,
) -> BTreeMap<i32, Result<Vec<ProducerDescription>>> {
    let mut out = BTreeMap::new();
    for t in response
        .topics
        .into_iter()
        .filter(|t| t.name.0.as_str() == topic)
    {
        for p in t.partitions {
            let context = format!("{topic}-{}", p.partition_index);
            let answer = check(p.error_code, p.error_message.as_deref(), context).map(|()| {
                let mut producers: Vec<ProducerDescription> = p
                    .active_producers
                    .into_iter()
                    .map(|a| ProducerDescription {
                        producer_id: a.producer_id.0,
                        producer_epoch: a.producer_epoch,
                        last_sequence: a.last_sequence,
                        last_timestamp_ms: non_negative(a.last_timestamp),
                        coordinator_epoch: non_negative(a.coordinator_epoch),
                        current_txn_start_offset: non_negative(a.current_txn_start_offset),
                    })
                    .collect();
                producers.sort_by_key(|a| a.producer_id);
                producers
            });
            out.insert(p.partition_index, answer);
        }
    }
    out
}

/// Whether a partition's leader has moved or is being elected, so it
/// should be looked up again.
fn is_moved(error: &Error) -> bool {
    matches!(
        error.code(),
        Some(LEADER_NOT_AVAILABLE | NOT_LEADER_OR_FOLLOWER)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState, TopicResponse,
    };
    use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};

    fn broker() -> BrokerInfo {
        BrokerInfo {
            id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
        }
    }

    #[test]
    fn described_transactions_group_partitions_by_topic() {
        let state = TransactionState::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_transaction_state(s("Ongoing"))
            .with_transaction_timeout_ms(60_000)
            .with_transaction_start_time_ms(1_700_000_000_000)
            .with_producer_id(ProducerId(7))
            .with_producer_epoch(2)
            .with_topics(vec![
                TopicData::default()
                    .with_topic(TopicName(s("b")))
                    .with_partitions(vec![3, 1]),
                TopicData::default()
                    .with_topic(TopicName(s("a")))
                    .with_partitions(vec![0]),
                TopicData::default()
                    .with_topic(TopicName(s("b")))
                    .with_partitions(vec![1, 2]),
            ]);
        let described = describe_transaction(state, broker()).unwrap();
        assert_eq!(
            described,
            TransactionDescription {
                transactional_id: "tx".into(),
                coordinator: broker(),
                state: "Ongoing".into(),
                producer_id: 7,
                producer_epoch: 2,
                timeout_ms: 60_000,
                start_time_ms: Some(1_700_000_000_000),
                partitions: vec![
                    TopicPartitions {
                        topic: "a".into(),
                        partitions: vec![0]
                    },
                    TopicPartitions {
                        topic: "b".into(),
                        partitions: vec![1, 2, 3]
                    },
                ],
            }
        );
    }

    #[test]
    fn unknown_transactional_ids_are_errors_and_no_start_is_none() {
        let missing = TransactionState::default()
            .with_transactional_id(TransactionalId(s("nope")))
            .with_error_code(105);
        let err = describe_transaction(missing, broker()).unwrap_err();
        assert_eq!(err.code(), Some(105));
        assert_eq!(
            err.to_string(),
            "transactional id nope: TRANSACTIONAL_ID_NOT_FOUND"
        );
        let empty = TransactionState::default()
            .with_transactional_id(TransactionalId(s("idle")))
            .with_transaction_state(s("Empty"))
            .with_transaction_start_time_ms(-1);
        let described = describe_transaction(empty, broker()).unwrap();
        assert_eq!(described.start_time_ms, None);
        assert!(described.partitions.is_empty());
    }

    #[test]
    fn producer_answers_map_sentinels_and_errors_per_partition() {
        let producer = |id: i64, coordinator_epoch: i32, start: i64| {
            ProducerState::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(3)
                .with_last_sequence(99)
                .with_last_timestamp(1_700_000_000_123)
                .with_coordinator_epoch(coordinator_epoch)
                .with_current_txn_start_offset(start)
        };
        let response = DescribeProducersResponse::default().with_topics(vec![
            TopicResponse::default()
                .with_name(TopicName(s("other")))
                .with_partitions(vec![PartitionResponse::default().with_partition_index(0)]),
            TopicResponse::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    PartitionResponse::default()
                        .with_partition_index(0)
                        .with_active_producers(vec![producer(9, -1, -1), producer(4, 2, 40)]),
                    PartitionResponse::default()
                        .with_partition_index(1)
                        .with_error_code(NOT_LEADER_OR_FOLLOWER),
                ]),
        ]);
        let mut answers = producer_answers(response, "t");
        assert_eq!(answers.len(), 2);
        let moved = answers.remove(&1).unwrap().unwrap_err();
        assert!(is_moved(&moved));
        assert_eq!(moved.to_string(), "t-1: NOT_LEADER_OR_FOLLOWER");
        assert_eq!(
            answers.remove(&0).unwrap().unwrap(),
            vec![
                ProducerDescription {
                    producer_id: 4,
                    producer_epoch: 3,
                    last_sequence: 99,
                    last_timestamp_ms: Some(1_700_000_000_123),
                    coordinator_epoch: Some(2),
                    current_txn_start_offset: Some(40),
                },
                ProducerDescription {
                    producer_id: 9,
                    producer_epoch: 3,
                    last_sequence: 99,
                    last_timestamp_ms: Some(1_700_000_000_123),
                    coordinator_epoch: None,
                    current_txn_start_offset: None,
                },
            ]
        );
    }

    /// A one-connection fake broker serving ApiVersions, FindCoordinator
    /// (recording each key type and keys) and DescribeTransactions (knowing
    /// only "tx"). Returns its address and what FindCoordinator was asked.
    async fn fake_transaction_coordinator(
    ) -> (String, tokio::task::JoinHandle<Vec<(i8, Vec<String>)>>) {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::find_coordinator_response::Coordinator;
        use kafka_protocol::messages::{
            ApiVersionsResponse, DescribeTransactionsResponse, FindCoordinatorRequest,
            FindCoordinatorResponse, ResponseHeader,
        };
        use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable};
        use tokio::io::AsyncWriteExt;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut lookups = Vec::new();
            while let Ok(mut frame) =
                crate::connection::read_frame(&mut socket, 1 << 20, "client").await
            {
                let header = decode_request_header_from_buffer(&mut frame).unwrap();
                let key = ApiKey::try_from(header.request_api_key).unwrap();
                let version = header.request_api_version;
                let mut out = BytesMut::new();
                out.put_i32(0);
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, key.response_header_version(version))
                    .unwrap();
                match key {
                    ApiKey::ApiVersions => {
                        let api = |key: ApiKey| {
                            let range = key.valid_versions();
                            ApiVersion::default()
                                .with_api_key(key as i16)
                                .with_min_version(range.min)
                                .with_max_version(range.max)
                        };
                        let keys = [
                            ApiKey::ApiVersions,
                            ApiKey::FindCoordinator,
                            ApiKey::DescribeTransactions,
                        ];
                        ApiVersionsResponse::default()
                            .with_api_keys(keys.into_iter().map(api).collect())
                            .encode(&mut out, version)
                            .unwrap();
                    }
                    ApiKey::FindCoordinator => {
                        let request = FindCoordinatorRequest::decode(&mut frame, version).unwrap();
                        let keys: Vec<String> = request
                            .coordinator_keys
                            .iter()
                            .map(|k| k.to_string())
                            .collect();
                        FindCoordinatorResponse::default()
                            .with_coordinators(
                                keys.iter()
                                    .map(|k| {
                                        Coordinator::default()
                                            .with_key(s(k))
                                            .with_node_id(5.into())
                                            .with_host(s(&addr.ip().to_string()))
                                            .with_port(i32::from(addr.port()))
                                    })
                                    .collect(),
                            )
                            .encode(&mut out, version)
                            .unwrap();
                        lookups.push((request.key_type, keys));
                    }
                    _ => {
                        let request =
                            DescribeTransactionsRequest::decode(&mut frame, version).unwrap();
                        let states = request
                            .transactional_ids
                            .iter()
                            .map(|id| {
                                let state =
                                    TransactionState::default().with_transactional_id(id.clone());
                                if id.0.as_str() == "tx" {
                                    state
                                        .with_transaction_state(s("Ongoing"))
                                        .with_producer_id(ProducerId(42))
                                        .with_producer_epoch(1)
                                        .with_transaction_timeout_ms(60_000)
                                        .with_transaction_start_time_ms(1_000)
                                        .with_topics(vec![TopicData::default()
                                            .with_topic(TopicName(s("t")))
                                            .with_partitions(vec![2])])
                                } else {
                                    state.with_error_code(105)
                                }
                            })
                            .collect();
                        DescribeTransactionsResponse::default()
                            .with_transaction_states(states)
                            .encode(&mut out, version)
                            .unwrap();
                    }
                }
                let size = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&size.to_be_bytes());
                socket.write_all(&out).await.unwrap();
            }
            lookups
        });
        (addr.to_string(), task)
    }

    #[tokio::test]
    async fn transactions_are_described_by_their_transaction_coordinator() {
        let (addr, broker) = fake_transaction_coordinator().await;
        let client = crate::Client::new(&addr, crate::ConnectionConfig::default()).unwrap();
        let mut admin = Admin::new(client);
        let ids = vec!["tx".to_owned(), "gone".to_owned()];
        let results = admin.describe_transactions(&ids).await.unwrap();
        // The fake says broker 5 is at its own address; Metadata is never asked.
        let coordinator = BrokerInfo {
            id: 5,
            host: "127.0.0.1".into(),
            port: addr.rsplit(':').next().unwrap().parse().unwrap(),
            rack: None,
        };
        let summary: Vec<_> = results
            .into_iter()
            .map(|(id, r)| (id, r.map_err(|e| e.to_string())))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "tx".to_owned(),
                    Ok(TransactionDescription {
                        transactional_id: "tx".into(),
                        coordinator,
                        state: "Ongoing".into(),
                        producer_id: 42,
                        producer_epoch: 1,
                        timeout_ms: 60_000,
                        start_time_ms: Some(1_000),
                        partitions: vec![TopicPartitions {
                            topic: "t".into(),
                            partitions: vec![2]
                        }],
                    })
                ),
                (
                    "gone".to_owned(),
                    Err("transactional id gone: TRANSACTIONAL_ID_NOT_FOUND".to_owned())
                ),
            ]
        );
        drop(admin);
        // One batched lookup with key type 1 (transaction), then none: cached.
        assert_eq!(
            broker.await.unwrap(),
            vec![(1, vec!["tx".to_owned(), "gone".to_owned()])]
        );
    }
}
