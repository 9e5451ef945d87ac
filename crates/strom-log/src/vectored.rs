//! One positioned write of several buffers (`pwritev`): a produced batch's
//! rewritten header and its records sit in different buffers and reach the
//! file together without being joined in user space.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Linux's UIO_MAXIOV: the most buffers one `pwritev` takes.
const IOV_MAX: usize = 1024;

/// Writes `parts` one after another at `offset`: all of them, or an error.
/// A short write continues where it stopped and an interrupted call is
/// retried, as `write_all_at` does for one buffer.
pub(crate) fn write_all_vectored_at(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    #[cfg(test)]
    if let Some(limit) = faults::WRITE_LIMIT.with(|l| l.take()) {
        return faults::write_then_fail(file, parts, offset, limit);
    }
    write_all_vectored_unfaulted(file, parts, offset)
}

/// `fdatasync`, with a test seam that makes it fail as a full or broken disk does.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if faults::FAIL_SYNC.with(|f| f.get()) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    file.sync_data()
}

/// Fault injection for this crate's tests (per thread, so tests stay independent).
#[cfg(test)]
pub(crate) mod faults {
    use std::cell::Cell;

    thread_local! {
        /// The next vectored write lands only this many bytes, then fails with ENOSPC.
        pub(crate) static WRITE_LIMIT: Cell<Option<usize>> = const { Cell::new(None) };
        /// Every fsync through [`super::sync_data`] fails with EIO while set.
        pub(crate) static FAIL_SYNC: Cell<bool> = const { Cell::new(false) };
    }

    pub(crate) fn write_then_fail(
        file: &super::File,
        parts: &[&[u8]],
        offset: u64,
        limit: usize,
    ) -> std::io::Result<()> {
        let joined: Vec<u8> = parts.concat();
        let landed = &joined[..limit.min(joined.len())];
        super::write_all_vectored_unfaulted(file, &[landed], offset)?;
        Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
    }
}

fn write_all_vectored_unfaulted(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    let mut offset = offset;
    // The first part not yet fully written, and how much of it is.
    let (mut index, mut done) = (0usize, 0usize);
    let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(parts.len().min(IOV_MAX));
    loop {
        while index < parts.len() && done == parts[index].len() {
            index += 1;
            done = 0;
        }
        if index == parts.len() {
            return Ok(());
        }
        iovecs.clear();
        iovecs.extend(
            parts[index..]
                .iter()
                .take(IOV_MAX)
                .enumerate()
                .map(|(i, part)| {
                    let part = if i == 0 { &part[done..] } else { part };
                    libc::iovec {
                        iov_base: part.as_ptr() as *mut libc::c_void,
                        iov_len: part.len(),
                    }
                }),
        );
        let position = libc::off_t::try_from(offset).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "write position past off_t")
        })?;
        // SAFETY: each iovec points into a live slice of `parts` of the stated length, and
        // pwritev only reads them; the count is at most IOV_MAX, so it fits a c_int.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iovecs.as_ptr(),
                iovecs.len() as libc::c_int,
                position,
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut written = written as usize;
        offset += written as u64;
        while written > 0 {
            let left = parts[index].len() - done;
            if written < left {
                done += written;
                break;
            }
            written -= left;
            index += 1;
            done = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn parts_land_in_order_at_the_offset() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(b"0123456789", 0).unwrap();
        write_all_vectored_at(&file, &[b"ab", b"", b"cde"], 3).unwrap();
        let mut read = [0u8; 10];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(&read, b"012abcde89");
    }

    #[test]
    fn more_parts_than_one_call_takes_are_written_in_turns() {
        let file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..3 * IOV_MAX + 7).map(|i| (i % 251) as u8).collect();
        let parts: Vec<&[u8]> = bytes.chunks(1).collect();
        write_all_vectored_at(&file, &parts, 0).unwrap();
        let mut read = vec![0u8; bytes.len()];
        file.read_exact_at(&mut read, 0).unwrap();
        assert_eq!(read, bytes);
        assert_eq!(file.metadata().unwrap().len(), bytes.len() as u64);
    }

    #[test]
    fn a_read_only_file_reports_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = File::open(&path).unwrap();
        assert!(write_all_vectored_at(&file, &[b"ab"], 0).is_err());
    }
}
