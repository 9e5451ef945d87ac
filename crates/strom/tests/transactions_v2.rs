//! Transaction version 2 (KIP-890 part 2) against a real `strom server`, spoken on the wire
//! as a Kafka 4.x Java producer does: InitProducerId v5, Produce v12 with transactional
//! batches and no AddPartitionsToTxn (partitions join implicitly), EndTxn v5 whose reply
//! carries the next epoch. Checked with read_committed fetches and DescribeTransactions.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    describe_transactions_response, fetch_request, produce_request, ApiVersionsRequest,
    DescribeTransactionsRequest, EndTxnRequest, FetchRequest, FindCoordinatorRequest,
    InitProducerIdRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_client::{Admin, Client, Connection, ConnectionConfig, NewTopic};

const TOPIC: &str = "tv2";
const TXN_ID: &str = "tv2-producer";
const TIMEOUT: Duration = Duration::from_secs(30);

const INVALID_PRODUCER_EPOCH: i16 = ResponseError::InvalidProducerEpoch.code();
const INVALID_TXN_STATE: i16 = ResponseError::InvalidTxnState.code();
const TRANSACTION_ABORTABLE: i16 = ResponseError::TransactionAbortable.code();

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One transactional batch as a producer builds it: base sequence 0 for a fresh epoch.
fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Produces one transactional batch per partition at `version`; returns (partition, error
/// code, base offset) per partition.
async fn produce(
    conn: &mut Connection,
    version: i16,
    producer: (i64, i16),
    batches: &[(i32, &[&str])],
) -> Vec<(i32, i16, i64)> {
    let partition_data = batches
        .iter()
        .map(|(partition, values)| {
            produce_request::PartitionProduceData::default()
                .with_index(*partition)
                .with_records(Some(transactional_batch(producer.0, producer.1, 0, values)))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(str_bytes(TXN_ID))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(str_bytes(TOPIC)))
            .with_partition_data(partition_data)]);
    let response = conn.send_version(&request, version, TIMEOUT).await.unwrap();
    assert_eq!(response.responses.len(), 1, "{response:?}");
    let mut results: Vec<(i32, i16, i64)> = response.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.index, p.error_code, p.base_offset))
        .collect();
    results.sort();
    results
}

async fn end_txn(conn: &mut Connection, producer: (i64, i16), commit: bool) -> (i16, i64, i16) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(str_bytes(TXN_ID)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit);
    let response = conn.send_version(&request, 5, TIMEOUT).await.unwrap();
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// (state, producer id, epoch, [(topic, partitions)]) of our transactional id.
async fn describe(conn: &mut Connection) -> (String, i64, i16, Vec<(String, Vec<i32>)>) {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(str_bytes(TXN_ID))]);
    let response = conn.send_version(&request, 0, TIMEOUT).await.unwrap();
    assert_eq!(response.transaction_states.len(), 1, "{response:?}");
    let state: &describe_transactions_response::TransactionState = &response.transaction_states[0];
    assert_eq!(state.error_code, 0, "{state:?}");
    assert_eq!(state.transactional_id.as_str(), TXN_ID);
    let mut topics: Vec<(String, Vec<i32>)> = state
        .topics
        .iter()
        .map(|t| {
            let mut partitions = t.partitions.clone();
            partitions.sort();
            (t.topic.to_string(), partitions)
        })
        .collect();
    topics.sort();
    (
        state.transaction_state.to_string(),
        state.producer_id.0,
        state.producer_epoch,
        topics,
    )
}

fn topic_partitions(partitions: &[i32]) -> Vec<(String, Vec<i32>)> {
    vec![(TOPIC.to_owned(), partitions.to_vec())]
}

/// A read_committed (isolation 1) or read_uncommitted (0) fetch of one partition.
async fn fetch(conn: &mut Connection, partition: i32, offset: i64, isolation: i8) -> PartitionData {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(str_bytes(TOPIC)))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let response = conn.send_version(&request, 12, TIMEOUT).await.unwrap();
    assert_eq!(response.error_code, 0, "{response:?}");
    let data = response.responses[0].partitions[0].clone();
    assert_eq!(data.partition_index, partition);
    assert_eq!(data.error_code, 0, "{data:?}");
    data
}

/// What a fetch returned, record by record: (offset, producer id, epoch, content), where
/// content is the value of a data record or "COMMIT"/"ABORT" for a control record.
fn entries(data: &PartitionData) -> Vec<(i64, i64, i16, String)> {
    let mut bytes = data.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for batch in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for record in batch.records {
            assert!(record.transactional, "{record:?}");
            let content = if record.control {
                // Control record key: version (i16), type (i16): 0 abort, 1 commit.
                match record.key.as_deref() {
                    Some([0, 0, 0, 1]) => "COMMIT".to_owned(),
                    Some([0, 0, 0, 0]) => "ABORT".to_owned(),
                    other => panic!("unexpected control key {other:?}"),
                }
            } else {
                String::from_utf8(record.value.unwrap().to_vec()).unwrap()
            };
            out.push((
                record.offset,
                record.producer_id,
                record.producer_epoch,
                content,
            ));
        }
    }
    out
}

fn expect(producer: (i64, i16), rows: &[(i64, &str)]) -> Vec<(i64, i64, i16, String)> {
    rows.iter()
        .map(|(offset, content)| (*offset, producer.0, producer.1, (*content).to_owned()))
        .collect()
}

fn aborted(data: &PartitionData) -> Vec<(i64, i64)> {
    data.aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn api_versions_advertises_transaction_version_2() {
    let broker = tokio::task::spawn_blocking(Broker::start).await.unwrap();
    let mut conn = Connection::connect(&broker.addr(), ConnectionConfig::default())
        .await
        .unwrap();
    let request = ApiVersionsRequest::default()
        .with_client_software_name(str_bytes("strom-tests"))
        .with_client_software_version(str_bytes("1"));

    let v4 = conn.send_version(&request, 4, TIMEOUT).await.unwrap();
    assert_eq!(v4.error_code, 0);
    let mut supported: Vec<(String, i16, i16)> = v4
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    supported.sort();
    assert_eq!(
        supported,
        [
            ("group.version".to_owned(), 0, 1),
            ("transaction.version".to_owned(), 0, 2)
        ]
    );
    let finalized = |response: &kafka_protocol::messages::ApiVersionsResponse| {
        let mut levels: Vec<(String, i16, i16)> = response
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
            .collect();
        levels.sort();
        levels
    };
    let expected_levels = [
        ("group.version".to_owned(), 1, 1),
        ("transaction.version".to_owned(), 2, 2),
    ];
    assert_eq!(finalized(&v4), expected_levels);
    // Clients ignore finalized features unless the epoch is above -1.
    assert!(v4.finalized_features_epoch >= 0, "{v4:?}");

    // v3 leaves out supported features whose minimum is 0 (KAFKA-17492); finalized stay.
    let v3 = conn.send_version(&request, 3, TIMEOUT).await.unwrap();
    assert_eq!(v3.error_code, 0);
    assert_eq!(v3.supported_features, vec![]);
    assert_eq!(finalized(&v3), expected_levels);
    assert_eq!(v3.finalized_features_epoch, v4.finalized_features_epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn transaction_version_2_commit_abort_fence_as_a_java_4_producer() {
    let broker = tokio::task::spawn_blocking(Broker::start).await.unwrap();
    let mut admin = Admin::new(Client::new(&broker.addr(), ConnectionConfig::default()).unwrap());
    let created = admin
        .create_topics(
            &[NewTopic {
                partitions: 3,
                ..NewTopic::new(TOPIC)
            }],
            false,
        )
        .await
        .unwrap();
    assert!(created[0].1.is_ok(), "{created:?}");
    let mut conn = Connection::connect(&broker.addr(), ConnectionConfig::default())
        .await
        .unwrap();

    // FindCoordinator for a transactional id (key type 1): this broker.
    let request = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![str_bytes(TXN_ID)]);
    let found = conn.send_version(&request, 6, TIMEOUT).await.unwrap();
    assert_eq!(found.coordinators.len(), 1, "{found:?}");
    let coordinator = &found.coordinators[0];
    assert_eq!(coordinator.error_code, 0, "{coordinator:?}");
    assert_eq!(coordinator.key.as_str(), TXN_ID);
    assert_eq!(coordinator.port, i32::from(broker.port));

    // InitProducerId v5 with a transactional id: a fresh producer id at epoch 0.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(str_bytes(TXN_ID))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let init = conn.send_version(&request, 5, TIMEOUT).await.unwrap();
    assert_eq!(init.error_code, 0, "{init:?}");
    let producer_id = init.producer_id.0;
    assert!(producer_id >= 0, "{init:?}");
    assert_eq!(init.producer_epoch, 0);
    assert_eq!(
        describe(&mut conn).await,
        ("Empty".to_owned(), producer_id, 0, vec![])
    );

    // Transaction 1: Produce v12 to partitions 0 and 1 with no AddPartitionsToTxn.
    let first = (producer_id, 0);
    assert_eq!(
        produce(
            &mut conn,
            12,
            first,
            &[(0, &["a0", "a1", "a2"]), (1, &["b0", "b1", "b2"])]
        )
        .await,
        [(0, 0, 0), (1, 0, 0)]
    );
    assert_eq!(
        describe(&mut conn).await,
        (
            "Ongoing".to_owned(),
            producer_id,
            0,
            topic_partitions(&[0, 1])
        )
    );
    // Open: read_committed sees nothing yet, the last stable offset is the txn's start.
    let open = fetch(&mut conn, 0, 0, 1).await;
    assert_eq!((open.high_watermark, open.last_stable_offset), (3, 0));
    assert_eq!(entries(&open), vec![]);

    // EndTxn v5 commit: the reply carries the same producer id at the next epoch.
    assert_eq!(end_txn(&mut conn, first, true).await, (0, producer_id, 1));
    assert_eq!(
        describe(&mut conn).await,
        ("CompleteCommit".to_owned(), producer_id, 1, vec![])
    );
    for (partition, prefix) in [(0, "a"), (1, "b")] {
        let data = fetch(&mut conn, partition, 0, 1).await;
        assert_eq!((data.high_watermark, data.last_stable_offset), (4, 4));
        assert_eq!(aborted(&data), vec![]);
        let mut rows: Vec<(i64, String)> = (0..3).map(|i| (i, format!("{prefix}{i}"))).collect();
        rows.push((3, "COMMIT".to_owned()));
        let rows: Vec<(i64, &str)> = rows.iter().map(|(o, c)| (*o, c.as_str())).collect();
        // The marker carries the bumped epoch (KIP-890), the data the epoch it was sent with.
        let mut expected = expect(first, &rows[..3]);
        expected.extend(expect((producer_id, 1), &rows[3..]));
        assert_eq!(entries(&data), expected, "partition {partition}");
    }

    // Transaction 2 with the new epoch (sequences restart at 0), aborted.
    let second = (producer_id, 1);
    assert_eq!(
        produce(
            &mut conn,
            12,
            second,
            &[(0, &["x0", "x1"]), (1, &["y0", "y1"])]
        )
        .await,
        [(0, 0, 4), (1, 0, 4)]
    );
    assert_eq!(
        describe(&mut conn).await,
        (
            "Ongoing".to_owned(),
            producer_id,
            1,
            topic_partitions(&[0, 1])
        )
    );
    let open = fetch(&mut conn, 1, 4, 1).await;
    assert_eq!((open.high_watermark, open.last_stable_offset), (6, 4));
    assert_eq!(entries(&open), vec![]);

    assert_eq!(end_txn(&mut conn, second, false).await, (0, producer_id, 2));
    assert_eq!(
        describe(&mut conn).await,
        ("CompleteAbort".to_owned(), producer_id, 2, vec![])
    );
    for (partition, prefix) in [(0, "x"), (1, "y")] {
        let data = fetch(&mut conn, partition, 4, 1).await;
        // The last stable offset moved past the abort marker.
        assert_eq!((data.high_watermark, data.last_stable_offset), (7, 7));
        assert_eq!(
            aborted(&data),
            vec![(producer_id, 4)],
            "partition {partition}"
        );
        let (x0, x1) = (format!("{prefix}0"), format!("{prefix}1"));
        let mut expected = expect(second, &[(4, x0.as_str()), (5, x1.as_str())]);
        expected.extend(expect((producer_id, 2), &[(6, "ABORT")]));
        assert_eq!(entries(&data), expected, "partition {partition}");
        // From the start, the committed transaction is not listed as aborted.
        let whole = fetch(&mut conn, partition, 0, 1).await;
        assert_eq!(aborted(&whole), vec![(producer_id, 4)]);
        assert_eq!(entries(&whole).len(), 7);
    }

    // The stale epoch is fenced: a Produce v12 with epoch 1 is refused, nothing appended.
    assert_eq!(
        produce(&mut conn, 12, second, &[(0, &["stale"])]).await,
        [(0, INVALID_PRODUCER_EPOCH, -1)]
    );
    assert_eq!(fetch(&mut conn, 0, 0, 0).await.high_watermark, 7);
    assert_eq!(
        describe(&mut conn).await,
        ("CompleteAbort".to_owned(), producer_id, 2, vec![])
    );

    // Transaction version 1 (Produce v11 and older): partition 2 was never added with
    // AddPartitionsToTxn, so the batch is refused (KIP-890 part 1) and nothing appended.
    // v11 knows TRANSACTION_ABORTABLE; older versions get INVALID_TXN_STATE.
    let current = (producer_id, 2);
    assert_eq!(
        produce(&mut conn, 11, current, &[(2, &["hanging"])]).await,
        [(2, TRANSACTION_ABORTABLE, -1)]
    );
    assert_eq!(
        produce(&mut conn, 10, current, &[(2, &["hanging"])]).await,
        [(2, INVALID_TXN_STATE, -1)]
    );
    let untouched = fetch(&mut conn, 2, 0, 0).await;
    assert_eq!(
        (untouched.high_watermark, untouched.last_stable_offset),
        (0, 0)
    );
    assert_eq!(entries(&untouched), vec![]);
    assert_eq!(
        describe(&mut conn).await,
        ("CompleteAbort".to_owned(), producer_id, 2, vec![])
    );

    // The current epoch still works: a third transaction commits on partition 2.
    assert_eq!(
        produce(&mut conn, 12, current, &[(2, &["z0"])]).await,
        [(2, 0, 0)]
    );
    assert_eq!(end_txn(&mut conn, current, true).await, (0, producer_id, 3));
    let data = fetch(&mut conn, 2, 0, 1).await;
    assert_eq!((data.high_watermark, data.last_stable_offset), (2, 2));
    let mut expected = expect(current, &[(0, "z0")]);
    expected.extend(expect((producer_id, 3), &[(1, "COMMIT")]));
    assert_eq!(entries(&data), expected);
}
