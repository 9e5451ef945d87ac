//! References: the URIs the validator knows a referenced schema by, and the documents,
//! JSON pointers and anchors a `$ref` names.

use serde_json::Value;

use super::JsonSchema;

/// The base URI the validator resolves relative `$ref`s against when a schema has no `$id`.
const DEFAULT_BASE: &str = "json-schema:///";

pub(super) fn is_absolute(uri: &str) -> bool {
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
pub(super) fn reference_uris(name: &str, root_id: Option<&str>) -> Vec<String> {
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

/// The document a `$ref`'s URL part names: a reference by its name (or
/// the name's last path segment), or a document whose `$id` it is.
pub(super) fn find_document(schema: &JsonSchema, url: &str) -> Option<usize> {
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

pub(super) fn percent_decode(text: &str) -> String {
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
pub(super) fn find_anchor<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
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
