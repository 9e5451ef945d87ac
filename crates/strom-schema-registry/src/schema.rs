//! The schema types a registry holds, behind one interface: parse (with the schemas
//! referenced), the text stored, and the reasons one schema cannot read another's data.

use crate::avro::{self, AvroSchema};
use crate::error::RegistryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaType {
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    /// Listed by `GET /schemas/types`, in Confluent's order.
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];

    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// `schemaType` as a request or a stored value gives it; absent means Avro.
    pub fn from_name(name: Option<&str>) -> Result<SchemaType, RegistryError> {
        // Case-sensitive, as Confluent matches the type's name.
        match name {
            None | Some("AVRO") | Some("") => Ok(SchemaType::Avro),
            Some("JSON") => Ok(SchemaType::Json),
            Some("PROTOBUF") => Ok(SchemaType::Protobuf),
            Some(_) => Err(RegistryError::InvalidSchema(format!(
                "Invalid schema type {}",
                name.unwrap_or_default()
            ))),
        }
    }

    /// The `schemaType` field of stored values and responses: left out for Avro.
    pub fn field(self) -> Option<String> {
        (self != SchemaType::Avro).then(|| self.name().to_owned())
    }
}

/// A schema parsed and checked, ready to be compared with others of its type.
pub enum ParsedSchema {
    Avro(AvroSchema),
}

impl ParsedSchema {
    /// `references` are the texts of the referenced schemas, dependencies first.
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[&str],
    ) -> Result<ParsedSchema, RegistryError> {
        match schema_type {
            SchemaType::Avro => avro::parse(text, references)
                .map(ParsedSchema::Avro)
                .map_err(RegistryError::InvalidSchema),
            SchemaType::Json | SchemaType::Protobuf => Err(RegistryError::InvalidSchema(format!(
                "schemas of type {} are not supported yet",
                schema_type.name()
            ))),
        }
    }

    pub fn canonical(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.canonical(),
        }
    }

    pub fn normalized(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.normalized(),
        }
    }

    /// Why a reader with this schema cannot read what `writer` wrote (empty: it can).
    /// `reader_is_new` names the sides in the messages as Confluent does: in a backward
    /// check the reader is the new schema, in a forward one the old.
    pub fn read_errors(&self, writer: &ParsedSchema, reader_is_new: bool) -> Vec<String> {
        let (reader_word, writer_word) = if reader_is_new {
            ("new", "old")
        } else {
            ("old", "new")
        };
        match (self, writer) {
            (ParsedSchema::Avro(reader), ParsedSchema::Avro(writer)) => {
                reader.compatibility_errors_as(writer, reader_word, writer_word)
            }
        }
    }
}
