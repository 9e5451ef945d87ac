//! Changing a batch's codec, and inflating its records for the cleaner. Only
//! the records section is decompressed and compressed again; records are
//! never parsed, so nothing about them (headers included) can change. Both
//! stream through [`crate::codec`] and stop at a bound on inflated bytes.

use thiserror::Error;

use crate::batch::{validate, BatchError, Compression, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::codec::{BoundedDecoder, CappedVec, Encoder, StreamError};

#[derive(Debug, Error)]
pub enum CompressionError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("{codec} records cannot be decompressed: {why}")]
    Decompress { codec: &'static str, why: String },
    #[error("records cannot be compressed with {codec}: {why}")]
    Compress { codec: &'static str, why: String },
    #[error("{codec} records inflate past {limit} bytes")]
    InflationLimit { codec: &'static str, limit: u64 },
    #[error("recompressed batch is too large")]
    TooLarge,
}

fn stream_error(error: StreamError, codec: Compression, limit: u64) -> CompressionError {
    match error {
        StreamError::InflationLimit => CompressionError::InflationLimit {
            codec: codec.name(),
            limit,
        },
        StreamError::Corrupt(e) => CompressionError::Decompress {
            codec: codec.name(),
            why: e.to_string(),
        },
    }
}

/// The records section of a (validated) batch, decompressed; at most `limit` bytes.
pub fn inflate_records(batch: &[u8], limit: u64) -> Result<Vec<u8>, CompressionError> {
    let info = validate(batch)?;
    let section = &batch[BATCH_HEADER_BYTES..info.size];
    let mut decoder = BoundedDecoder::new(info.compression, section, limit)
        .map_err(|e| stream_error(e, info.compression, limit))?;
    let mut out = Vec::with_capacity(section.len().min(limit as usize));
    decoder
        .read_to_end(&mut out)
        .map_err(|e| stream_error(e, info.compression, limit))?;
    Ok(out)
}

/// Returns a copy of the (validated) batch with its records stored in
/// `target`'s codec, header fields and CRC rewritten to match. The records
/// may inflate to at most `limit` bytes on the way.
pub fn recompress(
    batch: &[u8],
    target: Compression,
    limit: u64,
) -> Result<Vec<u8>, CompressionError> {
    let info = validate(batch)?;
    let section = &batch[BATCH_HEADER_BYTES..info.size];
    let mut decoder = BoundedDecoder::new(info.compression, section, limit)
        .map_err(|e| stream_error(e, info.compression, limit))?;
    let compress_error = |e: std::io::Error| CompressionError::Compress {
        codec: target.name(),
        why: e.to_string(),
    };
    let head = batch[..BATCH_HEADER_BYTES].to_vec();
    let mut encoder =
        Encoder::new(target, CappedVec::new(head, i32::MAX as usize)).map_err(compress_error)?;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = decoder
            .read(&mut chunk)
            .map_err(|e| stream_error(e, info.compression, limit))?;
        if n == 0 {
            break;
        }
        encoder.write_all(&chunk[..n]).map_err(compress_error)?;
        if encoder.overflowed() {
            return Err(CompressionError::TooLarge);
        }
    }
    let out = encoder.finish().map_err(compress_error)?;
    if out.overflowed {
        return Err(CompressionError::TooLarge);
    }
    let mut out = out.bytes;
    let batch_length =
        i32::try_from(out.len() - LOG_OVERHEAD_BYTES).map_err(|_| CompressionError::TooLarge)?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    crate::batch::set_compression(&mut out, target);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::encode_batch;
    use bytes::Bytes;
    use kafka_protocol::records::{Compression as Kp, RecordBatchDecoder};

    fn values_of(batch: &[u8]) -> Vec<String> {
        let mut bytes = Bytes::copy_from_slice(batch);
        RecordBatchDecoder::decode(&mut bytes)
            .unwrap()
            .records
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect()
    }

    const CODECS: [(Kp, Compression); 5] = [
        (Kp::None, Compression::None),
        (Kp::Gzip, Compression::Gzip),
        (Kp::Snappy, Compression::Snappy),
        (Kp::Lz4, Compression::Lz4),
        (Kp::Zstd, Compression::Zstd),
    ];

    #[test]
    fn every_codec_pair_round_trips_records() {
        let values = ["alpha", "beta", "gamma", "delta"];
        for (from, _) in CODECS {
            let original = encode_batch(&values, from);
            for (_, to) in CODECS {
                let converted = recompress(&original, to, u64::MAX).unwrap();
                let info = validate(&converted).unwrap();
                assert_eq!(info.compression, to);
                assert_eq!(info.records_count, 4);
                assert_eq!(info.size, converted.len());
                assert_eq!(values_of(&converted), values);
            }
        }
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let big = "x".repeat(10_000);
        for (kp, codec) in CODECS {
            let batch = encode_batch(&[big.as_str(); 20], kp);
            let plain = inflate_records(&batch, u64::MAX).unwrap();
            assert!(plain.len() > 200_000, "{codec:?}");
            let exact = plain.len() as u64;
            assert_eq!(inflate_records(&batch, exact).unwrap(), plain, "{codec:?}");
            if codec == Compression::None {
                continue;
            }
            assert!(
                matches!(
                    inflate_records(&batch, exact - 1),
                    Err(CompressionError::InflationLimit { limit, .. }) if limit == exact - 1
                ),
                "{codec:?}"
            );
            assert!(matches!(
                recompress(&batch, Compression::None, 1000),
                Err(CompressionError::InflationLimit { limit: 1000, .. })
            ));
        }
    }

    #[test]
    fn garbage_records_fail_to_decompress() {
        for (kp, codec) in &CODECS[1..] {
            let mut batch = encode_batch(&["a"], *kp);
            let len = batch.len();
            for b in &mut batch[BATCH_HEADER_BYTES..len] {
                *b = 0x55;
            }
            let crc = crc32c::crc32c(&batch[21..]);
            batch[17..21].copy_from_slice(&crc.to_be_bytes());
            assert!(
                matches!(
                    recompress(&batch, Compression::None, u64::MAX),
                    Err(CompressionError::Decompress { .. })
                ),
                "{codec:?}"
            );
        }
    }
}
