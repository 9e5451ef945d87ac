//! Content models: what `additionalProperties`/`additionalItems`, `patternProperties` and the
//! `unevaluated*` keywords let through, open, partially open or closed. Objects' properties and
//! arrays' tuple items follow the same rules, with their own keywords and difference types.

use serde_json::Value;

use super::diff::Differ;
use super::differences::{add, all_compatible, Diff};
use super::model::{Kind, Node};

/// What a content model admits: an object's properties or an array's tuple items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Content {
    Properties,
    Items,
}

/// The difference types of a keyword added, removed, or whose schema admits less or more.
struct Changes {
    added: &'static str,
    removed: &'static str,
    narrowed: &'static str,
    extended: &'static str,
}

/// The difference types of a member the update no longer has, by what its content model
/// makes of it.
struct Removed {
    from_open: &'static str,
    covered_by_partial: &'static str,
    not_covered_by_partial: &'static str,
    false_from_closed: &'static str,
    from_closed: &'static str,
}

impl Content {
    fn additional(self) -> (&'static str, Changes) {
        match self {
            Content::Properties => (
                "additionalProperties",
                Changes {
                    added: "ADDITIONAL_PROPERTIES_ADDED",
                    removed: "ADDITIONAL_PROPERTIES_REMOVED",
                    narrowed: "ADDITIONAL_PROPERTIES_NARROWED",
                    extended: "ADDITIONAL_PROPERTIES_EXTENDED",
                },
            ),
            Content::Items => (
                "additionalItems",
                Changes {
                    added: "ADDITIONAL_ITEMS_ADDED",
                    removed: "ADDITIONAL_ITEMS_REMOVED",
                    narrowed: "ADDITIONAL_ITEMS_NARROWED",
                    extended: "ADDITIONAL_ITEMS_EXTENDED",
                },
            ),
        }
    }

    fn unevaluated(self) -> (&'static str, Changes) {
        match self {
            Content::Properties => (
                "unevaluatedProperties",
                Changes {
                    added: "UNEVALUATED_PROPERTIES_ADDED",
                    removed: "UNEVALUATED_PROPERTIES_REMOVED",
                    narrowed: "UNEVALUATED_PROPERTIES_NARROWED",
                    extended: "UNEVALUATED_PROPERTIES_EXTENDED",
                },
            ),
            Content::Items => (
                "unevaluatedItems",
                Changes {
                    added: "UNEVALUATED_ITEMS_ADDED",
                    removed: "UNEVALUATED_ITEMS_REMOVED",
                    narrowed: "UNEVALUATED_ITEMS_NARROWED",
                    extended: "UNEVALUATED_ITEMS_EXTENDED",
                },
            ),
        }
    }

    fn removed(self) -> Removed {
        match self {
            Content::Properties => Removed {
                from_open: "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
                covered_by_partial: "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                not_covered_by_partial:
                    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                false_from_closed: "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                from_closed: "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            },
            Content::Items => Removed {
                from_open: "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
                covered_by_partial: "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                not_covered_by_partial: "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                false_from_closed: "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                from_closed: "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            },
        }
    }
}

impl<'a> Differ<'a> {
    /// `additionalProperties`/`additionalItems`, given as (permits, schema) on each side.
    pub(super) fn compare_additional(
        &mut self,
        path: &mut Vec<String>,
        content: Content,
        (opermits, oschema): (bool, Option<Node<'a>>),
        (upermits, uschema): (bool, Option<Node<'a>>),
        out: &mut Vec<Diff>,
    ) {
        let (keyword, changes) = content.additional();
        path.push(keyword.to_owned());
        if opermits != upermits {
            if upermits {
                add(out, path, changes.added);
            } else {
                add(out, path, changes.removed);
            }
        } else if oschema.is_none() && uschema.is_some() {
            add(out, path, changes.narrowed);
        } else if uschema.is_none() && oschema.is_some() {
            add(out, path, changes.extended);
        } else {
            self.compare(path, oschema, uschema, out);
        }
        path.pop();
    }

    /// `unevaluatedProperties`/`unevaluatedItems` of the two sides.
    pub(super) fn compare_unevaluated(
        &mut self,
        path: &mut Vec<String>,
        content: Content,
        original: Node<'a>,
        update: Node<'a>,
        out: &mut Vec<Diff>,
    ) {
        let (keyword, changes) = content.unevaluated();
        let original = self.unevaluated(original, keyword);
        let update = self.unevaluated(update, keyword);
        if original.is_none() && update.is_none() {
            return;
        }
        path.push(keyword.to_owned());
        let okind = original.map(|n| self.kind(n));
        let ukind = update.map(|n| self.kind(n));
        let is_false = |k: &Option<Kind>| matches!(k, Some(Kind::False));
        let is_empty = |k: &Option<Kind>| k.as_ref().is_some_and(Kind::is_empty);
        match (original, update) {
            (None, _) => add(
                out,
                path,
                if is_false(&ukind) {
                    changes.removed
                } else {
                    changes.narrowed
                },
            ),
            (_, None) => add(
                out,
                path,
                if is_false(&okind) {
                    changes.added
                } else {
                    changes.extended
                },
            ),
            _ if is_false(&okind) && !is_false(&ukind) => add(out, path, changes.added),
            _ if !is_false(&okind) && is_false(&ukind) => add(out, path, changes.removed),
            _ if is_empty(&okind) && !is_empty(&ukind) => add(out, path, changes.narrowed),
            _ if !is_empty(&okind) && is_empty(&ukind) => add(out, path, changes.extended),
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

    /// Everit's `isOpenContentModel`, `additional` being the (permits, schema) of the model's
    /// `additionalProperties` or additional items.
    pub(super) fn open_content_model(
        &self,
        node: Node<'a>,
        content: Content,
        (permits, schema): (bool, Option<Node<'a>>),
    ) -> bool {
        if !permits || schema.is_some() {
            return false;
        }
        if content == Content::Properties
            && node
                .get("patternProperties")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        {
            return false;
        }
        match self.unevaluated(node, content.unevaluated().0) {
            None => true,
            Some(u) => self.kind(u).is_empty(),
        }
    }

    /// The schema a partially open content model gives a member it does not name, `additional`
    /// being the (permits, schema) of its `additionalProperties` or additional items.
    pub(super) fn partial_content_model(
        &self,
        node: Node<'a>,
        content: Content,
        (permits, schema): (bool, Option<Node<'a>>),
    ) -> Option<Node<'a>> {
        if schema.is_some() {
            return schema;
        }
        if permits {
            if let Some(u) = self.unevaluated(node, content.unevaluated().0) {
                let kind = self.kind(u);
                if !matches!(kind, Kind::False) && !kind.is_empty() {
                    return Some(u);
                }
            }
        }
        None
    }

    /// A property or tuple item of the original that the update does not name, as the
    /// update's content model takes it (`partial`: the schema a partially open model gives it).
    pub(super) fn compare_removed(
        &mut self,
        path: &[String],
        content: Content,
        removed: Node<'a>,
        open: bool,
        partial: Option<Node<'a>>,
        out: &mut Vec<Diff>,
    ) {
        let types = content.removed();
        if open {
            add(out, path, types.from_open);
        } else if let Some(partial) = partial {
            self.compare_with_partial(
                path,
                removed,
                partial,
                (types.covered_by_partial, types.not_covered_by_partial),
                out,
            );
        } else if matches!(self.kind(removed), Kind::False) {
            add(out, path, types.false_from_closed);
        } else {
            add(out, path, types.from_closed);
        }
    }

    /// Compares a member with the schema a partially open content model gives it on the other
    /// side, then records whether that schema covers it: `covered` or `not_covered`.
    pub(super) fn compare_with_partial(
        &mut self,
        path: &[String],
        original: Node<'a>,
        update: Node<'a>,
        (covered, not_covered): (&'static str, &'static str),
        out: &mut Vec<Diff>,
    ) {
        let diffs = self.sub(path, original, update);
        let ok = all_compatible(&diffs);
        out.extend(diffs);
        add(out, path, if ok { covered } else { not_covered });
    }
}
