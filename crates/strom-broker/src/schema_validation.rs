//! Broker-side schema id validation, as Confluent Server's `confluent.key.schema.validation`
//! and `confluent.value.schema.validation` topic configs: every non-null key (value) of a
//! produced batch must carry Confluent's wire format (magic byte 0, then a 4-byte schema id)
//! with an id registered under the topic's subject (`<topic>-key`, `<topic>-value`). The
//! payload itself is not decoded. Topics without these configs never reach this code.

use std::sync::Arc;

use strom_wire::record::{records_section, Records};

use crate::errors::{ProduceError, RecordFailure};

/// The schema registry's view the broker checks ids against (the registry this process
/// serves; the binary supplies it, since the broker does not depend on the registry).
pub trait SchemaIds: Send + Sync {
    /// Whether `id` is a live version's id under `subject`; `None` while the registry's
    /// state is not loaded.
    fn registered(&self, subject: &str, id: i32) -> Option<bool>;
}

pub type SharedSchemaIds = Arc<dyn SchemaIds>;

/// What a topic asks to be validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaValidation {
    pub key: bool,
    pub value: bool,
}

impl SchemaValidation {
    pub fn any(self) -> bool {
        self.key || self.value
    }
}

const MAGIC_BYTE: u8 = 0;
const PREFIX_BYTES: usize = 5;

/// The schema id a key or value carries in Confluent's wire format.
fn schema_id(bytes: &[u8]) -> Option<i32> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, ..] => Some(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Checks every record of a batch that passed the produce checks; a refused record is
/// named with its index, as Kafka reports record errors (INVALID_RECORD).
pub fn check_batch(
    batch: &[u8],
    record_count: i32,
    topic: &str,
    validation: SchemaValidation,
    ids: Option<&dyn SchemaIds>,
    inflate_limit: u64,
) -> Result<(), ProduceError> {
    let section = records_section(batch, inflate_limit)
        .map_err(|e| ProduceError::InvalidRecord(format!("schema validation: {e}")))?;
    let key_subject = format!("{topic}-key");
    let value_subject = format!("{topic}-value");
    let mut failures = Vec::new();
    for (index, record) in Records::new(&section, record_count).enumerate() {
        let record =
            record.map_err(|e| ProduceError::InvalidRecord(format!("schema validation: {e}")))?;
        let checks = [
            (validation.key, record.key(), "key", &key_subject),
            (validation.value, record.value(), "value", &value_subject),
        ];
        for (wanted, bytes, part, subject) in checks {
            // Null keys and values (tombstones) pass, as in Confluent Server.
            let (true, Some(bytes)) = (wanted, bytes) else {
                continue;
            };
            if let Some(message) = refusal(bytes, part, subject, ids) {
                failures.push(RecordFailure {
                    index: i32::try_from(index).unwrap_or(i32::MAX),
                    invalid_timestamp: false,
                    message,
                });
                break;
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ProduceError::RecordsRefused(failures))
    }
}

fn refusal(bytes: &[u8], part: &str, subject: &str, ids: Option<&dyn SchemaIds>) -> Option<String> {
    let Some(id) = schema_id(bytes) else {
        return Some(format!(
            "The record's {part} does not carry a schema id ({PREFIX_BYTES}-byte prefix with magic byte 0); topic configs require one registered under subject '{subject}'"
        ));
    };
    match ids.and_then(|ids| ids.registered(subject, id)) {
        Some(true) => None,
        Some(false) => Some(format!(
            "The record's {part} carries schema id {id}, which is not registered under subject '{subject}'"
        )),
        None => Some(format!(
            "The record's {part} cannot be validated: this broker's schema registry is not available (schema.registry.listeners)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Registered(&'static [(&'static str, i32)]);

    impl SchemaIds for Registered {
        fn registered(&self, subject: &str, id: i32) -> Option<bool> {
            Some(self.0.contains(&(subject, id)))
        }
    }

    /// A record's key and value (`None`: null).
    type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    fn batch(records: &[KeyValue<'_>]) -> Vec<u8> {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records in one batch while sequences follow the first.
                sequence: i as i32 - 1,
                timestamp: 0,
                key: key.map(Bytes::copy_from_slice),
                value: value.map(Bytes::copy_from_slice),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        // Compressed, so the check reads the records through the bounded inflater.
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::Lz4,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.to_vec()
    }

    fn framed(id: i32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(b"payload");
        bytes
    }

    fn refused_indexes(result: Result<(), ProduceError>) -> Vec<i32> {
        match result {
            Ok(()) => Vec::new(),
            Err(ProduceError::RecordsRefused(failures)) => {
                failures.iter().map(|f| f.index).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn values_need_an_id_registered_under_the_topics_subject() {
        let ids = Registered(&[("orders-value", 7), ("orders-key", 3)]);
        let good = framed(7);
        let other_subjects_id = framed(3);
        let records = batch(&[
            (None, Some(&good)),
            (None, Some(b"plain text")),
            (None, Some(&other_subjects_id)),
            (None, None),
            (None, Some(&good[..4])),
        ]);
        let only_values = SchemaValidation {
            key: false,
            value: true,
        };
        let result = check_batch(&records, 5, "orders", only_values, Some(&ids), 1 << 20);
        assert_eq!(refused_indexes(result), vec![1, 2, 4]);
    }

    #[test]
    fn keys_are_checked_only_when_asked() {
        let ids = Registered(&[("t-key", 1), ("t-value", 2)]);
        let (key, value) = (framed(1), framed(2));
        let records = batch(&[(Some(b"raw key"), Some(&value)), (Some(&key), Some(&value))]);
        let values = SchemaValidation {
            key: false,
            value: true,
        };
        assert_eq!(
            refused_indexes(check_batch(&records, 2, "t", values, Some(&ids), 1 << 20)),
            Vec::<i32>::new()
        );
        let both = SchemaValidation {
            key: true,
            value: true,
        };
        assert_eq!(
            refused_indexes(check_batch(&records, 2, "t", both, Some(&ids), 1 << 20)),
            vec![0]
        );
    }

    #[test]
    fn without_a_registry_framed_records_are_refused() {
        let value = framed(1);
        let records = batch(&[(None, Some(&value))]);
        let values = SchemaValidation {
            key: false,
            value: true,
        };
        assert_eq!(
            refused_indexes(check_batch(&records, 1, "t", values, None, 1 << 20)),
            vec![0]
        );
    }
}
