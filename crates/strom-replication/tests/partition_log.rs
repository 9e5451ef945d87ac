//! strom-log's PartitionLog reads as a ReplicaLog exactly as MemLog does for the same
//! appends (the leader-epoch cache's rules are shared).

use strom_log::{LogConfig, PartitionLog};
use strom_replication::testing::batch_bytes;
use strom_replication::{MemLog, ReplicaLog};

/// Log start, log end, high watermark, latest epoch, and end_offset_for_epoch(-1..=6).
type View = (i64, i64, i64, Option<i32>, Vec<Option<(i32, i64)>>);

fn view(log: &impl ReplicaLog) -> View {
    (
        log.log_start_offset(),
        log.log_end_offset(),
        log.high_watermark(),
        log.latest_epoch(),
        (-1..=6).map(|e| log.end_offset_for_epoch(e)).collect(),
    )
}

#[test]
fn partition_log_and_mem_log_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = PartitionLog::open(dir.path(), LogConfig::default(), 1_000).unwrap();
    let mut mem = MemLog::new();
    for (records, epoch) in [(3usize, 1), (2, 1), (4, 3), (1, 5)] {
        let values = vec![b"v".as_slice(); records];
        let mut batch = batch_bytes(0, 0, &values).to_vec();
        disk.append(&mut batch, epoch, 1_000).unwrap();
        mem.append_as_leader(&batch_bytes(0, 0, &values), epoch)
            .unwrap();
    }
    disk.set_high_watermark(7);
    mem.set_high_watermark(7);
    assert_eq!(view(&disk), view(&mem));
    assert_eq!(
        view(&mem),
        (
            0,
            10,
            7,
            Some(5),
            vec![
                None,
                Some((0, 0)),
                Some((1, 5)),
                Some((1, 5)),
                Some((3, 9)),
                Some((3, 9)),
                Some((5, 10)),
                None
            ]
        )
    );
    disk.truncate_to(5, 1_000).unwrap();
    mem.truncate_to(5);
    assert_eq!(view(&disk), view(&mem));
    assert_eq!(view(&mem).4[4], None, "epochs past the new end are gone");
}

/// The lock-free reader publishes the same view as the log (epoch cache included), and a
/// new leader's epoch start is answered before its first batch.
#[test]
fn log_reader_agrees_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = PartitionLog::open(dir.path(), LogConfig::default(), 1_000).unwrap();
    let reader = disk.reader();
    for (records, epoch) in [(3usize, 1), (4, 3)] {
        let mut batch = batch_bytes(0, 0, &vec![b"v".as_slice(); records]).to_vec();
        disk.append(&mut batch, epoch, 1_000).unwrap();
    }
    disk.set_high_watermark(5);
    assert_eq!(view(&reader), view(&disk));
    disk.assign_epoch_start(6, disk.log_end_offset()).unwrap();
    assert_eq!(view(&reader), view(&disk));
    assert_eq!(reader.latest_epoch(), Some(6));
    assert_eq!(ReplicaLog::end_offset_for_epoch(&reader, 3), Some((3, 7)));
    assert_eq!(ReplicaLog::end_offset_for_epoch(&reader, 6), Some((6, 7)));
    disk.truncate_to(3, 1_000).unwrap();
    assert_eq!(view(&reader), view(&disk));
    assert_eq!(reader.latest_epoch(), Some(1));
}

/// A follower appends the leader's batches at their own offsets and epochs: the epoch
/// cache, the producer state (a retry is still a duplicate) and reads follow.
#[test]
fn follower_append_keeps_offsets_epochs_and_producer_state() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = PartitionLog::open(leader_dir.path(), LogConfig::default(), 1_000).unwrap();
    let mut follower =
        PartitionLog::open(follower_dir.path(), LogConfig::default(), 1_000).unwrap();
    let idempotent = |seq: i32, values: &[&[u8]]| {
        let mut batch = batch_bytes(0, 0, values).to_vec();
        // producer id 7, epoch 0, base sequence `seq` (bytes 43..53 of the v2 header).
        batch[43..51].copy_from_slice(&7i64.to_be_bytes());
        batch[51..53].copy_from_slice(&0i16.to_be_bytes());
        batch[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    };
    leader
        .append(&mut idempotent(0, &[b"a", b"b"]), 2, 1_000)
        .unwrap();
    leader
        .assign_epoch_start(4, leader.log_end_offset())
        .unwrap();
    leader
        .append(&mut idempotent(2, &[b"c"]), 4, 1_000)
        .unwrap();
    let bytes = leader.read(0, 1 << 20, i64::MAX, true).unwrap().bytes;
    let info = follower.append_with_offsets(&bytes, 1_000).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(view(&follower.reader()), {
        let mut v = view(&leader.reader());
        v.2 = 0; // high watermarks are each one's own
        v
    });
    assert_eq!(
        follower.read(0, 1 << 20, i64::MAX, true).unwrap().bytes,
        bytes
    );
    // The follower (as a later leader) knows the producer: a retry is a duplicate.
    let retry = follower
        .append(&mut idempotent(2, &[b"c"]), 5, 1_000)
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 2);
}
