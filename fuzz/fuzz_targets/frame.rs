//! The frame splitter (`strom_wire::frame`) fed a stream in chunks: the frames
//! it returns are the declared sizes, in order, and nothing is lost.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strom_wire::frame::{peek_frame_size, peek_request_prefix, split_frame, LENGTH_PREFIX_BYTES};

#[path = "common/alloc_limit.rs"]
mod alloc_limit;

fuzz_target!(init: alloc_limit::init(), |data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let max_size = 1 << 16;
    let mut buf = BytesMut::new();
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let peeked = peek_frame_size(&buf, max_size);
            match split_frame(&mut buf, max_size) {
                Ok(Some(frame)) => {
                    assert_eq!(peeked.ok().flatten(), Some(frame.len()));
                    assert!(frame.len() <= max_size);
                    let start = consumed + LENGTH_PREFIX_BYTES;
                    assert_eq!(&frame[..], &stream[start..start + frame.len()]);
                    consumed = start + frame.len();
                    let _ = peek_request_prefix(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert_eq!(&buf[..], &stream[consumed..consumed + buf.len()]);
    }
});
