//! A load generator on librdkafka, so bench/run's figures do not depend on
//! strom's own client. One JSON object on stdout per run.
//!
//!   rdkafka-load produce --bootstrap HOST:PORT --topic T --records N --size S \
//!       [--acks 1|-1|0] [--partitions P] [--producers K] [--rate R] \
//!       [--batch-size B] [--linger-ms L] [--compression none|gzip|snappy|lz4|zstd] \
//!       [--idempotence true|false] [--transactional-id ID --txn-records N]
//!   rdkafka-load consume --bootstrap HOST:PORT --topic T [--records N]
//!
//! Produce latency is per record, from creation (with --rate: its scheduled
//! send time) to its delivery report. A missing topic is created with
//! --partitions. MB are 10^6 bytes of record values.
//!
//! With --transactional-id each producer is transactional (producer K of
//! --producers uses the id ID-K) and commits every N of its records (the
//! last transaction may be shorter); a run succeeds only if every
//! transaction commits. The report adds the number of transactions and the
//! commit latency.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

const MAX_LATENCY_US: u64 = 3_600_000_000;

type Fallible<T> = Result<T, String>;

struct Args {
    mode: String,
    options: HashMap<String, String>,
}

impl Args {
    fn parse() -> Fallible<Self> {
        let mut it = std::env::args().skip(1);
        let mode = it
            .next()
            .ok_or("usage: rdkafka-load produce|consume --bootstrap ... --topic ...")?;
        let mut options = HashMap::new();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            options.insert(name.to_owned(), value);
        }
        Ok(Self { mode, options })
    }

    fn text(&self, name: &str, default: Option<&str>) -> Fallible<String> {
        match (self.options.get(name), default) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.to_owned()),
            (None, None) => Err(format!("--{name} is required")),
        }
    }

    fn number(&self, name: &str, default: u64) -> Fallible<u64> {
        match self.options.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: '{v}' is not a number")),
            None => Ok(default),
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds")
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn latency_json(h: &Histogram<u64>, what: &str) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "what": what,
        "count": h.len(),
        "mean": (h.mean()).round() / 1000.0,
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

#[derive(Default)]
struct Delivered {
    records: u64,
    bytes: u64,
    failures: u64,
    first_failure: Option<String>,
}

/// Delivery reports: counts and latencies. The opaque value of each record
/// is its latency origin in ns since `started`, so nothing is allocated per
/// record.
struct Reports {
    started: Instant,
    latency: Mutex<Histogram<u64>>,
    delivered: Mutex<Delivered>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, origin_ns: usize) {
        let now_ns = self.started.elapsed().as_nanos() as u64;
        let mut delivered = self.delivered.lock().expect("not poisoned");
        match result {
            Ok(message) => {
                delivered.records += 1;
                delivered.bytes += message.payload_len() as u64;
                let us = now_ns.saturating_sub(origin_ns as u64) / 1000;
                drop(delivered);
                let _ = self
                    .latency
                    .lock()
                    .expect("not poisoned")
                    .record(us.clamp(1, MAX_LATENCY_US));
            }
            Err((error, _)) => {
                delivered.failures += 1;
                delivered
                    .first_failure
                    .get_or_insert_with(|| error.to_string());
            }
        }
    }
}

fn ensure_topic(bootstrap: &str, topic: &str, partitions: i32) -> Fallible<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics([&new], &AdminOptions::new()))
        .map_err(|e| format!("create topic {topic}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("create topic {name}: {code}")),
        }
    }
    Ok(())
}

fn payload(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D ^ wall_us();
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

/// Transactional production: the id prefix and the records per transaction.
struct TxnSettings {
    id_prefix: String,
    records_per_txn: u64,
}

struct ProduceSettings {
    bootstrap: String,
    topic: String,
    records: u64,
    size: usize,
    rate: f64,
    config: Vec<(&'static str, String)>,
    txn: Option<TxnSettings>,
}

/// What one producer thread reports.
struct Produced {
    reports: Reports,
    transactions: u64,
    /// Microseconds per commit_transaction call (it flushes first).
    commit_latency: Histogram<u64>,
}

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// One producer thread: sends `count` records, then waits for every report.
/// A transactional producer commits every `records_per_txn` records.
fn produce_one(
    settings: &ProduceSettings,
    index: u64,
    count: u64,
    rate: f64,
    (started, started_wall_us): (Instant, u64),
) -> Fallible<Produced> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.bootstrap);
    for (k, v) in &settings.config {
        config.set(*k, v);
    }
    if let Some(txn) = &settings.txn {
        config.set("transactional.id", format!("{}-{index}", txn.id_prefix));
    }
    let reports = Reports {
        started,
        latency: Mutex::new(histogram()),
        delivered: Mutex::new(Delivered::default()),
    };
    let producer: BaseProducer<Reports> = config
        .create_with_context(reports)
        .map_err(|e| format!("producer: {e}"))?;
    let mut transactions = 0u64;
    let mut commit_latency = histogram();
    if settings.txn.is_some() {
        producer
            .init_transactions(TXN_TIMEOUT)
            .map_err(|e| format!("init_transactions: {e}"))?;
        if count > 0 {
            producer
                .begin_transaction()
                .map_err(|e| format!("begin_transaction: {e}"))?;
        }
    }
    let mut commit = |producer: &BaseProducer<Reports>, more: bool| -> Fallible<()> {
        let t0 = Instant::now();
        producer
            .commit_transaction(TXN_TIMEOUT)
            .map_err(|e| format!("commit_transaction: {e}"))?;
        let us = t0.elapsed().as_micros() as u64;
        let _ = commit_latency.record(us.clamp(1, MAX_LATENCY_US));
        transactions += 1;
        if more {
            producer
                .begin_transaction()
                .map_err(|e| format!("begin_transaction: {e}"))?;
        }
        Ok(())
    };
    let mut value = payload(settings.size);
    let mut j = 0u64;
    while j < count {
        let due_until = if rate > 0.0 {
            ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(count)
        } else {
            count
        };
        while j < due_until {
            // One clock reading per record: the wall clock is derived.
            let created = started.elapsed();
            let origin = if rate > 0.0 {
                Duration::from_secs_f64(j as f64 / rate)
            } else {
                created
            };
            if value.len() >= 8 {
                let stamp = started_wall_us + created.as_micros() as u64;
                value[..8].copy_from_slice(&stamp.to_be_bytes());
            }
            let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(
                &settings.topic,
                origin.as_nanos() as usize,
            )
            .payload(&value[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(format!("send: {e}")),
                }
            }
            j += 1;
            if j.is_multiple_of(128) {
                producer.poll(Duration::ZERO);
            }
            match &settings.txn {
                Some(txn) if j.is_multiple_of(txn.records_per_txn) => commit(&producer, j < count)?,
                _ => {}
            }
        }
        if j < count {
            let next_due = started + Duration::from_secs_f64(j as f64 / rate);
            // Serve delivery reports while waiting for the next record.
            producer.poll(next_due.saturating_duration_since(Instant::now()));
        }
    }
    match &settings.txn {
        // The last, shorter transaction.
        Some(txn) if count > 0 && !count.is_multiple_of(txn.records_per_txn) => {
            commit(&producer, false)?
        }
        _ => {}
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| format!("flush: {e}"))?;
    // Every report has been served by flush; take the context back.
    let context = producer.context();
    let delivered = std::mem::take(&mut *context.delivered.lock().expect("not poisoned"));
    let latency = context.latency.lock().expect("not poisoned").clone();
    Ok(Produced {
        reports: Reports {
            started,
            latency: Mutex::new(latency),
            delivered: Mutex::new(delivered),
        },
        transactions,
        commit_latency,
    })
}

fn produce(args: &Args) -> Fallible<Value> {
    let bootstrap = args.text("bootstrap", None)?;
    let topic = args.text("topic", None)?;
    let partitions = args.number("partitions", 1)? as i32;
    let producers = args.number("producers", 1)?.max(1);
    let acks = args.text("acks", Some("1"))?;
    let compression = args.text("compression", Some("none"))?;
    let idempotence = args.text("idempotence", Some("false"))?;
    if idempotence != "true" && idempotence != "false" {
        return Err(format!(
            "--idempotence: '{idempotence}' is not true or false"
        ));
    }
    let txn = match args.options.get("transactional-id") {
        Some(id) => {
            let records_per_txn = args.number("txn-records", 1000)?;
            if records_per_txn == 0 {
                return Err("--txn-records must be at least 1".to_owned());
            }
            if acks != "-1" && acks != "all" {
                return Err("--transactional-id needs --acks -1 (all)".to_owned());
            }
            Some(TxnSettings {
                id_prefix: id.clone(),
                records_per_txn,
            })
        }
        None if args.options.contains_key("txn-records") => {
            return Err("--txn-records needs --transactional-id".to_owned())
        }
        None => None,
    };
    let mut settings = ProduceSettings {
        bootstrap: bootstrap.clone(),
        topic: topic.clone(),
        records: args.number("records", 100_000)?,
        size: args.number("size", 100)? as usize,
        rate: args.number("rate", 0)? as f64,
        config: vec![
            ("acks", acks.clone()),
            ("linger.ms", args.number("linger-ms", 5)?.to_string()),
            (
                "batch.size",
                args.number("batch-size", 1_000_000)?.to_string(),
            ),
            ("compression.type", compression.clone()),
            ("queue.buffering.max.messages", "1000000".to_owned()),
            ("queue.buffering.max.kbytes", "1048576".to_owned()),
        ],
        txn,
    };
    // librdkafka's default is false; transactional producers are idempotent
    // anyway (and refuse an explicit false).
    if idempotence == "true" {
        settings
            .config
            .push(("enable.idempotence", idempotence.clone()));
    }
    ensure_topic(&bootstrap, &topic, partitions)?;
    let started = Instant::now();
    let started_wall_us = wall_us();
    let results: Vec<Fallible<Produced>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..producers)
            .map(|i| {
                let count =
                    settings.records / producers + u64::from(i < settings.records % producers);
                let rate = settings.rate / producers as f64;
                let settings = &settings;
                scope.spawn(move || {
                    produce_one(settings, i, count, rate, (started, started_wall_us))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("producer thread panicked".to_owned()))
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latency = histogram();
    let mut total = Delivered::default();
    let mut transactions = 0u64;
    let mut commit_latency = histogram();
    for result in results {
        let produced = result?;
        transactions += produced.transactions;
        commit_latency
            .add(produced.commit_latency)
            .map_err(|e| format!("merging commit latencies: {e}"))?;
        let reports = produced.reports;
        let delivered = reports.delivered.into_inner().expect("not poisoned");
        total.records += delivered.records;
        total.bytes += delivered.bytes;
        total.failures += delivered.failures;
        if total.first_failure.is_none() {
            total.first_failure = delivered.first_failure;
        }
        latency
            .add(reports.latency.into_inner().expect("not poisoned"))
            .map_err(|e| format!("merging latencies: {e}"))?;
    }
    if total.failures > 0 || total.records != settings.records {
        return Err(format!(
            "{} of {} records delivered, {} failed (first: {})",
            total.records,
            settings.records,
            total.failures,
            total.first_failure.unwrap_or_default()
        ));
    }
    let what =
        "per record, from creation (with --rate: its scheduled send time) to its delivery report";
    let mut report = json!({
        "tool": "rdkafka-load",
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
        "mode": "produce",
        "records": total.records,
        "bytes": total.bytes,
        "record_size": settings.size,
        "acks": acks,
        "compression": compression,
        "idempotence": idempotence == "true" || settings.txn.is_some(),
        "partitions": partitions,
        "producers": producers,
        "rate": settings.rate,
        "elapsed_s": elapsed,
        "records_per_s": total.records as f64 / elapsed,
        "mb_per_s": total.bytes as f64 / 1e6 / elapsed,
        "latency_ms": if acks == "0" { Value::Null } else { latency_json(&latency, what) },
    });
    if let Some(txn) = &settings.txn {
        report["transactional_id"] = json!(txn.id_prefix);
        report["txn_records"] = json!(txn.records_per_txn);
        report["transactions"] = json!(transactions);
        report["commit_latency_ms"] = latency_json(
            &commit_latency,
            "per commit_transaction call, which first flushes the transaction's records",
        );
    }
    Ok(report)
}

fn consume(args: &Args) -> Fallible<Value> {
    let bootstrap = args.text("bootstrap", None)?;
    let topic = args.text("topic", None)?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "rdkafka-load-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(&topic), timeout)
        .map_err(|e| format!("metadata: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    let mut target = 0u64;
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p, timeout)
            .map_err(|e| format!("watermarks: {e}"))?;
        target += (high - low).max(0) as u64;
        assignment
            .add_partition_offset(&topic, p, Offset::Beginning)
            .map_err(|e| format!("assign: {e}"))?;
    }
    let target = match args.options.get("records") {
        Some(_) => args.number("records", 0)?,
        None => target,
    };
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    while records < target {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records += 1;
                bytes += message.payload_len() as u64;
                last_progress = Instant::now();
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None if last_progress.elapsed() > Duration::from_secs(30) => {
                return Err(format!(
                    "read {records} of {target} records; nothing for 30 s"
                ));
            }
            None => {}
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "tool": "rdkafka-load",
        "librdkafka": rdkafka::util::get_rdkafka_version().1,
        "mode": "consume",
        "records": records,
        "bytes": bytes,
        "elapsed_s": elapsed,
        "records_per_s": records as f64 / elapsed,
        "mb_per_s": bytes as f64 / 1e6 / elapsed,
    }))
}

fn main() {
    let result = Args::parse().and_then(|args| match args.mode.as_str() {
        "produce" => produce(&args),
        "consume" => consume(&args),
        other => Err(format!("unknown mode {other}: produce or consume")),
    });
    match result {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("rdkafka-load: {e}");
            std::process::exit(1);
        }
    }
}
