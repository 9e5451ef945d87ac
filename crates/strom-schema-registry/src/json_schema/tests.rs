use super::object::java_hash_order;
use super::*;

fn schema(text: &str) -> JsonSchema {
    parse(text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The incompatibilities of `new` read against `old` (BACKWARD words).
fn errors(old: &str, new: &str) -> Vec<String> {
    schema(new).compatibility_errors_as(&schema(old), "new", "old")
}

/// The incompatible difference types and paths, `TYPE #/path`.
fn incompatible(old: &str, new: &str) -> Vec<String> {
    let (old, new) = (schema(old), schema(new));
    let all = new.differences(&old);
    all.into_iter()
        .filter(|d| !compatible(d.split(' ').next().unwrap()))
        .collect()
}

#[test]
fn canonical_is_compact_json_in_written_order() {
    let s = schema("{\n  \"type\": \"object\",\n  \"properties\": {\"b\": {\"type\": \"integer\"}, \"a\": {\"type\": \"string\", \"maxLength\": 5}},\n  \"required\": [\"b\"]\n}");
    assert_eq!(
        s.canonical(),
        r##"{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string","maxLength":5}},"required":["b"]}"##
    );
    assert_eq!(
        s.normalized(),
        r##"{"properties":{"a":{"maxLength":5,"type":"string"},"b":{"type":"integer"}},"required":["b"],"type":"object"}"##
    );
    assert_eq!(schema(" true ").canonical(), "true");
    assert_eq!(
        schema(r##"{"title": "é \"q\""}"##).canonical(),
        r##"{"title":"é \"q\""}"##
    );
}

#[test]
fn invalid_schemas_are_refused() {
    for text in [
        "not json",
        "[1, 2]",
        "42",
        r##""string""##,
        r##"{"type": "strin"}"##,
        r##"{"type": "object", "properties": {"a": 5}}"##,
        r##"{"type": "object", "required": "a"}"##,
        r##"{"minLength": -1}"##,
        r##"{"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": 5}"##,
        r##"{"$ref": "other.json"}"##,
        r##"{"$ref": "#/definitions/missing"}"##,
    ] {
        let error = parse(text, &[])
            .err()
            .unwrap_or_else(|| panic!("accepted {text}"));
        assert!(
            error.starts_with("Invalid schema of type JSON, details: "),
            "{error}"
        );
    }
    // Each draft's own keywords.
    for text in [
        r##"{"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": true, "minimum": 1}"##,
        r##"{"$schema": "http://json-schema.org/draft-06/schema#", "exclusiveMinimum": 1}"##,
        r##"{"$schema": "http://json-schema.org/draft-07/schema#", "if": {"type": "string"}}"##,
        r##"{"$schema": "https://json-schema.org/draft/2019-09/schema", "dependentRequired": {"a": ["b"]}}"##,
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]}"##,
        r##"{"definitions": {"a": {"type": "string"}}, "$ref": "#/definitions/a"}"##,
        "{}",
        "false",
    ] {
        schema(text);
    }
}

#[test]
fn references_resolve_by_name() {
    let address = r##"{"type": "object", "properties": {"city": {"type": "string"}}}"##;
    let wider = r##"{"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}"##;
    let text = r##"{"type": "object", "properties": {"home": {"$ref": "address.json"}}}"##;
    assert!(parse(text, &[]).is_err());
    let old = parse(text, &[("address.json", address)]).unwrap();
    let same = parse(text, &[("address.json", address)]).unwrap();
    assert!(same.compatibility_errors_as(&old, "new", "old").is_empty());
    // The referenced schema gained an optional property on an open content model.
    let new = parse(text, &[("address.json", wider)]).unwrap();
    assert_eq!(
        new.compatibility_errors_as(&old, "new", "old"),
        [
            "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new schema has an open content model and has a property or item at path '#/properties/home/properties/zip' which is missing in the old schema'}"
        ]
    );
    // A fragment of a reference, and of the document itself.
    let defs = r##"{"definitions": {"Id": {"type": "integer"}}}"##;
    let text = r##"{"properties": {"id": {"$ref": "defs.json#/definitions/Id"}, "self": {"$ref": "#/definitions/N"}}, "definitions": {"N": {"type": "number"}}}"##;
    let old = parse(text, &[("defs.json", defs)]).unwrap();
    let inline =
        schema(r##"{"properties": {"id": {"type": "integer"}, "self": {"type": "integer"}}}"##);
    assert_eq!(
        inline.differences(&old),
        ["TYPE_NARROWED #/properties/self"]
    );
}

#[test]
fn messages_are_confluents() {
    assert_eq!(
        errors(
            r##"{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}"##,
            r##"{"type": "object", "properties": {}, "additionalProperties": false}"##
        ),
        ["{errorType:\"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL\", description:\"The new has a closed content model and is missing a property or item present at path '#/properties/a' in the old schema'}"]
    );
    let old = schema(r##"{"type": "string", "maxLength": 5}"##);
    let new = schema(r##"{"type": "string", "maxLength": 3}"##);
    assert_eq!(
        new.compatibility_errors_as(&old, "new", "old"),
        ["{errorType:\"MAX_LENGTH_DECREASED\", description:\"The value at path '#/maxLength' in the new schema is less than its value in the old schema'}"]
    );
    // FORWARD: the old schema reads the new one's data.
    assert_eq!(
        old.compatibility_errors_as(&new, "old", "new"),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(r##"{"type": "string"}"##, r##"{"type": "integer"}"##),
        ["{errorType:\"TYPE_CHANGED\", description:\"A type at path '#/' is different between the new schema and the old schema'}"]
    );
    assert_eq!(
        errors(r##"{"type": "string", "minLength": 1}"##, r##"{"type": "string", "minLength": 2, "pattern": "^a"}"##),
        [
            "{errorType:\"MIN_LENGTH_INCREASED\", description:\"The value at path '#/minLength' in the new schema is more than its value in the old schema'}",
            "{errorType:\"PATTERN_ADDED\", description:\"The keyword at path '#/pattern' in the new schema is not present in the old schema'}",
        ]
    );
}

const OPEN: &str = r##"{"type": "object", "properties": {"a": {"type": "string"}}}"##;
const CLOSED: &str = r##"{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}"##;

/// (name, original, update, incompatible differences of the update read against the original).
const EVOLUTIONS: &[(&str, &str, &str, &[&str])] = &[
    ("identical", OPEN, OPEN, &[]),
    (
        "whitespace and title only",
        OPEN,
        r##"{"title": "T", "type":"object","properties":{"a":{"type":"string"}}}"##,
        &[],
    ),
    (
        "open: optional property added",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}"##,
        &["OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "open: property with empty schema added",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {}}}"##,
        &[],
    ),
    (
        "open: required property added",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"]}"##,
        &["REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "open: required property with default added",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 0}}, "required": ["b"]}"##,
        &["REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "open: property removed",
        OPEN,
        r##"{"type": "object", "properties": {}}"##,
        &[],
    ),
    (
        "closed: optional property added",
        CLOSED,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "additionalProperties": false}"##,
        &[],
    ),
    (
        "closed: required property added",
        CLOSED,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"], "additionalProperties": false}"##,
        &["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "closed: required property with default added",
        CLOSED,
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 1}}, "required": ["b"], "additionalProperties": false}"##,
        &[],
    ),
    (
        "closed: property removed",
        CLOSED,
        r##"{"type": "object", "properties": {}, "additionalProperties": false}"##,
        &["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/a"],
    ),
    (
        "closed: false property removed",
        r##"{"type": "object", "properties": {"a": false}, "additionalProperties": false}"##,
        r##"{"type": "object", "properties": {}, "additionalProperties": false}"##,
        &[],
    ),
    ("closed to open", CLOSED, OPEN, &[]),
    (
        "open to closed",
        OPEN,
        CLOSED,
        &["ADDITIONAL_PROPERTIES_REMOVED #/additionalProperties"],
    ),
    (
        "partially open: removed property covered",
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "additionalProperties": false}"##,
        r##"{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "number"}}"##,
        &[],
    ),
    (
        "partially open: removed property not covered",
        r##"{"type": "object", "properties": {"a": {"type": "string"}, "s": {"type": "string"}}, "additionalProperties": false}"##,
        r##"{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "number"}}"##,
        &[
            "TYPE_CHANGED #/properties/s",
            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/s",
        ],
    ),
    (
        "pattern properties cover an added property",
        r##"{"type": "object", "properties": {}, "patternProperties": {"^i_": {"type": "integer"}}}"##,
        r##"{"type": "object", "properties": {"i_x": {"type": "integer"}}, "patternProperties": {"^i_": {"type": "integer"}}}"##,
        &[],
    ),
    (
        "required added",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}"##,
        &["REQUIRED_ATTRIBUTE_ADDED #/required/a"],
    ),
    (
        "required removed",
        r##"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}"##,
        OPEN,
        &[],
    ),
    (
        "property type changed",
        OPEN,
        r##"{"type": "object", "properties": {"a": {"type": "boolean"}}}"##,
        &["TYPE_CHANGED #/properties/a"],
    ),
    (
        "integer to number",
        r##"{"type": "integer"}"##,
        r##"{"type": "number"}"##,
        &[],
    ),
    (
        "number to integer",
        r##"{"type": "number"}"##,
        r##"{"type": "integer"}"##,
        &["TYPE_NARROWED #/"],
    ),
    (
        "type extended to a union",
        r##"{"type": "string"}"##,
        r##"{"type": ["string", "null"]}"##,
        &[],
    ),
    (
        "union narrowed to a type",
        r##"{"type": ["string", "null"]}"##,
        r##"{"type": "string"}"##,
        &["TYPE_CHANGED #/"],
    ),
    (
        "union member removed",
        r##"{"type": ["string", "null", "integer"]}"##,
        r##"{"type": ["string", "null"]}"##,
        &["SUM_TYPE_NARROWED #/"],
    ),
    (
        "enum extended",
        r##"{"enum": ["a", "b"]}"##,
        r##"{"enum": ["a", "b", "c"]}"##,
        &[],
    ),
    (
        "enum narrowed",
        r##"{"enum": ["a", "b"]}"##,
        r##"{"enum": ["a"]}"##,
        &["ENUM_ARRAY_NARROWED #/enum"],
    ),
    (
        "enum changed",
        r##"{"enum": ["a", "b"]}"##,
        r##"{"enum": ["a", "c"]}"##,
        &["ENUM_ARRAY_CHANGED #/enum"],
    ),
    (
        "typed enum narrowed",
        r##"{"type": "string", "enum": ["a", "b"]}"##,
        r##"{"type": "string", "enum": ["a"]}"##,
        &["COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"],
    ),
    (
        "const changed",
        r##"{"const": 1}"##,
        r##"{"const": 2}"##,
        &["ENUM_ARRAY_CHANGED #/const"],
    ),
    (
        "maximum decreased",
        r##"{"type": "number", "maximum": 10}"##,
        r##"{"type": "number", "maximum": 5}"##,
        &["MAXIMUM_DECREASED #/maximum"],
    ),
    (
        "maximum increased",
        r##"{"type": "number", "maximum": 10}"##,
        r##"{"type": "number", "maximum": 50}"##,
        &[],
    ),
    (
        "minimum added",
        r##"{"type": "number"}"##,
        r##"{"type": "number", "minimum": 0}"##,
        &["MINIMUM_ADDED #/minimum"],
    ),
    (
        "exclusive minimum increased",
        r##"{"type": "number", "exclusiveMinimum": 0}"##,
        r##"{"type": "number", "exclusiveMinimum": 1}"##,
        &["EXCLUSIVE_MINIMUM_INCREASED #/exclusiveMinimum"],
    ),
    (
        "multipleOf reduced",
        r##"{"type": "number", "multipleOf": 0.5}"##,
        r##"{"type": "number", "multipleOf": 0.25}"##,
        &[],
    ),
    (
        "multipleOf expanded",
        r##"{"type": "number", "multipleOf": 0.1}"##,
        r##"{"type": "number", "multipleOf": 0.3}"##,
        &["MULTIPLE_OF_EXPANDED #/multipleOf"],
    ),
    (
        "maxLength removed",
        r##"{"type": "string", "maxLength": 3}"##,
        r##"{"type": "string"}"##,
        &[],
    ),
    (
        "minItems increased",
        r##"{"type": "array", "minItems": 1}"##,
        r##"{"type": "array", "minItems": 2}"##,
        &["MIN_ITEMS_INCREASED #/minItems"],
    ),
    (
        "uniqueItems added",
        r##"{"type": "array"}"##,
        r##"{"type": "array", "uniqueItems": true}"##,
        &["UNIQUE_ITEMS_ADDED #/uniqueItems"],
    ),
    (
        "items type changed",
        r##"{"type": "array", "items": {"type": "string"}}"##,
        r##"{"type": "array", "items": {"type": "integer"}}"##,
        &["TYPE_CHANGED #/items"],
    ),
    (
        "items schema added",
        r##"{"type": "array"}"##,
        r##"{"type": "array", "items": {"type": "integer"}}"##,
        &["SCHEMA_ADDED #/items"],
    ),
    (
        "items schema removed",
        r##"{"type": "array", "items": {"type": "integer"}}"##,
        r##"{"type": "array"}"##,
        &[],
    ),
    (
        "tuple item added to open content model",
        r##"{"type": "array", "items": [{"type": "string"}]}"##,
        r##"{"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}"##,
        &["ITEM_ADDED_TO_OPEN_CONTENT_MODEL #/items/1"],
    ),
    (
        "tuple item removed from closed content model",
        r##"{"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false}"##,
        r##"{"type": "array", "items": [{"type": "string"}], "additionalItems": false}"##,
        &["ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL #/items/1"],
    ),
    (
        "oneOf member added",
        r##"{"oneOf": [{"type": "string"}, {"type": "integer"}]}"##,
        r##"{"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]}"##,
        &[],
    ),
    (
        "oneOf member removed",
        r##"{"oneOf": [{"type": "string"}, {"type": "integer"}]}"##,
        r##"{"oneOf": [{"type": "string"}]}"##,
        &["SUM_TYPE_NARROWED #/"],
    ),
    (
        "oneOf member changed",
        r##"{"oneOf": [{"type": "string"}, {"type": "integer"}]}"##,
        r##"{"oneOf": [{"type": "string"}, {"type": "boolean"}]}"##,
        &["COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"],
    ),
    (
        "oneOf to anyOf",
        r##"{"oneOf": [{"type": "string"}, {"type": "integer"}]}"##,
        r##"{"anyOf": [{"type": "string"}, {"type": "integer"}]}"##,
        &[],
    ),
    (
        "anyOf to allOf",
        r##"{"anyOf": [{"type": "string"}, {"type": "integer"}]}"##,
        r##"{"allOf": [{"type": "string"}, {"type": "integer"}]}"##,
        &["COMBINED_TYPE_CHANGED #/"],
    ),
    (
        "allOf member added",
        r##"{"allOf": [{"type": "string"}]}"##,
        r##"{"allOf": [{"type": "string"}, {"maxLength": 4}]}"##,
        &["PRODUCT_TYPE_EXTENDED #/"],
    ),
    (
        "type to a union holding it",
        r##"{"type": "string"}"##,
        r##"{"oneOf": [{"type": "string"}, {"type": "null"}]}"##,
        &[],
    ),
    (
        "union to one of its members",
        r##"{"anyOf": [{"type": "string"}, {"type": "null"}]}"##,
        r##"{"type": "string"}"##,
        &["TYPE_CHANGED #/"],
    ),
    (
        "not narrowed",
        r##"{"not": {"type": "number"}}"##,
        r##"{"not": {"type": "integer"}}"##,
        &[],
    ),
    (
        "not extended",
        r##"{"not": {"type": "integer"}}"##,
        r##"{"not": {"type": "number"}}"##,
        &["NOT_TYPE_EXTENDED #/not"],
    ),
    (
        "local $ref target changed",
        r##"{"properties": {"a": {"$ref": "#/definitions/A"}}, "definitions": {"A": {"type": "string"}}}"##,
        r##"{"properties": {"a": {"$ref": "#/definitions/A"}}, "definitions": {"A": {"type": "integer"}}}"##,
        &["TYPE_CHANGED #/properties/a"],
    ),
    (
        "recursive schema unchanged",
        r##"{"$ref": "#/definitions/Node", "definitions": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}}}"##,
        r##"{"$ref": "#/definitions/Node", "definitions": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}}}"##,
        &[],
    ),
    ("anything to empty schema", OPEN, "{}", &[]),
    (
        "empty schema to a type",
        "{}",
        r##"{"type": "string"}"##,
        &["TYPE_CHANGED #/"],
    ),
    ("false to anything", "false", r##"{"type": "string"}"##, &[]),
    (
        "connect.type bytes on both",
        r##"{"type": "string", "connect.type": "bytes"}"##,
        r##"{"type": "number", "connect.type": "bytes"}"##,
        &[],
    ),
    (
        "dependency array extended",
        r##"{"properties": {"a": {}, "b": {}, "c": {}}, "dependencies": {"a": ["b"]}}"##,
        r##"{"properties": {"a": {}, "b": {}, "c": {}}, "dependencies": {"a": ["b", "c"]}}"##,
        &["DEPENDENCY_ARRAY_EXTENDED #/dependencies/a"],
    ),
    (
        "2020-12 unevaluatedProperties false added",
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"a": {"type": "string"}}}"##,
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"a": {"type": "string"}}, "unevaluatedProperties": false}"##,
        &["UNEVALUATED_PROPERTIES_REMOVED #/unevaluatedProperties"],
    ),
];

#[test]
fn evolutions() {
    for (name, old, new, expected) in EVOLUTIONS {
        let got = incompatible(old, new);
        assert_eq!(&got, expected, "{name}");
        assert_eq!(errors(old, new).len(), expected.len(), "{name}");
    }
}

#[test]
fn several_changes_come_in_confluents_order() {
    // Java's HashSet order of the property names, required before properties.
    let got = incompatible(
        r##"{"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "string"}}}"##,
        r##"{"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}, "b": {"type": "string"}, "a": {"type": "string"}}, "required": ["y"]}"##,
    );
    assert_eq!(
        got,
        [
            "REQUIRED_ATTRIBUTE_ADDED #/required/y",
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/a",
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b",
            "TYPE_CHANGED #/properties/x",
            "TYPE_CHANGED #/properties/y",
        ]
    );
}

#[test]
fn java_hash_set_order() {
    // "q" (113) and "a" (97) share bucket 1 of a 16-slot table: insertion order; "b" is in 2.
    assert_eq!(java_hash_order(&["q", "a"], &["b"]), ["q", "a", "b"]);
    assert_eq!(java_hash_order(&[], &["foo", "bar"]), ["bar", "foo"]);
}
