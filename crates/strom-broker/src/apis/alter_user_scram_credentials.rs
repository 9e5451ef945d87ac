//! AlterUserScramCredentials (key 51, KIP-554): the client sends each user's salt,
//! iterations and salted password; the broker derives StoredKey and ServerKey (the
//! password itself never reaches the metadata log) and the active controller commits
//! the credentials by Kafka's rules (`strom_metadata::scram`). Brokers forward it.

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::scram::{alter_credentials, ScramUpsertion};
use strom_security::sasl::scram::{credential, mechanism_of_type};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::scram_error_code;

pub struct AlterUserScramCredentialsHandler;

impl Handler for AlterUserScramCredentialsHandler {
    type Request = AlterUserScramCredentialsRequest;
    const KEY: ApiKey = ApiKey::AlterUserScramCredentials;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AlterUserScramCredentialsRequest,
    ) -> AlterUserScramCredentialsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Alter) {
            let mut users: Vec<String> = request
                .deletions
                .iter()
                .map(|d| d.name.to_string())
                .chain(request.upsertions.iter().map(|u| u.name.to_string()))
                .collect();
            users.sort();
            users.dedup();
            return AlterUserScramCredentialsResponse::default().with_results(
                users
                    .into_iter()
                    .map(|user| {
                        AlterUserScramCredentialsResult::default()
                            .with_user(StrBytes::from_string(user))
                            .with_error_code(
                                strom_types::ErrorCode::ClusterAuthorizationFailed.code(),
                            )
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Cluster authorization failed.",
                            )))
                    })
                    .collect(),
            );
        }
        let deletions: Vec<(String, i8)> = request
            .deletions
            .iter()
            .map(|d| (d.name.to_string(), d.mechanism))
            .collect();
        let upsertions: Vec<ScramUpsertion> = request
            .upsertions
            .iter()
            .map(|u| {
                // An unknown mechanism is refused by the controller; its keys are never kept.
                let derived = mechanism_of_type(u.mechanism)
                    .map(|m| credential(m, &u.salted_password, &u.salt, u.iterations));
                ScramUpsertion {
                    name: u.name.to_string(),
                    mechanism: u.mechanism,
                    iterations: u.iterations,
                    salt: u.salt.to_vec(),
                    stored_key: derived
                        .as_ref()
                        .map(|c| c.stored_key.clone())
                        .unwrap_or_default(),
                    server_key: derived.map(|c| c.server_key).unwrap_or_default(),
                }
            })
            .collect();
        let users: Vec<String> = deletions
            .iter()
            .map(|(n, _)| n.clone())
            .chain(upsertions.iter().map(|u| u.name.clone()))
            .collect();
        let written = broker
            .write_metadata(|image| {
                let (records, results) = alter_credentials(image, &deletions, &upsertions);
                Ok::<_, std::convert::Infallible>((records, results))
            })
            .await;
        let results = match written {
            Ok(results) => results
                .into_iter()
                .map(|(user, outcome)| {
                    let result = AlterUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(user));
                    match outcome {
                        Ok(()) => result.with_error_message(None),
                        Err(e) => result
                            .with_error_code(scram_error_code(&e).code())
                            .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                    }
                })
                .collect(),
            Err(e) => {
                let (code, message) = e.into_error(|never| match never {});
                let mut unique = users;
                unique.sort();
                unique.dedup();
                unique
                    .into_iter()
                    .map(|user| {
                        AlterUserScramCredentialsResult::default()
                            .with_user(StrBytes::from_string(user))
                            .with_error_code(code.code())
                            .with_error_message(Some(StrBytes::from_string(message.clone())))
                    })
                    .collect()
            }
        };
        AlterUserScramCredentialsResponse::default().with_results(results)
    }
}
