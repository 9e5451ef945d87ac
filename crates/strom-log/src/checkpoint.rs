//! Small durable files: one offset each (log start offset, recovery point), Kafka's
//! versioned entry lists (the leader-epoch checkpoint, the log dir's high watermarks), and
//! the clean-shutdown marker (one per log dir; a standalone log keeps its own). Written via a temp file + rename so a crash leaves either the
//! old or the new content, never a torn one.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use tracing::warn;

const VERSION: &str = "0";
/// A checkpoint is a few dozen bytes; anything larger is not ours.
const MAX_CHECKPOINT_BYTES: u64 = 256;

pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";
/// Per log dir: the high watermark of every partition in it.
pub const REPLICATION_OFFSET_FILE: &str = "replication-offset-checkpoint";
/// Entry lists are read whole: 64 MiB holds about two million partitions' high watermarks.
const MAX_ENTRY_LIST_BYTES: u64 = 64 << 20;

/// A checkpoint file's text; `None` when it is missing or larger than `max_bytes` (logged).
fn read_bounded(path: &Path, max_bytes: u64) -> std::io::Result<Option<String>> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > max_bytes {
        warn!(path = %path.display(), len, "ignoring oversized checkpoint file");
        return Ok(None);
    }
    Ok(Some(fs::read_to_string(path).unwrap_or_default()))
}

/// Reads a checkpointed offset; `None` when the file is missing or unreadable garbage.
pub(crate) fn read_offset(dir: &Path, name: &str) -> std::io::Result<Option<i64>> {
    let path = dir.join(name);
    let Some(text) = read_bounded(&path, MAX_CHECKPOINT_BYTES)? else {
        return Ok(None);
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next()) {
        (Some(VERSION), Some(value)) => value.trim().parse::<i64>().ok().filter(|v| *v >= 0),
        _ => None,
    };
    if parsed.is_none() {
        warn!(path = %path.display(), "ignoring malformed checkpoint file");
    }
    Ok(parsed)
}

pub(crate) fn write_offset(dir: &Path, name: &str, offset: i64) -> std::io::Result<()> {
    write_offset_with(dir, name, offset, true)
}

/// [`write_offset`] without waiting for the device: for a caller that syncs the whole
/// filesystem next, and for which the old value is safe until then.
pub(crate) fn write_offset_unsynced(dir: &Path, name: &str, offset: i64) -> std::io::Result<()> {
    write_offset_with(dir, name, offset, false)
}

fn write_offset_with(dir: &Path, name: &str, offset: i64, sync: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        write!(file, "{VERSION}\n{offset}\n")?;
        if sync {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, dir.join(name))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads Kafka's entry-list format (`0`, the entry count, one entry per line), each line
/// parsed by `parse`. `None` when the file is missing; a malformed file is logged and read
/// as missing, since every such file can be rebuilt or is only an optimisation.
pub(crate) fn read_entries<T>(
    path: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> std::io::Result<Option<Vec<T>>> {
    let Some(text) = read_bounded(path, MAX_ENTRY_LIST_BYTES)? else {
        return Ok(None);
    };
    let mut lines = text.lines();
    let parsed = (|| {
        if lines.next()? != VERSION {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        // The count comes from the file: the lines, not it, bound the allocation.
        let entries: Vec<T> = lines
            .by_ref()
            .take(count)
            .map(&parse)
            .collect::<Option<_>>()?;
        (entries.len() == count && lines.next().is_none()).then_some(entries)
    })();
    if parsed.is_none() {
        warn!(path = %path.display(), "ignoring malformed checkpoint file");
    }
    Ok(parsed)
}

/// Writes an entry list in Kafka's format, durably.
pub(crate) fn write_entries(path: &Path, entries: &[String]) -> std::io::Result<()> {
    write_entries_with(path, entries, true)
}

/// Writes an entry list in Kafka's format (temp file and rename) without waiting for the
/// device: the caller makes it durable later with [`sync_file_and_dir`].
pub(crate) fn write_entries_unsynced(path: &Path, entries: &[String]) -> std::io::Result<()> {
    write_entries_with(path, entries, false)
}

/// fsyncs a file written by [`write_entries_unsynced`] and its directory (for the rename).
pub(crate) fn sync_file_and_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

fn write_entries_with(path: &Path, entries: &[String], sync: bool) -> std::io::Result<()> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(entry);
        text.push('\n');
    }
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("checkpoint path has no file name"))?;
    let tmp = path.with_file_name(format!("{}.tmp", name.to_string_lossy()));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        if sync {
            file.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if !sync {
        return Ok(());
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// A partition's high watermark as the log dir's `replication-offset-checkpoint` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HighWatermarkEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Reads `<log dir>/replication-offset-checkpoint` (empty when missing or malformed).
pub fn read_high_watermarks(log_dir: &Path) -> std::io::Result<Vec<HighWatermarkEntry>> {
    let entries = read_entries(&log_dir.join(REPLICATION_OFFSET_FILE), |line| {
        let mut parts = line.split(' ');
        let (topic, partition, offset) = (parts.next()?, parts.next()?, parts.next()?);
        let entry = HighWatermarkEntry {
            topic: topic.to_string(),
            partition: partition.parse().ok().filter(|p: &i32| *p >= 0)?,
            offset: offset.parse().ok().filter(|o: &i64| *o >= 0)?,
        };
        parts.next().is_none().then_some(entry)
    })?;
    Ok(entries.unwrap_or_default())
}

/// Writes every hosted partition's high watermark to the log dir's checkpoint.
pub fn write_high_watermarks(
    log_dir: &Path,
    entries: &[HighWatermarkEntry],
) -> std::io::Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|e| format!("{} {} {}", e.topic, e.partition, e.offset))
        .collect();
    write_entries(&log_dir.join(REPLICATION_OFFSET_FILE), &lines)
}

pub(crate) fn marker_exists(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN_FILE).is_file()
}

/// The marker is empty, so the directory fsync alone makes it durable. It is written after
/// the log's data is fsynced, so it never stands for data that is not.
pub(crate) fn write_marker(dir: &Path) -> std::io::Result<()> {
    File::create(dir.join(CLEAN_SHUTDOWN_FILE))?;
    sync_dir(dir)
}

pub(crate) fn remove_marker(dir: &Path) -> std::io::Result<()> {
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the log dir's clean-shutdown marker is there: every log in it was flushed and
/// closed, and nothing was appended since.
pub fn log_dir_had_clean_shutdown(log_dir: &Path) -> bool {
    marker_exists(log_dir)
}

/// Removes the log dir's clean-shutdown marker durably; called once every log in the dir
/// is open and before any append, so a crash from then on never finds it.
pub fn remove_log_dir_clean_shutdown(log_dir: &Path) -> std::io::Result<()> {
    remove_marker(log_dir)
}

/// Makes everything written to the log dir's filesystem durable (syncfs), then writes the
/// log dir's clean-shutdown marker. Called once every log in the dir is closed (see
/// [`crate::PartitionLog::close_unsynced`]). `log_dir` is a handle opened when the broker
/// started, so syncfs also reports writeback errors that happened in the background since.
pub fn write_log_dir_clean_shutdown(log_dir: &Path, handle: &File) -> std::io::Result<()> {
    sync_filesystem(handle)?;
    write_marker(log_dir)
}

/// syncfs(2): writes back and waits for every dirty file and directory of the filesystem
/// `handle` is on; one call replaces an fsync per file when many logs close at once.
pub fn sync_filesystem(handle: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes renames and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), None);
        write_offset(dir.path(), "x", 42).unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), Some(42));
        assert_eq!(fs::read_to_string(dir.path().join("x")).unwrap(), "0\n42\n");
        fs::write(dir.path().join("x"), "7\nnot a number\n").unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), None);
        fs::write(dir.path().join("x"), vec![b'1'; 1000]).unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), None);
    }

    #[test]
    fn entry_lists_round_trip_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_high_watermarks(dir.path()).unwrap().is_empty());
        let entries = vec![
            HighWatermarkEntry {
                topic: "orders".into(),
                partition: 0,
                offset: 42,
            },
            HighWatermarkEntry {
                topic: "__consumer_offsets".into(),
                partition: 49,
                offset: 0,
            },
        ];
        write_high_watermarks(dir.path(), &entries).unwrap();
        let path = dir.path().join(REPLICATION_OFFSET_FILE);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\norders 0 42\n__consumer_offsets 49 0\n"
        );
        assert_eq!(read_high_watermarks(dir.path()).unwrap(), entries);
        for garbage in [
            "0\n3\norders 0 42\n",
            "0\n1\norders 0 42\nextra 1 1\n",
            "1\n1\norders 0 42\n",
            "0\n1\norders 0 -5\n",
            "0\n999999999999\n",
        ] {
            fs::write(&path, garbage).unwrap();
            assert!(
                read_high_watermarks(dir.path()).unwrap().is_empty(),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn marker_is_created_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!marker_exists(dir.path()));
        write_marker(dir.path()).unwrap();
        assert!(marker_exists(dir.path()));
        remove_marker(dir.path()).unwrap();
        assert!(!marker_exists(dir.path()));
        remove_marker(dir.path()).unwrap();
    }
}
