//! ACLs as Kafka's AclControlManager changes them: CreateAcls adds a record for each
//! binding not already in force (asking twice is a success that writes nothing), and
//! DeleteAcls removes every binding a filter matches, reporting what it removed.

use std::collections::BTreeSet;

use strom_security::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};

use crate::{MetadataImage, MetadataRecord};

/// Kafka's MAX_RECORDS_PER_USER_OP: the most records one request may write.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// The records a request writes and each item's outcome (an error is INVALID_REQUEST's
/// message); the whole request is refused when it would write too many records.
pub type AclChange<T> = Result<(Vec<MetadataRecord>, Vec<Result<T, String>>), String>;

/// The record that keeps `acl` under `id`.
pub fn entry_record(id: uuid::Uuid, acl: &AclBinding) -> MetadataRecord {
    MetadataRecord::AccessControlEntry {
        id,
        resource_type: acl.resource_type as i8,
        resource_name: acl.resource_name.clone(),
        pattern_type: acl.pattern_type as i8,
        principal: acl.principal.clone(),
        host: acl.host.clone(),
        operation: acl.operation as i8,
        permission_type: acl.permission as i8,
    }
}

/// The binding an AccessControlEntry record keeps (None for another record, or
/// one with a code this version does not know).
pub fn binding_of_record(record: &MetadataRecord) -> Option<AclBinding> {
    let MetadataRecord::AccessControlEntry {
        resource_type,
        resource_name,
        pattern_type,
        principal,
        host,
        operation,
        permission_type,
        ..
    } = record
    else {
        return None;
    };
    Some(AclBinding {
        resource_type: ResourceType::from_code(*resource_type)?,
        resource_name: resource_name.clone(),
        pattern_type: PatternType::from_code(*pattern_type)?,
        principal: principal.clone(),
        host: host.clone(),
        operation: Operation::from_code(*operation)?,
        permission: Permission::from_code(*permission_type)?,
    })
}

/// CreateAcls: for each creation (already checked into a binding, or refused with
/// INVALID_REQUEST's message), the records to write and the outcome. `new_id` gives
/// fresh ids; one already in use is asked again.
pub fn create_acls(
    image: &MetadataImage,
    creations: Vec<Result<AclBinding, String>>,
    mut new_id: impl FnMut() -> uuid::Uuid,
) -> AclChange<()> {
    let in_force = image.acls();
    let mut added: BTreeSet<AclBinding> = BTreeSet::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(creations.len());
    for creation in creations {
        match creation {
            Ok(acl) => {
                if !in_force.contains(&acl) && added.insert(acl.clone()) {
                    let id = loop {
                        let id = new_id();
                        if in_force.iter().all(|(used, _)| used != id.as_u128()) {
                            break id;
                        }
                    };
                    records.push(entry_record(id, &acl));
                    if records.len() > MAX_RECORDS_PER_REQUEST {
                        return Err(format!(
                            "Cannot create more than {MAX_RECORDS_PER_REQUEST} acls in a single create operation."
                        ));
                    }
                }
                outcomes.push(Ok(()));
            }
            Err(message) => outcomes.push(Err(message)),
        }
    }
    Ok((records, outcomes))
}

/// DeleteAcls: for each filter (or its refusal), the bindings it removes. A binding
/// matched by several filters is removed once and reported under each.
pub fn delete_acls(
    image: &MetadataImage,
    filters: &[Result<AclFilter, String>],
) -> AclChange<Vec<AclBinding>> {
    let mut removed: BTreeSet<uuid::Uuid> = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(filters.len());
    for filter in filters {
        match filter {
            Ok(filter) => {
                let mut matched = Vec::new();
                for (id, acl) in image.acls().iter() {
                    if filter.matches(acl) {
                        matched.push(acl.clone());
                        removed.insert(uuid::Uuid::from_u128(id));
                        if removed.len() > MAX_RECORDS_PER_REQUEST {
                            return Err(format!(
                                "Cannot remove more than {MAX_RECORDS_PER_REQUEST} acls in a single delete operation."
                            ));
                        }
                    }
                }
                outcomes.push(Ok(matched));
            }
            Err(message) => outcomes.push(Err(message.clone())),
        }
    }
    let records = removed
        .into_iter()
        .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
        .collect();
    Ok((records, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_security::acl::{PatternFilter, WILDCARD};

    fn binding(name: &str, pattern_type: PatternType, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    fn ids() -> impl FnMut() -> uuid::Uuid {
        let mut next = 0u128;
        move || {
            next += 1;
            uuid::Uuid::from_u128(next)
        }
    }

    #[test]
    fn creating_twice_writes_once_and_deleting_reports_each_match() {
        let image = MetadataImage::default();
        let a = binding("a", PatternType::Literal, "User:alice");
        let p = binding("a", PatternType::Prefixed, "User:bob");
        let (records, outcomes) = create_acls(
            &image,
            vec![
                Ok(a.clone()),
                Ok(a.clone()),
                Err("bad".into()),
                Ok(p.clone()),
            ],
            ids(),
        )
        .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(outcomes, vec![Ok(()), Ok(()), Err("bad".into()), Ok(())]);
        let image = image.apply(&records);
        assert_eq!(image.acls().len(), 2);
        // Created again: already in force, nothing written.
        let (again, _) = create_acls(&image, vec![Ok(a.clone())], ids()).unwrap();
        assert!(again.is_empty());
        // A snapshot carries them.
        let rebuilt = MetadataImage::default().apply(&image.to_records());
        assert_eq!(rebuilt.acls(), image.acls());

        let literal_only = AclFilter {
            pattern: PatternFilter::Exactly(PatternType::Literal),
            ..AclFilter::default()
        };
        let everything = AclFilter::default();
        let (records, outcomes) =
            delete_acls(&image, &[Ok(literal_only), Ok(everything), Err("x".into())]).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(outcomes[0], Ok(vec![a.clone()]));
        assert_eq!(outcomes[1].as_ref().unwrap().len(), 2);
        assert_eq!(outcomes[2], Err("x".into()));
        assert!(image.apply(&records).acls().is_empty());
    }

    #[test]
    fn creations_are_checked_with_kafkas_messages() {
        let ok = AclBinding::from_creation(2, "t", 3, "User:a", "*", 3, 3);
        assert!(ok.is_ok());
        let refused = |r: Result<AclBinding, String>| r.unwrap_err();
        assert_eq!(
            refused(AclBinding::from_creation(4, "c", 3, "User:a", "*", 3, 3)),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
        assert_eq!(
            refused(AclBinding::from_creation(2, "", 3, "User:a", "*", 3, 3)),
            "Invalid empty resource name"
        );
        assert_eq!(
            refused(AclBinding::from_creation(1, "t", 3, "User:a", "*", 3, 3)),
            "Invalid resourceType ANY"
        );
        assert_eq!(
            refused(AclBinding::from_creation(2, "t", 2, "User:a", "*", 3, 3)),
            "Invalid patternType MATCH"
        );
        assert_eq!(
            refused(AclBinding::from_creation(2, "t", 3, "User:a", "*", 1, 3)),
            "Invalid operation ANY"
        );
        assert_eq!(
            refused(AclBinding::from_creation(2, "t", 3, "User:a", "*", 3, 1)),
            "Invalid permissionType ANY"
        );
        assert!(
            refused(AclBinding::from_creation(2, "t", 3, "alice", "*", 3, 3))
                .starts_with("Could not parse principal from `alice`")
        );
    }
}
