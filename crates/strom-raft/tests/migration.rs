//! A metadata log dir written by strom before the quorum opens as a snapshot of its
//! records, also after a crash in the middle of the migration.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{LogConfig, PartitionLog};
use strom_raft::{FileStorage, METADATA_LOG_DIR};

/// Appends `records` as one batch the way strom's metadata_log.rs did: keyless records
/// whose values are the JSON records, leader epoch 0, fsynced.
fn append_old_batch(log: &mut PartitionLog, records: &[&str]) {
    let encoded: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(serde_json::to_vec(r).unwrap())),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &encoded,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    log.append(&mut batch, 0, 1_700_000_000_000).unwrap();
    log.flush().unwrap();
    let end = log.log_end_offset();
    log.maybe_increment_high_watermark(end);
}

fn write_old_log(log_dir: &Path) {
    let config = LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open_in_log_dir(
        log_dir.join(METADATA_LOG_DIR),
        config,
        1_700_000_000_000,
        false,
    )
    .unwrap();
    append_old_batch(&mut log, &["topic-a", "partition-a-0"]);
    append_old_batch(&mut log, &["config-x"]);
    append_old_batch(&mut log, &["topic-b", "partition-b-0", "partition-b-1"]);
    log.close().unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(METADATA_LOG_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint") || n == "quorum-state")
        .collect();
    names.sort();
    names
}

const OLD: [&str; 6] = [
    "topic-a",
    "partition-a-0",
    "config-x",
    "topic-b",
    "partition-b-0",
    "partition-b-1",
];

#[tokio::test]
async fn old_metadata_log_becomes_a_snapshot() {
    let net = Arc::new(Net::default());
    let dir = tempfile::tempdir().unwrap();
    write_old_log(dir.path());
    let config = config(1, &[1], 1000);
    let (quorum, sm) = start_file_node(&net, dir.path(), config.clone()).await;
    assert!(quorum.is_leader());
    let seen = sm.seen();
    // Six records at offsets 0..=5: the snapshot covers offset 5.
    assert_eq!(seen.restored, vec![5]);
    assert_eq!(seen.state, strings(&OLD));
    assert_eq!(seen.applied, vec![]);
    assert_eq!(
        files(dir.path()),
        vec![
            "00000000000000000005-0000000000.checkpoint".to_string(),
            "quorum-state".to_string()
        ]
    );
    // The new leader's blank entry is offset 6.
    assert_eq!(quorum.propose(strings(&["topic-c"])).await, Ok(7));
    quorum.shutdown().await;
    net.remove(1);
    // The old records are purged: the log holds the blank entry and the proposal.
    let log = PartitionLog::open(
        dir.path().join(METADATA_LOG_DIR),
        LogConfig::default(),
        1_700_000_000_000,
    )
    .unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 8));
    drop(log);

    let (quorum, sm) = start_file_node(&net, dir.path(), config).await;
    let seen = sm.seen();
    assert_eq!(seen.restored, vec![5]);
    assert_eq!(seen.applied, vec![(7, strings(&["topic-c"]))]);
    let mut all = strings(&OLD);
    all.push("topic-c".into());
    assert_eq!(seen.state, all);
    quorum.shutdown().await;
}

#[tokio::test]
async fn migration_interrupted_after_the_snapshot_completes_on_open() {
    let config = config(1, &[1], 1000);
    let done = tempfile::tempdir().unwrap();
    write_old_log(done.path());
    let interrupted = tempfile::tempdir().unwrap();
    write_old_log(interrupted.path());
    // Migrate one dir; give the other only its durable snapshot, as a crash right after
    // the snapshot's rename (before quorum-state and the purge) leaves it.
    drop(FileStorage::open(done.path(), &config).unwrap());
    let name = "00000000000000000005-0000000000.checkpoint";
    std::fs::copy(
        done.path().join(METADATA_LOG_DIR).join(name),
        interrupted.path().join(METADATA_LOG_DIR).join(name),
    )
    .unwrap();
    // A half-written newer snapshot is ignored and removed.
    std::fs::write(
        interrupted
            .path()
            .join(METADATA_LOG_DIR)
            .join("00000000000000000009-0000000003.checkpoint.tmp"),
        b"torn",
    )
    .unwrap();

    let net = Arc::new(Net::default());
    let (quorum, sm) = start_file_node(&net, interrupted.path(), config).await;
    let seen = sm.seen();
    assert_eq!(seen.restored, vec![5]);
    assert_eq!(seen.state, strings(&OLD), "records migrated twice?");
    assert_eq!(
        files(interrupted.path()),
        vec![name.to_string(), "quorum-state".to_string()]
    );
    assert!(!interrupted
        .path()
        .join(METADATA_LOG_DIR)
        .join("00000000000000000009-0000000003.checkpoint.tmp")
        .exists());
    assert_eq!(quorum.propose(strings(&["after"])).await, Ok(7));
    quorum.shutdown().await;
}
