//! A one-voter quorum (a broker with no cluster config): leads at once, keeps its state
//! across restarts, and stops on a storage error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use strom_raft::{FileStorage, MemStorage, ProposeError, QuorumConfig, QuorumError, Storage};

fn single(id: u64) -> QuorumConfig {
    config(id, &[id], 1000)
}

#[tokio::test]
async fn one_voter_leads_at_once_and_survives_restart() {
    let net = Arc::new(Net::default());
    let dir = tempfile::tempdir().unwrap();
    let (quorum, sm) = start_file_node(&net, dir.path(), single(1)).await;
    assert!(quorum.is_leader());
    assert_eq!(quorum.leader(), Some(1));
    // Offset 0: the initial membership; 1: the leader's blank entry.
    assert_eq!(quorum.propose(strings(&["x"])).await, Ok(2));
    assert_eq!(quorum.propose(strings(&["y", "z"])).await, Ok(3));
    assert_eq!(
        sm.seen().applied,
        vec![(2, strings(&["x"])), (3, strings(&["y", "z"]))]
    );
    quorum.shutdown().await;
    net.remove(1);

    let (quorum, sm) = start_file_node(&net, dir.path(), single(1)).await;
    assert!(quorum.is_leader());
    // start() returned with everything committed applied again from the log.
    let seen = sm.seen();
    assert_eq!(seen.restored, Vec::<u64>::new());
    assert_eq!(
        seen.applied,
        vec![(2, strings(&["x"])), (3, strings(&["y", "z"]))]
    );
    let next = quorum.propose(strings(&["w"])).await.unwrap();
    assert_eq!(sm.seen().state, strings(&["x", "y", "z", "w"]));
    let status = quorum.status();
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.applied_offset, Some(next));
    assert_eq!(status.last_offset, Some(next));
    quorum.shutdown().await;
}

#[tokio::test]
async fn one_voter_restarts_from_snapshot_and_log() {
    let net = Arc::new(Net::default());
    let dir = tempfile::tempdir().unwrap();
    let config = config(1, &[1], 3);
    let (quorum, _) = start_file_node(&net, dir.path(), config.clone()).await;
    // A snapshot after 3 entries since the last (none): at offset 2, then at 5. Each is
    // awaited before the entries that lead to the next: while one is being built, applied
    // entries trigger none, so on a loaded machine the one at 5 could be skipped.
    let mut offsets = vec![quorum.propose(vec!["r0".to_string()]).await.unwrap()];
    eventually("a snapshot at 2", || {
        (quorum.status().snapshot_offset == Some(2)).then_some(())
    })
    .await;
    for i in 1..4 {
        offsets.push(quorum.propose(vec![format!("r{i}")]).await.unwrap());
    }
    eventually("a snapshot at 5", || {
        (quorum.status().snapshot_offset == Some(5)).then_some(())
    })
    .await;
    offsets.push(quorum.propose(vec!["r4".to_string()]).await.unwrap());
    assert_eq!(offsets, vec![2, 3, 4, 5, 6]);
    quorum.shutdown().await;
    net.remove(1);
    let meta = dir.path().join("__cluster_metadata-0");
    let checkpoints: Vec<String> = std::fs::read_dir(&meta)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint"))
        .collect();
    assert_eq!(
        checkpoints,
        vec!["00000000000000000005-0000000001.checkpoint".to_string()]
    );

    let (quorum, sm) = start_file_node(&net, dir.path(), config).await;
    let seen = sm.seen();
    assert_eq!(seen.restored, vec![5]);
    assert_eq!(seen.applied, vec![(6, strings(&["r4"]))]);
    assert_eq!(seen.state, strings(&["r0", "r1", "r2", "r3", "r4"]));
    quorum.shutdown().await;
}

#[tokio::test]
async fn storage_error_stops_the_quorum() {
    let net = Arc::new(Net::default());
    let dir = tempfile::tempdir().unwrap();
    let storage = FileStorage::open(dir.path(), &single(1)).unwrap();
    let faults = storage.fault_injector();
    let (quorum, _) = start_node(&net, Storage::from(storage), single(1)).await;
    assert_eq!(quorum.propose(strings(&["ok"])).await, Ok(2));
    faults.fail_next_write();
    let failed = quorum.propose(strings(&["lost"])).await;
    assert!(matches!(failed, Err(ProposeError::Fatal(_))), "{failed:?}");
    let fatal = tokio::time::timeout(Duration::from_secs(5), quorum.fatal())
        .await
        .expect("fatal() resolves");
    match fatal {
        QuorumError::Fatal(why) => assert!(why.contains("injected storage fault"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        quorum.propose(strings(&["after"])).await,
        Err(ProposeError::Fatal(_))
    ));
}

#[tokio::test]
async fn an_entry_whose_fsync_failed_is_not_applied_after_restart() {
    let net = Arc::new(Net::default());
    let dir = tempfile::tempdir().unwrap();
    let storage = FileStorage::open(dir.path(), &single(1)).unwrap();
    let faults = storage.fault_injector();
    let (quorum, _) = start_node(&net, Storage::from(storage), single(1)).await;
    assert_eq!(quorum.propose(strings(&["kept"])).await, Ok(2));
    faults.fail_next_flush();
    let failed = quorum.propose(strings(&["unsynced"])).await;
    assert!(matches!(failed, Err(ProposeError::Fatal(_))), "{failed:?}");
    let fatal = tokio::time::timeout(Duration::from_secs(5), quorum.fatal())
        .await
        .expect("fatal() resolves");
    assert!(matches!(fatal, QuorumError::Fatal(_)), "{fatal:?}");
    drop(quorum);
    net.remove(1);

    // The written but unsynced entry was cut off: the next start applies only "kept".
    let (quorum, sm) = start_file_node(&net, dir.path(), single(1)).await;
    assert_eq!(sm.seen().state, strings(&["kept"]));
    quorum.shutdown().await;
}

#[tokio::test]
async fn mem_storage_crash_loses_unflushed_entries() {
    let net = Arc::new(Net::default());
    let disk = MemStorage::new();
    let (quorum, sm) = start_node(&net, Storage::from(disk.clone()), single(1)).await;
    assert_eq!(quorum.propose(strings(&["kept"])).await, Ok(2));
    disk.hold_flushes(true);
    let quorum2 = quorum.clone();
    let pending = tokio::spawn(async move { quorum2.propose(strings(&["lost"])).await });
    eventually("the entry written", || {
        (disk.written_log_ids().len() == 4).then_some(())
    })
    .await;
    assert_eq!(sm.seen().state, strings(&["kept"]));
    disk.crash();
    let stopped = tokio::time::timeout(Duration::from_secs(5), quorum.fatal())
        .await
        .expect("the crashed node stops");
    assert!(matches!(stopped, QuorumError::Fatal(_)), "{stopped:?}");
    quorum.shutdown().await;
    net.remove(1);
    assert!(matches!(
        pending.await.unwrap(),
        Err(ProposeError::Fatal(_))
    ));
    let ids: Vec<u64> = disk.durable_log_ids().iter().map(|l| l.index).collect();
    assert_eq!(ids, vec![0, 1, 2]);

    let (quorum, sm) = start_node(&net, Storage::from(disk.clone()), single(1)).await;
    assert!(quorum.is_leader());
    assert_eq!(sm.seen().state, strings(&["kept"]));
    let next = quorum.propose(strings(&["again"])).await.unwrap();
    assert_eq!(sm.seen().applied.last(), Some(&(next, strings(&["again"]))));
    assert_eq!(sm.seen().state, strings(&["kept", "again"]));
    quorum.shutdown().await;
}
