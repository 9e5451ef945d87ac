//! Response frames whose record bytes stay in the log files until they are
//! sent (`sendfile(2)` on Linux), while `kafka-protocol` remains the codec.
//!
//! A Fetch handler puts a *placeholder* of the right length in each
//! partition's `records` (a slice of one read-only, never-written anonymous
//! mapping, so it costs address space, not memory) and hands the matching log
//! slices alongside, in the order the codec will meet them. The response is
//! then encoded by kafka-protocol into a [`FrameBuf`], which copies every
//! field as usual but, when the codec writes a placeholder's bytes, cuts the
//! frame there and puts the file regions in their place. The frame is thus
//! `[memory, file, file, memory, ...]` whose size prefix and layout are the
//! codec's own (the length fields were written for the placeholder's length).

use std::ops::Range;
use std::sync::OnceLock;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use strom_log::{FileSlice, LogSlices};

use crate::apis::DispatchError;

/// One piece of a response frame.
#[derive(Clone)]
pub enum FramePart {
    Memory(Bytes),
    /// Bytes of a segment file; the slice keeps the file open until sent.
    File(FileSlice),
}

/// A whole response frame (size prefix included) as memory and file parts.
#[derive(Clone, Default)]
pub struct ResponseFrame {
    parts: Vec<FramePart>,
    len: usize,
}

impl From<BytesMut> for ResponseFrame {
    fn from(buf: BytesMut) -> Self {
        let len = buf.len();
        Self {
            parts: vec![FramePart::Memory(buf.freeze())],
            len,
        }
    }
}

impl ResponseFrame {
    pub fn parts(&self) -> &[FramePart] {
        &self.parts
    }

    /// Bytes on the wire, size prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that come from files rather than memory.
    pub fn file_bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match p {
                FramePart::File(slice) => slice.len,
                FramePart::Memory(_) => 0,
            })
            .sum()
    }

    /// The frame in one buffer, file regions read in (blocking file reads).
    pub fn materialise(&self) -> std::io::Result<BytesMut> {
        use std::os::unix::fs::FileExt;
        let mut out = BytesMut::with_capacity(self.len);
        for part in &self.parts {
            match part {
                FramePart::Memory(bytes) => out.extend_from_slice(bytes),
                FramePart::File(slice) => {
                    let at = out.len();
                    out.resize(at + slice.len as usize, 0);
                    slice.file.read_exact_at(&mut out[at..], slice.position)?;
                }
            }
        }
        Ok(out)
    }
}

/// The largest placeholder. A partition's records are at most
/// `fetch.max.bytes` (55 MiB by default) or one batch; larger ones are copied.
/// Address space only: the mapping is never backed by memory.
const PLACEHOLDER_REGION_BYTES: usize = 256 << 20;

/// The read-only mapping placeholders are cut from, or None where it cannot
/// be mapped (then fetches copy their records instead).
fn placeholder_region() -> Option<&'static [u8]> {
    static REGION: OnceLock<Option<usize>> = OnceLock::new();
    let base = REGION.get_or_init(|| {
        // SAFETY: a fresh private anonymous mapping, never unmapped, never
        // written (PROT_READ): it reads as zeros and its pages are never
        // backed by memory of their own.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PLACEHOLDER_REGION_BYTES,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(ptr as usize)
    });
    // SAFETY: the mapping above lives for the whole process and is readable.
    base.map(|b| unsafe { std::slice::from_raw_parts(b as *const u8, PLACEHOLDER_REGION_BYTES) })
}

/// Records of `len` bytes that stand for file regions while the codec
/// encodes; None if no placeholder can be had (copy the records instead).
pub fn placeholder(len: u64) -> Option<Bytes> {
    let len = usize::try_from(len).ok()?;
    let region = placeholder_region()?;
    region.get(..len).map(Bytes::from_static)
}

fn is_placeholder(bytes: &[u8]) -> bool {
    let Some(region) = placeholder_region() else {
        return false;
    };
    let start = region.as_ptr() as usize;
    let at = bytes.as_ptr() as usize;
    !bytes.is_empty() && at >= start && at < start + region.len()
}

/// Whether zero-copy fetch responses can be built on this system.
pub fn zero_copy_available() -> bool {
    placeholder_region().is_some()
}

/// A `ByteBufMut` for kafka-protocol's encoders that turns placeholders into
/// file parts and copies everything else.
struct FrameBuf {
    current: BytesMut,
    /// Bytes in `parts` before `current`.
    before: usize,
    parts: Vec<FramePart>,
    regions: std::vec::IntoIter<LogSlices>,
    fault: Option<String>,
    /// Where writes go after a fault, so the encoder can finish harmlessly.
    scratch: Vec<u8>,
}

impl FrameBuf {
    fn new(capacity: usize, regions: Vec<LogSlices>) -> Self {
        Self {
            current: BytesMut::with_capacity(capacity),
            before: 0,
            parts: Vec::new(),
            regions: regions.into_iter(),
            fault: None,
            scratch: Vec::new(),
        }
    }

    fn put_region(&mut self, placeholder: &[u8]) {
        let Some(region) = self.regions.next() else {
            self.fault = Some("a records placeholder without its file region".into());
            return;
        };
        if region.len() != placeholder.len() as u64 {
            self.fault = Some(format!(
                "records placeholder of {} bytes for a file region of {}",
                placeholder.len(),
                region.len()
            ));
            return;
        }
        if !self.current.is_empty() {
            self.before += self.current.len();
            let memory = self.current.split().freeze();
            self.parts.push(FramePart::Memory(memory));
        }
        self.before += placeholder.len();
        self.parts
            .extend(region.slices.into_iter().map(FramePart::File));
    }

    fn finish(mut self) -> Result<ResponseFrame, DispatchError> {
        if let Some(fault) = self.fault {
            return Err(DispatchError::Encode(fault));
        }
        if self.regions.next().is_some() {
            return Err(DispatchError::Encode(
                "a file region the response has no placeholder for".into(),
            ));
        }
        if !self.current.is_empty() {
            self.before += self.current.len();
            self.parts.push(FramePart::Memory(self.current.freeze()));
        }
        Ok(ResponseFrame {
            parts: self.parts,
            len: self.before,
        })
    }
}

// SAFETY: every method forwards to `current` (a BytesMut) unchanged, except
// put_slice, which only uses BytesMut's safe methods.
unsafe impl BufMut for FrameBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise about `chunk_mut` is passed on.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if is_placeholder(src) {
            self.put_region(src);
        } else {
            self.current.extend_from_slice(src);
        }
    }
}

impl ByteBufMut for FrameBuf {
    fn offset(&self) -> usize {
        self.before + self.current.len()
    }

    // Gaps (seek/range) are used by record encoders only, never by messages;
    // within the current memory part they work as BytesMut's do.
    fn seek(&mut self, offset: usize) {
        match offset.checked_sub(self.before) {
            Some(at) => self.current.resize(at, 0),
            None => self.fault = Some("seek back over a file region".into()),
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let local = r.start.checked_sub(self.before).and_then(|start| {
            let end = r.end.checked_sub(self.before)?;
            (end <= self.current.len()).then_some(start..end)
        });
        match local {
            Some(range) => &mut self.current[range],
            None => {
                self.fault = Some("range over a file region".into());
                self.scratch.resize(r.len(), 0);
                &mut self.scratch[..]
            }
        }
    }
}

/// Encodes a whole response frame (size prefix, header, body). Every
/// placeholder in `response` is replaced by the next of `regions`, which
/// must come in the order the codec writes them and match their lengths.
pub fn encode_frame<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
    regions: Vec<LogSlices>,
) -> Result<ResponseFrame, DispatchError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = R::header_version(version);
    let size = header
        .compute_size(header_version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?
        + response
            .compute_size(version)
            .map_err(|e| DispatchError::Encode(e.to_string()))?;
    let size = i32::try_from(size)
        .map_err(|_| DispatchError::Encode("response larger than 2 GiB".into()))?;
    let file_bytes: u64 = regions.iter().map(LogSlices::len).sum();
    // Only the memory parts are allocated, once, at their exact size.
    let memory = (4 + size as u64).saturating_sub(file_bytes) as usize;
    let mut buf = FrameBuf::new(memory, regions);
    buf.put_i32(size);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| DispatchError::Encode(e.to_string()))?;
    let frame = buf.finish()?;
    if frame.len() != 4 + size as usize {
        return Err(DispatchError::Encode(format!(
            "encoded {} bytes where {} were computed",
            frame.len(),
            4 + size as usize
        )));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use strom_log::{LogConfig, LogSlices, PartitionLog};

    use super::*;
    use crate::apis::encode_response;

    const NOW_MS: i64 = 1_700_000_000_000;

    /// One batch of `count` records whose values are `tag`-`i` padded to 100 bytes.
    fn batch(tag: &str, count: usize) -> Vec<u8> {
        let records: Vec<Record> = (0..count)
            .map(|i| {
                let mut value = format!("{tag}-{i}").into_bytes();
                value.resize(100, b'.');
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    sequence: i as i32 - 1,
                    timestamp: NOW_MS,
                    key: None,
                    value: Some(Bytes::from(value)),
                    headers: Default::default(),
                }
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
        .unwrap();
        buf.to_vec()
    }

    /// A log of `batches` batches in segments of about 3 batches each.
    fn log_of(dir: &std::path::Path, tag: &str, batches: usize) -> PartitionLog {
        let one = batch(tag, 5).len() as u64;
        let config = LogConfig {
            segment_bytes: one * 3,
            ..Default::default()
        };
        let mut log = PartitionLog::open(dir, config, NOW_MS).unwrap();
        for i in 0..batches {
            let mut bytes = batch(&format!("{tag}{i}"), 5);
            log.append(&mut bytes, 0, NOW_MS).unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        log
    }

    fn read_all(log: &PartitionLog, from: i64) -> LogSlices {
        log.reader().read(from, usize::MAX, i64::MAX, true).unwrap()
    }

    /// One partition of a test response: its records, if any, as log slices.
    struct Part {
        index: i32,
        records: Option<LogSlices>,
        error: i16,
        aborted: bool,
    }

    /// The same response twice: records copied in (what kafka-protocol alone
    /// encodes) and records as placeholders with their regions.
    fn responses(
        version: i16,
        topics: &[(&str, Vec<Part>)],
    ) -> (FetchResponse, FetchResponse, Vec<LogSlices>) {
        let mut copied = FetchResponse::default()
            .with_throttle_time_ms(7)
            .with_session_id(if version >= 7 { 42 } else { 0 });
        let mut framed = copied.clone();
        let mut regions = Vec::new();
        for (t, (name, parts)) in topics.iter().enumerate() {
            let mut topic = FetchableTopicResponse::default();
            if version >= 13 {
                topic = topic.with_topic_id(uuid::Uuid::from_u128(t as u128 + 1));
            } else {
                topic = topic.with_topic(TopicName(StrBytes::from_string(name.to_string())));
            }
            let mut copied_topic = topic.clone();
            let mut framed_topic = topic;
            for part in parts {
                let data = PartitionData::default()
                    .with_partition_index(part.index)
                    .with_error_code(part.error)
                    .with_high_watermark(1000 + part.index as i64)
                    .with_last_stable_offset(900)
                    .with_log_start_offset(if version >= 5 { 3 } else { -1 })
                    .with_preferred_read_replica(BrokerId(-1))
                    .with_aborted_transactions(part.aborted.then(|| {
                        vec![AbortedTransaction::default()
                            .with_producer_id(ProducerId(5))
                            .with_first_offset(17)]
                    }));
                let (copy, frame) = match &part.records {
                    Some(slices) if !slices.is_empty() => {
                        regions.push(slices.clone());
                        (
                            Some(slices.to_bytes().unwrap()),
                            Some(placeholder(slices.len()).unwrap()),
                        )
                    }
                    Some(_) => (Some(Bytes::new()), Some(Bytes::new())),
                    None => (None, None),
                };
                copied_topic
                    .partitions
                    .push(data.clone().with_records(copy));
                framed_topic.partitions.push(data.with_records(frame));
            }
            copied.responses.push(copied_topic);
            framed.responses.push(framed_topic);
        }
        (copied, framed, regions)
    }

    fn assert_same_bytes(version: i16, topics: &[(&str, Vec<Part>)]) -> ResponseFrame {
        let (copied, framed, regions) = responses(version, topics);
        let region_bytes: u64 = regions.iter().map(LogSlices::len).sum();
        let file_slices: usize = regions.iter().map(|r| r.slices.len()).sum();
        let expected = encode_response(99, version, &copied).unwrap();
        let frame = encode_frame(99, version, &framed, regions).unwrap();
        assert_eq!(frame.len(), expected.len(), "v{version}");
        assert_eq!(frame.file_bytes(), region_bytes, "v{version}");
        let files = frame
            .parts()
            .iter()
            .filter(|p| matches!(p, FramePart::File(_)))
            .count();
        assert_eq!(files, file_slices, "v{version}");
        let memory: usize = frame
            .parts()
            .iter()
            .map(|p| match p {
                FramePart::Memory(m) => m.len(),
                FramePart::File(_) => 0,
            })
            .sum();
        assert_eq!(memory as u64 + region_bytes, expected.len() as u64);
        assert!(
            frame.materialise().unwrap()[..] == expected[..],
            "v{version}: framed bytes differ from kafka-protocol's"
        );
        frame
    }

    #[test]
    fn framed_fetch_responses_equal_kafka_protocols_encoding_in_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let a = log_of(&dir.path().join("a-0"), "a", 10);
        let b = log_of(&dir.path().join("b-0"), "b", 4);
        let c = log_of(&dir.path().join("c-0"), "c", 1);
        let a_all = read_all(&a, 0);
        assert!(a_all.slices.len() >= 3, "records in several segment files");
        let a_tail = read_all(&a, 23);
        let b_all = read_all(&b, 0);
        let c_all = read_all(&c, 0);
        let at_end = read_all(&c, c.log_end_offset());
        assert!(at_end.is_empty());
        let part = |index, records: Option<&LogSlices>| Part {
            index,
            records: records.cloned(),
            error: 0,
            aborted: false,
        };
        for version in 4..=18i16 {
            // No topics at all.
            let frame = assert_same_bytes(version, &[]);
            assert_eq!(frame.file_bytes(), 0);
            // One partition, records over several files.
            assert_same_bytes(version, &[("alpha", vec![part(0, Some(&a_all))])]);
            // One partition with nothing to return.
            assert_same_bytes(version, &[("alpha", vec![part(0, Some(&at_end))])]);
            // Several topics and partitions: records, empty records, no
            // records field, an error, aborted transactions.
            let topics = vec![
                (
                    "alpha",
                    vec![
                        part(0, Some(&a_tail)),
                        Part {
                            index: 1,
                            records: Some(LogSlices::default()),
                            error: 1,
                            aborted: true,
                        },
                        part(2, Some(&b_all)),
                    ],
                ),
                ("beta", vec![part(0, None), part(5, Some(&c_all))]),
                ("gamma", vec![]),
                (
                    "delta",
                    vec![
                        part(3, Some(&a_all)),
                        Part {
                            index: 4,
                            records: Some(c_all.clone()),
                            error: 0,
                            aborted: true,
                        },
                        part(6, Some(&at_end)),
                    ],
                ),
            ];
            assert_same_bytes(version, &topics);
        }
    }

    #[test]
    fn the_records_read_back_from_the_frame_are_the_logs_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(&dir.path().join("t-0"), "t", 7);
        let slices = read_all(&log, 0);
        let (_, framed, regions) = responses(
            12,
            &[(
                "t",
                vec![Part {
                    index: 0,
                    records: Some(slices.clone()),
                    error: 0,
                    aborted: false,
                }],
            )],
        );
        let frame = encode_frame(1, 12, &framed, regions).unwrap();
        let bytes = frame.materialise().unwrap().freeze();
        let mut body = bytes.slice(4..);
        use kafka_protocol::protocol::Decodable;
        kafka_protocol::messages::ResponseHeader::decode(&mut body, 1).unwrap();
        let decoded = FetchResponse::decode(&mut body, 12).unwrap();
        let records = decoded.responses[0].partitions[0].records.clone().unwrap();
        assert_eq!(records, slices.to_bytes().unwrap());
        let values: Vec<String> =
            kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records.clone())
                .unwrap()
                .iter()
                .flat_map(|set| set.records.iter())
                .map(|r| {
                    let v = r.value.clone().unwrap();
                    String::from_utf8_lossy(&v)
                        .trim_end_matches('.')
                        .to_string()
                })
                .collect();
        let expected: Vec<String> = (0..7)
            .flat_map(|b| (0..5).map(move |i| format!("t{b}-{i}")))
            .collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn regions_that_do_not_match_the_placeholders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(&dir.path().join("t-0"), "t", 4);
        let all = read_all(&log, 0);
        let tail = read_all(&log, 10);
        let topics = [(
            "t",
            vec![Part {
                index: 0,
                records: Some(all.clone()),
                error: 0,
                aborted: false,
            }],
        )];
        let (_, framed, _) = responses(12, &topics);
        let refused = |regions: Vec<LogSlices>| {
            matches!(
                encode_frame(1, 12, &framed, regions),
                Err(DispatchError::Encode(_))
            )
        };
        assert!(refused(vec![]), "a placeholder without its region");
        assert!(refused(vec![tail.clone()]), "a region of another length");
        assert!(refused(vec![all.clone(), tail]), "a region left over");
        assert!(!refused(vec![all]));
    }

    #[test]
    fn placeholders_stop_at_the_mapping_so_larger_records_are_copied() {
        let largest = PLACEHOLDER_REGION_BYTES as u64;
        assert_eq!(placeholder(largest).map(|p| p.len() as u64), Some(largest));
        assert!(placeholder(largest + 1).is_none());
        assert!(!is_placeholder(b"not a placeholder"));
        assert!(
            !is_placeholder(&placeholder(0).unwrap()),
            "empty records are plain bytes"
        );
    }

    #[test]
    fn a_frame_without_regions_is_one_memory_part() {
        let response = FetchResponse::default().with_error_code(15);
        let frame = encode_frame(3, 11, &response, Vec::new()).unwrap();
        assert_eq!(frame.parts().len(), 1);
        assert_eq!(
            frame.materialise().unwrap(),
            encode_response(3, 11, &response).unwrap()
        );
    }
}
