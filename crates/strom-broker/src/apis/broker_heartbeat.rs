//! BrokerHeartbeat (key 63) on a CONTROLLER listener: keeps a broker's session, reports
//! how far it has applied the metadata log, and carries its wish to be fenced or to shut
//! down; the answer says whether it is caught up, fenced, and may shut down.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use strom_metadata::cluster_control::BrokerHeartbeatRequest as Heartbeat;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct BrokerHeartbeatHandler;

impl Handler for BrokerHeartbeatHandler {
    type Request = BrokerHeartbeatRequest;
    const KEY: ApiKey = ApiKey::BrokerHeartbeat;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: BrokerHeartbeatRequest,
    ) -> BrokerHeartbeatResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return BrokerHeartbeatResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        let heartbeat = Heartbeat {
            broker_id: request.broker_id.0,
            broker_epoch: request.broker_epoch,
            current_metadata_offset: request.current_metadata_offset,
            want_fence: request.want_fence,
            want_shut_down: request.want_shut_down,
            offline_log_dirs: request.offline_log_dirs,
        };
        match broker.controller_heartbeat(heartbeat).await {
            Ok(reply) => BrokerHeartbeatResponse::default()
                .with_is_caught_up(reply.is_caught_up)
                .with_is_fenced(reply.is_fenced)
                .with_should_shut_down(reply.should_shut_down),
            Err(e) => {
                let (code, _) = e.into_error(|e| (controller_error_code(&e), e.to_string()));
                BrokerHeartbeatResponse::default()
                    .with_error_code(code.code())
                    .with_is_fenced(true)
            }
        }
    }
}
