//! What the group APIs share: who the client is, and turning the
//! coordinator's reply into the handler's response type.

use strom_coordinator::ClientInfo;

use super::RequestContext;

pub fn client_info(ctx: &RequestContext) -> ClientInfo {
    ClientInfo {
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    }
}

/// Unwraps the reply of the expected kind; any other kind means the
/// coordinator answered a different request, which is a bug worth a log line.
macro_rules! expect_reply {
    ($result:expr, $variant:ident, $on_error:expr) => {
        match $result {
            Ok(strom_coordinator::Reply::$variant(response)) => response,
            Ok(other) => {
                tracing::error!(reply = ?other, "group coordinator answered with the wrong reply kind");
                $on_error(strom_types::ErrorCode::UnknownServerError)
            }
            Err(code) => $on_error(code),
        }
    };
}
pub(crate) use expect_reply;
