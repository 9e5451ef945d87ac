//! Client quotas as Kafka's ClientQuotaControlManager changes them (AlterClientQuotas)
//! and as its ClientQuotasImage describes them (DescribeClientQuotas).

use std::collections::{BTreeMap, BTreeSet};

use strom_security::quota::{check_quota_value, QuotaConfigs, QuotaEntity};

use crate::records::QuotaValue;
use crate::{MetadataImage, MetadataRecord};

/// Kafka's bound on the records of one request (MAX_RECORDS_PER_USER_OP).
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// An entity as a request names it: (type, name) pairs, a null name for the default.
pub type WireEntity = Vec<(String, Option<String>)>;

/// The record that sets (`Some`) or removes (`None`) one key of `entity`.
pub fn quota_record(entity: &QuotaEntity, key: &str, value: Option<f64>) -> MetadataRecord {
    let entity: WireEntity = entity
        .components()
        .into_iter()
        .map(|(kind, name)| (kind.to_string(), name.map(str::to_string)))
        .collect();
    match value {
        Some(value) => MetadataRecord::ClientQuota {
            entity,
            key: key.to_string(),
            value: QuotaValue(value),
        },
        None => MetadataRecord::RemoveClientQuota {
            entity,
            key: key.to_string(),
        },
    }
}

pub fn entity_of_record(entity: &WireEntity) -> Option<QuotaEntity> {
    QuotaEntity::from_components(entity.iter().map(|(k, n)| (k.as_str(), n.as_deref()))).ok()
}

/// An entity named in AlterClientQuotas and its outcome.
pub type AlterOutcome = (WireEntity, Result<(), String>);

/// One entity's alteration: each key set to a value, or removed (`None`).
#[derive(Clone, Debug)]
pub struct QuotaAlteration {
    pub entity: WireEntity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// AlterClientQuotas: the records, and for each entity named (in the order first named)
/// its outcome, an INVALID_REQUEST message when refused. As in Kafka, an entity named
/// twice gets the second naming's refusal while the first's changes are kept, and a
/// request that would write more than MAX_RECORDS_PER_REQUEST records is refused whole.
pub fn alter_client_quotas(
    image: &MetadataImage,
    alterations: &[QuotaAlteration],
) -> Result<(Vec<MetadataRecord>, Vec<AlterOutcome>), String> {
    let mut records = Vec::new();
    let mut outcomes: Vec<AlterOutcome> = Vec::new();
    let mut seen: BTreeMap<BTreeSet<(String, Option<String>)>, usize> = BTreeMap::new();
    for alteration in alterations {
        let key: BTreeSet<_> = alteration.entity.iter().cloned().collect();
        let described = describe_entity(&alteration.entity);
        let mut outcome = alter_one(image.client_quotas(), alteration, &mut records);
        if let Err(duplicate_key) = &outcome {
            if duplicate_key.starts_with("Duplicate quota key") {
                // Kafka's check for a repeated entity sees the refusal just recorded.
                outcome = Err(format!("Ignoring duplicate entity {described}"));
            }
        }
        match seen.get(&key) {
            Some(&at) => {
                outcomes[at].1 = Err(format!("Ignoring duplicate entity {described}"));
            }
            None => {
                seen.insert(key, outcomes.len());
                outcomes.push((alteration.entity.clone(), outcome));
            }
        }
        if records.len() > MAX_RECORDS_PER_REQUEST {
            return Err(format!(
                "Cannot alter more than {MAX_RECORDS_PER_REQUEST} client quotas in a single request."
            ));
        }
    }
    Ok((records, outcomes))
}

fn describe_entity(entity: &WireEntity) -> String {
    let parts: Vec<String> = entity
        .iter()
        .map(|(kind, name)| format!("{kind}={}", name.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", parts.join(", "))
}

fn alter_one(
    current: &QuotaConfigs,
    alteration: &QuotaAlteration,
    records: &mut Vec<MetadataRecord>,
) -> Result<(), String> {
    let mut ops: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (key, value) in &alteration.ops {
        if ops.insert(key, *value).is_some() {
            return Err(format!(
                "Duplicate quota key {key} not updating quota for this entity {}",
                describe_entity(&alteration.entity)
            ));
        }
    }
    let entity = QuotaEntity::from_components(
        alteration
            .entity
            .iter()
            .map(|(k, n)| (k.as_str(), n.as_deref())),
    )?;
    let in_force = current.get(&entity);
    let mut changes = Vec::new();
    for (key, value) in ops {
        let old = in_force.and_then(|values| values.get(key)).copied();
        match value {
            None => {
                if old.is_some() {
                    changes.push(quota_record(&entity, key, None));
                }
            }
            Some(value) => {
                check_quota_value(&entity, key, value)?;
                if old.map(f64::to_bits) != Some(value.to_bits()) {
                    changes.push(quota_record(&entity, key, Some(value)));
                }
            }
        }
    }
    records.extend(changes);
    Ok(())
}

/// A DescribeClientQuotas filter component: entity type, match type (0 exact name,
/// 1 default, 2 any specified name) and the name to match.
#[derive(Clone, Debug)]
pub struct QuotaFilterComponent {
    pub entity_type: String,
    pub match_type: i8,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaFilterError {
    #[error("{0}")]
    Invalid(String),
    #[error("Unsupported entity type {0}")]
    UnsupportedEntityType(String),
}

/// An entity and its quota values.
pub type DescribedQuota = (QuotaEntity, BTreeMap<String, f64>);

/// DescribeClientQuotas over the quotas in force, as Kafka's ClientQuotasImage answers it.
pub fn describe_client_quotas(
    configs: &QuotaConfigs,
    components: &[QuotaFilterComponent],
    strict: bool,
) -> Result<Vec<DescribedQuota>, QuotaFilterError> {
    use strom_security::quota::{CLIENT_ID, IP, USER};
    let invalid = |m: String| QuotaFilterError::Invalid(m);
    let mut exact: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut any: BTreeSet<&str> = BTreeSet::new();
    for component in components {
        let kind = component.entity_type.as_str();
        if kind.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if exact.contains_key(kind) || any.contains(kind) {
            return Err(invalid(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        if ![IP, USER, CLIENT_ID].contains(&kind) {
            return Err(QuotaFilterError::UnsupportedEntityType(kind.into()));
        }
        match (component.match_type, component.name.as_deref()) {
            (0, None) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                ))
            }
            (0, Some(name)) => {
                exact.insert(kind, Some(name));
            }
            (1, None) => {
                exact.insert(kind, None);
            }
            (1, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .into(),
                ))
            }
            (2, None) => {
                any.insert(kind);
            }
            (2, Some(_)) => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                ))
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let names = |kind: &str| exact.contains_key(kind) || any.contains(kind);
    if names(IP) && (names(USER) || names(CLIENT_ID)) {
        return Err(invalid("Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into()));
    }
    let matches = |entity: &QuotaEntity| {
        let parts: BTreeMap<&str, Option<&str>> = entity.components().into_iter().collect();
        if strict && parts.len() != exact.len() + any.len() {
            return false;
        }
        exact
            .iter()
            .all(|(kind, name)| parts.get(kind) == Some(name))
            && any.iter().all(|kind| parts.contains_key(kind))
    };
    Ok(configs
        .iter()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, values)| (entity.clone(), values.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(parts: &[(&str, Option<&str>)]) -> WireEntity {
        parts
            .iter()
            .map(|(k, n)| (k.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn alter(
        image: &MetadataImage,
        entity: WireEntity,
        ops: &[(&str, Option<f64>)],
    ) -> (Vec<MetadataRecord>, Vec<AlterOutcome>) {
        alter_client_quotas(
            image,
            &[QuotaAlteration {
                entity,
                ops: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            }],
        )
        .unwrap()
    }

    #[test]
    fn quotas_are_set_changed_removed_and_kept_in_snapshots() {
        let alice = entity(&[("user", Some("alice"))]);
        let image = MetadataImage::default();
        let (records, outcomes) = alter(
            &image,
            alice.clone(),
            &[
                ("producer_byte_rate", Some(1024.0)),
                ("request_percentage", Some(50.0)),
            ],
        );
        assert_eq!(records.len(), 2);
        assert_eq!(outcomes[0].1, Ok(()));
        let image = image.apply(&records);
        // The same value again writes nothing.
        let (again, _) = alter(
            &image,
            alice.clone(),
            &[("producer_byte_rate", Some(1024.0))],
        );
        assert!(again.is_empty());
        let rebuilt = MetadataImage::default().apply(&image.to_records());
        assert_eq!(rebuilt.client_quotas(), image.client_quotas());
        let (removal, _) = alter(
            &image,
            alice.clone(),
            &[("producer_byte_rate", None), ("consumer_byte_rate", None)],
        );
        assert_eq!(removal.len(), 1);
        let image = image.apply(&removal);
        let found = describe_client_quotas(image.client_quotas(), &[], false).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.get("request_percentage"), Some(&50.0));
        assert_eq!(found[0].1.len(), 1);
    }

    #[test]
    fn refusals_carry_kafkas_messages() {
        let image = MetadataImage::default();
        let (records, outcomes) = alter(
            &image,
            entity(&[("user", Some("a"))]),
            &[("producer_byte_rate", Some(1.0)), ("bogus", Some(1.0))],
        );
        assert!(records.is_empty());
        assert_eq!(outcomes[0].1, Err("Invalid configuration key bogus".into()));
        let (_, outcomes) = alter(
            &image,
            entity(&[("user", Some("a"))]),
            &[
                ("producer_byte_rate", Some(1.0)),
                ("producer_byte_rate", Some(2.0)),
            ],
        );
        assert_eq!(
            outcomes[0].1,
            Err("Ignoring duplicate entity ClientQuotaEntity(entries={user=a})".into())
        );
        let (_, outcomes) = alter(&image, entity(&[]), &[("producer_byte_rate", Some(1.0))]);
        assert_eq!(
            outcomes[0].1,
            Err("Invalid empty client quota entity".into())
        );
    }

    #[test]
    fn describe_filters_as_kafka_does() {
        let mut configs = QuotaConfigs::default();
        configs.set(QuotaEntity::user(Some("alice")), "producer_byte_rate", 1.0);
        configs.set(QuotaEntity::user(None), "producer_byte_rate", 2.0);
        configs.set(
            QuotaEntity::user_and_client_id(Some("alice"), Some("app")),
            "producer_byte_rate",
            3.0,
        );
        configs.set(
            QuotaEntity::client_id(Some("app")),
            "producer_byte_rate",
            4.0,
        );
        let filter = |kind: &str, match_type: i8, name: Option<&str>| QuotaFilterComponent {
            entity_type: kind.into(),
            match_type,
            name: name.map(str::to_string),
        };
        let limits = |found: Vec<(QuotaEntity, BTreeMap<String, f64>)>| -> Vec<f64> {
            found.iter().map(|(_, v)| v["producer_byte_rate"]).collect()
        };
        let exact_alice = [filter("user", 0, Some("alice"))];
        assert_eq!(
            limits(describe_client_quotas(&configs, &exact_alice, false).unwrap()),
            vec![1.0, 3.0]
        );
        assert_eq!(
            limits(describe_client_quotas(&configs, &exact_alice, true).unwrap()),
            vec![1.0]
        );
        assert_eq!(
            limits(describe_client_quotas(&configs, &[filter("user", 1, None)], true).unwrap()),
            vec![2.0]
        );
        assert_eq!(
            limits(
                describe_client_quotas(&configs, &[filter("client-id", 2, None)], false).unwrap()
            ),
            vec![4.0, 3.0]
        );
        assert_eq!(
            describe_client_quotas(&configs, &[filter("group", 2, None)], false).unwrap_err(),
            QuotaFilterError::UnsupportedEntityType("group".into())
        );
        assert!(describe_client_quotas(&configs, &[filter("user", 0, None)], false).is_err());
    }
}
