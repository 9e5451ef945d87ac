//! Protobuf: values written as JSON (the proto3 JSON mapping, as prost-reflect reads and
//! writes it) and encoded as one message of the schema's file, after Confluent's message-index
//! prefix that names which message: a zigzag varint count, then that many zigzag varint
//! indexes (the message's position among the file's messages, then among each enclosing
//! message's nested messages), with the common path `[0]` written as the single byte 0.
//!
//! The schema is compiled with protox, its imports found among the references (by the
//! reference's name), the files Confluent bundles (`confluent/meta.proto`, `google/type/*`)
//! and Google's well-known files.

use prost_reflect::prost::Message as _;
use prost_reflect::{DynamicMessage, FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::Value as Json;

use crate::bundled_protos::bundled_proto_file;
use crate::error::{Result, SerdeError};

/// The name the schema itself is compiled under, unless a reference already has it.
const MAIN_FILE: &str = "schema.proto";

pub struct ProtobufCodec {
    file: FileDescriptor,
    /// The message values are encoded as (the file's first, unless chosen), and its index path.
    message: Option<(MessageDescriptor, Vec<i32>)>,
}

impl ProtobufCodec {
    /// `references`: (import name, schema text) of every file the schema imports, directly or
    /// through other references.
    pub fn new(text: &str, references: &[(String, String)]) -> Result<ProtobufCodec> {
        let main_name = if references.iter().any(|(name, _)| name == MAIN_FILE) {
            "__strom_schema__.proto"
        } else {
            MAIN_FILE
        };
        let mut files = Vec::with_capacity(references.len() + 1);
        files.push((main_name.to_owned(), text.to_owned()));
        files.extend(references.iter().cloned());
        let mut chain = ChainFileResolver::new();
        chain.add(Sources { files });
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler
            .open_file(main_name)
            .map_err(|e| SerdeError::Schema(format!("invalid Protobuf schema: {e}")))?;
        let file = compiler
            .descriptor_pool()
            .get_file_by_name(main_name)
            .ok_or_else(|| SerdeError::Schema("the Protobuf schema did not compile".into()))?;
        let message = file.messages().next().map(|m| (m, vec![0]));
        Ok(ProtobufCodec { file, message })
    }

    /// The same schema, encoding values as the message of this full name (`pkg.Outer.Inner`),
    /// which must be declared in the schema's own file.
    pub fn with_message(&self, full_name: &str) -> Result<ProtobufCodec> {
        let message = self
            .file
            .parent_pool()
            .get_message_by_name(full_name)
            .filter(|m| m.parent_file() == self.file)
            .ok_or_else(|| {
                SerdeError::Schema(format!("the schema declares no message {full_name}"))
            })?;
        let indexes = index_path(&message)?;
        Ok(ProtobufCodec {
            file: self.file.clone(),
            message: Some((message, indexes)),
        })
    }

    /// The full name of the message values are encoded as.
    pub fn message_name(&self) -> Option<&str> {
        self.message.as_ref().map(|(m, _)| m.full_name())
    }

    /// The file's first message, or else its first enum, by full name (what Confluent's
    /// record name strategies use).
    pub fn record_name(&self) -> Option<String> {
        self.file
            .messages()
            .next()
            .map(|m| m.full_name().to_owned())
            .or_else(|| self.file.enums().next().map(|e| e.full_name().to_owned()))
    }

    pub fn encode(&self, value: &Json) -> Result<Vec<u8>> {
        let (descriptor, indexes) = self
            .message
            .as_ref()
            .ok_or_else(|| SerdeError::Schema("the Protobuf schema has no message".into()))?;
        let message = DynamicMessage::deserialize(descriptor.clone(), value).map_err(|e| {
            SerdeError::Value(format!(
                "the value does not fit message {}: {e}",
                descriptor.full_name()
            ))
        })?;
        let mut out = Vec::with_capacity(message.encoded_len() + indexes.len() + 1);
        write_message_indexes(indexes, &mut out);
        message
            .encode(&mut out)
            .map_err(|e| SerdeError::Value(format!("encoding {}: {e}", descriptor.full_name())))?;
        Ok(out)
    }

    pub fn decode(&self, payload: &[u8]) -> Result<Json> {
        let mut input = payload;
        let indexes = read_message_indexes(&mut input)?;
        let descriptor = self.message_at(&indexes)?;
        let message = DynamicMessage::decode(descriptor.clone(), input).map_err(|e| {
            SerdeError::Payload(format!("not a {} message: {e}", descriptor.full_name()))
        })?;
        serde_json::to_value(&message)
            .map_err(|e| SerdeError::Payload(format!("{} as JSON: {e}", descriptor.full_name())))
    }

    /// The message an index path names.
    fn message_at(&self, indexes: &[i32]) -> Result<MessageDescriptor> {
        let unknown = || {
            SerdeError::Payload(format!(
                "the message indexes {indexes:?} name no message of the schema"
            ))
        };
        let (first, rest) = indexes.split_first().ok_or_else(unknown)?;
        let nth = |index: i32, mut messages: Box<dyn Iterator<Item = MessageDescriptor> + '_>| {
            usize::try_from(index)
                .ok()
                .and_then(|i| messages.nth(i))
                .ok_or_else(unknown)
        };
        let mut message = nth(*first, Box::new(self.file.messages()))?;
        for index in rest {
            let parent = message;
            message = nth(*index, Box::new(nested_messages(&parent)))?;
        }
        Ok(message)
    }
}

/// The nested messages an index counts, in declaration order: not the entries protoc makes
/// for `map<K, V>` fields (Confluent's schema model has no such messages).
fn nested_messages(message: &MessageDescriptor) -> impl Iterator<Item = MessageDescriptor> + '_ {
    message.child_messages().filter(|m| !m.is_map_entry())
}

/// A message's index path within its file.
fn index_path(message: &MessageDescriptor) -> Result<Vec<i32>> {
    let position = |mut siblings: Box<dyn Iterator<Item = MessageDescriptor>>,
                    m: &MessageDescriptor| {
        siblings
            .position(|s| s == *m)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| SerdeError::Schema(format!("no index for message {}", m.full_name())))
    };
    let mut path = Vec::new();
    let mut current = message.clone();
    while let Some(parent) = current.parent_message() {
        let siblings: Vec<MessageDescriptor> = nested_messages(&parent).collect();
        path.push(position(Box::new(siblings.into_iter()), &current)?);
        current = parent;
    }
    let file = current.parent_file();
    let siblings: Vec<MessageDescriptor> = file.messages().collect();
    path.push(position(Box::new(siblings.into_iter()), &current)?);
    path.reverse();
    Ok(path)
}

/// Confluent's message-index prefix for `indexes`.
pub fn write_message_indexes(indexes: &[i32], out: &mut Vec<u8>) {
    if indexes == [0] {
        out.push(0);
        return;
    }
    write_varint(i32::try_from(indexes.len()).unwrap_or(i32::MAX), out);
    for &index in indexes {
        write_varint(index, out);
    }
}

/// Reads Confluent's message-index prefix from the front of `input`; a count of 0 means `[0]`.
pub fn read_message_indexes(input: &mut &[u8]) -> Result<Vec<i32>> {
    let count = read_varint(input)?;
    if count == 0 {
        return Ok(vec![0]);
    }
    // Every index takes at least a byte: a count beyond what is left is not believed.
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= input.len())
        .ok_or_else(|| {
            SerdeError::Payload(format!(
                "a message-index count of {count} with {} bytes left",
                input.len()
            ))
        })?;
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        let index = read_varint(input)?;
        if index < 0 {
            return Err(SerdeError::Payload(format!(
                "a negative message index {index}"
            )));
        }
        indexes.push(index);
    }
    Ok(indexes)
}

/// Kafka's signed varint: zigzag, then 7 bits a byte, low bits first.
fn write_varint(value: i32, out: &mut Vec<u8>) {
    let mut rest = ((value << 1) ^ (value >> 31)) as u32;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

fn read_varint(input: &mut &[u8]) -> Result<i32> {
    let mut raw: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or_else(|| {
            SerdeError::Payload("the message indexes end before their varint does".into())
        })?;
        *input = rest;
        raw |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
        }
    }
    Err(SerdeError::Payload(
        "a message-index varint longer than 5 bytes".into(),
    ))
}

/// Files by import name: the schema itself and its references, then the files Confluent bundles.
struct Sources {
    files: Vec<(String, String)>,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.iter().find(|(n, _)| n == name) {
            Some((_, text)) => File::from_source(name, text),
            None => match bundled_proto_file(name) {
                Some(text) => File::from_source(name, text),
                None => Err(protox::Error::file_not_found(name)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMON: &str = r#"syntax = "proto3";
package common;
message Money {
  string currency = 1;
  int64 units = 2;
}
"#;

    const ORDER: &str = r#"syntax = "proto3";
package shop;
import "common/money.proto";
import "google/protobuf/timestamp.proto";

message Order {
  message Line {
    message Note { string text = 1; }
    string sku = 1;
    uint32 qty = 2;
    Note note = 3;
  }
  enum Status { NEW = 0; PAID = 1; }
  int64 id = 1;
  repeated Line lines = 2;
  common.Money total = 3;
  Status status = 4;
  map<string, string> tags = 5;
  google.protobuf.Timestamp at = 6;
  oneof contact { string email = 7; string phone = 8; }
  message Gift { string to = 1; }
}

message Refund {
  int64 order_id = 1;
  double amount = 2;
}
"#;

    fn order() -> ProtobufCodec {
        ProtobufCodec::new(
            ORDER,
            &[("common/money.proto".to_owned(), COMMON.to_owned())],
        )
        .unwrap()
    }

    fn indexes_of(bytes: &[u8]) -> (Vec<i32>, usize) {
        let mut input = bytes;
        let indexes = read_message_indexes(&mut input).unwrap();
        (indexes, bytes.len() - input.len())
    }

    #[test]
    fn message_indexes_are_zigzag_varints_with_zero_for_the_first_message() {
        let encoded = |indexes: &[i32]| {
            let mut out = Vec::new();
            write_message_indexes(indexes, &mut out);
            out
        };
        assert_eq!(encoded(&[0]), [0]);
        assert_eq!(encoded(&[1]), [2, 2]);
        assert_eq!(encoded(&[0, 2]), [4, 0, 4]);
        assert_eq!(encoded(&[1, 0, 64]), [6, 2, 0, 0x80, 0x01]);
        for path in [vec![0], vec![1], vec![0, 2], vec![3, 0, 64], vec![i32::MAX]] {
            let bytes = encoded(&path);
            assert_eq!(indexes_of(&bytes), (path.clone(), bytes.len()));
        }
        // Empty means [0], as Confluent reads it; what follows is left alone.
        assert_eq!(indexes_of(&[0, 0x08, 0x01]), (vec![0], 1));
    }

    #[test]
    fn bad_message_indexes_are_errors() {
        let read = |bytes: &[u8]| {
            let mut input = bytes;
            read_message_indexes(&mut input)
        };
        assert!(read(&[]).is_err());
        // A count larger than the bytes left; a truncated varint; a negative index.
        assert!(read(&[0x7e]).is_err());
        assert!(read(&[0xfe, 0xff, 0xff, 0xff, 0x07]).is_err());
        assert!(read(&[2, 0x80]).is_err());
        assert!(read(&[2, 1]).is_err());
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn values_encode_as_the_first_message_and_round_trip() {
        let codec = order();
        assert_eq!(codec.message_name(), Some("shop.Order"));
        let value = json!({
            "id": "42",
            "lines": [{"sku": "a-1", "qty": 2, "note": {"text": "gift wrap"}}, {"sku": "b", "qty": 1}],
            "total": {"currency": "EUR", "units": "17"},
            "status": "PAID",
            "tags": {"k": "v"},
            "at": "2024-01-02T03:04:05Z",
            "email": "a@b.c"
        });
        let bytes = codec.encode(&value).unwrap();
        assert_eq!(&bytes[..3], &[0, 0x08, 42]);
        assert_eq!(codec.decode(&bytes).unwrap(), value);
        // Field names as written in the .proto are accepted too; defaults are not printed.
        let bytes = codec
            .encode(&json!({"id": 0, "lines": [], "status": "NEW"}))
            .unwrap();
        assert_eq!(bytes, [0]);
        assert_eq!(codec.decode(&bytes).unwrap(), json!({}));
    }

    #[test]
    fn nested_and_later_messages_carry_their_index_paths() {
        let codec = order();
        let refund = codec.with_message("shop.Refund").unwrap();
        let bytes = refund
            .encode(&json!({"orderId": "7", "amount": 1.5}))
            .unwrap();
        assert_eq!(&bytes[..3], &[2, 2, 0x08]);
        assert_eq!(
            codec.decode(&bytes).unwrap(),
            json!({"orderId": "7", "amount": 1.5})
        );
        // Order.Line.Note is [0, 0, 0]; Order.Gift is [0, 1]: the map entry of `tags` is not
        // counted among Order's nested messages.
        let note = codec.with_message("shop.Order.Line.Note").unwrap();
        let bytes = note.encode(&json!({"text": "hi"})).unwrap();
        assert_eq!(&bytes[..4], &[6, 0, 0, 0]);
        assert_eq!(codec.decode(&bytes).unwrap(), json!({"text": "hi"}));
        let gift = codec.with_message("shop.Order.Gift").unwrap();
        let bytes = gift.encode(&json!({"to": "x"})).unwrap();
        assert_eq!(&bytes[..3], &[4, 0, 2]);
        assert_eq!(codec.decode(&bytes).unwrap(), json!({"to": "x"}));
        assert!(codec.with_message("common.Money").is_err());
        assert!(codec.with_message("shop.Nope").is_err());
    }

    #[test]
    fn bad_values_payloads_and_schemas_are_errors() {
        let codec = order();
        for value in [
            json!({"nope": 1}),
            json!({"id": "x"}),
            json!([1]),
            json!({"status": "LOST"}),
        ] {
            let err = codec.encode(&value).unwrap_err();
            assert!(matches!(err, SerdeError::Value(_)), "{err}");
            assert!(
                err.to_string()
                    .starts_with("the value does not fit message shop.Order: "),
                "{err}"
            );
        }
        // An index path naming no message; bytes that are not the message.
        for payload in [
            &[2, 6, 0x08][..],
            &[4, 0, 8],
            &[0, 0x0a, 0x05, 1],
            &[0, 0xff],
            &[],
        ] {
            let err = codec.decode(payload).unwrap_err();
            assert!(matches!(err, SerdeError::Payload(_)), "{payload:?}: {err}");
        }
        // A missing import; not Protobuf at all.
        assert!(ProtobufCodec::new(ORDER, &[]).is_err());
        assert!(ProtobufCodec::new("message {", &[]).is_err());
        // A file without messages can decode nothing and encode nothing.
        let enums = ProtobufCodec::new("syntax = \"proto3\"; enum E { A = 0; }", &[]).unwrap();
        assert!(enums.encode(&json!({})).is_err());
        assert!(enums.decode(&[0]).is_err());
    }

    #[test]
    fn the_files_confluent_bundles_are_imported_without_references() {
        let schema = r#"syntax = "proto3";
package pay;
import "confluent/meta.proto";
import "confluent/type/decimal.proto";
import "google/type/date.proto";
import "google/type/money.proto";
import "google/type/dayofweek.proto";

message Payment {
  option (confluent.message_meta).doc = "a payment";
  google.type.Money amount = 1 [(confluent.field_meta).params = { key: "unit", value: "cents" }];
  google.type.Date on = 2;
  confluent.type.Decimal fee = 3;
  google.type.DayOfWeek weekday = 4;
}
"#;
        let codec = ProtobufCodec::new(schema, &[]).unwrap();
        assert_eq!(codec.message_name(), Some("pay.Payment"));
        let value = json!({
            "amount": {"currencyCode": "EUR", "units": "12", "nanos": 500000000},
            "on": {"year": 2026, "month": 11, "day": 30},
            "fee": {"value": "AQI=", "precision": 4, "scale": 2},
            "weekday": "MONDAY"
        });
        let bytes = codec.encode(&value).unwrap();
        // Index [0], then field 1 (Money) as a length-delimited message starting with "EUR".
        assert_eq!(&bytes[..5], &[0, 0x0a, 0x0d, 0x0a, 0x03]);
        assert_eq!(&bytes[5..8], b"EUR");
        assert_eq!(codec.decode(&bytes).unwrap(), value);
        // A reference of the same name still wins over the bundled text.
        let own_date = "syntax = \"proto3\"; package google.type; message Date { string iso = 1; }";
        let codec = ProtobufCodec::new(
            "syntax = \"proto3\"; import \"google/type/date.proto\"; message M { google.type.Date d = 1; }",
            &[("google/type/date.proto".to_owned(), own_date.to_owned())],
        )
        .unwrap();
        let value = json!({"d": {"iso": "2026-11-30"}});
        assert_eq!(codec.decode(&codec.encode(&value).unwrap()).unwrap(), value);
        // An import neither referenced nor bundled still fails.
        assert!(ProtobufCodec::new(
            "syntax = \"proto3\"; import \"google/type/color.proto\";",
            &[]
        )
        .is_err());
    }
}
