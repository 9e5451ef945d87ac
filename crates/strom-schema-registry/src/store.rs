//! The registry's state kept in the `_schemas` topic through a Kafka client: one task reads
//! the topic from its start and applies every record; writes go through one writer at a
//! time, which first catches up with the topic's end and, after appending, waits until its
//! own records have been read back, so what it answers is what the topic holds.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use strom_client::{
    Admin, Client, ConnectionConfig, Consumer, ConsumerConfig, NewTopic, OffsetSpec, Producer,
    ProducerConfig, ProducerRecord,
};
use tokio::sync::{watch, Mutex};
use tracing::{info, warn};

use crate::error::RegistryError;
use crate::records::{Record, Write};
use crate::state::{Outcome, Registry};

pub const DEFAULT_TOPIC: &str = "_schemas";
/// How long a write waits to be read back before answering 50002.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_DELAY: Duration = Duration::from_millis(500);
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Where the store finds its topic.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub bootstrap: String,
    pub connection: ConnectionConfig,
    pub topic: String,
    /// The topic's replication factor when the registry creates it (capped by the
    /// brokers there are, as a one-node cluster has one).
    pub replication_factor: i16,
    /// How many brokers the cluster is meant to have (its quorum's voters): creating the
    /// topic waits for that many, up to [`BROKERS_WAIT`], so that nodes started together
    /// do not leave it on the first one alone.
    pub expected_brokers: usize,
}

/// How long creating the topic waits for the expected brokers before settling for fewer.
const BROKERS_WAIT: Duration = Duration::from_secs(60);

pub struct Store {
    state: Arc<RwLock<Registry>>,
    /// The next offset of the topic not yet applied.
    applied: watch::Receiver<i64>,
    writer: Mutex<Writer>,
    topic: String,
}

struct Writer {
    producer: Producer,
    offsets: Consumer,
}

impl Store {
    /// Creates the topic if need be, starts the reader and returns once the state holds
    /// everything the topic held at the start.
    pub async fn open(config: StoreConfig) -> Result<Arc<Store>, strom_client::Error> {
        let connect = || Client::new(&config.bootstrap, config.connection.clone());
        ensure_topic(connect()?, &config).await?;
        let state = Arc::new(RwLock::new(Registry::default()));
        let (applied_tx, applied) = watch::channel(0);
        tokio::spawn(read_forever(
            Consumer::new(connect()?, reader_config()),
            config.topic.clone(),
            state.clone(),
            applied_tx,
        ));
        let store = Arc::new(Store {
            state,
            applied,
            writer: Mutex::new(Writer {
                producer: Producer::new(connect()?, ProducerConfig::default())?,
                offsets: Consumer::new(connect()?, ConsumerConfig::default()),
            }),
            topic: config.topic.clone(),
        });
        let mut writer = store.writer.lock().await;
        // A topic just created may not be in every broker's metadata yet.
        let mut attempts = 0;
        let end = loop {
            match end_offset(&mut writer.offsets, &store.topic).await {
                Ok(end) => break end,
                Err(e) if e.is_retriable() && attempts < OPEN_ATTEMPTS => {
                    attempts += 1;
                    writer.offsets.client().invalidate(&store.topic);
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Err(e) => return Err(e),
            }
        };
        drop(writer);
        store
            .wait_applied(end, Duration::from_secs(600))
            .await
            .map_err(|_| strom_client::Error::Timeout {
                what: format!("reading {}", store.topic),
                ms: 600_000,
            })?;
        info!(topic = %store.topic, records_end = end, "schema registry state loaded");
        Ok(store)
    }

    /// Reads the state (never across an await).
    pub fn read<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs a write operation on the caught-up state, appends its records and returns its
    /// answer once they have been read back.
    pub async fn write<T>(
        &self,
        operation: impl FnOnce(&Registry) -> Result<Outcome<T>, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut writer = self.writer.lock().await;
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        // The topic's leader may be moving (its node gone): retry until it has moved.
        let end = loop {
            match end_offset(&mut writer.offsets, &self.topic).await {
                Ok(end) => break end,
                Err(e) => retry_or_fail(e, deadline, writer.offsets.client(), &self.topic).await?,
            }
        };
        self.wait_applied(end, WRITE_TIMEOUT).await?;
        let outcome = self.read(operation)?;
        if outcome.writes.is_empty() {
            return Ok(outcome.answer);
        }
        let records = outcome
            .writes
            .into_iter()
            .map(|Write { key, value }| ProducerRecord {
                partition: Some(0),
                key: Some(Bytes::from(key)),
                value: value.map(Bytes::from),
                ..ProducerRecord::default()
            })
            .collect::<Vec<_>>();
        // Sending again after a failure may write the records twice: harmless, as applying a
        // record is idempotent and compaction keeps one.
        let written = loop {
            match writer.producer.send(&self.topic, records.clone()).await {
                Ok(written) => break written,
                Err(e) => retry_or_fail(e, deadline, writer.producer.client(), &self.topic).await?,
            }
        };
        let last = written.iter().filter_map(|m| m.offset).max().unwrap_or(end);
        self.wait_applied(last + 1, WRITE_TIMEOUT).await?;
        Ok(outcome.answer)
    }

    async fn wait_applied(&self, offset: i64, timeout: Duration) -> Result<(), RegistryError> {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|a| *a >= offset))
            .await
            .map_err(|_| RegistryError::Timeout)?
            .map_err(|_| RegistryError::Store("the reader of the schemas topic stopped".into()))?;
        Ok(())
    }
}

fn reader_config() -> ConsumerConfig {
    ConsumerConfig {
        max_wait: Duration::from_millis(500),
        ..ConsumerConfig::default()
    }
}

/// After a retriable error (a leader gone or moving), waits and forgets the topic's
/// metadata so the next try asks again; otherwise, or past the deadline, the store's error.
async fn retry_or_fail(
    error: strom_client::Error,
    deadline: tokio::time::Instant,
    client: &mut Client,
    topic: &str,
) -> Result<(), RegistryError> {
    if !error.is_retriable() || tokio::time::Instant::now() + RETRY_DELAY > deadline {
        return Err(RegistryError::Store(error.to_string()));
    }
    warn!(%error, "schema registry: writing the schemas topic failed; retrying");
    client.invalidate(topic);
    tokio::time::sleep(RETRY_DELAY).await;
    Ok(())
}

/// How often opening retries the topic's end offset (RETRY_DELAY apart).
const OPEN_ATTEMPTS: u32 = 120;

async fn end_offset(consumer: &mut Consumer, topic: &str) -> Result<i64, strom_client::Error> {
    let offsets = consumer
        .list_offsets(topic, &[0], OffsetSpec::Latest)
        .await?;
    Ok(offsets.get(&0).copied().flatten().unwrap_or(0))
}

/// Creates the topic, compacted with one partition, unless it exists.
async fn ensure_topic(client: Client, config: &StoreConfig) -> Result<(), strom_client::Error> {
    let mut admin = Admin::new(client);
    let wanted = usize::try_from(config.replication_factor)
        .unwrap_or(1)
        .min(config.expected_brokers)
        .max(1);
    let settle_by = tokio::time::Instant::now() + BROKERS_WAIT;
    loop {
        let brokers = match admin.describe_cluster().await {
            Ok(cluster) => cluster.brokers.len().max(1),
            Err(e) => {
                warn!(error = %e, "schema registry: the cluster is not reachable yet");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        if brokers < wanted && tokio::time::Instant::now() < settle_by {
            tokio::time::sleep(RETRY_DELAY).await;
            continue;
        }
        if brokers < wanted {
            warn!(brokers, wanted, "schema registry: fewer brokers than expected; the schemas topic gets fewer replicas");
        }
        let replication_factor = config.replication_factor.min(brokers as i16);
        let topic = NewTopic {
            name: config.topic.clone(),
            partitions: 1,
            replication_factor,
            configs: vec![("cleanup.policy".into(), "compact".into())],
        };
        match admin.create_topic(topic).await {
            Ok(()) => info!(topic = %config.topic, replication_factor, "created the schemas topic"),
            Err(strom_client::Error::Kafka {
                code: TOPIC_ALREADY_EXISTS,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        return Ok(());
    }
}

/// Applies the topic's records to the state for as long as the process runs.
async fn read_forever(
    mut consumer: Consumer,
    topic: String,
    state: Arc<RwLock<Registry>>,
    applied: watch::Sender<i64>,
) {
    consumer.assign(&topic, 0, 0);
    loop {
        match consumer.poll().await {
            Ok(records) => {
                if records.is_empty() {
                    // An empty round still moves the position past aborted or compacted gaps.
                    if let Some(position) = consumer.position(&topic, 0) {
                        applied.send_if_modified(|a| replace_if_greater(a, position));
                    }
                    continue;
                }
                let mut state = state.write().unwrap_or_else(|e| e.into_inner());
                for record in &records {
                    let Some(key) = &record.key else { continue };
                    match Record::decode(key, record.value.as_deref()) {
                        Ok(decoded) => state.apply(decoded),
                        Err(e) => {
                            warn!(offset = record.offset, error = %e, "skipping a record of the schemas topic")
                        }
                    }
                }
                drop(state);
                let position = consumer
                    .position(&topic, 0)
                    .unwrap_or_else(|| records.last().map_or(0, |r| r.offset + 1));
                applied.send_if_modified(|a| replace_if_greater(a, position));
            }
            Err(e) => {
                warn!(error = %e, "schema registry: reading the schemas topic failed; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

fn replace_if_greater(current: &mut i64, new: i64) -> bool {
    if new > *current {
        *current = new;
        true
    } else {
        false
    }
}
