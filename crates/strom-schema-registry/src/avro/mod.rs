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

mod compatibility;
mod json;
mod model;
mod normalize;
mod parser;
mod printer;

use std::collections::HashMap;

use compatibility::Checker;
use model::{Types, S};
use parser::Parser;
use printer::Printer;

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

/// A record with most of what Avro's printer keeps, for the printer's and the normalizer's tests.
#[cfg(test)]
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
