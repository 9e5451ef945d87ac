//! DescribeUserScramCredentials (key 50, KIP-554): each user's mechanisms and
//! iterations from this broker's metadata image, as Kafka's ScramImage describes them.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::scram::describe_credentials;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::scram_error_code;

pub struct DescribeUserScramCredentialsHandler;

impl Handler for DescribeUserScramCredentialsHandler {
    type Request = DescribeUserScramCredentialsRequest;
    const KEY: ApiKey = ApiKey::DescribeUserScramCredentials;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeUserScramCredentialsRequest,
    ) -> DescribeUserScramCredentialsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Describe) {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Cluster authorization failed.",
                )));
        }
        let users: Option<Vec<String>> = request
            .users
            .map(|users| users.iter().map(|u| u.name.to_string()).collect());
        let results = describe_credentials(&broker.image(), users.as_deref())
            .into_iter()
            .map(|(user, outcome)| {
                let result = DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user));
                match outcome {
                    Ok(infos) => result.with_error_message(None).with_credential_infos(
                        infos
                            .into_iter()
                            .map(|(mechanism, iterations)| {
                                CredentialInfo::default()
                                    .with_mechanism(mechanism)
                                    .with_iterations(iterations)
                            })
                            .collect(),
                    ),
                    Err(e) => result
                        .with_error_code(scram_error_code(&e).code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                }
            })
            .collect();
        DescribeUserScramCredentialsResponse::default()
            .with_error_message(None)
            .with_results(results)
    }
}
