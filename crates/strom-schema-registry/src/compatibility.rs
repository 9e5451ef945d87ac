//! The seven compatibility levels and which earlier schemas each compares a new one with.

use crate::error::RegistryError;
use crate::schema::{ParsedSchema, DIFFERENT_SCHEMA_TYPE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    /// The registry's level when none is configured, as Confluent's default.
    pub const DEFAULT: CompatibilityLevel = CompatibilityLevel::Backward;

    pub fn name(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Case-insensitive, as Confluent accepts `backward` as well as `BACKWARD`.
    pub fn from_name(name: &str) -> Result<CompatibilityLevel, RegistryError> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "NONE" => CompatibilityLevel::None,
            "BACKWARD" => CompatibilityLevel::Backward,
            "BACKWARD_TRANSITIVE" => CompatibilityLevel::BackwardTransitive,
            "FORWARD" => CompatibilityLevel::Forward,
            "FORWARD_TRANSITIVE" => CompatibilityLevel::ForwardTransitive,
            "FULL" => CompatibilityLevel::Full,
            "FULL_TRANSITIVE" => CompatibilityLevel::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel),
        })
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    /// New readers must read old data.
    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Old readers must read new data.
    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    /// Why `new` may not follow `previous` (oldest first): empty when it may. A
    /// non-transitive level compares with the latest only; a transitive one with each,
    /// newest first, up to the first that refuses. The messages are Confluent's: the
    /// checker's (for FULL the forward ones first), the old version and its schema, and the
    /// level; a schema of another type gets Confluent's one message and the level.
    pub fn check(self, new: &ParsedSchema, previous: &[Previous<'_>]) -> Vec<String> {
        if self == CompatibilityLevel::None {
            return Vec::new();
        }
        let compared = if self.transitive() {
            previous
        } else {
            previous.last().map(std::slice::from_ref).unwrap_or(&[])
        };
        for old in compared.iter().rev() {
            if new.schema_type() != old.schema.schema_type() {
                // Confluent's validator answers this before any check, without the old schema.
                return vec![
                    DIFFERENT_SCHEMA_TYPE.to_owned(),
                    format!(
                        "{{validateFields: 'false', compatibility: '{}'}}",
                        self.name()
                    ),
                ];
            }
            let mut errors = Vec::new();
            if new.schema_type() != old.schema.schema_type() {
                // Confluent compares nothing else, and names no old version.
                errors.push(DIFFERENT_SCHEMA_TYPE.to_owned());
            } else {
                // As Confluent's strategies: FULL checks forward first, and names the old
                // version and schema only after the backward messages.
                if self.forward() {
                    errors.extend(old.schema.read_errors(new, false));
                    if !self.backward() && !errors.is_empty() {
                        errors.push(format!("{{oldSchemaVersion: {}}}", old.version));
                        errors.push(format!("{{oldSchema: '{}'}}", old.text));
                    }
                }
                if self.backward() {
                    let backward = new.read_errors(&old.schema, true);
                    if !backward.is_empty() {
                        errors.extend(backward);
                        errors.push(format!("{{oldSchemaVersion: {}}}", old.version));
                        errors.push(format!("{{oldSchema: '{}'}}", old.text));
                    }
                }
            }
            if !errors.is_empty() {
                errors.push(format!(
                    "{{validateFields: 'false', compatibility: '{}'}}",
                    self.name()
                ));
                return errors;
            }
        }
        Vec::new()
    }
}

/// An earlier version a new schema is checked against.
pub struct Previous<'a> {
    pub version: i32,
    pub text: &'a str,
    pub schema: ParsedSchema,
}
