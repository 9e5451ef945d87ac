//! The element model, as Wire parses a .proto file, and the types by full name that
//! Confluent's diff and normalization resolve names against.

use std::collections::{HashMap, HashSet};

use super::known::known_dependencies;
use super::ProtobufSchema;

#[derive(Clone, Debug, Default)]
pub(super) struct ProtoFile {
    pub(super) syntax: Option<String>,
    pub(super) package: Option<String>,
    pub(super) imports: Vec<String>,
    pub(super) public_imports: Vec<String>,
    pub(super) options: Vec<Opt>,
    pub(super) messages: Vec<Message>,
    pub(super) enums: Vec<Enum>,
    pub(super) extends: Vec<Extend>,
    pub(super) services: Vec<Service>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Message {
    pub(super) name: String,
    pub(super) reserveds: Vec<Reserved>,
    pub(super) options: Vec<Opt>,
    pub(super) fields: Vec<Field>,
    pub(super) oneofs: Vec<OneOf>,
    pub(super) groups: Vec<Group>,
    pub(super) extensions: Vec<Reserved>,
    pub(super) extends: Vec<Extend>,
    pub(super) messages: Vec<Message>,
    pub(super) enums: Vec<Enum>,
    /// Declared with `option map_entry = true` (Wire keeps such messages; protox's own
    /// synthetic entries of `map<K, V>` fields are not in the model).
    pub(super) map_entry: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    Optional,
    Required,
    Repeated,
}

impl Label {
    pub(super) fn word(self) -> &'static str {
        match self {
            Label::Optional => "optional",
            Label::Required => "required",
            Label::Repeated => "repeated",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Field {
    pub(super) label: Option<Label>,
    /// As written: a scalar, a (possibly qualified) type name, or `map<K, V>`.
    pub(super) ty: String,
    pub(super) name: String,
    pub(super) tag: i32,
    pub(super) options: Vec<Opt>,
    pub(super) default: Option<String>,
    pub(super) json_name: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) struct OneOf {
    pub(super) name: String,
    pub(super) options: Vec<Opt>,
    pub(super) fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub(super) struct Group {
    pub(super) label: Option<Label>,
    pub(super) name: String,
    pub(super) tag: i32,
    pub(super) fields: Vec<Field>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Enum {
    pub(super) name: String,
    pub(super) reserveds: Vec<Reserved>,
    pub(super) options: Vec<Opt>,
    pub(super) constants: Vec<EnumConst>,
}

#[derive(Clone, Debug)]
pub(super) struct EnumConst {
    pub(super) name: String,
    pub(super) tag: i32,
    pub(super) options: Vec<Opt>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum RVal {
    Name(String),
    Num(i32),
    /// Inclusive bounds.
    Range(i32, i32),
}

/// One `reserved` (or `extensions`) statement.
#[derive(Clone, Debug)]
pub(super) struct Reserved {
    pub(super) values: Vec<RVal>,
}

#[derive(Clone, Debug)]
pub(super) struct Extend {
    pub(super) name: String,
    pub(super) fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub(super) struct Service {
    pub(super) name: String,
    pub(super) options: Vec<Opt>,
    pub(super) rpcs: Vec<Rpc>,
}

#[derive(Clone, Debug)]
pub(super) struct Rpc {
    pub(super) name: String,
    pub(super) request: String,
    pub(super) request_streaming: bool,
    pub(super) response: String,
    pub(super) response_streaming: bool,
    pub(super) options: Vec<Opt>,
}

#[derive(Clone, Debug)]
pub(super) struct Opt {
    /// The name without parentheses (`confluent.field_meta`, `java_package`, `(a).b` parts
    /// joined after the first).
    pub(super) name: String,
    pub(super) parenthesized: bool,
    /// Further name parts (`(a).b.c` is `a` with `b.c`).
    pub(super) rest: String,
    pub(super) value: OptValue,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum OptValue {
    Str(String),
    /// `true`/`false` or an enum constant.
    Ident(String),
    Num(String),
    Map(Vec<(String, OptValue)>),
    List(Vec<OptValue>),
}

pub(super) const MAX_TAG_VALUE: i32 = 536_870_911;

#[derive(Clone, Debug)]
pub(super) struct TypeInfo {
    pub(super) package: String,
    /// The import name of the referenced schema defining it; `None` for the schema's own types.
    pub(super) reference: Option<String>,
    pub(super) message: Option<Message>,
    pub(super) is_map: bool,
    pub(super) map_type: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Types {
    pub(super) types: HashMap<String, TypeInfo>,
    /// Extension fields by full name: repeated or not.
    pub(super) extend_fields: HashMap<String, bool>,
    pub(super) package: String,
}

impl Types {
    pub(super) fn collect(schema: &ProtobufSchema) -> Types {
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

    pub(super) fn add(
        &mut self,
        reference: Option<&str>,
        path: &[String],
        message: Option<&Message>,
    ) {
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
pub(super) fn resolve_in(
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
