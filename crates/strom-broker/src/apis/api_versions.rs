//! ApiVersions: advertises the API table as Kafka lists it, and (v3+) the feature
//! levels strom honours (KIP-584).

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_types::ErrorCode;

use super::{encode_response, ApiTable, DispatchError, Handler, RequestContext};
use crate::broker::Broker;
use crate::txn_coordinator::TRANSACTION_VERSION_LEVEL;

/// A feature strom implements: the levels it could run at and the one it runs at.
struct Feature {
    name: &'static str,
    min: i16,
    max: i16,
    finalized: i16,
}

/// Only features whose behaviour strom implements at the finalized level. Kafka also lists
/// `metadata.version`, `kraft.version`, `eligible.leader.replicas.version` and
/// `share.version`; strom has no metadata log, no replication and no share groups.
const FEATURES: [Feature; 2] = [
    // KIP-890 part 2: EndTxn v5 bumps the epoch, Produce v12 adds partitions implicitly.
    // Clients choose their transaction version from the finalized level.
    Feature {
        name: "transaction.version",
        min: 0,
        max: 2,
        finalized: TRANSACTION_VERSION_LEVEL,
    },
    // KIP-848: the consumer group protocol (ConsumerGroupHeartbeat) is served.
    Feature {
        name: "group.version",
        min: 0,
        max: 1,
        finalized: 1,
    },
];

/// The features never change while strom runs, so their epoch is a constant. Clients only
/// take finalized features from a reply whose epoch is above the last one seen (initially
/// -1), so it must not be negative.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// ApiVersions below v4 omit supported features whose minimum is 0: older clients fail to
/// decode them (KAFKA-17492), as Kafka does.
fn supported_features(api_version: i16) -> Vec<SupportedFeatureKey> {
    FEATURES
        .iter()
        .filter(|f| api_version >= 4 || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect()
}

/// Level 0 means disabled and is not listed, as in Kafka.
fn finalized_features() -> Vec<FinalizedFeatureKey> {
    FEATURES
        .iter()
        .filter(|f| f.finalized > 0)
        .map(|f| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version_level(f.finalized)
                .with_max_version_level(f.finalized)
        })
        .collect()
}

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
        ctx: RequestContext,
        _request: ApiVersionsRequest,
    ) -> ApiVersionsResponse {
        // The feature fields are tagged fields of v3+; older encodings leave them out.
        ApiVersionsResponse::default()
            .with_api_keys(supported(broker.apis_for(ctx.listener)))
            .with_supported_features(supported_features(ctx.api_version))
            .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
            .with_finalized_features(finalized_features())
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
