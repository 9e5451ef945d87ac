//! SaslHandshake (key 17). On SASL listeners the connection's session answers it
//! (`sasl_session`); a request that reaches the table came on a listener without
//! SASL, and gets ILLEGAL_SASL_STATE, as Kafka's KafkaApis answers it.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct SaslHandshakeHandler;

impl Handler for SaslHandshakeHandler {
    type Request = SaslHandshakeRequest;
    const KEY: ApiKey = ApiKey::SaslHandshake;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        _broker: Arc<Broker>,
        _ctx: RequestContext,
        _request: SaslHandshakeRequest,
    ) -> SaslHandshakeResponse {
        SaslHandshakeResponse::default().with_error_code(ErrorCode::IllegalSaslState.code())
    }
}
