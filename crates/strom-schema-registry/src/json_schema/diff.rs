//! The diff: Confluent's `SchemaDiff`, from the original schema to the update, type by type.

use std::collections::HashSet;

use serde_json::Value;

use super::differences::{add, add_at, all_compatible, Diff};
use super::model::{classify, facet_id, same_schema, Criterion, Kind, Node, Side};
use super::references::{find_anchor, find_document, percent_decode};
use super::scalar::{compare_number, compare_string};
use super::JsonSchema;

pub(super) struct Differ<'a> {
    /// The original's and the update's schemas.
    pub(super) docs: [&'a JsonSchema; 2],
    /// Pairs being compared: met again (a recursive schema), they count as compatible.
    pub(super) in_progress: HashSet<(usize, usize, usize, usize)>,
}

impl<'a> Differ<'a> {
    pub(super) fn schema(&self, side: Side) -> &'a JsonSchema {
        match side {
            Side::Original => self.docs[0],
            Side::Update => self.docs[1],
        }
    }

    pub(super) fn kind(&self, node: Node<'a>) -> Kind<'a> {
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

    pub(super) fn compare(
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

    pub(super) fn sub(
        &mut self,
        path: &[String],
        original: Node<'a>,
        update: Node<'a>,
    ) -> Vec<Diff> {
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
