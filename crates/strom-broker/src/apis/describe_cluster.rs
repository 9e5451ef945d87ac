//! DescribeCluster: the cluster id, the controller and the brokers.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_types::ErrorCode;

use super::metadata::brokers;
use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct DescribeClusterHandler;

const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

impl Handler for DescribeClusterHandler {
    type Request = DescribeClusterRequest;
    const KEY: ApiKey = ApiKey::DescribeCluster;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        _ctx: RequestContext,
        request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
        // endpoint_type (v1+; v0 decodes as brokers) names what the client wants; this is a broker.
        if request.endpoint_type != ENDPOINT_BROKER {
            let (code, message) = if request.endpoint_type == ENDPOINT_CONTROLLER {
                (
                    ErrorCode::MismatchedEndpointType,
                    "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
                )
            } else {
                (
                    ErrorCode::UnsupportedEndpointType,
                    format!("Unsupported endpoint type {}", request.endpoint_type),
                )
            };
            return DescribeClusterResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)));
        }
        let image = broker.image();
        let listed = brokers(&broker, &image)
            .into_iter()
            .map(|b| {
                DescribeClusterBroker::default()
                    .with_broker_id(b.node_id)
                    .with_host(b.host)
                    .with_port(b.port)
                    .with_rack(b.rack)
            })
            .collect();
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
            .with_controller_id(BrokerId(broker.controller_id_for_clients()))
            .with_brokers(listed)
            .with_cluster_authorized_operations(i32::MIN)
    }
}
