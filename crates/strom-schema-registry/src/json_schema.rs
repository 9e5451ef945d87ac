//! JSON Schema (`schemaType: "JSON"`) as Confluent's registry treats it: the text kept as it was
//! written (compact JSON, key order kept), validity by the meta-schema its `$schema` names, and
//! compatibility as a diff from the original (older) schema to the update (newer), classified
//! change by change into compatible and incompatible kinds, as Confluent's `SchemaDiff` does
//! over the schema model of the Everit loader.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// The public interface
// ---------------------------------------------------------------------------------------------

/// A JSON schema checked against its meta-schema, with the schemas it references.
#[derive(Clone, Debug)]
pub struct JsonSchema {
    root: Value,
    /// `(name, schema)` of each referenced schema, the name being what `$ref`s use.
    references: Vec<(String, Value)>,
    draft: Draft,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Draft {
    D4,
    D6,
    D7,
    D2019,
    D2020,
}

impl Draft {
    /// The draft `$schema` names; Confluent reads an unknown or absent one as draft 7.
    fn of(schema: &Value) -> Option<Draft> {
        let url = schema.get("$schema")?.as_str()?;
        let url = url.trim_end_matches('#');
        let url = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        Some(match url {
            "json-schema.org/draft-04/schema" => Draft::D4,
            "json-schema.org/draft-06/schema" => Draft::D6,
            "json-schema.org/draft-07/schema" => Draft::D7,
            "json-schema.org/draft/2019-09/schema" => Draft::D2019,
            "json-schema.org/draft/2020-12/schema" => Draft::D2020,
            _ => return None,
        })
    }

    fn crate_draft(self) -> jsonschema::Draft {
        match self {
            Draft::D4 => jsonschema::Draft::Draft4,
            Draft::D6 => jsonschema::Draft::Draft6,
            Draft::D7 => jsonschema::Draft::Draft7,
            Draft::D2019 => jsonschema::Draft::Draft201909,
            Draft::D2020 => jsonschema::Draft::Draft202012,
        }
    }

    fn modern(self) -> bool {
        matches!(self, Draft::D2019 | Draft::D2020)
    }
}

/// The base URI the validator resolves relative `$ref`s against when a schema has no `$id`.
const DEFAULT_BASE: &str = "json-schema:///";

/// Parses `text`, a JSON schema, with `references` the `(name, text)` of each schema it
/// references (directly or not), `name` being the URL its `$ref`s use. The error is a message
/// for error 42201, as Confluent's "Invalid schema of type JSON, details: ...".
pub fn parse(text: &str, references: &[(&str, &str)]) -> Result<JsonSchema, String> {
    parse_inner(text, references)
        .map_err(|detail| format!("Invalid schema of type JSON, details: {detail}"))
}

fn parse_inner(text: &str, references: &[(&str, &str)]) -> Result<JsonSchema, String> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| format!("Invalid JSON schema: {e}"))?;
    if !root.is_object() && !root.is_boolean() {
        return Err(format!(
            "Invalid JSON schema: expected an object or boolean at the root, found {}",
            json_type_name(&root)
        ));
    }
    let mut parsed_refs = Vec::new();
    for (name, text) in references {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("Invalid JSON schema in reference {name}: {e}"))?;
        parsed_refs.push((name.to_string(), value));
    }
    let draft = Draft::of(&root).unwrap_or(Draft::D7);
    // Checked by the meta-schema of its draft, with every `$ref` resolvable (no remote fetching:
    // the references and the bundled meta-schemas only) and every pattern a valid regex.
    let mut checked = root.clone();
    if let Some(map) = checked.as_object_mut() {
        if Draft::of(&root).is_none() {
            map.remove("$schema");
        }
    }
    let mut options = jsonschema::options().with_draft(draft.crate_draft());
    let root_id = root
        .get(if draft == Draft::D4 { "id" } else { "$id" })
        .and_then(Value::as_str)
        .filter(|id| is_absolute(id));
    let mut seen_uris = HashSet::new();
    for (name, value) in &parsed_refs {
        for uri in reference_uris(name, root_id) {
            if seen_uris.insert(uri.clone()) {
                options =
                    options.with_resource(uri, jsonschema::Resource::from_contents(value.clone()));
            }
        }
    }
    options
        .build(&checked)
        .map_err(|e| format!("Invalid JSON schema: {e}"))?;
    Ok(JsonSchema {
        root,
        references: parsed_refs,
        draft,
    })
}

fn is_absolute(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// The URIs a reference named `name` is known by to the validator: as written when absolute,
/// else resolved against the root's `$id` (when absolute) and against the default base.
fn reference_uris(name: &str, root_id: Option<&str>) -> Vec<String> {
    if is_absolute(name) {
        return vec![name.to_owned()];
    }
    let relative = name.trim_start_matches("./");
    let mut uris = vec![format!("{DEFAULT_BASE}{relative}")];
    if let Some(id) = root_id {
        let base = match id.rfind('/') {
            Some(i) => &id[..=i],
            None => id,
        };
        uris.push(format!("{base}{relative}"));
    }
    uris
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "BOOLEAN",
        Value::Number(_) => "NUMBER",
        Value::String(_) => "STRING",
        Value::Array(_) => "ARRAY",
        Value::Object(_) => "OBJECT",
    }
}

impl JsonSchema {
    /// The text Confluent stores for this schema: the JSON re-serialized compactly (Jackson's
    /// `writeValueAsString` of the parsed tree), keys in the order written.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.root).unwrap_or_default()
    }

    /// The text with `normalize=true`: as [`JsonSchema::canonical`], every object's keys sorted
    /// (Confluent re-reads the canonical text into sorted object nodes).
    pub fn normalized(&self) -> String {
        serde_json::to_string(&sorted(&self.root)).unwrap_or_default()
    }

    /// Why this schema (the update) is not backward compatible with `writer` (the original):
    /// the incompatible differences of Confluent's diff from `writer` to `self`, as Confluent
    /// prints them, `%s` filled with `reader_word` then `writer_word`.
    pub fn compatibility_errors_as(
        &self,
        writer: &JsonSchema,
        reader_word: &str,
        writer_word: &str,
    ) -> Vec<String> {
        let mut differ = Differ {
            docs: [writer, self],
            in_progress: HashSet::new(),
        };
        let mut out = Vec::new();
        let mut path = Vec::new();
        differ.compare(
            &mut path,
            Some(Node::raw(&writer.root, Side::Original, 0)),
            Some(Node::raw(&self.root, Side::Update, 0)),
            &mut out,
        );
        out.iter()
            .filter(|d| !compatible(d.ty))
            .map(|d| d.describe(reader_word, writer_word))
            .collect()
    }

    /// Every difference of the diff from `original` to this schema (compatible ones too,
    /// but for changes of id, title, description and default), as `TYPE #/path`.
    #[cfg(test)]
    fn differences(&self, original: &JsonSchema) -> Vec<String> {
        let mut differ = Differ {
            docs: [original, self],
            in_progress: HashSet::new(),
        };
        let mut out = Vec::new();
        differ.compare(
            &mut Vec::new(),
            Some(Node::raw(&original.root, Side::Original, 0)),
            Some(Node::raw(&self.root, Side::Update, 0)),
            &mut out,
        );
        out.iter().map(|d| format!("{} {}", d.ty, d.path)).collect()
    }

    /// The `(reference, schema)` documents: 0 the root, then the references.
    fn doc(&self, index: usize) -> &Value {
        if index == 0 {
            &self.root
        } else {
            &self.references[index - 1].1
        }
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Differences: Confluent's Difference.Type, and how it prints them
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Diff {
    ty: &'static str,
    path: String,
}

/// The changes Confluent's STRICT policy (its default) accepts.
const COMPATIBLE_CHANGES: &[&str] = &[
    "ID_CHANGED",
    "DESCRIPTION_CHANGED",
    "TITLE_CHANGED",
    "DEFAULT_CHANGED",
    "SCHEMA_REMOVED",
    "TYPE_EXTENDED",
    "MAX_LENGTH_INCREASED",
    "MAX_LENGTH_REMOVED",
    "MIN_LENGTH_DECREASED",
    "MIN_LENGTH_REMOVED",
    "PATTERN_REMOVED",
    "MAXIMUM_INCREASED",
    "MAXIMUM_REMOVED",
    "MINIMUM_DECREASED",
    "MINIMUM_REMOVED",
    "EXCLUSIVE_MAXIMUM_INCREASED",
    "EXCLUSIVE_MAXIMUM_REMOVED",
    "EXCLUSIVE_MINIMUM_DECREASED",
    "EXCLUSIVE_MINIMUM_REMOVED",
    "MULTIPLE_OF_REDUCED",
    "MULTIPLE_OF_REMOVED",
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    "REQUIRED_ATTRIBUTE_REMOVED",
    "DEPENDENCY_ARRAY_NARROWED",
    "DEPENDENCY_ARRAY_REMOVED",
    "DEPENDENCY_SCHEMA_REMOVED",
    "MAX_PROPERTIES_INCREASED",
    "MAX_PROPERTIES_REMOVED",
    "MIN_PROPERTIES_DECREASED",
    "MIN_PROPERTIES_REMOVED",
    "ADDITIONAL_PROPERTIES_ADDED",
    "ADDITIONAL_PROPERTIES_EXTENDED",
    "UNEVALUATED_PROPERTIES_ADDED",
    "UNEVALUATED_PROPERTIES_EXTENDED",
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "MAX_ITEMS_INCREASED",
    "MAX_ITEMS_REMOVED",
    "MIN_ITEMS_DECREASED",
    "MIN_ITEMS_REMOVED",
    "MAX_CONTAINS_INCREASED",
    "MAX_CONTAINS_REMOVED",
    "MIN_CONTAINS_DECREASED",
    "MIN_CONTAINS_REMOVED",
    "UNIQUE_ITEMS_REMOVED",
    "ADDITIONAL_ITEMS_ADDED",
    "ADDITIONAL_ITEMS_EXTENDED",
    "UNEVALUATED_ITEMS_ADDED",
    "UNEVALUATED_ITEMS_EXTENDED",
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ENUM_ARRAY_EXTENDED",
    "COMBINED_TYPE_EXTENDED",
    "PRODUCT_TYPE_NARROWED",
    "SUM_TYPE_EXTENDED",
    "NOT_TYPE_NARROWED",
];

fn compatible(ty: &str) -> bool {
    COMPATIBLE_CHANGES.contains(&ty)
}

fn all_compatible(diffs: &[Diff]) -> bool {
    diffs.iter().all(|d| compatible(d.ty))
}

impl Diff {
    /// Confluent's `Difference.toString()` (its closing quote a `'`, as Confluent prints it).
    fn describe(&self, first: &str, second: &str) -> String {
        let p = &self.path;
        let ty = self.ty;
        let description = match ty {
            "MAXIMUM_ADDED" | "MINIMUM_ADDED" | "EXCLUSIVE_MAXIMUM_ADDED"
            | "EXCLUSIVE_MINIMUM_ADDED" | "MULTIPLE_OF_ADDED" | "MAX_LENGTH_ADDED"
            | "MIN_LENGTH_ADDED" | "PATTERN_ADDED" | "REQUIRED_ATTRIBUTE_ADDED"
            | "MAX_PROPERTIES_ADDED" | "MIN_PROPERTIES_ADDED" | "DEPENDENCY_ARRAY_ADDED"
            | "DEPENDENCY_SCHEMA_ADDED" | "MAX_ITEMS_ADDED" | "MIN_ITEMS_ADDED"
            | "MAX_CONTAINS_ADDED" | "MIN_CONTAINS_ADDED" | "UNIQUE_ITEMS_ADDED"
            | "ADDITIONAL_ITEMS_REMOVED" | "ADDITIONAL_PROPERTIES_REMOVED"
            | "UNEVALUATED_PROPERTIES_REMOVED" | "UNEVALUATED_ITEMS_REMOVED" => format!(
                "The keyword at path '{p}' in the {first} schema is not present in the {second} schema"
            ),
            "MIN_LENGTH_INCREASED" | "MINIMUM_INCREASED" | "EXCLUSIVE_MINIMUM_INCREASED"
            | "MIN_PROPERTIES_INCREASED" | "MULTIPLE_OF_EXPANDED" | "MIN_ITEMS_INCREASED"
            | "MIN_CONTAINS_INCREASED" => format!(
                "The value at path '{p}' in the {first} schema is more than its value in the {second} schema"
            ),
            "MAX_LENGTH_DECREASED" | "MAXIMUM_DECREASED" | "MAX_ITEMS_DECREASED"
            | "MAX_CONTAINS_DECREASED" | "EXCLUSIVE_MAXIMUM_DECREASED"
            | "MAX_PROPERTIES_DECREASED" => format!(
                "The value at path '{p}' in the {first} schema is less than its value in the {second} schema"
            ),
            "PATTERN_CHANGED" | "MULTIPLE_OF_CHANGED" | "DEPENDENCY_ARRAY_CHANGED" => format!(
                "The value at path '{p}' is different between the {first} and {second} schema"
            ),
            "ADDITIONAL_ITEMS_NARROWED" | "ENUM_ARRAY_NARROWED" | "SUM_TYPE_NARROWED"
            | "ADDITIONAL_PROPERTIES_NARROWED" | "UNEVALUATED_PROPERTIES_NARROWED"
            | "UNEVALUATED_ITEMS_NARROWED" => format!(
                "An array or combined type at path '{p}' has fewer elements in the {first} schema than the {second} schema"
            ),
            "DEPENDENCY_ARRAY_EXTENDED" | "PRODUCT_TYPE_EXTENDED" | "SUM_TYPE_EXTENDED"
            | "NOT_TYPE_EXTENDED" => format!(
                "An array or combined type at path '{p}' has more elements in the {first} schema than the {second} schema"
            ),
            "TYPE_CHANGED" | "TYPE_NARROWED" | "COMBINED_TYPE_CHANGED"
            | "COMBINED_TYPE_SUBSCHEMAS_CHANGED" | "ENUM_ARRAY_CHANGED" => format!(
                "A type at path '{p}' is different between the {first} schema and the {second} schema"
            ),
            "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            | "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
            | "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            | "ITEM_ADDED_TO_OPEN_CONTENT_MODEL" => format!(
                "The {first} schema has an open content model and has a property or item at path '{p}' which is missing in the {second} schema"
            ),
            "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" => format!(
                "The {first} schema has an unopen content model and has a required property at path '{p}' which is missing in the {second} schema"
            ),
            "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL" | "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL" => {
                format!(
                    "The {first} has a closed content model and is missing a property or item present at path '{p}' in the {second} schema"
                )
            }
            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            | "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" => format!(
                "A property or item is missing in the {first} schema but present at path '{p}' in the {second} schema and is not covered by its partially open content model"
            ),
            "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            | "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" => format!(
                "The {first} schema has a property or item at path '{p}' which is missing in the {second} schema and is not covered by its partially open content model"
            ),
            _ => String::new(),
        };
        format!("{{errorType:\"{ty}\", description:\"{description}'}}")
    }
}

// ---------------------------------------------------------------------------------------------
// The schema model: how Everit's loader classifies a JSON schema
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Original,
    Update,
}

/// One of the schemas a JSON object holds: Everit extracts several from one object (an `enum`
/// next to a `type`, say) and combines them into a synthetic `allOf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Facet {
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
enum Ty {
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
struct Node<'a> {
    value: &'a Value,
    /// `None`: the whole value; else one schema extracted from the object.
    facet: Option<Facet>,
    side: Side,
    /// 0: the side's root document; i: its reference i - 1.
    doc: usize,
}

impl<'a> Node<'a> {
    fn raw(value: &'a Value, side: Side, doc: usize) -> Node<'a> {
        Node {
            value,
            facet: None,
            side,
            doc,
        }
    }

    fn child(&self, value: &'a Value) -> Node<'a> {
        Node::raw(value, self.side, self.doc)
    }

    fn with_facet(&self, facet: Facet) -> Node<'a> {
        Node {
            facet: Some(facet),
            ..*self
        }
    }

    fn map(&self) -> Option<&'a Map<String, Value>> {
        self.value.as_object()
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map().and_then(|m| m.get(key))
    }

    fn has_default(&self) -> bool {
        self.get("default").is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Criterion {
    All,
    Any,
    One,
}

impl Criterion {
    fn name(self) -> &'static str {
        match self {
            Criterion::All => "allOf",
            Criterion::Any => "anyOf",
            Criterion::One => "oneOf",
        }
    }
}

/// Everit's schema classes, as far as the diff tells them apart.
#[derive(Clone, Debug)]
enum Kind<'a> {
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
    fn class(&self) -> u8 {
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
    fn is_empty(&self) -> bool {
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

fn classify<'a>(node: Node<'a>, draft: Draft) -> Kind<'a> {
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

// ---------------------------------------------------------------------------------------------
// The diff: Confluent's SchemaDiff and its per-type diffs
// ---------------------------------------------------------------------------------------------

struct Differ<'a> {
    /// The original's and the update's schemas.
    docs: [&'a JsonSchema; 2],
    /// Pairs being compared: met again (a recursive schema), they count as compatible.
    in_progress: HashSet<(usize, usize, usize, usize)>,
}

fn path_string(path: &[String]) -> String {
    format!("#/{}", path.join("/"))
}

fn add(out: &mut Vec<Diff>, path: &[String], ty: &'static str) {
    out.push(Diff {
        ty,
        path: path_string(path),
    });
}

fn add_at(out: &mut Vec<Diff>, path: &[String], attribute: &str, ty: &'static str) {
    let mut path = path.to_vec();
    path.push(attribute.to_owned());
    add(out, &path, ty);
}

impl<'a> Differ<'a> {
    fn schema(&self, side: Side) -> &'a JsonSchema {
        match side {
            Side::Original => self.docs[0],
            Side::Update => self.docs[1],
        }
    }

    fn kind(&self, node: Node<'a>) -> Kind<'a> {
        classify(node, self.schema(node.side).draft)
    }

    /// The schema a `$ref` names: a JSON pointer or anchor in this document or in a reference.
    fn resolve(&self, node: Node<'a>, reference: &str) -> Option<Node<'a>> {
        let schema = self.schema(node.side);
        let (url, fragment) = match reference.split_once('#') {
            Some((url, fragment)) => (url, fragment),
            None => (reference, ""),
        };
        let doc = if url.is_empty() {
            node.doc
        } else {
            find_document(schema, url)?
        };
        let root = schema.doc(doc);
        let target = if fragment.is_empty() {
            root
        } else if fragment.starts_with('/') {
            root.pointer(&percent_decode(fragment))?
        } else {
            find_anchor(root, fragment)?
        };
        Some(Node::raw(target, node.side, doc))
    }

    /// Follows `$ref`s (Everit's `ReferenceSchema` stands for the schema it refers to).
    fn deref(&self, mut node: Node<'a>) -> (Node<'a>, Kind<'a>) {
        for _ in 0..32 {
            match self.kind(node) {
                Kind::Ref(reference) => match self.resolve(node, reference) {
                    Some(target) => node = target,
                    None => return (node, Kind::Ref(reference)),
                },
                kind => return (node, kind),
            }
        }
        (node, self.kind(node))
    }

    fn compare(
        &mut self,
        path: &mut Vec<String>,
        original: Option<Node<'a>>,
        update: Option<Node<'a>>,
        out: &mut Vec<Diff>,
    ) {
        let (original, update) = match (original, update) {
            (None, None) => return,
            (None, Some(_)) => return add(out, path, "SCHEMA_ADDED"),
            (Some(_), None) => return add(out, path, "SCHEMA_REMOVED"),
            (Some(o), Some(u)) => (o, u),
        };
        let (original, ok) = self.deref(original);
        let (update, uk) = self.deref(update);
        let key = (
            original.value as *const Value as usize,
            facet_id(original.facet),
            update.value as *const Value as usize,
            facet_id(update.facet),
        );
        if !self.in_progress.insert(key) {
            return;
        }
        self.compare_types(path, original, ok, update, uk, out);
        self.in_progress.remove(&key);
    }

    fn sub(&mut self, path: &[String], original: Node<'a>, update: Node<'a>) -> Vec<Diff> {
        let mut out = Vec::new();
        let mut path = path.to_vec();
        self.compare(&mut path, Some(original), Some(update), &mut out);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn compare_types(
        &mut self,
        path: &mut Vec<String>,
        original: Node<'a>,
        ok: Kind<'a>,
        update: Node<'a>,
        uk: Kind<'a>,
        out: &mut Vec<Diff>,
    ) {
        match (&ok, &uk) {
            (Kind::Combined(..), Kind::Combined(..)) => {}
            (_, Kind::Combined(criterion, subs)) => {
                if subs.len() == 1 {
                    let diffs = self.sub(path, original, subs[0]);
                    if all_compatible(&diffs) {
                        out.extend(diffs);
                        return;
                    }
                } else if matches!(criterion, Criterion::Any | Criterion::One) {
                    for sub in subs {
                        let diffs = self.sub(path, original, *sub);
                        if all_compatible(&diffs) {
                            out.extend(diffs);
                            add(out, path, "SUM_TYPE_EXTENDED");
                            return;
                        }
                    }
                }
            }
            (Kind::Combined(criterion, subs), _) => {
                if subs.len() == 1 {
                    let diffs = self.sub(path, subs[0], update);
                    if all_compatible(&diffs) {
                        out.extend(diffs);
                        return;
                    }
                } else if *criterion == Criterion::All {
                    for sub in subs {
                        let diffs = self.sub(path, *sub, update);
                        if all_compatible(&diffs) {
                            out.extend(diffs);
                            add(out, path, "PRODUCT_TYPE_NARROWED");
                            return;
                        }
                    }
                }
            }
            _ => {}
        }

        if ok.class() != uk.class() {
            if matches!(ok, Kind::False) || uk.is_empty() {
                return;
            }
            let connect_type = |n: Node<'a>| n.get("connect.type").and_then(Value::as_str);
            if connect_type(original) == Some("bytes") && connect_type(update) == Some("bytes") {
                return;
            }
            return add(out, path, "TYPE_CHANGED");
        }

        // Changes of id, title, description and default are compatible: not recorded.
        match (&ok, &uk) {
            (Kind::String, Kind::String) => compare_string(path, original, update, out),
            (Kind::Number { integer: oi }, Kind::Number { integer: ui }) => {
                compare_number(path, original, update, out);
                if oi != ui {
                    if *oi {
                        add(out, path, "TYPE_EXTENDED");
                    } else {
                        add(out, path, "TYPE_NARROWED");
                    }
                }
            }
            (Kind::Const(o), Kind::Const(u)) if o != u => {
                add_at(out, path, "const", "ENUM_ARRAY_CHANGED");
            }
            (Kind::Enum(o), Kind::Enum(u)) => {
                let contains_all = |a: &[Value], b: &[Value]| b.iter().all(|v| a.contains(v));
                if !(contains_all(o, u) && contains_all(u, o)) {
                    if contains_all(u, o) {
                        add_at(out, path, "enum", "ENUM_ARRAY_EXTENDED");
                    } else if contains_all(o, u) {
                        add_at(out, path, "enum", "ENUM_ARRAY_NARROWED");
                    } else {
                        add_at(out, path, "enum", "ENUM_ARRAY_CHANGED");
                    }
                }
            }
            (Kind::Combined(oc, osubs), Kind::Combined(uc, usubs)) => {
                self.compare_combined(path, (*oc, osubs), (*uc, usubs), out)
            }
            (Kind::Not(o), Kind::Not(u)) => {
                path.push("not".to_owned());
                // Reversed: the update must refuse less than the original.
                let diffs = self.sub(path, *u, *o);
                if all_compatible(&diffs) {
                    add(out, path, "NOT_TYPE_NARROWED");
                } else {
                    add(out, path, "NOT_TYPE_EXTENDED");
                }
                path.pop();
            }
            (Kind::Object, Kind::Object) => self.compare_object(path, original, update, out),
            (Kind::Array, Kind::Array) => self.compare_array(path, original, update, out),
            // Unresolved on both sides: the same reference or a different type.
            (Kind::Ref(o), Kind::Ref(u)) if o != u => add(out, path, "TYPE_CHANGED"),
            _ => {}
        }
    }

    fn compare_combined(
        &mut self,
        path: &mut Vec<String>,
        (oc, osubs): (Criterion, &[Node<'a>]),
        (uc, usubs): (Criterion, &[Node<'a>]),
        out: &mut Vec<Diff>,
    ) {
        if oc != uc {
            let singleton = |subs: &[Node]| subs.len() == 1;
            if uc == Criterion::Any
                || (singleton(osubs) && singleton(usubs))
                || (singleton(osubs) && uc == Criterion::One)
                || (singleton(usubs) && oc == Criterion::All)
            {
                add(out, path, "COMBINED_TYPE_EXTENDED");
            } else {
                return add(out, path, "COMBINED_TYPE_CHANGED");
            }
        }
        // Equal subschemas count once.
        let dedup = |subs: &[Node<'a>]| {
            let mut kept: Vec<Node<'a>> = Vec::new();
            for s in subs {
                if !kept.iter().any(|k| same_schema(k, s)) {
                    kept.push(*s);
                }
            }
            kept
        };
        let osubs = dedup(osubs);
        let usubs = dedup(usubs);
        if osubs.len() < usubs.len() {
            if uc == Criterion::All {
                add(out, path, "PRODUCT_TYPE_EXTENDED");
            } else {
                add(out, path, "SUM_TYPE_EXTENDED");
            }
        } else if osubs.len() > usubs.len() {
            if oc == Criterion::All {
                add(out, path, "PRODUCT_TYPE_NARROWED");
            } else {
                add(out, path, "SUM_TYPE_NARROWED");
            }
        }
        // Compatible pairs, then a maximum matching of original to update subschemas.
        let mut edges: Vec<Vec<Option<Vec<Diff>>>> = Vec::new();
        for (i, o) in osubs.iter().enumerate() {
            path.push(format!("{}/{i}", oc.name()));
            let row = usubs
                .iter()
                .map(|u| {
                    let diffs = self.sub(path, *o, *u);
                    all_compatible(&diffs).then_some(diffs)
                })
                .collect();
            path.pop();
            edges.push(row);
        }
        let matched = maximum_matching(&edges, usubs.len());
        let mut count = 0;
        for (i, j) in matched.iter().enumerate() {
            if let Some(j) = j {
                count += 1;
                if let Some(diffs) = &edges[i][*j] {
                    out.extend(diffs.iter().cloned());
                }
            }
        }
        if count < osubs.len().min(usubs.len()) {
            add(out, path, "COMBINED_TYPE_SUBSCHEMAS_CHANGED");
        }
    }

    fn compare_object(
        &mut self,
        path: &mut Vec<String>,
        original: Node<'a>,
        update: Node<'a>,
        out: &mut Vec<Diff>,
    ) {
        let oprops = properties(original);
        let uprops = properties(update);
        let orequired = required(original);
        let urequired = required(update);
        let uprop = |key: &str| uprops.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let oprop = |key: &str| oprops.iter().find(|(k, _)| k == key).map(|(_, v)| *v);

        // required
        path.push("required".to_owned());
        let okeys: Vec<&str> = oprops.iter().map(|(k, _)| k.as_str()).collect();
        for key in java_hash_order(&[], &okeys) {
            if let Some(u) = uprop(key) {
                path.push(key.to_owned());
                let was = orequired.contains(key);
                let is = urequired.contains(key);
                if was && !is {
                    add(out, path, "REQUIRED_ATTRIBUTE_REMOVED");
                } else if !was && is {
                    if update.child(u).has_default() {
                        add(out, path, "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED");
                    } else {
                        add(out, path, "REQUIRED_ATTRIBUTE_ADDED");
                    }
                }
                path.pop();
            }
        }
        path.pop();

        // properties
        path.push("properties".to_owned());
        let ukeys: Vec<&str> = uprops.iter().map(|(k, _)| k.as_str()).collect();
        for key in java_hash_order(&okeys, &ukeys) {
            path.push(key.to_owned());
            match (oprop(key), uprop(key)) {
                (Some(o), None) => {
                    let o = original.child(o);
                    if self.open_content_model(update) {
                        add(out, path, "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL");
                    } else if let Some(partial) = self.partial_content_model(update, key) {
                        let diffs = self.sub(path, o, partial);
                        let ok = all_compatible(&diffs);
                        out.extend(diffs);
                        add(
                            out,
                            path,
                            if ok {
                                "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            } else {
                                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                            },
                        );
                    } else if matches!(self.kind(o), Kind::False) {
                        add(
                            out,
                            path,
                            "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                        );
                    } else {
                        add(out, path, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                    }
                }
                (None, Some(u)) => {
                    let u = update.child(u);
                    let required = urequired.contains(key);
                    if self.open_content_model(original) {
                        if self.kind(u).is_empty() {
                            add(
                                out,
                                path,
                                "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
                            );
                        } else if required {
                            if u.has_default() {
                                add(
                                    out,
                                    path,
                                    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
                                );
                            } else {
                                add(out, path, "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
                            }
                        } else {
                            add(out, path, "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
                        }
                    } else {
                        if let Some(partial) = self.partial_content_model(original, key) {
                            let diffs = self.sub(path, partial, u);
                            let ok = all_compatible(&diffs);
                            out.extend(diffs);
                            add(
                                out,
                                path,
                                if ok {
                                    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                                } else {
                                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                                },
                            );
                        }
                        if required {
                            if u.has_default() {
                                add(
                                    out,
                                    path,
                                    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
                                );
                            } else {
                                add(out, path, "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
                            }
                        } else {
                            add(out, path, "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
                        }
                    }
                }
                (Some(o), Some(u)) => {
                    self.compare(path, Some(original.child(o)), Some(update.child(u)), out)
                }
                (None, None) => {}
            }
            path.pop();
        }
        path.pop();

        // dependencies
        path.push("dependencies".to_owned());
        let (odeps, oschemas) = self.dependencies(original);
        let (udeps, uschemas) = self.dependencies(update);
        let okeys: Vec<&str> = odeps.iter().map(|(k, _)| k.as_str()).collect();
        let ukeys: Vec<&str> = udeps.iter().map(|(k, _)| k.as_str()).collect();
        for key in java_hash_order(&okeys, &ukeys) {
            path.push(key.to_owned());
            let o = odeps.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let u = udeps.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            match (o, u) {
                (_, None) => add(out, path, "DEPENDENCY_ARRAY_REMOVED"),
                (None, Some(_)) => add(out, path, "DEPENDENCY_ARRAY_ADDED"),
                (Some(o), Some(u)) => {
                    if o != u {
                        if u.is_superset(o) {
                            add(out, path, "DEPENDENCY_ARRAY_EXTENDED");
                        } else if o.is_superset(u) {
                            add(out, path, "DEPENDENCY_ARRAY_NARROWED");
                        } else {
                            add(out, path, "DEPENDENCY_ARRAY_CHANGED");
                        }
                    }
                }
            }
            path.pop();
        }
        let okeys: Vec<&str> = oschemas.iter().map(|(k, _)| k.as_str()).collect();
        let ukeys: Vec<&str> = uschemas.iter().map(|(k, _)| k.as_str()).collect();
        for key in java_hash_order(&okeys, &ukeys) {
            path.push(key.to_owned());
            let o = oschemas.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let u = uschemas.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            match (o, u) {
                (_, None) => add(out, path, "DEPENDENCY_SCHEMA_REMOVED"),
                (None, Some(_)) => add(out, path, "DEPENDENCY_SCHEMA_ADDED"),
                (Some(o), Some(u)) => {
                    self.compare(path, Some(original.child(o)), Some(update.child(u)), out)
                }
            }
            path.pop();
        }
        path.pop();

        // additionalProperties
        path.push("additionalProperties".to_owned());
        let (opermits, oschema) = additional(original, "additionalProperties");
        let (upermits, uschema) = additional(update, "additionalProperties");
        if opermits != upermits {
            if upermits {
                add(out, path, "ADDITIONAL_PROPERTIES_ADDED");
            } else {
                add(out, path, "ADDITIONAL_PROPERTIES_REMOVED");
            }
        } else if oschema.is_none() && uschema.is_some() {
            add(out, path, "ADDITIONAL_PROPERTIES_NARROWED");
        } else if uschema.is_none() && oschema.is_some() {
            add(out, path, "ADDITIONAL_PROPERTIES_EXTENDED");
        } else {
            self.compare(path, oschema, uschema, out);
        }
        path.pop();

        // unevaluatedProperties
        let ouneval = self.unevaluated(original, "unevaluatedProperties");
        let uuneval = self.unevaluated(update, "unevaluatedProperties");
        self.compare_unevaluated(
            path,
            "unevaluatedProperties",
            "PROPERTIES",
            ouneval,
            uuneval,
            out,
        );

        for (keyword, prefix) in [
            ("maxProperties", "MAX_PROPERTIES"),
            ("minProperties", "MIN_PROPERTIES"),
        ] {
            compare_limit(
                path,
                keyword,
                prefix,
                original.get(keyword),
                update.get(keyword),
                out,
            );
        }
    }

    fn compare_unevaluated(
        &mut self,
        path: &mut Vec<String>,
        keyword: &str,
        what: &str,
        original: Option<Node<'a>>,
        update: Option<Node<'a>>,
        out: &mut Vec<Diff>,
    ) {
        if original.is_none() && update.is_none() {
            return;
        }
        let ty = |change: &str| -> &'static str {
            match (what, change) {
                ("PROPERTIES", "ADDED") => "UNEVALUATED_PROPERTIES_ADDED",
                ("PROPERTIES", "REMOVED") => "UNEVALUATED_PROPERTIES_REMOVED",
                ("PROPERTIES", "EXTENDED") => "UNEVALUATED_PROPERTIES_EXTENDED",
                ("PROPERTIES", _) => "UNEVALUATED_PROPERTIES_NARROWED",
                (_, "ADDED") => "UNEVALUATED_ITEMS_ADDED",
                (_, "REMOVED") => "UNEVALUATED_ITEMS_REMOVED",
                (_, "EXTENDED") => "UNEVALUATED_ITEMS_EXTENDED",
                _ => "UNEVALUATED_ITEMS_NARROWED",
            }
        };
        path.push(keyword.to_owned());
        let okind = original.map(|n| self.kind(n));
        let ukind = update.map(|n| self.kind(n));
        let is_false = |k: &Option<Kind>| matches!(k, Some(Kind::False));
        let is_empty = |k: &Option<Kind>| k.as_ref().is_some_and(Kind::is_empty);
        match (original, update) {
            (None, _) => add(
                out,
                path,
                ty(if is_false(&ukind) {
                    "REMOVED"
                } else {
                    "NARROWED"
                }),
            ),
            (_, None) => add(
                out,
                path,
                ty(if is_false(&okind) {
                    "ADDED"
                } else {
                    "EXTENDED"
                }),
            ),
            _ if is_false(&okind) && !is_false(&ukind) => add(out, path, ty("ADDED")),
            _ if !is_false(&okind) && is_false(&ukind) => add(out, path, ty("REMOVED")),
            _ if is_empty(&okind) && !is_empty(&ukind) => add(out, path, ty("NARROWED")),
            _ if !is_empty(&okind) && is_empty(&ukind) => add(out, path, ty("EXTENDED")),
            _ => self.compare(path, original, update, out),
        }
        path.pop();
    }

    /// `unevaluatedProperties`/`unevaluatedItems` as a schema: only the modern drafts' loader
    /// reads them (Everit keeps them as unknown keywords, which the diff ignores).
    fn unevaluated(&self, node: Node<'a>, keyword: &str) -> Option<Node<'a>> {
        if !self.schema(node.side).draft.modern() {
            return None;
        }
        node.get(keyword).map(|v| node.child(v))
    }

    /// Everit's `isOpenContentModel`.
    fn open_content_model(&self, node: Node<'a>) -> bool {
        let (permits, schema) = additional(node, "additionalProperties");
        if !permits || schema.is_some() {
            return false;
        }
        if node
            .get("patternProperties")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            return false;
        }
        match self.unevaluated(node, "unevaluatedProperties") {
            None => true,
            Some(u) => self.kind(u).is_empty(),
        }
    }

    /// The schema a partially open content model gives a property it does not name.
    fn partial_content_model(&self, node: Node<'a>, key: &str) -> Option<Node<'a>> {
        if let Some(patterns) = node.get("patternProperties").and_then(Value::as_object) {
            for (pattern, schema) in patterns {
                if regex::Regex::new(pattern).is_ok_and(|r| r.is_match(key)) {
                    return Some(node.child(schema));
                }
            }
        }
        let (permits, schema) = additional(node, "additionalProperties");
        if schema.is_some() {
            return schema;
        }
        if permits {
            if let Some(u) = self.unevaluated(node, "unevaluatedProperties") {
                let kind = self.kind(u);
                if !matches!(kind, Kind::False) && !kind.is_empty() {
                    return Some(u);
                }
            }
        }
        None
    }

    /// Property dependencies (arrays) and schema dependencies, as Everit splits `dependencies`
    /// (with the modern drafts' `dependentRequired` and `dependentSchemas`).
    #[allow(clippy::type_complexity)]
    fn dependencies(
        &self,
        node: Node<'a>,
    ) -> (Vec<(String, BTreeSet<String>)>, Vec<(String, &'a Value)>) {
        let mut arrays = Vec::new();
        let mut schemas = Vec::new();
        let mut keywords = vec!["dependencies"];
        if self.schema(node.side).draft.modern() {
            keywords.extend(["dependentRequired", "dependentSchemas"]);
        }
        for keyword in keywords {
            if let Some(map) = node.get(keyword).and_then(Value::as_object) {
                for (key, value) in map {
                    match value {
                        Value::Array(names) => arrays.push((
                            key.clone(),
                            names
                                .iter()
                                .filter_map(|n| n.as_str().map(str::to_owned))
                                .collect(),
                        )),
                        other => schemas.push((key.clone(), other)),
                    }
                }
            }
        }
        (arrays, schemas)
    }

    fn compare_array(
        &mut self,
        path: &mut Vec<String>,
        original: Node<'a>,
        update: Node<'a>,
        out: &mut Vec<Diff>,
    ) {
        let (oall, otuple, oadditional) = self.items(original);
        let (uall, utuple, uadditional) = self.items(update);

        path.push("items".to_owned());
        self.compare(path, oall, uall, out);
        path.pop();

        // Tuple items.
        let common = otuple.len().min(utuple.len());
        for index in 0..otuple.len().max(utuple.len()) {
            path.push(format!("items/{index}"));
            if index < common {
                self.compare(path, Some(otuple[index]), Some(utuple[index]), out);
            } else if index < otuple.len() {
                let o = otuple[index];
                if self.open_items(update, uadditional) {
                    add(out, path, "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL");
                } else if let Some(partial) = self.partial_items(update, uadditional) {
                    let diffs = self.sub(path, o, partial);
                    let ok = all_compatible(&diffs);
                    out.extend(diffs);
                    add(
                        out,
                        path,
                        if ok {
                            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        } else {
                            "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        },
                    );
                } else if matches!(self.kind(o), Kind::False) {
                    add(
                        out,
                        path,
                        "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    );
                } else {
                    add(out, path, "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                }
            } else {
                let u = utuple[index];
                if self.open_items(original, oadditional) {
                    if self.kind(u).is_empty() {
                        add(
                            out,
                            path,
                            "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
                        );
                    } else {
                        add(out, path, "ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
                    }
                } else if let Some(partial) = self.partial_items(original, oadditional) {
                    let diffs = self.sub(path, partial, u);
                    let ok = all_compatible(&diffs);
                    out.extend(diffs);
                    add(
                        out,
                        path,
                        if ok {
                            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        } else {
                            "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                        },
                    );
                } else {
                    add(out, path, "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL");
                }
            }
            path.pop();
        }

        // additionalItems
        path.push("additionalItems".to_owned());
        let (opermits, oschema) = oadditional;
        let (upermits, uschema) = uadditional;
        if opermits != upermits {
            if opermits {
                add(out, path, "ADDITIONAL_ITEMS_REMOVED");
            } else {
                add(out, path, "ADDITIONAL_ITEMS_ADDED");
            }
        } else if oschema.is_none() && uschema.is_some() {
            add(out, path, "ADDITIONAL_ITEMS_NARROWED");
        } else if uschema.is_none() && oschema.is_some() {
            add(out, path, "ADDITIONAL_ITEMS_EXTENDED");
        } else {
            self.compare(path, oschema, uschema, out);
        }
        path.pop();

        let ouneval = self.unevaluated(original, "unevaluatedItems");
        let uuneval = self.unevaluated(update, "unevaluatedItems");
        self.compare_unevaluated(path, "unevaluatedItems", "ITEMS", ouneval, uuneval, out);

        for (keyword, prefix) in [("maxItems", "MAX_ITEMS"), ("minItems", "MIN_ITEMS")] {
            compare_limit(
                path,
                keyword,
                prefix,
                original.get(keyword),
                update.get(keyword),
                out,
            );
        }
        let unique = |n: &Node| {
            n.get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        if unique(&original) != unique(&update) {
            if unique(&original) {
                add_at(out, path, "uniqueItems", "UNIQUE_ITEMS_REMOVED");
            } else {
                add_at(out, path, "uniqueItems", "UNIQUE_ITEMS_ADDED");
            }
        }
        for (keyword, prefix) in [
            ("maxContains", "MAX_CONTAINS"),
            ("minContains", "MIN_CONTAINS"),
        ] {
            compare_limit(
                path,
                keyword,
                prefix,
                original.get(keyword),
                update.get(keyword),
                out,
            );
        }
    }

    /// The all-items schema, the tuple schemas, and (permits, schema) of additional items.
    #[allow(clippy::type_complexity)]
    fn items(&self, node: Node<'a>) -> (Option<Node<'a>>, Vec<Node<'a>>, (bool, Option<Node<'a>>)) {
        let modern = self.schema(node.side).draft == Draft::D2020;
        let (all, tuple, additional_value) = if modern {
            match node.get("prefixItems") {
                Some(Value::Array(prefix)) => (None, prefix.iter().collect(), node.get("items")),
                // A boolean `items` alone reads as Everit's additional items.
                _ => match node.get("items") {
                    Some(b @ Value::Bool(_)) => (None, Vec::new(), Some(b)),
                    other => (other, Vec::new(), None),
                },
            }
        } else {
            match node.get("items") {
                Some(Value::Array(tuple)) => {
                    (None, tuple.iter().collect(), node.get("additionalItems"))
                }
                other => (other, Vec::new(), node.get("additionalItems")),
            }
        };
        let additional = match additional_value {
            None | Some(Value::Bool(true)) => (true, None),
            Some(Value::Bool(false)) => (false, None),
            Some(schema) => (true, Some(node.child(schema))),
        };
        (
            all.map(|v| node.child(v)),
            tuple.into_iter().map(|v| node.child(v)).collect(),
            additional,
        )
    }

    fn open_items(&self, node: Node<'a>, (permits, schema): (bool, Option<Node<'a>>)) -> bool {
        if !permits || schema.is_some() {
            return false;
        }
        match self.unevaluated(node, "unevaluatedItems") {
            None => true,
            Some(u) => self.kind(u).is_empty(),
        }
    }

    fn partial_items(
        &self,
        node: Node<'a>,
        (permits, schema): (bool, Option<Node<'a>>),
    ) -> Option<Node<'a>> {
        if schema.is_some() {
            return schema;
        }
        if permits {
            if let Some(u) = self.unevaluated(node, "unevaluatedItems") {
                let kind = self.kind(u);
                if !matches!(kind, Kind::False) && !kind.is_empty() {
                    return Some(u);
                }
            }
        }
        None
    }
}

fn facet_id(facet: Option<Facet>) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    facet.hash(&mut hasher);
    hasher.finish() as usize
}

/// Whether two subschemas are the same schema (Confluent collapses equal ones in a union).
fn same_schema(a: &Node, b: &Node) -> bool {
    a.facet == b.facet
        && (std::ptr::eq(a.value, b.value) || (a.facet.is_none() && a.value == b.value))
}

fn properties<'a>(node: Node<'a>) -> Vec<(String, &'a Value)> {
    node.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn required(node: Node) -> BTreeSet<String> {
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
fn additional<'a>(node: Node<'a>, keyword: &str) -> (bool, Option<Node<'a>>) {
    match node.get(keyword) {
        None | Some(Value::Bool(true)) => (true, None),
        Some(Value::Bool(false)) => (false, None),
        Some(schema) => (true, Some(node.child(schema))),
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    value.and_then(Value::as_f64)
}

/// `{keyword}` added, removed, increased or decreased: `{PREFIX}_ADDED` and so on.
fn compare_limit(
    path: &[String],
    keyword: &str,
    prefix: &str,
    original: Option<&Value>,
    update: Option<&Value>,
    out: &mut Vec<Diff>,
) {
    let change = match (number(original), number(update)) {
        (None, None) => return,
        (None, Some(_)) => "ADDED",
        (Some(_), None) => "REMOVED",
        (Some(o), Some(u)) if o < u => "INCREASED",
        (Some(o), Some(u)) if o > u => "DECREASED",
        _ => return,
    };
    add_at(out, path, keyword, difference_type(prefix, change));
}

/// The `&'static str` of a `{prefix}_{change}` difference type.
fn difference_type(prefix: &str, change: &str) -> &'static str {
    const TYPES: &[&str] = &[
        "MAX_LENGTH_ADDED",
        "MAX_LENGTH_REMOVED",
        "MAX_LENGTH_INCREASED",
        "MAX_LENGTH_DECREASED",
        "MIN_LENGTH_ADDED",
        "MIN_LENGTH_REMOVED",
        "MIN_LENGTH_INCREASED",
        "MIN_LENGTH_DECREASED",
        "MAXIMUM_ADDED",
        "MAXIMUM_REMOVED",
        "MAXIMUM_INCREASED",
        "MAXIMUM_DECREASED",
        "MINIMUM_ADDED",
        "MINIMUM_REMOVED",
        "MINIMUM_INCREASED",
        "MINIMUM_DECREASED",
        "EXCLUSIVE_MAXIMUM_ADDED",
        "EXCLUSIVE_MAXIMUM_REMOVED",
        "EXCLUSIVE_MAXIMUM_INCREASED",
        "EXCLUSIVE_MAXIMUM_DECREASED",
        "EXCLUSIVE_MINIMUM_ADDED",
        "EXCLUSIVE_MINIMUM_REMOVED",
        "EXCLUSIVE_MINIMUM_INCREASED",
        "EXCLUSIVE_MINIMUM_DECREASED",
        "MAX_PROPERTIES_ADDED",
        "MAX_PROPERTIES_REMOVED",
        "MAX_PROPERTIES_INCREASED",
        "MAX_PROPERTIES_DECREASED",
        "MIN_PROPERTIES_ADDED",
        "MIN_PROPERTIES_REMOVED",
        "MIN_PROPERTIES_INCREASED",
        "MIN_PROPERTIES_DECREASED",
        "MAX_ITEMS_ADDED",
        "MAX_ITEMS_REMOVED",
        "MAX_ITEMS_INCREASED",
        "MAX_ITEMS_DECREASED",
        "MIN_ITEMS_ADDED",
        "MIN_ITEMS_REMOVED",
        "MIN_ITEMS_INCREASED",
        "MIN_ITEMS_DECREASED",
        "MAX_CONTAINS_ADDED",
        "MAX_CONTAINS_REMOVED",
        "MAX_CONTAINS_INCREASED",
        "MAX_CONTAINS_DECREASED",
        "MIN_CONTAINS_ADDED",
        "MIN_CONTAINS_REMOVED",
        "MIN_CONTAINS_INCREASED",
        "MIN_CONTAINS_DECREASED",
    ];
    let wanted = format!("{prefix}_{change}");
    TYPES
        .iter()
        .find(|t| **t == wanted)
        .copied()
        .unwrap_or("TYPE_CHANGED")
}

fn compare_string(path: &[String], original: Node, update: Node, out: &mut Vec<Diff>) {
    compare_limit(
        path,
        "maxLength",
        "MAX_LENGTH",
        original.get("maxLength"),
        update.get("maxLength"),
        out,
    );
    compare_limit(
        path,
        "minLength",
        "MIN_LENGTH",
        original.get("minLength"),
        update.get("minLength"),
        out,
    );
    match (original.get("pattern"), update.get("pattern")) {
        (None, Some(_)) => add_at(out, path, "pattern", "PATTERN_ADDED"),
        (Some(_), None) => add_at(out, path, "pattern", "PATTERN_REMOVED"),
        (Some(o), Some(u)) if o != u => add_at(out, path, "pattern", "PATTERN_CHANGED"),
        _ => {}
    }
}

fn compare_number<'a>(path: &[String], original: Node<'a>, update: Node<'a>, out: &mut Vec<Diff>) {
    compare_limit(
        path,
        "maximum",
        "MAXIMUM",
        original.get("maximum"),
        update.get("maximum"),
        out,
    );
    compare_limit(
        path,
        "minimum",
        "MINIMUM",
        original.get("minimum"),
        update.get("minimum"),
        out,
    );
    // Draft 4's boolean exclusiveMaximum/Minimum only qualify maximum/minimum: not compared.
    let limit = |n: &Node<'a>, k: &str| -> Option<&'a Value> { n.get(k).filter(|v| v.is_number()) };
    match (
        limit(&original, "exclusiveMaximum"),
        limit(&update, "exclusiveMaximum"),
    ) {
        (None, None) => {}
        (None, Some(_)) => add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_ADDED"),
        (Some(_), None) => add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_REMOVED"),
        (Some(o), Some(u)) => {
            let (o, u) = (number(Some(o)), number(Some(u)));
            if o < u {
                add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_INCREASED");
            } else if o > u {
                // Confluent compares a decrease with the update's `maximum` (absent: with none).
                let bound = number(update.get("maximum"));
                if bound.is_none_or(|m| o > Some(m)) {
                    add_at(out, path, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM_DECREASED");
                }
            }
        }
    }
    compare_limit(
        path,
        "exclusiveMinimum",
        "EXCLUSIVE_MINIMUM",
        limit(&original, "exclusiveMinimum"),
        limit(&update, "exclusiveMinimum"),
        out,
    );
    let multiple = |n: &Node| {
        n.get("multipleOf")
            .and_then(|v| Decimal::parse(&v.to_string()))
    };
    let (o, u) = (multiple(&original), multiple(&update));
    let equal = match (&o, &u) {
        (None, None) => true,
        (Some(o), Some(u)) => o.cmp_value(u) == std::cmp::Ordering::Equal,
        _ => false,
    };
    if !equal {
        let ty = match (o, u) {
            (None, _) => "MULTIPLE_OF_ADDED",
            (_, None) => "MULTIPLE_OF_REMOVED",
            (Some(o), Some(u)) => {
                if !o.is_zero() && u.divisible_by(&o) {
                    "MULTIPLE_OF_EXPANDED"
                } else if !u.is_zero() && o.divisible_by(&u) {
                    "MULTIPLE_OF_REDUCED"
                } else {
                    "MULTIPLE_OF_CHANGED"
                }
            }
        };
        add_at(out, path, "multipleOf", ty);
    }
}

/// A decimal number `digits * 10^exponent`, exact as Java's BigDecimal for `multipleOf`.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    digits: i128,
    exponent: i32,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Decimal {
            digits,
            exponent: exp - frac.len() as i32,
        })
    }

    fn is_zero(&self) -> bool {
        self.digits == 0
    }

    /// Both scaled to the smaller exponent.
    fn aligned(&self, other: &Decimal) -> Option<(i128, i128)> {
        let e = self.exponent.min(other.exponent);
        let scale = |d: &Decimal| {
            10i128
                .checked_pow((d.exponent - e) as u32)
                .and_then(|p| d.digits.checked_mul(p))
        };
        Some((scale(self)?, scale(other)?))
    }

    fn cmp_value(&self, other: &Decimal) -> std::cmp::Ordering {
        match self.aligned(other) {
            Some((a, b)) => a.cmp(&b),
            None => std::cmp::Ordering::Less,
        }
    }

    fn divisible_by(&self, other: &Decimal) -> bool {
        match self.aligned(other) {
            Some((a, b)) => b != 0 && a % b == 0,
            None => false,
        }
    }
}

/// A maximum matching of the bipartite graph `edges[i][j].is_some()` (augmenting paths): for
/// each left vertex, its right vertex.
fn maximum_matching<T>(edges: &[Vec<Option<T>>], right: usize) -> Vec<Option<usize>> {
    fn augment<T>(
        i: usize,
        edges: &[Vec<Option<T>>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for j in 0..seen.len() {
            if edges[i][j].is_some() && !seen[j] {
                seen[j] = true;
                if owner[j].is_none_or(|k| augment(k, edges, seen, owner)) {
                    owner[j] = Some(i);
                    return true;
                }
            }
        }
        false
    }
    let mut owner = vec![None; right];
    for i in 0..edges.len() {
        let mut seen = vec![false; right];
        augment(i, edges, &mut seen, &mut owner);
    }
    let mut matched = vec![None; edges.len()];
    for (j, i) in owner.iter().enumerate() {
        if let Some(i) = i {
            matched[*i] = Some(j);
        }
    }
    matched
}

/// The order Java's `HashSet<String>` iterates the keys of `first` then `then` in, as
/// Confluent's diff builds it (`new HashSet<>(first)`, then `addAll(then)`): by hash bucket of
/// the final table, insertion order within a bucket.
fn java_hash_order<'k>(first: &[&'k str], then: &[&'k str]) -> Vec<&'k str> {
    let mut keys: Vec<&str> = Vec::new();
    for key in first.iter().chain(then) {
        if !keys.contains(key) {
            keys.push(key);
        }
    }
    let initial = ((first.len() as f32 / 0.75) as usize + 1).max(16);
    let mut capacity = initial.next_power_of_two();
    while keys.len() > capacity * 3 / 4 {
        capacity *= 2;
    }
    let bucket = |key: &str| {
        let h = key
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32)) as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    keys.sort_by_key(|k| bucket(k));
    keys
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/// The document a `$ref`'s URL part names: a reference by its name (or
/// the name's last path segment), or a document whose `$id` it is.
fn find_document(schema: &JsonSchema, url: &str) -> Option<usize> {
    let trim = |s: &str| s.trim_start_matches("./").to_owned();
    let wanted = trim(url);
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    let id_of = |doc: &Value| {
        doc.get("$id")
            .or_else(|| doc.get("id"))
            .and_then(Value::as_str)
            .map(|s| s.trim_end_matches('#').to_owned())
    };
    for (i, (name, _)) in schema.references.iter().enumerate() {
        if trim(name) == wanted {
            return Some(i + 1);
        }
    }
    for i in 0..=schema.references.len() {
        if id_of(schema.doc(i)).is_some_and(|id| id == url || trim(&id) == wanted) {
            return Some(i);
        }
    }
    for (i, (name, _)) in schema.references.iter().enumerate() {
        if last(name) == last(&wanted) {
            return Some(i + 1);
        }
    }
    (0..=schema.references.len())
        .find(|&i| id_of(schema.doc(i)).is_some_and(|id| last(&id) == last(&wanted)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// The subschema with `$anchor: name` (or an `$id`/`id` of `#name`).
fn find_anchor<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => {
            let hash = format!("#{name}");
            if map.get("$anchor").and_then(Value::as_str) == Some(name)
                || map.get("$id").and_then(Value::as_str) == Some(hash.as_str())
                || map.get("id").and_then(Value::as_str) == Some(hash.as_str())
            {
                return Some(value);
            }
            map.values().find_map(|v| find_anchor(v, name))
        }
        Value::Array(items) => items.iter().find_map(|v| find_anchor(v, name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
