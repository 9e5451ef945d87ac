//! DescribeCluster: the cluster id, the controller and the brokers.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::MetadataImage;
use strom_types::ErrorCode;

use super::metadata::alive_brokers;
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
        ctx: RequestContext,
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
        let authz = ctx.authz(&broker);
        let cluster_operations = if !request.include_cluster_authorized_operations {
            super::AUTHORIZED_OPERATIONS_OMITTED
        } else if authz.allows_cluster(super::Operation::Describe) {
            authz.authorized_operations(super::ResourceType::Cluster, super::CLUSTER_NAME)
        } else {
            0
        };
        let image = broker.image();
        // KIP-1073 (v2): fenced brokers too, when asked, marked as such.
        let listed = if request.include_fenced_brokers {
            brokers_with_fenced(&image, &ctx.listener_name)
        } else {
            alive_brokers(&image, &ctx.listener_name)
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(b.node_id)
                        .with_host(b.host)
                        .with_port(b.port)
                        .with_rack(b.rack)
                })
                .collect()
        };
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
            .with_controller_id(BrokerId(broker.controller_id_for_clients()))
            .with_brokers(listed)
            .with_cluster_authorized_operations(cluster_operations)
    }
}

/// Every registered broker with an endpoint on the listener, fenced or not.
fn brokers_with_fenced(image: &MetadataImage, listener: &str) -> Vec<DescribeClusterBroker> {
    image
        .brokers()
        .filter_map(|b| {
            let endpoint = b.endpoints.iter().find(|e| e.listener == listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::{BrokerEndpoint, MetadataRecord};

    #[test]
    fn fenced_brokers_are_listed_and_marked_only_when_asked() {
        let register = |id: i32, fenced: bool| MetadataRecord::RegisterBroker {
            log_dirs: vec![],
            broker_id: id,
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".to_owned(),
                host: "127.0.0.1".to_owned(),
                port: 9090 + id as u16,
            }],
            rack: Some(format!("r{id}")),
            incarnation_id: None,
            broker_epoch: 3,
            fenced,
            in_controlled_shutdown: false,
        };
        let image = MetadataImage::default().apply(&[register(1, false), register(2, true)]);
        let listed: Vec<(i32, i32, Option<String>, bool)> =
            brokers_with_fenced(&image, "PLAINTEXT")
                .iter()
                .map(|b| {
                    (
                        b.broker_id.0,
                        b.port,
                        b.rack.as_ref().map(|r| r.to_string()),
                        b.is_fenced,
                    )
                })
                .collect();
        assert_eq!(
            listed,
            vec![
                (1, 9091, Some("r1".to_owned()), false),
                (2, 9092, Some("r2".to_owned()), true)
            ]
        );
        let alive: Vec<i32> = super::super::metadata::alive_brokers(&image, "PLAINTEXT")
            .iter()
            .map(|b| b.node_id.0)
            .collect();
        assert_eq!(alive, vec![1]);
    }
}
