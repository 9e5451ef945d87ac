//! A simple, non-idempotent producer: each `send` builds one record batch
//! per partition, sends one Produce request per leader and waits for acks.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use crate::client::{Client, TopicMetadata};
use crate::error::{check, Error, Result};
use crate::partitioner::{partition_for_key, random_partition};

/// Produce v13 addresses topics by id; older versions by name.
const LAST_PRODUCE_VERSION_BY_NAME: i16 = 12;

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// 0 (no response), 1 (leader) or -1 (all in-sync replicas).
    pub acks: i16,
    pub compression: Compression,
    /// The broker-side wait for acks, sent in the request.
    pub ack_timeout: Duration,
    /// Attempts per partition on retriable errors (NOT_LEADER_OR_FOLLOWER, ...).
    pub retries: u32,
    /// How long to wait for a topic's metadata (e.g. while it is auto-created).
    pub metadata_wait: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            compression: Compression::None,
            ack_timeout: Duration::from_secs(30),
            retries: 5,
            metadata_wait: Duration::from_secs(5),
        }
    }
}

/// A record to send; `partition: None` lets the partitioner choose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` for now.
    pub timestamp: Option<i64>,
}

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: i32,
    /// `None` with acks=0, when the broker does not answer.
    pub offset: Option<i64>,
    pub timestamp: i64,
}

#[derive(Debug)]
pub struct Producer {
    client: Client,
    config: ProducerConfig,
}

impl Producer {
    pub fn new(client: Client, config: ProducerConfig) -> Result<Self> {
        if !matches!(config.acks, -1..=1) {
            return Err(Error::InvalidArgument(format!(
                "acks must be -1 (all), 0 or 1, not {}",
                config.acks
            )));
        }
        Ok(Self { client, config })
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Sends records to one topic and returns where each went, in order.
    /// Unkeyed records without a partition all go to one random partition.
    pub async fn send(
        &mut self,
        topic: &str,
        records: Vec<ProducerRecord>,
    ) -> Result<Vec<RecordMetadata>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let meta = self
            .client
            .topic(topic, true, self.config.metadata_wait)
            .await?;
        let now = now_ms();
        let partitions = assign_partitions(&meta, &records)?;

        // partition -> indexes into `records`, each partition in input order.
        let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, p) in partitions.iter().enumerate() {
            by_partition.entry(*p).or_default().push(i);
        }
        let mut results: Vec<RecordMetadata> = records
            .iter()
            .zip(&partitions)
            .map(|(r, p)| RecordMetadata {
                partition: *p,
                offset: None,
                timestamp: r.timestamp.unwrap_or(now),
            })
            .collect();
        let mut batches = HashMap::new();
        for (partition, indexes) in &by_partition {
            let batch = encode_batch(
                indexes.iter().map(|&i| &records[i]),
                now,
                self.config.compression,
            )?;
            batches.insert(*partition, batch);
        }

        let mut pending: Vec<i32> = by_partition.keys().copied().collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let mut retry = Vec::new();
            let mut last_err = None;
            for (leader, parts) in self.group_by_leader(topic, &pending).await? {
                match self.produce_to(leader, topic, &parts, &batches).await {
                    Ok(outcomes) => {
                        for (partition, outcome) in outcomes {
                            match outcome {
                                Ok(base) => {
                                    for (n, &i) in by_partition[&partition].iter().enumerate() {
                                        results[i].offset = base.map(|b| b + n as i64);
                                    }
                                }
                                Err(e) if e.is_retriable() && attempt <= self.config.retries => {
                                    retry.push(partition);
                                    last_err = Some(e);
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() && attempt <= self.config.retries => {
                        retry.extend(parts);
                        last_err = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if !retry.is_empty() {
                tracing::debug!(
                    ?last_err,
                    "retrying produce to {topic} partitions {retry:?}"
                );
                self.client.invalidate(topic);
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            pending = retry;
        }
        Ok(results)
    }

    async fn group_by_leader(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Vec<i32>>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            let leader = self
                .client
                .leader(topic, p, self.config.metadata_wait)
                .await?;
            by_leader.entry(leader).or_default().push(p);
        }
        Ok(by_leader)
    }

    /// One Produce request to one leader; per partition the base offset
    /// (`None` with acks=0) or the partition's error.
    async fn produce_to(
        &mut self,
        leader: i32,
        topic: &str,
        partitions: &[i32],
        batches: &HashMap<i32, Bytes>,
    ) -> Result<Vec<(i32, Result<Option<i64>>)>> {
        let meta = self
            .client
            .topic(topic, false, self.config.metadata_wait)
            .await?;
        let data = partitions
            .iter()
            .map(|p| {
                PartitionProduceData::default()
                    .with_index(*p)
                    .with_records(batches.get(p).cloned())
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(self.config.acks)
            .with_timeout_ms(i32::try_from(self.config.ack_timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_topic_id(meta.topic_id)
                .with_partition_data(data)]);
        let timeout = conn_timeout(
            self.client.config().request_timeout,
            self.config.ack_timeout,
        );
        let conn = self.client.broker_connection(leader).await?;
        let mut version = conn.version(ApiKey::Produce)?;
        if meta.topic_id.is_nil() {
            version = version.min(LAST_PRODUCE_VERSION_BY_NAME);
        }
        if self.config.acks == 0 {
            conn.send_without_response(&request, version).await?;
            return Ok(partitions.iter().map(|p| (*p, Ok(None))).collect());
        }
        let response = conn.send_version(&request, version, timeout).await?;
        let mut outcomes = Vec::new();
        for topic_response in response.responses {
            for p in topic_response.partition_responses {
                let context = format!("{topic}-{}", p.index);
                let outcome = check(p.error_code, p.error_message.as_deref(), context)
                    .map(|()| Some(p.base_offset));
                outcomes.push((p.index, outcome));
            }
        }
        for p in partitions {
            if !outcomes.iter().any(|(q, _)| q == p) {
                let message = format!("Produce response does not mention {topic}-{p}");
                outcomes.push((*p, Err(Error::Protocol(message))));
            }
        }
        Ok(outcomes)
    }
}

/// The ack wait happens inside the broker, so our wait must cover it.
fn conn_timeout(request_timeout: Duration, ack_timeout: Duration) -> Duration {
    request_timeout.max(ack_timeout + Duration::from_secs(5))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The partition of each record: explicit, by key, or one sticky random
/// partition for all unkeyed records of this call.
pub fn assign_partitions(meta: &TopicMetadata, records: &[ProducerRecord]) -> Result<Vec<i32>> {
    let count = meta.partitions.len() as i32;
    if count == 0 {
        return Err(Error::Protocol(format!(
            "topic {} has no partitions",
            meta.name
        )));
    }
    let sticky = random_partition(count);
    records
        .iter()
        .map(|r| match (r.partition, &r.key) {
            (Some(p), _) if (0..count).contains(&p) => Ok(p),
            (Some(p), _) => Err(Error::InvalidArgument(format!(
                "partition {p} is not in the range [0...{count}) of topic {}",
                meta.name
            ))),
            (None, Some(key)) => Ok(partition_for_key(key, count)),
            (None, None) => Ok(sticky),
        })
        .collect()
}

/// Encodes records as one v2 batch with offsets 0..n. The encoder splits
/// batches whenever `offset - sequence` changes, so the sequence follows the
/// offset (base sequence -1: not idempotent).
pub fn encode_batch<'a>(
    records: impl Iterator<Item = &'a ProducerRecord>,
    now: i64,
    compression: Compression,
) -> Result<Bytes> {
    let records: Vec<Record> = records
        .enumerate()
        .map(|(i, r)| {
            let offset = i as i64;
            let mut headers = IndexMap::new();
            for (k, v) in &r.headers {
                // kafka-protocol keeps headers in a map: a repeated key would
                // silently lose a value, so refuse it.
                if headers
                    .insert(StrBytes::from_string(k.clone()), v.clone())
                    .is_some()
                {
                    return Err(Error::InvalidArgument(format!(
                        "header key '{k}' is repeated; repeated header keys are not supported"
                    )));
                }
            }
            Ok(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: offset as i32 - 1,
                timestamp: r.timestamp.unwrap_or(now),
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            })
        })
        .collect::<Result<_>>()?;
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| Error::encode("record batch", e))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::PartitionMetadata;
    use kafka_protocol::records::RecordBatchDecoder;

    fn topic(partitions: i32) -> TopicMetadata {
        TopicMetadata {
            name: "t".to_owned(),
            topic_id: uuid::Uuid::nil(),
            is_internal: false,
            error_code: 0,
            partitions: (0..partitions)
                .map(|p| PartitionMetadata {
                    partition: p,
                    leader: 1,
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    offline_replicas: vec![],
                    error_code: 0,
                })
                .collect(),
        }
    }

    fn keyed(key: &str) -> ProducerRecord {
        ProducerRecord {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            ..Default::default()
        }
    }

    #[test]
    fn keys_partition_like_kafka_and_unkeyed_stick_together() {
        let records = vec![
            keyed("21"),
            ProducerRecord::default(),
            ProducerRecord {
                partition: Some(2),
                ..keyed("21")
            },
            ProducerRecord::default(),
        ];
        let parts = assign_partitions(&topic(3), &records).unwrap();
        // toPositive(murmur2("21")) = 1173551340, % 3 = 0
        assert_eq!(parts[0], 0);
        assert_eq!(parts[2], 2);
        assert_eq!(parts[1], parts[3]);
        assert!((0..3).contains(&parts[1]));
    }

    #[test]
    fn out_of_range_partition_is_refused() {
        let records = vec![ProducerRecord {
            partition: Some(3),
            ..Default::default()
        }];
        let err = assign_partitions(&topic(3), &records).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition 3 is not in the range [0...3) of topic t"
        );
    }

    #[test]
    fn batch_is_one_v2_batch_that_round_trips() {
        let records = [
            ProducerRecord {
                key: Some(Bytes::from_static(b"k1")),
                value: Some(Bytes::from_static(b"v1")),
                headers: vec![("h".to_owned(), Some(Bytes::from_static(b"x")))],
                timestamp: Some(1_000),
                ..Default::default()
            },
            ProducerRecord {
                value: Some(Bytes::from_static(b"v2")),
                ..Default::default()
            },
        ];
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = encode_batch(records.iter(), 2_000, compression).unwrap();
            // base offset 0, then the batch length covers the rest exactly.
            assert_eq!(&batch[..8], &[0u8; 8]);
            let len = i32::from_be_bytes(batch[8..12].try_into().unwrap());
            assert_eq!(
                len as usize,
                batch.len() - 12,
                "one batch only ({compression:?})"
            );
            // base sequence -1 at bytes 53..57, record count 2 at 57..61.
            assert_eq!(i32::from_be_bytes(batch[53..57].try_into().unwrap()), -1);
            assert_eq!(i32::from_be_bytes(batch[57..61].try_into().unwrap()), 2);
            let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
            assert_eq!(set.compression, compression);
            let got: Vec<_> = set
                .records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.clone(),
                        r.value.clone(),
                        r.headers.len(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        0,
                        1_000,
                        Some(Bytes::from_static(b"k1")),
                        Some(Bytes::from_static(b"v1")),
                        1
                    ),
                    (1, 2_000, None, Some(Bytes::from_static(b"v2")), 0),
                ]
            );
        }
    }

    #[test]
    fn repeated_header_keys_are_refused() {
        let record = ProducerRecord {
            headers: vec![
                ("h".to_owned(), None),
                ("h".to_owned(), Some(Bytes::from_static(b"2"))),
            ],
            ..Default::default()
        };
        let err = encode_batch([record].iter(), 0, Compression::None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header key 'h' is repeated; repeated header keys are not supported"
        );
    }

    #[test]
    fn acks_are_validated() {
        let client = Client::new("127.0.0.1:1", Default::default()).unwrap();
        let config = ProducerConfig {
            acks: 2,
            ..Default::default()
        };
        assert_eq!(
            Producer::new(client, config).unwrap_err().to_string(),
            "acks must be -1 (all), 0 or 1, not 2"
        );
    }
}
