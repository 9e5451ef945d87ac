//! Shared by the batch targets: random bytes almost never carry a right CRC or
//! batch length, so a target may make them right and reach the record walk.

/// Batch header offsets (record batch v2).
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const HEADER_BYTES: usize = 61;

/// Splits the input into an options byte and a batch; when the options ask for
/// it, the batch length and CRC are set to match the bytes.
pub fn batch_from(data: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (&options, rest) = data.split_first()?;
    let mut batch = rest.to_vec();
    if options & 0x80 == 0 && batch.len() >= HEADER_BYTES {
        let length = (batch.len() - 12) as i32;
        batch[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Some((options, batch))
}
