//! From protox's descriptors to the element model: types as written, labels where the
//! source had one, statements in source order.

use std::collections::{BTreeSet, HashMap, HashSet};

use prost_types::field_descriptor_proto::{Label as PbLabel, Type as PbType};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
};

use super::model::{
    Enum, EnumConst, Extend, Field, Group, Label, Message, OneOf, OptValue, ProtoFile, RVal,
    Reserved, Rpc, Service,
};
use super::options::options_of;

/// A source span: start and end (line, column).
pub(super) type Span = ((i32, i32), (i32, i32));

/// Source locations by path (a path may have several: one per `reserved` statement).
pub(super) struct Locations {
    by_path: HashMap<Vec<i32>, Vec<Span>>,
}

impl Locations {
    pub(super) fn new(file: &FileDescriptorProto) -> Locations {
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

    pub(super) fn get(&self, path: &[i32]) -> &[Span] {
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
    pub(super) fn file(&self, fd: &FileDescriptorProto) -> ProtoFile {
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

    pub(super) fn extends(&self, fields: &[FieldDescriptorProto]) -> Vec<Extend> {
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

    pub(super) fn field(
        &self,
        f: &FieldDescriptorProto,
        in_oneof: bool,
        map: Option<String>,
    ) -> Field {
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

    pub(super) fn message(&self, m: &DescriptorProto, path: &[i32]) -> Message {
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

    pub(super) fn enumeration(&self, e: &EnumDescriptorProto, path: &[i32]) -> Enum {
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

pub(super) fn model_of(file: &FileDescriptorProto) -> ProtoFile {
    let locations = Locations::new(file);
    Builder {
        proto3: file.syntax() == "proto3",
        from_source: !locations.by_path.is_empty(),
        locations: &locations,
    }
    .file(file)
}
