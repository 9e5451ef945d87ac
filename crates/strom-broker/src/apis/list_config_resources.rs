//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the
//! resources that can carry configs. Topics and brokers are listed whether or
//! not they have dynamic configs; groups only when they have some, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource as ListedResource;
use kafka_protocol::messages::{ApiKey, ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::ConfigResource;
use strom_types::ErrorCode;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ListConfigResourcesHandler;

const RESOURCE_CLIENT_METRICS: i8 = 16;

/// Types v1 may ask for. strom has no client-metrics subscriptions, so that type is always empty.
const SUPPORTED: &[i8] = &[
    RESOURCE_TOPIC,
    RESOURCE_BROKER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
];

impl Handler for ListConfigResourcesHandler {
    type Request = ListConfigResourcesRequest;
    const KEY: ApiKey = ApiKey::ListConfigResources;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ListConfigResourcesRequest,
    ) -> ListConfigResourcesResponse {
        // Kafka asks for DESCRIBE_CONFIGS on the cluster, whatever the types listed.
        if !ctx
            .authz(&broker)
            .allows_cluster(Operation::DescribeConfigs)
        {
            return ListConfigResourcesResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
        }
        // v0 lists client-metrics resources only.
        let wanted: Vec<i8> = if ctx.api_version == 0 {
            vec![RESOURCE_CLIENT_METRICS]
        } else if request.resource_types.is_empty() {
            SUPPORTED.to_vec()
        } else {
            request.resource_types.clone()
        };
        if wanted.iter().any(|t| !SUPPORTED.contains(t)) {
            return ListConfigResourcesResponse::default()
                .with_error_code(ErrorCode::UnsupportedVersion.code());
        }
        let image = broker.image();
        let listed = |name: String, resource_type: i8| {
            ListedResource::default()
                .with_resource_name(StrBytes::from_string(name))
                .with_resource_type(resource_type)
        };
        let mut resources = Vec::new();
        if wanted.contains(&RESOURCE_GROUP) {
            resources.extend(image.config_resources().filter_map(|r| match r {
                ConfigResource::Group(group) => Some(listed(group.clone(), RESOURCE_GROUP)),
                _ => None,
            }));
        }
        if wanted.contains(&RESOURCE_BROKER) {
            resources.extend(
                image
                    .brokers()
                    .map(|b| listed(b.id.to_string(), RESOURCE_BROKER)),
            );
        }
        if wanted.contains(&RESOURCE_TOPIC) {
            resources.extend(
                image
                    .topics()
                    .map(|t| listed(t.name.clone(), RESOURCE_TOPIC)),
            );
        }
        ListConfigResourcesResponse::default().with_config_resources(resources)
    }
}
