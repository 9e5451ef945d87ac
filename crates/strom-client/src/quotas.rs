//! Client quota administration: DescribeClientQuotas and AlterClientQuotas
//! (entities made of `user` and `client-id` parts, or an `ip`; a `None`
//! name is the entity type's default).

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest,
    DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{check, Error, Result};

/// Entity types Kafka's client quotas use.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// A quota entity: (entity type, name) pairs; a `None` name is the
/// default entity of that type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity(pub Vec<(String, Option<String>)>);

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How a describe filter component matches an entity type's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    Exact(String),
    Default,
    /// Any name, default included.
    Any,
}

/// A change to one quota of an entity.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaOp {
    Set(String, f64),
    Remove(String),
}

/// Kafka's order of an entity's parts: user, then client id (then others).
fn sort_parts(parts: &mut [(String, Option<String>)]) {
    let rank = |kind: &str| match kind {
        USER => 0,
        CLIENT_ID => 1,
        _ => 2,
    };
    parts.sort_by(|a, b| (rank(&a.0), &a.0, &a.1).cmp(&(rank(&b.0), &b.0, &b.1)));
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Admin {
    /// The quotas of the entities that match every component (`strict`:
    /// entities with no other entity types).
    pub async fn describe_client_quotas(
        &mut self,
        components: &[(String, QuotaMatch)],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, Vec<(String, f64)>)>> {
        let request = DescribeClientQuotasRequest::default()
            .with_components(
                components
                    .iter()
                    .map(|(entity_type, m)| {
                        let (match_type, name) = match m {
                            QuotaMatch::Exact(name) => (0, Some(s(name))),
                            QuotaMatch::Default => (1, None),
                            QuotaMatch::Any => (2, None),
                        };
                        describe_client_quotas_request::ComponentData::default()
                            .with_entity_type(s(entity_type))
                            .with_match_type(match_type)
                            .with_match(name)
                    })
                    .collect(),
            )
            .with_strict(strict);
        let response = self.client().send_to_controller(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "describe client quotas",
        )?;
        let mut out: Vec<(QuotaEntity, Vec<(String, f64)>)> = response
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let mut entity: Vec<(String, Option<String>)> = entry
                    .entity
                    .iter()
                    .map(|e| {
                        (
                            e.entity_type.to_string(),
                            e.entity_name.as_ref().map(|n| n.to_string()),
                        )
                    })
                    .collect();
                sort_parts(&mut entity);
                let mut values: Vec<(String, f64)> = entry
                    .values
                    .iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect();
                values.sort_by(|a, b| a.0.cmp(&b.0));
                (QuotaEntity(entity), values)
            })
            .collect();
        out.sort_by_cached_key(|(entity, _)| entity.to_string());
        Ok(out)
    }

    /// Applies quota changes; one result per entity, in the order given.
    pub async fn alter_client_quotas(
        &mut self,
        entries: &[(QuotaEntity, Vec<QuotaOp>)],
        validate_only: bool,
    ) -> Result<Vec<(QuotaEntity, Result<()>)>> {
        let request = AlterClientQuotasRequest::default()
            .with_entries(
                entries
                    .iter()
                    .map(|(entity, ops)| {
                        alter_client_quotas_request::EntryData::default()
                            .with_entity(
                                entity
                                    .0
                                    .iter()
                                    .map(|(t, n)| {
                                        alter_client_quotas_request::EntityData::default()
                                            .with_entity_type(s(t))
                                            .with_entity_name(n.as_deref().map(s))
                                    })
                                    .collect(),
                            )
                            .with_ops(
                                ops.iter()
                                    .map(|op| {
                                        let op_data =
                                            alter_client_quotas_request::OpData::default();
                                        match op {
                                            QuotaOp::Set(key, value) => {
                                                op_data.with_key(s(key)).with_value(*value)
                                            }
                                            QuotaOp::Remove(key) => {
                                                op_data.with_key(s(key)).with_remove(true)
                                            }
                                        }
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_validate_only(validate_only);
        let response = self.client().send_to_controller(&request).await?;
        Ok(entries
            .iter()
            .map(|(entity, _)| {
                let answer = response.entries.iter().find(|e| {
                    let mut got: Vec<(String, Option<String>)> = e
                        .entity
                        .iter()
                        .map(|d| {
                            (
                                d.entity_type.to_string(),
                                d.entity_name.as_ref().map(|n| n.to_string()),
                            )
                        })
                        .collect();
                    got.sort();
                    let mut wanted = entity.0.clone();
                    wanted.sort();
                    got == wanted
                });
                let result = match answer {
                    Some(e) => check(
                        e.error_code,
                        e.error_message.as_deref(),
                        format!("quotas of {entity}"),
                    ),
                    None => Err(Error::Protocol(format!(
                        "AlterClientQuotas did not answer for {entity}"
                    ))),
                };
                (entity.clone(), result)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_print_defaults() {
        let e = QuotaEntity(vec![
            (USER.to_owned(), Some("alice".to_owned())),
            (CLIENT_ID.to_owned(), None),
        ]);
        assert_eq!(e.to_string(), "user=alice,client-id=<default>");
    }
}
