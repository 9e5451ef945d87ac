//! Size-prefixed framing. The 4-byte length is checked against the limit
//! before a single byte of the body is buffered, so an untrusted length can
//! never drive an allocation.

use bytes::{Buf, BytesMut};
use thiserror::Error;

pub const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
}

/// Reads the length prefix at the front of `buf` and validates it.
/// Returns `Ok(None)` when the prefix itself is incomplete.
pub fn peek_frame_size(buf: &[u8], max_size: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < LENGTH_PREFIX_BYTES {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    let size = size as usize;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    Ok(Some(size))
}

/// Splits one complete frame body off the front of `buf`, if one is there.
pub fn split_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(size) = peek_frame_size(buf, max_size)? else {
        return Ok(None);
    };
    if buf.len() < LENGTH_PREFIX_BYTES + size {
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX_BYTES);
    Ok(Some(buf.split_to(size)))
}

/// The api key, version and correlation id at the front of every request,
/// readable before the rest of the header is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn peek_request_prefix(body: &[u8]) -> Option<RequestPrefix> {
    if body.len() < 8 {
        return None;
    }
    Some(RequestPrefix {
        api_key: i16::from_be_bytes([body[0], body[1]]),
        api_version: i16::from_be_bytes([body[2], body[3]]),
        correlation_id: i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_prefix_and_body_wait_for_more() {
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 1, 2][..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        assert_eq!(buf.len(), 6, "nothing consumed while incomplete");
    }

    #[test]
    fn complete_frame_is_split_off() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 7, 8, 0, 0][..]);
        let frame = split_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(&frame[..], &[7, 8]);
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn oversized_and_negative_sizes_are_rejected_from_the_prefix_alone() {
        let mut buf = BytesMut::from(&0x7fff_ffffu32.to_be_bytes()[..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            Err(FrameError::TooLarge {
                size: 0x7fff_ffff,
                max: 1024
            })
        );
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(
            split_frame(&mut buf, 1024),
            Err(FrameError::NegativeSize { size: -5 })
        );
    }

    #[test]
    fn request_prefix_reads_key_version_and_correlation() {
        let body = [0u8, 3, 0, 12, 0, 0, 1, 0, 0xff];
        assert_eq!(
            peek_request_prefix(&body),
            Some(RequestPrefix {
                api_key: 3,
                api_version: 12,
                correlation_id: 256
            })
        );
        assert_eq!(peek_request_prefix(&body[..7]), None);
    }
}
