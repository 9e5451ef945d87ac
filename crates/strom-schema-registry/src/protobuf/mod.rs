//! Protobuf schemas: parsing (with the schemas referenced by their import names), the
//! canonical .proto text Confluent stores and serves, and Confluent's compatibility diff.
//!
//! Parsing and linking are protox's (the text must compile as protoc would compile it, its
//! imports found among the references or the well-known files). The printed text is our
//! own: Confluent stores its own rendering of the parsed file (Square Wire's element model),
//! so the module rebuilds that model from protox's unresolved descriptor: types as written,
//! `map<K, V>` instead of the synthetic entry messages, labels only where the source had one,
//! fields before oneofs, nested messages before nested enums, reserved statements as written.
//!
//! Compatibility follows Confluent's `SchemaDiff`: a diff from the original (older) schema to
//! the update (newer), each difference a type and a path such as `#/Message/3`, some types
//! compatible and the others reported as `{errorType:"...", description:"..."}`.

mod builder;
mod compatibility;
mod known;
mod model;
mod options;
mod printer;

use prost_types::FileDescriptorProto;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use builder::model_of;
use compatibility::diff;
use known::MapResolver;
use model::{ProtoFile, Types};
use printer::Printer;

/// A parsed Protobuf schema, with the schemas it references (by import name).
#[derive(Clone, Debug)]
pub struct ProtobufSchema {
    file: Box<ProtoFile>,
    dependencies: Vec<(String, ProtoFile)>,
    /// The compiled (linked) descriptor, for `format=serialized`.
    descriptor: Box<FileDescriptorProto>,
}

/// The name the schema itself is compiled under (an import of it would be a cycle).
const MAIN_FILE: &str = "schema.proto";

/// Parses `text`. `references` are `(import name, schema text)` pairs for every schema it
/// references, directly or through other references. The text must compile: every import
/// found among the references or the well-known files, every type resolved. The error is a
/// message for the REST response (error 42201).
pub fn parse(text: &str, references: &[(&str, &str)]) -> Result<ProtobufSchema, String> {
    parse_inner(text, references)
        .map_err(|detail| format!("Invalid schema of type PROTOBUF, details: {detail}"))
}

fn parse_inner(text: &str, references: &[(&str, &str)]) -> Result<ProtobufSchema, String> {
    let main_name = if references.iter().any(|(n, _)| *n == MAIN_FILE) {
        "__strom_schema__.proto"
    } else {
        MAIN_FILE
    };
    // A .proto text, or (as Confluent also accepts) a base64 FileDescriptorProto.
    let main = match File::from_source(main_name, text) {
        Ok(file) => file,
        Err(error) => {
            let descriptor = decode_descriptor(text).ok_or_else(|| error.to_string())?;
            File::from_file_descriptor_proto(FileDescriptorProto {
                name: Some(main_name.to_owned()),
                ..descriptor
            })
        }
    };
    let model = model_of(main.file_descriptor_proto());
    let files: Vec<(String, String)> = references
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    let mut chain = ChainFileResolver::new();
    chain.add(MainResolver {
        name: main_name.to_owned(),
        file: main.file_descriptor_proto().clone(),
    });
    chain.add(MapResolver { files });
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.open_file(main_name).map_err(|e| e.to_string())?;
    let descriptor = compiler
        .file_descriptor_set()
        .file
        .into_iter()
        .find(|f| f.name() == main_name)
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    for (name, reference) in references {
        if let Some(f) = File::from_source(name, reference)
            .ok()
            .or_else(|| decode_descriptor(reference).map(File::from_file_descriptor_proto))
        {
            dependencies.push(((*name).to_owned(), model_of(f.file_descriptor_proto())));
        }
    }
    Ok(ProtobufSchema {
        file: Box::new(model),
        dependencies,
        descriptor: Box::new(descriptor),
    })
}

fn decode_descriptor(text: &str) -> Option<FileDescriptorProto> {
    use base64::Engine;
    use protox::prost::Message as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// The schema itself, already parsed.
struct MainResolver {
    name: String,
    file: FileDescriptorProto,
}

impl FileResolver for MainResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == self.name {
            Ok(File::from_file_descriptor_proto(self.file.clone()))
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

impl ProtobufSchema {
    /// The text Confluent stores and returns: the parsed file printed back (syntax, package,
    /// imports, options, then messages before enums, each message's reserved statements,
    /// options, fields, oneofs, extensions and nested types in that order), two-space indents.
    pub fn canonical(&self) -> String {
        Printer {
            types: None,
            scope: Vec::new(),
        }
        .file(&self.file)
    }

    /// The text with Confluent's `normalize=true`: imports sorted, options sorted and their
    /// names qualified, fields and enum constants by number, oneofs by their first field,
    /// type names fully qualified with a leading dot, `proto2` syntax left out.
    pub fn normalized(&self) -> String {
        let types = Types::collect(self);
        Printer {
            types: Some(&types),
            scope: Vec::new(),
        }
        .file(&self.file)
    }

    /// The schema as a base64 `FileDescriptorProto` (Confluent's `format=serialized`, what
    /// confluent-kafka's Protobuf serializers read), named `default` like the clients name it.
    pub fn serialized(&self) -> String {
        use base64::Engine;
        use protox::prost::Message as _;
        let mut descriptor = (*self.descriptor).clone();
        descriptor.name = Some("default".to_owned());
        descriptor.source_code_info = None;
        base64::engine::general_purpose::STANDARD.encode(descriptor.encode_to_vec())
    }

    /// The message indexes' first-level names, in order (what a serializer's message index
    /// 0 names).
    pub fn message_names(&self) -> Vec<String> {
        self.file.messages.iter().map(|m| m.name.clone()).collect()
    }

    /// Why this schema (the update) cannot follow `writer` (the original), as Confluent's
    /// diff reports it: its incompatible differences, each `{errorType:"...",
    /// description:"..."}`, the description naming this side `reader_word` and the original
    /// `writer_word` ("new" and "old" in a BACKWARD check).
    pub fn compatibility_errors_as(
        &self,
        writer: &ProtobufSchema,
        reader_word: &str,
        writer_word: &str,
    ) -> Vec<String> {
        diff(writer, self)
            .into_iter()
            .filter(|d| !d.kind.compatible())
            .map(|d| d.describe(reader_word, writer_word))
            .collect()
    }

    /// Every difference from `original` to this schema, as `TYPE #/path` (tests).
    #[cfg(test)]
    fn differences_from(&self, original: &ProtobufSchema) -> Vec<String> {
        diff(original, self)
            .into_iter()
            .map(|d| format!("{:?} {}", d.kind, d.path))
            .collect()
    }
}

#[cfg(test)]
mod tests;
