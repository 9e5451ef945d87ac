//! Differences: Confluent's `Difference.Type`, which of them are compatible, and how they print.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Diff {
    pub(super) ty: &'static str,
    pub(super) path: String,
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

pub(super) fn compatible(ty: &str) -> bool {
    COMPATIBLE_CHANGES.contains(&ty)
}

pub(super) fn all_compatible(diffs: &[Diff]) -> bool {
    diffs.iter().all(|d| compatible(d.ty))
}

impl Diff {
    /// Confluent's `Difference.toString()` (its closing quote a `'`, as Confluent prints it).
    pub(super) fn describe(&self, first: &str, second: &str) -> String {
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

fn path_string(path: &[String]) -> String {
    format!("#/{}", path.join("/"))
}

pub(super) fn add(out: &mut Vec<Diff>, path: &[String], ty: &'static str) {
    out.push(Diff {
        ty,
        path: path_string(path),
    });
}

pub(super) fn add_at(out: &mut Vec<Diff>, path: &[String], attribute: &str, ty: &'static str) {
    let mut path = path.to_vec();
    path.push(attribute.to_owned());
    add(out, &path, ty);
}

/// The `&'static str` of a `{prefix}_{change}` difference type.
pub(super) fn difference_type(prefix: &str, change: &str) -> &'static str {
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
