//! ApiVersions: advertises the API table as Kafka lists it.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{encode_response, ApiTable, DispatchError, Handler, RequestContext};
use crate::broker::Broker;

pub struct ApiVersionsHandler;

fn supported(apis: &ApiTable) -> Vec<ApiVersion> {
    apis.iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key() as i16)
                .with_min_version(api.advertised().min)
                .with_max_version(api.advertised().max)
        })
        .collect()
}

impl Handler for ApiVersionsHandler {
    type Request = ApiVersionsRequest;
    const KEY: ApiKey = ApiKey::ApiVersions;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        _ctx: RequestContext,
        _request: ApiVersionsRequest,
    ) -> ApiVersionsResponse {
        ApiVersionsResponse::default()
            .with_api_keys(supported(&broker.apis))
            .with_finalized_features_epoch(-1)
    }
}

/// The reply to an ApiVersions request at a version we do not serve: v0
/// encoding, UNSUPPORTED_VERSION, and the table so the client can pick.
pub fn unsupported_api_versions_response(
    apis: &ApiTable,
    correlation_id: i32,
) -> Result<BytesMut, DispatchError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(ErrorCode::UnsupportedVersion.code())
        .with_api_keys(supported(apis));
    encode_response(correlation_id, 0, &response)
}
