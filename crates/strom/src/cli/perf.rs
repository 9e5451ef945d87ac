//! `strom perf produce|consume|e2e`: load tests in the spirit of Kafka's
//! kafka-producer-perf-test and librdkafka's rdkafka_performance.
//!
//! Produce latency is per record: from the moment the tool creates the
//! record (with `--rate`, its scheduled send time, so a stalled broker
//! cannot hide behind a stalled generator) to the moment the tool reads the
//! acknowledgement of the batch that holds it; batching and linger time
//! count. End-to-end latency is per record: from that same creation time,
//! written in the first 8 bytes of the value (µs since the Unix epoch), to
//! the moment the consumer decodes the record. MB are 10^6 bytes of record
//! values.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use strom_client::{
    Admin, BatchAck, Consumer, ConsumerConfig, Error as ClientError, GroupMember,
    GroupMemberConfig, NewTopic, OffsetSpec, PipelineConfig, PipelinedProducer,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::produce::{parse_acks, CompressionArg};
use super::BrokerArgs;

const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Latencies are kept in µs up to an hour, to 3 significant digits.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// The stamp at the start of each value (e2e needs it).
const STAMP_BYTES: usize = 8;

#[derive(Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Produce records as fast as allowed and report throughput and the
    /// latency from record creation to acknowledgement.
    Produce(ProduceArgs),
    /// Read records from the start of every partition and report throughput.
    Consume(ConsumeArgs),
    /// Produce and consume at once; report the latency from record creation
    /// to consumption.
    E2e(ProduceArgs),
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// Records to produce (across all producers).
    #[arg(short = 'n', long, default_value_t = 100_000)]
    records: u64,
    /// Bytes per record value (at least 8: the creation time is stamped in).
    #[arg(short = 's', long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// Records per second across all producers; 0 for as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Acknowledgements to wait for: all (-1), 1 (leader) or 0 (none).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// A partition's batch is sent when it holds this many bytes.
    #[arg(long = "batch-size", default_value_t = 16_384)]
    batch_size: usize,
    /// A batch that is not full is sent this long after its first record.
    #[arg(long = "linger-ms", default_value_t = 5)]
    linger_ms: u64,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Partitions of the topic when the tool creates it (it exists: ignored).
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Concurrent producers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Produce requests awaiting acknowledgement per producer.
    #[arg(long = "max-in-flight", default_value_t = 5)]
    max_in_flight: usize,
}

#[derive(Args)]
struct ProduceArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// The topic to write to (created if missing).
    topic: String,
    #[command(flatten)]
    load: LoadArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ConsumeArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// The topic to read.
    topic: String,
    /// Records to read; default: all the topic holds when the run starts
    /// (past the group's committed offsets with --group).
    #[arg(short = 'n', long)]
    records: Option<u64>,
    /// Read as a member of this consumer group: start at its committed
    /// offsets (earliest where none), commit where the run ended, leave.
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Largest fetch response, and the most per partition in one fetch.
    #[arg(long = "fetch-max-bytes", default_value_t = 50 * 1024 * 1024)]
    fetch_max_bytes: i32,
    #[arg(long = "partition-fetch-max-bytes", default_value_t = 1024 * 1024)]
    partition_fetch_max_bytes: i32,
    /// Fail when no record arrives for this long.
    #[arg(long = "timeout-ms", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(args) => {
            args.load.validate(false)?;
            ensure_topic(&args.brokers, &args.topic, args.load.partitions).await?;
            let report = produce(&args.brokers, &args.topic, &args.load).await?;
            let out = report.to_json(&args.load);
            print(args.json, &out, || report.text(&args.load));
        }
        PerfCommand::Consume(args) => {
            let report = consume(&args).await?;
            let mut out = report.to_json();
            out["group"] = json!(args.group);
            print(args.json, &out, || report.text());
        }
        PerfCommand::E2e(args) => {
            args.load.validate(true)?;
            ensure_topic(&args.brokers, &args.topic, args.load.partitions).await?;
            let out = e2e(&args).await?;
            print(args.json, &out.0, || out.1.clone());
        }
    }
    Ok(())
}

fn print(json: bool, value: &Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        print!("{}", text());
    }
}

impl LoadArgs {
    fn validate(&self, stamped: bool) -> anyhow::Result<()> {
        if self.producers == 0 {
            bail!("--producers must be at least 1");
        }
        if self.partitions < 1 {
            bail!("--partitions must be at least 1");
        }
        if stamped && self.record_size < STAMP_BYTES {
            bail!("--record-size must be at least {STAMP_BYTES} for e2e (the send time is stamped in)");
        }
        if stamped && self.acks == 0 {
            // Not a limitation of e2e itself, but keep the run's meaning simple.
            bail!("e2e needs --acks 1 or all");
        }
        Ok(())
    }

    fn config(&self) -> PipelineConfig {
        PipelineConfig {
            acks: self.acks,
            compression: self.compression.into(),
            batch_size: self.batch_size,
            linger: Duration::from_millis(self.linger_ms),
            max_in_flight: self.max_in_flight,
            ..Default::default()
        }
    }

    fn describe(&self) -> String {
        let rate = match self.rate {
            0 => "unlimited".to_owned(),
            r => format!("{r}/s"),
        };
        format!(
            "{} records of {} B, rate {rate}, acks {}, batch {} B, linger {} ms, compression {}, {} producer(s), {} in flight",
            self.records,
            self.record_size,
            self.acks,
            self.batch_size,
            self.linger_ms,
            self.compression.name(),
            self.producers,
            self.max_in_flight,
        )
    }
}

/// Creates the topic with `partitions` unless it exists.
async fn ensure_topic(brokers: &BrokerArgs, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let mut admin = Admin::new(brokers.client()?);
    let new = NewTopic {
        name: topic.to_owned(),
        partitions,
        replication_factor: -1,
        configs: vec![],
    };
    match admin.create_topic(new).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(TOPIC_ALREADY_EXISTS) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create topic {topic}")),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latency percentiles in ms, or null when nothing was measured.
fn latency_json(h: &Histogram<u64>, what: &str) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "what": what,
        "count": h.len(),
        "mean": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

fn latency_text(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "n/a".to_owned();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

struct ProduceReport {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

const PRODUCE_LATENCY: &str =
    "per record, from creation (with --rate: its scheduled send time) to the batch's acknowledgement";
const E2E_LATENCY: &str =
    "per record, from creation (stamped in the value) to its decoding by the consumer";

impl ProduceReport {
    fn rates(&self) -> (f64, f64) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        (self.records as f64 / secs, self.bytes as f64 / 1e6 / secs)
    }

    fn to_json(&self, load: &LoadArgs) -> Value {
        let (rps, mbps) = self.rates();
        json!({
            "mode": "produce",
            "records": self.records,
            "bytes": self.bytes,
            "record_size": load.record_size,
            "acks": load.acks,
            "batch_size": load.batch_size,
            "linger_ms": load.linger_ms,
            "compression": load.compression.name(),
            "producers": load.producers,
            "max_in_flight": load.max_in_flight,
            "rate": load.rate,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "records_per_s": rps,
            "mb_per_s": mbps,
            "latency_ms": latency_json(&self.latency, PRODUCE_LATENCY),
        })
    }

    fn text(&self, load: &LoadArgs) -> String {
        let (rps, mbps) = self.rates();
        format!(
            "produce: {}\n{} records in {:.3} s: {rps:.0} records/s, {mbps:.2} MB/s\nlatency (creation to ack): {}\n",
            load.describe(),
            self.records,
            self.elapsed.as_secs_f64(),
            latency_text(&self.latency),
        )
    }
}

/// Runs `load.producers` producers to completion; the clock starts once
/// every producer is connected.
async fn produce(
    brokers: &BrokerArgs,
    topic: &str,
    load: &LoadArgs,
) -> anyhow::Result<ProduceReport> {
    let producers = u64::from(load.producers);
    let mut prepared = Vec::new();
    for i in 0..producers {
        let (producer, acks) = PipelinedProducer::new(brokers.client()?, topic, load.config())
            .await
            .with_context(|| format!("cannot start producer {i} for {topic}"))?;
        prepared.push((producer, acks));
    }
    let template = payload_template(load.record_size);
    let epoch = Epoch::now();
    let started = epoch.started;
    let mut tasks = Vec::new();
    for (i, (producer, acks)) in prepared.into_iter().enumerate() {
        let i = i as u64;
        let count = load.records / producers + u64::from(i < load.records % producers);
        let collector = tokio::spawn(collect_acks(acks, started));
        let rate = load.rate as f64 / producers as f64;
        let template = template.clone();
        let batch_records = (load.batch_size / (load.record_size + 24)).max(1) as u64;
        let task = tokio::spawn(run_producer(
            producer,
            count,
            rate,
            epoch,
            template,
            batch_records,
            i as i32,
        ));
        tasks.push((task, collector));
    }
    let mut report = ProduceReport {
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    let mut first_error = None;
    for (task, collector) in tasks {
        let sent = task.await.context("producer task failed")?;
        let collected = collector.await.context("acknowledgement task failed")?;
        if let Err(e) = sent {
            first_error.get_or_insert(anyhow::Error::from(e));
        }
        match collected {
            Ok((records, bytes, latency)) => {
                report.records += records;
                report.bytes += bytes;
                report.latency.add(&latency).context("merging latencies")?;
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::Error::from(e));
            }
        }
    }
    report.elapsed = started.elapsed();
    if let Some(e) = first_error {
        return Err(e.context(format!("producing to {topic}")));
    }
    if report.records != load.records {
        bail!(
            "{} records were acknowledged, {} were sent",
            report.records,
            load.records
        );
    }
    Ok(report)
}

/// Random capital letters, like kafka-producer-perf-test's payloads.
fn payload_template(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ wall_us();
    (0..size)
        .map(|_| {
            // xorshift64: cheap and good enough for filler bytes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

/// Where a run's clock starts: one monotonic reading and the wall clock
/// at that moment, so each record needs one clock reading for both.
#[derive(Clone, Copy)]
struct Epoch {
    started: Instant,
    wall_us: u64,
}

impl Epoch {
    fn now() -> Self {
        Epoch {
            started: Instant::now(),
            wall_us: wall_us(),
        }
    }
}

/// Linger is checked every this many records when sending flat out.
const LINGER_CHECK_EVERY: u64 = 64;

/// Sends `count` records; with `rate` > 0 record j is due at
/// `started + j / rate`, and its tag (latency origin) is that due time.
async fn run_producer(
    mut producer: PipelinedProducer,
    count: u64,
    rate: f64,
    epoch: Epoch,
    mut value: Vec<u8>,
    batch_records: u64,
    first_partition: i32,
) -> Result<(), ClientError> {
    let started = epoch.started;
    let partitions = producer.partition_count() as u64;
    let mut j = 0u64;
    while j < count {
        let due_until = if rate > 0.0 {
            // Everything already due goes out now; then sleep until the next
            // record is due (or a lingering batch must go).
            let elapsed = started.elapsed().as_secs_f64();
            ((elapsed * rate) as u64 + 1).min(count)
        } else {
            count
        };
        while j < due_until {
            // One clock reading per record (clock reads showed up in profiles).
            let now = Instant::now();
            let since_ns = now.saturating_duration_since(started).as_nanos() as u64;
            let created_us = epoch.wall_us + since_ns / 1000;
            let tag = if rate > 0.0 {
                (j as f64 / rate * 1e9) as u64
            } else {
                since_ns
            };
            if value.len() >= STAMP_BYTES {
                value[..STAMP_BYTES].copy_from_slice(&created_us.to_be_bytes());
            }
            let partition = ((j / batch_records + first_partition as u64) % partitions) as i32;
            let timestamp_ms = (created_us / 1000) as i64;
            producer
                .send(partition, None, &value, timestamp_ms, tag)
                .await?;
            j += 1;
            if (rate > 0.0 || j.is_multiple_of(LINGER_CHECK_EVERY))
                && producer.linger_deadline().is_some_and(|d| d <= now)
            {
                producer.send_lingered().await?;
            }
        }
        if j < count {
            let next_due = started + Duration::from_secs_f64(j as f64 / rate);
            let wake = producer
                .linger_deadline()
                .map_or(next_due, |d| d.min(next_due));
            tokio::time::sleep_until(wake).await;
            producer.send_lingered().await?;
        }
    }
    producer.close().await
}

/// Counts acknowledged records and bytes and their latencies.
async fn collect_acks(
    mut acks: mpsc::Receiver<Result<BatchAck, ClientError>>,
    started: Instant,
) -> Result<(u64, u64, Histogram<u64>), ClientError> {
    let mut latency = histogram();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut measured = true;
    while let Some(ack) = acks.recv().await {
        let ack = ack?;
        records += ack.records as u64;
        bytes += ack.payload_bytes as u64;
        if ack.base_offset.is_none() {
            // acks=0: nothing was acknowledged, so there is no latency.
            measured = false;
            continue;
        }
        let acked_ns = ack.acked_at.saturating_duration_since(started).as_nanos() as u64;
        for tag in &ack.tags {
            let us = acked_ns.saturating_sub(*tag) / 1000;
            latency.saturating_record(us.max(1));
        }
    }
    if !measured {
        latency.reset();
    }
    Ok((records, bytes, latency))
}

struct ConsumeReport {
    records: u64,
    bytes: u64,
    elapsed: Duration,
}

impl ConsumeReport {
    fn rates(&self) -> (f64, f64) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        (self.records as f64 / secs, self.bytes as f64 / 1e6 / secs)
    }

    fn to_json(&self) -> Value {
        let (rps, mbps) = self.rates();
        json!({
            "mode": "consume",
            "records": self.records,
            "bytes": self.bytes,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "records_per_s": rps,
            "mb_per_s": mbps,
        })
    }

    fn text(&self) -> String {
        let (rps, mbps) = self.rates();
        format!(
            "consume: {} records ({} bytes) in {:.3} s: {rps:.0} records/s, {mbps:.2} MB/s\n",
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64()
        )
    }
}

fn consumer(
    brokers: &BrokerArgs,
    fetch_max_bytes: i32,
    partition_fetch_max_bytes: i32,
) -> anyhow::Result<Consumer> {
    let config = ConsumerConfig {
        max_bytes: fetch_max_bytes,
        partition_max_bytes: partition_fetch_max_bytes,
        max_wait: Duration::from_millis(100),
        ..Default::default()
    };
    Ok(Consumer::new(brokers.client()?, config))
}

/// Assigns every partition of `topic` at `spec`; returns the partitions.
async fn assign_all(
    consumer: &mut Consumer,
    topic: &str,
    spec: OffsetSpec,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let partitions = consumer.partitions(topic).await?;
    let offsets = consumer.list_offsets(topic, &partitions, spec).await?;
    let mut assigned = Vec::new();
    for (partition, offset) in offsets {
        let offset = offset.unwrap_or(0);
        consumer.assign(topic, partition, offset);
        assigned.push((partition, offset));
    }
    Ok(assigned)
}

/// Where each partition starts: the earliest offset, or with a group its
/// committed offset (the earliest where it has none).
async fn consume(args: &ConsumeArgs) -> anyhow::Result<ConsumeReport> {
    let mut consumer = consumer(
        &args.brokers,
        args.fetch_max_bytes,
        args.partition_fetch_max_bytes,
    )?;
    let mut starts = assign_all(&mut consumer, &args.topic, OffsetSpec::Earliest).await?;
    let mut member = None;
    if let Some(group) = &args.group {
        let mut m = GroupMember::new(
            args.brokers.client()?,
            group,
            std::slice::from_ref(&args.topic),
            GroupMemberConfig::default(),
        );
        m.join()
            .await
            .with_context(|| format!("cannot join group {group}"))?;
        let assigned: Vec<i32> = m
            .assignment()
            .iter()
            .filter(|t| t.topic == args.topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        let committed = Admin::new(args.brokers.client()?)
            .list_group_offsets(group)
            .await?;
        let mut consumer_starts = Vec::new();
        consumer = self::consumer(
            &args.brokers,
            args.fetch_max_bytes,
            args.partition_fetch_max_bytes,
        )?;
        for (partition, earliest) in starts {
            if !assigned.contains(&partition) {
                continue;
            }
            let key = (args.topic.clone(), partition);
            let offset = committed
                .get(&key)
                .map_or(earliest, |c| c.offset.max(earliest));
            consumer.assign(&args.topic, partition, offset);
            consumer_starts.push((partition, offset));
        }
        starts = consumer_starts;
        member = Some(m);
    }
    let target = match args.records {
        Some(n) => n,
        None => {
            let partitions: Vec<i32> = starts.iter().map(|(p, _)| *p).collect();
            let ends = consumer
                .list_offsets(&args.topic, &partitions, OffsetSpec::Latest)
                .await?;
            starts
                .iter()
                .map(|(p, start)| (ends[p].unwrap_or(0) - start).max(0) as u64)
                .sum()
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let heartbeat_every = Duration::from_secs(3);
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut last_heartbeat = Instant::now();
    // Past the target, the rest of a fetch is not consumed: positions are
    // tracked here, per record, for the commit.
    let mut next_offsets: BTreeMap<i32, i64> = starts.iter().copied().collect();
    while records < target {
        let got = consumer
            .poll_each(|_, partition, r| {
                if records < target {
                    records += 1;
                    bytes += value_len(r.key) + value_len(r.value);
                    next_offsets.insert(partition, r.offset + 1);
                }
            })
            .await?;
        if let Some(m) = member.as_mut() {
            if last_heartbeat.elapsed() >= heartbeat_every {
                m.heartbeat().await?;
                last_heartbeat = Instant::now();
            }
        }
        if got > 0 {
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= timeout {
            bail!(
                "read {records} of {target} records of {}; nothing arrived for {} ms",
                args.topic,
                args.timeout_ms
            );
        }
    }
    let elapsed = started.elapsed();
    if let Some(mut m) = member {
        let offsets = next_offsets
            .into_iter()
            .map(|(p, o)| ((args.topic.clone(), p), o))
            .collect();
        for ((topic, partition), result) in m.commit(&offsets).await? {
            result.with_context(|| format!("committing {topic}-{partition}"))?;
        }
        m.leave().await?;
    }
    Ok(ConsumeReport {
        records,
        bytes,
        elapsed,
    })
}

fn value_len(b: &Option<bytes::Bytes>) -> u64 {
    b.as_ref().map_or(0, |b| b.len() as u64)
}

/// Produces and consumes at once; the consumer starts at the end of every
/// partition so it sees exactly this run's records.
async fn e2e(args: &ProduceArgs) -> anyhow::Result<(Value, String)> {
    let load = &args.load;
    let mut consumer = consumer(&args.brokers, 50 * 1024 * 1024, 1024 * 1024)?;
    assign_all(&mut consumer, &args.topic, OffsetSpec::Latest).await?;
    let e2e_latency = Arc::new(Mutex::new(histogram()));
    let target = load.records;
    let consumed = {
        let e2e_latency = e2e_latency.clone();
        let topic = args.topic.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (mut records, mut bytes) = (0u64, 0u64);
            let mut last_progress = Instant::now();
            let mut latency = histogram();
            while records < target {
                let got = consumer
                    .poll_each(|_, _, r| {
                        let Some(value) = r.value else { return };
                        records += 1;
                        bytes += value.len() as u64;
                        if let Some(stamp) = value.get(..STAMP_BYTES) {
                            let sent_us =
                                u64::from_be_bytes(stamp.try_into().unwrap_or([0; STAMP_BYTES]));
                            latency.saturating_record(wall_us().saturating_sub(sent_us).max(1));
                        }
                    })
                    .await?;
                if got > 0 {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= Duration::from_secs(30) {
                    bail!("consumed {records} of {target} records of {topic}; nothing arrived for 30 s");
                }
            }
            if let Ok(mut shared) = e2e_latency.lock() {
                shared.add(&latency).context("merging latencies")?;
            }
            anyhow::Ok(ConsumeReport {
                records,
                bytes,
                elapsed: started.elapsed(),
            })
        })
    };
    let produced = produce(&args.brokers, &args.topic, load).await;
    let consumed = match produced {
        Ok(_) => consumed.await.context("consumer task failed")?,
        Err(e) => {
            consumed.abort();
            return Err(e);
        }
    };
    let produced = produced?;
    let consumed = consumed?;
    let e2e = e2e_latency
        .lock()
        .map_err(|_| anyhow::anyhow!("latency lock poisoned"))?
        .clone();
    let (rps, mbps) = consumed.rates();
    let produce_json = produced.to_json(load);
    let out = json!({
        "mode": "e2e",
        "records": consumed.records,
        "bytes": consumed.bytes,
        "record_size": load.record_size,
        "elapsed_s": consumed.elapsed.as_secs_f64(),
        "records_per_s": rps,
        "mb_per_s": mbps,
        "produce": produce_json,
        "latency_ms": latency_json(&e2e, E2E_LATENCY),
    });
    let text = format!(
        "{}{}end-to-end latency (creation to consumption): {}\n",
        produced.text(load),
        consumed.text(),
        latency_text(&e2e)
    );
    Ok((out, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_reported_in_ms_and_ordered() {
        let mut h = histogram();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        let j = latency_json(&h, "x");
        assert_eq!(j["count"], 10_000);
        assert_eq!(j["p50"], 5.003);
        assert_eq!(j["max"], 10.007);
        let order = ["p50", "p95", "p99", "p999", "max"];
        for pair in order.windows(2) {
            assert!(j[pair[0]].as_f64() <= j[pair[1]].as_f64(), "{pair:?}: {j}");
        }
        assert_eq!(latency_json(&histogram(), "x"), Value::Null);
    }

    #[test]
    fn payloads_are_capital_letters_of_the_asked_size() {
        let p = payload_template(1000);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
    }
}
