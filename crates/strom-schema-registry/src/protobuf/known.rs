//! Well-known dependencies: imports Confluent resolves without a reference.

use std::sync::OnceLock;

use protox::file::{File, FileResolver, GoogleFileResolver};

use strom_schema_serde::{bundled_proto_file, BUNDLED_PROTO_FILES};

use super::builder::model_of;
use super::model::ProtoFile;

const GOOGLE_PROTOBUF: &[&str] = &[
    "google/protobuf/any.proto",
    "google/protobuf/api.proto",
    "google/protobuf/descriptor.proto",
    "google/protobuf/duration.proto",
    "google/protobuf/empty.proto",
    "google/protobuf/field_mask.proto",
    "google/protobuf/source_context.proto",
    "google/protobuf/struct.proto",
    "google/protobuf/timestamp.proto",
    "google/protobuf/type.proto",
    "google/protobuf/wrappers.proto",
];

/// The well-known files' models, for the types a diff or a normalization resolves.
pub(super) fn known_dependencies() -> &'static [(String, ProtoFile)] {
    static KNOWN: OnceLock<Vec<(String, ProtoFile)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut out = Vec::new();
        let google = GoogleFileResolver::new();
        for name in GOOGLE_PROTOBUF {
            if let Ok(file) = google.open_file(name) {
                out.push((name.to_string(), model_of(file.file_descriptor_proto())));
            }
        }
        for (name, text) in BUNDLED_PROTO_FILES {
            if let Ok(file) = File::from_source(name, text) {
                out.push((name.to_string(), model_of(file.file_descriptor_proto())));
            }
        }
        out
    })
}

/// Files by import name: the references, then the well-known texts.
pub(super) struct MapResolver {
    pub(super) files: Vec<(String, String)>,
}

impl FileResolver for MapResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if let Some((_, text)) = self.files.iter().find(|(n, _)| n == name) {
            return File::from_source(name, text);
        }
        if let Some(text) = bundled_proto_file(name) {
            return File::from_source(name, text);
        }
        Err(protox::Error::file_not_found(name))
    }
}
