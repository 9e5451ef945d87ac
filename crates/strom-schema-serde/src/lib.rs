//! Confluent's wire format for keys and values typed by a schema registry: the frame (magic
//! byte and schema id), Avro, JSON Schema and Protobuf codecs between JSON values and
//! payloads, a small client for the registry's REST API and a cache of writer schemas by id.
//! Used by the CLI (`strom produce/consume --schema-registry`) and the REST proxy.

mod avro;
mod bundled_protos;
mod cache;
mod codec;
mod error;
mod framing;
mod json;
mod protobuf;
mod registry_client;

pub use avro::AvroCodec;
pub use bundled_protos::{bundled_proto_file, BUNDLED_PROTO_FILES};
pub use cache::SchemaCache;
pub use codec::{Codec, Decoded, SchemaKind};
pub use error::{Result, SerdeError};
pub use framing::{frame, unframe, MAGIC_BYTE};
pub use json::JsonCodec;
pub use protobuf::{read_message_indexes, write_message_indexes, ProtobufCodec};
pub use registry_client::{segment, RegistryClient};
