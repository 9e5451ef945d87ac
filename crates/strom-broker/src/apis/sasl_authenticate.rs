//! SaslAuthenticate (key 36). As SaslHandshake: the session of a SASL listener
//! answers it; reaching the table means ILLEGAL_SASL_STATE.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_types::ErrorCode;

use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct SaslAuthenticateHandler;

impl Handler for SaslAuthenticateHandler {
    type Request = SaslAuthenticateRequest;
    const KEY: ApiKey = ApiKey::SaslAuthenticate;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        _broker: Arc<Broker>,
        _ctx: RequestContext,
        _request: SaslAuthenticateRequest,
    ) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SaslAuthenticate on a listener without SASL, or outside an exchange",
            )))
    }
}
