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
