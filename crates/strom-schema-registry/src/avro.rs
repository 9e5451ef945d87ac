//! Avro schemas: parsing (with referenced named types), the canonical text Confluent
//! stores and serves, and reader/writer compatibility.
