//! Objects: required properties, properties, dependencies and property limits.

use std::collections::BTreeSet;

use serde_json::Value;

use super::content::Content;
use super::diff::Differ;
use super::differences::{add, Diff};
use super::model::{additional, properties, required, Node};
use super::scalar::compare_limits;

impl<'a> Differ<'a> {
    pub(super) fn compare_object(
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
                    let open = self.open_properties(update);
                    let partial = self.partial_property(update, key);
                    let removed = original.child(o);
                    self.compare_removed(path, Content::Properties, removed, open, partial, out);
                }
                (None, Some(u)) => {
                    let u = update.child(u);
                    let required = urequired.contains(key);
                    if self.open_properties(original) {
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
                        if let Some(partial) = self.partial_property(original, key) {
                            self.compare_with_partial(
                                path,
                                partial,
                                u,
                                (
                                    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                ),
                                out,
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

        self.compare_additional(
            path,
            Content::Properties,
            additional(original, "additionalProperties"),
            additional(update, "additionalProperties"),
            out,
        );
        self.compare_unevaluated(path, Content::Properties, original, update, out);
        compare_limits(
            path,
            &[
                ("maxProperties", "MAX_PROPERTIES"),
                ("minProperties", "MIN_PROPERTIES"),
            ],
            original,
            update,
            out,
        );
    }

    /// Everit's `isOpenContentModel` of an object.
    fn open_properties(&self, node: Node<'a>) -> bool {
        let additional = additional(node, "additionalProperties");
        self.open_content_model(node, Content::Properties, additional)
    }

    /// The schema a partially open object gives a property it does not name.
    fn partial_property(&self, node: Node<'a>, key: &str) -> Option<Node<'a>> {
        if let Some(patterns) = node.get("patternProperties").and_then(Value::as_object) {
            for (pattern, schema) in patterns {
                if regex::Regex::new(pattern).is_ok_and(|r| r.is_match(key)) {
                    return Some(node.child(schema));
                }
            }
        }
        let additional = additional(node, "additionalProperties");
        self.partial_content_model(node, Content::Properties, additional)
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
}

/// The order Java's `HashSet<String>` iterates the keys of `first` then `then` in, as
/// Confluent's diff builds it (`new HashSet<>(first)`, then `addAll(then)`): by hash bucket of
/// the final table, insertion order within a bucket.
pub(super) fn java_hash_order<'k>(first: &[&'k str], then: &[&'k str]) -> Vec<&'k str> {
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
