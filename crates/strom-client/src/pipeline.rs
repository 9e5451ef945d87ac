//! A batching, pipelining producer for throughput work (`strom perf`):
//! records accumulate per partition until `batch_size` bytes or `linger`,
//! each leader gets its own connection, and up to `max_in_flight` Produce
//! requests per connection wait for their acknowledgements at once.
//!
//! Unlike [`crate::Producer`] it does not retry: any error is reported on
//! the acknowledgement channel and stops the connection it came from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{Client, TopicMetadata};
use crate::connection::{RequestWriter, ResponseReader};
use crate::error::{check, Error, Result};

/// Produce v13 addresses topics by id; older versions by name.
const LAST_PRODUCE_VERSION_BY_NAME: i16 = 12;
/// The v2 batch header, and a generous bound on one record's framing
/// (length, attributes, deltas, key and value lengths, header count).
const BATCH_HEADER_BYTES: usize = 61;
const RECORD_OVERHEAD_BYTES: usize = 24;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// 0 (no response), 1 (leader) or -1 (all in-sync replicas).
    pub acks: i16,
    pub compression: Compression,
    /// A partition's batch is sent once its records take this many bytes
    /// (uncompressed, as Kafka's `batch.size`).
    pub batch_size: usize,
    /// A batch that is not full is sent this long after its first record.
    pub linger: Duration,
    /// Produce requests awaiting acknowledgement per connection.
    pub max_in_flight: usize,
    /// The broker-side wait for acks, sent in the request.
    pub ack_timeout: Duration,
    pub metadata_wait: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            compression: Compression::None,
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            max_in_flight: 5,
            ack_timeout: Duration::from_secs(30),
            metadata_wait: Duration::from_secs(5),
        }
    }
}

/// One batch the broker acknowledged (or, with acks=0, that was written).
#[derive(Debug)]
pub struct BatchAck {
    pub partition: i32,
    /// `None` with acks=0.
    pub base_offset: Option<i64>,
    pub records: usize,
    /// Key and value bytes of the batch's records.
    pub payload_bytes: usize,
    /// The tags given to [`PipelinedProducer::send`], in record order.
    pub tags: Vec<u64>,
    /// When the acknowledgement was read (with acks=0: when written).
    pub acked_at: Instant,
}

/// Records of one partition waiting to be sent.
struct OpenBatch {
    /// Keys and values back to back; records slice it when encoded.
    data: BytesMut,
    /// Per record: key length (`None`: null key), value length, timestamp.
    records: Vec<(Option<u32>, u32, i64)>,
    tags: Vec<u64>,
    opened_at: Instant,
    estimated_bytes: usize,
}

/// A batch encoded and on its way.
struct SentBatch {
    partition: i32,
    records: usize,
    payload_bytes: usize,
    tags: Vec<u64>,
}

struct InFlight {
    correlation_id: i32,
    batches: Vec<SentBatch>,
    _permit: OwnedSemaphorePermit,
}

/// One leader's connection: we write, a task reads the acknowledgements.
struct Pipe {
    writer: RequestWriter,
    version: i16,
    permits: Arc<Semaphore>,
    in_flight: Option<mpsc::Sender<InFlight>>,
    reader: Option<JoinHandle<()>>,
}

pub struct PipelinedProducer {
    client: Client,
    topic: String,
    meta: TopicMetadata,
    config: PipelineConfig,
    open: BTreeMap<i32, OpenBatch>,
    pipes: HashMap<i32, Pipe>,
    acks: Option<mpsc::Sender<Result<BatchAck>>>,
    /// Reused between batches so encoding allocates per batch, not per record.
    scratch: Vec<Record>,
}

impl std::fmt::Debug for PipelinedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinedProducer")
            .field("topic", &self.topic)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PipelinedProducer {
    /// A producer for `topic` (which must exist). Acknowledgements arrive
    /// on the returned channel, which the caller must drain: when it is
    /// full, the connections stop reading and sending stalls.
    pub async fn new(
        mut client: Client,
        topic: &str,
        config: PipelineConfig,
    ) -> Result<(Self, mpsc::Receiver<Result<BatchAck>>)> {
        if !matches!(config.acks, -1..=1) {
            return Err(Error::InvalidArgument(format!(
                "acks must be -1 (all), 0 or 1, not {}",
                config.acks
            )));
        }
        if config.max_in_flight == 0 {
            return Err(Error::InvalidArgument(
                "max in-flight requests must be at least 1".to_owned(),
            ));
        }
        let meta = client.topic(topic, false, config.metadata_wait).await?;
        let (tx, rx) = mpsc::channel(1024);
        let producer = Self {
            client,
            topic: topic.to_owned(),
            meta,
            config,
            open: BTreeMap::new(),
            pipes: HashMap::new(),
            acks: Some(tx),
            scratch: Vec::new(),
        };
        Ok((producer, rx))
    }

    pub fn partition_count(&self) -> i32 {
        self.meta.partitions.len() as i32
    }

    /// Adds a record to its partition's batch, sending the batch when it
    /// is full; waits when `max_in_flight` requests are unanswered.
    pub async fn send(
        &mut self,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp: i64,
        tag: u64,
    ) -> Result<()> {
        if !(0..self.partition_count()).contains(&partition) {
            return Err(Error::InvalidArgument(format!(
                "partition {partition} is not in the range [0...{}) of topic {}",
                self.partition_count(),
                self.topic
            )));
        }
        let batch_size = self.config.batch_size;
        let batch = self.open.entry(partition).or_insert_with(|| OpenBatch {
            data: BytesMut::with_capacity(batch_size + value.len()),
            records: Vec::new(),
            tags: Vec::new(),
            opened_at: Instant::now(),
            estimated_bytes: BATCH_HEADER_BYTES,
        });
        let key_len = key.map(|k| k.len() as u32);
        if let Some(key) = key {
            batch.data.put_slice(key);
        }
        batch.data.put_slice(value);
        batch.records.push((key_len, value.len() as u32, timestamp));
        batch.tags.push(tag);
        batch.estimated_bytes += RECORD_OVERHEAD_BYTES + value.len() + key.map_or(0, <[u8]>::len);
        if batch.estimated_bytes >= batch_size {
            self.send_batches(vec![partition]).await?;
        }
        Ok(())
    }

    /// When the oldest open batch's linger ends, if any batch is open.
    pub fn linger_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|b| b.opened_at + self.config.linger)
            .min()
    }

    /// Sends the batches whose linger has ended.
    pub async fn send_lingered(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<i32> = self
            .open
            .iter()
            .filter(|(_, b)| b.opened_at + self.config.linger <= now)
            .map(|(p, _)| *p)
            .collect();
        self.send_batches(due).await
    }

    /// Sends every open batch now.
    pub async fn flush(&mut self) -> Result<()> {
        let all: Vec<i32> = self.open.keys().copied().collect();
        self.send_batches(all).await
    }

    /// Sends what is open, waits for every acknowledgement, and closes the
    /// connections; the acknowledgement channel ends after the last one.
    pub async fn close(mut self) -> Result<()> {
        self.flush().await?;
        self.acks = None;
        for (_, mut pipe) in self.pipes.drain() {
            pipe.in_flight = None;
            if let Some(reader) = pipe.reader.take() {
                reader
                    .await
                    .map_err(|e| Error::Protocol(format!("acknowledgement reader failed: {e}")))?;
            }
        }
        Ok(())
    }

    /// Encodes the open batches of `partitions` and sends them, one
    /// Produce request per leader.
    async fn send_batches(&mut self, partitions: Vec<i32>) -> Result<()> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes, SentBatch)>> = BTreeMap::new();
        for partition in partitions {
            let Some(batch) = self.open.remove(&partition) else {
                continue;
            };
            let leader = self.leader(partition)?;
            let (encoded, sent) = self.encode(partition, batch)?;
            by_leader
                .entry(leader)
                .or_default()
                .push((partition, encoded, sent));
        }
        for (leader, batches) in by_leader {
            self.send_to(leader, batches).await?;
        }
        Ok(())
    }

    fn leader(&self, partition: i32) -> Result<i32> {
        self.meta
            .partitions
            .iter()
            .find(|p| p.partition == partition && p.leader >= 0)
            .map(|p| p.leader)
            .ok_or_else(|| Error::Protocol(format!("{}-{partition} has no leader", self.topic)))
    }

    fn encode(&mut self, partition: i32, batch: OpenBatch) -> Result<(Bytes, SentBatch)> {
        let data = batch.data.freeze();
        let mut at = 0usize;
        self.scratch.clear();
        for (i, &(key_len, value_len, timestamp)) in batch.records.iter().enumerate() {
            let key = key_len.map(|n| {
                let key = data.slice(at..at + n as usize);
                at += n as usize;
                key
            });
            let value = data.slice(at..at + value_len as usize);
            at += value_len as usize;
            self.scratch.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence
                // changes; keep it constant (base sequence -1).
                sequence: i as i32 - 1,
                timestamp,
                key,
                value: Some(value),
                headers: IndexMap::new(),
            });
        }
        let mut buf = BytesMut::with_capacity(batch.estimated_bytes);
        let options = RecordEncodeOptions {
            version: 2,
            compression: self.config.compression,
        };
        RecordBatchEncoder::encode(&mut buf, &self.scratch, &options)
            .map_err(|e| Error::encode("record batch", e))?;
        self.scratch.clear();
        let sent = SentBatch {
            partition,
            records: batch.records.len(),
            payload_bytes: data.len(),
            tags: batch.tags,
        };
        Ok((buf.freeze(), sent))
    }

    async fn send_to(&mut self, leader: i32, batches: Vec<(i32, Bytes, SentBatch)>) -> Result<()> {
        let acks = self.config.acks;
        let ack_timeout = self.config.ack_timeout;
        let mut data = Vec::with_capacity(batches.len());
        let mut sent = Vec::with_capacity(batches.len());
        for (partition, encoded, batch) in batches {
            data.push(
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(encoded)),
            );
            sent.push(batch);
        }
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(i32::try_from(ack_timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                .with_topic_id(self.meta.topic_id)
                .with_partition_data(data)]);
        let pipe = self.pipe(leader).await?;
        let permit = pipe.permits.clone().acquire_owned().await.map_err(|_| {
            Error::Protocol(format!(
                "the connection to {} stopped after an error",
                pipe.writer.addr()
            ))
        })?;
        let correlation_id = pipe.writer.write(&request, pipe.version).await?;
        match &pipe.in_flight {
            Some(in_flight) => {
                let entry = InFlight {
                    correlation_id,
                    batches: sent,
                    _permit: permit,
                };
                in_flight.send(entry).await.map_err(|_| {
                    Error::Protocol("the acknowledgement reader has stopped".to_owned())
                })?;
            }
            None => {
                // acks=0: the broker never answers; written is done.
                let acked_at = Instant::now();
                let tx = self.acks.as_ref().ok_or_else(closed)?;
                for batch in sent {
                    let ack = batch_ack(batch, None, acked_at);
                    tx.send(Ok(ack)).await.map_err(|_| closed())?;
                }
            }
        }
        Ok(())
    }

    async fn pipe(&mut self, leader: i32) -> Result<&mut Pipe> {
        if !self.pipes.contains_key(&leader) {
            let conn = self.client.dedicated_connection(leader).await?;
            let (writer, reader) = conn.into_pipeline()?;
            let mut version = writer.version(ApiKey::Produce)?;
            if self.meta.topic_id.is_nil() {
                version = version.min(LAST_PRODUCE_VERSION_BY_NAME);
            }
            let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
            let (in_flight, reader_task) = if self.config.acks == 0 {
                (None, None)
            } else {
                let (tx, rx) = mpsc::channel(self.config.max_in_flight);
                let acks = self.acks.clone().ok_or_else(closed)?;
                // The ack wait happens inside the broker; ours must cover it.
                let timeout = self
                    .client
                    .config()
                    .request_timeout
                    .max(self.config.ack_timeout + Duration::from_secs(5));
                let task = tokio::spawn(read_acks(
                    reader,
                    rx,
                    acks,
                    permits.clone(),
                    version,
                    timeout,
                    self.topic.clone(),
                ));
                (Some(tx), Some(task))
            };
            let pipe = Pipe {
                writer,
                version,
                permits,
                in_flight,
                reader: reader_task,
            };
            self.pipes.insert(leader, pipe);
        }
        self.pipes
            .get_mut(&leader)
            .ok_or_else(|| Error::Protocol(format!("connection to broker {leader} vanished")))
    }
}

fn closed() -> Error {
    Error::Protocol("the acknowledgement channel is closed".to_owned())
}

fn batch_ack(batch: SentBatch, base_offset: Option<i64>, acked_at: Instant) -> BatchAck {
    BatchAck {
        partition: batch.partition,
        base_offset,
        records: batch.records,
        payload_bytes: batch.payload_bytes,
        tags: batch.tags,
        acked_at,
    }
}

/// Reads one connection's Produce responses in request order and reports
/// each batch; the first error is reported and stops the connection.
async fn read_acks(
    mut reader: ResponseReader,
    mut in_flight: mpsc::Receiver<InFlight>,
    acks: mpsc::Sender<Result<BatchAck>>,
    permits: Arc<Semaphore>,
    version: i16,
    timeout: Duration,
    topic: String,
) {
    while let Some(request) = in_flight.recv().await {
        let outcome = reader
            .read::<ProduceRequest>(version, request.correlation_id, timeout)
            .await;
        let acked_at = Instant::now();
        let result = outcome.and_then(|response| {
            let mut found: Vec<_> = Vec::with_capacity(request.batches.len());
            for batch in request.batches {
                let answer = response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partition_responses)
                    .find(|p| p.index == batch.partition)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "Produce response does not mention {topic}-{}",
                            batch.partition
                        ))
                    })?;
                let context = format!("{topic}-{}", batch.partition);
                check(answer.error_code, answer.error_message.as_deref(), context)?;
                found.push(batch_ack(batch, Some(answer.base_offset), acked_at));
            }
            Ok(found)
        });
        match result {
            Ok(found) => {
                for ack in found {
                    if acks.send(Ok(ack)).await.is_err() {
                        permits.close();
                        return;
                    }
                }
            }
            Err(e) => {
                permits.close();
                let _ = acks.send(Err(e)).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn producer(config: PipelineConfig) -> PipelinedProducer {
        PipelinedProducer {
            client: Client::new("127.0.0.1:1", Default::default()).unwrap(),
            topic: "t".to_owned(),
            meta: TopicMetadata {
                name: "t".to_owned(),
                topic_id: uuid::Uuid::nil(),
                is_internal: false,
                error_code: 0,
                partitions: vec![],
            },
            config,
            open: BTreeMap::new(),
            pipes: HashMap::new(),
            acks: None,
            scratch: Vec::new(),
        }
    }

    #[test]
    fn open_batch_encodes_as_one_v2_batch_with_keys_values_and_timestamps() {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut p = producer(PipelineConfig {
                compression,
                ..Default::default()
            });
            let mut data = BytesMut::new();
            data.put_slice(b"k1v1");
            data.put_slice(b"value-2");
            let batch = OpenBatch {
                data,
                records: vec![(Some(2), 2, 1_000), (None, 7, 1_005)],
                tags: vec![10, 11],
                opened_at: Instant::now(),
                estimated_bytes: 200,
            };
            let (encoded, sent) = p.encode(4, batch).unwrap();
            assert_eq!(
                (sent.partition, sent.records, sent.payload_bytes),
                (4, 2, 11)
            );
            assert_eq!(sent.tags, vec![10, 11]);
            let len = i32::from_be_bytes(encoded[8..12].try_into().unwrap());
            assert_eq!(len as usize, encoded.len() - 12, "one batch only");
            let set = RecordBatchDecoder::decode(&mut encoded.clone()).unwrap();
            assert_eq!(set.compression, compression);
            let got: Vec<_> = set
                .records
                .iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        0,
                        1_000,
                        Some(Bytes::from_static(b"k1")),
                        Some(Bytes::from_static(b"v1"))
                    ),
                    (1, 1_005, None, Some(Bytes::from_static(b"value-2"))),
                ]
            );
        }
    }

    #[test]
    fn linger_deadline_is_the_oldest_open_batch_plus_linger() {
        let mut p = producer(PipelineConfig {
            linger: Duration::from_millis(7),
            ..Default::default()
        });
        assert_eq!(p.linger_deadline(), None);
        let t0 = Instant::now();
        for (partition, opened_at) in [(0, t0 + Duration::from_millis(3)), (1, t0)] {
            p.open.insert(
                partition,
                OpenBatch {
                    data: BytesMut::new(),
                    records: vec![],
                    tags: vec![],
                    opened_at,
                    estimated_bytes: 0,
                },
            );
        }
        assert_eq!(p.linger_deadline(), Some(t0 + Duration::from_millis(7)));
    }
}
