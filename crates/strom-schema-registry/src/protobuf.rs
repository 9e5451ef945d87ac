//! Protobuf schemas: parsing (with the schemas referenced by their import names), the
//! canonical .proto text Confluent stores and serves, and Confluent's compatibility diff.
//!
//! Parsing and linking are protox's (the text must compile as protoc would compile it, its
//! imports found among the references or the well-known files). The printed text is our
//! own: Confluent stores its own rendering of the parsed file (Square Wire's element model),
//! so the module rebuilds that model from protox's unresolved descriptor: types as written,
//! `map<K, V>` instead of the synthetic entry messages, labels only where the source had one,
//! fields before oneofs, nested messages before nested enums, reserved statements as written.
//!
//! Compatibility follows Confluent's `SchemaDiff`: a diff from the original (older) schema to
//! the update (newer), each difference a type and a path such as `#/Message/3`, some types
//! compatible and the others reported as `{errorType:"...", description:"..."}`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use prost_types::field_descriptor_proto::{Label as PbLabel, Type as PbType};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    UninterpretedOption,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

// ---------------------------------------------------------------------------------------------
// The element model (as Wire parses a .proto file)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct ProtoFile {
    syntax: Option<String>,
    package: Option<String>,
    imports: Vec<String>,
    public_imports: Vec<String>,
    options: Vec<Opt>,
    messages: Vec<Message>,
    enums: Vec<Enum>,
    extends: Vec<Extend>,
    services: Vec<Service>,
}

#[derive(Clone, Debug, Default)]
struct Message {
    name: String,
    reserveds: Vec<Reserved>,
    options: Vec<Opt>,
    fields: Vec<Field>,
    oneofs: Vec<OneOf>,
    groups: Vec<Group>,
    extensions: Vec<Reserved>,
    extends: Vec<Extend>,
    messages: Vec<Message>,
    enums: Vec<Enum>,
    /// Declared with `option map_entry = true` (Wire keeps such messages; protox's own
    /// synthetic entries of `map<K, V>` fields are not in the model).
    map_entry: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Optional,
    Required,
    Repeated,
}

impl Label {
    fn word(self) -> &'static str {
        match self {
            Label::Optional => "optional",
            Label::Required => "required",
            Label::Repeated => "repeated",
        }
    }
}

#[derive(Clone, Debug)]
struct Field {
    label: Option<Label>,
    /// As written: a scalar, a (possibly qualified) type name, or `map<K, V>`.
    ty: String,
    name: String,
    tag: i32,
    options: Vec<Opt>,
    default: Option<String>,
    json_name: Option<String>,
}

#[derive(Clone, Debug)]
struct OneOf {
    name: String,
    options: Vec<Opt>,
    fields: Vec<Field>,
}

#[derive(Clone, Debug)]
struct Group {
    label: Option<Label>,
    name: String,
    tag: i32,
    fields: Vec<Field>,
}

#[derive(Clone, Debug, Default)]
struct Enum {
    name: String,
    reserveds: Vec<Reserved>,
    options: Vec<Opt>,
    constants: Vec<EnumConst>,
}

#[derive(Clone, Debug)]
struct EnumConst {
    name: String,
    tag: i32,
    options: Vec<Opt>,
}

#[derive(Clone, Debug, PartialEq)]
enum RVal {
    Name(String),
    Num(i32),
    /// Inclusive bounds.
    Range(i32, i32),
}

/// One `reserved` (or `extensions`) statement.
#[derive(Clone, Debug)]
struct Reserved {
    values: Vec<RVal>,
}

#[derive(Clone, Debug)]
struct Extend {
    name: String,
    fields: Vec<Field>,
}

#[derive(Clone, Debug)]
struct Service {
    name: String,
    options: Vec<Opt>,
    rpcs: Vec<Rpc>,
}

#[derive(Clone, Debug)]
struct Rpc {
    name: String,
    request: String,
    request_streaming: bool,
    response: String,
    response_streaming: bool,
    options: Vec<Opt>,
}

#[derive(Clone, Debug)]
struct Opt {
    /// The name without parentheses (`confluent.field_meta`, `java_package`, `(a).b` parts
    /// joined after the first).
    name: String,
    parenthesized: bool,
    /// Further name parts (`(a).b.c` is `a` with `b.c`).
    rest: String,
    value: OptValue,
}

#[derive(Clone, Debug, PartialEq)]
enum OptValue {
    Str(String),
    /// `true`/`false` or an enum constant.
    Ident(String),
    Num(String),
    Map(Vec<(String, OptValue)>),
    List(Vec<OptValue>),
}

const MAX_TAG_VALUE: i32 = 536_870_911;

// ---------------------------------------------------------------------------------------------
// From protox's descriptors to the model
// ---------------------------------------------------------------------------------------------

/// A source span: start and end (line, column).
type Span = ((i32, i32), (i32, i32));

/// Source locations by path (a path may have several: one per `reserved` statement).
struct Locations {
    by_path: HashMap<Vec<i32>, Vec<Span>>,
}

impl Locations {
    fn new(file: &FileDescriptorProto) -> Locations {
        let mut by_path: HashMap<Vec<i32>, Vec<_>> = HashMap::new();
        if let Some(info) = &file.source_code_info {
            for l in &info.location {
                let s = &l.span;
                let span = match s.len() {
                    3 => ((s[0], s[1]), (s[0], s[2])),
                    4 => ((s[0], s[1]), (s[2], s[3])),
                    _ => continue,
                };
                by_path.entry(l.path.clone()).or_default().push(span);
            }
        }
        Locations { by_path }
    }

    fn get(&self, path: &[i32]) -> &[Span] {
        self.by_path.get(path).map(Vec::as_slice).unwrap_or(&[])
    }

    fn has(&self, path: &[i32]) -> bool {
        self.by_path.contains_key(path)
    }

    /// Items (ranges at `base + [range_tag, i]`, names at `base + [name_tag, i]`) grouped
    /// into their statements (`base + [range_tag]`, `base + [name_tag]`), in source order.
    fn statements(
        &self,
        base: &[i32],
        range_tag: i32,
        ranges: Vec<RVal>,
        name_tag: Option<i32>,
        names: Vec<String>,
    ) -> Vec<Reserved> {
        let path = |tag: i32, i: Option<usize>| {
            let mut p = base.to_vec();
            p.push(tag);
            if let Some(i) = i {
                p.push(i as i32);
            }
            p
        };
        let mut items: Vec<(Option<(i32, i32)>, RVal)> = Vec::new();
        for (i, r) in ranges.into_iter().enumerate() {
            let at = self.get(&path(range_tag, Some(i))).first().map(|s| s.0);
            items.push((at, r));
        }
        if let Some(name_tag) = name_tag {
            for (i, n) in names.into_iter().enumerate() {
                let at = self.get(&path(name_tag, Some(i))).first().map(|s| s.0);
                items.push((at, RVal::Name(n)));
            }
        }
        if items.is_empty() {
            return Vec::new();
        }
        let mut stmts: Vec<Span> = self.get(&path(range_tag, None)).to_vec();
        if let Some(name_tag) = name_tag {
            stmts.extend_from_slice(self.get(&path(name_tag, None)));
        }
        stmts.sort();
        if stmts.is_empty() || items.iter().any(|(at, _)| at.is_none()) {
            // No source: ranges in one statement, names in another.
            let (names, nums): (Vec<_>, Vec<_>) = items
                .into_iter()
                .map(|(_, v)| v)
                .partition(|v| matches!(v, RVal::Name(_)));
            return [nums, names]
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|values| Reserved { values })
                .collect();
        }
        items.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        for (start, end) in stmts {
            let values: Vec<RVal> = items
                .iter()
                .filter(|(at, _)| at.is_some_and(|at| at >= start && at <= end))
                .map(|(_, v)| v.clone())
                .collect();
            if !values.is_empty() {
                out.push(Reserved { values });
            }
        }
        out
    }
}

fn scalar_name(ty: PbType) -> Option<&'static str> {
    Some(match ty {
        PbType::Double => "double",
        PbType::Float => "float",
        PbType::Int64 => "int64",
        PbType::Uint64 => "uint64",
        PbType::Int32 => "int32",
        PbType::Fixed64 => "fixed64",
        PbType::Fixed32 => "fixed32",
        PbType::Bool => "bool",
        PbType::String => "string",
        PbType::Bytes => "bytes",
        PbType::Uint32 => "uint32",
        PbType::Sfixed32 => "sfixed32",
        PbType::Sfixed64 => "sfixed64",
        PbType::Sint32 => "sint32",
        PbType::Sint64 => "sint64",
        PbType::Group | PbType::Message | PbType::Enum => return None,
    })
}

fn field_type_name(f: &FieldDescriptorProto) -> String {
    match f
        .r#type
        .and_then(|t| PbType::try_from(t).ok())
        .and_then(scalar_name)
    {
        Some(s) => s.to_owned(),
        None => f.type_name.clone().unwrap_or_default(),
    }
}

struct Builder<'a> {
    proto3: bool,
    /// Parsed from .proto text (not a compiled descriptor, which sets every `json_name`).
    from_source: bool,
    locations: &'a Locations,
}

impl Builder<'_> {
    fn file(&self, fd: &FileDescriptorProto) -> ProtoFile {
        let explicit_syntax = self.locations.has(&[12]);
        let syntax = match fd.syntax.as_deref() {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ if explicit_syntax => Some("proto2".to_owned()),
            _ => None,
        };
        let public: BTreeSet<usize> = fd.public_dependency.iter().map(|i| *i as usize).collect();
        let mut imports = Vec::new();
        let mut public_imports = Vec::new();
        for (i, d) in fd.dependency.iter().enumerate() {
            if public.contains(&i) {
                public_imports.push(d.clone());
            } else {
                imports.push(d.clone());
            }
        }
        let options = fd
            .options
            .as_ref()
            .map(|o| options_of(&o.uninterpreted_option, &[]))
            .unwrap_or_default();
        ProtoFile {
            syntax,
            package: fd.package.clone().filter(|p| !p.is_empty()),
            imports,
            public_imports,
            options,
            messages: fd
                .message_type
                .iter()
                .enumerate()
                .map(|(i, m)| self.message(m, &[4, i as i32]))
                .collect(),
            enums: fd
                .enum_type
                .iter()
                .enumerate()
                .map(|(i, e)| self.enumeration(e, &[5, i as i32]))
                .collect(),
            extends: self.extends(&fd.extension),
            services: fd
                .service
                .iter()
                .map(|s| Service {
                    name: s.name().to_owned(),
                    options: s
                        .options
                        .as_ref()
                        .map(|o| options_of(&o.uninterpreted_option, &[]))
                        .unwrap_or_default(),
                    rpcs: s
                        .method
                        .iter()
                        .map(|m| Rpc {
                            name: m.name().to_owned(),
                            request: m.input_type().to_owned(),
                            request_streaming: m.client_streaming(),
                            response: m.output_type().to_owned(),
                            response_streaming: m.server_streaming(),
                            options: m
                                .options
                                .as_ref()
                                .map(|o| options_of(&o.uninterpreted_option, &[]))
                                .unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn extends(&self, fields: &[FieldDescriptorProto]) -> Vec<Extend> {
        let mut out: Vec<Extend> = Vec::new();
        for f in fields {
            let extendee = f.extendee().to_owned();
            let field = self.field(f, false, None);
            match out.last_mut() {
                Some(e) if e.name == extendee => e.fields.push(field),
                _ => out.push(Extend {
                    name: extendee,
                    fields: vec![field],
                }),
            }
        }
        out
    }

    fn label(&self, f: &FieldDescriptorProto, in_oneof: bool) -> Option<Label> {
        if in_oneof {
            return None;
        }
        match f.label() {
            PbLabel::Repeated => Some(Label::Repeated),
            PbLabel::Required => Some(Label::Required),
            PbLabel::Optional if !self.proto3 || f.proto3_optional() => Some(Label::Optional),
            PbLabel::Optional => None,
        }
    }

    fn field(&self, f: &FieldDescriptorProto, in_oneof: bool, map: Option<String>) -> Field {
        let (label, ty) = match map {
            Some(ty) => (None, ty),
            None => (self.label(f, in_oneof), field_type_name(f)),
        };
        let options = f
            .options
            .as_ref()
            .map(|o| {
                let mut known = Vec::new();
                if let Some(p) = o.packed {
                    known.push(("packed", OptValue::Ident(p.to_string())));
                }
                if let Some(p) = o.deprecated {
                    known.push(("deprecated", OptValue::Ident(p.to_string())));
                }
                options_of(&o.uninterpreted_option, &known)
            })
            .unwrap_or_default();
        Field {
            label,
            ty,
            name: f.name().to_owned(),
            tag: f.number(),
            options,
            default: f.default_value.clone(),
            json_name: f
                .json_name
                .clone()
                .filter(|j| self.from_source || *j != default_json_name(f.name())),
        }
    }

    fn message(&self, m: &DescriptorProto, path: &[i32]) -> Message {
        let sub = |tag: i32, i: usize| {
            let mut p = path.to_vec();
            p.extend([tag, i as i32]);
            p
        };
        let is_entry = |d: &DescriptorProto| {
            d.options.as_ref().is_some_and(|o| o.map_entry()) && !self.declared_map_entry(d)
        };
        // `map<K, V>` fields: their synthetic entry messages are left out.
        let map_type = |f: &FieldDescriptorProto| -> Option<String> {
            if f.label() != PbLabel::Repeated {
                return None;
            }
            // Written `XEntry` in a parse, `.pkg.Msg.XEntry` in a compiled descriptor.
            let name = f.type_name();
            let name = name.rsplit('.').next().unwrap_or(name);
            let entry = m
                .nested_type
                .iter()
                .find(|n| n.name() == name && is_entry(n))?;
            let key = entry.field.iter().find(|f| f.number() == 1)?;
            let value = entry.field.iter().find(|f| f.number() == 2)?;
            Some(format!(
                "map<{}, {}>",
                field_type_name(key),
                field_type_name(value)
            ))
        };
        let group_names: HashSet<String> = m
            .field
            .iter()
            .filter(|f| f.r#type == Some(PbType::Group as i32))
            .map(|f| f.type_name().to_owned())
            .collect();
        let synthetic_oneof = |i: i32| {
            m.field
                .iter()
                .filter(|f| f.oneof_index == Some(i))
                .all(|f| f.proto3_optional())
        };
        let mut fields = Vec::new();
        let mut groups = Vec::new();
        for f in &m.field {
            if f.r#type == Some(PbType::Group as i32) {
                if let Some(body) = m.nested_type.iter().find(|n| n.name() == f.type_name()) {
                    groups.push(Group {
                        label: self.label(f, f.oneof_index.is_some()),
                        name: f.type_name().to_owned(),
                        tag: f.number(),
                        fields: body
                            .field
                            .iter()
                            .map(|g| self.field(g, false, None))
                            .collect(),
                    });
                }
                continue;
            }
            let in_real_oneof = f.oneof_index.is_some_and(|i| !synthetic_oneof(i));
            if !in_real_oneof {
                fields.push(self.field(f, false, map_type(f)));
            }
        }
        let oneofs = m
            .oneof_decl
            .iter()
            .enumerate()
            .filter(|(i, _)| !synthetic_oneof(*i as i32))
            .map(|(i, o)| OneOf {
                name: o.name().to_owned(),
                options: o
                    .options
                    .as_ref()
                    .map(|o| options_of(&o.uninterpreted_option, &[]))
                    .unwrap_or_default(),
                fields: m
                    .field
                    .iter()
                    .filter(|f| f.oneof_index == Some(i as i32))
                    .filter(|f| f.r#type != Some(PbType::Group as i32))
                    .map(|f| self.field(f, true, None))
                    .collect(),
            })
            .collect();
        let reserved_ranges = m
            .reserved_range
            .iter()
            .map(|r| range_value(r.start(), r.end() - 1))
            .collect();
        let extension_ranges = m
            .extension_range
            .iter()
            .map(|r| range_value(r.start(), r.end() - 1))
            .collect();
        let options = m
            .options
            .as_ref()
            .map(|o| options_of(&o.uninterpreted_option, &[]))
            .unwrap_or_default();
        // A declared `option map_entry = true` stays uninterpreted in protox's parse.
        let map_entry = self.declared_map_entry(m);
        Message {
            name: m.name().to_owned(),
            reserveds: self.locations.statements(
                path,
                9,
                reserved_ranges,
                Some(10),
                m.reserved_name.clone(),
            ),
            options,
            fields,
            oneofs,
            groups,
            extensions: self
                .locations
                .statements(path, 5, extension_ranges, None, Vec::new()),
            extends: self.extends(&m.extension),
            messages: m
                .nested_type
                .iter()
                .enumerate()
                .filter(|(_, n)| !is_entry(n) && !group_names.contains(n.name()))
                .map(|(i, n)| self.message(n, &sub(3, i)))
                .collect(),
            enums: m
                .enum_type
                .iter()
                .enumerate()
                .map(|(i, e)| self.enumeration(e, &sub(4, i)))
                .collect(),
            map_entry,
        }
    }

    /// Whether a message's `map_entry` option is written in the source (an interpreted
    /// descriptor, with no source, marks its synthetic entries the same way).
    fn declared_map_entry(&self, m: &DescriptorProto) -> bool {
        m.options.as_ref().is_some_and(|o| {
            o.uninterpreted_option.iter().any(|u| {
                u.name.len() == 1
                    && u.name[0].name_part == "map_entry"
                    && u.identifier_value.as_deref() == Some("true")
            })
        })
    }

    fn enumeration(&self, e: &EnumDescriptorProto, path: &[i32]) -> Enum {
        let options = e
            .options
            .as_ref()
            .map(|o| {
                let mut known = Vec::new();
                if let Some(a) = o.allow_alias {
                    known.push(("allow_alias", OptValue::Ident(a.to_string())));
                }
                options_of(&o.uninterpreted_option, &known)
            })
            .unwrap_or_default();
        let ranges = e
            .reserved_range
            .iter()
            .map(|r| range_value(r.start(), r.end()))
            .collect();
        Enum {
            name: e.name().to_owned(),
            reserveds: self
                .locations
                .statements(path, 4, ranges, Some(5), e.reserved_name.clone()),
            options,
            constants: e
                .value
                .iter()
                .map(|v| EnumConst {
                    name: v.name().to_owned(),
                    tag: v.number(),
                    options: v
                        .options
                        .as_ref()
                        .map(|o| options_of(&o.uninterpreted_option, &[]))
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// protoc's default JSON name: lowerCamelCase of the field name.
fn default_json_name(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn range_value(start: i32, end_inclusive: i32) -> RVal {
    if start == end_inclusive {
        RVal::Num(start)
    } else {
        RVal::Range(start, end_inclusive)
    }
}

fn options_of(uninterpreted: &[UninterpretedOption], known: &[(&str, OptValue)]) -> Vec<Opt> {
    let mut out: Vec<Opt> = known
        .iter()
        .map(|(name, value)| Opt {
            name: (*name).to_owned(),
            parenthesized: false,
            rest: String::new(),
            value: value.clone(),
        })
        .collect();
    for u in uninterpreted {
        let Some(first) = u.name.first() else {
            continue;
        };
        let rest: Vec<String> = u.name[1..]
            .iter()
            .map(|p| {
                if p.is_extension {
                    format!("({})", p.name_part)
                } else {
                    p.name_part.clone()
                }
            })
            .collect();
        let value = if let Some(s) = &u.identifier_value {
            OptValue::Ident(s.clone())
        } else if let Some(v) = u.positive_int_value {
            OptValue::Num(v.to_string())
        } else if let Some(v) = u.negative_int_value {
            OptValue::Num(v.to_string())
        } else if let Some(v) = u.double_value {
            OptValue::Num(format_double(v))
        } else if let Some(s) = &u.string_value {
            OptValue::Str(String::from_utf8_lossy(s).into_owned())
        } else if let Some(a) = &u.aggregate_value {
            OptValue::Map(parse_aggregate(a))
        } else {
            OptValue::Ident(String::new())
        };
        out.push(Opt {
            name: first.name_part.clone(),
            parenthesized: first.is_extension,
            rest: rest.join("."),
            value,
        });
    }
    out
}

fn format_double(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if v.is_nan() {
        "nan".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// A text-format message (an aggregate option value) as Wire reads it: fields in order, a
/// field given more than once collected into a list.
fn parse_aggregate(text: &str) -> Vec<(String, OptValue)> {
    let tokens = tokenize(text);
    let mut pos = 0;
    parse_entries(&tokens, &mut pos, None)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            // Adjacent literals concatenate.
            if let Some(Tok::Str(prev)) = out.last_mut() {
                prev.push_str(&s);
            } else {
                out.push(Tok::Str(s));
            }
        } else if "{}[]<>:,;".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !"{}[]<>:,;\"'#".contains(chars[i])
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    out
}

fn parse_entries(tokens: &[Tok], pos: &mut usize, close: Option<char>) -> Vec<(String, OptValue)> {
    let mut out: Vec<(String, OptValue)> = Vec::new();
    while *pos < tokens.len() {
        let key = match &tokens[*pos] {
            Tok::Punct(c) if Some(*c) == close => {
                *pos += 1;
                break;
            }
            Tok::Punct(',') | Tok::Punct(';') => {
                *pos += 1;
                continue;
            }
            Tok::Punct('[') => {
                // An extension: `[pkg.ext]`.
                let mut name = String::from("[");
                *pos += 1;
                while *pos < tokens.len() && tokens[*pos] != Tok::Punct(']') {
                    if let Tok::Word(w) = &tokens[*pos] {
                        name.push_str(w);
                    }
                    *pos += 1;
                }
                *pos += 1;
                name.push(']');
                name
            }
            Tok::Word(w) => {
                *pos += 1;
                w.clone()
            }
            _ => {
                *pos += 1;
                continue;
            }
        };
        if tokens.get(*pos) == Some(&Tok::Punct(':')) {
            *pos += 1;
        }
        let value = parse_value(tokens, pos);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, OptValue::List(list))) => list.push(value),
            Some((_, existing)) => {
                let first = std::mem::replace(existing, OptValue::List(Vec::new()));
                *existing = OptValue::List(vec![first, value]);
            }
            None => out.push((key, value)),
        }
    }
    out
}

fn parse_value(tokens: &[Tok], pos: &mut usize) -> OptValue {
    let Some(tok) = tokens.get(*pos).cloned() else {
        return OptValue::Ident(String::new());
    };
    *pos += 1;
    match tok {
        Tok::Punct('{') => OptValue::Map(parse_entries(tokens, pos, Some('}'))),
        Tok::Punct('<') => OptValue::Map(parse_entries(tokens, pos, Some('>'))),
        Tok::Punct('[') => {
            let mut list = Vec::new();
            while *pos < tokens.len() {
                match tokens[*pos] {
                    Tok::Punct(']') => {
                        *pos += 1;
                        break;
                    }
                    Tok::Punct(',') => *pos += 1,
                    _ => list.push(parse_value(tokens, pos)),
                }
            }
            OptValue::List(list)
        }
        Tok::Str(s) => OptValue::Str(s),
        Tok::Word(w) => {
            if w == "-" {
                if let Some(Tok::Word(n)) = tokens.get(*pos) {
                    *pos += 1;
                    return OptValue::Num(format!("-{n}"));
                }
            }
            if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
                OptValue::Num(w)
            } else {
                OptValue::Ident(w)
            }
        }
        Tok::Punct(c) => OptValue::Ident(c.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Types by full name (Confluent's diff Context), and name resolution
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct TypeInfo {
    package: String,
    /// The import name of the referenced schema defining it; `None` for the schema's own types.
    reference: Option<String>,
    message: Option<Message>,
    is_map: bool,
    map_type: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Types {
    types: HashMap<String, TypeInfo>,
    /// Extension fields by full name: repeated or not.
    extend_fields: HashMap<String, bool>,
    package: String,
}

impl Types {
    fn collect(schema: &ProtobufSchema) -> Types {
        let mut t = Types::default();
        let mut names = HashSet::new();
        for (name, file) in &schema.dependencies {
            names.insert(name.as_str());
            t.collect_file(Some(name), file);
        }
        for (name, file) in known_dependencies() {
            if !names.contains(name.as_str()) {
                t.collect_file(Some(name), file);
            }
        }
        t.collect_file(None, &schema.file);
        t
    }

    fn collect_file(&mut self, reference: Option<&str>, file: &ProtoFile) {
        self.package = file.package.clone().unwrap_or_default();
        let mut path = Vec::new();
        self.collect_extends(&file.extends, &mut path);
        for m in &file.messages {
            self.collect_message(reference, m, &mut path);
        }
        for e in &file.enums {
            path.push(e.name.clone());
            self.add(reference, &path, None);
            path.pop();
        }
    }

    fn full(&self, path: &[String]) -> String {
        let name = path.join(".");
        if self.package.is_empty() {
            name
        } else {
            format!("{}.{}", self.package, name)
        }
    }

    fn collect_extends(&mut self, extends: &[Extend], path: &mut Vec<String>) {
        for e in extends {
            for f in &e.fields {
                path.push(f.name.clone());
                let full = self.full(path);
                self.extend_fields
                    .insert(full, f.label == Some(Label::Repeated));
                path.pop();
            }
        }
    }

    fn collect_message(&mut self, reference: Option<&str>, m: &Message, path: &mut Vec<String>) {
        path.push(m.name.clone());
        self.collect_extends(&m.extends, path);
        self.add(reference, path, Some(m));
        for n in &m.messages {
            self.collect_message(reference, n, path);
        }
        for e in &m.enums {
            path.push(e.name.clone());
            self.add(reference, path, None);
            path.pop();
        }
        path.pop();
    }

    fn add(&mut self, reference: Option<&str>, path: &[String], message: Option<&Message>) {
        let is_map = message.is_some_and(|m| m.map_entry);
        let map_type = message.filter(|m| m.map_entry).and_then(|m| {
            let key = m.fields.iter().find(|f| f.name == "key")?;
            let value = m.fields.iter().find(|f| f.name == "value")?;
            Some(format!("map<{}, {}>", key.ty, value.ty))
        });
        let full = self.full(path);
        self.types.insert(
            full,
            TypeInfo {
                package: self.package.clone(),
                reference: reference.map(str::to_owned),
                message: message.cloned(),
                is_map,
                map_type,
            },
        );
    }
}

/// Resolves `name` as Confluent does: a leading dot is absolute; otherwise the package and
/// the enclosing names are tried as prefixes, longest first, then the name alone.
fn resolve_in(
    package: &str,
    scope: &[String],
    name: &str,
    exists: impl Fn(&str) -> bool,
    nonempty: bool,
) -> Option<String> {
    if !nonempty {
        return None;
    }
    if let Some(n) = name.strip_prefix('.') {
        return exists(n).then(|| n.to_owned());
    }
    let mut prefix: Vec<&str> = Vec::new();
    if !package.is_empty() {
        prefix.extend(package.split('.'));
    }
    prefix.extend(scope.iter().map(String::as_str));
    while !prefix.is_empty() {
        let candidate = format!("{}.{}", prefix.join("."), name);
        if exists(&candidate) {
            return Some(candidate);
        }
        prefix.pop();
    }
    exists(name).then(|| name.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Printing (Confluent's ProtobufSchemaUtils text of a parsed file)
// ---------------------------------------------------------------------------------------------

struct Printer<'a> {
    /// Normalizing: resolves names through `types`.
    types: Option<&'a Types>,
    scope: Vec<String>,
}

fn append_indented(out: &mut String, value: &str) {
    let value = value.strip_suffix('\n').unwrap_or(value);
    for line in value.split('\n') {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out
}

const SCALARS: [&str; 15] = [
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
];

fn is_scalar(ty: &str) -> bool {
    SCALARS.contains(&ty)
}

/// `map<K, V>`'s key and value.
fn map_parts(ty: &str) -> Option<(String, String)> {
    let inner = ty.strip_prefix("map<")?.strip_suffix('>')?;
    let (k, v) = inner.split_once(',')?;
    Some((k.trim().to_owned(), v.trim().to_owned()))
}

impl Printer<'_> {
    fn normalize(&self) -> bool {
        self.types.is_some()
    }

    fn resolve_type(&self, name: &str) -> Option<String> {
        let types = self.types?;
        resolve_in(
            &types.package,
            &self.scope,
            name,
            |n| types.types.contains_key(n),
            !types.types.is_empty(),
        )
    }

    fn resolve_extension(&self, name: &str) -> Option<String> {
        let types = self.types?;
        resolve_in(
            &types.package,
            &self.scope,
            name,
            |n| types.extend_fields.contains_key(n),
            !types.types.is_empty(),
        )
    }

    fn file(&mut self, f: &ProtoFile) -> String {
        let mut sb = String::new();
        if let Some(syntax) = &f.syntax {
            if !self.normalize() || syntax == "proto3" {
                sb.push_str(&format!("syntax = \"{syntax}\";\n"));
            }
        }
        if let Some(p) = &f.package {
            sb.push_str(&format!("package {p};\n"));
        }
        if !f.imports.is_empty() || !f.public_imports.is_empty() {
            sb.push('\n');
            let sorted = |v: &Vec<String>| -> Vec<String> {
                let mut v = v.clone();
                v.sort();
                v.dedup();
                v
            };
            let (imports, public) = if self.normalize() {
                (sorted(&f.imports), sorted(&f.public_imports))
            } else {
                (f.imports.clone(), f.public_imports.clone())
            };
            for i in imports {
                sb.push_str(&format!("import \"{i}\";\n"));
            }
            for i in public {
                sb.push_str(&format!("import public \"{i}\";\n"));
            }
        }
        let options = self.filter_options(&f.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                sb.push_str(&self.option_statement(o));
            }
        }
        let messages: Vec<&Message> = f
            .messages
            .iter()
            .filter(|m| !(self.normalize() && m.map_entry))
            .collect();
        if !messages.is_empty() || !f.enums.is_empty() {
            sb.push('\n');
            for m in messages {
                self.scope.push(m.name.clone());
                sb.push_str(&self.message(m));
                self.scope.pop();
            }
            for e in &f.enums {
                self.scope.push(e.name.clone());
                sb.push_str(&self.enumeration(e));
                self.scope.pop();
            }
        }
        if !f.extends.is_empty() {
            sb.push('\n');
            for e in self.extends(&f.extends) {
                sb.push_str(&self.extend(&e));
            }
        }
        if !f.services.is_empty() {
            sb.push('\n');
            for s in &f.services {
                sb.push_str(&self.service(s));
            }
        }
        sb
    }

    fn extends(&self, extends: &[Extend]) -> Vec<Extend> {
        if !self.normalize() {
            return extends.to_vec();
        }
        let mut out: Vec<Extend> = Vec::new();
        for e in extends {
            let name = self
                .resolve_type(&e.name)
                .map(|n| format!(".{n}"))
                .unwrap_or_else(|| e.name.clone());
            match out.iter_mut().find(|x| x.name == name) {
                Some(x) => x.fields.extend(e.fields.iter().cloned()),
                None => out.push(Extend {
                    name,
                    fields: e.fields.clone(),
                }),
            }
        }
        out
    }

    fn service(&self, s: &Service) -> String {
        let mut sb = format!("service {} {{", s.name);
        let options = self.filter_options(&s.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                append_indented(&mut sb, &self.option_statement(o));
            }
        }
        if !s.rpcs.is_empty() {
            sb.push('\n');
            for r in &s.rpcs {
                let mut line = format!("rpc {} (", r.name);
                if r.request_streaming {
                    line.push_str("stream ");
                }
                line.push_str(&self.qualified(&r.request));
                line.push_str(") returns (");
                if r.response_streaming {
                    line.push_str("stream ");
                }
                line.push_str(&self.qualified(&r.response));
                line.push(')');
                let options = self.filter_options(&r.options);
                if !options.is_empty() {
                    line.push_str(" {\n");
                    for o in &options {
                        append_indented(&mut line, &self.option_statement(o));
                    }
                    line.push('}');
                }
                line.push_str(";\n");
                append_indented(&mut sb, &line);
            }
        }
        sb.push_str("}\n");
        sb
    }

    fn qualified(&self, name: &str) -> String {
        match self.resolve_type(name) {
            Some(n) => format!(".{n}"),
            None => name.to_owned(),
        }
    }

    fn reserveds(&self, reserveds: &[Reserved], keyword: &str) -> Vec<String> {
        let mut list: Vec<Reserved> = reserveds.to_vec();
        if self.normalize() {
            list = list
                .into_iter()
                .flat_map(|r| r.values.into_iter().map(|v| Reserved { values: vec![v] }))
                .collect();
            let key = |r: &Reserved| match &r.values[0] {
                RVal::Num(n) | RVal::Range(n, _) => (*n, r.values[0].clone()),
                RVal::Name(_) => (i32::MAX, r.values[0].clone()),
            };
            list.sort_by(|a, b| {
                let (ka, va) = key(a);
                let (kb, vb) = key(b);
                ka.cmp(&kb)
                    .then_with(|| rval_text(&va, false).cmp(&rval_text(&vb, false)))
            });
        }
        list.iter()
            .map(|r| {
                let values: Vec<String> = r
                    .values
                    .iter()
                    .map(|v| rval_text(v, self.normalize()))
                    .collect();
                format!("{keyword} {};\n", values.join(", "))
            })
            .collect()
    }

    fn enumeration(&self, e: &Enum) -> String {
        let mut sb = format!("enum {} {{", e.name);
        if !e.reserveds.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&e.reserveds, "reserved") {
                append_indented(&mut sb, &r);
            }
        }
        if e.reserveds.is_empty() && (!e.options.is_empty() || !e.constants.is_empty()) {
            sb.push('\n');
        }
        for o in &self.filter_options(&e.options) {
            append_indented(&mut sb, &self.option_statement(o));
        }
        let mut constants = e.constants.clone();
        if self.normalize() {
            constants.sort_by(|a, b| a.tag.cmp(&b.tag).then_with(|| a.name.cmp(&b.name)));
        }
        for c in &constants {
            let mut line = format!("{} = {}", c.name, c.tag);
            let options = self.filter_options(&c.options);
            if !options.is_empty() {
                line.push(' ');
                line.push_str(&self.bracket_options(&options));
            }
            line.push_str(";\n");
            append_indented(&mut sb, &line);
        }
        sb.push_str("}\n");
        sb
    }

    fn message(&mut self, m: &Message) -> String {
        let mut sb = format!("message {} {{", m.name);
        if !m.reserveds.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&m.reserveds, "reserved") {
                append_indented(&mut sb, &r);
            }
        }
        let options = self.filter_options(&m.options);
        if !options.is_empty() {
            sb.push('\n');
            for o in &options {
                append_indented(&mut sb, &self.option_statement(o));
            }
        }
        if !m.fields.is_empty() {
            sb.push('\n');
            let mut fields = m.fields.clone();
            if self.normalize() {
                fields.sort_by_key(|f| f.tag);
            }
            for f in &fields {
                let text = self.field(f);
                append_indented(&mut sb, &text);
            }
        }
        if !m.oneofs.is_empty() {
            sb.push('\n');
            let mut oneofs = m.oneofs.clone();
            if self.normalize() {
                oneofs.retain(|o| !o.fields.is_empty());
                for o in &mut oneofs {
                    o.fields.sort_by_key(|f| f.tag);
                }
                oneofs.sort_by_key(|o| o.fields[0].tag);
            }
            for o in &oneofs {
                let mut text = format!("oneof {} {{", o.name);
                let options = self.filter_options(&o.options);
                if !options.is_empty() {
                    text.push('\n');
                    for op in &options {
                        append_indented(&mut text, &self.option_statement(op));
                    }
                }
                if !o.fields.is_empty() {
                    text.push('\n');
                    for f in &o.fields {
                        let ft = self.field(f);
                        append_indented(&mut text, &ft);
                    }
                }
                text.push_str("}\n");
                append_indented(&mut sb, &text);
            }
        }
        if !m.groups.is_empty() {
            sb.push('\n');
            for g in &m.groups {
                let mut text = String::new();
                if let Some(l) = g.label {
                    text.push_str(l.word());
                    text.push(' ');
                }
                text.push_str(&format!("group {} = {} {{", g.name, g.tag));
                if !g.fields.is_empty() {
                    text.push('\n');
                    let mut fields = g.fields.clone();
                    if self.normalize() {
                        fields.sort_by_key(|f| f.tag);
                    }
                    for f in &fields {
                        let ft = self.field(f);
                        append_indented(&mut text, &ft);
                    }
                }
                text.push_str("}\n");
                append_indented(&mut sb, &text);
            }
        }
        if !m.extensions.is_empty() {
            sb.push('\n');
            for r in self.reserveds(&m.extensions, "extensions") {
                append_indented(&mut sb, &r);
            }
        }
        if !m.extends.is_empty() {
            sb.push('\n');
            for e in self.extends(&m.extends) {
                let text = self.extend(&e);
                append_indented(&mut sb, &text);
            }
        }
        let nested: Vec<&Message> = m
            .messages
            .iter()
            .filter(|n| !(self.normalize() && n.map_entry))
            .collect();
        if !nested.is_empty() || !m.enums.is_empty() {
            sb.push('\n');
            for n in nested {
                self.scope.push(n.name.clone());
                let text = self.message(n);
                self.scope.pop();
                append_indented(&mut sb, &text);
            }
            for e in &m.enums {
                self.scope.push(e.name.clone());
                let text = self.enumeration(e);
                self.scope.pop();
                append_indented(&mut sb, &text);
            }
        }
        sb.push_str("}\n");
        sb
    }

    fn extend(&self, e: &Extend) -> String {
        let mut sb = format!("extend {} {{", e.name);
        if !e.fields.is_empty() {
            sb.push('\n');
            let mut fields = e.fields.clone();
            if self.normalize() {
                fields.sort_by_key(|f| f.tag);
            }
            for f in &fields {
                append_indented(&mut sb, &self.field(f));
            }
        }
        sb.push_str("}\n");
        sb
    }

    fn field(&self, f: &Field) -> String {
        let mut label = f.label;
        let mut ty = f.ty.clone();
        if self.normalize() {
            let mut map = map_parts(&ty);
            if !is_scalar(&ty) && map.is_none() {
                if let Some(resolved) = self.resolve_type(&ty) {
                    let info = self.types.and_then(|t| t.types.get(&resolved));
                    match info.and_then(|i| i.map_type.clone()) {
                        Some(m) => {
                            map = map_parts(&m);
                            ty = m;
                        }
                        None => ty = format!(".{resolved}"),
                    }
                }
            }
            if let Some((k, v)) = map {
                let v = match self.resolve_type(&v) {
                    Some(r) => format!(".{r}"),
                    None => v,
                };
                ty = format!("map<{k}, {v}>");
                label = None;
            }
        }
        let mut sb = String::new();
        if let Some(l) = label {
            sb.push_str(l.word());
            sb.push(' ');
        }
        sb.push_str(&format!("{} {} = {}", ty, f.name, f.tag));
        let mut options = f.options.clone();
        if let Some(d) = &f.default {
            let value = match ty.as_str() {
                "string" => OptValue::Str(d.clone()),
                "bool" => OptValue::Ident(d.clone()),
                t if is_scalar(t) => OptValue::Num(d.clone()),
                _ => OptValue::Ident(d.clone()),
            };
            options.push(Opt {
                name: "default".to_owned(),
                parenthesized: false,
                rest: String::new(),
                value,
            });
        }
        if let Some(j) = &f.json_name {
            options.push(Opt {
                name: "json_name".to_owned(),
                parenthesized: false,
                rest: String::new(),
                value: OptValue::Str(j.clone()),
            });
        }
        let options = self.filter_options(&options);
        if !options.is_empty() {
            sb.push(' ');
            sb.push_str(&self.bracket_options(&options));
        }
        sb.push_str(";\n");
        sb
    }

    fn filter_options(&self, options: &[Opt]) -> Vec<Opt> {
        if !self.normalize() {
            return options.to_vec();
        }
        let mut out: Vec<Opt> = options
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if o.parenthesized {
                    if let Some(r) = self.resolve_extension(&o.name) {
                        o.name = r;
                    }
                }
                o
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn option_text(&self, o: &Opt) -> String {
        let mut sb = if o.parenthesized {
            format!("({})", o.name)
        } else {
            o.name.clone()
        };
        if !o.rest.is_empty() {
            sb.push('.');
            sb.push_str(&o.rest);
        }
        match &o.value {
            OptValue::Map(entries) => {
                sb.push_str(" = {\n");
                self.option_map(&mut sb, entries);
                sb.push('}');
            }
            OptValue::List(values) => {
                sb.push_str(" = ");
                sb.push_str(&self.bracket_values(values));
            }
            v => {
                sb.push_str(" = ");
                sb.push_str(&self.value_text(v));
            }
        }
        sb
    }

    fn option_statement(&self, o: &Opt) -> String {
        format!("option {};\n", self.option_text(o))
    }

    fn bracket_options(&self, options: &[Opt]) -> String {
        let texts: Vec<String> = options.iter().map(|o| self.option_text(o)).collect();
        bracketed(&texts)
    }

    fn bracket_values(&self, values: &[OptValue]) -> String {
        let texts: Vec<String> = values.iter().map(|v| self.value_text(v)).collect();
        bracketed(&texts)
    }

    fn value_text(&self, v: &OptValue) -> String {
        match v {
            OptValue::Str(s) => format!("\"{}\"", escape(s)),
            OptValue::Ident(s) => s.clone(),
            OptValue::Num(n) => {
                if self.normalize() {
                    normalize_number(n)
                } else {
                    n.clone()
                }
            }
            OptValue::Map(entries) => {
                let mut sb = String::from("{\n");
                self.option_map(&mut sb, entries);
                sb.push('}');
                sb
            }
            OptValue::List(list) => {
                if self.normalize() && list.len() == 1 {
                    return self.value_text(&list[0]);
                }
                let mut sb = String::from("[\n");
                for (i, item) in list.iter().enumerate() {
                    let end = if i + 1 < list.len() { "," } else { "" };
                    append_indented(&mut sb, &format!("{}{end}", self.value_text(item)));
                }
                sb.push(']');
                sb
            }
        }
    }

    fn option_map(&self, sb: &mut String, entries: &[(String, OptValue)]) {
        let mut entries: Vec<(String, OptValue)> = entries.to_vec();
        if self.normalize() {
            entries.retain(|(_, v)| !matches!(v, OptValue::List(l) if l.is_empty()));
            for (k, _) in entries.iter_mut() {
                if let Some(inner) = k.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
                    if let Some(r) = self.resolve_extension(inner) {
                        *k = format!("[{r}]");
                    }
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|b, a| a.0 == b.0);
        }
        let last = entries.len().saturating_sub(1);
        for (i, (k, v)) in entries.iter().enumerate() {
            let end = if i != last { "," } else { "" };
            append_indented(sb, &format!("{k}: {}{end}", self.value_text(v)));
        }
    }
}

fn bracketed(texts: &[String]) -> String {
    if texts.len() == 1 {
        return format!("[{}]", texts[0]);
    }
    let mut sb = String::from("[\n");
    for (i, t) in texts.iter().enumerate() {
        let end = if i + 1 < texts.len() { "," } else { "" };
        append_indented(&mut sb, &format!("{t}{end}"));
    }
    sb.push(']');
    sb
}

fn rval_text(v: &RVal, normalize: bool) -> String {
    match v {
        RVal::Name(n) => format!("\"{n}\""),
        RVal::Num(n) => n.to_string(),
        RVal::Range(a, b) if normalize && a == b => a.to_string(),
        RVal::Range(a, b) => {
            if *b < MAX_TAG_VALUE {
                format!("{a} to {b}")
            } else {
                format!("{a} to max")
            }
        }
    }
}

/// Java's `DecimalFormat` (no grouping, at most three fraction digits) of a number.
fn normalize_number(n: &str) -> String {
    if n.parse::<i128>().is_ok() {
        return n.trim_start_matches('+').to_owned();
    }
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" {
                "-0".to_owned()
            } else {
                s.to_owned()
            }
        }
        _ => n.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Well-known dependencies (imports that need no reference)
// ---------------------------------------------------------------------------------------------

/// Imports Confluent resolves without a reference whose text protox does not carry.
const KNOWN_TEXTS: &[(&str, &str)] = &[
    (
        "confluent/meta.proto",
        "syntax = \"proto3\";\npackage confluent;\nimport \"google/protobuf/descriptor.proto\";\n\
         option java_package = \"io.confluent.protobuf\";\noption java_outer_classname = \"MetaProto\";\n\
         message Meta {\n  string doc = 1;\n  map<string, string> params = 2;\n  repeated string tags = 3;\n  repeated Rule rules = 4;\n}\n\
         message Rule {\n  string name = 1;\n  string doc = 2;\n  string expr = 3;\n  string sql = 4;\n}\n\
         extend google.protobuf.FileOptions {\n  Meta file_meta = 1088;\n}\n\
         extend google.protobuf.MessageOptions {\n  Meta message_meta = 1088;\n}\n\
         extend google.protobuf.FieldOptions {\n  Meta field_meta = 1088;\n}\n\
         extend google.protobuf.EnumOptions {\n  Meta enum_meta = 1088;\n}\n\
         extend google.protobuf.EnumValueOptions {\n  Meta enum_value_meta = 1088;\n}\n",
    ),
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\";\npackage confluent.type;\n\
         message Decimal {\n  bytes value = 1;\n  uint32 precision = 2;\n  int32 scale = 3;\n}\n",
    ),
    (
        "google/type/date.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Date {\n  int32 year = 1;\n  int32 month = 2;\n  int32 day = 3;\n}\n",
    ),
    (
        "google/type/timeofday.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message TimeOfDay {\n  int32 hours = 1;\n  int32 minutes = 2;\n  int32 seconds = 3;\n  int32 nanos = 4;\n}\n",
    ),
    (
        "google/type/money.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Money {\n  string currency_code = 1;\n  int64 units = 2;\n  int32 nanos = 3;\n}\n",
    ),
    (
        "google/type/latlng.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message LatLng {\n  double latitude = 1;\n  double longitude = 2;\n}\n",
    ),
    (
        "google/type/decimal.proto",
        "syntax = \"proto3\";\npackage google.type;\nmessage Decimal {\n  string value = 1;\n}\n",
    ),
    (
        "google/type/fraction.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Fraction {\n  int64 numerator = 1;\n  int64 denominator = 2;\n}\n",
    ),
    (
        "google/type/quaternion.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Quaternion {\n  double x = 1;\n  double y = 2;\n  double z = 3;\n  double w = 4;\n}\n",
    ),
    (
        "google/type/expr.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         message Expr {\n  string expression = 1;\n  string title = 2;\n  string description = 3;\n  string location = 4;\n}\n",
    ),
    (
        "google/type/interval.proto",
        "syntax = \"proto3\";\npackage google.type;\nimport \"google/protobuf/timestamp.proto\";\n\
         message Interval {\n  google.protobuf.Timestamp start_time = 1;\n  google.protobuf.Timestamp end_time = 2;\n}\n",
    ),
    (
        "google/type/dayofweek.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum DayOfWeek {\n  DAY_OF_WEEK_UNSPECIFIED = 0;\n  MONDAY = 1;\n  TUESDAY = 2;\n  WEDNESDAY = 3;\n  THURSDAY = 4;\n  FRIDAY = 5;\n  SATURDAY = 6;\n  SUNDAY = 7;\n}\n",
    ),
    (
        "google/type/month.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum Month {\n  MONTH_UNSPECIFIED = 0;\n  JANUARY = 1;\n  FEBRUARY = 2;\n  MARCH = 3;\n  APRIL = 4;\n  MAY = 5;\n  JUNE = 6;\n  JULY = 7;\n  AUGUST = 8;\n  SEPTEMBER = 9;\n  OCTOBER = 10;\n  NOVEMBER = 11;\n  DECEMBER = 12;\n}\n",
    ),
    (
        "google/type/calendar_period.proto",
        "syntax = \"proto3\";\npackage google.type;\n\
         enum CalendarPeriod {\n  CALENDAR_PERIOD_UNSPECIFIED = 0;\n  DAY = 1;\n  WEEK = 2;\n  FORTNIGHT = 3;\n  MONTH = 4;\n  QUARTER = 5;\n  HALF = 6;\n  YEAR = 7;\n}\n",
    ),
];

const GOOGLE_PROTOBUF: &[&str] = &[
    "google/protobuf/any.proto",
    "google/protobuf/api.proto",
    "google/protobuf/descriptor.proto",
    "google/protobuf/duration.proto",
    "google/protobuf/empty.proto",
    "google/protobuf/field_mask.proto",
    "google/protobuf/source_context.proto",
    "google/protobuf/struct.proto",
    "google/protobuf/timestamp.proto",
    "google/protobuf/type.proto",
    "google/protobuf/wrappers.proto",
];

fn model_of(file: &FileDescriptorProto) -> ProtoFile {
    let locations = Locations::new(file);
    Builder {
        proto3: file.syntax() == "proto3",
        from_source: !locations.by_path.is_empty(),
        locations: &locations,
    }
    .file(file)
}

/// The well-known files' models, for the types a diff or a normalization resolves.
fn known_dependencies() -> &'static [(String, ProtoFile)] {
    static KNOWN: OnceLock<Vec<(String, ProtoFile)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut out = Vec::new();
        let google = GoogleFileResolver::new();
        for name in GOOGLE_PROTOBUF {
            if let Ok(file) = google.open_file(name) {
                out.push((name.to_string(), model_of(file.file_descriptor_proto())));
            }
        }
        for (name, text) in KNOWN_TEXTS {
            if let Ok(file) = File::from_source(name, text) {
                out.push((name.to_string(), model_of(file.file_descriptor_proto())));
            }
        }
        out
    })
}

/// Files by import name: the references, then the well-known texts.
struct MapResolver {
    files: Vec<(String, String)>,
}

impl FileResolver for MapResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if let Some((_, text)) = self.files.iter().find(|(n, _)| n == name) {
            return File::from_source(name, text);
        }
        if let Some((_, text)) = KNOWN_TEXTS.iter().find(|(n, _)| *n == name) {
            return File::from_source(name, text);
        }
        Err(protox::Error::file_not_found(name))
    }
}

// ---------------------------------------------------------------------------------------------
// The public interface
// ---------------------------------------------------------------------------------------------

/// A parsed Protobuf schema, with the schemas it references (by import name).
#[derive(Clone, Debug)]
pub struct ProtobufSchema {
    file: Box<ProtoFile>,
    dependencies: Vec<(String, ProtoFile)>,
    /// The compiled (linked) descriptor, for `format=serialized`.
    descriptor: Box<FileDescriptorProto>,
}

/// The name the schema itself is compiled under (an import of it would be a cycle).
const MAIN_FILE: &str = "schema.proto";

/// Parses `text`. `references` are `(import name, schema text)` pairs for every schema it
/// references, directly or through other references. The text must compile: every import
/// found among the references or the well-known files, every type resolved. The error is a
/// message for the REST response (error 42201).
pub fn parse(text: &str, references: &[(&str, &str)]) -> Result<ProtobufSchema, String> {
    parse_inner(text, references)
        .map_err(|detail| format!("Invalid schema of type PROTOBUF, details: {detail}"))
}

fn parse_inner(text: &str, references: &[(&str, &str)]) -> Result<ProtobufSchema, String> {
    let main_name = if references.iter().any(|(n, _)| *n == MAIN_FILE) {
        "__strom_schema__.proto"
    } else {
        MAIN_FILE
    };
    // A .proto text, or (as Confluent also accepts) a base64 FileDescriptorProto.
    let main = match File::from_source(main_name, text) {
        Ok(file) => file,
        Err(error) => {
            let descriptor = decode_descriptor(text).ok_or_else(|| error.to_string())?;
            File::from_file_descriptor_proto(FileDescriptorProto {
                name: Some(main_name.to_owned()),
                ..descriptor
            })
        }
    };
    let model = model_of(main.file_descriptor_proto());
    let files: Vec<(String, String)> = references
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    let mut chain = ChainFileResolver::new();
    chain.add(MainResolver {
        name: main_name.to_owned(),
        file: main.file_descriptor_proto().clone(),
    });
    chain.add(MapResolver { files });
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.open_file(main_name).map_err(|e| e.to_string())?;
    let descriptor = compiler
        .file_descriptor_set()
        .file
        .into_iter()
        .find(|f| f.name() == main_name)
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    for (name, reference) in references {
        if let Some(f) = File::from_source(name, reference)
            .ok()
            .or_else(|| decode_descriptor(reference).map(File::from_file_descriptor_proto))
        {
            dependencies.push(((*name).to_owned(), model_of(f.file_descriptor_proto())));
        }
    }
    Ok(ProtobufSchema {
        file: Box::new(model),
        dependencies,
        descriptor: Box::new(descriptor),
    })
}

fn decode_descriptor(text: &str) -> Option<FileDescriptorProto> {
    use base64::Engine;
    use protox::prost::Message as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// The schema itself, already parsed.
struct MainResolver {
    name: String,
    file: FileDescriptorProto,
}

impl FileResolver for MainResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == self.name {
            Ok(File::from_file_descriptor_proto(self.file.clone()))
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

impl ProtobufSchema {
    /// The text Confluent stores and returns: the parsed file printed back (syntax, package,
    /// imports, options, then messages before enums, each message's reserved statements,
    /// options, fields, oneofs, extensions and nested types in that order), two-space indents.
    pub fn canonical(&self) -> String {
        Printer {
            types: None,
            scope: Vec::new(),
        }
        .file(&self.file)
    }

    /// The text with Confluent's `normalize=true`: imports sorted, options sorted and their
    /// names qualified, fields and enum constants by number, oneofs by their first field,
    /// type names fully qualified with a leading dot, `proto2` syntax left out.
    pub fn normalized(&self) -> String {
        let types = Types::collect(self);
        Printer {
            types: Some(&types),
            scope: Vec::new(),
        }
        .file(&self.file)
    }

    /// The schema as a base64 `FileDescriptorProto` (Confluent's `format=serialized`, what
    /// confluent-kafka's Protobuf serializers read), named `default` like the clients name it.
    pub fn serialized(&self) -> String {
        use base64::Engine;
        use protox::prost::Message as _;
        let mut descriptor = (*self.descriptor).clone();
        descriptor.name = Some("default".to_owned());
        descriptor.source_code_info = None;
        base64::engine::general_purpose::STANDARD.encode(descriptor.encode_to_vec())
    }

    /// The message indexes' first-level names, in order (what a serializer's message index
    /// 0 names).
    pub fn message_names(&self) -> Vec<String> {
        self.file.messages.iter().map(|m| m.name.clone()).collect()
    }

    /// Why this schema (the update) cannot follow `writer` (the original), as Confluent's
    /// diff reports it: its incompatible differences, each `{errorType:"...",
    /// description:"..."}`, the description naming this side `reader_word` and the original
    /// `writer_word` ("new" and "old" in a BACKWARD check).
    pub fn compatibility_errors_as(
        &self,
        writer: &ProtobufSchema,
        reader_word: &str,
        writer_word: &str,
    ) -> Vec<String> {
        diff(writer, self)
            .into_iter()
            .filter(|d| !d.kind.compatible())
            .map(|d| d.describe(reader_word, writer_word))
            .collect()
    }

    /// Every difference from `original` to this schema, as `TYPE #/path` (tests).
    #[cfg(test)]
    fn differences_from(&self, original: &ProtobufSchema) -> Vec<String> {
        diff(original, self)
            .into_iter()
            .map(|d| format!("{:?} {}", d.kind, d.path))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Compatibility: Confluent's SchemaDiff
// ---------------------------------------------------------------------------------------------

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DiffKind {
    PACKAGE_CHANGED,
    MESSAGE_ADDED,
    MESSAGE_REMOVED,
    MESSAGE_MOVED,
    ENUM_ADDED,
    ENUM_REMOVED,
    ENUM_CONST_ADDED,
    ENUM_CONST_CHANGED,
    ENUM_CONST_REMOVED,
    FIELD_ADDED,
    FIELD_REMOVED,
    FIELD_NAME_CHANGED,
    FIELD_KIND_CHANGED,
    FIELD_SCALAR_KIND_CHANGED,
    FIELD_NAMED_TYPE_CHANGED,
    FIELD_NUMERIC_LABEL_CHANGED,
    FIELD_STRING_OR_BYTES_LABEL_CHANGED,
    REQUIRED_FIELD_ADDED,
    REQUIRED_FIELD_REMOVED,
    ONEOF_ADDED,
    ONEOF_REMOVED,
    ONEOF_FIELD_ADDED,
    ONEOF_FIELD_REMOVED,
    ONEOF_FIELD_MOVED_TO_TOP_LEVEL,
    MULTIPLE_FIELDS_MOVED_TO_ONEOF,
    FIELD_MOVED_TO_EXISTING_ONEOF,
}

use DiffKind::*;

impl DiffKind {
    fn compatible(self) -> bool {
        matches!(
            self,
            MESSAGE_ADDED
                | MESSAGE_MOVED
                | ENUM_ADDED
                | ENUM_REMOVED
                | ENUM_CONST_ADDED
                | ENUM_CONST_CHANGED
                | ENUM_CONST_REMOVED
                | FIELD_ADDED
                | FIELD_REMOVED
                | FIELD_NAME_CHANGED
                | FIELD_STRING_OR_BYTES_LABEL_CHANGED
                | ONEOF_ADDED
                | ONEOF_REMOVED
                | ONEOF_FIELD_ADDED
                | ONEOF_FIELD_MOVED_TO_TOP_LEVEL
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Difference {
    kind: DiffKind,
    path: String,
}

impl Difference {
    fn describe(&self, new: &str, old: &str) -> String {
        let p = &self.path;
        let description = match self.kind {
            PACKAGE_CHANGED => format!(
                "The package at '{p}' in the {new} schema does not match the package in the {old} schema"
            ),
            MESSAGE_REMOVED => format!(
                "The {new} schema is missing a MESSAGE type at path '{p}' in the {old} schema"
            ),
            FIELD_KIND_CHANGED => format!(
                "The type of a field at path '{p}' in the {new} schema does not match the {old} schema"
            ),
            FIELD_SCALAR_KIND_CHANGED => format!(
                "The kind of a SCALAR field at path '{p}' in the {new} schema does not match its kind in the {old} schema"
            ),
            FIELD_NAMED_TYPE_CHANGED => format!(
                "The type of a MESSAGE field at path '{p}' in the {new} schema does not match its type in the {old} schema"
            ),
            FIELD_NUMERIC_LABEL_CHANGED => format!(
                "The label for a NUMERIC field at path '{p}' in the {new} schema does not match its label in the {old} schema"
            ),
            REQUIRED_FIELD_ADDED => format!(
                "A required field  at path '{p}' in the {new} schema is missing in the {old} schema"
            ),
            REQUIRED_FIELD_REMOVED => format!(
                "The {new} schema is missing a required field at path: '{p}' in the {old} schema"
            ),
            ONEOF_FIELD_REMOVED => format!(
                "The {new} schema is missing a oneof field at path '{p}' in the {old} schema"
            ),
            ONEOF_FIELD_MOVED_TO_TOP_LEVEL => format!(
                "The oneof field at path '{p}' in the {new} schema was moved out of its oneof to a top-level field in the {old} schema"
            ),
            MULTIPLE_FIELDS_MOVED_TO_ONEOF => format!(
                "Multiple fields in the oneof at path '{p}' in the {new} schema are outside a oneof in the {old} schema"
            ),
            FIELD_MOVED_TO_EXISTING_ONEOF => format!(
                "A field in the oneof at path '{p}' in the {new} schema is outside an existing oneof in the {old} schema"
            ),
            _ => String::new(),
        };
        format!(
            "{{errorType:\"{:?}\", description:\"{description}\"}}",
            self.kind
        )
    }
}

#[derive(Clone)]
struct DiffContext<'a> {
    original: &'a Types,
    update: &'a Types,
    original_package: String,
    update_package: String,
    /// Original messages being compared (stops recursion through recursive types).
    schemas: Vec<String>,
    full_path: Vec<String>,
    full_name: Vec<String>,
    diffs: Vec<Difference>,
}

fn diff(original: &ProtobufSchema, update: &ProtobufSchema) -> Vec<Difference> {
    let ot = Types::collect(original);
    let ut = Types::collect(update);
    let mut ctx = DiffContext {
        original: &ot,
        update: &ut,
        original_package: ot.package.clone(),
        update_package: ut.package.clone(),
        schemas: Vec::new(),
        full_path: Vec::new(),
        full_name: Vec::new(),
        diffs: Vec::new(),
    };
    if original.file.package != update.file.package {
        ctx.add(PACKAGE_CHANGED);
    }
    ctx.compare_types(
        &original.file.messages,
        &original.file.enums,
        &update.file.messages,
        &update.file.enums,
    );
    ctx.diffs
}

/// A message's fields by number, the oneof of each oneof member, and its oneofs by name.
type MessageIndex<'m> = (
    HashMap<i32, &'m Field>,
    HashMap<i32, String>,
    HashMap<String, &'m OneOf>,
);

fn index_message(m: &Message) -> MessageIndex<'_> {
    let mut by_tag = HashMap::new();
    let mut tag_oneof = HashMap::new();
    let mut oneofs = HashMap::new();
    for f in &m.fields {
        by_tag.insert(f.tag, f);
    }
    for o in &m.oneofs {
        oneofs.insert(o.name.clone(), o);
        for f in &o.fields {
            by_tag.insert(f.tag, f);
            tag_oneof.insert(f.tag, o.name.clone());
        }
    }
    (by_tag, tag_oneof, oneofs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Scalar,
    Map,
    Message,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScalarKind {
    GeneralNumber,
    SignedNumber,
    StringOrBytes,
    Fixed32,
    Fixed64,
    Float,
    Double,
}

impl<'a> DiffContext<'a> {
    fn add(&mut self, kind: DiffKind) {
        self.diffs.push(Difference {
            kind,
            path: format!("#/{}", self.full_path.join("/")),
        });
    }

    fn add_at(&mut self, parts: &[String], kind: DiffKind) {
        let n = self.full_path.len();
        self.full_path.extend(parts.iter().cloned());
        self.add(kind);
        self.full_path.truncate(n);
    }

    fn types(&self, original: bool) -> &'a Types {
        if original {
            self.original
        } else {
            self.update
        }
    }

    fn resolve(&self, name: &str, original: bool) -> Option<String> {
        let types = self.types(original);
        let package = if original {
            &self.original_package
        } else {
            &self.update_package
        };
        resolve_in(
            package,
            &self.full_name,
            name,
            |n| types.types.contains_key(n),
            !types.types.is_empty(),
        )
    }

    fn get_type(&self, name: &str, original: bool) -> Option<&'a TypeInfo> {
        let full = self.resolve(name, original)?;
        self.types(original).types.get(&full)
    }

    fn compare_types(
        &mut self,
        original_messages: &[Message],
        original_enums: &[Enum],
        update_messages: &[Message],
        update_enums: &[Enum],
    ) {
        let index = |list: &[Message], name: &str| list.iter().position(|m| m.name == name);
        let mut names: Vec<&str> = original_messages.iter().map(|m| m.name.as_str()).collect();
        for m in update_messages {
            if !names.contains(&m.name.as_str()) {
                names.push(&m.name);
            }
        }
        for name in names {
            self.full_path.push(name.to_owned());
            self.full_name.push(name.to_owned());
            match (index(original_messages, name), index(update_messages, name)) {
                (Some(_), None) => {
                    if self.get_type(name, true).is_some_and(|t| !t.is_map) {
                        self.add(MESSAGE_REMOVED);
                    }
                }
                (None, Some(_)) => {
                    if self.get_type(name, false).is_some_and(|t| !t.is_map) {
                        self.add(MESSAGE_ADDED);
                    }
                }
                (Some(oi), Some(ui)) => {
                    self.compare_messages(&original_messages[oi], &update_messages[ui]);
                    if oi != ui {
                        self.add(MESSAGE_MOVED);
                    }
                }
                (None, None) => {}
            }
            self.full_path.pop();
            self.full_name.pop();
        }
        let mut enum_names: Vec<&str> = original_enums.iter().map(|e| e.name.as_str()).collect();
        for e in update_enums {
            if !enum_names.contains(&e.name.as_str()) {
                enum_names.push(&e.name);
            }
        }
        for name in enum_names {
            self.full_path.push(name.to_owned());
            self.full_name.push(name.to_owned());
            let o = original_enums.iter().find(|e| e.name == name);
            let u = update_enums.iter().find(|e| e.name == name);
            match (o, u) {
                (Some(_), None) => self.add(ENUM_REMOVED),
                (None, Some(_)) => self.add(ENUM_ADDED),
                (Some(o), Some(u)) => self.compare_enums(o, u),
                (None, None) => {}
            }
            self.full_path.pop();
            self.full_name.pop();
        }
    }

    fn compare_enums(&mut self, original: &Enum, update: &Enum) {
        let mut tags: BTreeSet<i32> = original.constants.iter().map(|c| c.tag).collect();
        tags.extend(update.constants.iter().map(|c| c.tag));
        for tag in tags {
            let o = original.constants.iter().rev().find(|c| c.tag == tag);
            let u = update.constants.iter().rev().find(|c| c.tag == tag);
            let kind = match (o, u) {
                (Some(_), None) => Some(ENUM_CONST_REMOVED),
                (None, Some(_)) => Some(ENUM_CONST_ADDED),
                (Some(o), Some(u)) if o.name != u.name => Some(ENUM_CONST_CHANGED),
                _ => None,
            };
            if let Some(kind) = kind {
                self.add_at(&[tag.to_string()], kind);
            }
        }
    }

    fn compare_messages(&mut self, original: &Message, update: &Message) {
        let key = format!(
            "{}|{}|{}",
            self.original_package,
            self.full_name.join("."),
            original.name
        );
        if !self.schemas.contains(&key) {
            self.schemas.push(key.clone());
            self.compare_message_fields(original, update);
            self.schemas.retain(|k| *k != key);
        }
        self.compare_types(
            &original.messages,
            &original.enums,
            &update.messages,
            &update.enums,
        );
    }

    fn compare_message_fields(&mut self, original: &Message, update: &Message) {
        let (o_by_tag, o_oneof, o_oneofs) = index_message(original);
        let (u_by_tag, u_oneof, u_oneofs) = index_message(update);

        let mut deleted_oneofs = HashSet::new();
        for (name, oneof) in &o_oneofs {
            if !u_oneofs.contains_key(name)
                && !oneof.fields.iter().any(|f| u_by_tag.contains_key(&f.tag))
            {
                deleted_oneofs.insert(name.clone());
            }
        }

        for oneof in &update.oneofs {
            let mut groups = HashSet::new();
            let mut moved_in = 0;
            for f in &oneof.fields {
                if let Some(o) = o_oneof.get(&f.tag) {
                    groups.insert(format!("oneof:{o}"));
                } else if o_by_tag.contains_key(&f.tag) {
                    groups.insert(format!("field:{}", f.tag));
                    moved_in += 1;
                }
            }
            if groups.len() > 1 {
                let kind = if moved_in > 1 {
                    MULTIPLE_FIELDS_MOVED_TO_ONEOF
                } else {
                    FIELD_MOVED_TO_EXISTING_ONEOF
                };
                self.add_at(std::slice::from_ref(&oneof.name), kind);
            }
        }

        let mut all_oneofs: BTreeSet<&String> = o_oneofs.keys().collect();
        all_oneofs.extend(u_oneofs.keys());
        for name in all_oneofs {
            if !u_oneofs.contains_key(name) {
                self.add_at(std::slice::from_ref(name), ONEOF_REMOVED);
            } else if !o_oneofs.contains_key(name) {
                self.add_at(std::slice::from_ref(name), ONEOF_ADDED);
            }
        }

        let mut tags: BTreeSet<i32> = o_by_tag.keys().copied().collect();
        tags.extend(u_by_tag.keys().copied());
        for tag in tags {
            let of = o_by_tag.get(&tag);
            let uf = u_by_tag.get(&tag);
            let oo = o_oneof.get(&tag);
            let uo = u_oneof.get(&tag);
            let t = tag.to_string();
            match (of, uf) {
                (Some(of), None) => match oo {
                    Some(oo) => {
                        if !deleted_oneofs.contains(oo) {
                            self.add_at(&[oo.clone(), t], ONEOF_FIELD_REMOVED);
                        }
                    }
                    None => {
                        let kind = if of.label == Some(Label::Required) {
                            REQUIRED_FIELD_REMOVED
                        } else {
                            FIELD_REMOVED
                        };
                        self.add_at(&[t], kind);
                    }
                },
                (None, Some(uf)) => match uo {
                    Some(uo) => self.add_at(&[uo.clone(), t], ONEOF_FIELD_ADDED),
                    None => {
                        let kind = if uf.label == Some(Label::Required) {
                            REQUIRED_FIELD_ADDED
                        } else {
                            FIELD_ADDED
                        };
                        self.add_at(&[t], kind);
                    }
                },
                (Some(of), Some(uf)) => {
                    if oo.is_some() && uo.is_none() {
                        self.add_at(std::slice::from_ref(&t), ONEOF_FIELD_MOVED_TO_TOP_LEVEL);
                    }
                    let n = self.full_path.len();
                    if let Some(uo) = uo {
                        self.full_path.push(uo.clone());
                    }
                    self.full_path.push(t);
                    self.compare_fields(of, uf);
                    self.full_path.truncate(n);
                }
                (None, None) => {}
            }
        }
    }

    fn compare_fields(&mut self, original: &Field, update: &Field) {
        if original.name != update.name {
            self.add(FIELD_NAME_CHANGED);
        }
        self.compare_labels_and_types(
            original.label,
            update.label,
            original.ty.clone(),
            update.ty.clone(),
        );
    }

    fn kind(&self, ty: &str, original: bool) -> Kind {
        if is_scalar(ty) {
            Kind::Scalar
        } else if ty.starts_with("map<") {
            Kind::Map
        } else if self
            .get_type(ty, original)
            .is_some_and(|t| t.message.is_none())
        {
            Kind::Scalar
        } else {
            Kind::Message
        }
    }

    fn scalar_kind(ty: &str) -> ScalarKind {
        match ty {
            "int32" | "int64" | "uint32" | "uint64" | "bool" => ScalarKind::GeneralNumber,
            "sint32" | "sint64" => ScalarKind::SignedNumber,
            "string" | "bytes" => ScalarKind::StringOrBytes,
            "fixed32" | "sfixed32" => ScalarKind::Fixed32,
            "fixed64" | "sfixed64" => ScalarKind::Fixed64,
            "float" => ScalarKind::Float,
            "double" => ScalarKind::Double,
            // An enum.
            _ => ScalarKind::GeneralNumber,
        }
    }

    fn compare_labels_and_types(
        &mut self,
        original_label: Option<Label>,
        update_label: Option<Label>,
        mut original_type: String,
        mut update_type: String,
    ) {
        if let Some(m) = self
            .get_type(&original_type, true)
            .filter(|t| t.is_map)
            .and_then(|t| t.map_type.clone())
        {
            original_type = m;
        }
        if let Some(m) = self
            .get_type(&update_type, false)
            .filter(|t| t.is_map)
            .and_then(|t| t.map_type.clone())
        {
            update_type = m;
        }
        let ok = self.kind(&original_type, true);
        let uk = self.kind(&update_type, false);
        if ok != uk {
            self.add(FIELD_KIND_CHANGED);
            return;
        }
        match ok {
            Kind::Scalar => {
                let osk = Self::scalar_kind(&original_type);
                let usk = Self::scalar_kind(&update_type);
                if osk != usk {
                    self.add(FIELD_SCALAR_KIND_CHANGED);
                } else if let (Some(ol), Some(ul)) = (original_label, update_label) {
                    if ol != ul {
                        self.add(if osk == ScalarKind::StringOrBytes {
                            FIELD_STRING_OR_BYTES_LABEL_CHANGED
                        } else {
                            FIELD_NUMERIC_LABEL_CHANGED
                        });
                    }
                }
            }
            Kind::Message => self.compare_message_types(&original_type, &update_type),
            Kind::Map => {
                let (ok, ov) = map_parts(&original_type).unwrap_or_default();
                let (uk, uv) = map_parts(&update_type).unwrap_or_default();
                self.compare_labels_and_types(None, None, ok, uk);
                self.compare_labels_and_types(None, None, ov, uv);
            }
        }
    }

    fn compare_message_types(&mut self, original: &str, update: &str) {
        let of = self.resolve(original, true);
        let uf = self.resolve(update, false);
        let (Some(of), Some(uf)) = (of, uf) else {
            if original != update {
                self.add(FIELD_NAMED_TYPE_CHANGED);
            }
            return;
        };
        let ot = &self.original.types[&of];
        let ut = &self.update.types[&uf];
        let local = |full: &str, package: &str| -> String {
            full.strip_prefix(&format!("{package}."))
                .unwrap_or(full)
                .to_owned()
        };
        let ol = local(&of, &ot.package);
        let ul = local(&uf, &ut.package);
        if ol != ul {
            self.add(FIELD_NAMED_TYPE_CHANGED);
            return;
        }
        // Both the schema's own types: compared where they are declared.
        if ot.reference.is_none() && ut.reference.is_none() {
            return;
        }
        let (Some(om), Some(um)) = (&ot.message, &ut.message) else {
            return;
        };
        let mut sub = DiffContext {
            original: self.original,
            update: self.update,
            original_package: ot.package.clone(),
            update_package: ut.package.clone(),
            schemas: self.schemas.clone(),
            full_path: ol.split('.').map(str::to_owned).collect(),
            full_name: ol.split('.').map(str::to_owned).collect(),
            diffs: Vec::new(),
        };
        sub.compare_messages(om, um);
        let incompatible = sub.diffs.iter().any(|d| !d.kind.compatible());
        self.diffs.extend(sub.diffs);
        if incompatible {
            self.add(FIELD_NAMED_TYPE_CHANGED);
        }
    }
}

#[cfg(test)]
mod tests;
