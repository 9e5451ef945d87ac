//! A partition hosted by this broker: its log, its replica state and its topic's settings.
//!
//! Every reader of "how far may a consumer read" goes through [`Partition::high_watermark`]
//! (and [`Partition::last_stable_offset`] for read_committed). The high watermark is the
//! smallest log end offset among the maximal ISR, as the partition's [`LeaderState`]
//! computes it (`replica_manager`); with one replica it follows each append.
//!
//! Locks, always in this order: the replica role (read for appends and fetches, write for
//! a role change, as Kafka's leaderIsrUpdateLock), the log, then a role's state.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use strom_log::{AppendInfo, LogError, LogReader, PartitionLog};
use strom_types::TopicId;
use strom_wire::batch::SplitBatch;

use strom_replication::ReplicaLog;

use crate::broker::now_ms;
use crate::log_dirs::{is_storage_fault, DataDir};
use crate::replica_manager::{Replica, Role};
use crate::topic_settings::TopicSettings;

pub struct Partition {
    pub topic: String,
    pub topic_id: TopicId,
    pub index: i32,
    /// Leader, follower or neither, with the leader epoch; set from the metadata image.
    replica: RwLock<Replica>,
    /// `None` once the broker has closed the log for shutdown or deletion.
    log: Mutex<Option<PartitionLog>>,
    /// Reads the log and its published offsets without taking its lock.
    reader: LogReader,
    settings: RwLock<TopicSettings>,
    /// Wakes the fetches parked on this partition: records were appended,
    /// or the partition is gone.
    appended: Notify,
    /// The log dir holding it; a storage error in the log takes that dir offline.
    dir: Arc<DataDir>,
}

fn closed() -> LogError {
    LogError::Io(std::io::Error::other("the partition's log is closed"))
}

impl Partition {
    pub fn new(
        topic: String,
        topic_id: TopicId,
        index: i32,
        leader_epoch: i32,
        log: PartitionLog,
        settings: TopicSettings,
    ) -> Self {
        let reader = log.reader();
        let dir = DataDir::new(log.dir().to_path_buf());
        Self {
            topic,
            topic_id,
            index,
            replica: RwLock::new(Replica::unassigned(leader_epoch)),
            log: Mutex::new(Some(log)),
            reader,
            settings: RwLock::new(settings),
            appended: Notify::new(),
            dir,
        }
    }

    /// A partition hosted in `dir`, which is offline, with no log: every request for it
    /// answers KAFKA_STORAGE_ERROR (Kafka's offline partitions).
    pub fn offline(
        topic: String,
        topic_id: TopicId,
        index: i32,
        leader_epoch: i32,
        settings: TopicSettings,
        dir: Arc<DataDir>,
    ) -> Self {
        Self {
            topic,
            topic_id,
            index,
            replica: RwLock::new(Replica::unassigned(leader_epoch)),
            log: Mutex::new(None),
            reader: LogReader::unopened(),
            settings: RwLock::new(settings),
            appended: Notify::new(),
            dir,
        }
    }

    /// The log dir the broker placed the partition in (`new` gives a dir of its own).
    pub fn in_dir(mut self, dir: Arc<DataDir>) -> Self {
        self.dir = dir;
        self
    }

    pub fn data_dir(&self) -> &Arc<DataDir> {
        &self.dir
    }

    /// KAFKA_STORAGE_ERROR once the partition's log dir is offline.
    pub fn check_online(&self) -> Result<(), strom_replication::ReplicationError> {
        if self.dir.is_offline() {
            return Err(strom_replication::ReplicationError::KafkaStorageError(
                format!("log dir {} is offline", self.dir.path.display()),
            ));
        }
        Ok(())
    }

    /// Takes the partition's log dir offline after `error` (one of its disk's).
    pub fn fail_dir(&self, error: &LogError) {
        self.dir.fail(error);
    }

    pub fn replica(&self) -> RwLockReadGuard<'_, Replica> {
        self.replica.read().unwrap_or_else(|p| p.into_inner())
    }

    /// For a role change only (`replica_manager`).
    pub(crate) fn replica_mut(&self) -> RwLockWriteGuard<'_, Replica> {
        self.replica.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The leader epoch of the partition as this broker last learned it.
    pub fn leader_epoch(&self) -> i32 {
        self.replica().leader_epoch
    }

    /// Runs `f` with the log locked. Appends and reads are short, page-cache
    /// bound operations, so a plain mutex is the right tool.
    pub fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        if self.dir.is_offline() {
            return Err(self.dir.offline_error());
        }
        let mut guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let result = match guard.as_mut() {
            Some(log) => f(log),
            None => Err(closed()),
        };
        if let Err(e) = &result {
            if is_storage_fault(e) {
                if let Some(log) = guard.as_mut() {
                    log.mark_failed(e.to_string());
                }
                self.dir.fail(e);
            }
        }
        result
    }

    /// Whether `producer_id` at `epoch` has a transaction open on this partition. Answers
    /// false rather than wait while an append holds the log (the caller then checks with
    /// the coordinator, which is never wrong, only slower).
    pub fn has_open_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        let Ok(guard) = self.log.try_lock() else {
            return false;
        };
        guard.as_ref().is_some_and(|log| {
            log.producer_state()
                .get(producer_id)
                .is_some_and(|e| e.epoch == epoch && e.current_txn_first_offset.is_some())
        })
    }

    pub fn settings(&self) -> TopicSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn update_settings(&self, settings: TopicSettings) {
        let log_config = settings.log.clone();
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        let _ = self.with_log(|log| {
            log.update_config(log_config);
            Ok(())
        });
    }

    /// Takes the log out for a clean close; later calls see a closed log.
    pub fn take_log(&self) -> Option<PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Wakes every fetch parked on this partition. Called after appends and
    /// when the partition is deleted, so a parked fetch reads again.
    pub fn notify_appended(&self) {
        self.appended.notify_waiters();
    }

    /// Resolves at the next `notify_appended`; `enable` it before reading
    /// the log so an append in between is not missed.
    pub fn appended(&self) -> Notified<'_> {
        self.appended.notified()
    }

    pub fn high_watermark(&self) -> i64 {
        self.reader.offsets().high_watermark()
    }

    pub fn last_stable_offset(&self) -> i64 {
        self.reader.offsets().last_stable_offset()
    }

    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    pub fn log_start_offset(&self) -> i64 {
        self.reader.offsets().log_start_offset()
    }

    /// Appends as this partition's leader: the batches are stamped with its leader epoch and
    /// the high watermark moves as far as the in-sync replicas allow. Refused when this
    /// broker does not lead the partition (the callers check first; this is the guard).
    pub fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_as_leader(|log, epoch| log.append(batches, epoch, now_ms))
    }

    /// [`Self::append`] of batches whose records stay in the caller's buffer (the request):
    /// only their headers are rewritten, and the file write takes both parts at once.
    pub fn append_split(
        &self,
        batches: &mut [SplitBatch<'_>],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_as_leader(|log, epoch| log.append_split(batches, epoch, now_ms))
    }

    /// Writes a transaction marker for `producer_id` as this partition's leader (the
    /// coordinator's WriteTxnMarkers, or its own markers), ending its transaction here;
    /// the high watermark moves and parked fetches wake.
    pub fn append_control_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let info = self.append_as_leader(|log, epoch| {
            log.append_control_marker(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                commit,
                epoch,
                now_ms,
            )
        })?;
        self.notify_appended();
        Ok(info)
    }

    fn append_as_leader(
        &self,
        append: impl FnOnce(&mut PartitionLog, i32) -> Result<AppendInfo, LogError>,
    ) -> Result<AppendInfo, LogError> {
        let replica = self.replica();
        let Role::Leader(leader) = &replica.role else {
            return Err(not_leader());
        };
        let epoch = replica.leader_epoch;
        self.with_log(|log| {
            let info = append(log, epoch)?;
            let state = leader.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hw) = state.maybe_increment_high_watermark(&*log, now_ms()) {
                log.maybe_increment_high_watermark(hw);
            }
            Ok(info)
        })
    }

    /// Raises the high watermark to `offset` (a leader's new one after a follower's fetch
    /// or an ISR change); returns whether it moved.
    pub fn raise_high_watermark(&self, offset: i64) -> bool {
        self.with_log(|log| Ok(log.maybe_increment_high_watermark(offset)))
            .unwrap_or(false)
    }

    /// After a load: starts from the checkpointed high watermark (if any); the role the
    /// image gives moves it from there.
    pub fn restore_high_watermark(&self, checkpointed_high_watermark: Option<i64>) {
        if let Some(offset) = checkpointed_high_watermark {
            let _ = self.with_log(|log| {
                log.set_high_watermark(offset);
                Ok(())
            });
        }
    }

    /// The log's published offsets and epochs, as replication reads them.
    pub fn replica_log(&self) -> impl ReplicaLog + '_ {
        &self.reader
    }
}

fn not_leader() -> LogError {
    LogError::Io(std::io::Error::other(
        "this broker is not the leader of the partition",
    ))
}

/// The log cleaner's rounds take the partition's lock only for their short steps.
impl strom_log::LogLock for Partition {
    fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        Partition::with_log(self, f)
    }
}
