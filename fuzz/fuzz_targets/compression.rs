//! Changing a batch's codec (`strom_wire::compression`): a recompressed batch
//! must inflate to exactly the records of the original.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_wire::batch::Compression;
use strom_wire::compression::{inflate_records, recompress};

#[path = "common/alloc_limit.rs"]
mod alloc_limit;
#[path = "common/batch.rs"]
mod batch;

const LIMIT: u64 = 4 << 20;

fuzz_target!(init: alloc_limit::init(), |data: &[u8]| {
    let Some((options, batch)) = batch::batch_from(data) else {
        return;
    };
    let target = match options % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    };
    let original = inflate_records(&batch, LIMIT);
    let Ok(recompressed) = recompress(&batch, target, LIMIT) else {
        return;
    };
    let original = original.expect("a batch that recompresses inflates");
    let again = inflate_records(&recompressed, LIMIT).expect("a recompressed batch inflates");
    assert!(original == again, "recompression changed the records");
});
