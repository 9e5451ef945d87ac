//! strom's schema registry: Confluent's REST API over the compacted `_schemas` topic.
pub mod avro;
