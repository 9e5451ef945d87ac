//! Compatibility: Confluent's `SchemaDiff` of Protobuf schemas, and its messages.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::model::{resolve_in, Enum, Field, Label, Message, OneOf, TypeInfo, Types};
use super::printer::{is_scalar, map_parts};
use super::ProtobufSchema;

#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DiffKind {
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
    pub(super) fn compatible(self) -> bool {
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
pub(super) struct Difference {
    pub(super) kind: DiffKind,
    pub(super) path: String,
}

impl Difference {
    pub(super) fn describe(&self, new: &str, old: &str) -> String {
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

pub(super) fn diff(original: &ProtobufSchema, update: &ProtobufSchema) -> Vec<Difference> {
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
    pub(super) fn add(&mut self, kind: DiffKind) {
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
