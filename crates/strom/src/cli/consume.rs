//! `strom consume TOPIC`: print records from some or all partitions.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;
use strom_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetSpec, TimestampType};
use tokio::time::Instant;

use super::BrokerArgs;
use strom_schema_serde::{unframe, Decoded, SchemaCache};

#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// The topic to read.
    topic: String,
    /// Read only this partition (repeatable; default: all).
    #[arg(short = 'p', long = "partition")]
    partitions: Vec<i32>,
    /// Where to start in each partition: earliest, latest, an offset N, or
    /// @TIMESTAMP_MS for the first record at or after that time.
    #[arg(short = 'o', long, default_value = "earliest", value_parser = parse_start)]
    offset: Start,
    /// Exit after this many records.
    #[arg(short = 'n', long = "num", visible_alias = "count")]
    count: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Plain)]
    format: Format,
    /// Give up when no record arrives for this long: an error if -n was
    /// not reached, otherwise a normal exit.
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Decode keys and values in Confluent's wire format (magic byte 0, schema id) with
    /// their writer schemas from this registry: Avro and Protobuf (proto3's JSON mapping) as
    /// JSON, JSON Schema payloads as they are. Other records print as they are.
    #[arg(long = "schema-registry", value_name = "URL")]
    schema_registry: Option<String>,
    /// PEM CA certificates an https registry's certificate must chain to (default: the
    /// system's).
    #[arg(
        long = "schema-registry-ca",
        value_name = "FILE",
        requires = "schema_registry"
    )]
    schema_registry_ca: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Spec(OffsetSpec),
    Offset(i64),
}

fn parse_start(text: &str) -> Result<Start, String> {
    match text {
        "earliest" | "beginning" | "start" => return Ok(Start::Spec(OffsetSpec::Earliest)),
        "latest" | "end" => return Ok(Start::Spec(OffsetSpec::Latest)),
        _ => {}
    }
    if let Some(ts) = text.strip_prefix('@') {
        return match ts.parse::<i64>() {
            Ok(ts) if ts >= 0 => Ok(Start::Spec(OffsetSpec::Timestamp(ts))),
            _ => Err(format!("'{ts}' is not a timestamp in milliseconds")),
        };
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Start::Offset(n)),
        _ => Err(format!(
            "'{text}' is not earliest, latest, an offset or @TIMESTAMP_MS"
        )),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// The value of each record, one per line.
    Plain,
    /// One JSON object per record and line.
    Json,
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut config = ConsumerConfig::default();
    if let Some(timeout) = timeout {
        // A fetch must not wait longer than we are willing to.
        config.max_wait = config.max_wait.min(timeout).max(Duration::from_millis(1));
    }
    let mut consumer = Consumer::new(args.brokers.client()?, config);
    let topic = args.topic.as_str();
    let all = consumer.partitions(topic).await?;
    let partitions = if args.partitions.is_empty() {
        all.clone()
    } else {
        args.partitions.clone()
    };
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        bail!("topic {topic} has no partition {p} (it has {})", all.len());
    }
    match args.offset {
        Start::Offset(n) => partitions
            .iter()
            .for_each(|&p| consumer.assign(topic, p, n)),
        Start::Spec(spec) => {
            let offsets = consumer.list_offsets(topic, &partitions, spec).await?;
            // No record at or after a timestamp: start at the end, as Kafka does.
            let latest = match spec {
                OffsetSpec::Timestamp(_) if offsets.values().any(Option::is_none) => Some(
                    consumer
                        .list_offsets(topic, &partitions, OffsetSpec::Latest)
                        .await?,
                ),
                _ => None,
            };
            for &p in &partitions {
                let offset = offsets
                    .get(&p)
                    .copied()
                    .flatten()
                    .or_else(|| latest.as_ref().and_then(|l| l.get(&p).copied().flatten()));
                consumer.assign(topic, p, offset.unwrap_or(0));
            }
        }
    }

    let mut schemas = match &args.schema_registry {
        Some(url) => Some(SchemaCache::new(super::registry_client(
            url,
            args.schema_registry_ca.as_deref(),
        )?)),
        None => None,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed: u64 = 0;
    let mut last_progress = Instant::now();
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let outcome: anyhow::Result<()> = loop {
        if args.count.is_some_and(|n| printed >= n) {
            break Ok(());
        }
        let records = tokio::select! {
            polled = consumer.poll() => polled?,
            _ = &mut interrupt => break Ok(()),
        };
        if !records.is_empty() {
            last_progress = Instant::now();
        }
        let mut failed = None;
        for record in &records {
            if args.count.is_some_and(|n| printed >= n) {
                break;
            }
            let decoded = match &mut schemas {
                Some(schemas) => match decode_record(schemas, record).await {
                    Ok(decoded) => decoded,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                },
                None => DecodedRecord::default(),
            };
            if let Err(e) = write_record(&mut out, record, args.format, &decoded) {
                // A closed pipe (`| head`) is a normal end.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(e.into());
            }
            printed += 1;
        }
        if let Err(e) = out.flush() {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        if let Some(e) = failed {
            break Err(e);
        }
        if let Some(timeout) = timeout {
            if last_progress.elapsed() >= timeout {
                break match args.count {
                    Some(n) => Err(anyhow::anyhow!(
                        "timed out after {} ms without records: consumed {printed} of {n}",
                        timeout.as_millis()
                    )),
                    None => Ok(()),
                };
            }
        }
    };
    drop(out);
    eprintln!("Processed a total of {printed} messages");
    outcome
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    /// A string, or with --schema-registry the decoded JSON of a framed key.
    key: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_schema_id: Option<u32>,
    value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_schema_id: Option<u32>,
    headers: Vec<JsonHeader>,
}

/// A record's key and value decoded with their writer schemas (None: not in the wire
/// format, or no registry).
#[derive(Default)]
struct DecodedRecord {
    key: Option<(u32, Decoded)>,
    value: Option<(u32, Decoded)>,
}

async fn decode_record(
    schemas: &mut SchemaCache,
    record: &ConsumerRecord,
) -> anyhow::Result<DecodedRecord> {
    let mut decoded = DecodedRecord::default();
    for (side, bytes, slot) in [
        ("key", &record.key, &mut decoded.key),
        ("value", &record.value, &mut decoded.value),
    ] {
        let Some((id, payload)) = bytes.as_deref().and_then(unframe) else {
            continue;
        };
        let codec = schemas.by_id(id).await.with_context(|| {
            format!(
                "the {side} of partition {} offset {}",
                record.partition, record.offset
            )
        })?;
        let value = codec.decode(payload).with_context(|| {
            format!(
                "the {side} of partition {} offset {} (schema {id})",
                record.partition, record.offset
            )
        })?;
        *slot = Some((id, value));
    }
    Ok(decoded)
}

#[derive(Serialize)]
struct JsonHeader {
    key: String,
    value: Option<String>,
}

fn text(bytes: &Option<bytes::Bytes>) -> Option<String> {
    bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    format: Format,
    decoded: &DecodedRecord,
) -> std::io::Result<()> {
    match format {
        Format::Plain => {
            match (&decoded.value, &record.value) {
                (Some((_, value)), _) => out.write_all(value.text().as_bytes())?,
                (None, Some(value)) => out.write_all(value)?,
                (None, None) => out.write_all(b"null")?,
            }
            out.write_all(b"\n")
        }
        Format::Json => {
            let json = JsonRecord {
                topic: &record.topic,
                partition: record.partition,
                offset: record.offset,
                timestamp: record.timestamp,
                timestamp_type: match record.timestamp_type {
                    TimestampType::Creation => "CreateTime",
                    TimestampType::LogAppend => "LogAppendTime",
                },
                key: match &decoded.key {
                    Some((_, key)) => Some(key.json()),
                    None => text(&record.key).map(serde_json::Value::String),
                },
                key_schema_id: decoded.key.as_ref().map(|(id, _)| *id),
                value: match &decoded.value {
                    Some((_, value)) => Some(value.json()),
                    None => text(&record.value).map(serde_json::Value::String),
                },
                value_schema_id: decoded.value.as_ref().map(|(id, _)| *id),
                headers: record
                    .headers
                    .iter()
                    .map(|(k, v)| JsonHeader {
                        key: k.clone(),
                        value: text(v),
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut *out, &json)?;
            out.write_all(b"\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn start_positions_parse() {
        assert_eq!(
            parse_start("earliest"),
            Ok(Start::Spec(OffsetSpec::Earliest))
        );
        assert_eq!(parse_start("latest"), Ok(Start::Spec(OffsetSpec::Latest)));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(
            parse_start("@1700000000000"),
            Ok(Start::Spec(OffsetSpec::Timestamp(1700000000000)))
        );
        assert_eq!(
            parse_start("@x"),
            Err("'x' is not a timestamp in milliseconds".to_owned())
        );
        assert!(parse_start("-3").is_err());
        assert!(parse_start("soon").is_err());
    }

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".to_owned(),
            partition: 1,
            offset: 5,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::Creation,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v \"q\"")),
            headers: vec![
                ("h".to_owned(), Some(Bytes::from_static(b"1"))),
                ("n".to_owned(), None),
            ],
        }
    }

    #[test]
    fn json_lines_carry_every_field() {
        let mut out = Vec::new();
        write_record(&mut out, &record(), Format::Json, &DecodedRecord::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"topic\":\"t\",\"partition\":1,\"offset\":5,\"timestamp\":1700000000000,\
             \"timestamp_type\":\"CreateTime\",\"key\":\"k\",\"value\":\"v \\\"q\\\"\",\
             \"headers\":[{\"key\":\"h\",\"value\":\"1\"},{\"key\":\"n\",\"value\":null}]}\n"
        );
    }

    #[test]
    fn decoded_keys_and_values_print_as_json() {
        let decoded = DecodedRecord {
            key: Some((1, Decoded::Json(serde_json::json!({"id": 7})))),
            value: Some((
                2,
                Decoded::Json(serde_json::json!({"name": "a", "email": null})),
            )),
        };
        let mut out = Vec::new();
        write_record(&mut out, &record(), Format::Plain, &decoded).unwrap();
        assert_eq!(out, b"{\"name\":\"a\",\"email\":null}\n");
        let mut out = Vec::new();
        write_record(&mut out, &record(), Format::Json, &decoded).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"topic\":\"t\",\"partition\":1,\"offset\":5,\"timestamp\":1700000000000,\
             \"timestamp_type\":\"CreateTime\",\"key\":{\"id\":7},\"key_schema_id\":1,\
             \"value\":{\"name\":\"a\",\"email\":null},\"value_schema_id\":2,\
             \"headers\":[{\"key\":\"h\",\"value\":\"1\"},{\"key\":\"n\",\"value\":null}]}\n"
        );
    }

    #[test]
    fn plain_lines_are_values() {
        let mut out = Vec::new();
        write_record(
            &mut out,
            &record(),
            Format::Plain,
            &DecodedRecord::default(),
        )
        .unwrap();
        write_record(
            &mut out,
            &ConsumerRecord {
                value: None,
                ..record()
            },
            Format::Plain,
            &DecodedRecord::default(),
        )
        .unwrap();
        assert_eq!(out, b"v \"q\"\nnull\n");
    }
}
