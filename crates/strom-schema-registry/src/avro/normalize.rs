//! Confluent's `AvroSchemaUtils.toNormalizedString`: the form `normalize=true` parses again.

use std::collections::HashSet;

use super::json::{java_str_cmp, write_json_str, Json};
use super::model::{tag, Field, Kind, Order, Props, Tag, Types, S};
use super::AvroSchema;

/// A logical type Java Avro recognizes and accepts on its schema.
struct Logical {
    name: &'static str,
    /// precision and scale of a decimal
    decimal: Option<(i32, i32)>,
}

fn logical_type(types: &Types, s: &S) -> Option<Logical> {
    let (t, props) = match s {
        S::Prim(p, props) => (Tag::of_prim(*p), props),
        S::Array(_, props) => (Tag::Array, props),
        S::Map(_, props) => (Tag::Map, props),
        S::Union(_) => return None,
        S::Ref(full) => {
            let named = types.get(full)?;
            (named.type_tag(), &named.props)
        }
    };
    let prop = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let name = prop("logicalType")?.text()?;
    for incompatible in [
        "avro.java.string",
        "java-class",
        "java-key-class",
        "java-element-class",
    ] {
        if prop(incompatible).and_then(Json::text).is_some() {
            return None;
        }
    }
    let fixed_size = match s {
        S::Ref(full) => match types.get(full).map(|n| &n.kind) {
            Some(Kind::Fixed { size }) => Some(*size),
            _ => None,
        },
        _ => None,
    };
    let (name, valid): (&'static str, bool) = match name {
        "decimal" => {
            let int_prop = |key: &str| match prop(key) {
                Some(Json::Int(n)) => i32::try_from(*n).ok().map(Some),
                Some(_) => None,
                None => Some(None),
            };
            let precision = int_prop("precision")??;
            let scale = int_prop("scale")?.unwrap_or(0);
            let max_precision: i64 = match (t, fixed_size) {
                (Tag::Bytes, _) => i32::MAX as i64,
                (Tag::Fixed, Some(size)) => {
                    (2f64.log10() * (8.0 * size as f64 - 1.0)).floor().round() as i64
                }
                _ => return None,
            };
            if precision <= 0 || precision as i64 > max_precision || scale < 0 || scale > precision
            {
                return None;
            }
            return Some(Logical {
                name: "decimal",
                decimal: Some((precision, scale)),
            });
        }
        "big-decimal" => ("big-decimal", t == Tag::Bytes),
        "duration" => ("duration", t == Tag::Fixed && fixed_size == Some(12)),
        "uuid" => (
            "uuid",
            t == Tag::String || (t == Tag::Fixed && fixed_size == Some(16)),
        ),
        "date" => ("date", t == Tag::Int),
        "time-millis" => ("time-millis", t == Tag::Int),
        "time-micros" => ("time-micros", t == Tag::Long),
        "timestamp-millis" => ("timestamp-millis", t == Tag::Long),
        "timestamp-micros" => ("timestamp-micros", t == Tag::Long),
        "timestamp-nanos" => ("timestamp-nanos", t == Tag::Long),
        "local-timestamp-millis" => ("local-timestamp-millis", t == Tag::Long),
        "local-timestamp-micros" => ("local-timestamp-micros", t == Tag::Long),
        "local-timestamp-nanos" => ("local-timestamp-nanos", t == Tag::Long),
        _ => return None,
    };
    valid.then_some(Logical {
        name,
        decimal: None,
    })
}

/// Jackson/Avro's `JacksonUtils.toObject(node, schema)` followed by Confluent's
/// `toJsonNode`: a default as the Java object its schema makes of it (`None` for Java's null,
/// which drops the default).
fn default_object(types: &Types, value: &Json, s: Option<&S>) -> Option<Json> {
    let s = match s {
        Some(S::Union(branches)) => branches.first(),
        other => other,
    };
    let t = s.map(|s| tag(types, s));
    match value {
        Json::Null => Some(Json::Null),
        Json::Bool(b) => Some(Json::Bool(*b)),
        Json::Int(n) => match t {
            None | Some(Tag::Int) | Some(Tag::Long) => Some(Json::Int(*n)),
            Some(Tag::Float) => Some(Json::Float(*n as f64 as f32)),
            Some(Tag::Double) => Some(Json::Double(*n as f64)),
            _ => None,
        },
        Json::Double(d) => match t {
            Some(Tag::Double) | None => Some(Json::Double(*d)),
            Some(Tag::Float) => Some(Json::Float(*d as f32)),
            _ => None,
        },
        Json::Float(f) => match t {
            Some(Tag::Double) => Some(Json::Double(*f as f64)),
            Some(Tag::Float) | None => Some(Json::Float(*f)),
            _ => None,
        },
        Json::BigInt(_) => None,
        Json::Str(text) => match t {
            None | Some(Tag::String) | Some(Tag::Enum) => Some(Json::Str(text.clone())),
            Some(Tag::Bytes) | Some(Tag::Fixed) => Some(Json::Str(
                text.chars()
                    .map(|c| if (c as u32) > 0xFF { '?' } else { c })
                    .collect(),
            )),
            _ => None,
        },
        Json::Arr(items) => {
            let element = match s {
                None => None,
                Some(S::Array(items, _)) => Some(items.as_ref()),
                // Java fails here ("Not an array"); the default is dropped instead.
                Some(_) => return None,
            };
            Some(Json::Arr(
                items
                    .iter()
                    .map(|i| default_object(types, i, element).unwrap_or(Json::Null))
                    .collect(),
            ))
        }
        Json::Obj(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (key, v) in entries {
                let field_schema = match s {
                    Some(S::Map(values, _)) => Some(values.as_ref()),
                    Some(S::Ref(full)) => match types.get(full).map(|n| &n.kind) {
                        Some(Kind::Record { fields, .. }) => {
                            fields.iter().find(|f| &f.name == key).map(|f| &f.ty)
                        }
                        _ => None,
                    },
                    _ => None,
                };
                out.push((
                    key.clone(),
                    default_object(types, v, field_schema).unwrap_or(Json::Null),
                ));
            }
            Some(Json::Obj(out))
        }
    }
}

struct Normalizer<'a> {
    types: &'a Types,
    env: HashSet<String>,
    out: String,
}

impl Normalizer<'_> {
    pub(super) fn schema(&mut self, s: &S) {
        let lt = logical_type(self.types, s);
        match s {
            S::Union(branches) => {
                self.out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(branch);
                }
                self.out.push(']');
            }
            S::Array(inner, props) | S::Map(inner, props) => {
                let (ty, key) = match s {
                    S::Array(..) => ("array", "items"),
                    _ => ("map", "values"),
                };
                self.out
                    .push_str(&format!("{{\"type\":\"{ty}\",\"{key}\":"));
                self.schema(inner);
                self.logical(&lt);
                self.simple_props(props);
                self.out.push('}');
            }
            S::Prim(p, props) => {
                if lt.is_some() || !props.is_empty() {
                    self.out.push_str("{\"type\":");
                    write_json_str(&mut self.out, p.name());
                    self.logical(&lt);
                    self.simple_props(props);
                    self.out.push('}');
                } else {
                    write_json_str(&mut self.out, p.name());
                }
            }
            S::Ref(full) => {
                let Some(named) = self.types.get(full) else {
                    write_json_str(&mut self.out, full);
                    return;
                };
                if !self.env.insert(full.clone()) {
                    write_json_str(&mut self.out, full);
                    return;
                }
                self.out.push_str("{\"name\":");
                write_json_str(&mut self.out, full);
                match &named.kind {
                    Kind::Enum { symbols, .. } => {
                        self.out.push_str(",\"type\":\"enum\",\"symbols\":");
                        Json::Arr(symbols.iter().cloned().map(Json::Str).collect())
                            .write(&mut self.out);
                    }
                    Kind::Fixed { size } => {
                        self.out
                            .push_str(&format!(",\"type\":\"fixed\",\"size\":{size}"));
                    }
                    Kind::Record { fields, .. } => {
                        self.out.push_str(",\"type\":\"record\",\"fields\":[");
                        for (i, field) in fields.iter().enumerate() {
                            if i > 0 {
                                self.out.push(',');
                            }
                            self.field(field);
                        }
                        self.out.push(']');
                    }
                }
                self.logical(&lt);
                if let Some(doc) = named.doc.as_deref().filter(|d| !d.is_empty()) {
                    self.out.push_str(",\"doc\":");
                    write_json_str(&mut self.out, doc);
                }
                let aliases = named.java_aliases();
                if !aliases.is_empty() {
                    self.sorted_strings(aliases);
                }
                if let Kind::Enum {
                    default: Some(default),
                    ..
                } = &named.kind
                {
                    self.out.push_str(",\"default\":");
                    write_json_str(&mut self.out, default);
                }
                self.simple_props(&named.props);
                self.out.push('}');
            }
        }
    }

    pub(super) fn field(&mut self, field: &Field) {
        self.out.push_str("{\"name\":");
        write_json_str(&mut self.out, &field.name);
        self.out.push_str(",\"type\":");
        self.schema(&field.ty);
        let order = match field.order {
            Order::Ascending => "ASCENDING",
            Order::Descending => "DESCENDING",
            Order::Ignore => "IGNORE",
        };
        self.out.push_str(&format!(",\"order\":\"{order}\""));
        if let Some(doc) = &field.doc {
            self.out.push_str(",\"doc\":");
            write_json_str(&mut self.out, doc);
        }
        if !field.aliases.is_empty() {
            self.sorted_strings(field.aliases.clone());
        }
        if let Some(default) = field
            .default
            .as_ref()
            .and_then(|d| default_object(self.types, d, Some(&field.ty)))
        {
            self.out.push_str(",\"default\":");
            default.sorted().write(&mut self.out);
        }
        self.simple_props(&field.props);
        self.out.push('}');
    }

    fn sorted_strings(&mut self, mut items: Vec<String>) {
        items.sort_by(|a, b| java_str_cmp(a, b));
        items.dedup();
        self.out.push_str(",\"aliases\":");
        Json::Arr(items.into_iter().map(Json::Str).collect()).write(&mut self.out);
    }

    fn logical(&mut self, lt: &Option<Logical>) {
        if let Some(lt) = lt {
            self.out.push_str(",\"logicalType\":");
            write_json_str(&mut self.out, lt.name);
            if let Some((precision, scale)) = lt.decimal {
                self.out.push_str(&format!(",\"precision\":{precision}"));
                if scale != 0 {
                    self.out.push_str(&format!(",\"scale\":{scale}"));
                }
            }
        }
    }

    fn simple_props(&mut self, props: &Props) {
        let mut sorted: Vec<&(String, Json)> = props.iter().collect();
        sorted.sort_by(|a, b| java_str_cmp(&a.0, &b.0));
        for (key, value) in sorted {
            self.out.push(',');
            write_json_str(&mut self.out, key);
            self.out.push(':');
            value.sorted().write(&mut self.out);
        }
    }
}

impl AvroSchema {
    /// Confluent's `toNormalizedString`: the text `normalize()` parses again.
    pub(super) fn normalized_form(&self) -> String {
        let mut normalizer = Normalizer {
            types: &self.types,
            env: self.known.iter().cloned().collect(),
            out: String::new(),
        };
        normalizer.schema(&self.root);
        normalizer.out
    }
}

#[cfg(test)]
mod tests {
    use crate::avro::{parse, USER};

    #[test]
    fn normalization_sorts_properties_and_aliases_and_converts_defaults() {
        let text = r#"{"type":"record","name":"R","namespace":"n","doc":"","aliases":["Z","A"],
            "zz":1,"aa":{"y":1,"x":2},"fields":[
            {"name":"f","type":{"type":"int","b":1,"logicalType":"date","a":2},"default":1,"aliases":["q","p"]},
            {"name":"g","type":"float","default":0.123456789},
            {"name":"d","type":"double","default":2},
            {"name":"h","type":["null","int"],"default":1},
            {"name":"k","type":["null","int"],"default":null,"doc":"","y":{"b":[{"d":1,"c":2}]}}]}"#;
        let schema = parse(text, &[]).unwrap();
        assert_eq!(
            schema.normalized_form(),
            concat!(
                r#"{"name":"n.R","type":"record","fields":["#,
                r#"{"name":"f","type":{"type":"int","logicalType":"date","a":2,"b":1,"logicalType":"date"},"order":"ASCENDING","aliases":["p","q"],"default":1},"#,
                r#"{"name":"g","type":"float","order":"ASCENDING","default":0.12345679},"#,
                r#"{"name":"d","type":"double","order":"ASCENDING","default":2.0},"#,
                r#"{"name":"h","type":["null","int"],"order":"ASCENDING"},"#,
                r#"{"name":"k","type":["null","int"],"order":"ASCENDING","doc":"","default":null,"y":{"b":[{"c":2,"d":1}]}}],"#,
                r#""aliases":["n.A","n.Z"],"aa":{"x":2,"y":1},"zz":1}"#
            )
        );
        assert_eq!(
            schema.normalized(),
            concat!(
                r#"{"type":"record","name":"R","namespace":"n","fields":["#,
                r#"{"name":"f","type":{"type":"int","logicalType":"date","a":2,"b":1},"default":1,"aliases":["p","q"]},"#,
                r#"{"name":"g","type":"float","default":0.12345679},"#,
                r#"{"name":"d","type":"double","default":2.0},"#,
                r#"{"name":"h","type":["null","int"]},"#,
                r#"{"name":"k","type":["null","int"],"doc":"","default":null,"y":{"b":[{"c":2,"d":1}]}}],"#,
                r#""aa":{"x":2,"y":1},"zz":1,"aliases":["A","Z"]}"#
            )
        );
        // decimal: logicalType, precision and scale first
        assert_eq!(
            parse(
                r#"{"type":"bytes","scale":2,"x":0,"precision":4,"logicalType":"decimal"}"#,
                &[]
            )
            .unwrap()
            .normalized(),
            r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2,"x":0}"#
        );
        // a normalized text is its own normalization; references stay names
        let address = r#"{"type":"record","name":"Address","namespace":"com.x","fields":[{"name":"s","type":"string"}]}"#;
        let person = parse(
            r#"{"namespace":"com.x","name":"P","type":"record","fields":[{"type":"Address","name":"a"}]}"#,
            &[address],
        )
        .unwrap();
        let normalized = person.normalized();
        assert_eq!(
            normalized,
            r#"{"type":"record","name":"P","namespace":"com.x","fields":[{"name":"a","type":"Address"}]}"#
        );
        assert_eq!(
            parse(&normalized, &[address]).unwrap().normalized(),
            normalized
        );
        assert_eq!(
            parse(USER, &[]).unwrap().normalized(),
            concat!(
                r#"{"type":"record","name":"User","namespace":"com.example","doc":"A user","fields":["#,
                r#"{"name":"id","type":"long","doc":"the id"},"#,
                r#"{"name":"name","type":{"type":"string","avro.java.string":"String"},"default":"x","order":"descending","aliases":["fullName"],"tag":"pii"},"#,
                r#"{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2},"default":"\u0000"},"#,
                r#"{"name":"ratio","type":"double","default":1.0},"#,
                r#"{"name":"kind","type":{"type":"enum","name":"Kind","doc":"k","symbols":["A","B"],"default":"A"}},"#,
                r#"{"name":"other","type":["null","Kind"],"default":null},"#,
                r#"{"name":"hash","type":{"type":"fixed","name":"Hash","namespace":"com.other","size":16}},"#,
                r#"{"name":"hashes","type":{"type":"array","items":"com.other.Hash"},"default":[]},"#,
                r#"{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"order":"ignore"}"#,
                r#"],"custom":{"a":[true,null,2.5],"b":1},"aliases":["Person","other.Human"]}"#
            )
        );
    }
}
