//! Error answers of every call, verification (KIP-890), DescribeTransactions and
//! ListTransactions.

mod common;

use common::*;
use strom_transactions::{
    produce_verification_error, ListTransactionsFilter, TransactionVersion, TxnPartitions, TxnState,
};

#[test]
fn add_partitions_errors() {
    let mut h = Harness::new();
    assert_eq!(
        h.add(0, "nobody", 1, 0, &[tp("t", 0)]),
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.add(0, "", 1, 0, &[tp("t", 0)]),
        code(ErrorCode::InvalidRequest)
    );
    let (_, pid, _) = h.init(0, "tx");
    assert_eq!(
        h.add(1, "tx", pid + 1, 0, &[tp("t", 0)]),
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.add(1, "tx", pid, 1, &[tp("t", 0)]),
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.add_v(1, 1, "tx", pid, 1, &[tp("t", 0)]),
        vec![("t".into(), 0, code(ErrorCode::InvalidProducerEpoch))]
    );
    assert_eq!(
        h.add_offsets(1, 3, "tx", pid, 1, "g"),
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.add_offsets(1, 1, "tx", pid, 1, "g"),
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        h.add_offsets(1, 3, "nobody", pid, 0, "g"),
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert!(h.log.len() == 1, "errors write nothing");
    // The v0-3 answer groups partitions by topic, in request order.
    assert_eq!(
        h.add_v(2, 3, "tx", pid, 0, &[tp("b", 1), tp("a", 0), tp("b", 0)]),
        vec![
            ("b".into(), 1, NONE),
            ("b".into(), 0, NONE),
            ("a".into(), 0, NONE)
        ]
    );
    h.end(3, 4, "tx", pid, 0, true);
    assert_eq!(
        h.add(4, "tx", pid, 0, &[tp("c", 0)]),
        code(ErrorCode::ConcurrentTransactions)
    );
    assert_eq!(
        h.add_offsets(4, 3, "tx", pid, 0, "g"),
        code(ErrorCode::ConcurrentTransactions)
    );
    h.reload(5);
}

#[test]
fn end_txn_errors() {
    let mut h = Harness::new();
    assert_eq!(
        h.end(0, 4, "", 1, 0, true),
        (code(ErrorCode::InvalidRequest), -1, -1)
    );
    assert_eq!(
        h.end(0, 4, "nobody", 1, 0, true),
        (code(ErrorCode::InvalidProducerIdMapping), -1, -1)
    );
    let (_, pid, _) = h.init(0, "tx");
    // Nothing to end.
    assert_eq!(
        h.end(1, 4, "tx", pid, 0, true).0,
        code(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        h.end(1, 5, "tx", pid, 0, false).0,
        code(ErrorCode::InvalidTxnState)
    );
    h.add(2, "tx", pid, 0, &[tp("t", 0)]);
    assert_eq!(
        h.end(3, 4, "tx", pid + 1, 0, true).0,
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.end(3, 4, "tx", pid, 1, true).0,
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(
        h.end(3, 0, "tx", pid, 1, true).0,
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        h.end(3, 5, "tx", pid, 1, true).0,
        code(ErrorCode::ProducerFenced)
    );
    assert_eq!(h.log.len(), 2);
    assert_eq!(h.end(4, 4, "tx", pid, 0, false).0, NONE);
    assert_eq!(
        h.end(5, 4, "tx", pid, 0, true).0,
        code(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        h.end(5, 4, "tx", pid, 0, false).0,
        code(ErrorCode::ConcurrentTransactions)
    );
    h.reload(6);
}

#[test]
fn verify_only_checks_without_writing() {
    let mut h = Harness::new();
    let (_, pid, _) = h.init(0, "tx");
    h.add(1, "tx", pid, 0, &[tp("t", 0)]);
    let log_len = h.log.len();
    let txn = |id: &str, pid: i64, epoch: i16| TxnPartitions {
        transactional_id: id.to_owned(),
        producer_id: pid,
        producer_epoch: epoch,
        verify_only: true,
        partitions: vec![tp("t", 0), tp("t", 1)],
    };
    assert_eq!(
        h.batched(2, 4, txn("tx", pid, 0)),
        vec![
            ("t".into(), 0, NONE),
            ("t".into(), 1, code(ErrorCode::TransactionAbortable))
        ]
    );
    assert_eq!(
        h.batched(2, 4, txn("tx", pid, 1)),
        vec![
            ("t".into(), 0, code(ErrorCode::ProducerFenced)),
            ("t".into(), 1, code(ErrorCode::ProducerFenced))
        ]
    );
    assert_eq!(
        h.batched(2, 4, txn("tx", pid + 1, 0))[0].2,
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.batched(2, 4, txn("nobody", pid, 0))[1].2,
        code(ErrorCode::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.batched(2, 4, txn("", pid, 0))[0].2,
        code(ErrorCode::InvalidRequest)
    );
    // A version 1 producer's produce only verifies.
    assert_eq!(
        h.produce(2, "tx", pid, 0, &[tp("t", 2)], TransactionVersion::V1),
        vec![("t".into(), 2, code(ErrorCode::TransactionAbortable))]
    );
    assert_eq!(h.log.len(), log_len);
    // The batched add form (v4 from a broker) writes and answers one error for all.
    let mut add = txn("tx", pid, 0);
    add.verify_only = false;
    assert_eq!(
        h.batched(3, 4, add),
        vec![("t".into(), 0, NONE), ("t".into(), 1, NONE)]
    );
    assert_eq!(
        h.state("tx").client_transaction_version,
        TransactionVersion::V1
    );
    assert_eq!(h.log.len(), log_len + 1);
    h.end(4, 4, "tx", pid, 0, true);
    assert_eq!(
        h.batched(5, 4, txn("tx", pid, 0))[0].2,
        code(ErrorCode::ConcurrentTransactions)
    );

    // How the produce path reports them.
    assert_eq!(
        produce_verification_error(code(ErrorCode::TransactionAbortable), 10),
        code(ErrorCode::InvalidTxnState)
    );
    assert_eq!(
        produce_verification_error(code(ErrorCode::TransactionAbortable), 11),
        code(ErrorCode::TransactionAbortable)
    );
    assert_eq!(
        produce_verification_error(code(ErrorCode::ProducerFenced), 12),
        code(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(
        produce_verification_error(code(ErrorCode::ConcurrentTransactions), 3),
        code(ErrorCode::ConcurrentTransactions)
    );
    h.reload(6);
}

#[test]
fn describe_transactions() {
    let mut h = Harness::new();
    let unknown = h.describe("nobody");
    assert_eq!(
        (unknown.error_code, unknown.transactional_id.0.as_str()),
        (code(ErrorCode::TransactionalIdNotFound), "nobody")
    );
    assert_eq!(h.describe("").error_code, code(ErrorCode::InvalidRequest));
    let (_, pid, _) = h.init_v(100, 4, "tx", 30_000, -1, -1);
    let d = h.describe("tx");
    assert_eq!(
        (
            d.error_code,
            d.transaction_state.as_str(),
            d.transaction_timeout_ms,
            d.transaction_start_time_ms,
            d.producer_id.0,
            d.producer_epoch
        ),
        (NONE, "Empty", 30_000, -1, pid, 0)
    );
    assert!(d.topics.is_empty());
    h.add(200, "tx", pid, 0, &[tp("b", 2), tp("a", 1), tp("b", 0)]);
    let d = h.describe("tx");
    assert_eq!(
        (d.transaction_state.as_str(), d.transaction_start_time_ms),
        ("Ongoing", 200)
    );
    let topics: Vec<(String, Vec<i32>)> = d
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(
        topics,
        vec![("a".into(), vec![1]), ("b".into(), vec![0, 2])]
    );
    h.end(300, 4, "tx", pid, 0, true);
    assert_eq!(h.describe("tx").transaction_state.as_str(), "PrepareCommit");
    let names: Vec<&str> = TxnState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
            "PrepareEpochFence"
        ]
    );
}

#[test]
fn list_transactions_filters() {
    let mut h = Harness::new();
    let (_, a, _) = h.init(0, "app-a");
    let (_, b, _) = h.init(0, "app-b");
    let (_, _c, _) = h.init(0, "other");
    h.add(1_000, "app-a", a, 0, &[tp("t", 0)]);
    h.add(5_000, "app-b", b, 0, &[tp("t", 0)]);
    let list = |h: &mut Harness, f: ListTransactionsFilter| {
        let r = h.list(10_000, &f);
        assert_eq!(r.error_code, NONE);
        let ids: Vec<String> = r
            .transaction_states
            .iter()
            .map(|s| {
                format!(
                    "{}:{}:{}",
                    s.transactional_id.0, s.producer_id.0, s.transaction_state
                )
            })
            .collect();
        (
            ids,
            r.unknown_state_filters
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
    };
    let all = ListTransactionsFilter {
        duration_filter_ms: -1,
        ..Default::default()
    };
    assert_eq!(
        list(&mut h, all.clone()).0,
        vec![
            format!("app-a:{a}:Ongoing"),
            format!("app-b:{b}:Ongoing"),
            "other:1003:Empty".to_owned()
        ]
    );
    let (ids, unknown) = list(
        &mut h,
        ListTransactionsFilter {
            states: vec!["Empty".into(), "Bogus".into()],
            ..all.clone()
        },
    );
    assert_eq!(
        (ids, unknown),
        (
            vec!["other:1003:Empty".to_owned()],
            vec!["Bogus".to_owned()]
        )
    );
    assert_eq!(
        list(
            &mut h,
            ListTransactionsFilter {
                producer_ids: vec![b],
                ..all.clone()
            }
        )
        .0,
        vec![format!("app-b:{b}:Ongoing")]
    );
    // Running longer than 6 s: app-a (started at 1 s) and "other" (no start time, -1).
    assert_eq!(
        list(
            &mut h,
            ListTransactionsFilter {
                duration_filter_ms: 6_000,
                ..all.clone()
            }
        )
        .0,
        vec![format!("app-a:{a}:Ongoing"), "other:1003:Empty".to_owned()]
    );
    assert_eq!(
        list(
            &mut h,
            ListTransactionsFilter {
                duration_filter_ms: 9_000,
                ..all.clone()
            }
        )
        .0,
        vec!["other:1003:Empty".to_owned()]
    );
    // The pattern must match the whole id.
    assert_eq!(
        list(
            &mut h,
            ListTransactionsFilter {
                transactional_id_pattern: Some("app-.".into()),
                ..all.clone()
            }
        )
        .0
        .len(),
        2
    );
    assert!(list(
        &mut h,
        ListTransactionsFilter {
            transactional_id_pattern: Some("app".into()),
            ..all.clone()
        }
    )
    .0
    .is_empty());
    let bad = h.list(
        0,
        &ListTransactionsFilter {
            transactional_id_pattern: Some("(".into()),
            ..all
        },
    );
    assert_eq!(bad.error_code, code(ErrorCode::InvalidRegularExpression));
}
