//! DescribeCluster: the cluster id, the controller and the brokers.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::brokers;
use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct DescribeClusterHandler;

impl Handler for DescribeClusterHandler {
    type Request = DescribeClusterRequest;
    const KEY: ApiKey = ApiKey::DescribeCluster;

    async fn handle(
        broker: Arc<Broker>,
        _ctx: RequestContext,
        _request: DescribeClusterRequest,
    ) -> DescribeClusterResponse {
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
            .with_controller_id(BrokerId(broker.config.node_id))
            .with_brokers(listed)
            .with_cluster_authorized_operations(i32::MIN)
    }
}
