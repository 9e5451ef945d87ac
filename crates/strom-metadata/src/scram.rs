//! SCRAM credentials as Kafka's ScramControlManager changes them (AlterUserScramCredentials,
//! KIP-554) and as its ScramImage describes them: each user's deletions and upsertions
//! checked, a user named twice in one request refused, the rest committed together.

use std::collections::BTreeMap;

use crate::hex;
use crate::{MetadataImage, MetadataRecord};

/// Kafka's bounds on iterations: SCRAM's minimum, and ScramControlManager's MAX_ITERATIONS.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("A user credential cannot be altered twice in the same request")]
    AlteredTwice,
    #[error("Username must not be empty")]
    EmptyUsername,
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    #[error("Too few iterations")]
    TooFewIterations,
    #[error("Too many iterations")]
    TooManyIterations,
    #[error("Attempt to delete a user credential that does not exist")]
    DeleteUnknown,
    #[error("Attempt to describe a user credential that does not exist: {0}")]
    DescribeUnknown(String),
    #[error("Cannot describe SCRAM credentials for the same user twice in a single request: {0}")]
    DescribedTwice(String),
}

/// A credential to store, already derived from the salted password the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    pub name: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

fn known_mechanism(mechanism: i8) -> bool {
    matches!(mechanism, 1 | 2)
}

fn check_name_and_mechanism(name: &str, mechanism: i8) -> Result<(), ScramError> {
    if name.is_empty() {
        return Err(ScramError::EmptyUsername);
    }
    if !known_mechanism(mechanism) {
        return Err(ScramError::UnknownMechanism);
    }
    Ok(())
}

fn check_iterations(iterations: i32) -> Result<(), ScramError> {
    if iterations < MIN_ITERATIONS {
        Err(ScramError::TooFewIterations)
    } else if iterations > MAX_ITERATIONS {
        Err(ScramError::TooManyIterations)
    } else {
        Ok(())
    }
}

/// One user's outcome in a request.
pub type UserOutcome<T> = (String, Result<T, ScramError>);

/// The records of a request and each user's outcome, in Kafka's order: deletions, then
/// upsertions, then the users refused.
pub fn alter_credentials(
    image: &MetadataImage,
    deletions: &[(String, i8)],
    upsertions: &[ScramUpsertion],
) -> (Vec<MetadataRecord>, Vec<UserOutcome<()>>) {
    let mut refused: BTreeMap<String, ScramError> = BTreeMap::new();
    let mut to_delete: BTreeMap<String, i8> = BTreeMap::new();
    let mut to_upsert: BTreeMap<String, &ScramUpsertion> = BTreeMap::new();
    for (name, mechanism) in deletions {
        if refused.contains_key(name) {
            continue;
        }
        if to_delete.remove(name).is_some() {
            refused.insert(name.clone(), ScramError::AlteredTwice);
            continue;
        }
        let checked = check_name_and_mechanism(name, *mechanism).and_then(|()| {
            image
                .scram_credential(name, *mechanism)
                .map(|_| ())
                .ok_or(ScramError::DeleteUnknown)
        });
        match checked {
            Ok(()) => {
                to_delete.insert(name.clone(), *mechanism);
            }
            Err(e) => {
                refused.insert(name.clone(), e);
            }
        }
    }
    for upsertion in upsertions {
        let name = &upsertion.name;
        if refused.contains_key(name) {
            continue;
        }
        if to_delete.remove(name).is_some() || to_upsert.remove(name).is_some() {
            refused.insert(name.clone(), ScramError::AlteredTwice);
            continue;
        }
        let checked = check_name_and_mechanism(name, upsertion.mechanism)
            .and(check_iterations(upsertion.iterations));
        match checked {
            Ok(()) => {
                to_upsert.insert(name.clone(), upsertion);
            }
            Err(e) => {
                refused.insert(name.clone(), e);
            }
        }
    }
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, mechanism) in to_delete {
        records.push(MetadataRecord::RemoveUserScramCredential {
            name: name.clone(),
            mechanism,
        });
        results.push((name, Ok(())));
    }
    for (name, u) in to_upsert {
        records.push(MetadataRecord::UserScramCredential {
            name: name.clone(),
            mechanism: u.mechanism,
            salt: hex::encode(&u.salt),
            stored_key: hex::encode(&u.stored_key),
            server_key: hex::encode(&u.server_key),
            iterations: u.iterations,
        });
        results.push((name, Ok(())));
    }
    results.extend(refused.into_iter().map(|(name, e)| (name, Err(e))));
    (records, results)
}

/// DescribeUserScramCredentials: every user with a credential when `users` is None or
/// empty, else the named ones; each with its (mechanism type, iterations).
pub fn describe_credentials(
    image: &MetadataImage,
    users: Option<&[String]>,
) -> Vec<UserOutcome<Vec<(i8, i32)>>> {
    let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
    match users.filter(|u| !u.is_empty()) {
        None => {
            for (user, _, _) in image.scram_credentials() {
                wanted.insert(user.to_string(), false);
            }
        }
        Some(users) => {
            for user in users {
                let twice = wanted.contains_key(user);
                wanted.insert(user.clone(), twice);
            }
        }
    }
    wanted
        .into_iter()
        .map(|(user, twice)| {
            if twice {
                let e = ScramError::DescribedTwice(user.clone());
                return (user, Err(e));
            }
            let infos: Vec<(i8, i32)> = [1i8, 2]
                .into_iter()
                .filter_map(|m| image.scram_credential(&user, m).map(|c| (m, c.iterations)))
                .collect();
            if infos.is_empty() {
                let e = ScramError::DescribeUnknown(user.clone());
                (user, Err(e))
            } else {
                (user, Ok(infos))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: vec![1],
            stored_key: vec![2],
            server_key: vec![3],
        }
    }

    #[test]
    fn upsertions_and_deletions_follow_kafkas_rules() {
        let (records, results) = alter_credentials(
            &MetadataImage::default(),
            &[("ghost".into(), 2)],
            &[
                upsert("alice", 2, 8192),
                upsert("bob", 1, 4095),
                upsert("carol", 1, 16385),
                upsert("", 1, 4096),
                upsert("dave", 3, 4096),
                upsert("erin", 1, 4096),
                upsert("erin", 2, 4096),
            ],
        );
        assert_eq!(records.len(), 1);
        let image = MetadataImage::default().apply(&records);
        assert_eq!(image.scram_credential("alice", 2).unwrap().iterations, 8192);
        let outcome: BTreeMap<String, Result<(), ScramError>> = results.into_iter().collect();
        assert_eq!(outcome["alice"], Ok(()));
        assert_eq!(outcome["ghost"], Err(ScramError::DeleteUnknown));
        assert_eq!(outcome["bob"], Err(ScramError::TooFewIterations));
        assert_eq!(outcome["carol"], Err(ScramError::TooManyIterations));
        assert_eq!(outcome[""], Err(ScramError::EmptyUsername));
        assert_eq!(outcome["dave"], Err(ScramError::UnknownMechanism));
        assert_eq!(outcome["erin"], Err(ScramError::AlteredTwice));
        let (records, results) = alter_credentials(&image, &[("alice".into(), 2)], &[]);
        assert_eq!(results, vec![("alice".to_string(), Ok(()))]);
        assert!(image.apply(&records).scram_credential("alice", 2).is_none());
    }

    #[test]
    fn describe_lists_every_user_or_the_named_ones() {
        let (records, _) = alter_credentials(
            &MetadataImage::default(),
            &[],
            &[upsert("alice", 2, 8192), upsert("bob", 1, 4096)],
        );
        let image = MetadataImage::default().apply(&records);
        let (more, _) = alter_credentials(&image, &[], &[upsert("alice", 1, 5000)]);
        let image = image.apply(&more);
        let all = describe_credentials(&image, None);
        assert_eq!(
            all,
            vec![
                ("alice".into(), Ok(vec![(1, 5000), (2, 8192)])),
                ("bob".into(), Ok(vec![(1, 4096)])),
            ]
        );
        let named = describe_credentials(&image, Some(&["bob".into(), "zed".into(), "bob".into()]));
        assert_eq!(
            named,
            vec![
                ("bob".into(), Err(ScramError::DescribedTwice("bob".into()))),
                ("zed".into(), Err(ScramError::DescribeUnknown("zed".into()))),
            ]
        );
    }
}
