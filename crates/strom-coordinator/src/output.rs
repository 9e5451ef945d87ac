//! What a shard call hands back to the runtime.

use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    SyncGroupResponse, TxnOffsetCommitResponse,
};

use crate::records::CoordinatorRecord;

/// A response, for the request id it is paired with in [`Output::replies`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    OffsetDelete(OffsetDeleteResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

/// Records of one producer's transaction, to append as one transactional batch
/// (producer id and epoch set, base sequence -1) to the shard's partition.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionalRecords {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub records: Vec<CoordinatorRecord>,
}

/// Records to append and replies to send.
///
/// The runtime appends `records` to the shard's `__consumer_offsets` partition
/// (in order, durably; non-transactional), then each entry of
/// `transactional_records` as a transactional batch, before it sends `replies`:
/// a reply may acknowledge state that only those records make durable. The shard
/// has already applied the records to its own state, in that order: outputs must
/// reach the log in the order the calls returned them, and a merged output must not
/// put a call's `records` after an earlier call's `transactional_records` (the
/// shard orders a transaction's offsets against plain commits by that order).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    pub records: Vec<CoordinatorRecord>,
    /// `(request_id, reply)`. May answer requests from earlier calls (parked
    /// JoinGroup/SyncGroup), and may answer several at once.
    pub replies: Vec<(u64, Reply)>,
    /// Transactional batches (TxnOffsetCommit), appended after `records`.
    pub transactional_records: Vec<TransactionalRecords>,
}

impl Output {
    pub(crate) fn reply(&mut self, request_id: u64, reply: Reply) {
        self.replies.push((request_id, reply));
    }

    /// The reply for `request_id`, if this output carries one.
    pub fn reply_for(&self, request_id: u64) -> Option<&Reply> {
        self.replies
            .iter()
            .find(|(id, _)| *id == request_id)
            .map(|(_, r)| r)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.replies.is_empty() && self.transactional_records.is_empty()
    }
}
