//! The wire layer: size-prefixed frames, request header decoding, and a
//! zero-copy view of Kafka record batches (magic v2). Nothing here touches a
//! socket or a file, so every rule can be unit tested on byte slices.

pub mod batch;
pub mod codec;
pub mod compression;
pub mod frame;
pub mod record;
pub mod record_check;
pub mod validate;
