//! Changing a batch's codec when a topic's `compression.type` differs from
//! the producer's. Only the records section is decompressed and compressed
//! again; records are never parsed, so nothing about them (headers included)
//! can change. The codecs themselves come from `kafka-protocol`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use thiserror::Error;

use crate::batch::{validate, BatchError, Compression, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};

#[derive(Debug, Error)]
pub enum CompressionError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("{codec} records cannot be decompressed: {why}")]
    Decompress { codec: &'static str, why: String },
    #[error("records cannot be compressed with {codec}: {why}")]
    Compress { codec: &'static str, why: String },
    #[error("recompressed batch is too large")]
    TooLarge,
}

fn decompress(codec: Compression, input: Bytes) -> Result<Bytes, CompressionError> {
    let mut input = input;
    let take_all = |b: &mut Bytes| Ok(b.clone());
    let result = match codec {
        Compression::None => Ok(input),
        Compression::Gzip => Gzip::decompress(&mut input, take_all),
        Compression::Snappy => Snappy::decompress(&mut input, take_all),
        Compression::Lz4 => Lz4::decompress(&mut input, take_all),
        Compression::Zstd => Zstd::decompress(&mut input, take_all),
    };
    result.map_err(|e| CompressionError::Decompress {
        codec: codec.name(),
        why: format!("{e:#}"),
    })
}

fn compress(codec: Compression, raw: &[u8], out: &mut BytesMut) -> Result<(), CompressionError> {
    let write_all = |b: &mut BytesMut| {
        b.extend_from_slice(raw);
        Ok(())
    };
    let result = match codec {
        Compression::None => {
            out.extend_from_slice(raw);
            Ok(())
        }
        Compression::Gzip => Gzip::compress(out, write_all),
        Compression::Snappy => Snappy::compress(out, write_all),
        Compression::Lz4 => Lz4::compress(out, write_all),
        Compression::Zstd => Zstd::compress(out, write_all),
    };
    result.map_err(|e| CompressionError::Compress {
        codec: codec.name(),
        why: format!("{e:#}"),
    })
}

/// Returns a copy of the (validated) batch with its records stored in
/// `target`'s codec, header fields and CRC rewritten to match.
pub fn recompress(batch: &[u8], target: Compression) -> Result<BytesMut, CompressionError> {
    let info = validate(batch)?;
    let records = Bytes::copy_from_slice(&batch[BATCH_HEADER_BYTES..info.size]);
    let raw = decompress(info.compression, records)?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + raw.len() / 2);
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    compress(target, &raw, &mut out)?;
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

    #[test]
    fn every_codec_pair_round_trips_records() {
        let codecs = [
            (Kp::None, Compression::None),
            (Kp::Gzip, Compression::Gzip),
            (Kp::Snappy, Compression::Snappy),
            (Kp::Lz4, Compression::Lz4),
            (Kp::Zstd, Compression::Zstd),
        ];
        let values = ["alpha", "beta", "gamma", "delta"];
        for (from, _) in codecs {
            let original = encode_batch(&values, from);
            for (_, to) in codecs {
                let converted = recompress(&original, to).unwrap();
                let info = validate(&converted).unwrap();
                assert_eq!(info.compression, to);
                assert_eq!(info.records_count, 4);
                assert_eq!(info.size, converted.len());
                assert_eq!(values_of(&converted), values);
            }
        }
    }

    #[test]
    fn garbage_records_fail_to_decompress() {
        let mut batch = encode_batch(&["a"], Kp::Gzip);
        let len = batch.len();
        for b in &mut batch[BATCH_HEADER_BYTES..len] {
            *b = 0x55;
        }
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            recompress(&batch, Compression::None),
            Err(CompressionError::Decompress { .. })
        ));
    }
}
