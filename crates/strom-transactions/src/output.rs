//! What a shard call hands back to the runtime.

use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResult;
use kafka_protocol::messages::{
    describe_transactions_response, AddOffsetsToTxnResponse, AddPartitionsToTxnResponse,
    EndTxnResponse, InitProducerIdResponse, ListTransactionsResponse,
};

use crate::records::TxnRecord;

/// A response, for the request id it is paired with in [`TxnOutput::replies`].
#[derive(Debug, Clone, PartialEq)]
pub enum TxnReply {
    InitProducerId(InitProducerIdResponse),
    /// AddPartitionsToTxn v0-3: `results_by_topic_v3_and_below` filled.
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    /// One transaction of an AddPartitionsToTxn v4+ batch (or a produce-path
    /// verification); the runtime gathers them into `results_by_transaction`.
    AddPartitionsToTxnResult(AddPartitionsToTxnResult),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    /// One transactional id of a DescribeTransactions request.
    DescribeTransaction(describe_transactions_response::TransactionState),
    /// This shard's part of a ListTransactions response (the runtime merges shards).
    ListTransactions(ListTransactionsResponse),
}

/// Markers to write: one control batch (commit or abort) for `producer_id` at
/// `producer_epoch` to each partition, as WriteTxnMarkers would. When all are written
/// the runtime calls [`markers_written`](crate::TransactionCoordinatorShard::markers_written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// Records to append, replies to send and markers to write.
///
/// The runtime appends `records` (in order) to the shard's `__transaction_state`
/// partition and waits until they are durable (at the high watermark) before it sends
/// `replies` or starts `markers`; an output without records is released only once
/// everything appended before it is durable. If the append fails, the runtime rolls the
/// shard back (or reloads it) and answers the replies' requests with its own error.
/// The shard has already applied the records to its state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TxnOutput {
    pub records: Vec<TxnRecord>,
    /// `(request_id, reply)`; a call answers its own request (or none, see below).
    pub replies: Vec<(u64, TxnReply)>,
    pub markers: Vec<MarkerRequest>,
    /// The call needs a fresh producer id and did nothing else (no records, no reply):
    /// allocate one and repeat the same call with it.
    pub needs_producer_id: bool,
}

impl TxnOutput {
    pub(crate) fn reply(&mut self, request_id: u64, reply: TxnReply) {
        self.replies.push((request_id, reply));
    }

    /// The reply for `request_id`, if this output carries one.
    pub fn reply_for(&self, request_id: u64) -> Option<&TxnReply> {
        self.replies
            .iter()
            .find(|(id, _)| *id == request_id)
            .map(|(_, r)| r)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.replies.is_empty()
            && self.markers.is_empty()
            && !self.needs_producer_id
    }
}
