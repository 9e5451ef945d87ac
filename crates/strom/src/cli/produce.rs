//! `strom produce TOPIC`: one record per stdin line.

use std::io::BufRead;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use strom_client::{Compression, Producer, ProducerConfig, ProducerRecord};
use tokio::sync::mpsc;

use std::sync::Arc;

use super::{parse_key_value, BrokerArgs};
use strom_schema_serde::{frame, Codec, SchemaCache, SchemaKind};

/// Lines sent in one request at most; piped input is batched, interactive
/// input goes out line by line.
const MAX_BATCH_RECORDS: usize = 10_000;
/// Stays well below the broker's default message.max.bytes (1 MiB).
const MAX_BATCH_BYTES: usize = 512 * 1024;

#[derive(Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    /// The topic to write to.
    topic: String,
    /// Each line is KEY<SEPARATOR>VALUE (split at the first separator).
    #[arg(short = 'k', long = "key-separator", value_name = "SEPARATOR")]
    key_separator: Option<String>,
    /// A header added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write every record to this partition (default: by key, murmur2).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Acknowledgements to wait for: all (-1), 1 (leader) or 0 (none).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    #[command(flatten)]
    schemas: SchemaArgs,
}

/// Serializing with a schema registry (Confluent's wire format).
#[derive(Args)]
struct SchemaArgs {
    /// Serialize each value (a JSON value per line) with its schema from this registry, in
    /// Confluent's wire format; keys too with --key-subject or --key-schema-id.
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
    /// The schemas' format (default: the type the registry gives the schema). Protobuf
    /// values are JSON (proto3's JSON mapping) of the schema's first message.
    #[arg(long, value_enum, requires = "schema_registry")]
    format: Option<SchemaFormat>,
    /// The values' subject, whose latest schema is used (default: TOPIC-value).
    #[arg(long = "value-subject", requires = "schema_registry")]
    value_subject: Option<String>,
    /// The values' schema by id (instead of a subject's latest).
    #[arg(
        long = "schema-id",
        requires = "schema_registry",
        conflicts_with = "value_subject"
    )]
    schema_id: Option<u32>,
    /// Serialize keys (JSON, before the key separator) with this subject's latest schema.
    #[arg(long = "key-subject", requires_all = ["schema_registry", "key_separator"])]
    key_subject: Option<String>,
    /// Serialize keys with the schema of this id.
    #[arg(long = "key-schema-id", requires_all = ["schema_registry", "key_separator"], conflicts_with = "key_subject")]
    key_schema_id: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaFormat {
    Avro,
    JsonSchema,
    Protobuf,
}

impl SchemaFormat {
    fn kind(self) -> SchemaKind {
        match self {
            SchemaFormat::Avro => SchemaKind::Avro,
            SchemaFormat::JsonSchema => SchemaKind::Json,
            SchemaFormat::Protobuf => SchemaKind::Protobuf,
        }
    }
}

/// A writer schema and its id.
type Writer = (u32, Arc<Codec>);

/// The key's and value's writer schemas.
struct Serializers {
    key: Option<Writer>,
    value: Writer,
}

impl Serializers {
    async fn resolve(args: &SchemaArgs, url: &str, topic: &str) -> anyhow::Result<Serializers> {
        let client = super::registry_client(url, args.schema_registry_ca.as_deref())?;
        let mut cache = SchemaCache::new(client);
        let value_subject = args
            .value_subject
            .clone()
            .unwrap_or_else(|| format!("{topic}-value"));
        let value = writer(&mut cache, args.schema_id, &value_subject, args.format).await?;
        let key = match (args.key_schema_id, &args.key_subject) {
            (None, None) => None,
            (id, subject) => Some(
                writer(
                    &mut cache,
                    id,
                    subject.as_deref().unwrap_or_default(),
                    args.format,
                )
                .await?,
            ),
        };
        Ok(Serializers { key, value })
    }
}

async fn writer(
    cache: &mut SchemaCache,
    id: Option<u32>,
    subject: &str,
    format: Option<SchemaFormat>,
) -> anyhow::Result<Writer> {
    let (id, codec) = match id {
        Some(id) => (id, cache.by_id(id).await?),
        None => cache.latest(subject).await?,
    };
    if let Some(format) = format {
        if codec.kind() != format.kind() {
            bail!(
                "schema {id} is of type {}, not {}",
                codec.kind().name(),
                format.kind().name()
            );
        }
    }
    Ok((id, codec))
}

/// One side of a record (a JSON text) in the wire format.
fn serialize(bytes: &[u8], (id, codec): &Writer, side: &str) -> anyhow::Result<Bytes> {
    let value: serde_json::Value = serde_json::from_slice(bytes).with_context(|| {
        format!(
            "the {side} is not JSON: '{}'",
            String::from_utf8_lossy(bytes)
        )
    })?;
    let payload = codec
        .encode(&value)
        .with_context(|| format!("the {side} under schema {id}"))?;
    Ok(Bytes::from(frame(*id, &payload)))
}

impl Serializers {
    fn apply(&self, mut record: ProducerRecord) -> anyhow::Result<ProducerRecord> {
        if let (Some(writer), Some(key)) = (&self.key, &record.key) {
            record.key = Some(serialize(key, writer, "key")?);
        }
        if let Some(value) = &record.value {
            record.value = Some(serialize(value, &self.value, "value")?);
        }
        Ok(record)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionArg {
    pub(super) fn name(self) -> &'static str {
        match self {
            CompressionArg::None => "none",
            CompressionArg::Gzip => "gzip",
            CompressionArg::Snappy => "snappy",
            CompressionArg::Lz4 => "lz4",
            CompressionArg::Zstd => "zstd",
        }
    }
}

impl From<CompressionArg> for Compression {
    fn from(value: CompressionArg) -> Self {
        match value {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

pub(super) fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("'{text}' is not one of all, -1, 0, 1")),
    }
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|h| parse_key_value(h).map(|(k, v)| (k, Some(Bytes::from(v)))))
        .collect::<anyhow::Result<_>>()?;
    if args.key_separator.as_deref() == Some("") {
        bail!("the key separator must not be empty");
    }
    let config = ProducerConfig {
        acks: args.acks,
        compression: args.compression.into(),
        ..Default::default()
    };
    let serializers = match &args.schemas.schema_registry {
        Some(url) => Some(Serializers::resolve(&args.schemas, url, &args.topic).await?),
        None => None,
    };
    let mut producer = Producer::new(args.brokers.client()?, config)?;

    let (tx, mut rx) = mpsc::channel(1024);
    // Blocking stdin reads live on their own thread; the runtime stays free.
    std::thread::spawn(move || read_lines(tx));

    let mut line_number = 0usize;
    while let Some(first) = rx.recv().await {
        let mut lines = vec![first];
        let mut bytes = 0;
        while lines.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(line) => {
                    bytes += line.as_ref().map_or(0, Vec::len);
                    lines.push(line);
                }
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(lines.len());
        let mut bad_line = None;
        for line in lines {
            line_number += 1;
            let line = line.context("cannot read stdin")?;
            match to_record(
                line,
                args.key_separator.as_deref(),
                &headers,
                args.partition,
            )
            .and_then(|record| match &serializers {
                Some(serializers) => serializers.apply(record),
                None => Ok(record),
            }) {
                Ok(record) => records.push(record),
                Err(e) => {
                    bad_line = Some(e.context(format!("line {line_number}")));
                    break;
                }
            }
        }
        // Like Kafka's console producer: lines before a bad one are still sent.
        producer.send(&args.topic, records).await?;
        if let Some(e) = bad_line {
            return Err(e);
        }
    }
    Ok(())
}

fn read_lines(tx: mpsc::Sender<std::io::Result<Vec<u8>>>) {
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                if tx.blocking_send(Ok(line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

/// One stdin line (with its line ending) as a record.
fn to_record(
    mut line: Vec<u8>,
    separator: Option<&str>,
    headers: &[(String, Option<Bytes>)],
    partition: Option<i32>,
) -> anyhow::Result<ProducerRecord> {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    let (key, value) = match separator {
        None => (None, Bytes::from(line)),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = line
                .windows(sep.len())
                .position(|w| w == sep)
                .with_context(|| {
                    format!(
                        "no key separator found in '{}'",
                        String::from_utf8_lossy(&line)
                    )
                })?;
            let mut key = Bytes::from(line);
            let value = key.split_off(at).slice(sep.len()..);
            (Some(key), value)
        }
    };
    Ok(ProducerRecord {
        partition,
        key,
        value: Some(value),
        headers: headers.to_vec(),
        timestamp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str, sep: Option<&str>) -> anyhow::Result<ProducerRecord> {
        to_record(line.as_bytes().to_vec(), sep, &[], None)
    }

    #[test]
    fn lines_become_values_without_line_endings() {
        let r = record("hello world\r\n", None).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"hello world"[..]));
        assert_eq!(record("\n", None).unwrap().value.as_deref(), Some(&b""[..]));
        assert_eq!(
            record("last", None).unwrap().value.as_deref(),
            Some(&b"last"[..])
        );
    }

    #[test]
    fn keys_split_at_the_first_separator() {
        let r = record("user-1::a::b\n", Some("::")).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"a::b"[..]));
        let r = record("\tv\n", Some("\t")).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b""[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(
            record("no-sep\n", Some(":")).unwrap_err().to_string(),
            "no key separator found in 'no-sep'"
        );
    }

    #[test]
    fn headers_and_partition_apply_to_every_record() {
        let headers = vec![("a".to_owned(), Some(Bytes::from_static(b"1")))];
        let r = to_record(b"v\n".to_vec(), None, &headers, Some(2)).unwrap();
        assert_eq!(r.headers, headers);
        assert_eq!(r.partition, Some(2));
    }

    #[test]
    fn acks_accept_kafka_spellings() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(
            parse_acks("2"),
            Err("'2' is not one of all, -1, 0, 1".to_owned())
        );
    }
}
