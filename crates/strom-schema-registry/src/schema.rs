//! The schema types a registry holds, behind one interface: parse (with the schemas
//! referenced), the text stored, and the reasons one schema cannot read another's data.

use crate::avro::{self, AvroSchema};
use crate::error::RegistryError;
use crate::json_schema::{self, JsonSchema};
use crate::protobuf::{self, ProtobufSchema};

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

/// Confluent's message when a schema is compared with one of another type.
pub const DIFFERENT_SCHEMA_TYPE: &str = "Incompatible because of different schema type";

/// A schema parsed and checked, ready to be compared with others of its type.
pub enum ParsedSchema {
    Avro(AvroSchema),
    Json(JsonSchema),
    Protobuf(ProtobufSchema),
}

impl ParsedSchema {
    /// `references` are the referenced schemas, dependencies first: `(name, text)`, the name
    /// being the one the referrer gives the reference (what a JSON schema's `$ref` uses).
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[(&str, &str)],
    ) -> Result<ParsedSchema, RegistryError> {
        match schema_type {
            SchemaType::Avro => {
                // Avro needs each schema once (a schema referenced twice, under two names,
                // would define its types twice).
                let mut texts: Vec<&str> = Vec::new();
                for (_, text) in references {
                    if !texts.contains(text) {
                        texts.push(text);
                    }
                }
                avro::parse(text, &texts)
                    .map(ParsedSchema::Avro)
                    .map_err(RegistryError::InvalidSchema)
            }
            SchemaType::Json => json_schema::parse(text, references)
                .map(ParsedSchema::Json)
                .map_err(RegistryError::InvalidSchema),
            SchemaType::Protobuf => protobuf::parse(text, references)
                .map(ParsedSchema::Protobuf)
                .map_err(RegistryError::InvalidSchema),
        }
    }

    pub fn canonical(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.canonical(),
            ParsedSchema::Json(s) => s.canonical(),
            ParsedSchema::Protobuf(s) => s.canonical(),
        }
    }

    pub fn normalized(&self) -> String {
        match self {
            ParsedSchema::Avro(s) => s.normalized(),
            ParsedSchema::Json(s) => s.normalized(),
            ParsedSchema::Protobuf(s) => s.normalized(),
        }
    }

    pub fn schema_type(&self) -> SchemaType {
        match self {
            ParsedSchema::Avro(_) => SchemaType::Avro,
            ParsedSchema::Json(_) => SchemaType::Json,
            ParsedSchema::Protobuf(_) => SchemaType::Protobuf,
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
            (ParsedSchema::Json(reader), ParsedSchema::Json(writer)) => {
                reader.compatibility_errors_as(writer, reader_word, writer_word)
            }
            (ParsedSchema::Protobuf(reader), ParsedSchema::Protobuf(writer)) => {
                reader.compatibility_errors_as(writer, reader_word, writer_word)
            }
            _ => vec![DIFFERENT_SCHEMA_TYPE.to_owned()],
        }
    }
}
