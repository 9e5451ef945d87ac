//! The SASL state of one connection on a SASL listener, as Kafka's
//! SaslServerAuthenticator keeps it: ApiVersions and SaslHandshake first, then
//! SaslAuthenticate tokens (or, after a v0 handshake, raw tokens) until the
//! mechanism names the user; only then other requests. With a session lifetime
//! (`connections.max.reauth.ms`, a token's expiry) a client re-authenticates on
//! the same connection with the same mechanism and principal (KIP-368); a request
//! after the session expired closes the connection. Time is passed in.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use strom_security::sasl::oauthbearer::OAuthBearerServer;
use strom_security::sasl::plain::PlainServer;
use strom_security::sasl::scram::{CredentialLookup, ScramServer};
use strom_security::sasl::{Mechanism, SaslServer, Step};
use strom_security::KafkaPrincipal;
use strom_types::ErrorCode;
use strom_wire::frame::peek_request_prefix;

use crate::apis::{encode_response, DispatchError};
use crate::security_config::SaslSettings;

/// What the connection does with a frame.
#[derive(Debug)]
pub enum Verdict {
    /// An ordinary request of an authenticated client (or ApiVersions): dispatch it.
    Serve,
    /// The session answers: write `response`, then close with `close_after` if set.
    Answer {
        response: BytesMut,
        close_after: Option<String>,
    },
    /// Close the connection at once, for this reason.
    Close(String),
}

enum State {
    /// Waiting for SaslHandshake (first, or to re-authenticate).
    Handshake,
    Exchange {
        server: Box<dyn SaslServer>,
        /// After SaslHandshake v0 the tokens come without Kafka headers.
        raw: bool,
    },
    Authenticated,
}

pub struct SaslSession {
    settings: Arc<SaslSettings>,
    /// SCRAM credentials, as the metadata image holds them when asked.
    scram_credentials: CredentialLookup,
    state: State,
    /// The authenticated principal and mechanism, kept across re-authentication.
    principal: Option<KafkaPrincipal>,
    mechanism: Option<Mechanism>,
    /// When the session ends (ms since the epoch), if it does.
    expires_at_ms: Option<i64>,
    /// Successful authentications on this connection (re-authentications after the first).
    sessions: u32,
}

impl SaslSession {
    pub fn new(settings: Arc<SaslSettings>, scram_credentials: CredentialLookup) -> Self {
        Self {
            settings,
            scram_credentials,
            state: State::Handshake,
            principal: None,
            mechanism: None,
            expires_at_ms: None,
            sessions: 0,
        }
    }

    /// How long a failure's answer waits (`connection.failed.authentication.delay.ms`).
    pub fn failure_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.failed_authentication_delay_ms)
    }

    /// How many times the client authenticated on this connection.
    pub fn sessions_started(&self) -> u32 {
        self.sessions
    }

    /// The authenticated principal, once there is one.
    pub fn principal(&self) -> Option<&KafkaPrincipal> {
        self.principal.as_ref()
    }

    pub fn on_frame(&mut self, frame: &BytesMut, now_ms: i64) -> Result<Verdict, DispatchError> {
        if let State::Exchange { raw: true, .. } = self.state {
            return Ok(self.raw_token(frame, now_ms));
        }
        let prefix = peek_request_prefix(frame)
            .ok_or_else(|| DispatchError::Malformed("request too short for a header".into()))?;
        let key = ApiKey::try_from(prefix.api_key).ok();
        let expired = self.expires_at_ms.is_some_and(|at| now_ms >= at);
        match (&self.state, key) {
            (State::Authenticated, Some(ApiKey::SaslHandshake)) => self.handshake(frame, now_ms),
            (State::Authenticated, _) if expired => Ok(Verdict::Close(format!(
                "the SASL session of {} expired and was not re-authenticated",
                self.principal
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string)
            ))),
            (State::Authenticated, _) => Ok(Verdict::Serve),
            (State::Handshake, Some(ApiKey::ApiVersions)) if self.principal.is_none() => {
                Ok(Verdict::Serve)
            }
            (State::Handshake, Some(ApiKey::SaslHandshake)) => self.handshake(frame, now_ms),
            (State::Exchange { raw: false, .. }, Some(ApiKey::SaslAuthenticate)) => {
                self.authenticate(frame, now_ms)
            }
            (_, key) => Ok(Verdict::Close(format!(
                "unexpected request {} during SASL {}",
                key.map_or_else(|| format!("key {}", prefix.api_key), |k| format!("{k:?}")),
                if self.principal.is_some() {
                    "re-authentication"
                } else {
                    "authentication"
                }
            ))),
        }
    }

    fn handshake(&mut self, frame: &BytesMut, now_ms: i64) -> Result<Verdict, DispatchError> {
        let (header, request): (RequestHeader, SaslHandshakeRequest) =
            decode(frame, ApiKey::SaslHandshake)?;
        let version = header.request_api_version;
        let enabled: Vec<StrBytes> = self
            .settings
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let requested = Mechanism::from_name(request.mechanism.as_str())
            .filter(|m| self.settings.mechanisms.contains(m));
        let reauthenticating = self.mechanism.is_some();
        let chosen = match requested {
            Some(m) if !reauthenticating || self.mechanism == Some(m) => m,
            _ => {
                let response = SaslHandshakeResponse::default()
                    .with_error_code(ErrorCode::UnsupportedSaslMechanism.code())
                    .with_mechanisms(enabled);
                let why = if reauthenticating {
                    format!(
                        "re-authentication must use the same mechanism ({}), not {}",
                        self.mechanism.map_or("", Mechanism::name),
                        request.mechanism.as_str()
                    )
                } else {
                    format!("unsupported SASL mechanism {}", request.mechanism.as_str())
                };
                return Ok(Verdict::Answer {
                    response: encode_response(header.correlation_id, version, &response)?,
                    close_after: Some(why),
                });
            }
        };
        let server: Box<dyn SaslServer> = match chosen {
            Mechanism::Plain => Box::new(PlainServer::new(
                self.settings.plain_users.clone().unwrap_or_default(),
            )),
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => Box::new(ScramServer::new(
                chosen,
                self.scram_credentials.clone(),
                uuid::Uuid::new_v4().simple().to_string(),
            )),
            Mechanism::OAuthBearer => match &self.settings.oauthbearer {
                Some(oauth) => Box::new(OAuthBearerServer::new(oauth.validator.clone(), now_ms)),
                None => {
                    return Ok(Verdict::Close(format!(
                        "SASL mechanism {chosen} is not configured"
                    )))
                }
            },
        };
        self.state = State::Exchange {
            server,
            raw: version == 0,
        };
        let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
        Ok(Verdict::Answer {
            response: encode_response(header.correlation_id, version, &response)?,
            close_after: None,
        })
    }

    fn authenticate(&mut self, frame: &BytesMut, now_ms: i64) -> Result<Verdict, DispatchError> {
        let (header, request): (RequestHeader, SaslAuthenticateRequest) =
            decode(frame, ApiKey::SaslAuthenticate)?;
        let version = header.request_api_version;
        let answer = |response: SaslAuthenticateResponse, close_after: Option<String>| {
            Ok(Verdict::Answer {
                response: encode_response(header.correlation_id, version, &response)?,
                close_after,
            })
        };
        match self.step(&request.auth_bytes, now_ms) {
            Ok((bytes, lifetime_ms)) => answer(
                SaslAuthenticateResponse::default()
                    .with_error_message(None)
                    .with_auth_bytes(Bytes::from(bytes))
                    .with_session_lifetime_ms(lifetime_ms.unwrap_or(0)),
                None,
            ),
            Err(failure) => answer(
                SaslAuthenticateResponse::default()
                    .with_error_code(ErrorCode::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(failure.message.clone()))),
                Some(failure.log_line()),
            ),
        }
    }

    fn raw_token(&mut self, frame: &BytesMut, now_ms: i64) -> Verdict {
        match self.step(frame, now_ms) {
            Ok((bytes, _)) => {
                let mut response = BytesMut::with_capacity(4 + bytes.len());
                response.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                response.extend_from_slice(&bytes);
                Verdict::Answer {
                    response,
                    close_after: None,
                }
            }
            Err(failure) => Verdict::Close(failure.log_line()),
        }
    }

    /// Feeds one token to the mechanism: its answer, and the session lifetime once done
    /// (None while the exchange goes on); Err with the client's message on failure.
    fn step(&mut self, token: &[u8], now_ms: i64) -> Result<(Vec<u8>, Option<i64>), Failure> {
        let State::Exchange { server, .. } = &mut self.state else {
            return Err(Failure::from("no SASL exchange in progress".to_string()));
        };
        let mechanism = server.mechanism();
        let step = server.evaluate_at(token, now_ms).map_err(|e| Failure {
            message: e.0,
            detail: server.failure_detail(),
        })?;
        match step {
            Step::Challenge(bytes) => Ok((bytes, None)),
            Step::Done(done) => {
                let principal = KafkaPrincipal::user(done.user);
                if let Some(previous) = &self.principal {
                    if *previous != principal {
                        return Err(Failure::from(format!(
                            "Cannot change principals during re-authentication from {previous}: {principal}"
                        )));
                    }
                }
                let lifetime_ms = session_lifetime_ms(
                    self.settings.max_reauth_ms,
                    done.credential_expires_at_ms,
                    now_ms,
                );
                self.expires_at_ms = lifetime_ms.map(|ms| now_ms + ms);
                self.principal = Some(principal);
                self.mechanism = Some(mechanism);
                self.state = State::Authenticated;
                self.sessions += 1;
                Ok((done.response, Some(lifetime_ms.unwrap_or(0))))
            }
        }
    }
}

/// A failed exchange: Kafka's message for the client, and what the log adds.
struct Failure {
    message: String,
    detail: Option<String>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            detail: None,
        }
    }
}

impl Failure {
    fn log_line(&self) -> String {
        match &self.detail {
            Some(detail) => format!("SASL authentication failed: {} ({detail})", self.message),
            None => format!("SASL authentication failed: {}", self.message),
        }
    }
}

/// Kafka's rule: the smaller of `connections.max.reauth.ms` (when above 0) and the time
/// left on the credential; None when neither applies.
fn session_lifetime_ms(
    max_reauth_ms: i64,
    credential_expires_at_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    let by_reauth = (max_reauth_ms > 0).then_some(max_reauth_ms);
    let by_credential = credential_expires_at_ms.map(|at| (at - now_ms).max(0));
    match (by_reauth, by_credential) {
        (None, None) => None,
        (Some(a), None) | (None, Some(a)) => Some(a),
        (Some(a), Some(b)) => Some(a.min(b)),
    }
}

fn decode<T: Decodable>(
    frame: &BytesMut,
    key: ApiKey,
) -> Result<(RequestHeader, T), DispatchError> {
    let prefix = peek_request_prefix(frame)
        .ok_or_else(|| DispatchError::Malformed("request too short for a header".into()))?;
    let mut body = Bytes::copy_from_slice(frame);
    let header = RequestHeader::decode(&mut body, key.request_header_version(prefix.api_version))
        .map_err(|e| DispatchError::Malformed(format!("request header: {e:#}")))?;
    let request = T::decode(&mut body, prefix.api_version)
        .map_err(|e| DispatchError::Malformed(format!("{key:?}: {e:#}")))?;
    Ok((header, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::{Encodable, HeaderVersion};
    use strom_security::sasl::plain::PlainUsers;

    fn session(max_reauth_ms: i64) -> SaslSession {
        let options = std::collections::BTreeMap::from([
            ("user_alice".to_string(), "alice-secret".to_string()),
            ("user_bob".to_string(), "bob-secret".to_string()),
        ]);
        SaslSession::new(
            Arc::new(SaslSettings {
                mechanisms: vec![Mechanism::Plain],
                plain_users: Some(Arc::new(PlainUsers::from_jaas_options(&options))),
                max_reauth_ms,
                failed_authentication_delay_ms: 100,
                oauthbearer: None,
            }),
            Arc::new(|_: &str, _| None),
        )
    }

    fn frame<T: Encodable + HeaderVersion>(key: ApiKey, version: i16, request: &T) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        request.encode(&mut buf, version).unwrap();
        buf
    }

    fn handshake(mechanism: &str) -> BytesMut {
        frame(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        )
    }

    fn authenticate(token: &[u8]) -> BytesMut {
        frame(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
        )
    }

    fn answered<R: Decodable>(verdict: Verdict, version: i16) -> (R, Option<String>) {
        let Verdict::Answer {
            response,
            close_after,
        } = verdict
        else {
            panic!("{verdict:?}")
        };
        let mut body = Bytes::copy_from_slice(&response[4..]);
        // Response header v0 (v1 for flexible versions adds an empty tag section).
        let _correlation = bytes::Buf::get_i32(&mut body);
        if version >= 2 {
            let _tags = body.split_to(1);
        }
        (R::decode(&mut body, version).unwrap(), close_after)
    }

    fn is_close(verdict: Verdict) -> String {
        match verdict {
            Verdict::Close(why) => why,
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn handshake_then_plain_authenticates_and_then_serves() {
        let mut s = session(0);
        let versions = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert!(matches!(s.on_frame(&versions, 0).unwrap(), Verdict::Serve));
        let metadata = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        assert!(is_close(s.on_frame(&metadata, 0).unwrap()).contains("unexpected request Metadata"));
        let mut s = session(0);
        let (r, close): (SaslHandshakeResponse, _) =
            answered(s.on_frame(&handshake("PLAIN"), 0).unwrap(), 1);
        assert_eq!((r.error_code, close), (0, None));
        assert_eq!(r.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
        let (r, close): (SaslAuthenticateResponse, _) = answered(
            s.on_frame(&authenticate(b"\0alice\0alice-secret"), 0)
                .unwrap(),
            2,
        );
        assert_eq!((r.error_code, r.session_lifetime_ms, close), (0, 0, None));
        assert_eq!(s.principal(), Some(&KafkaPrincipal::user("alice")));
        assert!(matches!(
            s.on_frame(&metadata, i64::MAX).unwrap(),
            Verdict::Serve
        ));
    }

    #[test]
    fn a_wrong_password_or_mechanism_is_answered_then_closed() {
        let mut s = session(0);
        let (r, close): (SaslHandshakeResponse, _) =
            answered(s.on_frame(&handshake("SCRAM-SHA-512"), 0).unwrap(), 1);
        assert_eq!(r.error_code, ErrorCode::UnsupportedSaslMechanism.code());
        assert!(close.unwrap().contains("SCRAM-SHA-512"));
        let mut s = session(0);
        s.on_frame(&handshake("PLAIN"), 0).unwrap();
        let (r, close): (SaslAuthenticateResponse, _) =
            answered(s.on_frame(&authenticate(b"\0alice\0nope"), 0).unwrap(), 2);
        assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert_eq!(
            r.error_message.unwrap().as_str(),
            "Authentication failed: Invalid username or password"
        );
        assert!(close.is_some());
        assert_eq!(s.principal(), None);
    }

    #[test]
    fn sessions_expire_and_re_authenticate_as_the_same_principal_only() {
        let mut s = session(60_000);
        s.on_frame(&handshake("PLAIN"), 1_000).unwrap();
        let (r, _): (SaslAuthenticateResponse, _) = answered(
            s.on_frame(&authenticate(b"\0alice\0alice-secret"), 1_000)
                .unwrap(),
            2,
        );
        assert_eq!(r.session_lifetime_ms, 60_000);
        let metadata = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        assert!(matches!(
            s.on_frame(&metadata, 60_999).unwrap(),
            Verdict::Serve
        ));
        assert!(is_close(s.on_frame(&metadata, 61_000).unwrap()).contains("expired"));
        // Re-authentication, even after expiry, renews the session.
        let mut s2 = session(60_000);
        s2.on_frame(&handshake("PLAIN"), 0).unwrap();
        s2.on_frame(&authenticate(b"\0alice\0alice-secret"), 0)
            .unwrap();
        let (r, _): (SaslHandshakeResponse, _) =
            answered(s2.on_frame(&handshake("PLAIN"), 70_000).unwrap(), 1);
        assert_eq!(r.error_code, 0);
        let (r, _): (SaslAuthenticateResponse, _) = answered(
            s2.on_frame(&authenticate(b"\0alice\0alice-secret"), 70_000)
                .unwrap(),
            2,
        );
        assert_eq!((r.error_code, r.session_lifetime_ms), (0, 60_000));
        assert!(matches!(
            s2.on_frame(&metadata, 129_999).unwrap(),
            Verdict::Serve
        ));
        // Another user on the same connection is refused.
        s2.on_frame(&handshake("PLAIN"), 130_000).unwrap();
        let (r, close): (SaslAuthenticateResponse, _) = answered(
            s2.on_frame(&authenticate(b"\0bob\0bob-secret"), 130_000)
                .unwrap(),
            2,
        );
        assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert!(r
            .error_message
            .unwrap()
            .as_str()
            .contains("Cannot change principals"));
        assert!(close.is_some());
    }

    #[test]
    fn a_v0_handshake_takes_raw_tokens() {
        let mut s = session(0);
        let v0 = frame(
            ApiKey::SaslHandshake,
            0,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        let (r, _): (SaslHandshakeResponse, _) = answered(s.on_frame(&v0, 0).unwrap(), 0);
        assert_eq!(r.error_code, 0);
        let Verdict::Answer {
            response,
            close_after: None,
        } = s
            .on_frame(&BytesMut::from(&b"\0alice\0alice-secret"[..]), 0)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(&response[..], &[0, 0, 0, 0]);
        assert_eq!(s.principal(), Some(&KafkaPrincipal::user("alice")));
        let mut s = session(0);
        s.on_frame(&v0, 0).unwrap();
        assert!(
            is_close(s.on_frame(&BytesMut::from(&b"\0alice\0x"[..]), 0).unwrap())
                .contains("Invalid username")
        );
    }

    fn oauth_session(max_reauth_ms: i64) -> SaslSession {
        let options = std::collections::BTreeMap::from([(
            "unsecuredValidatorAllowableClockSkewMs".to_string(),
            "0".to_string(),
        )]);
        let validator =
            strom_security::sasl::oauthbearer::unsecured::UnsecuredValidator::from_jaas_options(
                &options,
            )
            .unwrap();
        SaslSession::new(
            Arc::new(SaslSettings {
                mechanisms: vec![Mechanism::OAuthBearer],
                plain_users: None,
                max_reauth_ms,
                failed_authentication_delay_ms: 100,
                oauthbearer: Some(crate::security_config::OAuthBearerSettings {
                    validator: Arc::new(validator),
                    jwks: None,
                }),
            }),
            Arc::new(|_: &str, _| None),
        )
    }

    fn unsigned(claims: &str) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "n,,\x01auth=Bearer {}.{}.\x01\x01",
            b64.encode(r#"{"alg":"none"}"#),
            b64.encode(claims)
        )
        .into_bytes()
    }

    #[test]
    fn an_oauthbearer_token_bounds_the_session_and_a_refused_one_is_challenged() {
        let mut s = oauth_session(0);
        s.on_frame(&handshake("OAUTHBEARER"), 1_000).unwrap();
        let (r, close): (SaslAuthenticateResponse, _) = answered(
            s.on_frame(&authenticate(&unsigned(r#"{"sub":"dev","exp":61}"#)), 1_000)
                .unwrap(),
            2,
        );
        assert_eq!(
            (r.error_code, r.session_lifetime_ms, close),
            (0, 60_000, None)
        );
        assert_eq!(s.principal(), Some(&KafkaPrincipal::user("dev")));
        // connections.max.reauth.ms below the token's lifetime wins.
        let mut s = oauth_session(5_000);
        s.on_frame(&handshake("OAUTHBEARER"), 1_000).unwrap();
        let (r, _): (SaslAuthenticateResponse, _) = answered(
            s.on_frame(&authenticate(&unsigned(r#"{"sub":"dev","exp":61}"#)), 1_000)
                .unwrap(),
            2,
        );
        assert_eq!(r.session_lifetime_ms, 5_000);
        // An expired token: the error challenge, then Kafka's failure after the client's %x01.
        let mut s = oauth_session(0);
        s.on_frame(&handshake("OAUTHBEARER"), 70_000).unwrap();
        let (r, close): (SaslAuthenticateResponse, _) = answered(
            s.on_frame(
                &authenticate(&unsigned(r#"{"sub":"dev","exp":61}"#)),
                70_000,
            )
            .unwrap(),
            2,
        );
        assert_eq!((r.error_code, close), (0, None));
        assert_eq!(&r.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let (r, close): (SaslAuthenticateResponse, _) =
            answered(s.on_frame(&authenticate(&[1]), 70_000).unwrap(), 2);
        assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert_eq!(
            r.error_message.unwrap().as_str(),
            r#"{"status":"invalid_token"}"#
        );
        let close = close.unwrap();
        assert!(
            close.contains("was on or after the Expiration Time value (61 seconds)"),
            "{close}"
        );
        assert_eq!(s.principal(), None);
    }

    #[test]
    fn lifetimes_follow_kafkas_rule() {
        assert_eq!(session_lifetime_ms(0, None, 5), None);
        assert_eq!(session_lifetime_ms(100, None, 5), Some(100));
        assert_eq!(session_lifetime_ms(0, Some(55), 5), Some(50));
        assert_eq!(session_lifetime_ms(100, Some(55), 5), Some(50));
        assert_eq!(session_lifetime_ms(10, Some(55), 5), Some(10));
        assert_eq!(session_lifetime_ms(10, Some(1), 5), Some(0));
    }
}
