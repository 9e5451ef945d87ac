//! The bounds-checked record view (`strom_wire::record`) and rebuilding a batch
//! from some of its records, as compaction does: the rebuilt batch must hold
//! exactly the records kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_wire::batch::BatchHeader;
use strom_wire::record::{parse_records, rebuild_batch, records_section, Records};

#[path = "common/alloc_limit.rs"]
mod alloc_limit;
#[path = "common/batch.rs"]
mod batch;

const LIMIT: u64 = 4 << 20;

fuzz_target!(init: alloc_limit::init(), |data: &[u8]| {
    let Some((options, batch)) = batch::batch_from(data) else {
        return;
    };
    let Ok(header) = BatchHeader::new(&batch) else {
        return;
    };
    let count = header.records_count();
    let Ok(section) = records_section(&batch, LIMIT) else {
        return;
    };
    // The iterator and the eager parse agree.
    let walked: Result<Vec<_>, _> = Records::new(&section, count).collect();
    let parsed = parse_records(&section, count);
    assert_eq!(walked.is_ok(), parsed.is_ok());
    let Ok(records) = parsed else {
        return;
    };
    let kept: Vec<_> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| options & (1 << (i % 7)) != 0)
        .map(|(_, r)| *r)
        .collect();
    let horizon = (options & 0x40 != 0).then_some(1_700_000_000_000);
    let Ok(rebuilt) = rebuild_batch(&batch, &kept, horizon) else {
        return;
    };
    let rebuilt_header = BatchHeader::new(&rebuilt).expect("a rebuilt batch has a header");
    let section = records_section(&rebuilt, LIMIT).expect("a rebuilt batch is valid");
    let again = parse_records(&section, rebuilt_header.records_count())
        .expect("a rebuilt batch's records parse");
    assert_eq!(again.len(), kept.len());
    for (a, b) in again.iter().zip(&kept) {
        assert_eq!(a.key(), b.key());
        assert_eq!(a.value(), b.value());
        assert_eq!(a.offset_delta(), b.offset_delta());
    }
});
