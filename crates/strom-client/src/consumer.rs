//! A simple consumer without a group: assign partitions at offsets, then
//! `poll` fetches from each partition's leader and follows the next offset.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
use uuid::Uuid;

use crate::client::Client;
use crate::error::{check, Error, Result};

/// Fetch v13 addresses topics by id; older versions by name.
const LAST_FETCH_VERSION_BY_NAME: i16 = 12;
/// Errors after which the leader may have moved: refresh metadata, retry.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at or after this (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    fn to_wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// How long the broker may hold a fetch open when there is no data.
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    /// 0: read uncommitted, 1: read committed.
    pub isolation_level: i8,
    pub metadata_wait: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: 0,
            metadata_wait: Duration::from_secs(5),
        }
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

type TopicPartition = (String, i32);

#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    positions: BTreeMap<TopicPartition, i64>,
}

impl Consumer {
    pub fn new(client: Client, config: ConsumerConfig) -> Self {
        Self {
            client,
            config,
            positions: BTreeMap::new(),
        }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The partition ids of a topic; fails if the topic does not exist.
    pub async fn partitions(&mut self, topic: &str) -> Result<Vec<i32>> {
        let meta = self
            .client
            .topic(topic, false, self.config.metadata_wait)
            .await?;
        Ok(meta.partitions.iter().map(|p| p.partition).collect())
    }

    /// Looks up an offset per partition; `None` when no record matches a
    /// timestamp.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, Option<i64>>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            let leader = self
                .client
                .leader(topic, p, self.config.metadata_wait)
                .await?;
            by_leader.entry(leader).or_default().push(p);
        }
        let mut offsets = BTreeMap::new();
        for (leader, parts) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_isolation_level(self.config.isolation_level)
                .with_timeout_ms(self.request_timeout_ms())
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(
                        parts
                            .iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(spec.to_wire())
                            })
                            .collect(),
                    )]);
            let response = self
                .client
                .broker_connection(leader)
                .await?
                .send(&request)
                .await?;
            for t in response.topics {
                for p in t.partitions {
                    check(p.error_code, None, format!("{topic}-{}", p.partition_index))?;
                    offsets.insert(p.partition_index, (p.offset >= 0).then_some(p.offset));
                }
            }
        }
        if let Some(p) = partitions.iter().find(|p| !offsets.contains_key(p)) {
            return Err(Error::Protocol(format!(
                "ListOffsets response does not mention {topic}-{p}"
            )));
        }
        Ok(offsets)
    }

    /// Starts (or moves) reading `topic`-`partition` at `offset`.
    pub fn assign(&mut self, topic: &str, partition: i32, offset: i64) {
        self.positions.insert((topic.to_owned(), partition), offset);
    }

    /// Stops reading every partition.
    pub fn clear_assignment(&mut self) {
        self.positions.clear();
    }

    /// The next offset to be read from a partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions.get(&(topic.to_owned(), partition)).copied()
    }

    /// One fetch round: asks each leader for its assigned partitions and
    /// returns what arrived (possibly nothing after `max_wait`).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        let mut records = Vec::new();
        self.poll_each(|topic, partition, r| records.push(r.to_record(topic, partition)))
            .await?;
        Ok(records)
    }

    /// One fetch round like [`Consumer::poll`], handing each record to
    /// `sink` as it is decoded instead of collecting owned copies (for
    /// tools that only count or measure). Returns the number of records.
    pub async fn poll_each(
        &mut self,
        mut sink: impl FnMut(&str, i32, &RecordView<'_>),
    ) -> Result<usize> {
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in self.positions.keys() {
            let leader = self
                .client
                .leader(&tp.0, tp.1, self.config.metadata_wait)
                .await?;
            by_leader.entry(leader).or_default().push(tp.clone());
        }
        let mut count = 0;
        let mut stale = false;
        for (leader, partitions) in by_leader {
            let (fetched, stale_leader) = self.fetch_from(leader, &partitions, &mut sink).await?;
            count += fetched;
            stale |= stale_leader;
        }
        if stale && count == 0 {
            // Give a leader election time instead of spinning on errors.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(count)
    }

    async fn fetch_from(
        &mut self,
        leader: i32,
        partitions: &[TopicPartition],
        sink: &mut impl FnMut(&str, i32, &RecordView<'_>),
    ) -> Result<(usize, bool)> {
        // Topic ids (for Fetch v13+) come from cached metadata.
        let mut ids: BTreeMap<String, Uuid> = BTreeMap::new();
        for (topic, _) in partitions {
            if !ids.contains_key(topic) {
                let meta = self
                    .client
                    .topic(topic, false, self.config.metadata_wait)
                    .await?;
                ids.insert(topic.clone(), meta.topic_id);
            }
        }
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (topic, partition) in partitions {
            let fetch = FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(self.positions[&(topic.clone(), *partition)])
                .with_partition_max_bytes(self.config.partition_max_bytes);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                Some(t) => t.partitions.push(fetch),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                        .with_topic_id(ids[topic])
                        .with_partitions(vec![fetch]),
                ),
            }
        }
        let request = FetchRequest::default()
            .with_max_wait_ms(i32::try_from(self.config.max_wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_isolation_level(self.config.isolation_level)
            .with_topics(topics);
        let timeout = self.client.config().request_timeout + self.config.max_wait;
        let sent: Result<_> = async {
            let conn = self.client.broker_connection(leader).await?;
            let mut version = conn.version(ApiKey::Fetch)?;
            if ids.values().any(Uuid::is_nil) {
                version = version.min(LAST_FETCH_VERSION_BY_NAME);
            }
            Ok((
                version,
                conn.send_version(&request, version, timeout).await?,
            ))
        }
        .await;
        let (version, response) = match sent {
            Ok(sent) => sent,
            // The leader's node is gone or hung: ask the cluster again next poll,
            // as a Kafka consumer does after a disconnect.
            Err(e) if e.is_retriable() => {
                tracing::debug!(leader, "fetch: {e}");
                for topic in ids.keys() {
                    self.client.invalidate(topic);
                }
                return Ok((0, true));
            }
            Err(e) => return Err(e),
        };
        check(response.error_code, None, "fetch")?;

        let mut count = 0;
        let mut stale = false;
        for t in response.responses {
            let topic = if version > LAST_FETCH_VERSION_BY_NAME {
                let found = ids.iter().find(|(_, id)| **id == t.topic_id);
                match found {
                    Some((name, _)) => name.clone(),
                    None => {
                        return Err(Error::Protocol(format!(
                            "Fetch response names unknown topic id {}",
                            t.topic_id
                        )))
                    }
                }
            } else {
                t.topic.0.to_string()
            };
            for p in t.partitions {
                let key = (topic.clone(), p.partition_index);
                let Some(&offset) = self.positions.get(&key) else {
                    continue;
                };
                let context = format!("{topic}-{} at offset {offset}", p.partition_index);
                if let Err(e) = check(p.error_code, None, context) {
                    if e.is_retriable() || p.error_code == NOT_LEADER_OR_FOLLOWER {
                        // Next poll re-resolves the leader.
                        tracing::debug!("fetch: {e}");
                        self.client.invalidate(&topic);
                        stale = true;
                        continue;
                    }
                    return Err(e);
                }
                let data = p.records.unwrap_or_default();
                let partition = p.partition_index;
                let next = for_each_record(&topic, partition, data, offset, |r| {
                    count += 1;
                    sink(&topic, partition, r);
                })?;
                self.positions.insert(key, next);
            }
        }
        Ok((count, stale))
    }

    fn request_timeout_ms(&self) -> i32 {
        i32::try_from(self.client.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

// Byte positions in a v2 record batch header.
const LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORD_COUNT_AT: usize = 57;
const HEADER_LEN: usize = 61;
/// A record takes at least 7 bytes uncompressed; a compressed batch may
/// claim more records than bytes, but not without bound.
const MAX_RECORDS_PER_COMPRESSED_BYTE: usize = 64;

/// A decoded record as [`for_each_record`] hands it out: key and value
/// share the fetched buffer; the timestamp is already the effective one.
#[derive(Debug)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: &'a Option<Bytes>,
    pub value: &'a Option<Bytes>,
    pub headers: &'a kafka_protocol::indexmap::IndexMap<StrBytes, Option<Bytes>>,
}

impl RecordView<'_> {
    /// An owned copy of the record.
    pub fn to_record(&self, topic: &str, partition: i32) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.to_owned(),
            partition,
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}

/// Decodes the record batches of one partition's fetch data, skipping
/// records before `fetch_offset` and control records; a trailing partial
/// batch (cut by the fetch size) is left for the next fetch. Returns the
/// records and the next offset to fetch.
pub fn decode_records(
    topic: &str,
    partition: i32,
    data: Bytes,
    fetch_offset: i64,
) -> Result<(Vec<ConsumerRecord>, i64)> {
    let mut records = Vec::new();
    let next = for_each_record(topic, partition, data, fetch_offset, |r| {
        records.push(r.to_record(topic, partition))
    })?;
    Ok((records, next))
}

/// Like [`decode_records`], but hands each record to `visit` without
/// copying it; returns the next offset to fetch.
pub fn for_each_record(
    topic: &str,
    partition: i32,
    mut data: Bytes,
    fetch_offset: i64,
    mut visit: impl FnMut(&RecordView<'_>),
) -> Result<i64> {
    let what = || format!("records of {topic}-{partition}");
    let mut next = fetch_offset;
    let mut complete_batches = 0;
    while data.len() >= LENGTH_AT + 4 {
        let base_offset = (&data[..8]).get_i64();
        let length = (&data[LENGTH_AT..]).get_i32();
        if length < 0 {
            return Err(Error::decode(
                what(),
                format!("negative batch length {length}"),
            ));
        }
        let total = LENGTH_AT + 4 + length as usize;
        if data.len() < total {
            break; // partial batch at the end of the response
        }
        let mut batch = data.split_to(total);
        if batch.len() < HEADER_LEN {
            return Err(Error::decode(
                what(),
                format!("batch of {total} bytes is too short"),
            ));
        }
        let magic = batch[MAGIC_AT];
        if magic != 2 {
            return Err(Error::decode(
                what(),
                format!("record format v{magic} is not supported"),
            ));
        }
        let attributes = (&batch[ATTRIBUTES_AT..]).get_i16();
        let last_offset_delta = (&batch[LAST_OFFSET_DELTA_AT..]).get_i32();
        let max_timestamp = (&batch[MAX_TIMESTAMP_AT..]).get_i64();
        let count = (&batch[RECORD_COUNT_AT..]).get_i32();
        let body = total - HEADER_LEN;
        let compressed = attributes & 0x7 != 0;
        let plausible = if compressed {
            (count as usize) <= body.saturating_mul(MAX_RECORDS_PER_COMPRESSED_BYTE)
        } else {
            (count as usize) <= body
        };
        if count < 0 || !plausible {
            return Err(Error::decode(
                what(),
                format!("implausible record count {count}"),
            ));
        }
        complete_batches += 1;
        let batch_end = base_offset + i64::from(last_offset_delta) + 1;
        let is_control = attributes & (1 << 5) != 0;
        if !is_control {
            let set =
                RecordBatchDecoder::decode(&mut batch).map_err(|e| Error::decode(what(), e))?;
            for r in &set.records {
                if r.offset < fetch_offset {
                    continue;
                }
                // With LogAppendTime the broker stamps the batch, not records.
                let timestamp = match r.timestamp_type {
                    TimestampType::LogAppend => max_timestamp,
                    TimestampType::Creation => r.timestamp,
                };
                visit(&RecordView {
                    offset: r.offset,
                    timestamp,
                    timestamp_type: r.timestamp_type,
                    key: &r.key,
                    value: &r.value,
                    headers: &r.headers,
                });
            }
        }
        next = next.max(batch_end);
    }
    if complete_batches == 0 && !data.is_empty() {
        return Err(Error::Protocol(format!(
            "{}: the batch at offset {fetch_offset} is larger than the fetch size",
            what()
        )));
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::{encode_batch, ProducerRecord};
    use bytes::BytesMut;
    use kafka_protocol::records::Compression;

    fn batch_at(base: i64, values: &[&str], compression: Compression) -> Bytes {
        let records: Vec<_> = values
            .iter()
            .map(|v| ProducerRecord {
                key: Some(Bytes::from(format!("k-{v}"))),
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: vec![("h".to_owned(), None)],
                timestamp: Some(1_700_000_000_000),
                ..Default::default()
            })
            .collect();
        let mut batch = BytesMut::from(&encode_batch(records.iter(), 0, compression).unwrap()[..]);
        // Re-base as the broker does on append (base offset is outside the CRC).
        batch[..8].copy_from_slice(&base.to_be_bytes());
        batch.freeze()
    }

    fn offsets_and_values(records: &[ConsumerRecord]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn decodes_batches_and_follows_offsets() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&batch_at(10, &["a", "b"], Compression::None));
        data.extend_from_slice(&batch_at(12, &["c"], Compression::Lz4));
        let (records, next) = decode_records("t", 3, data.freeze(), 11).unwrap();
        assert_eq!(
            offsets_and_values(&records),
            vec![(11, "b".into()), (12, "c".into())]
        );
        assert_eq!(next, 13);
        let r = &records[0];
        assert_eq!((r.topic.as_str(), r.partition), ("t", 3));
        assert_eq!(r.key.as_deref(), Some(&b"k-b"[..]));
        assert_eq!(r.headers, vec![("h".to_owned(), None)]);
        assert_eq!(r.timestamp, 1_700_000_000_000);
        assert_eq!(r.timestamp_type, TimestampType::Creation);
    }

    #[test]
    fn trailing_partial_batch_is_left_for_later() {
        let first = batch_at(0, &["a"], Compression::None);
        let second = batch_at(1, &["b"], Compression::None);
        let mut data = BytesMut::from(&first[..]);
        data.extend_from_slice(&second[..second.len() - 5]);
        let (records, next) = decode_records("t", 0, data.freeze(), 0).unwrap();
        assert_eq!(offsets_and_values(&records), vec![(0, "a".into())]);
        assert_eq!(next, 1);
    }

    #[test]
    fn empty_data_keeps_the_offset() {
        let (records, next) = decode_records("t", 0, Bytes::new(), 42).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 42);
    }

    #[test]
    fn lone_partial_batch_is_an_error() {
        let batch = batch_at(5, &["a"], Compression::None);
        let err = decode_records("t", 0, batch.slice(..batch.len() - 1), 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocol error: records of t-0: the batch at offset 5 is larger than the fetch size"
        );
    }

    #[test]
    fn implausible_record_count_is_refused_before_decoding() {
        let mut batch = BytesMut::from(&batch_at(0, &["a"], Compression::None)[..]);
        batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        let err = decode_records("t", 0, batch.freeze(), 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode records of t-0: implausible record count 2147483647"
        );
    }

    #[test]
    fn control_batches_advance_without_records() {
        let mut batch = BytesMut::from(&batch_at(7, &["marker"], Compression::None)[..]);
        // Set the control bit; the decoder is not asked to read it.
        batch[ATTRIBUTES_AT + 1] |= 1 << 5;
        let (records, next) = decode_records("t", 0, batch.freeze(), 7).unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 8);
    }

    #[test]
    fn offset_spec_wire_values() {
        assert_eq!(OffsetSpec::Earliest.to_wire(), -2);
        assert_eq!(OffsetSpec::Latest.to_wire(), -1);
        assert_eq!(OffsetSpec::Timestamp(1234).to_wire(), 1234);
    }
}
