//! Records in Confluent's wire format, as `strom produce/consume --schema-registry` write
//! and read them: magic byte 0, the writer schema's id (4 bytes, big-endian), then the
//! payload: the Avro binary encoding, or the JSON text for JSON Schema.
//!
//! Avro values are written as plain JSON, one value per line:
//! - a union takes the value of one of its branches as it is (`null`, `"x"`, `{"f": 1}`); the
//!   first branch, in the schema's order, that the value fits is used. Avro's JSON encoding,
//!   an object with one key naming the branch (`{"string": "x"}`, `{"com.example.User": {..}}`),
//!   is accepted too and wins when the named branch fits its value;
//! - `bytes` and `fixed` are strings whose characters are the bytes (U+0000..U+00FF), as in
//!   Avro's JSON encoding;
//! - `float`/`double` accept numbers and the strings "NaN", "Infinity", "-Infinity";
//! - logical types take their underlying type's JSON (a `date` is days as an int, a
//!   `timestamp-millis` a long, a `decimal` bytes), except `uuid`, a string;
//! - a record field that is missing takes its default, if it has one.
//!
//! Decoding prints the same forms (unions unwrapped), so what `consume` prints can be
//! produced again.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use apache_avro::schema::{ResolvedSchema, UnionSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::{Map, Number, Value as Json};

use super::registry_client::{segment, RegistryClient};

pub const MAGIC_BYTE: u8 = 0;

/// The wire format: magic byte, id, payload.
pub fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The id and payload of framed bytes; None for bytes that are not in the wire format.
pub fn unframe(data: &[u8]) -> Option<(u32, &[u8])> {
    if data.len() < 5 || data[0] != MAGIC_BYTE {
        return None;
    }
    let id = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
    Some((id, &data[5..]))
}

/// A schema's type, as the registry names it (`schemaType`; absent means Avro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Avro,
    Json,
    Protobuf,
}

impl SchemaKind {
    pub fn from_field(value: Option<&Json>) -> anyhow::Result<SchemaKind> {
        match value.and_then(Json::as_str) {
            None | Some("AVRO") | Some("") => Ok(SchemaKind::Avro),
            Some("JSON") => Ok(SchemaKind::Json),
            Some("PROTOBUF") => Ok(SchemaKind::Protobuf),
            Some(other) => bail!("unknown schema type {other}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Avro => "AVRO",
            SchemaKind::Json => "JSON",
            SchemaKind::Protobuf => "PROTOBUF",
        }
    }
}

/// A writer schema, ready to encode or decode.
pub enum Codec {
    Avro(AvroCodec),
    Json(JsonCodec),
    /// Known by id, not decodable yet.
    Protobuf,
}

impl Codec {
    pub fn kind(&self) -> SchemaKind {
        match self {
            Codec::Avro(_) => SchemaKind::Avro,
            Codec::Json(_) => SchemaKind::Json,
            Codec::Protobuf => SchemaKind::Protobuf,
        }
    }

    fn new(kind: SchemaKind, text: &str, references: &[(String, String)]) -> anyhow::Result<Codec> {
        Ok(match kind {
            SchemaKind::Avro => Codec::Avro(AvroCodec::new(
                text,
                references.iter().map(|(_, text)| text.as_str()),
            )?),
            SchemaKind::Json => Codec::Json(JsonCodec::new(text, references)?),
            SchemaKind::Protobuf => Codec::Protobuf,
        })
    }

    /// One input line's JSON as the payload (without the framing).
    pub fn encode(&self, value: &Json) -> anyhow::Result<Vec<u8>> {
        match self {
            Codec::Avro(avro) => avro.encode(value),
            Codec::Json(json) => json.encode(value),
            Codec::Protobuf => bail!("producing with Protobuf schemas is not supported yet"),
        }
    }

    /// A payload (after the framing) as the text to print.
    pub fn decode(&self, payload: &[u8]) -> anyhow::Result<Decoded> {
        match self {
            Codec::Avro(avro) => avro.decode(payload).map(Decoded::Json),
            Codec::Json(_) => Ok(Decoded::Text(String::from_utf8_lossy(payload).into_owned())),
            Codec::Protobuf => Ok(Decoded::Note(format!(
                "<protobuf, {} bytes: decoding Protobuf is not supported yet>",
                payload.len()
            ))),
        }
    }
}

/// What a framed payload decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Json(Json),
    /// A JSON Schema payload: printed as it is.
    Text(String),
    /// Not decoded (Protobuf): a note in its place.
    Note(String),
}

impl Decoded {
    pub fn text(&self) -> String {
        match self {
            Decoded::Json(value) => value.to_string(),
            Decoded::Text(text) | Decoded::Note(text) => text.clone(),
        }
    }

    /// As a JSON value: a JSON Schema payload parsed (a string if it is not JSON).
    pub fn json(&self) -> Json {
        match self {
            Decoded::Json(value) => value.clone(),
            Decoded::Text(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
            }
            Decoded::Note(text) => Json::String(text.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Avro
// ---------------------------------------------------------------------------------------------

pub struct AvroCodec {
    schema: Schema,
    /// The referenced schemas, dependencies first.
    references: Vec<Schema>,
    /// Every named type by full name, for `Ref`s.
    names: HashMap<String, Schema>,
}

impl AvroCodec {
    pub fn new<'a>(
        text: &str,
        references: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<AvroCodec> {
        let references: Vec<&str> = references.into_iter().collect();
        let (schema, references) = if references.is_empty() {
            (Schema::parse_str(text)?, Vec::new())
        } else {
            Schema::parse_str_with_list(text, references)?
        };
        let names = {
            let resolved = ResolvedSchema::new_with_schemata(Self::all(&schema, &references))?;
            resolved
                .get_names()
                .iter()
                .map(|(name, schema)| (name.fullname(None), (*schema).clone()))
                .collect()
        };
        Ok(AvroCodec {
            schema,
            references,
            names,
        })
    }

    fn all<'a>(schema: &'a Schema, references: &'a [Schema]) -> Vec<&'a Schema> {
        references.iter().chain(std::iter::once(schema)).collect()
    }

    pub fn encode(&self, value: &Json) -> anyhow::Result<Vec<u8>> {
        let avro = self.to_avro(value, &self.schema, "")?;
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema)
            .schemata(Self::all(&self.schema, &self.references))?
            .build()?;
        writer
            .write_value_to_vec(avro)
            .map_err(|e| anyhow!("the value does not fit the schema: {e}"))
    }

    pub fn decode(&self, payload: &[u8]) -> anyhow::Result<Json> {
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&self.schema)
            .writer_schemata(Self::all(&self.schema, &self.references))?
            .build()?;
        let mut input = payload;
        let value = reader
            .read_value(&mut input)
            .map_err(|e| anyhow!("not Avro of the writer schema: {e}"))?;
        if !input.is_empty() {
            bail!(
                "{} bytes left after the Avro value of the writer schema",
                input.len()
            );
        }
        Ok(to_json(&value))
    }

    fn resolve<'s>(&'s self, schema: &'s Schema) -> anyhow::Result<&'s Schema> {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(&name.fullname(None))
                .ok_or_else(|| anyhow!("unknown type {}", name.fullname(None))),
            other => Ok(other),
        }
    }

    /// The JSON value under `schema` as an Avro value; `at` names where, for errors.
    fn to_avro(&self, json: &Json, schema: &Schema, at: &str) -> anyhow::Result<Avro> {
        let schema = self.resolve(schema)?;
        let mismatch = || {
            anyhow!(
                "{}: {} is not {}",
                if at.is_empty() { "the value" } else { at },
                short(json),
                describe(schema)
            )
        };
        Ok(match schema {
            Schema::Null => match json {
                Json::Null => Avro::Null,
                _ => return Err(mismatch()),
            },
            Schema::Boolean => Avro::Boolean(json.as_bool().ok_or_else(mismatch)?),
            Schema::Int => Avro::Int(int(json).ok_or_else(mismatch)?),
            Schema::Long => Avro::Long(json.as_i64().ok_or_else(mismatch)?),
            Schema::Float => Avro::Float(float(json).ok_or_else(mismatch)? as f32),
            Schema::Double => Avro::Double(float(json).ok_or_else(mismatch)?),
            Schema::Bytes => Avro::Bytes(bytes(json).ok_or_else(mismatch)?),
            Schema::String => Avro::String(json.as_str().ok_or_else(mismatch)?.to_owned()),
            Schema::Fixed(fixed) => {
                let b = bytes(json).filter(|b| b.len() == fixed.size);
                Avro::Fixed(fixed.size, b.ok_or_else(mismatch)?)
            }
            Schema::Enum(e) => {
                let symbol = json.as_str().ok_or_else(mismatch)?;
                let index = e
                    .symbols
                    .iter()
                    .position(|s| s == symbol)
                    .ok_or_else(mismatch)?;
                Avro::Enum(index as u32, symbol.to_owned())
            }
            Schema::Array(array) => {
                let items = json.as_array().ok_or_else(mismatch)?;
                Avro::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.to_avro(item, &array.items, &format!("{at}[{i}]")))
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            Schema::Map(map) => {
                let entries = json.as_object().ok_or_else(mismatch)?;
                Avro::Map(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            Ok((
                                k.clone(),
                                self.to_avro(v, &map.types, &format!("{at}.{k}"))?,
                            ))
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            Schema::Record(record) => {
                let object = json.as_object().ok_or_else(mismatch)?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !record.fields.iter().any(|f| &f.name == *k))
                {
                    bail!(
                        "{}: record {} has no field '{unknown}'",
                        if at.is_empty() { "the value" } else { at },
                        record.name.fullname(None)
                    );
                }
                let mut fields = Vec::with_capacity(record.fields.len());
                for field in &record.fields {
                    let path = format!("{at}.{}", field.name);
                    let path = path.trim_start_matches('.');
                    let value = match (object.get(&field.name), &field.default) {
                        (Some(value), _) => self.to_avro(value, &field.schema, path)?,
                        (None, Some(default)) => {
                            self.default_value(default, &field.schema, path)?
                        }
                        (None, None) => bail!("{path}: missing, and the field has no default"),
                    };
                    fields.push((field.name.clone(), value));
                }
                Avro::Record(fields)
            }
            Schema::Union(union) => self.union_value(json, union, at)?,
            Schema::Decimal(_) => Avro::Decimal(apache_avro::Decimal::from(
                bytes(json).ok_or_else(mismatch)?,
            )),
            Schema::BigDecimal => bail!("{at}: big-decimal values are not supported"),
            Schema::Uuid(_) => {
                let text = json.as_str().ok_or_else(mismatch)?;
                Avro::Uuid(apache_avro::Uuid::parse_str(text).map_err(|_| mismatch())?)
            }
            Schema::Date => Avro::Date(int(json).ok_or_else(mismatch)?),
            Schema::TimeMillis => Avro::TimeMillis(int(json).ok_or_else(mismatch)?),
            Schema::TimeMicros => Avro::TimeMicros(json.as_i64().ok_or_else(mismatch)?),
            Schema::TimestampMillis => Avro::TimestampMillis(json.as_i64().ok_or_else(mismatch)?),
            Schema::TimestampMicros => Avro::TimestampMicros(json.as_i64().ok_or_else(mismatch)?),
            Schema::TimestampNanos => Avro::TimestampNanos(json.as_i64().ok_or_else(mismatch)?),
            Schema::LocalTimestampMillis => {
                Avro::LocalTimestampMillis(json.as_i64().ok_or_else(mismatch)?)
            }
            Schema::LocalTimestampMicros => {
                Avro::LocalTimestampMicros(json.as_i64().ok_or_else(mismatch)?)
            }
            Schema::LocalTimestampNanos => {
                Avro::LocalTimestampNanos(json.as_i64().ok_or_else(mismatch)?)
            }
            Schema::Duration(_) => {
                let b: [u8; 12] = bytes(json)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(mismatch)?;
                Avro::Duration(apache_avro::Duration::from(b))
            }
            Schema::Ref { .. } => unreachable!("resolved above"),
        })
    }

    /// A field's default: for a union, Avro's rule is that it is of the first branch.
    fn default_value(&self, default: &Json, schema: &Schema, at: &str) -> anyhow::Result<Avro> {
        if let Schema::Union(union) = self.resolve(schema)? {
            if let Some(first) = union.variants().first() {
                if let Ok(value) = self.to_avro(default, first, at) {
                    return Ok(Avro::Union(0, Box::new(value)));
                }
            }
            return self.union_value(default, union, at);
        }
        self.to_avro(default, schema, at)
    }

    fn union_value(&self, json: &Json, union: &UnionSchema, at: &str) -> anyhow::Result<Avro> {
        let variants = union.variants();
        // Avro's JSON encoding: {"<branch name>": value}.
        if let Json::Object(object) = json {
            if object.len() == 1 {
                let (key, inner) = object.iter().next().expect("one entry");
                for (i, variant) in variants.iter().enumerate() {
                    if branch_names(variant).iter().any(|n| n == key) {
                        if let Ok(value) = self.to_avro(inner, variant, at) {
                            return Ok(Avro::Union(i as u32, Box::new(value)));
                        }
                    }
                }
            }
        }
        for (i, variant) in variants.iter().enumerate() {
            if let Ok(value) = self.to_avro(json, variant, at) {
                return Ok(Avro::Union(i as u32, Box::new(value)));
            }
        }
        bail!(
            "{}: {} fits no branch of the union {}",
            if at.is_empty() { "the value" } else { at },
            short(json),
            describe(&Schema::Union(union.clone()))
        )
    }
}

/// The names a union branch goes by in Avro's JSON encoding: its type name, or for a named
/// type its full and its short name.
fn branch_names(schema: &Schema) -> Vec<String> {
    if let Some(name) = schema.name() {
        return vec![name.fullname(None), name.name().to_owned()];
    }
    if let Schema::Ref { name } = schema {
        return vec![name.fullname(None), name.name().to_owned()];
    }
    vec![describe(schema)]
}

/// A schema's type in a few words, for errors and union branch names.
fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Bytes => "bytes".into(),
        Schema::String => "string".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(u) => format!(
            "[{}]",
            u.variants()
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Schema::Record(_) | Schema::Enum(_) | Schema::Fixed(_) | Schema::Ref { .. } => schema
            .name()
            .map(|n| n.fullname(None))
            .or_else(|| match schema {
                Schema::Ref { name } => Some(name.fullname(None)),
                _ => None,
            })
            .unwrap_or_default(),
        Schema::Decimal(_) | Schema::BigDecimal => "decimal".into(),
        Schema::Uuid(_) => "uuid".into(),
        Schema::Date => "date".into(),
        Schema::TimeMillis => "time-millis".into(),
        Schema::TimeMicros => "time-micros".into(),
        Schema::TimestampMillis => "timestamp-millis".into(),
        Schema::TimestampMicros => "timestamp-micros".into(),
        Schema::TimestampNanos => "timestamp-nanos".into(),
        Schema::LocalTimestampMillis => "local-timestamp-millis".into(),
        Schema::LocalTimestampMicros => "local-timestamp-micros".into(),
        Schema::LocalTimestampNanos => "local-timestamp-nanos".into(),
        Schema::Duration(_) => "duration".into(),
    }
}

fn short(json: &Json) -> String {
    let text = json.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn int(json: &Json) -> Option<i32> {
    json.as_i64().and_then(|n| i32::try_from(n).ok())
}

fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Avro's JSON form of bytes: a string of code points U+0000..U+00FF.
fn bytes(json: &Json) -> Option<Vec<u8>> {
    json.as_str()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

fn bytes_text(bytes: &[u8]) -> Json {
    Json::String(bytes.iter().map(|&b| char::from(b)).collect())
}

fn float_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// A decoded Avro value as plain JSON (see the module's doc).
pub fn to_json(value: &Avro) -> Json {
    match value {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => Json::Bool(*b),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => Json::from(*n),
        Avro::Long(n)
        | Avro::TimeMicros(n)
        | Avro::TimestampMillis(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampNanos(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampNanos(n) => Json::from(*n),
        // Through its shortest decimal text, so 0.1f prints as 0.1.
        Avro::Float(x) => match x.to_string().parse::<f64>() {
            Ok(x) => float_json(x),
            Err(_) => float_json(*x as f64),
        },
        Avro::Double(x) => float_json(*x),
        Avro::Bytes(b) | Avro::Fixed(_, b) => bytes_text(b),
        Avro::String(s) => Json::String(s.clone()),
        Avro::Enum(_, symbol) => Json::String(symbol.clone()),
        Avro::Union(_, inner) => to_json(inner),
        Avro::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Avro::Map(entries) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&entries[k])))
                    .collect::<Map<_, _>>(),
            )
        }
        Avro::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Avro::Decimal(d) => match Vec::<u8>::try_from(d) {
            Ok(b) => bytes_text(&b),
            Err(_) => Json::Null,
        },
        Avro::BigDecimal(d) => Json::String(d.to_string()),
        Avro::Duration(d) => bytes_text(&<[u8; 12]>::from(*d)),
        Avro::Uuid(u) => Json::String(u.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Schema
// ---------------------------------------------------------------------------------------------

pub struct JsonCodec {
    validator: jsonschema::Validator,
}

impl JsonCodec {
    /// `references`: (name, schema text); each is reachable from `$ref` by its name, as
    /// Confluent's serializers resolve them.
    pub fn new(text: &str, references: &[(String, String)]) -> anyhow::Result<JsonCodec> {
        let schema: Json = serde_json::from_str(text).context("the JSON schema is not JSON")?;
        let mut options = jsonschema::options();
        for (name, reference) in references {
            let contents: Json = serde_json::from_str(reference)
                .with_context(|| format!("the referenced schema {name} is not JSON"))?;
            options =
                options.with_resource(name.clone(), jsonschema::Resource::from_contents(contents));
        }
        let validator = options
            .build(&schema)
            .map_err(|e| anyhow!("invalid JSON schema: {e}"))?;
        Ok(JsonCodec { validator })
    }

    pub fn encode(&self, value: &Json) -> anyhow::Result<Vec<u8>> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(value)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if !errors.is_empty() {
            bail!(
                "the value does not match the JSON schema: {}",
                errors.join("; ")
            );
        }
        Ok(serde_json::to_vec(value)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas from the registry
// ---------------------------------------------------------------------------------------------

/// Writer schemas fetched from the registry, cached by id.
pub struct SchemaCache {
    client: RegistryClient,
    by_id: HashMap<u32, Arc<Codec>>,
}

impl SchemaCache {
    pub fn new(client: RegistryClient) -> Self {
        Self {
            client,
            by_id: HashMap::new(),
        }
    }

    /// The writer schema with this id.
    pub async fn by_id(&mut self, id: u32) -> anyhow::Result<Arc<Codec>> {
        if let Some(codec) = self.by_id.get(&id) {
            return Ok(codec.clone());
        }
        let record = self
            .client
            .get(&format!("/schemas/ids/{id}"))
            .await
            .with_context(|| format!("fetching schema {id}"))?;
        let codec = Arc::new(
            self.codec(&record)
                .await
                .with_context(|| format!("schema {id}"))?,
        );
        self.by_id.insert(id, codec.clone());
        Ok(codec)
    }

    /// The subject's latest version: its id and schema.
    pub async fn latest(&mut self, subject: &str) -> anyhow::Result<(u32, Arc<Codec>)> {
        let record = self
            .client
            .get(&format!("/subjects/{}/versions/latest", segment(subject)))
            .await
            .with_context(|| format!("fetching the latest schema of subject {subject}"))?;
        let id = record
            .get("id")
            .and_then(Json::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| anyhow!("the registry's answer has no id: {record}"))?;
        if let Some(codec) = self.by_id.get(&id) {
            return Ok((id, codec.clone()));
        }
        let codec = Arc::new(
            self.codec(&record)
                .await
                .with_context(|| format!("subject {subject}'s schema {id}"))?,
        );
        self.by_id.insert(id, codec.clone());
        Ok((id, codec))
    }

    /// A record with `schema`, `schemaType` and `references` as a codec.
    async fn codec(&self, record: &Json) -> anyhow::Result<Codec> {
        let kind = SchemaKind::from_field(record.get("schemaType"))?;
        let text = record
            .get("schema")
            .and_then(Json::as_str)
            .ok_or_else(|| anyhow!("the registry's answer has no schema: {record}"))?;
        let mut references = Vec::new();
        if kind != SchemaKind::Protobuf {
            let mut seen = Vec::new();
            self.references(record, &mut references, &mut seen).await?;
        }
        Codec::new(kind, text, &references)
    }

    /// The schemas `record` references, transitively, dependencies first, as (name, text).
    async fn references(
        &self,
        record: &Json,
        out: &mut Vec<(String, String)>,
        seen: &mut Vec<(String, i64)>,
    ) -> anyhow::Result<()> {
        let Some(references) = record.get("references").and_then(Json::as_array) else {
            return Ok(());
        };
        for reference in references {
            let name = reference.get("name").and_then(Json::as_str).unwrap_or("");
            let subject = reference
                .get("subject")
                .and_then(Json::as_str)
                .ok_or_else(|| anyhow!("a reference without a subject: {reference}"))?;
            let version = reference
                .get("version")
                .and_then(Json::as_i64)
                .ok_or_else(|| anyhow!("a reference without a version: {reference}"))?;
            let key = (subject.to_owned(), version);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let referenced = self
                .client
                .get(&format!(
                    "/subjects/{}/versions/{version}",
                    segment(subject)
                ))
                .await
                .with_context(|| format!("fetching the reference {subject} version {version}"))?;
            Box::pin(self.references(&referenced, out, seen)).await?;
            let text = referenced
                .get("schema")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    anyhow!("the reference {subject} version {version} has no schema")
                })?;
            out.push((name.to_owned(), text.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = r#"{"type":"record","name":"User","namespace":"com.example","fields":[
        {"name":"name","type":"string"},
        {"name":"age","type":"int"},
        {"name":"email","type":["null","string"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"},
        {"name":"score","type":"double","default":0.5}]}"#;

    fn avro(schema: &str) -> AvroCodec {
        AvroCodec::new(schema, []).unwrap()
    }

    #[test]
    fn frames_carry_the_magic_byte_and_a_big_endian_id() {
        let framed = frame(0x0102_0304, b"xyz");
        assert_eq!(framed, b"\x00\x01\x02\x03\x04xyz");
        assert_eq!(unframe(&framed), Some((0x0102_0304, &b"xyz"[..])));
        assert_eq!(unframe(b"\x00\x00\x00\x00\x07"), Some((7, &b""[..])));
        // Not the wire format: too short, or another first byte.
        assert_eq!(unframe(b"\x00\x00\x00\x01"), None);
        assert_eq!(unframe(b"{\"a\":1}"), None);
    }

    #[test]
    fn avro_records_encode_as_avro_binary() {
        let codec = avro(USER);
        let bytes = codec
            .encode(&json!({"name": "ab", "age": -2, "email": "e", "tags": ["x"], "kind": "B", "score": 1.0}))
            .unwrap();
        let mut expected = vec![4, b'a', b'b', 3, 2, 2, b'e', 2, 2, b'x', 0, 2];
        expected.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(bytes, expected);
        // Defaults fill missing fields; null takes the union's null branch.
        let bytes = codec.encode(&json!({"name": "", "age": 150})).unwrap();
        let mut expected = vec![0, 0xac, 0x02, 0, 0, 0];
        expected.extend_from_slice(&0.5f64.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(
            codec.decode(&bytes).unwrap(),
            json!({"name": "", "age": 150, "email": null, "tags": [], "kind": "A", "score": 0.5})
        );
    }

    #[test]
    fn avro_unions_take_plain_or_tagged_json() {
        let codec = avro(
            r#"["null","long","string",{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}]"#,
        );
        assert_eq!(codec.encode(&json!(null)).unwrap(), vec![0]);
        assert_eq!(codec.encode(&json!(3)).unwrap(), vec![2, 6]);
        assert_eq!(codec.encode(&json!("s")).unwrap(), vec![4, 2, b's']);
        assert_eq!(
            codec.encode(&json!({"string": "s"})).unwrap(),
            vec![4, 2, b's']
        );
        assert_eq!(codec.encode(&json!({"a": 1})).unwrap(), vec![6, 2]);
        assert_eq!(codec.encode(&json!({"R": {"a": 1}})).unwrap(), vec![6, 2]);
        assert_eq!(codec.decode(&[6, 2]).unwrap(), json!({"a": 1}));
        assert_eq!(codec.decode(&[2, 6]).unwrap(), json!(3));
        let err = codec.encode(&json!(1.5)).unwrap_err().to_string();
        assert!(err.contains("fits no branch of the union"), "{err}");
    }

    #[test]
    fn avro_values_that_do_not_fit_are_refused_with_where() {
        let codec = avro(USER);
        let err = |v: Json| codec.encode(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"age": 1})),
            "name: missing, and the field has no default"
        );
        assert_eq!(
            err(json!({"name": "n", "age": "x"})),
            "age: \"x\" is not int"
        );
        assert_eq!(
            err(json!({"name": "n", "age": 1, "kind": "C"})),
            "kind: \"C\" is not com.example.Kind"
        );
        assert_eq!(
            err(json!({"name": "n", "age": 1, "extra": 1})),
            "the value: record com.example.User has no field 'extra'"
        );
        assert_eq!(
            err(json!({"name": "n", "age": 3_000_000_000i64})),
            "age: 3000000000 is not int"
        );
        assert_eq!(err(json!([1])), "the value: [1] is not com.example.User");
    }

    #[test]
    fn avro_bytes_fixed_and_floats_round_trip() {
        let codec = avro(
            r#"{"type":"record","name":"B","fields":[
            {"name":"b","type":"bytes"},
            {"name":"f","type":{"type":"fixed","name":"F","size":2}},
            {"name":"x","type":"float"},
            {"name":"d","type":"double"},
            {"name":"m","type":{"type":"map","values":"long"}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}},
            {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#,
        );
        let value = json!({"b": "\u{0}\u{ff}", "f": "ab", "x": 0.1, "d": "NaN", "m": {"b": 2, "a": 1},
                           "u": "6f1c4a9e-2d1b-4c55-9a3e-0f1e2d3c4b5a", "t": 1700000000000i64});
        let bytes = codec.encode(&value).unwrap();
        assert_eq!(&bytes[..7], &[4, 0, 0xff, b'a', b'b', 0xcd, 0xcc]);
        assert_eq!(
            codec.decode(&bytes).unwrap(),
            json!({"b": "\u{0}\u{ff}", "f": "ab", "x": 0.1, "d": "NaN",
            "m": {"a": 1, "b": 2}, "u": "6f1c4a9e-2d1b-4c55-9a3e-0f1e2d3c4b5a", "t": 1700000000000i64})
        );
        assert!(codec.decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(codec.decode(&longer).is_err());
    }

    #[test]
    fn avro_references_resolve_named_types() {
        let address = r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#;
        let codec = AvroCodec::new(
            r#"{"type":"record","name":"Person","namespace":"com.example","fields":[{"name":"home","type":"com.example.Address"},{"name":"work","type":["null","Address"],"default":null}]}"#,
            [address],
        )
        .unwrap();
        let bytes = codec
            .encode(&json!({"home": {"city": "Oslo"}, "work": {"city": "Rome"}}))
            .unwrap();
        assert_eq!(bytes, b"\x08Oslo\x02\x08Rome");
        assert_eq!(
            codec.decode(&bytes).unwrap(),
            json!({"home": {"city": "Oslo"}, "work": {"city": "Rome"}})
        );
    }

    #[test]
    fn json_schema_values_are_validated_and_written_as_json() {
        let codec = Codec::new(
            SchemaKind::Json,
            r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(
            codec.encode(&json!({"id": 1, "name": "a"})).unwrap(),
            br#"{"id":1,"name":"a"}"#
        );
        let err = codec.encode(&json!({"id": "x"})).unwrap_err().to_string();
        assert!(
            err.starts_with("the value does not match the JSON schema: /id: "),
            "{err}"
        );
        assert!(codec.encode(&json!({"name": "a"})).is_err());
        // Payloads print as they are; as JSON values they are parsed.
        let decoded = codec.decode(br#"{"id": 1.50}"#).unwrap();
        assert_eq!(decoded.text(), r#"{"id": 1.50}"#);
        assert_eq!(decoded.json(), json!({"id": 1.5}));
        assert_eq!(codec.decode(b"x").unwrap().json(), json!("x"));
    }

    #[test]
    fn protobuf_is_noted_not_decoded() {
        let codec = Codec::Protobuf;
        assert_eq!(
            codec.decode(b"\x00\x08\x01").unwrap().text(),
            "<protobuf, 3 bytes: decoding Protobuf is not supported yet>"
        );
        assert!(codec.encode(&json!({})).is_err());
    }
}
