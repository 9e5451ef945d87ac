//! FindCoordinator: the group coordinator is the leader of the group's
//! `__consumer_offsets` partition, the transaction coordinator the leader of the
//! transactional id's `__transaction_state` partition (each topic created on first
//! use, as Kafka does). Share coordinators come with a later issue.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::txn_coordinator::TRANSACTION_STATE_TOPIC;

pub struct FindCoordinatorHandler;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

impl Handler for FindCoordinatorHandler {
    type Request = FindCoordinatorRequest;
    const KEY: ApiKey = ApiKey::FindCoordinator;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let batched = ctx.api_version >= 4;
        let keys: Vec<StrBytes> = if batched {
            request.coordinator_keys.clone()
        } else {
            vec![request.key.clone()]
        };
        let mut found = Vec::with_capacity(keys.len());
        let authz = ctx.authz(&broker);
        for key in keys {
            let refused = match request.key_type {
                KEY_TYPE_GROUP if !authz.allows_group(Operation::Describe, &key) => {
                    Some(ErrorCode::GroupAuthorizationFailed)
                }
                KEY_TYPE_TRANSACTION
                    if !authz.allows_transactional_id(Operation::Describe, &key) =>
                {
                    Some(ErrorCode::TransactionalIdAuthorizationFailed)
                }
                _ => None,
            };
            let located = match refused {
                Some(code) => Err((code, String::new())),
                None => locate(&broker, &ctx.listener_name, request.key_type, &key).await,
            };
            found.push(located.map_or_else(
                |(code, message)| {
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                },
                |(node, host, port)| {
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port)
                },
            ));
        }
        if batched {
            return FindCoordinatorResponse::default().with_coordinators(found);
        }
        let only = found.pop().unwrap_or_default();
        // error_message exists from v1.
        let message = if ctx.api_version >= 1 {
            only.error_message
        } else {
            None
        };
        FindCoordinatorResponse::default()
            .with_error_code(only.error_code)
            .with_error_message(message)
            .with_node_id(only.node_id)
            .with_host(only.host)
            .with_port(only.port)
    }
}

async fn locate(
    broker: &Arc<Broker>,
    listener: &str,
    key_type: i8,
    key: &str,
) -> Result<(i32, String, i32), (ErrorCode, String)> {
    let (topic, index) = match key_type {
        KEY_TYPE_GROUP => {
            broker
                .groups
                .ensure_loaded(broker)
                .await
                .map_err(|code| (code, "the group coordinator is not available".to_string()))?;
            (OFFSETS_TOPIC, broker.groups.partition_for(broker, key))
        }
        KEY_TYPE_TRANSACTION => {
            broker
                .transactions
                .ensure_loaded(broker)
                .await
                .map_err(|code| {
                    (
                        code,
                        "the transaction coordinator is not available".to_string(),
                    )
                })?;
            (
                TRANSACTION_STATE_TOPIC,
                broker.transactions.partition_for(broker, key),
            )
        }
        _ => {
            return Err((
                ErrorCode::InvalidRequest,
                format!("coordinator key type {key_type} is not supported yet"),
            ))
        }
    };
    let image = broker.image();
    let leader = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&index))
        .map(|p| p.leader)
        .ok_or((
            ErrorCode::CoordinatorNotAvailable,
            format!("no leader for partition {index} of {topic}"),
        ))?;
    let endpoint = image
        .broker(leader)
        .and_then(|b| b.endpoints.iter().find(|e| e.listener == listener).cloned())
        .ok_or((
            ErrorCode::CoordinatorNotAvailable,
            "the coordinator has no endpoint".to_string(),
        ))?;
    Ok((leader, endpoint.host, endpoint.port as i32))
}
