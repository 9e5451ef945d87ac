//! The schema model: primitives, named types by full name, and Java's type tags.

use std::collections::HashMap;

use super::json::Json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prim {
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
    pub(super) fn from_name(name: &str) -> Option<Prim> {
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

    pub(super) fn name(self) -> &'static str {
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
pub(super) type Props = Vec<(String, Json)>;

/// A schema. Named types are held by full name in the schema's table (`Ref`), so a type
/// referenced twice is the same type, as in Java.
#[derive(Clone, Debug)]
pub(super) enum S {
    Prim(Prim, Props),
    Array(Box<S>, Props),
    Map(Box<S>, Props),
    Union(Vec<S>),
    Ref(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Name {
    pub(super) name: String,
    pub(super) space: Option<String>,
}

impl Name {
    pub(super) fn full(&self) -> String {
        match &self.space {
            Some(space) => format!("{space}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Java's `Name.getQualified`: the short name when in the default namespace (unless the
    /// short name is a type name).
    pub(super) fn qualified(&self, default_space: Option<&str>) -> String {
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
pub(super) enum Order {
    Ascending,
    Descending,
    Ignore,
}

#[derive(Clone, Debug)]
pub(super) struct Field {
    pub(super) name: String,
    pub(super) ty: S,
    pub(super) doc: Option<String>,
    pub(super) default: Option<Json>,
    pub(super) order: Order,
    pub(super) aliases: Vec<String>,
    pub(super) props: Props,
}

#[derive(Clone, Debug)]
pub(super) enum Kind {
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
pub(super) struct Named {
    pub(super) name: Name,
    pub(super) doc: Option<String>,
    pub(super) aliases: Vec<Name>,
    pub(super) props: Props,
    pub(super) kind: Kind,
}

impl Named {
    pub(super) fn type_tag(&self) -> Tag {
        match self.kind {
            Kind::Record { .. } => Tag::Record,
            Kind::Enum { .. } => Tag::Enum,
            Kind::Fixed { .. } => Tag::Fixed,
        }
    }

    /// Java's `getAliases()`: full names, or `.name` for an alias without namespace in a
    /// record that has one.
    pub(super) fn java_aliases(&self) -> Vec<String> {
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
pub(super) enum Tag {
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
    pub(super) fn java(self) -> &'static str {
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

    pub(super) fn of_prim(p: Prim) -> Tag {
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
pub(super) type Types = HashMap<String, Named>;

pub(super) fn tag(types: &Types, s: &S) -> Tag {
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
pub(super) fn union_branch_name(s: &S) -> String {
    match s {
        S::Prim(p, _) => p.name().to_string(),
        S::Array(..) => "array".into(),
        S::Map(..) => "map".into(),
        S::Union(_) => "union".into(),
        S::Ref(full) => full.clone(),
    }
}
