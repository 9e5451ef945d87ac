//! Java Avro's `Schema.Parser`, with strict names and validated defaults.

use std::collections::HashSet;

use super::json::{read_json, Json};
use super::model::{
    tag, union_branch_name, Field, Kind, Name, Named, Order, Prim, Props, Types, S,
};
use super::printer::schema_to_string;

const SCHEMA_RESERVED: &[&str] = &[
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
];
const ENUM_RESERVED: &[&str] = &[
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
    "default",
];
const FIELD_RESERVED: &[&str] = &["default", "doc", "name", "order", "type", "aliases"];

fn props_of(json: &Json, reserved: &[&str]) -> Props {
    match json {
        Json::Obj(entries) => entries
            .iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// Avro's strict name rule (`NameValidator.STRICT_VALIDATOR`), with its messages.
fn validate_name(name: Option<&str>) -> Result<(), String> {
    let Some(name) = name else {
        return Err("Null name".into());
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("Empty name".into());
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!("Illegal initial character: {name}"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("Illegal character in: {name}"));
    }
    Ok(())
}

pub(super) struct Parser {
    pub(super) types: Types,
    /// Names used before their definition; each must be defined by the end of its text.
    pub(super) pending: Vec<String>,
}

impl Parser {
    pub(super) fn parse_text(&mut self, text: &str) -> Result<S, String> {
        let json = read_json(text)?.ok_or_else(|| "Cannot parse <null> schema".to_string())?;
        let schema = self.parse(&json, None)?;
        for full in std::mem::take(&mut self.pending) {
            if !self.types.contains_key(&full) {
                return Err(format!("Undefined schema: {full}"));
            }
        }
        Ok(schema)
    }

    pub(super) fn find(&mut self, name: &str, space: Option<&str>) -> S {
        if let Some(p) = Prim::from_name(name) {
            return S::Prim(p, Vec::new());
        }
        let full = match space {
            Some(space) if !name.contains('.') => format!("{space}.{name}"),
            _ => name.to_string(),
        };
        if self.types.contains_key(&full) {
            return S::Ref(full);
        }
        if self.types.contains_key(name) {
            return S::Ref(name.to_string());
        }
        self.pending.push(full.clone());
        S::Ref(full)
    }

    fn parse(&mut self, json: &Json, space: Option<&str>) -> Result<S, String> {
        match json {
            Json::Str(name) => Ok(self.find(name, space)),
            Json::Obj(_) => {
                let ty = json
                    .get("type")
                    .and_then(Json::text)
                    .ok_or_else(|| format!("No type: {}", json.to_text()))?;
                if let Some(p) = Prim::from_name(ty) {
                    return Ok(S::Prim(p, props_of(json, SCHEMA_RESERVED)));
                }
                match ty {
                    "record" | "error" => self.parse_record(json, space, ty == "error"),
                    "enum" => self.parse_enum(json, space),
                    "array" => {
                        let items = json.get("items").ok_or_else(|| {
                            format!("Array has no items type: {}", json.to_text())
                        })?;
                        let items = self.parse(items, space)?;
                        Ok(S::Array(Box::new(items), props_of(json, SCHEMA_RESERVED)))
                    }
                    "map" => {
                        let values = json
                            .get("values")
                            .ok_or_else(|| format!("Map has no values type: {}", json.to_text()))?;
                        let values = self.parse(values, space)?;
                        Ok(S::Map(Box::new(values), props_of(json, SCHEMA_RESERVED)))
                    }
                    "fixed" => self.parse_fixed(json, space),
                    other => Ok(self.find(other, space)),
                }
            }
            Json::Arr(items) => {
                let mut branches = Vec::with_capacity(items.len());
                for item in items {
                    branches.push(self.parse(item, space)?);
                }
                let mut seen = HashSet::new();
                for branch in &branches {
                    if matches!(branch, S::Union(_)) {
                        let union = S::Union(branches.clone());
                        return Err(format!(
                            "Nested union: {}",
                            schema_to_string(&self.types, &union)
                        ));
                    }
                    let name = union_branch_name(branch);
                    if !seen.insert(name.clone()) {
                        return Err(format!("Duplicate in union:{name}"));
                    }
                }
                Ok(S::Union(branches))
            }
            other => Err(format!("Schema not yet supported: {}", other.to_text())),
        }
    }

    fn parse_name(json: &Json, space: Option<&str>) -> Result<Name, String> {
        let own_space = json.get("namespace").and_then(Json::text).or(space);
        let name = json
            .get("name")
            .and_then(Json::text)
            .ok_or_else(|| format!("No name in schema: {}", json.to_text()))?;
        let name = Self::make_name(name, own_space)?;
        if Prim::from_name(&name.full()).is_some() {
            return Err(format!(
                "Schemas may not be named after primitives: {}",
                name.full()
            ));
        }
        Ok(name)
    }

    /// Java's `Name(name, space)`: a dotted name carries its own namespace; "" is none.
    fn make_name(name: &str, space: Option<&str>) -> Result<Name, String> {
        let (simple, space) = match name.rfind('.') {
            Some(dot) => (&name[dot + 1..], Some(&name[..dot])),
            None => (name, space),
        };
        validate_name(Some(simple))?;
        Ok(Name {
            name: simple.to_string(),
            space: space.filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    fn parse_aliases(json: &Json) -> Result<Vec<String>, String> {
        let Some(node) = json.get("aliases") else {
            return Ok(Vec::new());
        };
        let Json::Arr(items) = node else {
            return Err(format!("aliases not an array: {}", json.to_text()));
        };
        let mut aliases: Vec<String> = Vec::new();
        for item in items {
            let alias = item
                .text()
                .ok_or_else(|| format!("alias not a string: {}", item.to_text()))?;
            if !aliases.iter().any(|a| a == alias) {
                aliases.push(alias.to_string());
            }
        }
        Ok(aliases)
    }

    fn named_aliases(json: &Json, name: &Name) -> Result<Vec<Name>, String> {
        let mut aliases: Vec<Name> = Vec::new();
        for alias in Self::parse_aliases(json)? {
            let alias = Self::make_name(&alias, name.space.as_deref())?;
            if !aliases.iter().any(|a| a.full() == alias.full()) {
                aliases.push(alias);
            }
        }
        Ok(aliases)
    }

    fn parse_record(&mut self, json: &Json, space: Option<&str>, error: bool) -> Result<S, String> {
        let name = Self::parse_name(json, space)?;
        let doc = json.get("doc").and_then(Json::text).map(str::to_string);
        let Some(Json::Arr(field_nodes)) = json.get("fields") else {
            return Err(format!("Record has no fields: {}", json.to_text()));
        };
        let mut fields: Vec<Field> = Vec::with_capacity(field_nodes.len());
        for node in field_nodes {
            let field = self.parse_field(node, name.space.as_deref())?;
            if let Some(pos) = fields.iter().position(|f| f.name == field.name) {
                return Err(format!(
                    "Duplicate field {} in record {}: {} type:{} pos:{} and {} type:{} pos:{}.",
                    field.name,
                    name.full(),
                    field.name,
                    tag(&self.types, &field.ty).java(),
                    fields.len(),
                    field.name,
                    tag(&self.types, &fields[pos].ty).java(),
                    pos
                ));
            }
            fields.push(field);
        }
        let named = Named {
            props: props_of(json, SCHEMA_RESERVED),
            aliases: Self::named_aliases(json, &name)?,
            name,
            doc,
            kind: Kind::Record { error, fields },
        };
        self.define(named)
    }

    fn parse_field(&mut self, json: &Json, space: Option<&str>) -> Result<Field, String> {
        let name = json
            .get("name")
            .and_then(Json::text)
            .ok_or_else(|| format!("No field name: {}", json.to_text()))?
            .to_string();
        let doc = json.get("doc").and_then(Json::text).map(str::to_string);
        let ty_node = json
            .get("type")
            .ok_or_else(|| format!("No field type: {}", json.to_text()))?;
        let ty = self.parse(ty_node, space)?;
        let order = match json.get("order") {
            None => Order::Ascending,
            Some(node) => match node.text().map(str::to_uppercase).as_deref() {
                Some("ASCENDING") => Order::Ascending,
                Some("DESCENDING") => Order::Descending,
                Some("IGNORE") => Order::Ignore,
                Some(other) => {
                    return Err(format!(
                        "No enum constant org.apache.avro.Schema.Field.Order.{other}"
                    ))
                }
                None => return Err("null".into()),
            },
        };
        let mut default = json.get("default").cloned();
        if let (Some(Json::Str(text)), S::Prim(Prim::Float | Prim::Double, _)) = (&default, &ty) {
            default = Some(Json::Double(java_parse_double(text)?));
        }
        validate_name(Some(&name))?;
        if let Some(value) = &default {
            if !is_valid_default(&self.types, &ty, value) {
                return Err(format!(
                    "Invalid default for field {name}: {} not a {}",
                    value.to_text(),
                    schema_to_string(&self.types, &ty)
                ));
            }
        }
        Ok(Field {
            name,
            ty,
            doc,
            default,
            order,
            aliases: Self::parse_aliases(json)?,
            props: props_of(json, FIELD_RESERVED),
        })
    }

    fn parse_enum(&mut self, json: &Json, space: Option<&str>) -> Result<S, String> {
        let name = Self::parse_name(json, space)?;
        let doc = json.get("doc").and_then(Json::text).map(str::to_string);
        let Some(Json::Arr(symbol_nodes)) = json.get("symbols") else {
            return Err(format!("Enum has no symbols: {}", json.to_text()));
        };
        let mut symbols: Vec<String> = Vec::with_capacity(symbol_nodes.len());
        for node in symbol_nodes {
            let symbol = node.text();
            validate_name(symbol)?;
            let symbol = symbol.unwrap_or_default().to_string();
            if symbols.contains(&symbol) {
                return Err(format!("Duplicate enum symbol: {symbol}"));
            }
            symbols.push(symbol);
        }
        let default = json.get("default").and_then(Json::text).map(str::to_string);
        if let Some(default) = &default {
            if !symbols.contains(default) {
                return Err(format!(
                    "The Enum Default: {default} is not in the enum symbol set: [{}]",
                    symbols.join(", ")
                ));
            }
        }
        let named = Named {
            props: props_of(json, ENUM_RESERVED),
            aliases: Self::named_aliases(json, &name)?,
            name,
            doc,
            kind: Kind::Enum { symbols, default },
        };
        self.define(named)
    }

    fn parse_fixed(&mut self, json: &Json, space: Option<&str>) -> Result<S, String> {
        let name = Self::parse_name(json, space)?;
        let doc = json.get("doc").and_then(Json::text).map(str::to_string);
        let size = match json.get("size") {
            Some(Json::Int(n)) if i32::try_from(*n).is_ok() => *n as i32,
            _ => return Err(format!("Invalid or no size: {}", json.to_text())),
        };
        if size < 0 {
            return Err(format!("Malformed data. Length is negative: {size}"));
        }
        let named = Named {
            props: props_of(json, SCHEMA_RESERVED),
            aliases: Self::named_aliases(json, &name)?,
            name,
            doc,
            kind: Kind::Fixed { size },
        };
        self.define(named)
    }

    /// Java's `ParseContext.put`: namespace parts validated; a name defined again must be an
    /// equal schema (Java's `equals`, which ignores docs and aliases), the first one stays.
    fn define(&mut self, named: Named) -> Result<S, String> {
        let full = named.name.full();
        let mut parts: Vec<&str> = full.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        for part in parts {
            validate_name(Some(part))
                .map_err(|e| format!("Namespace part \"{part}\" is invalid: {e}"))?;
        }
        validate_name(Some(last)).map_err(|e| format!("Name \"{last}\" is invalid: {e}"))?;
        match self.types.get(&full) {
            Some(existing) => {
                if !named_eq(existing, &named) {
                    return Err(format!("Can't redefine: {full}"));
                }
            }
            None => {
                self.types.insert(full.clone(), named);
            }
        }
        Ok(S::Ref(full))
    }
}

/// Java's `Double.parseDouble`, for a float or double field's default given as a string.
fn java_parse_double(text: &str) -> Result<f64, String> {
    let trimmed = text.trim_matches(|c: char| c <= ' ');
    let body = trimmed
        .strip_suffix(['f', 'F', 'd', 'D'])
        .unwrap_or(trimmed);
    let parsed = match body.trim_start_matches(['+', '-']) {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(if body.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        rest if !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            body.parse::<f64>().ok()
        }
        _ => None,
    };
    parsed.ok_or_else(|| {
        if trimmed.is_empty() {
            "empty String".to_string()
        } else {
            format!("For input string: \"{text}\"")
        }
    })
}

fn props_eq(a: &Props, b: &Props) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
}

fn schema_eq(a: &S, b: &S) -> bool {
    match (a, b) {
        (S::Prim(p, pp), S::Prim(q, qp)) => p == q && props_eq(pp, qp),
        (S::Array(x, xp), S::Array(y, yp)) | (S::Map(x, xp), S::Map(y, yp)) => {
            schema_eq(x, y) && props_eq(xp, yp)
        }
        (S::Union(x), S::Union(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| schema_eq(a, b))
        }
        (S::Ref(x), S::Ref(y)) => x == y,
        _ => false,
    }
}

fn named_eq(a: &Named, b: &Named) -> bool {
    if a.name.full() != b.name.full() || !props_eq(&a.props, &b.props) {
        return false;
    }
    match (&a.kind, &b.kind) {
        (Kind::Record { fields: x, .. }, Kind::Record { fields: y, .. }) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(f, g)| {
                    f.name == g.name
                        && schema_eq(&f.ty, &g.ty)
                        && f.default == g.default
                        && f.order == g.order
                        && props_eq(&f.props, &g.props)
                })
        }
        (Kind::Enum { symbols: x, .. }, Kind::Enum { symbols: y, .. }) => x == y,
        (Kind::Fixed { size: x }, Kind::Fixed { size: y }) => x == y,
        _ => false,
    }
}

/// Java's `Schema.isValidDefault`.
fn is_valid_default(types: &Types, s: &S, value: &Json) -> bool {
    match s {
        S::Prim(p, _) => match p {
            Prim::String | Prim::Bytes => matches!(value, Json::Str(_)),
            Prim::Int => matches!(value, Json::Int(n) if i32::try_from(*n).is_ok()),
            Prim::Long => matches!(value, Json::Int(_)),
            Prim::Float | Prim::Double => value.is_number(),
            Prim::Boolean => matches!(value, Json::Bool(_)),
            Prim::Null => matches!(value, Json::Null),
        },
        S::Array(items, _) => match value {
            Json::Arr(elements) => elements.iter().all(|e| is_valid_default(types, items, e)),
            _ => false,
        },
        S::Map(values, _) => match value {
            Json::Obj(entries) => entries
                .iter()
                .all(|(_, v)| is_valid_default(types, values, v)),
            _ => false,
        },
        S::Union(branches) => branches
            .iter()
            .any(|b| is_valid_value(types, b, Some(value))),
        S::Ref(full) => match types.get(full).map(|n| &n.kind) {
            Some(Kind::Enum { .. } | Kind::Fixed { .. }) => matches!(value, Json::Str(_)),
            Some(Kind::Record { fields, .. }) => {
                matches!(value, Json::Obj(_))
                    && fields.iter().all(|f| {
                        let v = value.get(&f.name).or(f.default.as_ref());
                        is_valid_value(types, &f.ty, v)
                    })
            }
            // Java's placeholder for a name not defined yet: a record without fields.
            None => matches!(value, Json::Obj(_)),
        },
    }
}

fn is_valid_value(types: &Types, s: &S, value: Option<&Json>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match s {
        S::Union(branches) => branches.iter().any(|b| is_valid_default(types, b, value)),
        other => is_valid_default(types, other, value),
    }
}

#[cfg(test)]
mod tests {
    use crate::avro::{parse, AvroSchema};

    fn err(text: &str) -> String {
        let e = parse(text, &[]).expect_err("must be rejected");
        e.strip_prefix("Invalid schema of type AVRO, details: ")
            .unwrap_or_else(|| panic!("unexpected prefix: {e}"))
            .to_string()
    }
    #[test]
    fn invalid_schemas_are_rejected() {
        assert!(err(r#"{"type":"#).starts_with("com.fasterxml.jackson.core.JsonParseException: "));
        assert_eq!(err(""), "Cannot parse <null> schema");
        assert_eq!(
            err(r#""int" "long""#),
            "dangling content after end of schema: \"long\""
        );
        assert_eq!(err("12"), "Schema not yet supported: 12");
        assert_eq!(err(r#"{"name":"x"}"#), r#"No type: {"name":"x"}"#);
        assert_eq!(
            err(r#"{"type":"record","name":"R"}"#),
            r#"Record has no fields: {"type":"record","name":"R"}"#
        );
        assert_eq!(
            err(r#"{"type":"record","fields":[]}"#),
            r#"No name in schema: {"type":"record","fields":[]}"#
        );
        assert_eq!(
            err(r#"{"type":"record","name":"1R","fields":[]}"#),
            "Illegal initial character: 1R"
        );
        assert_eq!(
            err(r#"{"type":"record","name":"R","fields":[{"name":"a-b","type":"int"}]}"#),
            "Illegal character in: a-b"
        );
        assert_eq!(
            err(r#"{"type":"record","name":"R","namespace":"com.1x","fields":[]}"#),
            r#"Namespace part "1x" is invalid: Illegal initial character: 1x"#
        );
        assert_eq!(
            err(r#"{"type":"record","name":"int","fields":[]}"#),
            "Schemas may not be named after primitives: int"
        );
        assert_eq!(
            err(r#"{"type":"record","name":"R","fields":[{"name":"f","type":"Missing"}]}"#),
            "Undefined schema: Missing"
        );
        assert_eq!(err(r#"{"type":"foo"}"#), "Undefined schema: foo");
        assert_eq!(
            err(r#"{"type":"record","name":"R","fields":[{"name":"f"}]}"#),
            r#"No field type: {"name":"f"}"#
        );
        assert_eq!(
            err(
                r#"{"type":"record","name":"R","fields":[{"name":"f","type":"int"},{"name":"f","type":"long"}]}"#
            ),
            "Duplicate field f in record R: f type:LONG pos:1 and f type:INT pos:0."
        );
        assert_eq!(
            err(r#"{"type":"enum","name":"E","symbols":["A","A"]}"#),
            "Duplicate enum symbol: A"
        );
        assert_eq!(
            err(r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"C"}"#),
            "The Enum Default: C is not in the enum symbol set: [A, B]"
        );
        assert_eq!(
            err(r#"{"type":"enum","name":"E","symbols":["1"]}"#),
            "Illegal initial character: 1"
        );
        assert_eq!(
            err(r#"{"type":"fixed","name":"F","size":"16"}"#),
            r#"Invalid or no size: {"type":"fixed","name":"F","size":"16"}"#
        );
        assert_eq!(err(r#"["int","int"]"#), "Duplicate in union:int");
        assert_eq!(
            err(r#"["int",["long"]]"#),
            r#"Nested union: ["int",["long"]]"#
        );
        assert_eq!(
            err(r#"{"type":"array"}"#),
            r#"Array has no items type: {"type":"array"}"#
        );
        assert_eq!(
            err(
                r#"{"type":"record","name":"R","fields":[{"name":"f","type":"int","order":"up"}]}"#
            ),
            "No enum constant org.apache.avro.Schema.Field.Order.UP"
        );
        assert_eq!(
            err(
                r#"["null",{"type":"enum","name":"E","symbols":["A"]},{"type":"enum","name":"E","symbols":["B"]}]"#
            ),
            "Can't redefine: E"
        );
    }

    fn field_default(ty: &str, default: &str) -> Result<AvroSchema, String> {
        parse(
            &format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"f","type":{ty},"default":{default}}}]}}"#
            ),
            &[],
        )
    }

    #[test]
    fn defaults_are_validated_against_their_type() {
        let invalid = |ty: &str, default: &str| field_default(ty, default).unwrap_err();
        assert_eq!(
            invalid("\"int\"", "\"x\""),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: "x" not a "int""#
        );
        assert_eq!(
            invalid("\"int\"", "1.5"),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: 1.5 not a "int""#
        );
        assert_eq!(
            invalid("\"int\"", "3000000000"),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: 3000000000 not a "int""#
        );
        assert_eq!(
            invalid("[\"null\",\"string\"]", "1"),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: 1 not a ["null","string"]"#
        );
        assert_eq!(
            invalid("{\"type\":\"array\",\"items\":\"int\"}", "[1,\"a\"]"),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: [1,"a"] not a {"type":"array","items":"int"}"#
        );
        assert_eq!(
            invalid("\"boolean\"", "null"),
            r#"Invalid schema of type AVRO, details: Invalid default for field f: null not a "boolean""#
        );
        assert_eq!(
            invalid("\"float\"", "\"abc\""),
            r#"Invalid schema of type AVRO, details: For input string: "abc""#
        );
        let inner = r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":2}]}"#;
        assert_eq!(
            invalid(inner, "{\"b\":1}"),
            format!(
                "Invalid schema of type AVRO, details: Invalid default for field f: {{\"b\":1}} not a {}",
                r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":2}]}"#
            )
        );
        // valid ones
        for (ty, default) in [
            ("\"long\"", "3000000000"),
            ("\"double\"", "1"),
            ("\"float\"", "\"1.5\""),
            ("\"bytes\"", "\"\\u00ff\""),
            ("[\"null\",\"string\"]", "null"),
            // Java 1.12 accepts a default matching any branch
            ("[\"null\",\"string\"]", "\"x\""),
            (inner, "{\"a\":1}"),
            // Java checks an enum default is a string, not that it is a symbol
            (r#"{"type":"enum","name":"E","symbols":["A"]}"#, "\"Z\""),
            (r#"{"type":"map","values":"long"}"#, "{\"k\":1}"),
        ] {
            assert!(field_default(ty, default).is_ok(), "{ty} {default}");
        }
    }
}
