//! SCRAM credential administration (KIP-554): AlterUserScramCredentials
//! and DescribeUserScramCredentials. The salted password is computed here,
//! with a random salt, as Kafka's admin client does: the password itself
//! never leaves the client.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::Admin;
use crate::error::{check, Error, Result};
use crate::scram::{random_bytes, ScramMechanism, MAX_ITERATIONS};

/// One credential of a user, as DescribeUserScramCredentials shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// `None`: a mechanism code this client does not know.
    pub mechanism: Option<ScramMechanism>,
    pub iterations: i32,
}

/// A change to a user's SCRAM credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum ScramCredentialChange {
    Upsert {
        user: String,
        mechanism: ScramMechanism,
        iterations: i32,
        password: String,
    },
    Delete {
        user: String,
        mechanism: ScramMechanism,
    },
}

impl std::fmt::Debug for ScramCredentialChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Upsert {
                user,
                mechanism,
                iterations,
                ..
            } => write!(f, "Upsert({user}, {mechanism:?}, {iterations})"),
            Self::Delete { user, mechanism } => write!(f, "Delete({user}, {mechanism:?})"),
        }
    }
}

impl ScramCredentialChange {
    fn user(&self) -> &str {
        match self {
            Self::Upsert { user, .. } | Self::Delete { user, .. } => user,
        }
    }
}

/// Salt length: 32 random bytes (Kafka's admin client uses about 26).
const SALT_BYTES: usize = 32;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Admin {
    /// Applies credential changes; one result per user named, in the order
    /// first named. Iterations below Kafka's minimum are left to the broker
    /// to refuse (UNACCEPTABLE_CREDENTIAL); above its maximum they are
    /// refused here, before hashing that long.
    pub async fn alter_user_scram_credentials(
        &mut self,
        changes: &[ScramCredentialChange],
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut request = AlterUserScramCredentialsRequest::default();
        for change in changes {
            match change {
                ScramCredentialChange::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    if !(1..=MAX_ITERATIONS).contains(iterations) {
                        return Err(Error::InvalidArgument(format!(
                            "{iterations} iterations for {user}: Kafka accepts {} to {MAX_ITERATIONS}",
                            crate::scram::MIN_ITERATIONS
                        )));
                    }
                    let salt = random_bytes(SALT_BYTES)
                        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                    let salted =
                        mechanism.salted_password(password.as_bytes(), &salt, *iterations as u32);
                    request.upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(s(user))
                            .with_mechanism(mechanism.type_code())
                            .with_iterations(*iterations)
                            .with_salt(Bytes::from(salt))
                            .with_salted_password(Bytes::from(salted)),
                    );
                }
                ScramCredentialChange::Delete { user, mechanism } => {
                    request.deletions.push(
                        ScramCredentialDeletion::default()
                            .with_name(s(user))
                            .with_mechanism(mechanism.type_code()),
                    );
                }
            }
        }
        let response = self.client().send_to_controller(&request).await?;
        let mut users: Vec<&str> = Vec::new();
        for change in changes {
            if !users.contains(&change.user()) {
                users.push(change.user());
            }
        }
        Ok(users
            .into_iter()
            .map(|user| {
                let result = match response.results.iter().find(|r| r.user.as_str() == user) {
                    Some(r) => check(
                        r.error_code,
                        r.error_message.as_deref(),
                        format!("user {user}"),
                    ),
                    None => Err(Error::Protocol(format!(
                        "AlterUserScramCredentials did not answer for user {user}"
                    ))),
                };
                (user.to_owned(), result)
            })
            .collect())
    }

    /// The credentials of `users` (`None`: of every user that has some);
    /// one result per user.
    pub async fn describe_user_scram_credentials(
        &mut self,
        users: Option<&[String]>,
    ) -> Result<Vec<(String, Result<Vec<ScramCredentialInfo>>)>> {
        let request =
            DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
                users
                    .iter()
                    .map(|u| UserName::default().with_name(s(u)))
                    .collect()
            }));
        let response = self.client().send_to_controller(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "describe SCRAM users",
        )?;
        Ok(response
            .results
            .iter()
            .map(|r| {
                let user = r.user.to_string();
                let result = check(
                    r.error_code,
                    r.error_message.as_deref(),
                    format!("user {user}"),
                )
                .map(|()| {
                    r.credential_infos
                        .iter()
                        .map(|c| ScramCredentialInfo {
                            mechanism: ScramMechanism::from_type_code(c.mechanism),
                            iterations: c.iterations,
                        })
                        .collect()
                });
                (user, result)
            })
            .collect())
    }
}
