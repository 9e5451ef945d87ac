//! JSON Schema (`schemaType: "JSON"`) as Confluent's registry treats it: the text kept as it was
//! written (compact JSON, key order kept), validity by the meta-schema its `$schema` names, and
//! compatibility as a diff from the original (older) schema to the update (newer), classified
//! change by change into compatible and incompatible kinds, as Confluent's `SchemaDiff` does
//! over the schema model of the Everit loader.

mod array;
mod content;
mod diff;
mod differences;
mod model;
mod object;
mod references;
mod scalar;

use std::collections::HashSet;

use serde_json::Value;

use diff::Differ;
use differences::{compatible, Diff};
use model::{Node, Side};
use references::{is_absolute, reference_uris};

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
        self.diff_from(writer)
            .iter()
            .filter(|d| !compatible(d.ty))
            .map(|d| d.describe(reader_word, writer_word))
            .collect()
    }

    /// Every difference of the diff from `original` to this schema (compatible ones too,
    /// but for changes of id, title, description and default), as `TYPE #/path`.
    #[cfg(test)]
    fn differences(&self, original: &JsonSchema) -> Vec<String> {
        self.diff_from(original)
            .iter()
            .map(|d| format!("{} {}", d.ty, d.path))
            .collect()
    }

    /// Confluent's diff from `original` to this schema.
    fn diff_from(&self, original: &JsonSchema) -> Vec<Diff> {
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
        out
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

#[cfg(test)]
mod tests;
