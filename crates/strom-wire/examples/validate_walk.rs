//! Runs the produce validation of one uncompressed batch many times, for an
//! instruction count per record under callgrind (BENCHMARKS.md, issue #11):
//!
//! ```sh
//! cargo build --release -p strom-wire --example validate_walk
//! valgrind --tool=callgrind target/release/examples/validate_walk 100   # and 1100
//! ```
//!
//! Instructions per record are the difference of the two totals divided by
//! 1,000 rounds times the batch's records. Arguments: rounds (default 1000),
//! records per batch (1000), value bytes (100).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_wire::record_check::{RecordRules, TimestampWindow};
use strom_wire::validate::{validate_produce, ProduceRules};

const NOW_MS: i64 = 1_700_000_000_000;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let rounds = args.next().unwrap_or(1000);
    let count = args.next().unwrap_or(1000);
    let value_bytes = args.next().unwrap_or(100);
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Keeps offset - sequence constant so the encoder emits a single batch.
            sequence: i as i32 - 1,
            timestamp: NOW_MS + (i as i64 % 7),
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_bytes])),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    // Kafka 4.x defaults: no lower bound, one hour ahead.
    let rules = ProduceRules {
        topic_partition: "bench-0",
        max_message_bytes: batch.len(),
        records: RecordRules {
            require_key: false,
            window: Some(TimestampWindow {
                now_ms: NOW_MS,
                before_max_ms: i64::MAX,
                after_max_ms: 3_600_000,
            }),
        },
        target: None,
    };
    let mut max_timestamp = 0;
    for _ in 0..rounds {
        let validated = validate_produce(std::hint::black_box(&batch), &rules).expect("valid");
        max_timestamp = validated.max_timestamp;
    }
    println!(
        "{rounds} rounds of {count} records ({} bytes per batch), max timestamp {max_timestamp}",
        batch.len()
    );
}
