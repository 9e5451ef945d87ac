//! Avro: values written as plain JSON, one value per line, encoded as Avro's binary encoding
//! under the writer schema.
//!
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
//! Decoding gives the same forms (unions unwrapped), so what is decoded can be encoded again.

use std::collections::HashMap;

use apache_avro::schema::{ResolvedSchema, UnionSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::{Map, Number, Value as Json};

use crate::error::{chain, Result, SerdeError};

/// A value that does not fit the schema, as an error.
macro_rules! value_error {
    ($($arg:tt)*) => { SerdeError::Value(format!($($arg)*)) };
}

macro_rules! bail_value {
    ($($arg:tt)*) => { return Err(value_error!($($arg)*)) };
}

pub struct AvroCodec {
    schema: Schema,
    /// The referenced schemas, dependencies first.
    references: Vec<Schema>,
    /// Every named type by full name, for `Ref`s.
    names: HashMap<String, Schema>,
}

impl AvroCodec {
    pub fn new<'a>(text: &str, references: impl IntoIterator<Item = &'a str>) -> Result<AvroCodec> {
        let references: Vec<&str> = references.into_iter().collect();
        let (schema, references) = if references.is_empty() {
            (Schema::parse_str(text).map_err(schema_error)?, Vec::new())
        } else {
            Schema::parse_str_with_list(text, references).map_err(schema_error)?
        };
        let names = {
            let resolved = ResolvedSchema::new_with_schemata(Self::all(&schema, &references))
                .map_err(schema_error)?;
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

    /// The full name of a record schema (what Confluent's record name strategies use).
    pub fn record_name(&self) -> Option<String> {
        match &self.schema {
            Schema::Record(record) => Some(record.name.fullname(None)),
            _ => None,
        }
    }

    fn all<'a>(schema: &'a Schema, references: &'a [Schema]) -> Vec<&'a Schema> {
        references.iter().chain(std::iter::once(schema)).collect()
    }

    pub fn encode(&self, value: &Json) -> Result<Vec<u8>> {
        let avro = self.to_avro(value, &self.schema, "")?;
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema)
            .schemata(Self::all(&self.schema, &self.references))
            .map_err(schema_error)?
            .build()
            .map_err(schema_error)?;
        writer
            .write_value_to_vec(avro)
            .map_err(|e| value_error!("the value does not fit the schema: {e}"))
    }

    pub fn decode(&self, payload: &[u8]) -> Result<Json> {
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&self.schema)
            .writer_schemata(Self::all(&self.schema, &self.references))
            .map_err(schema_error)?
            .build()
            .map_err(schema_error)?;
        let mut input = payload;
        let value = reader
            .read_value(&mut input)
            .map_err(|e| SerdeError::Payload(format!("not Avro of the writer schema: {e}")))?;
        if !input.is_empty() {
            return Err(SerdeError::Payload(format!(
                "{} bytes left after the Avro value of the writer schema",
                input.len()
            )));
        }
        Ok(to_json(&value))
    }

    fn resolve<'s>(&'s self, schema: &'s Schema) -> Result<&'s Schema> {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(&name.fullname(None))
                .ok_or_else(|| SerdeError::Schema(format!("unknown type {}", name.fullname(None)))),
            other => Ok(other),
        }
    }

    /// The JSON value under `schema` as an Avro value; `at` names where, for errors.
    fn to_avro(&self, json: &Json, schema: &Schema, at: &str) -> Result<Avro> {
        let schema = self.resolve(schema)?;
        let mismatch = || {
            value_error!(
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
                        .collect::<Result<_>>()?,
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
                        .collect::<Result<_>>()?,
                )
            }
            Schema::Record(record) => {
                let object = json.as_object().ok_or_else(mismatch)?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !record.fields.iter().any(|f| &f.name == *k))
                {
                    bail_value!(
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
                        (None, None) => {
                            bail_value!("{path}: missing, and the field has no default")
                        }
                    };
                    fields.push((field.name.clone(), value));
                }
                Avro::Record(fields)
            }
            Schema::Union(union) => self.union_value(json, union, at)?,
            Schema::Decimal(_) => Avro::Decimal(apache_avro::Decimal::from(
                bytes(json).ok_or_else(mismatch)?,
            )),
            Schema::BigDecimal => bail_value!("{at}: big-decimal values are not supported"),
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
    fn default_value(&self, default: &Json, schema: &Schema, at: &str) -> Result<Avro> {
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

    fn union_value(&self, json: &Json, union: &UnionSchema, at: &str) -> Result<Avro> {
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
        bail_value!(
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

fn schema_error(error: apache_avro::Error) -> SerdeError {
    SerdeError::Schema(chain(&error))
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
}
