//! The strom-client library against a real `strom server` process.

mod common;

use bytes::Bytes;
use common::Broker;
use strom_client::{
    Admin, AlterConfigOp, Client, ConfigSource, ConnectionConfig, Consumer, ConsumerConfig,
    NewTopic, OffsetSpec, Producer, ProducerConfig, ProducerRecord, ResourceType,
};

fn client(broker: &Broker) -> Client {
    Client::new(&broker.addr(), ConnectionConfig::default()).unwrap()
}

fn value(v: &str) -> ProducerRecord {
    ProducerRecord {
        value: Some(Bytes::copy_from_slice(v.as_bytes())),
        ..Default::default()
    }
}

async fn config(admin: &mut Admin, topic: &str, key: &str) -> (Option<String>, ConfigSource) {
    let entries = admin
        .describe_configs(ResourceType::Topic, topic, Some(&[key.to_owned()]))
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    (entries[0].value.clone(), entries[0].source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn admin_operations_report_per_topic_results_and_config_sources() {
    let broker = tokio::task::spawn_blocking(Broker::start).await.unwrap();
    let mut admin = Admin::new(client(&broker));

    let topics = [
        NewTopic {
            configs: vec![("cleanup.policy".into(), "compact".into())],
            partitions: 2,
            ..NewTopic::new("configured")
        },
        NewTopic::new("bad name!"),
    ];
    let results = admin.create_topics(&topics, false).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].0, "configured");
    assert!(results[0].1.is_ok(), "{:?}", results[0].1);
    assert_eq!(results[1].0, "bad name!");
    assert_eq!(results[1].1.as_ref().unwrap_err().code(), Some(17)); // INVALID_TOPIC_EXCEPTION

    let described = admin
        .describe_topics(&["configured".to_owned()])
        .await
        .unwrap();
    assert_eq!(described[0].partitions.len(), 2);
    assert!(!described[0].topic_id.is_nil());

    assert_eq!(
        config(&mut admin, "configured", "cleanup.policy").await,
        (Some("compact".into()), ConfigSource::DynamicTopicConfig)
    );

    // Incremental: APPEND adds to a list config, DELETE restores the default.
    admin
        .incremental_alter_configs(
            ResourceType::Topic,
            "configured",
            &[
                AlterConfigOp::Append("cleanup.policy".into(), "delete".into()),
                AlterConfigOp::Set("retention.ms".into(), "60000".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        config(&mut admin, "configured", "cleanup.policy").await,
        (
            Some("compact,delete".into()),
            ConfigSource::DynamicTopicConfig
        )
    );

    // Legacy AlterConfigs replaces the whole set: cleanup.policy goes back
    // to its default because it is not in the new set.
    admin
        .alter_configs(
            ResourceType::Topic,
            "configured",
            &[("retention.ms".into(), "1234".into())],
        )
        .await
        .unwrap();
    assert_eq!(
        config(&mut admin, "configured", "retention.ms").await,
        (Some("1234".into()), ConfigSource::DynamicTopicConfig)
    );
    assert_eq!(
        config(&mut admin, "configured", "cleanup.policy").await,
        (Some("delete".into()), ConfigSource::DefaultConfig)
    );

    let err = admin.create_partitions("configured", 1).await.unwrap_err();
    assert_eq!(err.code(), Some(37), "{err}"); // INVALID_PARTITIONS
    admin.create_partitions("configured", 4).await.unwrap();
    let described = admin
        .describe_topics(&["configured".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );

    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(
        (cluster.brokers[0].id, cluster.brokers[0].port),
        (1, i32::from(broker.port))
    );
    assert!(!cluster.cluster_id.is_empty());

    let deleted = admin
        .delete_topics(&["configured".to_owned(), "never".to_owned()])
        .await
        .unwrap();
    assert!(deleted[0].1.is_ok());
    assert_eq!(deleted[1].1.as_ref().unwrap_err().code(), Some(3)); // UNKNOWN_TOPIC_OR_PARTITION
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn producer_offsets_and_consumer_offset_lookups() {
    let broker = tokio::task::spawn_blocking(Broker::start).await.unwrap();
    let mut admin = Admin::new(client(&broker));
    admin
        .create_topic(NewTopic {
            partitions: 2,
            ..NewTopic::new("ledger")
        })
        .await
        .unwrap();

    let config = ProducerConfig {
        acks: 1,
        ..Default::default()
    };
    let mut producer = Producer::new(client(&broker), config).unwrap();
    let first: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, v)| ProducerRecord {
            partition: Some(1),
            timestamp: Some(1_000 + i as i64),
            ..value(v)
        })
        .collect();
    let written = producer.send("ledger", first).await.unwrap();
    let offsets: Vec<_> = written
        .iter()
        .map(|m| (m.partition, m.offset, m.timestamp))
        .collect();
    assert_eq!(
        offsets,
        [
            (1, Some(0), 1_000),
            (1, Some(1), 1_001),
            (1, Some(2), 1_002)
        ]
    );
    let again = producer
        .send(
            "ledger",
            vec![ProducerRecord {
                partition: Some(1),
                timestamp: Some(5_000),
                ..value("d")
            }],
        )
        .await
        .unwrap();
    assert_eq!(again[0].offset, Some(3));

    let mut consumer = Consumer::new(client(&broker), ConsumerConfig::default());
    assert_eq!(consumer.partitions("ledger").await.unwrap(), [0, 1]);
    let earliest = consumer
        .list_offsets("ledger", &[0, 1], OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(
        earliest.into_iter().collect::<Vec<_>>(),
        [(0, Some(0)), (1, Some(0))]
    );
    let latest = consumer
        .list_offsets("ledger", &[0, 1], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(
        latest.into_iter().collect::<Vec<_>>(),
        [(0, Some(0)), (1, Some(4))]
    );
    let by_time = consumer
        .list_offsets("ledger", &[1], OffsetSpec::Timestamp(1_001))
        .await
        .unwrap();
    assert_eq!(by_time[&1], Some(1));
    let by_time = consumer
        .list_offsets("ledger", &[1], OffsetSpec::Timestamp(1_003))
        .await
        .unwrap();
    assert_eq!(by_time[&1], Some(3));
    let by_time = consumer
        .list_offsets("ledger", &[1], OffsetSpec::Timestamp(9_999))
        .await
        .unwrap();
    assert_eq!(by_time[&1], None);

    consumer.assign("ledger", 1, 2);
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(consumer.poll().await.unwrap());
        if got.len() >= 2 {
            break;
        }
    }
    let got: Vec<_> = got
        .iter()
        .map(|r| (r.offset, r.timestamp, r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (2, 1_002, Bytes::from_static(b"c")),
            (3, 5_000, Bytes::from_static(b"d"))
        ]
    );
    assert_eq!(consumer.position("ledger", 1), Some(4));

    consumer.assign("ledger", 1, 99);
    let err = consumer.poll().await.unwrap_err();
    assert_eq!(err.code(), Some(1), "{err}"); // OFFSET_OUT_OF_RANGE
}
