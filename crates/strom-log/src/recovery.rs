//! Loading a log directory: which segments exist, which can be trusted, and rebuilding the
//! rest from their `.log` files (validating every batch, CRC included) with a torn or
//! corrupt tail cut off at the last valid batch.

use std::fs;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use strom_wire::batch::{validate, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use tracing::{info, warn};

use crate::config::LogConfig;
use crate::error::LogError;
use crate::scan::BatchMeta;
use crate::segment::{delete_segment_files, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;

const RECOVERY_READ_BUFFER_BYTES: usize = 1 << 20;

/// Base offsets of the `<20 digits>.log` files in `dir`, sorted; stray temp files and
/// indexes without a log are removed on the way.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") || name.ends_with(&format!(".{}", crate::segment::DELETED)) {
            warn!(
                file = name,
                "removing leftover temp or deleted-segment file"
            );
            fs::remove_file(entry.path())?;
            continue;
        }
        let Some((stem, suffix)) = name.split_once('.') else {
            continue;
        };
        let base = match stem.parse::<i64>() {
            Ok(base) if stem.len() == 20 && base >= 0 => base,
            _ => continue,
        };
        match suffix {
            LOG_SUFFIX => logs.push(base),
            INDEX_SUFFIX | TIME_INDEX_SUFFIX | TXN_INDEX_SUFFIX => {
                indexes.push((base, entry.path()))
            }
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            warn!(file = %path.display(), "removing index without a log segment");
            fs::remove_file(path)?;
        }
    }
    Ok(logs)
}

/// Opens every segment in `dir`. Segments wholly below `recovery_point` (or all of them
/// after a clean shutdown) are trusted unless their indexes fail the sanity check; the rest
/// are recovered. A segment that lost its tail invalidates every later segment. Returns the
/// segments and the base offsets of those that were recovered.
pub(crate) fn load_segments(
    dir: &Path,
    config: &LogConfig,
    now_ms: i64,
    clean_shutdown: bool,
    recovery_point: i64,
) -> Result<(Vec<Segment>, Vec<i64>), LogError> {
    let bases = list_segments(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut recovered = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let flushed = bases.get(i + 1).is_some_and(|&next| next <= recovery_point);
        let trusted = if clean_shutdown || flushed {
            Segment::open_trusted(dir, base, config, now_ms)?
        } else {
            None
        };
        let (segment, truncated_bytes) = match trusted {
            Some(segment) => (segment, 0),
            None => {
                recovered.push(base);
                let (mut segment, cut) = recover_segment(dir, base, config, now_ms)?;
                // Rebuilt by the producer-state replay, which starts at or before it.
                segment.cut_txn_index(base)?;
                (segment, cut)
            }
        };
        if segments
            .last()
            .is_some_and(|p| p.next_offset > segment.base_offset)
        {
            warn!(
                segment = base,
                "segment overlaps its predecessor; deleting it and later ones"
            );
            drop(segment);
            delete_segments(dir, &bases[i..])?;
            break;
        }
        segments.push(segment);
        if truncated_bytes > 0 && i + 1 < bases.len() {
            warn!(
                segment = base,
                later = bases.len() - i - 1,
                "deleting segments after a truncated one"
            );
            delete_segments(dir, &bases[i + 1..])?;
            break;
        }
    }
    Ok((segments, recovered))
}

fn delete_segments(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        delete_segment_files(dir, base)?;
    }
    Ok(())
}

/// Rebuilds one segment from its `.log`: every batch is validated (length, magic, CRC, count)
/// and must follow the previous one in offset order; the file is cut at the first that fails.
/// Returns the segment and how many bytes were cut.
pub(crate) fn recover_segment(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
    now_ms: i64,
) -> Result<(Segment, u64), LogError> {
    let mut segment = Segment::open_for_recovery(dir, base_offset, config, now_ms)?;
    let file_bytes = segment.size_bytes;
    segment.size_bytes = 0;
    let file = segment.log()?;
    let mut reader = BufReader::with_capacity(RECOVERY_READ_BUFFER_BYTES, &*file);
    let mut batch = Vec::new();
    let mut position = 0u64;
    let stop_reason = loop {
        if position == file_bytes {
            break None;
        }
        match next_valid_batch(&mut reader, &mut batch, position, file_bytes, &segment) {
            Ok(meta) => {
                segment.track_batch(&meta, config.index_interval_bytes)?;
                position = meta.end_position();
            }
            Err(Invalid::Batch(reason)) => break Some(reason),
            // An I/O error says nothing about the data: never cut the log for it.
            Err(Invalid::Io(e)) => return Err(e.into()),
        }
    };
    let truncated_bytes = file_bytes - position;
    if let Some(reason) = stop_reason {
        warn!(
            segment = %segment.log_path().display(),
            position,
            truncated_bytes,
            reason,
            "truncating invalid log tail"
        );
        file.set_len(position)?;
        file.sync_all()?;
    }
    // As after a roll, the time index ends with the segment's max timestamp.
    segment.on_become_inactive()?;
    segment.dirty = true;
    info!(
        segment = %segment.log_path().display(),
        size_bytes = segment.size_bytes,
        next_offset = segment.next_offset,
        index_entries = segment.index.len(),
        time_index_entries = segment.time_index.len(),
        "recovered segment"
    );
    segment.index.sync()?;
    segment.time_index.sync()?;
    Ok((segment, truncated_bytes))
}

enum Invalid {
    /// The bytes are not a valid next batch: the log ends before them.
    Batch(String),
    Io(std::io::Error),
}

impl From<String> for Invalid {
    fn from(reason: String) -> Self {
        Self::Batch(reason)
    }
}

/// Reads and validates the batch at `position`.
fn next_valid_batch(
    reader: &mut impl Read,
    batch: &mut Vec<u8>,
    position: u64,
    file_bytes: u64,
    segment: &Segment,
) -> Result<BatchMeta, Invalid> {
    let remaining = file_bytes - position;
    if remaining < BATCH_HEADER_BYTES as u64 {
        return Err(format!("{remaining} trailing bytes are shorter than a batch header").into());
    }
    let mut overhead = [0u8; LOG_OVERHEAD_BYTES];
    read_fully(reader, &mut overhead)?;
    let length = i32::from_be_bytes([overhead[8], overhead[9], overhead[10], overhead[11]]);
    let size_bytes = LOG_OVERHEAD_BYTES as u64 + u64::try_from(length).unwrap_or(0);
    // Checked against the file before allocating: a corrupt length cannot make us over-allocate.
    if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 || size_bytes > remaining {
        return Err(
            format!("batch length {length} does not fit the {remaining} bytes left").into(),
        );
    }
    batch.clear();
    batch.extend_from_slice(&overhead);
    batch.resize(size_bytes as usize, 0);
    read_fully(reader, &mut batch[LOG_OVERHEAD_BYTES..])?;
    let info = validate(batch).map_err(|e| Invalid::Batch(e.to_string()))?;
    let meta = BatchMeta::parse(batch, position, remaining)?;
    let expected_min = if segment.is_empty() {
        segment.base_offset
    } else {
        segment.next_offset
    };
    if meta.base_offset < expected_min || !segment.can_hold_offset(meta.last_offset) {
        return Err(format!(
            "batch offsets {}..={} do not follow {} in segment {}",
            info.base_offset, meta.last_offset, expected_min, segment.base_offset
        )
        .into());
    }
    Ok(meta)
}

fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), Invalid> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        // The file shrank under us; treat like a torn tail.
        ErrorKind::UnexpectedEof => Invalid::Batch("log ended inside a batch".to_string()),
        _ => Invalid::Io(e),
    })
}
