//! Arrays: the items schema, tuple items, additional items and item limits.

use serde_json::Value;

use super::content::Content;
use super::diff::Differ;
use super::differences::{add, add_at, Diff};
use super::model::{permits, Node};
use super::scalar::compare_limits;
use super::Draft;

impl<'a> Differ<'a> {
    pub(super) fn compare_array(
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
                let open = self.open_content_model(update, Content::Items, uadditional);
                let partial = self.partial_content_model(update, Content::Items, uadditional);
                let removed = otuple[index];
                self.compare_removed(path, Content::Items, removed, open, partial, out);
            } else {
                let u = utuple[index];
                if self.open_content_model(original, Content::Items, oadditional) {
                    if self.kind(u).is_empty() {
                        add(
                            out,
                            path,
                            "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
                        );
                    } else {
                        add(out, path, "ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
                    }
                } else if let Some(partial) =
                    self.partial_content_model(original, Content::Items, oadditional)
                {
                    self.compare_with_partial(
                        path,
                        partial,
                        u,
                        (
                            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                        ),
                        out,
                    );
                } else {
                    add(out, path, "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL");
                }
            }
            path.pop();
        }

        self.compare_additional(path, Content::Items, oadditional, uadditional, out);
        self.compare_unevaluated(path, Content::Items, original, update, out);
        let items_limits = [("maxItems", "MAX_ITEMS"), ("minItems", "MIN_ITEMS")];
        compare_limits(path, &items_limits, original, update, out);
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
        let contains_limits = [
            ("maxContains", "MAX_CONTAINS"),
            ("minContains", "MIN_CONTAINS"),
        ];
        compare_limits(path, &contains_limits, original, update, out);
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
        let additional = permits(node, additional_value);
        (
            all.map(|v| node.child(v)),
            tuple.into_iter().map(|v| node.child(v)).collect(),
            additional,
        )
    }
}
