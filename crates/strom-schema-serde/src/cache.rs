//! Writer schemas from the registry, compiled once and cached by id.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::codec::{Codec, SchemaKind};
use crate::error::{Result, ResultExt, SerdeError};
use crate::registry_client::{segment, RegistryClient};

pub struct SchemaCache {
    client: RegistryClient,
    by_id: HashMap<u32, Arc<Codec>>,
}

impl SchemaCache {
    pub fn new(client: RegistryClient) -> Self {
        Self {
            client,
            by_id: HashMap::new(),
        }
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The writer schema with this id.
    pub async fn by_id(&mut self, id: u32) -> Result<Arc<Codec>> {
        if let Some(codec) = self.by_id.get(&id) {
            return Ok(codec.clone());
        }
        let record = self
            .client
            .get(&format!("/schemas/ids/{id}"))
            .await
            .with_context(|| format!("fetching schema {id}"))?;
        let codec = Arc::new(
            self.codec(&record)
                .await
                .with_context(|| format!("schema {id}"))?,
        );
        self.by_id.insert(id, codec.clone());
        Ok(codec)
    }

    /// The subject's latest version: its id and schema.
    pub async fn latest(&mut self, subject: &str) -> Result<(u32, Arc<Codec>)> {
        let record = self
            .client
            .get(&format!("/subjects/{}/versions/latest", segment(subject)))
            .await
            .with_context(|| format!("fetching the latest schema of subject {subject}"))?;
        let id = id_of(&record)?;
        let codec = self
            .cached_or_built(id, &record)
            .await
            .with_context(|| format!("subject {subject}'s schema {id}"))?;
        Ok((id, codec))
    }

    /// Registers the schema under the subject (or finds it there, registered before), as
    /// Confluent's serializers and REST proxy do: its id and codec. `references` are the
    /// registry's reference objects (`{"name", "subject", "version"}`).
    pub async fn register(
        &mut self,
        subject: &str,
        kind: SchemaKind,
        schema_text: &str,
        references: &[Json],
    ) -> Result<(u32, Arc<Codec>)> {
        let mut record = json!({ "schema": schema_text });
        if kind != SchemaKind::Avro {
            record["schemaType"] = json!(kind.name());
        }
        if !references.is_empty() {
            record["references"] = Json::Array(references.to_vec());
        }
        let answer = self
            .client
            .post(&format!("/subjects/{}/versions", segment(subject)), &record)
            .await
            .with_context(|| format!("registering a schema under subject {subject}"))?;
        let id = id_of(&answer)?;
        let codec = self
            .cached_or_built(id, &record)
            .await
            .with_context(|| format!("subject {subject}'s schema {id}"))?;
        Ok((id, codec))
    }

    async fn cached_or_built(&mut self, id: u32, record: &Json) -> Result<Arc<Codec>> {
        if let Some(codec) = self.by_id.get(&id) {
            return Ok(codec.clone());
        }
        let codec = Arc::new(self.codec(record).await?);
        self.by_id.insert(id, codec.clone());
        Ok(codec)
    }

    /// A record with `schema`, `schemaType` and `references` as a codec.
    async fn codec(&self, record: &Json) -> Result<Codec> {
        let kind = SchemaKind::from_field(record.get("schemaType"))?;
        let text = record.get("schema").and_then(Json::as_str).ok_or_else(|| {
            SerdeError::Schema(format!("the registry's answer has no schema: {record}"))
        })?;
        let mut references = Vec::new();
        let mut seen = Vec::new();
        self.references(record, &mut references, &mut seen).await?;
        Codec::new(kind, text, &references)
    }

    /// The schemas `record` references, transitively, dependencies first, as (name, text).
    async fn references(
        &self,
        record: &Json,
        out: &mut Vec<(String, String)>,
        seen: &mut Vec<(String, i64)>,
    ) -> Result<()> {
        let Some(references) = record.get("references").and_then(Json::as_array) else {
            return Ok(());
        };
        for reference in references {
            let name = reference.get("name").and_then(Json::as_str).unwrap_or("");
            let subject = reference
                .get("subject")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    SerdeError::Schema(format!("a reference without a subject: {reference}"))
                })?;
            let version = reference
                .get("version")
                .and_then(Json::as_i64)
                .ok_or_else(|| {
                    SerdeError::Schema(format!("a reference without a version: {reference}"))
                })?;
            let key = (subject.to_owned(), version);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let referenced = self
                .client
                .get(&format!(
                    "/subjects/{}/versions/{version}",
                    segment(subject)
                ))
                .await
                .with_context(|| format!("fetching the reference {subject} version {version}"))?;
            Box::pin(self.references(&referenced, out, seen)).await?;
            let text = referenced
                .get("schema")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    SerdeError::Schema(format!(
                        "the reference {subject} version {version} has no schema"
                    ))
                })?;
            out.push((name.to_owned(), text.to_owned()));
        }
        Ok(())
    }
}

fn id_of(record: &Json) -> Result<u32> {
    record
        .get("id")
        .and_then(Json::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| SerdeError::Schema(format!("the registry's answer has no id: {record}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_can_run_in_spawned_tasks() {
        fn sendable<T: Send>(_: &T) {}
        let mut cache = SchemaCache::new(RegistryClient::new("http://127.0.0.1:9", None).unwrap());
        sendable(&cache.by_id(1));
        sendable(&cache.latest("s"));
        sendable(&cache.register("s", SchemaKind::Protobuf, "", &[]));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_an_error_with_the_url() {
        let mut cache = SchemaCache::new(RegistryClient::new("http://127.0.0.1:9", None).unwrap());
        let err = cache.by_id(1).await.err().unwrap();
        assert!(
            err.to_string().starts_with("fetching schema 1: schema registry at http://127.0.0.1:9: connecting to 127.0.0.1:9: "),
            "{err}"
        );
        assert!(matches!(err.root(), SerdeError::Transport { .. }));
    }
}
