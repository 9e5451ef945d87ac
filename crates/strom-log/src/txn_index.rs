//! A segment's aborted-transaction index (`<base offset>.txnindex`), in Kafka's format:
//! 34-byte entries of i16 version 0, i64 producer id, i64 first offset, i64 last offset
//! (the abort marker's) and i64 last stable offset (when the marker was written), in the
//! order their markers were written. The file exists only once an entry does.
//!
//! The entries also live in memory, in the segment's shared view, so fetches read them
//! without the log's lock ([`crate::LogReader::aborted_transactions`]).

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
const ENTRY_BYTES: usize = 34;
const VERSION: i16 = 0;

/// An aborted transaction a read_committed consumer must filter out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnIndexEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl TxnIndexEntry {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        (i16::from_be_bytes([bytes[0], bytes[1]]) == VERSION).then(|| Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The entries of the file at `path` (none when it does not exist). A torn last entry
/// or an unknown version ends the list there.
pub(crate) fn load(path: &Path) -> std::io::Result<Vec<TxnIndexEntry>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(ENTRY_BYTES)
        .map_while(TxnIndexEntry::decode)
        .collect())
}

pub(crate) fn append(path: &Path, entry: &TxnIndexEntry) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&entry.encode())
}

/// Replaces the file's contents with `entries` (removing it when there are none).
pub(crate) fn rewrite(path: &Path, entries: &[TxnIndexEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return remove(path);
    }
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
    let tmp = path.with_extension(format!("{TXN_INDEX_SUFFIX}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(tmp, path)
}

pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// fsyncs the file if it exists.
pub(crate) fn sync(path: &Path) -> std::io::Result<()> {
    match fs::File::open(path) {
        Ok(file) => file.sync_all(),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Kafka's TransactionIndex.collectAbortedTxns: the entries overlapping
/// `[fetch_offset, upper_bound_offset)`, and whether the search is complete (an entry's
/// last stable offset reached the bound, so later segments cannot add any).
pub(crate) fn collect(
    entries: &[TxnIndexEntry],
    fetch_offset: i64,
    upper_bound_offset: i64,
    out: &mut Vec<AbortedTxn>,
) -> bool {
    for entry in entries {
        if entry.last_offset >= fetch_offset && entry.first_offset < upper_bound_offset {
            out.push(AbortedTxn {
                producer_id: entry.producer_id,
                first_offset: entry.first_offset,
            });
        }
        if entry.last_stable_offset >= upper_bound_offset {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_34_bytes_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        assert!(load(&path).unwrap().is_empty());
        let a = TxnIndexEntry {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let b = TxnIndexEntry {
            producer_id: 8,
            first_offset: 22,
            last_offset: 30,
            last_stable_offset: 25,
        };
        append(&path, &a).unwrap();
        append(&path, &b).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        assert_eq!(load(&path).unwrap(), vec![a, b]);
        // A torn entry is ignored.
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(60);
        fs::write(&path, bytes).unwrap();
        assert_eq!(load(&path).unwrap(), vec![a]);
        let mut out = Vec::new();
        assert!(!collect(&[a, b], 21, 40, &mut out));
        assert_eq!(
            out,
            vec![AbortedTxn {
                producer_id: 8,
                first_offset: 22
            }]
        );
        out.clear();
        assert!(collect(&[a, b], 0, 15, &mut out));
        assert_eq!(out.len(), 1);
    }
}
