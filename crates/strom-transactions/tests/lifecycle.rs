//! Transaction lifecycles: commit and abort with both transaction versions, fencing,
//! timeouts, KIP-360 recovery, load and expiry. Every test ends by replaying its log.

mod common;

use common::*;
use strom_transactions::{
    TransactionMetadata, TransactionVersion, TxnConfig, TxnRecord, TxnState, OFFSETS_TOPIC,
};

#[test]
fn v1_commit_lifecycle() {
    let mut h = Harness::new();
    assert_eq!(h.init(100, "tx"), (NONE, 1001, 0));
    let m = h.state("tx");
    assert_eq!(
        (
            m.state,
            m.start_timestamp_ms,
            m.last_update_timestamp_ms,
            m.timeout_ms
        ),
        (TxnState::Empty, -1, 100, 60_000)
    );

    assert_eq!(h.add(200, "tx", 1001, 0, &[tp("t", 0), tp("t", 1)]), NONE);
    assert_eq!(h.last.records.len(), 1);
    // "ab".hashCode() == 3105, 3105 % 50 == 5.
    assert_eq!(h.add_offsets(250, 3, "tx", 1001, 0, "ab"), NONE);
    let m = h.state("tx");
    assert_eq!(m.state, TxnState::Ongoing);
    assert_eq!(m.start_timestamp_ms, 200);
    assert_eq!(
        m.partitions,
        [tp(OFFSETS_TOPIC, 5), tp("t", 0), tp("t", 1)]
            .into_iter()
            .collect()
    );
    // Partitions already in the transaction: answered without a record.
    assert_eq!(h.add(260, "tx", 1001, 0, &[tp("t", 1)]), NONE);
    assert!(h.last.records.is_empty());

    assert_eq!(h.end(300, 4, "tx", 1001, 0, true), (NONE, 1001, 0));
    assert_eq!(h.last.records.len(), 1);
    assert_eq!(h.last.markers.len(), 1);
    let marker = h.last.markers[0].clone();
    assert_eq!(marker.transactional_id, "tx");
    assert_eq!(
        (
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.commit
        ),
        (1001, 0, COORDINATOR_EPOCH, true)
    );
    assert_eq!(
        marker.partitions,
        vec![tp(OFFSETS_TOPIC, 5), tp("t", 0), tp("t", 1)]
    );
    assert_eq!(h.state("tx").state, TxnState::PrepareCommit);

    // While the markers are written.
    assert_eq!(
        h.end(310, 4, "tx", 1001, 0, true).0,
        code(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        h.end(310, 4, "tx", 1001, 0, false).0,
        code(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        h.add(310, "tx", 1001, 0, &[tp("t", 2)]),
        code(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(h.init(310, "tx").0, code(ErrorCode::ConcurrentTransactions));
    assert!(h.last.records.is_empty());
    h.reload(310);

    // A stale or foreign completion is ignored.
    assert!(h.shard.markers_written(320, "tx", 1001, 1).is_empty());
    assert_eq!(h.markers_written(400, &marker).records.len(), 1);
    let m = h.state("tx");
    assert_eq!(
        (
            m.state,
            m.producer_id,
            m.producer_epoch,
            m.start_timestamp_ms,
            m.last_update_timestamp_ms
        ),
        (TxnState::CompleteCommit, 1001, 0, 200, 400)
    );
    assert!(m.partitions.is_empty());
    // Retried EndTxn after completion: OK; the other result: INVALID_TXN_STATE.
    assert_eq!(h.end(410, 4, "tx", 1001, 0, true), (NONE, 1001, 0));
    assert_eq!(
        h.end(410, 4, "tx", 1001, 0, false).0,
        code(ErrorCode::InvalidTxnState)
    );

    // Next transaction starts a new start time.
    assert_eq!(h.add(500, "tx", 1001, 0, &[tp("u", 0)]), NONE);
    assert_eq!(h.state("tx").start_timestamp_ms, 500);
    assert_eq!(h.end(600, 4, "tx", 1001, 0, false), (NONE, 1001, 0));
    let marker = h.last.markers[0].clone();
    assert!(!marker.commit);
    h.markers_written(700, &marker);
    assert_eq!(h.state("tx").state, TxnState::CompleteAbort);
    assert_eq!(h.end(710, 4, "tx", 1001, 0, false), (NONE, 1001, 0));
    assert_eq!(
        h.end(710, 4, "tx", 1001, 0, true).0,
        code(ErrorCode::InvalidTxnState)
    );

    // A new InitProducerId bumps the epoch; the transaction data is cleared.
    assert_eq!(h.init(800, "tx"), (NONE, 1001, 1));
    let m = h.state("tx");
    assert_eq!(
        (m.state, m.start_timestamp_ms, m.last_producer_epoch),
        (TxnState::Empty, -1, -1)
    );
    h.reload(900);
}

#[test]
fn v2_every_end_bumps_the_epoch() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "tx");
    // Partitions are added implicitly by produce.
    assert_eq!(
        h.produce(
            10,
            "tx",
            pid,
            0,
            &[tp("t", 0), tp("t", 1)],
            TransactionVersion::V2
        ),
        vec![("t".into(), 0, NONE), ("t".into(), 1, NONE)]
    );
    assert_eq!(
        h.state("tx").client_transaction_version,
        TransactionVersion::V2
    );
    assert_eq!(h.state("tx").state, TxnState::Ongoing);

    assert_eq!(h.end(20, 5, "tx", pid, 0, true), (NONE, pid, 1));
    let marker = h.last.markers[0].clone();
    assert_eq!((marker.producer_epoch, marker.commit), (1, true));
    let m = h.state("tx");
    assert_eq!(
        (m.state, m.producer_epoch, m.last_producer_epoch),
        (TxnState::PrepareCommit, 1, 0)
    );
    // The retry (old epoch) waits; the new epoch may not end a transaction still completing.
    assert_eq!(
        h.end(21, 5, "tx", pid, 0, true).0,
        code(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        h.end(21, 5, "tx", pid, 1, true).0,
        code(ErrorCode::ProducerFenced)
    );
    // The next transaction's first produce waits too.
    assert_eq!(
        h.produce(22, "tx", pid, 1, &[tp("t", 0)], TransactionVersion::V2),
        vec![("t".into(), 0, code(ErrorCode::ConcurrentTransactions))]
    );

    h.markers_written(30, &marker);
    let m = h.state("tx");
    assert_eq!(
        (
            m.state,
            m.producer_epoch,
            m.last_producer_epoch,
            m.previous_producer_id
        ),
        (TxnState::CompleteCommit, 1, 1, pid)
    );
    // Retry after completion: OK with the bumped epoch; the same epoch again is fenced
    // (it would be the next transaction's EndTxn, but none is open).
    assert_eq!(h.end(31, 5, "tx", pid, 0, true), (NONE, pid, 1));
    assert_eq!(
        h.end(31, 5, "tx", pid, 1, true).0,
        code(ErrorCode::ProducerFenced)
    );

    assert_eq!(
        h.produce(40, "tx", pid, 1, &[tp("t", 3)], TransactionVersion::V2),
        vec![("t".into(), 3, NONE)]
    );
    assert_eq!(h.end(50, 5, "tx", pid, 1, false), (NONE, pid, 2));
    let marker = h.last.markers[0].clone();
    assert_eq!(
        (
            marker.producer_epoch,
            marker.commit,
            marker.partitions.clone()
        ),
        (2, false, vec![tp("t", 3)])
    );
    h.markers_written(60, &marker);
    assert_eq!(h.state("tx").state, TxnState::CompleteAbort);
    h.reload(70);
}

#[test]
fn v2_epoch_overflow_moves_to_a_new_producer_id() {
    let mut h = Harness::new();
    h.put(
        "tx",
        &TransactionMetadata {
            producer_id: 42,
            previous_producer_id: 42,
            next_producer_id: -1,
            producer_epoch: i16::MAX - 1,
            last_producer_epoch: i16::MAX - 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [tp("t", 0)].into_iter().collect(),
            start_timestamp_ms: 0,
            last_update_timestamp_ms: 0,
            client_transaction_version: TransactionVersion::V2,
        },
    );
    // The harness allocates 1001 when the shard asks; the reply carries it at epoch 0.
    assert_eq!(h.end(10, 5, "tx", 42, i16::MAX - 1, true), (NONE, 1001, 0));
    let m = h.state("tx");
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch, m.next_producer_id),
        (TxnState::PrepareCommit, 42, i16::MAX, 1001)
    );
    let marker = h.last.markers[0].clone();
    assert_eq!((marker.producer_id, marker.producer_epoch), (42, i16::MAX));
    // The producer, already on the new id, waits for the markers.
    assert_eq!(
        h.produce(11, "tx", 1001, 0, &[tp("t", 0)], TransactionVersion::V2),
        vec![("t".into(), 0, code(ErrorCode::ConcurrentTransactions))]
    );
    assert_eq!(
        h.end(11, 5, "tx", 42, i16::MAX - 1, true).0,
        code(ErrorCode::ConcurrentTransactions)
    );
    h.markers_written(20, &marker);
    let m = h.state("tx");
    assert_eq!(
        (
            m.state,
            m.producer_id,
            m.producer_epoch,
            m.previous_producer_id,
            m.next_producer_id
        ),
        (TxnState::CompleteCommit, 1001, 0, 42, -1)
    );
    // A retry with the old id and epoch is recognised.
    assert_eq!(h.end(21, 5, "tx", 42, i16::MAX - 1, true), (NONE, 1001, 0));
    assert_eq!(
        h.produce(22, "tx", 1001, 0, &[tp("t", 0)], TransactionVersion::V2),
        vec![("t".into(), 0, NONE)]
    );
    h.reload(30);
}

#[test]
fn second_init_fences_the_open_transaction() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "tx");
    assert_eq!(h.add(10, "tx", pid, 0, &[tp("t", 0)]), NONE);

    // The new producer: the open transaction is aborted first.
    assert_eq!(
        h.init(20, "tx"),
        (code(ErrorCode::ConcurrentTransactions), -1, -1)
    );
    assert_eq!(h.last.records.len(), 1);
    let marker = h.last.markers[0].clone();
    // transaction.version 2: fence (epoch 1), then the abort's own bump (epoch 2).
    assert_eq!(
        (
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.partitions.clone()
        ),
        (pid, 2, false, vec![tp("t", 0)])
    );
    let m = h.state("tx");
    assert_eq!(
        (m.state, m.producer_epoch, m.last_producer_epoch),
        (TxnState::PrepareAbort, 2, 1)
    );

    // The old producer is fenced everywhere.
    assert_eq!(
        h.add(21, "tx", pid, 0, &[tp("t", 1)]),
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.add_v(21, 1, "tx", pid, 0, &[tp("t", 1)])[0].2,
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        h.end(21, 4, "tx", pid, 0, true).0,
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.end(21, 1, "tx", pid, 0, true).0,
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        h.end(21, 5, "tx", pid, 0, false).0,
        code(ErrorCode::ProducerFenced)
    );
    // The new producer retries until the abort completes.
    assert_eq!(h.init(22, "tx").0, code(ErrorCode::ConcurrentTransactions));
    h.reload(22);
    h.markers_written(30, &marker);
    assert_eq!(h.state("tx").state, TxnState::CompleteAbort);
    assert_eq!(
        h.end(31, 5, "tx", pid, 0, false).0,
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(h.init(40, "tx"), (NONE, pid, 3));
    // KIP-360 with the fenced epoch is refused.
    assert_eq!(
        h.init_v(41, 4, "tx", 60_000, pid, 0).0,
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.init_v(41, 3, "tx", 60_000, pid, 0).0,
        code(ErrorCode::InvalidProducerEpoch)
    );
    h.reload(50);
}

#[test]
fn fence_with_transaction_version_1_bumps_once() {
    let mut h = Harness::with_config(TxnConfig {
        transaction_version_level: 1,
        ..TxnConfig::default()
    });
    let (_, pid, _) = h.init(0, "tx");
    h.add(10, "tx", pid, 0, &[tp("t", 0)]);
    assert_eq!(h.init(20, "tx").0, code(ErrorCode::ConcurrentTransactions));
    let marker = h.last.markers[0].clone();
    assert_eq!(marker.producer_epoch, 1);
    let m = h.state("tx");
    assert_eq!(
        (
            m.state,
            m.producer_epoch,
            m.last_producer_epoch,
            m.client_transaction_version
        ),
        (TxnState::PrepareAbort, 1, -1, TransactionVersion::V1)
    );
    h.markers_written(30, &marker);
    assert_eq!(h.init(40, "tx"), (NONE, pid, 2));
    h.reload(50);
}

#[test]
fn timed_out_transactions_are_aborted_by_tick() {
    let mut h = Harness::new();
    assert_eq!(h.shard.next_deadline_ms(), Some(10_000));
    let (_, pid, _) = h.init_v(0, 4, "short", 1_000, -1, -1);
    let (_, long_pid, _) = h.init_v(0, 4, "long", 60_000, -1, -1);
    h.add(500, "short", pid, 0, &[tp("t", 0)]);
    h.add(500, "long", long_pid, 0, &[tp("t", 1)]);

    assert!(h.tick(9_999).is_empty());
    let out = h.tick(10_000).clone();
    assert_eq!(out.records.len(), 1);
    assert!(out.replies.is_empty());
    assert_eq!(out.markers.len(), 1);
    let marker = out.markers[0].clone();
    assert_eq!(
        (
            marker.transactional_id.as_str(),
            marker.producer_id,
            marker.producer_epoch,
            marker.commit
        ),
        ("short", pid, 2, false)
    );
    assert_eq!(h.state("short").state, TxnState::PrepareAbort);
    assert_eq!(h.state("long").state, TxnState::Ongoing);
    assert_eq!(h.shard.next_deadline_ms(), Some(20_000));

    // The producer learns of it on its next request.
    assert_eq!(
        h.end(10_001, 4, "short", pid, 0, true).0,
        code(ErrorCode::ProducerFenced)
    );
    h.markers_written(10_010, &marker);
    assert_eq!(h.state("short").state, TxnState::CompleteAbort);
    // Aborted once only.
    assert!(h.tick(20_000).markers.is_empty());
    let out = h.tick(70_000).clone();
    assert_eq!(out.markers.len(), 1);
    assert_eq!(out.markers[0].transactional_id, "long");
    h.reload(70_000);
}

#[test]
fn kip_360_recovery() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "tx");
    // Recovery with the current epoch bumps it and remembers the old one.
    assert_eq!(h.init_v(1, 4, "tx", 60_000, pid, 0), (NONE, pid, 1));
    assert_eq!(h.state("tx").last_producer_epoch, 0);
    // A retry of that call (the reply was lost) gets the same answer.
    assert_eq!(h.init_v(2, 4, "tx", 60_000, pid, 0), (NONE, pid, 1));
    assert_eq!(h.state("tx").producer_epoch, 1);
    // Other epochs and ids are fenced; old request versions hear INVALID_PRODUCER_EPOCH.
    assert_eq!(
        h.init_v(3, 4, "tx", 60_000, pid, 7),
        (code(ErrorCode::ProducerFenced), -1, -1)
    );
    assert_eq!(
        h.init_v(3, 3, "tx", 60_000, pid, 7).0,
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        h.init_v(3, 4, "tx", 60_000, 999, 1).0,
        code(ErrorCode::ProducerFenced)
    );
    // A producer id without an epoch (or the reverse) is malformed.
    assert_eq!(
        h.init_v(3, 4, "tx", 60_000, pid, -1).0,
        code(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        h.init_v(3, 4, "tx", 60_000, -1, 2).0,
        code(ErrorCode::InvalidRequest)
    );
    // An unknown transactional id recovering gets a new producer id.
    assert_eq!(h.init_v(4, 4, "other", 60_000, 77, 3), (NONE, 1002, 0));
    h.reload(5);
}

#[test]
fn exhausted_epoch_rotates_the_producer_id() {
    let mut h = Harness::new();
    let exhausted = TransactionMetadata {
        producer_id: 42,
        previous_producer_id: 42,
        next_producer_id: -1,
        producer_epoch: i16::MAX - 1,
        last_producer_epoch: -1,
        timeout_ms: 60_000,
        state: TxnState::CompleteCommit,
        partitions: Default::default(),
        start_timestamp_ms: 0,
        last_update_timestamp_ms: 0,
        client_transaction_version: TransactionVersion::V1,
    };
    h.put("a", &exhausted);
    h.put("b", &exhausted);
    assert_eq!(h.init(10, "a"), (NONE, 1001, 0));
    let m = h.state("a");
    assert_eq!(
        (m.previous_producer_id, m.last_producer_epoch, m.state),
        (42, -1, TxnState::Empty)
    );

    // With KIP-360 the old epoch is remembered, and a retry after the rotation (old id,
    // exhausted epoch) gets the new id again without another bump.
    assert_eq!(
        h.init_v(10, 4, "b", 60_000, 42, i16::MAX - 1),
        (NONE, 1002, 0)
    );
    assert_eq!(h.state("b").last_producer_epoch, i16::MAX - 1);
    assert_eq!(
        h.init_v(11, 4, "b", 60_000, 42, i16::MAX - 1),
        (NONE, 1002, 0)
    );
    h.reload(20);
}

#[test]
fn init_producer_id_validation() {
    let mut h = Harness::new();
    assert_eq!(
        h.init_v(0, 4, "tx", 0, -1, -1).0,
        code(ErrorCode::InvalidTransactionTimeout)
    );
    assert_eq!(
        h.init_v(0, 4, "tx", 900_001, -1, -1).0,
        code(ErrorCode::InvalidTransactionTimeout)
    );
    assert_eq!(
        h.init_v(0, 4, "", 1000, -1, -1).0,
        code(ErrorCode::InvalidRequest)
    );
    assert!(h.log.is_empty());
    assert_eq!(h.init_v(0, 4, "tx", 900_000, -1, -1), (NONE, 1001, 0));
    assert_eq!(h.state("tx").timeout_ms, 900_000);
    // The timeout can change at each InitProducerId.
    assert_eq!(h.init_v(1, 4, "tx", 5_000, -1, -1), (NONE, 1001, 1));
    assert_eq!(h.state("tx").timeout_ms, 5_000);
    // A runtime may pass a producer id up front; it is used only when needed.
    let out = h
        .shard
        .init_producer_id(2, 99, 4, "tx", 5_000, -1, -1, Some(5555));
    assert!(!out.needs_producer_id);
    let out2 = h
        .shard
        .init_producer_id(2, 100, 4, "fresh", 5_000, -1, -1, Some(5555));
    assert_eq!(h.shard.transaction("tx").unwrap().producer_id, 1001);
    assert_eq!(h.shard.transaction("fresh").unwrap().producer_id, 5555);
    h.log.extend(out.records);
    h.log.extend(out2.records);
    h.reload(3);
}

#[test]
fn markers_are_reissued_on_load() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "commit");
    h.add(1, "commit", pid, 0, &[tp("t", 0)]);
    h.end(2, 4, "commit", pid, 0, true);
    let commit_marker = h.last.markers[0].clone();
    let (_, pid2, _) = h.init(3, "abort");
    h.produce(4, "abort", pid2, 0, &[tp("u", 1)], TransactionVersion::V2);
    h.end(5, 5, "abort", pid2, 0, false);
    let abort_marker = h.last.markers[0].clone();
    // A transaction left in PrepareEpochFence (a log from elsewhere) and a Dead one.
    h.put(
        "fence",
        &TransactionMetadata {
            producer_id: 7,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 3,
            last_producer_epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::PrepareEpochFence,
            partitions: [tp("v", 2)].into_iter().collect(),
            start_timestamp_ms: 1,
            last_update_timestamp_ms: 1,
            client_transaction_version: TransactionVersion::V1,
        },
    );
    let mut dead = h.state("commit");
    dead.state = TxnState::Dead;
    h.log.push(TxnRecord::transaction("dead", Some(&dead)));

    let (mut shard, out) = h.reload(100);
    assert!(shard.transaction("dead").is_none());
    assert_eq!(out.markers.len(), 3);
    assert_eq!(out.markers[0], abort_marker);
    assert_eq!(out.markers[1], commit_marker);
    let fence_marker = &out.markers[2];
    assert_eq!(
        (
            fence_marker.transactional_id.as_str(),
            fence_marker.producer_id,
            fence_marker.producer_epoch,
            fence_marker.commit
        ),
        ("fence", 7, 3, false)
    );
    // Only the fence needed a record (its abort).
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        shard.transaction("fence").unwrap().state,
        TxnState::PrepareAbort
    );
    assert_eq!(shard.transaction("fence").unwrap().last_producer_epoch, -1);
    assert!(out.replies.is_empty());

    let done = shard.markers_written(
        110,
        "commit",
        commit_marker.producer_id,
        commit_marker.producer_epoch,
    );
    assert_eq!(done.records.len(), 1);
    assert_eq!(
        shard.transaction("commit").unwrap().state,
        TxnState::CompleteCommit
    );
    let done = shard.markers_written(
        110,
        "abort",
        abort_marker.producer_id,
        abort_marker.producer_epoch,
    );
    assert_eq!(done.records.len(), 1);
    let m = shard.transaction("abort").unwrap();
    assert_eq!((m.state, m.producer_epoch), (TxnState::CompleteAbort, 1));
}

#[test]
fn a_transaction_without_partitions_completes_at_once() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "tx");
    assert!(h.add_v(1, 3, "tx", pid, 0, &[]).is_empty());
    assert_eq!(h.state("tx").state, TxnState::Ongoing);
    assert_eq!(h.end(2, 4, "tx", pid, 0, true), (NONE, pid, 0));
    assert_eq!(h.last.records.len(), 2);
    assert!(h.last.markers.is_empty());
    assert_eq!(h.state("tx").state, TxnState::CompleteCommit);
    h.reload(3);
}

#[test]
fn idle_transactional_ids_expire() {
    let mut h = Harness::with_config(TxnConfig {
        transactional_id_expiration_ms: 1_000_000,
        ..TxnConfig::default()
    });
    h.init(0, "idle");
    let (_, pid, _) = h.init(0, "busy");
    h.add(3_000_000, "busy", pid, 0, &[tp("t", 0)]);
    h.end(3_000_000, 4, "busy", pid, 0, true);
    let marker = h.last.markers[0].clone();
    h.markers_written(3_000_000, &marker);
    let (_, pid3, _) = h.init(0, "open");
    h.add(0, "open", pid3, 0, &[tp("t", 0)]);

    assert_eq!(h.shard.next_deadline_ms(), Some(10_000));
    let out = h.tick(3_600_000).clone();
    // "open" timed out (aborted, not removed); "idle" expired; "busy" was updated recently.
    let tombstones: Vec<_> = out.records.iter().filter(|r| r.value.is_none()).collect();
    assert_eq!(tombstones.len(), 1);
    assert_eq!(tombstones[0], &TxnRecord::transaction("idle", None));
    assert!(h.shard.transaction("idle").is_none());
    assert_eq!(h.state("busy").state, TxnState::CompleteCommit);
    assert_eq!(h.state("open").state, TxnState::PrepareAbort);
    assert_eq!(
        h.describe("idle").error_code,
        code(ErrorCode::TransactionalIdNotFound)
    );
    h.reload(3_600_000);
    // Expiry runs hourly.
    assert_eq!(h.shard.next_deadline_ms(), Some(3_610_000));
    h.tick(3_610_000);
    assert!(h.shard.transaction("busy").is_some());
    let out = h.tick(7_200_000).clone();
    assert_eq!(out.records, vec![TxnRecord::transaction("busy", None)]);
    h.reload(7_200_000);
}
