//! Replacing segments with a cleaned one so that a crash at any point leaves
//! either the old segments or the new one, never both or neither.
//!
//! The cleaned segment is written as `<base>.{log,index,timeindex}.cleaned`
//! and fsynced. Then, as Kafka does, the files move to `.swap`: indexes first,
//! the log last. The log's rename is the commit point. After it the replaced
//! segments are deleted and the `.swap` files get their final names.
//!
//! On open, [`finish_interrupted`] undoes an uncommitted swap (`.cleaned`
//! files, and `.swap` indexes without a `.swap` log) and completes a committed
//! one: the segments a `<base>.log.swap` replaces are exactly those starting
//! within its offsets (the cleaner always keeps a group's last batch), so they
//! are deleted before the `.swap` files are renamed.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::checkpoint::sync_dir;
use crate::error::LogError;
use crate::scan::HeaderScan;
use crate::segment::{
    delete_segment_files, segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::txn_index::TXN_INDEX_SUFFIX;

/// Name tail of a cleaned segment's files before the swap starts.
pub(crate) const CLEANED: &str = ".cleaned";
/// Name tail of files in the middle of a swap.
pub(crate) const SWAP: &str = ".swap";

/// The steps of a swap, reported to the caller's hook after each is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// The round's key map is built; nothing is written yet. Reported without the log's lock.
    MapBuilt,
    /// The `.cleaned` files are written and fsynced.
    CleanedWritten,
    /// The indexes are `.swap` files; the log is still `.cleaned`: not committed.
    IndexesSwapped,
    /// The log is a `.swap` file and the directory is synced: committed.
    Committed,
    /// The replaced segments' files are gone.
    OldDeleted,
    /// The indexes have their final names.
    IndexesInstalled,
    /// The log has its final name: the swap is complete.
    Installed,
    /// Every group of the round is swapped in; the cleaner checkpoint is not yet written.
    RoundDone,
}

/// Called after each step; `false` stops the swap right there, as a crash would.
pub type SwapHook<'a> = dyn FnMut(SwapStep) -> bool + 'a;

pub(crate) fn reached(hook: &mut SwapHook<'_>, step: SwapStep) -> Result<(), LogError> {
    if hook(step) {
        Ok(())
    } else {
        Err(LogError::Io(std::io::Error::other(format!(
            "compaction stopped after {step:?}"
        ))))
    }
}

fn file(dir: &Path, base_offset: i64, suffix: &str, tail: &str) -> PathBuf {
    segment_file(dir, base_offset, &format!("{suffix}{tail}"))
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> std::io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the files of an abandoned cleaned segment, `.swap` indexes included.
pub(crate) fn remove_cleaned(dir: &Path, base_offset: i64) -> std::io::Result<()> {
    for suffix in [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ] {
        remove_if_exists(&file(dir, base_offset, suffix, CLEANED))?;
    }
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        remove_if_exists(&file(dir, base_offset, suffix, SWAP))?;
    }
    Ok(())
}

/// Renames the cleaned segment's files to `.swap`, the log last. `Ok` means
/// committed; on an error nothing is committed and the cleaned files are gone.
pub(crate) fn commit(
    dir: &Path,
    base_offset: i64,
    hook: &mut SwapHook<'_>,
) -> Result<(), LogError> {
    // The `.txnindex` exists only when the cleaned segment carries aborted transactions.
    let indexes = [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
        .into_iter()
        .try_for_each(|suffix| {
            fs::rename(
                file(dir, base_offset, suffix, CLEANED),
                file(dir, base_offset, suffix, SWAP),
            )
        })
        .and_then(|()| {
            rename_if_exists(
                &file(dir, base_offset, TXN_INDEX_SUFFIX, CLEANED),
                &file(dir, base_offset, TXN_INDEX_SUFFIX, SWAP),
            )
        });
    let log = || {
        fs::rename(
            file(dir, base_offset, LOG_SUFFIX, CLEANED),
            file(dir, base_offset, LOG_SUFFIX, SWAP),
        )
    };
    if let Err(e) = indexes {
        let _ = remove_cleaned(dir, base_offset);
        return Err(e.into());
    }
    reached(hook, SwapStep::IndexesSwapped)?;
    if let Err(e) = log() {
        let _ = remove_cleaned(dir, base_offset);
        return Err(e.into());
    }
    Ok(())
}

/// Completes a committed swap: deletes the replaced segments, then gives the
/// `.swap` files their final names.
pub(crate) fn finish(
    dir: &Path,
    base_offset: i64,
    replaced: &[i64],
    hook: &mut SwapHook<'_>,
) -> Result<(), LogError> {
    sync_dir(dir)?;
    reached(hook, SwapStep::Committed)?;
    for &old in replaced {
        delete_segment_files(dir, old)?;
    }
    sync_dir(dir)?;
    reached(hook, SwapStep::OldDeleted)?;
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
        rename_if_exists(
            &file(dir, base_offset, suffix, SWAP),
            &segment_file(dir, base_offset, suffix),
        )?;
    }
    reached(hook, SwapStep::IndexesInstalled)?;
    fs::rename(
        file(dir, base_offset, LOG_SUFFIX, SWAP),
        segment_file(dir, base_offset, LOG_SUFFIX),
    )?;
    sync_dir(dir)?;
    reached(hook, SwapStep::Installed)
}

/// `<20 digits>.<suffix>` => (base offset, suffix).
fn parse_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    let base = stem
        .parse::<i64>()
        .ok()
        .filter(|b| stem.len() == 20 && *b >= 0)?;
    Some((base, suffix))
}

/// Offset after the last readable batch of a `.swap` log (its base when none is).
fn swap_next_offset(dir: &Path, base_offset: i64) -> Result<i64, LogError> {
    let path = file(dir, base_offset, LOG_SUFFIX, SWAP);
    let log = fs::File::open(&path)?;
    let len = log.metadata()?.len();
    let mut scan = HeaderScan::new(&log, &path, 0, len);
    let mut next = base_offset;
    loop {
        match scan.next_batch() {
            Ok(Some(meta)) => next = meta.last_offset + 1,
            Ok(None) => return Ok(next),
            // fsynced before the commit, so this is damage after the fact: the
            // usual recovery will cut it; the readable part still says what it replaced.
            Err(LogError::Corrupt { reason, .. }) => {
                warn!(file = %path.display(), reason, "swap segment has an unreadable tail");
                return Ok(next);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Run on open before segments are listed: rolls back an uncommitted cleaner
/// swap and completes a committed one.
pub(crate) fn finish_interrupted(dir: &Path) -> Result<(), LogError> {
    let mut logs = Vec::new();
    let mut log_swaps = Vec::new();
    let mut index_swaps = Vec::new();
    let mut changed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED) {
            warn!(
                file = name,
                "removing a cleaned segment file of an interrupted compaction"
            );
            fs::remove_file(entry.path())?;
            changed = true;
            continue;
        }
        match (
            name.strip_suffix(SWAP).and_then(parse_name),
            parse_name(name),
        ) {
            (Some((base, LOG_SUFFIX)), _) => log_swaps.push(base),
            (Some((base, _)), _) => index_swaps.push((base, entry.path())),
            (None, Some((base, LOG_SUFFIX))) => logs.push(base),
            _ => {}
        }
    }
    for (base, path) in index_swaps {
        if !log_swaps.contains(&base) {
            warn!(file = %path.display(), "removing an uncommitted swap file");
            fs::remove_file(path)?;
            changed = true;
        }
    }
    log_swaps.sort_unstable();
    for base in log_swaps {
        let end = swap_next_offset(dir, base)?.max(base + 1);
        let replaced: Vec<i64> = logs
            .iter()
            .copied()
            .filter(|b| (base..end).contains(b))
            .collect();
        info!(dir = %dir.display(), base, ?replaced, "completing an interrupted segment swap");
        for old in replaced {
            delete_segment_files(dir, old)?;
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
            rename_if_exists(
                &file(dir, base, suffix, SWAP),
                &segment_file(dir, base, suffix),
            )?;
        }
        fs::rename(
            file(dir, base, LOG_SUFFIX, SWAP),
            segment_file(dir, base, LOG_SUFFIX),
        )?;
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}
