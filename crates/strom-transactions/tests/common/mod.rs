//! A harness that keeps the shard's log, so every test can check that replaying it
//! reproduces the live state.

#![allow(dead_code)]

use strom_transactions::{
    ListTransactionsFilter, MarkerRequest, TransactionCoordinatorShard, TransactionMetadata,
    TxnConfig, TxnOutput, TxnPartitions, TxnRecord, TxnReply,
};
pub use strom_types::ErrorCode;

pub const COORDINATOR_EPOCH: i32 = 5;
pub const NONE: i16 = 0;

pub fn code(e: ErrorCode) -> i16 {
    e.code()
}

pub fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_owned(), partition)
}

pub struct Harness {
    pub shard: TransactionCoordinatorShard,
    pub config: TxnConfig,
    pub log: Vec<TxnRecord>,
    pub next_request: u64,
    pub next_producer_id: i64,
    pub last: TxnOutput,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(TxnConfig::default())
    }

    pub fn with_config(config: TxnConfig) -> Self {
        let mut shard = TransactionCoordinatorShard::new(config.clone(), COORDINATOR_EPOCH);
        let out = shard.loaded(0);
        assert!(out.is_empty());
        Self {
            shard,
            config,
            log: Vec::new(),
            next_request: 1,
            next_producer_id: 1000,
            last: TxnOutput::default(),
        }
    }

    fn keep(&mut self, out: TxnOutput) -> &TxnOutput {
        self.log.extend(out.records.iter().cloned());
        self.last = out;
        &self.last
    }

    pub fn rid(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Writes a state directly (as if replayed from an older log).
    pub fn put(&mut self, id: &str, m: &TransactionMetadata) {
        let record = TxnRecord::transaction(id, Some(m));
        self.shard.replay(&record).unwrap();
        self.log.push(record);
    }

    /// InitProducerId, allocating producer ids when the shard asks for one.
    pub fn init_v(
        &mut self,
        now: i64,
        version: i16,
        id: &str,
        timeout: i32,
        pid: i64,
        epoch: i16,
    ) -> (i16, i64, i16) {
        let rid = self.rid();
        let mut out = self
            .shard
            .init_producer_id(now, rid, version, id, timeout, pid, epoch, None);
        if out.needs_producer_id {
            assert!(out.records.is_empty() && out.replies.is_empty() && out.markers.is_empty());
            self.next_producer_id += 1;
            out = self.shard.init_producer_id(
                now,
                rid,
                version,
                id,
                timeout,
                pid,
                epoch,
                Some(self.next_producer_id),
            );
            assert!(!out.needs_producer_id);
        }
        let out = self.keep(out);
        match out.reply_for(rid) {
            Some(TxnReply::InitProducerId(r)) => (r.error_code, r.producer_id.0, r.producer_epoch),
            other => panic!("no InitProducerId reply: {other:?}"),
        }
    }

    pub fn init(&mut self, now: i64, id: &str) -> (i16, i64, i16) {
        self.init_v(now, 5, id, 60_000, -1, -1)
    }

    pub fn add_v(
        &mut self,
        now: i64,
        version: i16,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
    ) -> Vec<(String, i32, i16)> {
        let rid = self.rid();
        let out = self
            .shard
            .add_partitions_to_txn(now, rid, version, id, pid, epoch, parts);
        let out = self.keep(out);
        match out.reply_for(rid) {
            Some(TxnReply::AddPartitionsToTxn(r)) => {
                assert!(r.results_by_transaction.is_empty());
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| {
                        t.results_by_partition.iter().map(move |p| {
                            (
                                t.name.0.to_string(),
                                p.partition_index,
                                p.partition_error_code,
                            )
                        })
                    })
                    .collect()
            }
            other => panic!("no AddPartitionsToTxn reply: {other:?}"),
        }
    }

    /// AddPartitionsToTxn v3; the one error all partitions got.
    pub fn add(
        &mut self,
        now: i64,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
    ) -> i16 {
        let results = self.add_v(now, 3, id, pid, epoch, parts);
        assert_eq!(results.len(), parts.len());
        let first = results[0].2;
        assert!(results.iter().all(|r| r.2 == first), "{results:?}");
        first
    }

    pub fn batched(
        &mut self,
        now: i64,
        version: i16,
        txn: TxnPartitions,
    ) -> Vec<(String, i32, i16)> {
        let rid = self.rid();
        let out = self
            .shard
            .add_partitions_to_txn_batched(now, rid, version, &txn);
        let out = self.keep(out);
        result_codes(out, rid, &txn.transactional_id)
    }

    pub fn produce(
        &mut self,
        now: i64,
        id: &str,
        pid: i64,
        epoch: i16,
        parts: &[(String, i32)],
        v: strom_transactions::TransactionVersion,
    ) -> Vec<(String, i32, i16)> {
        let rid = self.rid();
        let out = self
            .shard
            .verify_for_produce(now, rid, id, pid, epoch, parts, v);
        let out = self.keep(out);
        result_codes(out, rid, id)
    }

    pub fn add_offsets(
        &mut self,
        now: i64,
        version: i16,
        id: &str,
        pid: i64,
        epoch: i16,
        group: &str,
    ) -> i16 {
        let rid = self.rid();
        let out = self
            .shard
            .add_offsets_to_txn(now, rid, version, id, pid, epoch, group);
        match self.keep(out).reply_for(rid) {
            Some(TxnReply::AddOffsetsToTxn(r)) => r.error_code,
            other => panic!("no AddOffsetsToTxn reply: {other:?}"),
        }
    }

    pub fn end(
        &mut self,
        now: i64,
        version: i16,
        id: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
    ) -> (i16, i64, i16) {
        let rid = self.rid();
        let mut out = self
            .shard
            .end_txn(now, rid, version, id, pid, epoch, commit, None);
        if out.needs_producer_id {
            assert!(out.records.is_empty() && out.replies.is_empty() && out.markers.is_empty());
            self.next_producer_id += 1;
            out = self.shard.end_txn(
                now,
                rid,
                version,
                id,
                pid,
                epoch,
                commit,
                Some(self.next_producer_id),
            );
        }
        match self.keep(out).reply_for(rid) {
            Some(TxnReply::EndTxn(r)) => (r.error_code, r.producer_id.0, r.producer_epoch),
            other => panic!("no EndTxn reply: {other:?}"),
        }
    }

    pub fn markers_written(&mut self, now: i64, marker: &MarkerRequest) -> &TxnOutput {
        let out = self.shard.markers_written(
            now,
            &marker.transactional_id,
            marker.producer_id,
            marker.producer_epoch,
        );
        self.keep(out)
    }

    pub fn tick(&mut self, now: i64) -> &TxnOutput {
        let out = self.shard.tick(now);
        self.keep(out)
    }

    pub fn describe(
        &mut self,
        id: &str,
    ) -> kafka_protocol::messages::describe_transactions_response::TransactionState {
        let rid = self.rid();
        let out = self.shard.describe_transaction(0, rid, id);
        assert!(out.records.is_empty());
        match out.reply_for(rid) {
            Some(TxnReply::DescribeTransaction(s)) => s.clone(),
            other => panic!("no describe reply: {other:?}"),
        }
    }

    pub fn list(
        &mut self,
        now: i64,
        filter: &ListTransactionsFilter,
    ) -> kafka_protocol::messages::ListTransactionsResponse {
        let rid = self.rid();
        let out = self.shard.list_transactions(now, rid, filter);
        match out.reply_for(rid) {
            Some(TxnReply::ListTransactions(r)) => r.clone(),
            other => panic!("no list reply: {other:?}"),
        }
    }

    pub fn state(&self, id: &str) -> TransactionMetadata {
        self.shard
            .transaction(id)
            .cloned()
            .unwrap_or_else(|| panic!("no state for {id}"))
    }

    /// A fresh shard loaded from the log: same state. Returns it with its `loaded` output.
    pub fn reload(&self, now: i64) -> (TransactionCoordinatorShard, TxnOutput) {
        let mut shard = TransactionCoordinatorShard::new(self.config.clone(), COORDINATOR_EPOCH);
        for record in &self.log {
            shard.replay(record).unwrap();
        }
        let live: Vec<_> = self
            .shard
            .transactions()
            .map(|(id, m)| (id.to_owned(), m.clone()))
            .collect();
        let loaded: Vec<_> = shard
            .transactions()
            .map(|(id, m)| (id.to_owned(), m.clone()))
            .collect();
        assert_eq!(live, loaded, "replaying the log gives a different state");
        let out = shard.loaded(now);
        (shard, out)
    }
}

pub fn result_codes(out: &TxnOutput, rid: u64, id: &str) -> Vec<(String, i32, i16)> {
    match out.reply_for(rid) {
        Some(TxnReply::AddPartitionsToTxnResult(r)) => {
            assert_eq!(r.transactional_id.0.as_str(), id);
            r.topic_results
                .iter()
                .flat_map(|t| {
                    t.results_by_partition.iter().map(move |p| {
                        (
                            t.name.0.to_string(),
                            p.partition_index,
                            p.partition_error_code,
                        )
                    })
                })
                .collect()
        }
        other => panic!("no AddPartitionsToTxnResult reply: {other:?}"),
    }
}
