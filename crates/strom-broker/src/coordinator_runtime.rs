//! The runtime the group and transaction coordinators share: one sans-io shard per
//! partition of their internal compacted topic (`__consumer_offsets`,
//! `__transaction_state`) that this broker leads.
//!
//! A call runs the shard under its lock and appends the records it returns to the
//! partition (plain records in one batch, a producer's pending records in a
//! transactional batch of their own). Replies, which may answer requests parked by
//! earlier calls, go out only once those records are below the partition's high
//! watermark, so a reply never acknowledges state a leader change could lose.
//!
//! Each shard is kept twice: the live copy that calls change, and the committed copy,
//! into which every appended record is replayed once the append succeeded. A failed
//! append puts the committed copy back in place of the live one (whose memory ran
//! ahead of its log), so the shard returns to its last committed state without
//! replaying its partition; the requests it had answered or parked are failed with
//! COORDINATOR_NOT_AVAILABLE. Loading replays the partition, transaction markers
//! included, through the same `replay` the committed copy uses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use strom_types::ErrorCode;
use tokio::sync::{oneshot, Notify};
use tracing::{info, warn};

use crate::broker::{now_ms, Broker};
use crate::internal_log::{encode_batch_for, replay_items, BatchProducer, ReplayItem};
use crate::partition::Partition;

/// Longest a request waits for its reply; joins park at most for the
/// rebalance timeout, so this only catches a reply that never comes.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One record a shard writes to its partition; a `None` value is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecord {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Records written in a transactional batch of one producer (pending until its marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionalWrite {
    pub producer: BatchProducer,
    pub records: Vec<ShardRecord>,
}

/// What a shard call hands back: records to append first, then replies to send and
/// effects for the coordinator's owner to carry out (e.g. transaction markers).
#[derive(Debug)]
pub struct ShardOutput<R, E> {
    pub records: Vec<ShardRecord>,
    pub transactional: Vec<TransactionalWrite>,
    pub replies: Vec<(u64, R)>,
    pub effects: Vec<E>,
}

impl<R, E> Default for ShardOutput<R, E> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            transactional: Vec::new(),
            replies: Vec::new(),
            effects: Vec::new(),
        }
    }
}

impl<R, E> ShardOutput<R, E> {
    pub fn merge(&mut self, other: Self) {
        self.records.extend(other.records);
        self.transactional.extend(other.transactional);
        self.replies.extend(other.replies);
        self.effects.extend(other.effects);
    }

    fn has_records(&self) -> bool {
        !self.records.is_empty() || self.transactional.iter().any(|w| !w.records.is_empty())
    }
}

/// A record the shard could not apply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplayFailed(pub String);

/// One item of the shard's partition, as replayed into it.
pub enum Replayed<'a> {
    Record {
        offset: i64,
        /// Set for a record of a transactional batch.
        producer: Option<BatchProducer>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

/// A sans-io coordinator shard. Persisted state changes only through `replay`; every
/// other method may change transient state (timers, parked requests) too.
pub trait CoordinatorShard: Clone + Send + 'static {
    type Reply: Send + 'static;
    type Effect: Send + 'static;

    fn replay(&mut self, item: Replayed<'_>) -> Result<(), ReplayFailed>;
    /// Called once after the partition is replayed (and after a rollback).
    fn loaded(&mut self, now_ms: i64) -> ShardOutput<Self::Reply, Self::Effect>;
    fn tick(&mut self, now_ms: i64) -> ShardOutput<Self::Reply, Self::Effect>;
    fn next_deadline_ms(&self) -> Option<i64>;
    /// The live path's news that a transaction marker was written at `offset`.
    fn marker_written(
        &mut self,
        now_ms: i64,
        offset: i64,
        producer_id: i64,
        commit: bool,
    ) -> ShardOutput<Self::Reply, Self::Effect>;
}

struct ShardCopies<S: CoordinatorShard> {
    live: S,
    committed: S,
    /// Requests this shard has seen and not answered yet, by request id.
    pending: HashMap<u64, oneshot::Sender<<S as CoordinatorShard>::Reply>>,
}

pub struct LoadedShard<S: CoordinatorShard> {
    pub partition: Arc<Partition>,
    /// The partition's leader epoch the shard was loaded in: a shard serves one term of
    /// leadership, and is loaded again from the log in the next.
    pub leader_epoch: i32,
    copies: Mutex<ShardCopies<S>>,
}

impl<S: CoordinatorShard> LoadedShard<S> {
    fn lock(&self) -> MutexGuard<'_, ShardCopies<S>> {
        self.copies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a call needs to deliver once its records are below the high watermark.
struct Delivery<R, E> {
    replies: Vec<(u64, R)>,
    effects: Vec<E>,
    /// The high watermark the records need, if any were written.
    wait_for: Option<i64>,
}

pub struct CoordinatorRuntime<S: CoordinatorShard> {
    /// `group`, `transaction`: for log lines.
    kind: &'static str,
    shards: RwLock<HashMap<i32, Arc<LoadedShard<S>>>>,
    next_request_id: AtomicU64,
    /// How long a call that wrote records waits before its replies go out.
    append_linger: Duration,
    /// Woken when a call may have moved a deadline earlier.
    pub deadlines_changed: Notify,
}

/// Runs file work (appends) off the async worker when the runtime allows it.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            shards: RwLock::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            append_linger: Duration::ZERO,
            deadlines_changed: Notify::new(),
        }
    }

    pub fn with_append_linger(mut self, linger: Duration) -> Self {
        self.append_linger = linger;
        self
    }

    pub fn loaded_count(&self) -> usize {
        self.shards.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn shard(&self, index: i32) -> Option<Arc<LoadedShard<S>>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .cloned()
    }

    pub fn loaded_shards(&self) -> Vec<Arc<LoadedShard<S>>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Replays `partition` into `fresh` and starts serving it: `loaded`, then `start`
    /// (what the owner hands a loaded shard). Returns their effects (e.g. markers to
    /// finish) for the owner to carry out.
    pub fn load(
        &self,
        index: i32,
        partition: Arc<Partition>,
        fresh: S,
        start: impl FnOnce(&mut S, i64) -> ShardOutput<S::Reply, S::Effect>,
    ) -> Result<Vec<S::Effect>, String> {
        let mut shard = fresh;
        // Through the reader: a replay never holds the partition's lock.
        let count = replay_items(partition.reader(), |item| match item {
            ReplayItem::Record {
                offset,
                producer,
                key,
                value,
            } => shard.replay(Replayed::Record {
                offset,
                producer,
                key: key.as_deref().unwrap_or_default(),
                value: value.as_deref(),
            }),
            ReplayItem::Marker {
                offset,
                producer_id,
                commit,
            } => shard.replay(Replayed::Marker {
                offset,
                producer_id,
                commit,
            }),
        })
        .map_err(|e| e.to_string())?;
        let loaded = Arc::new(LoadedShard {
            leader_epoch: partition.leader_epoch(),
            partition,
            copies: Mutex::new(ShardCopies {
                committed: shard.clone(),
                live: shard,
                pending: HashMap::new(),
            }),
        });
        let delivery = {
            let mut copies = loaded.lock();
            let now = now_ms();
            let mut output = copies.live.loaded(now);
            output.merge(start(&mut copies.live, now));
            self.persist(&loaded, &mut copies, output)
        };
        let effects = self.deliver_now(&loaded, delivery);
        self.shards
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, loaded);
        info!(
            kind = self.kind,
            partition = index,
            records = count,
            "coordinator shard loaded"
        );
        self.deadlines_changed.notify_one();
        Ok(effects)
    }

    /// Stops serving shard `index` (its partition is led elsewhere now): requests waiting
    /// on it fail, and the coordinator's clients look it up again.
    pub fn unload(&self, index: i32) {
        let removed = self
            .shards
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index);
        if let Some(loaded) = removed {
            loaded.lock().pending.clear();
            info!(
                kind = self.kind,
                partition = index,
                "coordinator shard unloaded"
            );
        }
    }

    /// Brings shard `index` in line with its partition's leadership here (a coordinator
    /// lives on its partition's leader): unloads it where this node does not lead, or
    /// leads in a newer epoch than the shard was loaded in. True when the caller must
    /// load it (again).
    pub fn follow_leadership(&self, index: i32, partition: Option<&Partition>) -> bool {
        let to_load = self.needs_load(index, partition);
        if to_load || partition.is_none_or(|p| !p.replica().is_leader()) {
            self.unload(index);
        }
        to_load
    }

    /// True when this node leads `partition` and shard `index` is not loaded in its
    /// current leader epoch.
    fn needs_load(&self, index: i32, partition: Option<&Partition>) -> bool {
        partition
            .filter(|p| p.replica().is_leader())
            .is_some_and(|p| {
                self.shard(index)
                    .is_none_or(|s| s.leader_epoch != p.leader_epoch())
            })
    }

    /// Shards load in the background (`coordinator_loads`): when this node leads a
    /// partition of the coordinator's `topic` whose shard is not loaded yet, waits for
    /// the round that brings it in, and answers COORDINATOR_LOAD_IN_PROGRESS (the
    /// client retries) if none finishes in time.
    pub async fn wait_for_loads(&self, broker: &Broker, topic: &str) -> Result<(), ErrorCode> {
        let to_load = broker.image().topic(topic).is_some_and(|t| {
            t.partitions
                .keys()
                .any(|i| self.needs_load(*i, broker.partition(topic, *i).as_deref()))
        });
        if to_load
            && !broker
                .coordinator_loads
                .request_and_wait(crate::coordinator_loads::REQUEST_WAIT)
                .await
        {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// Runs `f` on every loaded shard's live copy and persists what it returns
    /// (metadata changes handed to the shards).
    pub fn for_each_shard(
        &self,
        mut f: impl FnMut(&mut S, i64) -> ShardOutput<S::Reply, S::Effect>,
    ) -> Vec<S::Effect> {
        let mut effects = Vec::new();
        for loaded in self.loaded_shards() {
            let delivery = blocking(|| {
                let mut copies = loaded.lock();
                let output = f(&mut copies.live, now_ms());
                self.persist(&loaded, &mut copies, output)
            });
            effects.extend(self.deliver_now(&loaded, delivery));
        }
        self.deadlines_changed.notify_one();
        effects
    }

    /// Changes transient settings on both copies (they are not persisted, and a
    /// rollback must keep them).
    pub fn configure_all(&self, f: impl Fn(&mut S)) {
        for loaded in self.loaded_shards() {
            let mut copies = loaded.lock();
            f(&mut copies.live);
            f(&mut copies.committed);
        }
    }

    /// Runs `op` on shard `index` and waits for its reply. Returns the reply and the
    /// effects of the call, to be carried out by the caller.
    pub async fn call<O>(
        &self,
        index: i32,
        op: impl FnOnce(&mut S, i64, u64) -> O,
    ) -> Result<(S::Reply, Vec<S::Effect>), ErrorCode>
    where
        O: Into<ShardOutput<S::Reply, S::Effect>>,
    {
        let loaded = self.shard(index).ok_or(ErrorCode::NotCoordinator)?;
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let delivery = blocking(|| {
            let mut copies = loaded.lock();
            copies.pending.insert(request_id, sender);
            let now = now_ms();
            // Deadlines already past apply first (the timer task may not have run yet),
            // so the request sees the shard as of `now`: e.g. DeleteGroups right after a
            // session expired.
            let mut output = ShardOutput::default();
            if copies.live.next_deadline_ms().is_some_and(|d| d <= now) {
                output = copies.live.tick(now);
            }
            output.merge(op(&mut copies.live, now, request_id).into());
            self.persist(&loaded, &mut copies, output)
        });
        if delivery.wait_for.is_some() && !self.append_linger.is_zero() {
            tokio::time::sleep(self.append_linger).await;
        }
        let effects = self.deliver(&loaded, delivery).await;
        self.deadlines_changed.notify_one();
        match tokio::time::timeout(REPLY_TIMEOUT, receiver).await {
            Ok(Ok(reply)) => Ok((reply, effects)),
            Ok(Err(_)) => Err(ErrorCode::CoordinatorNotAvailable),
            Err(_) => {
                loaded.lock().pending.remove(&request_id);
                Err(ErrorCode::RequestTimedOut)
            }
        }
    }

    /// Runs `op`, which answers no request, on shard `index` (e.g. the record that
    /// completes a transaction once its markers are written); returns its effects.
    pub async fn run(
        &self,
        index: i32,
        op: impl FnOnce(&mut S, i64) -> ShardOutput<S::Reply, S::Effect>,
    ) -> Result<Vec<S::Effect>, ErrorCode> {
        let loaded = self.shard(index).ok_or(ErrorCode::NotCoordinator)?;
        let delivery = blocking(|| {
            let mut copies = loaded.lock();
            let output = op(&mut copies.live, now_ms());
            self.persist(&loaded, &mut copies, output)
        });
        let effects = self.deliver(&loaded, delivery).await;
        self.deadlines_changed.notify_one();
        Ok(effects)
    }

    /// Runs `op` on every loaded shard (ListGroups, ListTransactions) and returns
    /// their replies.
    pub async fn call_all(
        &self,
        op: impl Fn(&mut S, i64, u64) -> ShardOutput<S::Reply, S::Effect>,
    ) -> Vec<S::Reply> {
        let mut replies = Vec::new();
        for loaded in self.loaded_shards() {
            let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
            let (sender, receiver) = oneshot::channel();
            let delivery = blocking(|| {
                let mut copies = loaded.lock();
                copies.pending.insert(request_id, sender);
                let output = op(&mut copies.live, now_ms(), request_id);
                self.persist(&loaded, &mut copies, output)
            });
            self.deliver(&loaded, delivery).await;
            if let Ok(Ok(reply)) = tokio::time::timeout(REPLY_TIMEOUT, receiver).await {
                replies.push(reply);
            }
        }
        replies
    }

    /// Appends a transaction marker to shard `index`'s partition under the shard's
    /// lock, so it orders with the shard's own writes, and tells the shard.
    pub async fn write_marker(
        &self,
        index: i32,
        producer: BatchProducer,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<Vec<S::Effect>, ErrorCode> {
        let loaded = self.shard(index).ok_or(ErrorCode::NotCoordinator)?;
        let (result, delivery) = blocking(|| {
            let mut copies = loaded.lock();
            let now = now_ms();
            let written = loaded.partition.append_control_marker(
                producer.producer_id,
                producer.producer_epoch,
                coordinator_epoch,
                commit,
                now,
            );
            match written {
                Ok(info) => {
                    let offset = info.base_offset;
                    let marker = Replayed::Marker {
                        offset,
                        producer_id: producer.producer_id,
                        commit,
                    };
                    if let Err(e) = copies.committed.replay(marker) {
                        warn!(kind = self.kind, error = %e, "replaying a marker failed");
                    }
                    let output =
                        copies
                            .live
                            .marker_written(now, offset, producer.producer_id, commit);
                    let mut delivery = self.persist(&loaded, &mut copies, output);
                    delivery.wait_for = delivery.wait_for.max(Some(offset + 1));
                    (Ok(()), delivery)
                }
                Err(e) => (
                    Err(crate::errors::log_error_code(&e)),
                    Delivery {
                        replies: Vec::new(),
                        effects: Vec::new(),
                        wait_for: None,
                    },
                ),
            }
        });
        let effects = self.deliver(&loaded, delivery).await;
        result.map(|()| effects)
    }

    /// The earliest deadline over all shards.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.loaded_shards()
            .iter()
            .filter_map(|s| s.lock().live.next_deadline_ms())
            .min()
    }

    /// Ticks every shard whose deadline has passed; returns their effects.
    pub async fn tick_due(&self) -> Vec<S::Effect> {
        let mut effects = Vec::new();
        for loaded in self.loaded_shards() {
            let delivery = blocking(|| {
                let now = now_ms();
                let mut copies = loaded.lock();
                if copies.live.next_deadline_ms().is_none_or(|d| d > now) {
                    return None;
                }
                let output = copies.live.tick(now);
                Some(self.persist(&loaded, &mut copies, output))
            });
            if let Some(delivery) = delivery {
                effects.extend(self.deliver(&loaded, delivery).await);
            }
        }
        effects
    }

    /// Appends the output's records. On success they are replayed into the committed
    /// copy; on failure the live copy is rolled back to the committed one and every
    /// request it had taken is failed.
    fn persist(
        &self,
        loaded: &LoadedShard<S>,
        copies: &mut ShardCopies<S>,
        output: ShardOutput<S::Reply, S::Effect>,
    ) -> Delivery<S::Reply, S::Effect> {
        if !output.has_records() {
            return Delivery {
                replies: output.replies,
                effects: output.effects,
                wait_for: None,
            };
        }
        let (appended, failure) = append_output(&loaded.partition, &output);
        // What reached the log is committed state, even when a later batch failed.
        let mut end = None;
        for (base_offset, producer, records) in appended {
            for (i, record) in records.iter().enumerate() {
                let replayed = Replayed::Record {
                    offset: base_offset + i as i64,
                    producer,
                    key: &record.key,
                    value: record.value.as_deref(),
                };
                if let Err(e) = copies.committed.replay(replayed) {
                    warn!(kind = self.kind, error = %e, "replaying an appended record failed");
                }
            }
            end = end.max(Some(base_offset + records.len() as i64));
        }
        let Some(e) = failure else {
            return Delivery {
                replies: output.replies,
                effects: output.effects,
                wait_for: end,
            };
        };
        warn!(
            kind = self.kind,
            partition = loaded.partition.index,
            error = %e,
            "appending coordinator records failed; rolling the shard back to its last committed state"
        );
        copies.live = copies.committed.clone();
        // Answered and parked requests alike lost their state: fail them all.
        copies.pending.clear();
        let restarted = copies.live.loaded(now_ms());
        // Records of the restart itself are written by the next successful call.
        Delivery {
            replies: restarted.replies,
            effects: restarted.effects,
            wait_for: None,
        }
    }

    /// Sends the replies once the records are below the high watermark.
    async fn deliver(
        &self,
        loaded: &LoadedShard<S>,
        delivery: Delivery<S::Reply, S::Effect>,
    ) -> Vec<S::Effect> {
        if let Some(offset) = delivery.wait_for {
            if !wait_for_high_watermark(&loaded.partition, offset).await {
                warn!(
                    kind = self.kind,
                    partition = loaded.partition.index,
                    offset,
                    "coordinator records did not reach the high watermark; failing their requests"
                );
                let mut copies = loaded.lock();
                for (request_id, _) in &delivery.replies {
                    copies.pending.remove(request_id);
                }
                return Vec::new();
            }
        }
        self.send_replies(loaded, delivery.replies);
        delivery.effects
    }

    /// [`Self::deliver`] for sync callers: the records of loads and metadata changes are
    /// below the high watermark as soon as they are appended on a single replica; with
    /// followers their replies (there are none: no request waits on them) would wait.
    fn deliver_now(
        &self,
        loaded: &LoadedShard<S>,
        delivery: Delivery<S::Reply, S::Effect>,
    ) -> Vec<S::Effect> {
        self.send_replies(loaded, delivery.replies);
        delivery.effects
    }

    fn send_replies(&self, loaded: &LoadedShard<S>, replies: Vec<(u64, S::Reply)>) {
        if replies.is_empty() {
            return;
        }
        let mut copies = loaded.lock();
        for (request_id, reply) in replies {
            if let Some(sender) = copies.pending.remove(&request_id) {
                let _ = sender.send(reply);
            }
        }
    }
}

/// Waits until `offset` is below the partition's high watermark; false if it never
/// gets there within the reply timeout.
async fn wait_for_high_watermark(partition: &Partition, offset: i64) -> bool {
    let wait = async {
        loop {
            let notified = partition.appended();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if partition.high_watermark() >= offset {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(REPLY_TIMEOUT, wait).await.is_ok()
}

type Appended<'a> = Vec<(i64, Option<BatchProducer>, &'a [ShardRecord])>;

/// Appends plain records as one batch, then each producer's as a transactional batch;
/// returns each appended batch's base offset with its records, and the error that
/// stopped the rest, if any.
fn append_output<'a, R, E>(
    partition: &Partition,
    output: &'a ShardOutput<R, E>,
) -> (Appended<'a>, Option<strom_log::LogError>) {
    let now = now_ms();
    let write = |producer: Option<BatchProducer>, records: &[ShardRecord]| {
        let entries: Vec<(Option<Bytes>, Option<Bytes>)> = records
            .iter()
            .map(|r| {
                (
                    Some(Bytes::copy_from_slice(&r.key)),
                    r.value.as_ref().map(|v| Bytes::copy_from_slice(v)),
                )
            })
            .collect();
        let mut batch = encode_batch_for(&entries, producer, now)?;
        partition
            .append(&mut batch, now)
            .map(|info| info.base_offset)
    };
    let batches = std::iter::once((None, &output.records[..])).chain(
        output
            .transactional
            .iter()
            .map(|w| (Some(w.producer), &w.records[..])),
    );
    let mut appended = Vec::new();
    let mut failure = None;
    for (producer, records) in batches.filter(|(_, records)| !records.is_empty()) {
        match write(producer, records) {
            Ok(base) => appended.push((base, producer, records)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if !appended.is_empty() {
        partition.notify_appended();
    }
    (appended, failure)
}

/// Runs a runtime's timers until the task is dropped, handing tick effects to `on_effects`.
pub async fn run_timers<S: CoordinatorShard, F, Fut>(
    runtime: impl std::ops::Deref<Target = CoordinatorRuntime<S>>,
    on_effects: F,
) where
    F: Fn(Vec<S::Effect>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    const IDLE_WAIT: Duration = Duration::from_secs(1);
    loop {
        let wait = runtime
            .next_deadline_ms()
            .map(|deadline| Duration::from_millis(deadline.saturating_sub(now_ms()).max(0) as u64))
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = runtime.deadlines_changed.notified() => {}
        }
        let effects = runtime.tick_due().await;
        if !effects.is_empty() {
            on_effects(effects).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::topic_config::{BrokerConfigLookup, ConfigSource};
    use strom_metadata::MetadataImage;

    struct NoOverrides;
    impl BrokerConfigLookup for NoOverrides {
        fn broker_config(&self, _name: &str) -> Vec<(String, ConfigSource)> {
            Vec::new()
        }
    }

    /// Sums the numbers in its records; a producer's stay pending until its commit marker.
    #[derive(Clone, Default)]
    struct Counter {
        total: i64,
        markers: Vec<(i64, bool)>,
        pending_by_producer: HashMap<i64, i64>,
    }

    impl CoordinatorShard for Counter {
        type Reply = i64;
        type Effect = ();
        fn replay(&mut self, item: Replayed<'_>) -> Result<(), ReplayFailed> {
            match item {
                Replayed::Record {
                    producer, value, ..
                } => {
                    let n: i64 = std::str::from_utf8(value.unwrap_or_default())
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| ReplayFailed("not a number".into()))?;
                    match producer {
                        None => self.total += n,
                        Some(p) => *self.pending_by_producer.entry(p.producer_id).or_default() += n,
                    }
                }
                Replayed::Marker {
                    producer_id,
                    commit,
                    ..
                } => {
                    let pending = self.pending_by_producer.remove(&producer_id).unwrap_or(0);
                    if commit {
                        self.total += pending;
                    }
                    self.markers.push((producer_id, commit));
                }
            }
            Ok(())
        }
        fn loaded(&mut self, _now_ms: i64) -> ShardOutput<i64, ()> {
            ShardOutput::default()
        }
        fn tick(&mut self, _now_ms: i64) -> ShardOutput<i64, ()> {
            ShardOutput::default()
        }
        fn next_deadline_ms(&self) -> Option<i64> {
            None
        }
        fn marker_written(&mut self, _: i64, _: i64, _: i64, _: bool) -> ShardOutput<i64, ()> {
            ShardOutput::default()
        }
    }

    /// An op that adds `n` (a record of `size` bytes) and answers with the new total.
    fn add(n: i64, pad: usize) -> impl FnOnce(&mut Counter, i64, u64) -> ShardOutput<i64, ()> {
        move |shard, _now, id| {
            let mut value = n.to_string().into_bytes();
            let record = ShardRecord {
                key: vec![b'k'; pad],
                value: Some(std::mem::take(&mut value)),
            };
            shard
                .replay(Replayed::Record {
                    offset: -1,
                    producer: None,
                    key: &record.key,
                    value: record.value.as_deref(),
                })
                .unwrap();
            ShardOutput {
                records: vec![record],
                replies: vec![(id, shard.total)],
                ..ShardOutput::default()
            }
        }
    }

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        let mut settings = crate::topic_settings::resolve(
            &MetadataImage::default(),
            &NoOverrides,
            "__test_coordinator",
        );
        // A record larger than a segment cannot be appended: the failure under test.
        settings.log.segment_bytes = 4096;
        let log = strom_log::PartitionLog::open(dir, settings.log.clone(), now_ms()).unwrap();
        let partition = Arc::new(Partition::new(
            "__test_coordinator".into(),
            strom_types::TopicId::new_v4(),
            0,
            0,
            log,
            settings,
        ));
        crate::replica_manager::make_sole_leader(&partition, 1);
        partition
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_append_rolls_the_shard_back_to_its_committed_state() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let runtime = CoordinatorRuntime::<Counter>::new("test");
        runtime
            .load(0, partition.clone(), Counter::default(), |_, _| {
                ShardOutput::default()
            })
            .unwrap();
        assert_eq!(runtime.call(0, add(5, 1)).await.unwrap().0, 5);
        assert_eq!(runtime.call(0, add(7, 1)).await.unwrap().0, 12);
        // The shard applies 100 in memory, but its record does not fit a segment.
        assert_eq!(
            runtime.call(0, add(100, 8192)).await.unwrap_err(),
            ErrorCode::CoordinatorNotAvailable
        );
        // Back at 12, not 112, without a replay of the partition.
        assert_eq!(runtime.call(0, add(1, 1)).await.unwrap().0, 13);
        assert_eq!(partition.log_start_offset(), 0);
        assert_eq!(partition.high_watermark(), 3);
        // A reload from the log agrees with the live shard.
        let reloaded = CoordinatorRuntime::<Counter>::new("test");
        reloaded
            .load(0, partition.clone(), Counter::default(), |_, _| {
                ShardOutput::default()
            })
            .unwrap();
        let total = reloaded.shard(0).unwrap().lock().live.total;
        assert_eq!(total, 13);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactional_records_stay_pending_until_their_marker_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let runtime = CoordinatorRuntime::<Counter>::new("test");
        runtime
            .load(0, partition.clone(), Counter::default(), |_, _| {
                ShardOutput::default()
            })
            .unwrap();
        let producer = BatchProducer {
            producer_id: 42,
            producer_epoch: 3,
        };
        let (reply, _) = runtime
            .call(0, move |shard: &mut Counter, _, id| {
                *shard.pending_by_producer.entry(42).or_default() += 9;
                ShardOutput {
                    records: vec![ShardRecord {
                        key: b"k".to_vec(),
                        value: Some(b"2".to_vec()),
                    }],
                    transactional: vec![TransactionalWrite {
                        producer,
                        records: vec![ShardRecord {
                            key: b"k".to_vec(),
                            value: Some(b"9".to_vec()),
                        }],
                    }],
                    replies: vec![(id, 0)],
                    effects: Vec::new(),
                }
            })
            .await
            .unwrap();
        assert_eq!(reply, 0);
        // Both batches are in the log: the plain one first, then the producer's.
        let replayed = CoordinatorRuntime::<Counter>::new("test");
        replayed
            .load(0, partition.clone(), Counter::default(), |_, _| {
                ShardOutput::default()
            })
            .unwrap();
        let shard = replayed.shard(0).unwrap();
        let copies = shard.lock();
        assert_eq!(copies.live.total, 2);
        assert_eq!(copies.live.pending_by_producer.get(&42), Some(&9));
        assert_eq!(copies.committed.pending_by_producer.get(&42), Some(&9));
    }
}
