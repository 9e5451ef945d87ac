//! Avro schemas: parsing (with referenced named types), the canonical text Confluent
//! stores and serves, and reader/writer compatibility.
//!
//! The module keeps its own model of a schema rather than apache-avro's, because the text
//! Confluent stores is Java Avro's `Schema.toString()`: it keeps custom properties in their
//! input order, docs, aliases, field orders and defaults exactly as parsed, and prints
//! named types by name after their first occurrence. The JSON reader is also our own, so that
//! key order and the integer/floating distinction of Jackson's tree model survive.
//!
//! Semantics follow Java Avro 1.12 (the version Confluent 7.x/8.x uses): the parser with
//! strict name validation and default validation (Confluent's `validateAsNew`), the printer,
//! `SchemaCompatibility`'s reader/writer checker, and Confluent's `AvroSchemaUtils`
//! normalization and its `Difference` messages.

use std::collections::{BTreeSet, HashMap, HashSet};

// ---------------------------------------------------------------------------------------------
// JSON, as Jackson's tree model sees it
// ---------------------------------------------------------------------------------------------

/// A JSON value. Objects keep their key order; integers and floating numbers stay apart
/// (an integral default is not a valid `int` default when written `1.0`).
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// An integer that fits a Java `long`.
    Int(i64),
    /// An integer beyond a Java `long`, kept as its digits.
    BigInt(String),
    Double(f64),
    /// Only made by normalization (a `float` default), printed as Java's `Float.toString`.
    Float(f32),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Jackson's `textValue()`: the string of a string node, nothing otherwise.
    fn text(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(
            self,
            Json::Int(_) | Json::BigInt(_) | Json::Double(_) | Json::Float(_)
        )
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::BigInt(digits) => out.push_str(digits),
            Json::Double(d) => {
                if d.is_finite() {
                    out.push_str(&java_double_to_string(*d))
                } else {
                    write_json_str(out, &java_double_to_string(*d))
                }
            }
            Json::Float(f) => {
                if f.is_finite() {
                    out.push_str(&java_float_to_string(*f))
                } else {
                    write_json_str(out, &java_double_to_string(*f as f64))
                }
            }
            Json::Str(s) => write_json_str(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// The same value with every object's keys sorted, as Confluent's normalization prints
    /// property values and defaults.
    fn sorted(&self) -> Json {
        match self {
            Json::Arr(items) => Json::Arr(items.iter().map(Json::sorted).collect()),
            Json::Obj(entries) => {
                let mut entries: Vec<(String, Json)> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.sorted()))
                    .collect();
                entries.sort_by(|a, b| java_str_cmp(&a.0, &b.0));
                Json::Obj(entries)
            }
            other => other.clone(),
        }
    }
}

/// Java's `String.compareTo`: UTF-16 code unit order.
fn java_str_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A JSON string as Jackson writes it: `"` and `\` escaped, control characters as the short
/// escapes or `\u00XX`, everything else (non-ASCII included) as is.
fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Digits and decimal exponent of the shortest representation that round-trips:
/// `(digits, e)` means `0.d1d2d3... * 10^(e+1)`, i.e. the value is `d1.d2d3... * 10^e`.
fn shortest_digits(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Java's `Double.toString`/`Float.toString` layout for a finite, non-zero magnitude given as
/// shortest digits and exponent.
fn java_layout(negative: bool, digits: &str, exp: i32, abs: f64) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (1e-3..1e7).contains(&abs) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", d.abs()));
    java_layout(d < 0.0, &digits, exp, d.abs())
}

fn java_float_to_string(f: f32) -> String {
    if !f.is_finite() {
        return java_double_to_string(f as f64);
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", f.abs()));
    java_layout(f < 0.0, &digits, exp, f.abs() as f64)
}

/// A JSON reader with Jackson's defaults as Avro configures them: comments allowed, a
/// duplicate key replaces the earlier value in its place, integers kept apart from floats.
struct JsonReader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> JsonReader<'a> {
    fn error<T>(&self, what: &str) -> Result<T, String> {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Err(format!(
            "com.fasterxml.jackson.core.JsonParseException: {what} at line: {line}, column: {column}"
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.text.as_bytes().get(self.pos + 1) {
                    Some(b'/') => match self.text[self.pos..].find('\n') {
                        Some(n) => self.pos += n + 1,
                        None => self.pos = self.text.len(),
                    },
                    Some(b'*') => match self.text[self.pos + 2..].find("*/") {
                        Some(n) => self.pos += n + 4,
                        None => return self.error("Unexpected end-of-input in a comment"),
                    },
                    _ => return self.error("Unexpected character ('/')"),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 512 {
            return self.error("Document nesting depth exceeds the maximum allowed");
        }
        self.skip_ws()?;
        match self.peek() {
            None => self.error("Unexpected end-of-input"),
            Some(b'{') => {
                self.pos += 1;
                let mut entries: Vec<(String, Json)> = Vec::new();
                self.skip_ws()?;
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Obj(entries));
                }
                loop {
                    self.skip_ws()?;
                    if self.peek() != Some(b'"') {
                        return self.error(
                            "Unexpected character, was expecting double-quote to start field name",
                        );
                    }
                    let key = self.string()?;
                    self.skip_ws()?;
                    if self.peek() != Some(b':') {
                        return self.error("Unexpected character, was expecting a colon to separate field name and value");
                    }
                    self.pos += 1;
                    let value = self.value(depth + 1)?;
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Obj(entries));
                        }
                        _ => return self.error(
                            "Unexpected character, was expecting comma to separate Object entries",
                        ),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws()?;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws()?;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return self.error(
                            "Unexpected character, was expecting comma to separate Array entries",
                        ),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.error("Unexpected character"),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            self.error("Unrecognized token")
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = self.pos;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == int_start {
            self.pos = i;
            return self.error("Unexpected character, expected digit after minus sign");
        }
        if bytes[int_start] == b'0' && i - int_start > 1 {
            self.pos = i;
            return self.error("Invalid numeric value: Leading zeroes not allowed");
        }
        let mut floating = false;
        if bytes.get(i) == Some(&b'.') {
            floating = true;
            i += 1;
            let frac_start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac_start {
                self.pos = i;
                return self
                    .error("Unexpected character, decimal point must be followed by a digit");
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            floating = true;
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start {
                self.pos = i;
                return self
                    .error("Unexpected character, exponent indicator not followed by a digit");
            }
        }
        self.pos = i;
        let text = &self.text[start..i];
        if floating {
            match text.parse::<f64>() {
                Ok(d) => Ok(Json::Double(d)),
                Err(_) => self.error("Invalid numeric value"),
            }
        } else {
            match text.parse::<i64>() {
                Ok(n) => Ok(Json::Int(n)),
                Err(_) => Ok(Json::BigInt(text.to_string())),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        // at the opening quote
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return self.error("Unexpected end-of-input in a String value");
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return self.error("Unexpected end-of-input in character escape sequence");
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            if (0xD800..0xDC00).contains(&first)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let second = self.hex4()?;
                                if (0xDC00..0xE000).contains(&second) {
                                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                                    out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                                } else {
                                    self.pos = save;
                                    out.push('\u{FFFD}');
                                }
                            } else {
                                out.push(char::from_u32(first).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return self.error("Unrecognized character escape"),
                    }
                }
                c if (c as u32) < 0x20 => {
                    return self.error("Illegal unquoted character: has to be escaped using backslash to be included in string value")
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(hex) = self.text.get(self.pos..self.pos + 4) else {
            return self.error("Unexpected end-of-input in character escape sequence");
        };
        match u32::from_str_radix(hex, 16) {
            Ok(v) if hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                self.pos += 4;
                Ok(v)
            }
            _ => self.error("Unexpected character in character escape sequence"),
        }
    }
}

/// Reads one JSON document. `Ok(None)` for an input with no value at all.
fn read_json(text: &str) -> Result<Option<Json>, String> {
    let mut reader = JsonReader { text, pos: 0 };
    reader.skip_ws()?;
    if reader.peek().is_none() {
        return Ok(None);
    }
    let value = reader.value(0)?;
    let dangling = text[reader.pos..].trim();
    if !dangling.is_empty() {
        return Err(format!("dangling content after end of schema: {dangling}"));
    }
    Ok(Some(value))
}

// ---------------------------------------------------------------------------------------------
// The schema model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prim {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Prim {
    fn from_name(name: &str) -> Option<Prim> {
        Some(match name {
            "null" => Prim::Null,
            "boolean" => Prim::Boolean,
            "int" => Prim::Int,
            "long" => Prim::Long,
            "float" => Prim::Float,
            "double" => Prim::Double,
            "bytes" => Prim::Bytes,
            "string" => Prim::String,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Prim::Null => "null",
            Prim::Boolean => "boolean",
            Prim::Int => "int",
            Prim::Long => "long",
            Prim::Float => "float",
            Prim::Double => "double",
            Prim::Bytes => "bytes",
            Prim::String => "string",
        }
    }
}

/// Custom properties in their input order.
type Props = Vec<(String, Json)>;

/// A schema. Named types are held by full name in the schema's table (`Ref`), so a type
/// referenced twice is the same type, as in Java.
#[derive(Clone, Debug)]
enum S {
    Prim(Prim, Props),
    Array(Box<S>, Props),
    Map(Box<S>, Props),
    Union(Vec<S>),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Name {
    name: String,
    space: Option<String>,
}

impl Name {
    fn full(&self) -> String {
        match &self.space {
            Some(space) => format!("{space}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Java's `Name.getQualified`: the short name when in the default namespace (unless the
    /// short name is a type name).
    fn qualified(&self, default_space: Option<&str>) -> String {
        if self.space.is_some()
            && self.space.as_deref() == default_space
            && !is_type_name(&self.name)
        {
            self.name.clone()
        } else {
            self.full()
        }
    }
}

fn is_type_name(name: &str) -> bool {
    matches!(
        name,
        "record"
            | "enum"
            | "array"
            | "map"
            | "union"
            | "fixed"
            | "string"
            | "bytes"
            | "int"
            | "long"
            | "float"
            | "double"
            | "boolean"
            | "null"
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Ascending,
    Descending,
    Ignore,
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: S,
    doc: Option<String>,
    default: Option<Json>,
    order: Order,
    aliases: Vec<String>,
    props: Props,
}

#[derive(Clone, Debug)]
enum Kind {
    Record {
        error: bool,
        fields: Vec<Field>,
    },
    Enum {
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        size: i32,
    },
}

#[derive(Clone, Debug)]
struct Named {
    name: Name,
    doc: Option<String>,
    aliases: Vec<Name>,
    props: Props,
    kind: Kind,
}

impl Named {
    fn type_tag(&self) -> Tag {
        match self.kind {
            Kind::Record { .. } => Tag::Record,
            Kind::Enum { .. } => Tag::Enum,
            Kind::Fixed { .. } => Tag::Fixed,
        }
    }

    /// Java's `getAliases()`: full names, or `.name` for an alias without namespace in a
    /// record that has one.
    fn java_aliases(&self) -> Vec<String> {
        self.aliases
            .iter()
            .map(|alias| {
                if alias.space.is_none() && self.name.space.is_some() {
                    format!(".{}", alias.name)
                } else {
                    alias.full()
                }
            })
            .collect()
    }
}

/// Java's `Schema.Type`, named as in its `toString()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Record,
    Enum,
    Array,
    Map,
    Union,
    Fixed,
    String,
    Bytes,
    Int,
    Long,
    Float,
    Double,
    Boolean,
    Null,
}

impl Tag {
    fn java(self) -> &'static str {
        match self {
            Tag::Record => "RECORD",
            Tag::Enum => "ENUM",
            Tag::Array => "ARRAY",
            Tag::Map => "MAP",
            Tag::Union => "UNION",
            Tag::Fixed => "FIXED",
            Tag::String => "STRING",
            Tag::Bytes => "BYTES",
            Tag::Int => "INT",
            Tag::Long => "LONG",
            Tag::Float => "FLOAT",
            Tag::Double => "DOUBLE",
            Tag::Boolean => "BOOLEAN",
            Tag::Null => "NULL",
        }
    }

    fn of_prim(p: Prim) -> Tag {
        match p {
            Prim::Null => Tag::Null,
            Prim::Boolean => Tag::Boolean,
            Prim::Int => Tag::Int,
            Prim::Long => Tag::Long,
            Prim::Float => Tag::Float,
            Prim::Double => Tag::Double,
            Prim::Bytes => Tag::Bytes,
            Prim::String => Tag::String,
        }
    }
}

/// The table of named types, by full name.
type Types = HashMap<String, Named>;

fn tag(types: &Types, s: &S) -> Tag {
    match s {
        S::Prim(p, _) => Tag::of_prim(*p),
        S::Array(..) => Tag::Array,
        S::Map(..) => Tag::Map,
        S::Union(_) => Tag::Union,
        // A name not (yet) defined stands for Java's placeholder: an empty record.
        S::Ref(full) => types.get(full).map_or(Tag::Record, Named::type_tag),
    }
}

/// Java's `getFullName()` of a union branch: what makes two branches duplicates.
fn union_branch_name(s: &S) -> String {
    match s {
        S::Prim(p, _) => p.name().to_string(),
        S::Array(..) => "array".into(),
        S::Map(..) => "map".into(),
        S::Union(_) => "union".into(),
        S::Ref(full) => full.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Printing: Java's Schema.toString()
// ---------------------------------------------------------------------------------------------

struct Printer<'a> {
    types: &'a Types,
    known: HashSet<String>,
    out: String,
}

impl Printer<'_> {
    fn schema(&mut self, s: &S, space: Option<&str>) {
        match s {
            S::Prim(p, props) => {
                if props.is_empty() {
                    write_json_str(&mut self.out, p.name());
                } else {
                    self.out.push_str("{\"type\":");
                    write_json_str(&mut self.out, p.name());
                    self.props(props);
                    self.out.push('}');
                }
            }
            S::Array(items, props) => {
                self.out.push_str("{\"type\":\"array\",\"items\":");
                self.schema(items, space);
                self.props(props);
                self.out.push('}');
            }
            S::Map(values, props) => {
                self.out.push_str("{\"type\":\"map\",\"values\":");
                self.schema(values, space);
                self.props(props);
                self.out.push('}');
            }
            S::Union(branches) => {
                self.out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(branch, space);
                }
                self.out.push(']');
            }
            S::Ref(full) => {
                let Some(named) = self.types.get(full) else {
                    write_json_str(&mut self.out, full);
                    return;
                };
                if !self.known.insert(full.clone()) {
                    let qualified = named.name.qualified(space);
                    write_json_str(&mut self.out, &qualified);
                    return;
                }
                self.named(named, space);
            }
        }
    }

    fn named(&mut self, named: &Named, space: Option<&str>) {
        let type_name = match &named.kind {
            Kind::Record { error: true, .. } => "error",
            Kind::Record { .. } => "record",
            Kind::Enum { .. } => "enum",
            Kind::Fixed { .. } => "fixed",
        };
        self.out.push_str("{\"type\":");
        write_json_str(&mut self.out, type_name);
        self.out.push_str(",\"name\":");
        write_json_str(&mut self.out, &named.name.name);
        match &named.name.space {
            Some(own) if Some(own.as_str()) != space => {
                self.out.push_str(",\"namespace\":");
                write_json_str(&mut self.out, own);
            }
            None if space.is_some() => self.out.push_str(",\"namespace\":\"\""),
            _ => {}
        }
        if let Some(doc) = &named.doc {
            self.out.push_str(",\"doc\":");
            write_json_str(&mut self.out, doc);
        }
        let own_space = named.name.space.as_deref();
        match &named.kind {
            Kind::Record { fields, .. } => {
                self.out.push_str(",\"fields\":[");
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.field(field, own_space);
                }
                self.out.push(']');
            }
            Kind::Enum { symbols, default } => {
                self.out.push_str(",\"symbols\":[");
                for (i, symbol) in symbols.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    write_json_str(&mut self.out, symbol);
                }
                self.out.push(']');
                if let Some(default) = default {
                    self.out.push_str(",\"default\":");
                    write_json_str(&mut self.out, default);
                }
            }
            Kind::Fixed { size } => {
                self.out.push_str(",\"size\":");
                self.out.push_str(&size.to_string());
            }
        }
        self.props(&named.props);
        if !named.aliases.is_empty() {
            self.out.push_str(",\"aliases\":[");
            for (i, alias) in named.aliases.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                write_json_str(&mut self.out, &alias.qualified(own_space));
            }
            self.out.push(']');
        }
        self.out.push('}');
    }

    fn field(&mut self, field: &Field, space: Option<&str>) {
        self.out.push_str("{\"name\":");
        write_json_str(&mut self.out, &field.name);
        self.out.push_str(",\"type\":");
        self.schema(&field.ty, space);
        if let Some(doc) = &field.doc {
            self.out.push_str(",\"doc\":");
            write_json_str(&mut self.out, doc);
        }
        if let Some(default) = &field.default {
            self.out.push_str(",\"default\":");
            default.write(&mut self.out);
        }
        match field.order {
            Order::Ascending => {}
            Order::Descending => self.out.push_str(",\"order\":\"descending\""),
            Order::Ignore => self.out.push_str(",\"order\":\"ignore\""),
        }
        if !field.aliases.is_empty() {
            self.out.push_str(",\"aliases\":[");
            for (i, alias) in field.aliases.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                write_json_str(&mut self.out, alias);
            }
            self.out.push(']');
        }
        self.props(&field.props);
        self.out.push('}');
    }

    fn props(&mut self, props: &Props) {
        for (key, value) in props {
            self.out.push(',');
            write_json_str(&mut self.out, key);
            self.out.push(':');
            value.write(&mut self.out);
        }
    }
}

/// Java's `Schema.toString()` with no names known beforehand (used in messages).
fn schema_to_string(types: &Types, s: &S) -> String {
    let mut printer = Printer {
        types,
        known: HashSet::new(),
        out: String::new(),
    };
    printer.schema(s, None);
    printer.out
}

// ---------------------------------------------------------------------------------------------
// Parsing: Java's Schema.Parser with strict names and validated defaults
// ---------------------------------------------------------------------------------------------

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

struct Parser {
    types: Types,
    /// Names used before their definition; each must be defined by the end of its text.
    pending: Vec<String>,
}

impl Parser {
    fn parse_text(&mut self, text: &str) -> Result<S, String> {
        let json = read_json(text)?.ok_or_else(|| "Cannot parse <null> schema".to_string())?;
        let schema = self.parse(&json, None)?;
        for full in std::mem::take(&mut self.pending) {
            if !self.types.contains_key(&full) {
                return Err(format!("Undefined schema: {full}"));
            }
        }
        Ok(schema)
    }

    fn find(&mut self, name: &str, space: Option<&str>) -> S {
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

// ---------------------------------------------------------------------------------------------
// The public interface
// ---------------------------------------------------------------------------------------------

/// A parsed Avro schema, with the named types of the schemas it references resolved.
#[derive(Clone, Debug)]
pub struct AvroSchema {
    root: S,
    types: Types,
    /// Full names of the referenced schemas' top-level types: printed by name only.
    known: Vec<String>,
    references: Vec<String>,
}

/// Parses `text`. `references` are the texts of the schemas it references, in dependency
/// order (each may use named types defined by the earlier ones; the last ones are the direct
/// references). The error is a message for the REST response, such as Confluent gives for
/// error 42201 ("Invalid schema ..."). Defaults must be validated against their field's type
/// as Confluent does (it parses with default validation on).
pub fn parse(text: &str, references: &[&str]) -> Result<AvroSchema, String> {
    parse_inner(text, references)
        .map_err(|detail| format!("Invalid schema of type AVRO, details: {detail}"))
}

fn parse_inner(text: &str, references: &[&str]) -> Result<AvroSchema, String> {
    let mut parser = Parser {
        types: HashMap::new(),
        pending: Vec::new(),
    };
    let mut known = Vec::new();
    for reference in references {
        if let S::Ref(full) = parser.parse_text(reference)? {
            known.push(full);
        }
    }
    let root = parser.parse_text(text)?;
    Ok(AvroSchema {
        root,
        types: parser.types,
        known,
        references: references.iter().map(|r| r.to_string()).collect(),
    })
}

impl AvroSchema {
    /// The text Confluent stores and returns for this schema: Java Avro's `Schema.toString()`
    /// of the parsed schema (compact JSON; Avro's own property order; a primitive without
    /// properties printed as a bare string like "int"; custom properties, doc, aliases,
    /// defaults, logical types kept; named types referenced from another schema printed by
    /// name only). Two texts that differ only in whitespace or key order give the same canonical text.
    pub fn canonical(&self) -> String {
        let mut printer = Printer {
            types: &self.types,
            known: self.known.iter().cloned().collect(),
            out: String::new(),
        };
        printer.schema(&self.root, None);
        printer.out
    }

    /// The text with Confluent's `normalize=true`: Confluent's normalized form (full names,
    /// sorted aliases and properties, defaults converted by their type) parsed again and
    /// printed as [`AvroSchema::canonical`], as its `AvroSchema.normalize()` does.
    pub fn normalized(&self) -> String {
        let text = self.normalized_form();
        let references: Vec<&str> = self.references.iter().map(String::as_str).collect();
        match parse_inner(&text, &references) {
            Ok(schema) => schema.canonical(),
            Err(_) => self.canonical(),
        }
    }

    /// Why a reader with this schema cannot read data written with `writer` (empty when it can),
    /// following Avro's reader/writer resolution rules as Java Avro's SchemaCompatibility checks
    /// them. Each message follows Confluent's verbose form, with this (reader) side called "new"
    /// and the writer "old", as in a BACKWARD check.
    pub fn compatibility_errors(&self, writer: &AvroSchema) -> Vec<String> {
        self.compatibility_errors_as(writer, "new", "old")
    }

    /// [`AvroSchema::compatibility_errors`] with the words for the reader's and the writer's
    /// side chosen by the caller (Confluent says "old" for the reader in FORWARD checks).
    pub fn compatibility_errors_as(
        &self,
        writer: &AvroSchema,
        reader_word: &str,
        writer_word: &str,
    ) -> Vec<String> {
        let mut checker = Checker {
            reader: &self.types,
            writer: &writer.types,
            memo: HashMap::new(),
        };
        let mut location = Vec::new();
        match checker.get("", &self.root, &writer.root, &mut location) {
            Ok(incompatibilities) => incompatibilities
                .iter()
                .map(|i| i.describe(reader_word, writer_word))
                .collect(),
            Err(message) => vec![format!(
                "Unexpected exception during compatibility check: {message}"
            )],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compatibility: Java Avro's SchemaCompatibility.ReaderWriterCompatibilityChecker
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

#[derive(Clone, Debug)]
struct Incompatibility {
    problem: Problem,
    message: String,
    /// The location tokens from the root (whose token is empty).
    location: Vec<String>,
}

impl Incompatibility {
    /// The JSON pointer Java gives (`getLocation()`).
    fn path(&self) -> String {
        let tokens: Vec<String> = self
            .location
            .iter()
            .skip(1)
            .map(|t| t.replace('~', "~0").replace('/', "~1"))
            .collect();
        format!("/{}", tokens.join("/"))
    }

    /// Confluent's `Difference.toString()`, its `%s` filled with the reader's and the
    /// writer's word.
    fn describe(&self, reader: &str, writer: &str) -> String {
        let path = self.path();
        let message = &self.message;
        let (name, description) = match self.problem {
            Problem::FixedSizeMismatch => (
                "FIXED_SIZE_MISMATCH",
                format!(
                    "The size of FIXED type field at path '{path}' in the {reader} schema does not match with the {writer} schema"
                ),
            ),
            Problem::TypeMismatch => (
                "TYPE_MISMATCH",
                format!(
                    "The type (path '{path}') of a field in the {reader} schema does not match with the {writer} schema"
                ),
            ),
            Problem::NameMismatch => (
                "NAME_MISMATCH",
                format!("The name of the schema has changed (path '{path}')"),
            ),
            Problem::MissingEnumSymbols => (
                "MISSING_ENUM_SYMBOLS",
                format!(
                    "The {reader} schema is missing enum symbols '{message}' at path '{path}' in the {writer} schema"
                ),
            ),
            Problem::MissingUnionBranch => (
                "MISSING_UNION_BRANCH",
                format!(
                    "The {reader} schema is missing a type inside a union field at path '{path}' in the {writer} schema"
                ),
            ),
            Problem::ReaderFieldMissingDefaultValue => (
                "READER_FIELD_MISSING_DEFAULT_VALUE",
                format!(
                    "The field '{message}' at path '{path}' in the {reader} schema has no default value and is missing in the {writer} schema"
                ),
            ),
        };
        format!("{{errorType:'{name}', description:'{description}', additionalInfo:'{message}'}}")
    }
}

type Outcome = Result<Vec<Incompatibility>, String>;

struct Checker<'a> {
    reader: &'a Types,
    writer: &'a Types,
    /// Results by (reader, writer) named type pair; `None` while being computed (a recursive
    /// type meets itself: compatible unless proven otherwise). As in Java, a result is
    /// remembered with the locations of its first computation.
    memo: HashMap<(String, String), Option<Vec<Incompatibility>>>,
}

impl Checker<'_> {
    fn get(&mut self, token: &str, r: &S, w: &S, location: &mut Vec<String>) -> Outcome {
        location.push(token.to_string());
        let result = match (r, w) {
            (S::Ref(rn), S::Ref(wn)) => {
                let key = (rn.clone(), wn.clone());
                match self.memo.get(&key) {
                    Some(None) => Ok(Vec::new()),
                    Some(Some(done)) => Ok(done.clone()),
                    None => {
                        self.memo.insert(key.clone(), None);
                        let result = self.calculate(r, w, location);
                        if let Ok(done) = &result {
                            self.memo.insert(key, Some(done.clone()));
                        }
                        result
                    }
                }
            }
            _ => self.calculate(r, w, location),
        };
        location.pop();
        result
    }

    /// Java's two-argument `getCompatibility`: a fresh location, the same memo.
    fn get_fresh(&mut self, r: &S, w: &S) -> Outcome {
        self.get("", r, w, &mut Vec::new())
    }

    fn incompatible(
        problem: Problem,
        message: String,
        location: &[String],
    ) -> Vec<Incompatibility> {
        vec![Incompatibility {
            problem,
            message,
            location: location.to_vec(),
        }]
    }

    fn type_mismatch(rt: Tag, wt: Tag, location: &[String]) -> Vec<Incompatibility> {
        Self::incompatible(
            Problem::TypeMismatch,
            format!(
                "reader type: {} not compatible with writer type: {}",
                rt.java(),
                wt.java()
            ),
            location,
        )
    }

    fn calculate(&mut self, r: &S, w: &S, location: &mut Vec<String>) -> Outcome {
        let rt = tag(self.reader, r);
        let wt = tag(self.writer, w);
        let mut result = Vec::new();
        if rt == wt {
            match (r, w) {
                (S::Array(ri, _), S::Array(wi, _)) => {
                    result.extend(self.get("items", ri, wi, location)?);
                }
                (S::Map(rv, _), S::Map(wv, _)) => {
                    result.extend(self.get("values", rv, wv, location)?);
                }
                (S::Union(_), S::Union(wbs)) => {
                    for (i, wb) in wbs.iter().enumerate() {
                        location.push(i.to_string());
                        if !self.get_fresh(r, wb)?.is_empty() {
                            result.extend(Self::incompatible(
                                Problem::MissingUnionBranch,
                                format!(
                                    "reader union lacking writer type: {}",
                                    tag(self.writer, wb).java()
                                ),
                                location,
                            ));
                        }
                        location.pop();
                    }
                }
                (S::Ref(rn), S::Ref(wn)) => {
                    let (Some(rd), Some(wd)) = (self.reader.get(rn), self.writer.get(wn)) else {
                        return Ok(result);
                    };
                    result.extend(self.check_names(rd, wd, location));
                    match (&rd.kind, &wd.kind) {
                        (Kind::Fixed { size: rs }, Kind::Fixed { size: ws }) => {
                            location.push("size".into());
                            if rs != ws {
                                result.extend(Self::incompatible(
                                    Problem::FixedSizeMismatch,
                                    format!("expected: {ws}, found: {rs}"),
                                    location,
                                ));
                            }
                            location.pop();
                        }
                        (
                            Kind::Enum {
                                symbols: rs,
                                default,
                            },
                            Kind::Enum { symbols: ws, .. },
                        ) => {
                            location.push("symbols".into());
                            let missing: BTreeSet<&String> =
                                ws.iter().filter(|s| !rs.contains(s)).collect();
                            let has_default = default.as_ref().is_some_and(|d| rs.contains(d));
                            if !missing.is_empty() && !has_default {
                                let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                                result.extend(Self::incompatible(
                                    Problem::MissingEnumSymbols,
                                    format!("[{}]", list.join(", ")),
                                    location,
                                ));
                            }
                            location.pop();
                        }
                        (Kind::Record { fields: rfs, .. }, Kind::Record { fields: wfs, .. }) => {
                            result.extend(self.check_fields(rfs, wfs, w, location)?);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            return Ok(result);
        }

        if let S::Union(wbs) = w {
            for (i, wb) in wbs.iter().enumerate() {
                result.extend(self.get(&i.to_string(), r, wb, location)?);
            }
            return Ok(result);
        }
        let promotable = match rt {
            Tag::Long => wt == Tag::Int,
            Tag::Float => matches!(wt, Tag::Int | Tag::Long),
            Tag::Double => matches!(wt, Tag::Int | Tag::Long | Tag::Float),
            Tag::Bytes => wt == Tag::String,
            Tag::String => wt == Tag::Bytes,
            _ => false,
        };
        if promotable {
            return Ok(result);
        }
        if let S::Union(rbs) = r {
            for rb in rbs {
                if self.get_fresh(rb, w)?.is_empty() {
                    return Ok(result);
                }
            }
            result.extend(Self::incompatible(
                Problem::MissingUnionBranch,
                format!("reader union lacking writer type: {}", wt.java()),
                location,
            ));
            return Ok(result);
        }
        result.extend(Self::type_mismatch(rt, wt, location));
        Ok(result)
    }

    fn check_names(
        &self,
        r: &Named,
        w: &Named,
        location: &mut Vec<String>,
    ) -> Vec<Incompatibility> {
        location.push("name".into());
        let writer_full = w.name.full();
        let result = if r.name.name == w.name.name || r.java_aliases().contains(&writer_full) {
            Vec::new()
        } else {
            Self::incompatible(
                Problem::NameMismatch,
                format!("expected: {writer_full}"),
                location,
            )
        };
        location.pop();
        result
    }

    fn check_fields(
        &mut self,
        readers: &[Field],
        writers: &[Field],
        writer_schema: &S,
        location: &mut Vec<String>,
    ) -> Outcome {
        let mut result = Vec::new();
        location.push("fields".into());
        for (pos, rf) in readers.iter().enumerate() {
            location.push(pos.to_string());
            let mut matches: Vec<&Field> = Vec::new();
            if let Some(direct) = writers.iter().find(|f| f.name == rf.name) {
                matches.push(direct);
            }
            for alias in &rf.aliases {
                if let Some(aliased) = writers.iter().find(|f| &f.name == alias) {
                    matches.push(aliased);
                }
            }
            match matches.as_slice() {
                [] => {
                    if rf.default.is_none() {
                        let enum_default = match &rf.ty {
                            S::Ref(full) => matches!(
                                self.reader.get(full).map(|n| &n.kind),
                                Some(Kind::Enum {
                                    default: Some(_),
                                    ..
                                })
                            ),
                            _ => false,
                        };
                        if enum_default {
                            // Java compares the enum with the whole writer record here.
                            result.extend(self.get("type", &rf.ty, writer_schema, location)?);
                        } else {
                            result.extend(Self::incompatible(
                                Problem::ReaderFieldMissingDefaultValue,
                                rf.name.clone(),
                                location,
                            ));
                        }
                    }
                }
                [wf] => {
                    result.extend(self.get("type", &rf.ty, &wf.ty, location)?);
                }
                _ => {
                    return Err(format!(
                        "Reader record field {} type:{} pos:{} matches multiple fields in writer record schema {}",
                        rf.name,
                        tag(self.reader, &rf.ty).java(),
                        pos,
                        schema_to_string(self.writer, writer_schema)
                    ));
                }
            }
            location.pop();
        }
        location.pop();
        Ok(result)
    }
}

// ---------------------------------------------------------------------------------------------
// Normalization: Confluent's AvroSchemaUtils.toNormalizedString
// ---------------------------------------------------------------------------------------------

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
    fn schema(&mut self, s: &S) {
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

    fn field(&mut self, field: &Field) {
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
    fn normalized_form(&self) -> String {
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
    use super::*;

    fn canon(text: &str) -> String {
        parse(text, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .canonical()
    }

    fn err(text: &str) -> String {
        let e = parse(text, &[]).expect_err("must be rejected");
        e.strip_prefix("Invalid schema of type AVRO, details: ")
            .unwrap_or_else(|| panic!("unexpected prefix: {e}"))
            .to_string()
    }

    #[test]
    fn primitives_print_bare_unless_they_carry_properties() {
        assert_eq!(canon("\"int\""), "\"int\"");
        assert_eq!(canon(" { \"type\" : \"int\" } "), "\"int\"");
        assert_eq!(
            canon("{\"type\":\"null\",\"doc\":\"dropped\",\"name\":\"x\"}"),
            "\"null\""
        );
        assert_eq!(
            canon("{\"type\":\"string\",\"avro.java.string\":\"String\"}"),
            "{\"type\":\"string\",\"avro.java.string\":\"String\"}"
        );
        assert_eq!(
            canon("{\"logicalType\":\"timestamp-millis\",\"type\":\"long\"}"),
            "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}"
        );
        // An invalid logical type is kept as a property (Java ignores it).
        assert_eq!(
            canon("{\"type\":\"string\",\"logicalType\":\"date\"}"),
            "{\"type\":\"string\",\"logicalType\":\"date\"}"
        );
        assert_eq!(canon("[\"null\", \"string\"]"), "[\"null\",\"string\"]");
        assert_eq!(
            canon("{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"bytes\"},\"x\":1}"),
            "{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"bytes\"},\"x\":1}"
        );
        // Jackson's comments are accepted before the schema; after it they are dangling
        // content, as Java reads what is left raw
        assert_eq!(canon("/* c */ \"long\" "), "\"long\"");
        assert_eq!(
            parse("\"long\" // end", &[]).unwrap_err(),
            "Invalid schema of type AVRO, details: dangling content after end of schema: // end"
        );
    }

    const USER: &str = r#"{
      "namespace": "com.example", "type": "record", "name": "User", "doc": "A user",
      "aliases": ["Person", "other.Human"],
      "custom": {"b": 1, "a": [true, null, 2.50]},
      "fields": [
        {"name": "id", "type": "long", "doc": "the id"},
        {"name": "name", "type": {"type": "string", "avro.java.string": "String"}, "default": "x",
         "aliases": ["fullName"], "order": "descending", "tag": "pii"},
        {"type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
         "name": "amount", "default": "\u0000"},
        {"name": "ratio", "type": "double", "default": 1},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"],
         "default": "A", "doc": "k"}},
        {"name": "other", "type": ["null", "Kind"], "default": null},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "namespace": "com.other", "size": 16}},
        {"name": "hashes", "type": {"type": "array", "items": "com.other.Hash"}, "default": []},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}, "order": "ignore"}
      ]
    }"#;

    const USER_CANONICAL: &str = concat!(
        r#"{"type":"record","name":"User","namespace":"com.example","doc":"A user","fields":["#,
        r#"{"name":"id","type":"long","doc":"the id"},"#,
        r#"{"name":"name","type":{"type":"string","avro.java.string":"String"},"default":"x","order":"descending","aliases":["fullName"],"tag":"pii"},"#,
        r#"{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2},"default":"\u0000"},"#,
        r#"{"name":"ratio","type":"double","default":1},"#,
        r#"{"name":"kind","type":{"type":"enum","name":"Kind","doc":"k","symbols":["A","B"],"default":"A"}},"#,
        r#"{"name":"other","type":["null","Kind"],"default":null},"#,
        r#"{"name":"hash","type":{"type":"fixed","name":"Hash","namespace":"com.other","size":16}},"#,
        r#"{"name":"hashes","type":{"type":"array","items":"com.other.Hash"},"default":[]},"#,
        r#"{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"order":"ignore"}"#,
        r#"],"custom":{"b":1,"a":[true,null,2.5]},"aliases":["Person","other.Human"]}"#
    );

    #[test]
    fn record_prints_in_avro_order_with_everything_kept() {
        assert_eq!(canon(USER), USER_CANONICAL);
        // the canonical text is a fixed point
        assert_eq!(canon(USER_CANONICAL), USER_CANONICAL);
    }

    #[test]
    fn whitespace_and_key_order_do_not_matter() {
        let a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":0,"doc":"d"}]}"#;
        let b = "{ \"fields\" : [ { \"doc\" : \"d\", \"default\" : 0,\n \"type\" : \"int\", \"name\" : \"a\" } ],\n\t\"name\" : \"R\", \"type\" : \"record\" }";
        assert_eq!(canon(a), canon(b));
        assert_eq!(
            canon(b),
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","doc":"d","default":0}]}"#
        );
        // a duplicate key keeps its first place and takes the last value, as Jackson does
        assert_eq!(
            canon(r#"{"type":"fixed","size":1,"name":"F","x":1,"y":2,"x":3}"#),
            r#"{"type":"fixed","name":"F","size":1,"x":3,"y":2}"#
        );
    }

    #[test]
    fn namespaces_and_nested_named_types() {
        assert_eq!(
            canon(
                r#"{"type":"record","name":"a.b.Outer","fields":[
                {"name":"in","type":{"type":"record","name":"Inner","fields":[
                    {"name":"e","type":{"type":"enum","name":"x.E","symbols":["S"]}}]}},
                {"name":"again","type":"Inner"},
                {"name":"e2","type":"x.E"},
                {"name":"root","type":{"type":"record","name":"Top","namespace":"","fields":[
                    {"name":"back","type":["null","a.b.Inner"]}]}}]}"#
            ),
            concat!(
                r#"{"type":"record","name":"Outer","namespace":"a.b","fields":["#,
                r#"{"name":"in","type":{"type":"record","name":"Inner","fields":["#,
                r#"{"name":"e","type":{"type":"enum","name":"E","namespace":"x","symbols":["S"]}}]}},"#,
                r#"{"name":"again","type":"Inner"},"#,
                r#"{"name":"e2","type":"x.E"},"#,
                r#"{"name":"root","type":{"type":"record","name":"Top","namespace":"","fields":["#,
                r#"{"name":"back","type":["null","a.b.Inner"]}]}}]}"#
            )
        );
        // a recursive type and the {"type": name} form
        assert_eq!(
            canon(
                r#"{"type":"record","name":"n.Node","fields":[
                {"name":"next","type":["null",{"type":"Node"}],"default":null}]}"#
            ),
            r#"{"type":"record","name":"Node","namespace":"n","fields":[{"name":"next","type":["null","Node"],"default":null}]}"#
        );
    }

    #[test]
    fn referenced_types_print_by_name() {
        let address = r#"{"type":"record","name":"Address","namespace":"com.x",
            "fields":[{"name":"street","type":"string"}]}"#;
        let person = r#"{"type":"record","name":"Person","namespace":"com.x",
            "fields":[{"name":"home","type":"Address"},{"name":"work","type":["null","com.x.Address"]}]}"#;
        let schema = parse(person, &[address]).unwrap();
        assert_eq!(
            schema.canonical(),
            r#"{"type":"record","name":"Person","namespace":"com.x","fields":[{"name":"home","type":"Address"},{"name":"work","type":["null","Address"]}]}"#
        );
        // only the referenced schemas' own types are known names: a type nested in one is
        // printed in full, as Java does
        let outer = r#"{"type":"record","name":"Outer","fields":[
            {"name":"c","type":{"type":"enum","name":"Color","symbols":["RED"]}}]}"#;
        let main = r#"{"type":"record","name":"M","fields":[{"name":"o","type":"Outer"},{"name":"c","type":"Color"}]}"#;
        assert_eq!(
            parse(main, &[outer]).unwrap().canonical(),
            r#"{"type":"record","name":"M","fields":[{"name":"o","type":"Outer"},{"name":"c","type":{"type":"enum","name":"Color","symbols":["RED"]}}]}"#
        );
        // references in dependency order
        let street = r#"{"type":"fixed","name":"com.x.Zip","size":5}"#;
        let address2 =
            r#"{"type":"record","name":"com.x.Address","fields":[{"name":"zip","type":"Zip"}]}"#;
        assert_eq!(
            parse(r#"["null","com.x.Address"]"#, &[street, address2])
                .unwrap()
                .canonical(),
            r#"["null","com.x.Address"]"#
        );
        // a missing reference
        assert_eq!(
            parse(person, &[]).unwrap_err(),
            "Invalid schema of type AVRO, details: Undefined schema: com.x.Address"
        );
    }

    #[test]
    fn numbers_print_as_java_does() {
        let field = |ty: &str, default: &str| {
            let text = format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"f","type":{ty},"default":{default}}}]}}"#
            );
            let c = canon(&text);
            let start = c.find("\"default\":").unwrap() + 10;
            c[start..c.len() - 3].to_string()
        };
        assert_eq!(field("\"double\"", "1.5e10"), "1.5E10");
        assert_eq!(field("\"double\"", "0.0001"), "1.0E-4");
        assert_eq!(field("\"double\"", "0.001"), "0.001");
        assert_eq!(field("\"double\"", "123456789.0"), "1.23456789E8");
        assert_eq!(field("\"double\"", "1234567.0"), "1234567.0");
        assert_eq!(field("\"double\"", "-0.0"), "-0.0");
        assert_eq!(field("\"double\"", "\"2.5\""), "2.5");
        assert_eq!(field("\"float\"", "\"NaN\""), "\"NaN\"");
        assert_eq!(
            field("\"long\"", "9223372036854775807"),
            "9223372036854775807"
        );
        assert_eq!(
            field("\"string\"", "\"tab\\t\\u0001é\""),
            "\"tab\\t\\u0001é\""
        );
        assert_eq!(
            field("{\"type\":\"map\",\"values\":\"int\"}", "{\"b\":1,\"a\":2}"),
            "{\"b\":1,\"a\":2}"
        );
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

    // ------------------------------------------------------------------------------------
    // compatibility
    // ------------------------------------------------------------------------------------

    fn record(fields: &str) -> String {
        format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)
    }

    /// Errors of `new` reading data written with `old` (BACKWARD), and of `old` reading `new`
    /// (FORWARD), both worded as `compatibility_errors` words them.
    fn both(old: &str, new: &str) -> (Vec<String>, Vec<String>) {
        let old = parse(old, &[]).unwrap_or_else(|e| panic!("{e}"));
        let new = parse(new, &[]).unwrap_or_else(|e| panic!("{e}"));
        (
            new.compatibility_errors(&old),
            old.compatibility_errors(&new),
        )
    }

    fn missing_default(field: &str, path: &str) -> String {
        format!(
            "{{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field '{field}' at path '{path}' in the new schema has no default value and is missing in the old schema', additionalInfo:'{field}'}}"
        )
    }

    fn type_mismatch(path: &str, reader: &str, writer: &str) -> String {
        format!(
            "{{errorType:'TYPE_MISMATCH', description:'The type (path '{path}') of a field in the new schema does not match with the old schema', additionalInfo:'reader type: {reader} not compatible with writer type: {writer}'}}"
        )
    }

    fn missing_symbols(symbols: &str, path: &str) -> String {
        format!(
            "{{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum symbols '{symbols}' at path '{path}' in the old schema', additionalInfo:'{symbols}'}}"
        )
    }

    fn missing_branch(path: &str, writer: &str) -> String {
        format!(
            "{{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type inside a union field at path '{path}' in the old schema', additionalInfo:'reader union lacking writer type: {writer}'}}"
        )
    }

    fn name_mismatch(path: &str, expected: &str) -> String {
        format!(
            "{{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path '{path}')', additionalInfo:'expected: {expected}'}}"
        )
    }

    fn fixed_size(path: &str, expected: i32, found: i32) -> String {
        format!(
            "{{errorType:'FIXED_SIZE_MISMATCH', description:'The size of FIXED type field at path '{path}' in the new schema does not match with the old schema', additionalInfo:'expected: {expected}, found: {found}'}}"
        )
    }

    const NONE: Vec<String> = Vec::new();

    /// What changes, the old schema, the new one, the errors of new reading old (BACKWARD)
    /// and of old reading new (FORWARD).
    type Evolution = (&'static str, String, String, Vec<String>, Vec<String>);

    #[test]
    fn evolution_table() {
        let a = r#"{"name":"a","type":"int"}"#;
        let enum_abc = |symbols: &str, default: &str| {
            record(&format!(
                r#"{{"name":"e","type":{{"type":"enum","name":"E","symbols":{symbols}{default}}}}}"#
            ))
        };
        let fixed = |size: i32| {
            record(&format!(
                r#"{{"name":"h","type":{{"type":"fixed","name":"F","size":{size}}}}}"#
            ))
        };
        let one = |ty: &str| record(&format!(r#"{{"name":"a","type":{ty}}}"#));
        // (what, old, new, errors of new reading old, errors of old reading new)
        let table: Vec<Evolution> = vec![
            (
                "add field without default",
                record(a),
                record(&format!(r#"{a},{{"name":"b","type":"string"}}"#)),
                vec![missing_default("b", "/fields/1")],
                NONE,
            ),
            (
                "add field with default",
                record(a),
                record(&format!(r#"{a},{{"name":"b","type":"string","default":""}}"#)),
                NONE,
                NONE,
            ),
            (
                "remove field without default",
                record(&format!(r#"{a},{{"name":"b","type":"string"}}"#)),
                record(a),
                NONE,
                vec![missing_default("b", "/fields/1")],
            ),
            (
                "remove field with default",
                record(&format!(r#"{a},{{"name":"b","type":"string","default":"x"}}"#)),
                record(a),
                NONE,
                NONE,
            ),
            (
                "int to long",
                one("\"int\""),
                one("\"long\""),
                NONE,
                vec![type_mismatch("/fields/0/type", "INT", "LONG")],
            ),
            (
                "long to float to double",
                one("\"long\""),
                one("\"double\""),
                NONE,
                vec![type_mismatch("/fields/0/type", "LONG", "DOUBLE")],
            ),
            ("string to bytes", one("\"string\""), one("\"bytes\""), NONE, NONE),
            (
                "int to string",
                one("\"int\""),
                one("\"string\""),
                vec![type_mismatch("/fields/0/type", "STRING", "INT")],
                vec![type_mismatch("/fields/0/type", "INT", "STRING")],
            ),
            (
                "enum symbol added",
                enum_abc(r#"["A","B"]"#, ""),
                enum_abc(r#"["A","B","C"]"#, ""),
                NONE,
                vec![missing_symbols("[C]", "/fields/0/type/symbols")],
            ),
            (
                "enum symbols removed",
                enum_abc(r#"["A","B","C","D"]"#, ""),
                enum_abc(r#"["A","B"]"#, ""),
                vec![missing_symbols("[C, D]", "/fields/0/type/symbols")],
                NONE,
            ),
            (
                "enum symbol removed, reader has a default",
                enum_abc(r#"["A","B","C"]"#, r#","default":"A""#),
                enum_abc(r#"["A","B"]"#, r#","default":"A""#),
                NONE,
                NONE,
            ),
            (
                "enum symbol added, old reader has a default",
                enum_abc(r#"["A","B"]"#, r#","default":"A""#),
                enum_abc(r#"["A","B","C"]"#, r#","default":"A""#),
                NONE,
                NONE,
            ),
            (
                "record renamed without alias",
                record(a),
                r#"{"type":"record","name":"R2","fields":[{"name":"a","type":"int"}]}"#.into(),
                vec![name_mismatch("/name", "R")],
                vec![name_mismatch("/name", "R2")],
            ),
            (
                "record renamed with alias",
                record(a),
                r#"{"type":"record","name":"R2","aliases":["R"],"fields":[{"name":"a","type":"int"}]}"#.into(),
                NONE,
                vec![name_mismatch("/name", "R2")],
            ),
            (
                "record moved to another namespace",
                r#"{"type":"record","name":"x.R","fields":[{"name":"a","type":"int"}]}"#.into(),
                r#"{"type":"record","name":"y.R","fields":[{"name":"a","type":"int"}]}"#.into(),
                NONE,
                NONE,
            ),
            (
                "field renamed with alias",
                record(a),
                record(r#"{"name":"b","type":"int","aliases":["a"]}"#),
                NONE,
                vec![missing_default("a", "/fields/0")],
            ),
            (
                "field renamed without alias",
                record(a),
                record(r#"{"name":"b","type":"int"}"#),
                vec![missing_default("b", "/fields/0")],
                vec![missing_default("a", "/fields/0")],
            ),
            (
                "union widened",
                one("\"int\""),
                one(r#"["int","string"]"#),
                NONE,
                vec![type_mismatch("/fields/0/type/1", "INT", "STRING")],
            ),
            (
                "union narrowed",
                one(r#"["null","int","string"]"#),
                one(r#"["null","int"]"#),
                vec![missing_branch("/fields/0/type/2", "STRING")],
                NONE,
            ),
            (
                "union branch promoted",
                one(r#"["null","int"]"#),
                one(r#"["null","long"]"#),
                NONE,
                vec![missing_branch("/fields/0/type/1", "LONG")],
            ),
            (
                "made optional",
                one("\"string\""),
                one(r#"["null","string"]"#),
                NONE,
                vec![type_mismatch("/fields/0/type/0", "STRING", "NULL")],
            ),
            (
                "fixed size changed",
                fixed(16),
                fixed(8),
                vec![fixed_size("/fields/0/type/size", 16, 8)],
                vec![fixed_size("/fields/0/type/size", 8, 16)],
            ),
            (
                "array items promoted",
                one(r#"{"type":"array","items":"int"}"#),
                one(r#"{"type":"array","items":"long"}"#),
                NONE,
                vec![type_mismatch("/fields/0/type/items", "INT", "LONG")],
            ),
            (
                "map values changed",
                one(r#"{"type":"map","values":"int"}"#),
                one(r#"{"type":"map","values":"boolean"}"#),
                vec![type_mismatch("/fields/0/type/values", "BOOLEAN", "INT")],
                vec![type_mismatch("/fields/0/type/values", "INT", "BOOLEAN")],
            ),
        ];
        for (what, old, new, backward, forward) in table {
            let (b, f) = both(&old, &new);
            assert_eq!(b, backward, "{what}: new reading old");
            assert_eq!(f, forward, "{what}: old reading new");
        }
    }

    #[test]
    fn top_level_and_multiple_errors() {
        let (b, f) = both("\"int\"", "\"long\"");
        assert_eq!(b, NONE);
        assert_eq!(f, vec![type_mismatch("/", "INT", "LONG")]);
        let (b, _) = both(
            &record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#),
            &record(
                r#"{"name":"a","type":"string"},{"name":"c","type":"int"},{"name":"b","type":"int"}"#,
            ),
        );
        assert_eq!(
            b,
            vec![
                type_mismatch("/fields/0/type", "STRING", "INT"),
                missing_default("c", "/fields/1"),
                type_mismatch("/fields/2/type", "INT", "STRING"),
            ]
        );
    }

    #[test]
    fn enum_field_with_only_an_enum_default() {
        // Java compares the enum with the writer's whole record when the field is missing
        let old = record(r#"{"name":"a","type":"int"}"#);
        let new = record(
            r#"{"name":"a","type":"int"},{"name":"e","type":{"type":"enum","name":"E","symbols":["X"],"default":"X"}}"#,
        );
        let (b, f) = both(&old, &new);
        assert_eq!(b, vec![type_mismatch("/fields/1/type", "ENUM", "RECORD")]);
        assert_eq!(f, NONE);
    }

    #[test]
    fn recursive_and_shared_types() {
        let list = r#"{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}"#;
        let list2 = r#"{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]}]}"#;
        let (b, f) = both(list, list2);
        assert_eq!(b, NONE);
        assert_eq!(f, vec![type_mismatch("/fields/0/type", "INT", "LONG")]);
        // a named type used twice is checked once: the memoized result keeps its first path
        let twice = |ty: &str| {
            format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"x","type":{{"type":"record","name":"P","fields":[{{"name":"v","type":"{ty}"}}]}}}},{{"name":"y","type":"P"}}]}}"#
            )
        };
        let (_, f) = both(&twice("int"), &twice("long"));
        assert_eq!(
            f,
            vec![
                type_mismatch("/fields/0/type/fields/0/type", "INT", "LONG"),
                type_mismatch("/fields/0/type/fields/0/type", "INT", "LONG"),
            ]
        );
    }

    #[test]
    fn directions_can_be_worded_by_the_caller() {
        let old = parse(&record(r#"{"name":"a","type":"int"}"#), &[]).unwrap();
        let new = parse(&record(r#"{"name":"b","type":"int","default":1}"#), &[]).unwrap();
        assert_eq!(
            old.compatibility_errors(&new),
            vec![missing_default("a", "/fields/0")]
        );
        assert_eq!(
            old.compatibility_errors_as(&new, "old", "new"),
            vec!["{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'a' at path '/fields/0' in the old schema has no default value and is missing in the new schema', additionalInfo:'a'}".to_string()]
        );
    }

    #[test]
    fn alias_matching_two_writer_fields_is_an_exception() {
        let (b, _) = both(
            &record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#),
            &record(r#"{"name":"a","type":"int","aliases":["b"]}"#),
        );
        assert_eq!(
            b,
            vec![format!(
                "Unexpected exception during compatibility check: Reader record field a type:INT pos:0 matches multiple fields in writer record schema {}",
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#
            )]
        );
    }

    #[test]
    fn java_number_layout() {
        assert_eq!(java_double_to_string(1.0), "1.0");
        assert_eq!(java_double_to_string(1e7), "1.0E7");
        assert_eq!(java_double_to_string(9999999.0), "9999999.0");
        assert_eq!(java_double_to_string(0.00123), "0.00123");
        assert_eq!(java_double_to_string(-1.25e-7), "-1.25E-7");
        assert_eq!(java_double_to_string(100.0), "100.0");
        assert_eq!(java_float_to_string(0.1), "0.1");
        assert_eq!(java_float_to_string(1.0e10), "1.0E10");
    }
}
