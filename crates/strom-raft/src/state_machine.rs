//! The application's state machine and openraft's view of it.

use std::fmt::Debug;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EmptyNode, EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::storage::{Shared, StoredSnapshot};
use crate::{Entry, EntryRecords, LogId, NodeId, TypeConfig};

/// The one listener of the committed log.
pub trait MetadataStateMachine: Send + Sync + 'static {
    type Record: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// Applies the records of the entry at `offset`. Called in log order, each entry
    /// exactly once per process after the snapshot it started from.
    fn apply(&mut self, offset: u64, records: &[Self::Record]);

    /// Records that rebuild the current state (what a snapshot stores).
    fn snapshot(&self) -> Vec<Self::Record>;

    /// Replaces the state with a snapshot's, whose last entry is at `offset` (at start, or
    /// installed from the leader).
    fn restore(&mut self, offset: u64, records: Vec<Self::Record>);
}

fn decode_records<R: DeserializeOwned>(data: &[u8]) -> Result<Vec<R>, serde_json::Error> {
    serde_json::from_slice(data)
}

pub(crate) fn encode_records<R: Serialize>(
    records: &[R],
) -> Result<EntryRecords, serde_json::Error> {
    records
        .iter()
        .map(serde_json::value::to_raw_value)
        .collect::<Result<Vec<Box<RawValue>>, _>>()
        .map(EntryRecords)
}

/// openraft's state machine: the application's, plus what raft needs to know of it.
pub(crate) struct StateMachineStore<SM: MetadataStateMachine> {
    sm: SM,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, EmptyNode>,
    shared: Arc<Shared>,
}

impl<SM: MetadataStateMachine> StateMachineStore<SM> {
    /// The state machine, restored from the stored snapshot if there is one.
    pub(crate) fn new(mut sm: SM, shared: Arc<Shared>) -> Result<Self, serde_json::Error> {
        let snapshot = shared.cache().snapshot.clone();
        let mut store = Self {
            last_applied: None,
            membership: StoredMembership::default(),
            sm: {
                if let Some(s) = &snapshot {
                    if let Some(last) = s.meta.last_log_id {
                        sm.restore(last.index, decode_records(&s.data)?);
                    }
                }
                sm
            },
            shared,
        };
        if let Some(s) = snapshot {
            store.last_applied = s.meta.last_log_id;
            store.membership = s.meta.last_membership;
        }
        Ok(store)
    }
}

/// Builds a snapshot of what was applied when it was made.
pub(crate) struct SnapshotBuilder {
    snapshot: Result<StoredSnapshot, String>,
    shared: Arc<Shared>,
}

pub(crate) fn snapshot_id(last: &Option<LogId>) -> String {
    match last {
        Some(id) => format!("{}-{}", id.index, id.leader_id.term),
        None => "empty".to_string(),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let snapshot = self
            .snapshot
            .clone()
            .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e)))?;
        let stored = snapshot.clone();
        self.shared
            .run(move |backend| backend.save_snapshot(&stored))
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(snapshot.meta.signature()), AnyError::new(&e))
            })?;
        self.shared.cache().snapshot = Some(snapshot.clone());
        Ok(Snapshot {
            meta: snapshot.meta,
            snapshot: Box::new(Cursor::new(snapshot.data)),
        })
    }
}

impl<SM: MetadataStateMachine> RaftStateMachine<TypeConfig> for StateMachineStore<SM> {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, EmptyNode>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(EntryRecords(raw)) => {
                    let records = raw
                        .iter()
                        .map(|r| serde_json::from_str::<SM::Record>(r.get()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| StorageIOError::apply(entry.log_id, AnyError::new(&e)))?;
                    self.sm.apply(entry.log_id.index, &records);
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            self.last_applied = Some(entry.log_id);
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The records are taken now, so the snapshot is exactly what was applied so far.
        let snapshot = serde_json::to_vec(&self.sm.snapshot())
            .map(|data| StoredSnapshot {
                meta: SnapshotMeta {
                    last_log_id: self.last_applied,
                    last_membership: self.membership.clone(),
                    snapshot_id: snapshot_id(&self.last_applied),
                },
                data,
            })
            .map_err(|e| e.to_string());
        SnapshotBuilder {
            snapshot,
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, EmptyNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let records: Vec<SM::Record> = decode_records(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        // Durable first: a crash after it restarts from this snapshot.
        let saved = stored.clone();
        self.shared
            .run(move |backend| backend.save_snapshot(&saved))
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        if let Some(last) = meta.last_log_id {
            self.sm.restore(last.index, records);
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.shared.cache().snapshot = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.shared.cache().snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
