//! Walking batch headers inside a segment file without reading record bodies.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use strom_wire::batch::{BatchHeader, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};

use crate::error::LogError;

/// Bytes read per refill; large enough that a run of small batches costs one pread.
const SCAN_WINDOW_BYTES: usize = 16 * 1024;

/// The header facts the log keeps about a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    /// Position of the batch within its segment file (or within an append buffer).
    pub position: u64,
    pub size_bytes: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
    /// The partition leader epoch stamped by the leader that wrote it, -1 for none.
    pub leader_epoch: i32,
}

impl BatchMeta {
    /// Reads the header at the front of `bytes`; `Err` says why it cannot be a batch
    /// that fits in `available_bytes`.
    pub(crate) fn parse(bytes: &[u8], position: u64, available_bytes: u64) -> Result<Self, String> {
        let header = BatchHeader::new(bytes).map_err(|e| e.to_string())?;
        let length = header.batch_length();
        if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
            return Err(format!("invalid batch length {length}"));
        }
        let size_bytes = header.total_size() as u64;
        if size_bytes > available_bytes {
            return Err(format!(
                "batch of {size_bytes} bytes runs past the {available_bytes} bytes available"
            ));
        }
        if header.last_offset_delta() < 0 {
            return Err(format!(
                "negative last offset delta {}",
                header.last_offset_delta()
            ));
        }
        Ok(Self {
            position,
            size_bytes,
            base_offset: header.base_offset(),
            last_offset: header
                .base_offset()
                .saturating_add(i64::from(header.last_offset_delta())),
            max_timestamp_ms: header.max_timestamp(),
            leader_epoch: header.partition_leader_epoch(),
        })
    }

    pub(crate) fn end_position(&self) -> u64 {
        self.position + self.size_bytes
    }
}

/// Yields the headers of consecutive batches in `[start, end)` of a segment file.
pub(crate) struct HeaderScan<'a> {
    file: &'a File,
    path: &'a Path,
    position: u64,
    end: u64,
    window: Vec<u8>,
    window_start: u64,
}

impl<'a> HeaderScan<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, start: u64, end: u64) -> Self {
        Self {
            file,
            path,
            position: start,
            end,
            window: Vec::new(),
            window_start: start,
        }
    }

    fn corrupt(&self, reason: String) -> LogError {
        LogError::Corrupt {
            path: self.path.to_path_buf(),
            position: self.position,
            reason,
        }
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<BatchMeta>, LogError> {
        Ok(self.next_with_header()?.map(|(meta, _)| meta))
    }

    /// The next batch's facts plus a copy of its whole header (producer id, attributes...).
    pub(crate) fn next_with_header(
        &mut self,
    ) -> Result<Option<(BatchMeta, [u8; BATCH_HEADER_BYTES])>, LogError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let remaining = self.end - self.position;
        if remaining < BATCH_HEADER_BYTES as u64 {
            return Err(self.corrupt(format!("{remaining} trailing bytes are not a batch")));
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.position < self.window_start
            || self.position + BATCH_HEADER_BYTES as u64 > window_end
        {
            let len = remaining.min(SCAN_WINDOW_BYTES as u64) as usize;
            self.window.resize(len, 0);
            self.file.read_exact_at(&mut self.window, self.position)?;
            self.window_start = self.position;
        }
        let at = (self.position - self.window_start) as usize;
        let meta = BatchMeta::parse(&self.window[at..], self.position, remaining)
            .map_err(|reason| self.corrupt(reason))?;
        let mut header = [0u8; BATCH_HEADER_BYTES];
        header.copy_from_slice(&self.window[at..at + BATCH_HEADER_BYTES]);
        self.position = meta.end_position();
        Ok(Some((meta, header)))
    }
}

/// Reads `len` bytes at `position`, which the caller has checked lie inside the file.
pub(crate) fn read_exact(file: &File, position: u64, len: u64) -> Result<Vec<u8>, LogError> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, position)?;
    Ok(bytes)
}
