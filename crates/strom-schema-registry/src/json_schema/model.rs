//! The schema model: how Everit's loader classifies a JSON schema.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::Draft;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Side {
    Original,
    Update,
}

/// One of the schemas a JSON object holds: Everit extracts several from one object (an `enum`
/// next to a `type`, say) and combines them into a synthetic `allOf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Facet {
    Enum,
    Combiner(&'static str),
    Not,
    Const,
    /// `type` as a string, or one of the types of a `type` array.
    Type(Ty),
    /// `type` as an array: an `anyOf` of each type.
    TypeArray,
    /// No `type`: the type whose keywords the object uses.
    Sniffed(Ty),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Ty {
    String,
    Number,
    Integer,
    Boolean,
    Null,
    Object,
    Array,
}

impl Ty {
    fn from_name(name: &str) -> Option<Ty> {
        Some(match name {
            "string" => Ty::String,
            "number" => Ty::Number,
            "integer" => Ty::Integer,
            "boolean" => Ty::Boolean,
            "null" => Ty::Null,
            "object" => Ty::Object,
            "array" => Ty::Array,
            _ => return None,
        })
    }
}

/// A schema in one of the two sides' documents.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node<'a> {
    pub(super) value: &'a Value,
    /// `None`: the whole value; else one schema extracted from the object.
    pub(super) facet: Option<Facet>,
    pub(super) side: Side,
    /// 0: the side's root document; i: its reference i - 1.
    pub(super) doc: usize,
}

impl<'a> Node<'a> {
    pub(super) fn raw(value: &'a Value, side: Side, doc: usize) -> Node<'a> {
        Node {
            value,
            facet: None,
            side,
            doc,
        }
    }

    pub(super) fn child(&self, value: &'a Value) -> Node<'a> {
        Node::raw(value, self.side, self.doc)
    }

    fn with_facet(&self, facet: Facet) -> Node<'a> {
        Node {
            facet: Some(facet),
            ..*self
        }
    }

    pub(super) fn map(&self) -> Option<&'a Map<String, Value>> {
        self.value.as_object()
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map().and_then(|m| m.get(key))
    }

    pub(super) fn has_default(&self) -> bool {
        self.get("default").is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Criterion {
    All,
    Any,
    One,
}

impl Criterion {
    pub(super) fn name(self) -> &'static str {
        match self {
            Criterion::All => "allOf",
            Criterion::Any => "anyOf",
            Criterion::One => "oneOf",
        }
    }
}

/// Everit's schema classes, as far as the diff tells them apart.
#[derive(Clone, Debug)]
pub(super) enum Kind<'a> {
    Empty,
    True,
    False,
    Ref(&'a str),
    String,
    Number { integer: bool },
    Boolean,
    Null,
    Object,
    Array,
    Enum(&'a [Value]),
    Const(&'a Value),
    Not(Node<'a>),
    Combined(Criterion, Vec<Node<'a>>),
}

impl Kind<'_> {
    /// Everit's classes, for `schemaTypesEqual` (any two combined schemas are alike).
    pub(super) fn class(&self) -> u8 {
        match self {
            Kind::Empty => 0,
            Kind::True => 1,
            Kind::False => 2,
            Kind::Ref(_) => 3,
            Kind::String => 4,
            Kind::Number { .. } => 5,
            Kind::Boolean => 6,
            Kind::Null => 7,
            Kind::Object => 8,
            Kind::Array => 9,
            Kind::Enum(_) => 10,
            Kind::Const(_) => 11,
            Kind::Not(_) => 12,
            Kind::Combined(..) => 13,
        }
    }

    /// `instanceof EmptySchema` (a true schema is one).
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Kind::Empty | Kind::True)
    }
}

const OBJECT_KEYWORDS: &[&str] = &[
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "dependencies",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
];
const MODERN_OBJECT_KEYWORDS: &[&str] = &[
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
];
const ARRAY_KEYWORDS: &[&str] = &[
    "items",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
];
const MODERN_ARRAY_KEYWORDS: &[&str] = &[
    "prefixItems",
    "unevaluatedItems",
    "minContains",
    "maxContains",
];
const NUMBER_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
const STRING_KEYWORDS: &[&str] = &["minLength", "maxLength", "pattern", "format"];

pub(super) fn classify<'a>(node: Node<'a>, draft: Draft) -> Kind<'a> {
    let map = match node.value {
        Value::Bool(true) => return Kind::True,
        Value::Bool(false) => return Kind::False,
        Value::Object(map) => map,
        _ => return Kind::Empty,
    };
    let typed = |ty: Ty| match ty {
        Ty::String => Kind::String,
        Ty::Number => Kind::Number { integer: false },
        Ty::Integer => Kind::Number { integer: true },
        Ty::Boolean => Kind::Boolean,
        Ty::Null => Kind::Null,
        Ty::Object => Kind::Object,
        Ty::Array => Kind::Array,
    };
    match node.facet {
        Some(Facet::Enum) => {
            return Kind::Enum(map["enum"].as_array().map(Vec::as_slice).unwrap_or(&[]));
        }
        Some(Facet::Const) => return Kind::Const(&map["const"]),
        Some(Facet::Not) => return Kind::Not(node.child(&map["not"])),
        Some(Facet::Combiner(keyword)) => {
            let criterion = match keyword {
                "allOf" => Criterion::All,
                "anyOf" => Criterion::Any,
                _ => Criterion::One,
            };
            let subs = map[keyword]
                .as_array()
                .map(|subs| subs.iter().map(|s| node.child(s)).collect())
                .unwrap_or_default();
            return Kind::Combined(criterion, subs);
        }
        Some(Facet::Type(ty)) | Some(Facet::Sniffed(ty)) => return typed(ty),
        Some(Facet::TypeArray) => {
            let subs = map["type"]
                .as_array()
                .map(|types| {
                    types
                        .iter()
                        .filter_map(|t| t.as_str().and_then(Ty::from_name))
                        .map(|ty| node.with_facet(Facet::Type(ty)))
                        .collect()
                })
                .unwrap_or_default();
            return Kind::Combined(Criterion::Any, subs);
        }
        None => {}
    }
    if let Some(Value::String(reference)) = map.get("$ref") {
        return Kind::Ref(reference);
    }
    let mut facets = Vec::new();
    if map.contains_key("enum") {
        facets.push(Facet::Enum);
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        if map.contains_key(keyword) {
            facets.push(Facet::Combiner(keyword));
        }
    }
    if map.contains_key("not") {
        facets.push(Facet::Not);
    }
    if map.contains_key("const") {
        facets.push(Facet::Const);
    }
    match map.get("type") {
        Some(Value::String(name)) => {
            if let Some(ty) = Ty::from_name(name) {
                facets.push(Facet::Type(ty));
            }
        }
        Some(Value::Array(_)) => facets.push(Facet::TypeArray),
        _ => {
            let has = |keywords: &[&str], modern: &[&str]| {
                keywords.iter().any(|k| map.contains_key(*k))
                    || (draft.modern() && modern.iter().any(|k| map.contains_key(*k)))
            };
            if has(OBJECT_KEYWORDS, MODERN_OBJECT_KEYWORDS) {
                facets.push(Facet::Sniffed(Ty::Object));
            }
            if has(ARRAY_KEYWORDS, MODERN_ARRAY_KEYWORDS) {
                facets.push(Facet::Sniffed(Ty::Array));
            }
            if has(NUMBER_KEYWORDS, &[]) {
                facets.push(Facet::Sniffed(Ty::Number));
            }
            if has(STRING_KEYWORDS, &[]) {
                facets.push(Facet::Sniffed(Ty::String));
            }
        }
    }
    match facets.as_slice() {
        [] => Kind::Empty,
        [facet] => classify(node.with_facet(*facet), draft),
        _ => Kind::Combined(
            Criterion::All,
            facets.into_iter().map(|f| node.with_facet(f)).collect(),
        ),
    }
}
pub(super) fn facet_id(facet: Option<Facet>) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    facet.hash(&mut hasher);
    hasher.finish() as usize
}

/// Whether two subschemas are the same schema (Confluent collapses equal ones in a union).
pub(super) fn same_schema(a: &Node, b: &Node) -> bool {
    a.facet == b.facet
        && (std::ptr::eq(a.value, b.value) || (a.facet.is_none() && a.value == b.value))
}

pub(super) fn properties<'a>(node: Node<'a>) -> Vec<(String, &'a Value)> {
    node.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

pub(super) fn required(node: Node) -> BTreeSet<String> {
    node.get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// (permits, schema) of `additionalProperties`: absent or `true` permits any, `false` none.
pub(super) fn additional<'a>(node: Node<'a>, keyword: &str) -> (bool, Option<Node<'a>>) {
    permits(node, node.get(keyword))
}

/// (permits, schema) of an `additional*` keyword's value in `node`.
pub(super) fn permits<'a>(node: Node<'a>, value: Option<&'a Value>) -> (bool, Option<Node<'a>>) {
    match value {
        None | Some(Value::Bool(true)) => (true, None),
        Some(Value::Bool(false)) => (false, None),
        Some(schema) => (true, Some(node.child(schema))),
    }
}
