//! Helpers that build real record batches, for tests and the simulation.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One uncompressed v2 batch holding `values` (one record each, keyless), at `base_offset`
/// and stamped with `leader_epoch`. Panics on an empty `values` (a batch holds a record).
pub fn batch_bytes(base_offset: i64, leader_epoch: i32, values: &[&[u8]]) -> Bytes {
    assert!(!values.is_empty(), "a batch holds at least one record");
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // The encoder keeps records in one batch while offset - sequence stays the same.
            sequence: i as i32 - 1,
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding an uncompressed batch does not fail");
    strom_wire::batch::set_base_offset(&mut buf, base_offset);
    strom_wire::batch::set_partition_leader_epoch(&mut buf, leader_epoch);
    buf.freeze()
}

/// The batches one after another, as a Fetch response carries them.
pub fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for part in parts {
        out.extend_from_slice(part);
    }
    out.freeze()
}
