//! Small durable files holding one offset each (log start offset, recovery point), and the
//! clean-shutdown marker. Written via a temp file + rename so a crash leaves either the old
//! or the new value, never a torn one.

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

/// Reads a checkpointed offset; `None` when the file is missing or unreadable garbage.
pub(crate) fn read_offset(dir: &Path, name: &str) -> std::io::Result<Option<i64>> {
    let path = dir.join(name);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_CHECKPOINT_BYTES {
        warn!(path = %path.display(), len, "ignoring oversized checkpoint file");
        return Ok(None);
    }
    let text = fs::read_to_string(&path).unwrap_or_default();
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
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        write!(file, "{VERSION}\n{offset}\n")?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

pub(crate) fn marker_exists(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN_FILE).is_file()
}

pub(crate) fn write_marker(dir: &Path) -> std::io::Result<()> {
    let file = File::create(dir.join(CLEAN_SHUTDOWN_FILE))?;
    file.sync_all()?;
    sync_dir(dir)
}

pub(crate) fn remove_marker(dir: &Path) -> std::io::Result<()> {
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
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
