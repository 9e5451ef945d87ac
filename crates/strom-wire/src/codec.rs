//! Streaming codecs for a batch's records section, with bounds on both sides:
//! a decoder never yields more than its inflation limit, and an encoder's
//! output stops growing at its output limit. Nothing here inflates a whole
//! section into memory unless the caller collects it.
//!
//! Snappy uses Kafka's (xerial) framing: a 16-byte magic header, then blocks
//! of `u32` length and raw snappy data; a section without the header is one
//! raw snappy block, as Kafka's reader accepts.

use std::io::{self, Read, Write};

use crate::batch::Compression;

/// Kafka's xerial snappy stream header (magic, version 1, compatible version 1).
const SNAPPY_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Block size of xerial's `SnappyOutputStream`, which Kafka's producers use.
const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;
/// No snappy element expands more than this (a 3-byte copy of 64 bytes is
/// 21.3x), so a block claiming more is corrupt and is refused before any
/// buffer is sized from its claim.
const SNAPPY_MAX_RATIO: usize = 22;
/// Kafka's LZ4 level (KafkaLZ4BlockOutputStream uses the library default).
const LZ4_LEVEL: u32 = 4;
/// Kafka's default `compression.zstd.level`.
const ZSTD_LEVEL: i32 = 3;

/// Why a bounded stream stopped.
#[derive(Debug)]
pub enum StreamError {
    /// The codec's data is damaged.
    Corrupt(io::Error),
    /// The stream inflates past its limit.
    InflationLimit,
}

/// A decoder over a compressed records section that fails with
/// [`StreamError::InflationLimit`] instead of yielding more than `limit` bytes.
pub struct BoundedDecoder<'a> {
    inner: Inner<'a>,
    limit: u64,
    produced: u64,
}

enum Inner<'a> {
    Plain(&'a [u8]),
    Gzip(Box<flate2::bufread::MultiGzDecoder<&'a [u8]>>),
    Lz4(Box<lz4::Decoder<&'a [u8]>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, &'a [u8]>>),
    Snappy(SnappyReader<'a>),
}

impl<'a> BoundedDecoder<'a> {
    pub fn new(codec: Compression, input: &'a [u8], limit: u64) -> Result<Self, StreamError> {
        let inner = match codec {
            Compression::None => Inner::Plain(input),
            Compression::Gzip => Inner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(input))),
            Compression::Lz4 => Inner::Lz4(Box::new(
                lz4::Decoder::new(input).map_err(StreamError::Corrupt)?,
            )),
            Compression::Zstd => Inner::Zstd(Box::new(
                zstd::stream::read::Decoder::with_buffer(input).map_err(StreamError::Corrupt)?,
            )),
            Compression::Snappy => Inner::Snappy(SnappyReader::new(input)?),
        };
        Ok(Self {
            inner,
            limit,
            produced: 0,
        })
    }

    /// Bytes yielded so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Fills as much of `buf` as one read of the codec gives; 0 at the end.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        // One byte past the limit is asked for, so reaching the limit exactly is not an error.
        let allowed = (self.limit - self.produced).saturating_add(1);
        let want = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let buf = &mut buf[..want];
        let n = match &mut self.inner {
            Inner::Plain(rest) => rest.read(buf).map_err(StreamError::Corrupt)?,
            Inner::Gzip(d) => d.read(buf).map_err(StreamError::Corrupt)?,
            Inner::Lz4(d) => d.read(buf).map_err(StreamError::Corrupt)?,
            Inner::Zstd(d) => d.read(buf).map_err(StreamError::Corrupt)?,
            Inner::Snappy(d) => d.read(buf, self.limit - self.produced)?,
        };
        self.produced += n as u64;
        if self.produced > self.limit {
            return Err(StreamError::InflationLimit);
        }
        Ok(n)
    }

    /// Everything left, appended to `out` (bounded by the limit).
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = self.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }
}

fn corrupt(why: &str) -> StreamError {
    StreamError::Corrupt(io::Error::new(io::ErrorKind::InvalidData, why.to_string()))
}

/// Kafka's snappy framing, one block in memory at a time.
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    block_at: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8]) -> Result<Self, StreamError> {
        if input.is_empty() {
            return Err(corrupt("empty snappy stream"));
        }
        let framed = input.starts_with(SNAPPY_MAGIC);
        let rest = if framed {
            &input[SNAPPY_MAGIC.len()..]
        } else {
            input
        };
        Ok(Self {
            rest,
            framed,
            block: Vec::new(),
            block_at: 0,
        })
    }

    /// Decodes the next block; false at the end of the stream.
    fn next_block(&mut self, room: u64) -> Result<bool, StreamError> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
                return Err(corrupt("truncated snappy block length"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return Err(corrupt("snappy block runs past the records"));
            }
            let (block, rest) = rest.split_at(len);
            self.rest = rest;
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let claimed = snap::raw::decompress_len(compressed).map_err(|e| corrupt(&e.to_string()))?;
        if claimed > compressed.len().saturating_mul(SNAPPY_MAX_RATIO) + 64 {
            return Err(corrupt("snappy block claims more than it can hold"));
        }
        if claimed as u64 > room {
            return Err(StreamError::InflationLimit);
        }
        self.block.clear();
        self.block.resize(claimed, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|e| corrupt(&e.to_string()))?;
        self.block_at = 0;
        Ok(true)
    }

    fn read(&mut self, buf: &mut [u8], room: u64) -> Result<usize, StreamError> {
        while self.block_at == self.block.len() {
            if !self.next_block(room)? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.block_at);
        buf[..n].copy_from_slice(&self.block[self.block_at..self.block_at + n]);
        self.block_at += n;
        Ok(n)
    }
}

/// A `Vec` that stops growing at `limit` bytes and remembers that it overflowed.
pub struct CappedVec {
    pub bytes: Vec<u8>,
    limit: usize,
    pub overflowed: bool,
}

impl CappedVec {
    pub fn new(bytes: Vec<u8>, limit: usize) -> Self {
        Self {
            bytes,
            limit,
            overflowed: false,
        }
    }
}

impl Write for CappedVec {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflowed = true;
        } else {
            self.bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A streaming encoder into a [`CappedVec`].
pub enum Encoder {
    Plain(CappedVec),
    Gzip(Box<flate2::write::GzEncoder<CappedVec>>),
    Lz4(Box<lz4::Encoder<CappedVec>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, CappedVec>>),
    Snappy(SnappyWriter),
}

impl Encoder {
    pub fn new(codec: Compression, out: CappedVec) -> io::Result<Self> {
        Ok(match codec {
            Compression::None => Self::Plain(out),
            Compression::Gzip => Self::Gzip(Box::new(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            ))),
            Compression::Lz4 => Self::Lz4(Box::new(
                lz4::EncoderBuilder::new()
                    .level(LZ4_LEVEL)
                    .block_mode(lz4::BlockMode::Independent)
                    .build(out)?,
            )),
            Compression::Zstd => Self::Zstd(Box::new(zstd::stream::write::Encoder::new(
                out, ZSTD_LEVEL,
            )?)),
            Compression::Snappy => Self::Snappy(SnappyWriter::new(out)),
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(out) => out.write_all(bytes),
            Self::Gzip(e) => e.write_all(bytes),
            Self::Lz4(e) => e.write_all(bytes),
            Self::Zstd(e) => e.write_all(bytes),
            Self::Snappy(e) => e.write_all(bytes),
        }
    }

    /// Whether the output already passed its limit.
    pub fn overflowed(&self) -> bool {
        match self {
            Self::Plain(out) => out.overflowed,
            Self::Gzip(e) => e.get_ref().overflowed,
            Self::Lz4(e) => e.writer().overflowed,
            Self::Zstd(e) => e.get_ref().overflowed,
            Self::Snappy(e) => e.out.overflowed,
        }
    }

    pub fn finish(self) -> io::Result<CappedVec> {
        match self {
            Self::Plain(out) => Ok(out),
            Self::Gzip(e) => e.finish(),
            Self::Lz4(e) => {
                let (out, result) = e.finish();
                result.map(|()| out)
            }
            Self::Zstd(e) => e.finish(),
            Self::Snappy(mut e) => {
                e.flush_block()?;
                Ok(e.out)
            }
        }
    }
}

/// Kafka's snappy framing, written a 32 KiB block at a time.
pub struct SnappyWriter {
    out: CappedVec,
    pending: Vec<u8>,
    scratch: Vec<u8>,
}

impl SnappyWriter {
    fn new(mut out: CappedVec) -> Self {
        let _ = out.write_all(SNAPPY_MAGIC);
        Self {
            out,
            pending: Vec::with_capacity(SNAPPY_BLOCK_BYTES),
            scratch: Vec::new(),
        }
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = bytes.len().min(SNAPPY_BLOCK_BYTES - self.pending.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == SNAPPY_BLOCK_BYTES {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.scratch
            .resize(snap::raw::max_compress_len(self.pending.len()), 0);
        let n = snap::raw::Encoder::new()
            .compress(&self.pending, &mut self.scratch)
            .map_err(io::Error::other)?;
        // n <= max_compress_len(32 KiB), far below u32::MAX.
        self.out.write_all(&(n as u32).to_be_bytes())?;
        self.out.write_all(&self.scratch[..n])?;
        self.pending.clear();
        Ok(())
    }
}
