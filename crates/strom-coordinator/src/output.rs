//! What a shard call hands back to the runtime.

use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse,
    SyncGroupResponse,
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
}

/// Records to append and replies to send.
///
/// The runtime appends `records` to the shard's `__consumer_offsets` partition
/// (in order, durably) before it sends `replies`: a reply may acknowledge state
/// that only those records make durable. The shard has already applied the
/// records to its own state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    pub records: Vec<CoordinatorRecord>,
    /// `(request_id, reply)`. May answer requests from earlier calls (parked
    /// JoinGroup/SyncGroup), and may answer several at once.
    pub replies: Vec<(u64, Reply)>,
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
        self.records.is_empty() && self.replies.is_empty()
    }
}
