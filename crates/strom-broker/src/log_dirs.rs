//! The log dirs (`log.dirs`, Kafka's JBOD) and the partition directories in them:
//! placing and creating one for a topic id, removing one a failed metadata change created,
//! deleting those of deleted topics in the background, and a dir going offline after an
//! I/O error (Kafka's LogDirFailureChannel).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use strom_log::{LogError, PartitionLog};
use strom_types::TopicId;
use tracing::{debug, warn};

use crate::broker::now_ms;

/// The file in each partition dir naming the topic id it belongs to, so a
/// dir left behind by a deleted topic is never mistaken for a new one.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
const DELETE_SUFFIX: &str = "-delete";

/// One of the broker's log dirs as its partitions see it: where it is, whether an I/O
/// error took it offline, and how many partitions it holds (for placement).
#[derive(Debug)]
pub struct DataDir {
    pub path: PathBuf,
    offline: AtomicBool,
    /// Partitions placed here and not removed since (hosted or being created).
    partitions: AtomicUsize,
    /// The dir of the metadata log: its failure stops the process, as Kafka halts.
    holds_metadata: bool,
    /// Its `directory.id` (KIP-858); `None` when it could not be read at start.
    id: Option<uuid::Uuid>,
}

impl DataDir {
    pub fn new(path: PathBuf) -> Arc<Self> {
        Self::with_metadata(path, false)
    }

    /// `holds_metadata`: the metadata log lives here (`metadata.log.dir`, by default the
    /// first of `log.dirs`).
    pub fn with_metadata(path: PathBuf, holds_metadata: bool) -> Arc<Self> {
        Self::opened(path, holds_metadata, None)
    }

    /// A dir opened at start, with the directory id its `meta.properties` holds.
    pub fn opened(path: PathBuf, holds_metadata: bool, id: Option<uuid::Uuid>) -> Arc<Self> {
        Arc::new(Self {
            path,
            offline: AtomicBool::new(false),
            partitions: AtomicUsize::new(0),
            holds_metadata,
            id,
        })
    }

    /// A dir that could not be opened at start: offline from the beginning, as Kafka's
    /// LogManager starts with such a dir offline and serves the others.
    pub fn offline_at_start(path: PathBuf, error: &dyn std::fmt::Display) -> Arc<Self> {
        tracing::error!(
            dir = %path.display(),
            error = %error,
            "log dir could not be opened at start; it is offline and its partitions answer KAFKA_STORAGE_ERROR until the broker restarts"
        );
        Arc::new(Self {
            path,
            offline: AtomicBool::new(true),
            partitions: AtomicUsize::new(0),
            holds_metadata: false,
            id: None,
        })
    }

    pub fn id(&self) -> Option<uuid::Uuid> {
        self.id
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Takes the dir offline for good (until the next start), as Kafka does on any
    /// IOException in a log dir: what is on its disk is no longer known, so none of its
    /// partitions is written, read or flushed again by this process.
    /// The metadata log's dir stops the process instead (Kafka's ReplicaManager halts when
    /// the metadata log dir fails): the broker cannot go on without its metadata log.
    pub fn fail(&self, error: &dyn std::fmt::Display) {
        if self.holds_metadata {
            tracing::error!(
                dir = %self.path.display(),
                error = %error,
                "the log dir holding the metadata log failed; stopping the process"
            );
            std::process::exit(1);
        }
        if !self.offline.swap(true, Ordering::AcqRel) {
            tracing::error!(
                dir = %self.path.display(),
                error = %error,
                "log dir is offline after a storage error; its partitions answer KAFKA_STORAGE_ERROR until the broker restarts"
            );
        }
    }

    pub fn offline_error(&self) -> LogError {
        LogError::Failed(format!("log dir {} is offline", self.path.display()))
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.load(Ordering::Acquire)
    }

    pub fn partition_placed(&self) {
        self.partitions.fetch_add(1, Ordering::AcqRel);
    }

    pub fn partition_removed(&self) {
        let _ = self
            .partitions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// An error of a log dir's disk (not a refusal of the log's own rules): it takes the
/// dir offline. Any OS-level error counts, as any IOException does in Kafka.
pub fn is_storage_fault(error: &LogError) -> bool {
    match error {
        LogError::Io(e) => e.raw_os_error().is_some(),
        LogError::Failed(_) => true,
        _ => false,
    }
}

/// Where a partition's log is.
#[derive(Debug, Clone)]
pub enum Placement {
    /// In this online dir (found there, or placed there now).
    Online(Arc<DataDir>),
    /// In this offline dir: hosted without a log, answering KAFKA_STORAGE_ERROR.
    Offline(Arc<DataDir>),
}

/// The dir for a new or existing partition: the log dir already holding its directory,
/// else the online dir with the fewest partitions (Kafka's LogManager.nextLogDirs; ties
/// go to the first in `log.dirs` order). A partition found in an offline dir, or one the
/// metadata places in an offline dir (`assigned`, its replica's directory id), is offline,
/// never created anew elsewhere. So is one that existed before this start (`existing`)
/// and is in no online dir while some dir is offline: it may be in the one that could not
/// be read (Kafka refuses to create a log that is not new while a dir is offline).
pub fn place_partition(
    dirs: &[Arc<DataDir>],
    topic: &str,
    index: i32,
    assigned: uuid::Uuid,
    existing: bool,
) -> Result<Placement, LogError> {
    for dir in dirs {
        let found = partition_dir(&dir.path, topic, index);
        if dir.is_offline() {
            // An offline disk may not even answer: only a dir we can see counts as found.
            if found.is_dir() {
                dir.partition_placed();
                return Ok(Placement::Offline(dir.clone()));
            }
            continue;
        }
        match std::fs::metadata(&found) {
            Ok(meta) if meta.is_dir() => {
                dir.partition_placed();
                return Ok(Placement::Online(dir.clone()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let first_offline = dirs.iter().find(|d| d.is_offline());
    let assigned_known = assigned != strom_metadata::records::UNASSIGNED_DIR
        && assigned != strom_metadata::records::MIGRATING_DIR;
    let offline_home = if assigned_known {
        match dirs.iter().find(|d| d.id() == Some(assigned)) {
            Some(dir) if dir.is_offline() => Some(dir),
            Some(_) => None,
            // A dir whose id could not be read at start.
            None => first_offline,
        }
    } else if existing {
        first_offline
    } else {
        None
    };
    if let Some(dir) = offline_home {
        dir.partition_placed();
        return Ok(Placement::Offline(dir.clone()));
    }
    let chosen = dirs
        .iter()
        .filter(|d| !d.is_offline())
        .min_by_key(|d| d.partition_count())
        .ok_or_else(|| LogError::Failed("every log dir is offline".into()))?;
    chosen.partition_placed();
    Ok(Placement::Online(chosen.clone()))
}

pub fn partition_dir(log_dir: &Path, topic: &str, index: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{index}"))
}

fn partition_metadata(topic_id: TopicId) -> String {
    format!("version: 0\ntopic_id: {topic_id}\n")
}

/// Opens (creating if needed) the log of a partition of topic `topic_id` in `dir`;
/// `log_dir_clean` when the log dir's clean-shutdown marker was there at start.
pub fn open_partition_log(
    dir: &Path,
    topic_id: TopicId,
    config: strom_log::LogConfig,
    log_dir_clean: bool,
) -> Result<PartitionLog, LogError> {
    let marker = dir.join(PARTITION_METADATA_FILE);
    let expected = partition_metadata(topic_id);
    match std::fs::read_to_string(&marker) {
        Ok(found) if found == expected => {}
        Ok(_) => {
            warn!(dir = %dir.display(), "partition dir belongs to an older topic of the same name; removing it");
            std::fs::remove_dir_all(dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::create_dir_all(dir)?;
    if !marker.exists() {
        std::fs::write(&marker, expected)?;
    }
    PartitionLog::open_in_log_dir(dir.to_path_buf(), config, now_ms(), log_dir_clean)
}

/// Undoes [`open_partition_log`] for a partition whose creation was not committed:
/// removes the dir if it names `topic_id` (or is empty), and leaves anything else alone.
pub fn remove_uncommitted_partition_dir(dir: &Path, topic_id: TopicId) {
    let ours = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE))
        .is_ok_and(|found| found == partition_metadata(topic_id));
    let result = if ours {
        std::fs::remove_dir_all(dir)
    } else if dir.is_dir() {
        // Only an empty dir goes: mkdir succeeded and the marker write did not.
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            other => other,
        }
    } else {
        Ok(())
    };
    if let Err(e) = result {
        // The start-up sweep removes dirs no topic owns.
        warn!(dir = %dir.display(), error = %e, "removing the dir of an uncreated partition failed; it goes at the next start");
    }
}

/// Renames a deleted partition's dir to `<name>.<topic id>-delete`, which frees the name at
/// once, and wakes the deleter. A failure is logged: the dir no longer belongs to a topic,
/// so the start-up sweep removes it.
pub fn retire_partition_dir(dir: &Path, topic_id: TopicId, deleter: &DirDeleter) {
    let Some(name) = dir.file_name() else { return };
    let renamed = dir.with_file_name(format!(
        "{}.{}{DELETE_SUFFIX}",
        name.to_string_lossy(),
        topic_id.simple()
    ));
    match std::fs::rename(dir, &renamed) {
        Ok(()) => deleter.wake(),
        Err(e) => warn!(
            dir = %dir.display(),
            error = %e,
            "renaming a deleted partition dir failed; it is removed at the next start"
        ),
    }
}

/// One background thread that removes `*-delete` dirs. The dirs themselves are its queue,
/// so a wake-up (a channel of one) is all a deletion sends, however many partitions go.
pub struct DirDeleter {
    wake: Option<SyncSender<()>>,
}

impl DirDeleter {
    /// The thread ends when the deleter is dropped.
    pub fn spawn(log_dirs: Vec<PathBuf>) -> Self {
        let (wake, woken) = sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("strom-dir-deleter".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    for log_dir in &log_dirs {
                        remove_deleted_dirs(log_dir);
                    }
                }
            });
        match spawned {
            Ok(_) => Self { wake: Some(wake) },
            Err(e) => {
                warn!(error = %e, "starting the dir deleter failed; deleted partitions' files go at the next start");
                Self { wake: None }
            }
        }
    }

    pub fn wake(&self) {
        if let Some(wake) = &self.wake {
            // Full means a sweep is already due, which will see this dir too.
            let _ = wake.try_send(());
        }
    }
}

/// Removes every `*-delete` dir in the log dir (at start, and in the deleter).
pub fn remove_deleted_dirs(log_dir: &Path) {
    let entries = match std::fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) => {
            warn!(dir = %log_dir.display(), error = %e, "listing the log dir for deleted partitions failed");
            return;
        }
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().ends_with(DELETE_SUFFIX) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => debug!(dir = %entry.path().display(), "removed a deleted partition dir"),
            Err(e) => warn!(
                dir = %entry.path().display(),
                error = %e,
                "removing a deleted partition dir failed; retried at the next deletion or start"
            ),
        }
    }
}

/// Runs `job` on each item with at most `workers` threads; results come back in item
/// order. Partition logs open and close independently, and their fsyncs overlap well.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.iter().map(job).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, job(item)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_item_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            parallel_map(&items, 8, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert_eq!(parallel_map(&[] as &[u32], 8, |x| *x), Vec::<u32>::new());
    }

    #[test]
    fn uncommitted_dir_is_removed_only_when_ours() {
        let log_dir = tempfile::tempdir().unwrap();
        let id = TopicId::from_u128(7);
        let dir = partition_dir(log_dir.path(), "t", 0);
        open_partition_log(&dir, id, strom_log::LogConfig::default(), false).unwrap();
        remove_uncommitted_partition_dir(&dir, TopicId::from_u128(8));
        assert!(dir.is_dir(), "another topic's dir stays");
        remove_uncommitted_partition_dir(&dir, id);
        assert!(!dir.exists());

        let file = partition_dir(log_dir.path(), "t", 1);
        std::fs::write(&file, b"not ours").unwrap();
        remove_uncommitted_partition_dir(&file, id);
        assert_eq!(std::fs::read(&file).unwrap(), b"not ours");
    }

    #[test]
    fn partitions_go_where_they_are_or_to_the_emptiest_online_dir() {
        let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let dirs: Vec<Arc<DataDir>> = roots
            .iter()
            .map(|r| DataDir::new(r.path().to_path_buf()))
            .collect();
        let place = |topic: &str| match place_partition(
            &dirs,
            topic,
            0,
            strom_metadata::records::UNASSIGNED_DIR,
            false,
        )
        .unwrap()
        {
            Placement::Online(dir) => dir.path.clone(),
            Placement::Offline(dir) => panic!("{topic} offline in {}", dir.path.display()),
        };
        assert_eq!(place("a"), dirs[0].path, "ties go to the first dir");
        assert_eq!(place("b"), dirs[1].path);
        assert_eq!(place("c"), dirs[0].path);
        // An existing partition dir wins over the counts.
        std::fs::create_dir_all(partition_dir(&dirs[1].path, "d", 0)).unwrap();
        assert_eq!(place("d"), dirs[1].path);
        dirs[1].fail(&"test");
        assert!(matches!(
            place_partition(&dirs, "d", 0, strom_metadata::records::UNASSIGNED_DIR, false),
            Ok(Placement::Offline(dir)) if dir.path == dirs[1].path
        ));
        assert_eq!(place("e"), dirs[0].path);
        // Not new and in no online dir while one is offline: it may be there.
        assert!(matches!(
            place_partition(&dirs, "g", 0, strom_metadata::records::UNASSIGNED_DIR, true),
            Ok(Placement::Offline(dir)) if dir.path == dirs[1].path
        ));
        dirs[0].fail(&"test");
        assert!(place_partition(
            &dirs,
            "f",
            0,
            strom_metadata::records::UNASSIGNED_DIR,
            false
        )
        .is_err());
    }

    #[test]
    fn the_assigned_dir_decides_where_an_unfound_partition_is() {
        let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let a = uuid::Uuid::from_u128(0xa1);
        let b = uuid::Uuid::from_u128(0xb1);
        let dirs = vec![
            DataDir::opened(roots[0].path().to_path_buf(), false, Some(a)),
            DataDir::opened(roots[1].path().to_path_buf(), false, Some(b)),
        ];
        let offline_in = |assigned| match place_partition(&dirs, "t", 0, assigned, false).unwrap() {
            Placement::Offline(dir) => Some(dir.path.clone()),
            Placement::Online(_) => None,
        };
        assert_eq!(offline_in(b), None, "an online assigned dir: created");
        dirs[1].fail(&"test");
        assert_eq!(offline_in(b), Some(dirs[1].path.clone()));
        assert_eq!(offline_in(a), None);
        let unread = DataDir::offline_at_start(std::path::PathBuf::from("/nonexistent"), &"test");
        let dirs = vec![dirs[0].clone(), unread];
        let placed = place_partition(&dirs, "t", 1, uuid::Uuid::from_u128(0xc1), false).unwrap();
        assert!(matches!(placed, Placement::Offline(dir) if dir.id().is_none()));
    }

    #[test]
    fn deleter_removes_retired_dirs() {
        let log_dir = tempfile::tempdir().unwrap();
        let deleter = DirDeleter::spawn(vec![log_dir.path().to_path_buf()]);
        let id = TopicId::from_u128(9);
        let dir = partition_dir(log_dir.path(), "t", 0);
        open_partition_log(&dir, id, strom_log::LogConfig::default(), false).unwrap();
        retire_partition_dir(&dir, id, &deleter);
        assert!(!dir.exists());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_dir(log_dir.path()).unwrap().next().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "deleted dir still there"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
