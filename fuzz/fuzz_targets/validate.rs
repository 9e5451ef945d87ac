//! The one-pass validation of a produced batch (`strom_wire::validate`), with
//! the topic's rules and codec picked by the input's first byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_wire::batch::Compression;
use strom_wire::record_check::{RecordRules, TimestampWindow};
use strom_wire::validate::{validate_produce, ProduceRules};

#[path = "common/alloc_limit.rs"]
mod alloc_limit;
#[path = "common/batch.rs"]
mod batch;

fuzz_target!(init: alloc_limit::init(), |data: &[u8]| {
    let Some((options, batch)) = batch::batch_from(data) else {
        return;
    };
    let target = match options & 0x7 {
        1 => Some(Compression::None),
        2 => Some(Compression::Gzip),
        3 => Some(Compression::Snappy),
        4 => Some(Compression::Lz4),
        5 => Some(Compression::Zstd),
        _ => None,
    };
    let window = (options & 0x8 != 0).then_some(TimestampWindow {
        now_ms: 1_700_000_000_000,
        before_max_ms: i64::MAX,
        after_max_ms: 3_600_000,
    });
    let rules = ProduceRules {
        topic_partition: "fuzz-0",
        // Small, so the inflation bound (64x) is reached quickly.
        max_message_bytes: if options & 0x10 != 0 { 4096 } else { 1_048_588 },
        records: RecordRules {
            require_key: options & 0x20 != 0,
            window,
        },
        target,
    };
    if let Ok(validated) = validate_produce(&batch, &rules) {
        if let Some(recompressed) = &validated.recompressed {
            assert!(
                recompressed.len() >= 61,
                "a recompressed batch keeps its header"
            );
        }
    }
});
