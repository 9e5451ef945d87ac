//! SASL/OAUTHBEARER (RFC 7628) as Kafka's OAuthBearerSaslServer serves it: the client's
//! initial response (GS2 header, `auth=Bearer <token>`, extensions) is checked by a
//! token validator; a refused token gets the JSON error challenge, and the client's
//! `%x01` answer to it ends the exchange with that JSON as the failure message.
//!
//! Two validators, as Kafka's two server callback handlers: `jwt` checks signed JWTs
//! against a JWKS (KIP-768), `unsecured` reads `alg: none` tokens (development only).
//! Time is passed in; keys come from the caller.

pub mod jwt;
pub mod unsecured;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use regex::Regex;

use super::{Authenticated, AuthenticationFailed, Mechanism, SaslServer, Step};

/// A token the validator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The principal's name (the `sub` claim, or the configured claim).
    pub principal: String,
    /// The token's expiry (`exp`), ms since the epoch: the session ends by then (KIP-368).
    pub expires_at_ms: i64,
    pub scope: Vec<String>,
}

/// Why a token was refused: the RFC 7628 status for the client, the detail for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRefused {
    /// `invalid_token` or `insufficient_scope`.
    pub status: &'static str,
    /// With `insufficient_scope`: the required scope, as Kafka prints it.
    pub scope: Option<String>,
    pub reason: String,
}

impl TokenRefused {
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self {
            status: "invalid_token",
            scope: None,
            reason: reason.into(),
        }
    }

    /// Kafka's error challenge: `{"status":"..."}`, with the scope when there is one.
    pub fn challenge(&self) -> String {
        let mut json = format!("{{\"status\":\"{}\"", self.status);
        if let Some(scope) = &self.scope {
            json.push_str(&format!(", \"scope\":\"{scope}\""));
        }
        json.push('}');
        json
    }
}

/// Checks a bearer token at a given time.
pub trait TokenValidator: Send + Sync {
    fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenRefused>;
}

/// The client's first message, parsed as Kafka's OAuthBearerClientInitialResponse does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitialResponse {
    pub token: String,
    /// The GS2 authorization id, empty when none was given.
    pub authorization_id: String,
    pub extensions: BTreeMap<String, String>,
}

impl ClientInitialResponse {
    /// None for anything that is not `n,[a=<authzid>],^Aauth=Bearer <token>^A[key=value^A]...^A`.
    pub fn parse(message: &[u8]) -> Result<Self, String> {
        static PATTERN: OnceLock<Regex> = OnceLock::new();
        static AUTH: OnceLock<Regex> = OnceLock::new();
        let pattern = PATTERN.get_or_init(|| {
            // saslname: any 7-bit character but '=' and ',', or the escapes =2C and =3D.
            Regex::new(
                r"^n,(?:a=((?:[\x01-\x2B\x2D-\x3C\x3E-\x7F]|=2C|=3D)+))?,\x01((?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*)\x01$",
            )
            .expect("a valid pattern")
        });
        let auth_pattern = AUTH.get_or_init(|| {
            Regex::new(r"^(\w+) +([-_~+/.a-zA-Z0-9]+=*)$").expect("a valid pattern")
        });
        let invalid = "Invalid OAUTHBEARER client first message";
        let text = std::str::from_utf8(message).map_err(|_| invalid.to_string())?;
        let captures = pattern.captures(text).ok_or_else(|| invalid.to_string())?;
        let authorization_id = captures
            .get(1)
            .map_or_else(String::new, |m| m.as_str().to_string());
        let mut pairs = BTreeMap::new();
        for pair in captures[2].split('\u{1}').filter(|p| !p.is_empty()) {
            if let Some((key, value)) = pair.split_once('=') {
                pairs.insert(key.to_string(), value.to_string());
            }
        }
        let auth = pairs
            .remove("auth")
            .ok_or_else(|| format!("{invalid}: 'auth' not specified"))?;
        let auth = auth_pattern
            .captures(&auth)
            .ok_or_else(|| format!("{invalid}: invalid 'auth' format"))?;
        if !auth[1].eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "Invalid scheme in OAUTHBEARER client first message: {}",
                &auth[1]
            ));
        }
        Ok(Self {
            token: auth[2].to_string(),
            authorization_id,
            extensions: pairs,
        })
    }
}

/// One OAUTHBEARER exchange.
pub struct OAuthBearerServer {
    validator: Arc<dyn TokenValidator>,
    /// When tokens are checked: the handshake's time, or `evaluate_at`'s.
    now_ms: i64,
    /// The error challenge sent, until the client's `%x01` answers it.
    error_challenge: Option<String>,
    /// What went wrong, for the log (the client only sees Kafka's message).
    detail: Option<String>,
}

impl OAuthBearerServer {
    pub fn new(validator: Arc<dyn TokenValidator>, now_ms: i64) -> Self {
        Self {
            validator,
            now_ms,
            error_challenge: None,
            detail: None,
        }
    }

    fn generic_failure(&mut self, detail: String) -> AuthenticationFailed {
        self.detail = Some(detail);
        AuthenticationFailed(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
                .into(),
        )
    }
}

impl SaslServer for OAuthBearerServer {
    fn mechanism(&self) -> Mechanism {
        Mechanism::OAuthBearer
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<Step, AuthenticationFailed> {
        if token == [0x01] {
            if let Some(challenge) = self.error_challenge.take() {
                return Err(AuthenticationFailed(challenge));
            }
        }
        self.error_challenge = None;
        let response = match ClientInitialResponse::parse(token) {
            Ok(response) => response,
            Err(why) => return Err(self.generic_failure(why)),
        };
        let valid = match self.validator.validate(&response.token, self.now_ms) {
            Ok(valid) => valid,
            Err(refused) => {
                let challenge = refused.challenge();
                self.detail = Some(refused.reason);
                self.error_challenge = Some(challenge.clone());
                return Ok(Step::Challenge(challenge.into_bytes()));
            }
        };
        if !response.authorization_id.is_empty() && response.authorization_id != valid.principal {
            return Err(AuthenticationFailed(format!(
                "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                response.authorization_id, valid.principal
            )));
        }
        // Both of Kafka's validators accept every extension.
        Ok(Step::Done(Authenticated {
            user: valid.principal,
            response: Vec::new(),
            credential_expires_at_ms: Some(valid.expires_at_ms),
        }))
    }

    fn evaluate_at(&mut self, token: &[u8], now_ms: i64) -> Result<Step, AuthenticationFailed> {
        self.now_ms = now_ms;
        self.evaluate(token)
    }

    fn failure_detail(&self) -> Option<String> {
        self.detail.clone()
    }
}

/// A JWT's base64url part (padding tolerated), decoded.
pub(crate) fn base64url(part: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// A NumericDate claim in seconds (possibly fractional); None when absent, Err when it
/// is not a number.
pub(crate) fn numeric_date(
    claims: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("The '{name}' claim is not a number")),
        Some(other) => Err(format!(
            "The '{name}' claim is not a number: {}",
            json_type(other)
        )),
    }
}

pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "Boolean",
        serde_json::Value::Number(_) => "Number",
        serde_json::Value::String(_) => "String",
        serde_json::Value::Array(_) => "List",
        serde_json::Value::Object(_) => "Map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `result`, noting when it was asked.
    struct Fixed(Result<ValidToken, TokenRefused>, std::sync::Mutex<Vec<i64>>);

    fn fixed(result: Result<ValidToken, TokenRefused>) -> Arc<Fixed> {
        Arc::new(Fixed(result, Default::default()))
    }

    impl TokenValidator for Fixed {
        fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenRefused> {
            assert_eq!(token, "abc.def.ghi");
            self.1.lock().unwrap().push(now_ms);
            self.0.clone()
        }
    }

    fn alice() -> ValidToken {
        ValidToken {
            principal: "alice".into(),
            expires_at_ms: 5_000,
            scope: vec![],
        }
    }

    #[test]
    fn the_initial_response_is_read_as_kafka_reads_it() {
        let r = ClientInitialResponse::parse(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").unwrap();
        assert_eq!(r.token, "abc.def.ghi");
        assert_eq!(r.authorization_id, "");
        assert!(r.extensions.is_empty());
        let r = ClientInitialResponse::parse(
            b"n,a=alice,\x01traceId=123 x\x01auth=bearer abc.def.ghi\x01logicalCluster=lc-1\x01\x01",
        )
        .unwrap();
        assert_eq!(r.authorization_id, "alice");
        assert_eq!(
            r.extensions,
            BTreeMap::from([
                ("logicalCluster".to_string(), "lc-1".to_string()),
                ("traceId".to_string(), "123 x".to_string()),
            ])
        );
        let invalid = "Invalid OAUTHBEARER client first message";
        assert_eq!(
            ClientInitialResponse::parse(b"y,,\x01auth=Bearer t\x01\x01").unwrap_err(),
            invalid
        );
        assert_eq!(
            ClientInitialResponse::parse(b"n,,\x01auth=Bearer t\x01").unwrap_err(),
            invalid
        );
        assert_eq!(
            ClientInitialResponse::parse(b"n,,\x01x=1\x01\x01").unwrap_err(),
            format!("{invalid}: 'auth' not specified")
        );
        assert_eq!(
            ClientInitialResponse::parse(b"n,,\x01auth=Bearer a b\x01\x01").unwrap_err(),
            format!("{invalid}: invalid 'auth' format")
        );
        assert_eq!(
            ClientInitialResponse::parse(b"n,,\x01auth=Basic abc\x01\x01").unwrap_err(),
            "Invalid scheme in OAUTHBEARER client first message: Basic"
        );
        assert!(ClientInitialResponse::parse(b"n,a=x,y,\x01auth=Bearer t\x01\x01").is_err());
        assert!(ClientInitialResponse::parse(&[0xff, b'n']).is_err());
    }

    #[test]
    fn a_valid_token_authenticates_its_subject_until_it_expires() {
        let validator = fixed(Ok(alice()));
        let mut server = OAuthBearerServer::new(validator.clone(), 1_000);
        let Step::Done(done) = server
            .evaluate_at(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01", 2_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(done.user, "alice");
        assert_eq!(done.credential_expires_at_ms, Some(5_000));
        // The token is checked when it arrives, not at the handshake.
        assert_eq!(*validator.1.lock().unwrap(), vec![2_000]);
        assert!(done.response.is_empty());
        let mut server = OAuthBearerServer::new(fixed(Ok(alice())), 1_000);
        assert_eq!(
            server
                .evaluate(b"n,a=bob,\x01auth=Bearer abc.def.ghi\x01\x01")
                .unwrap_err()
                .0,
            "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)"
        );
    }

    #[test]
    fn a_refused_token_gets_the_error_challenge_then_fails_with_it() {
        let refused = TokenRefused::invalid("expired");
        let mut server = OAuthBearerServer::new(fixed(Err(refused)), 1_000);
        let step = server
            .evaluate(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01")
            .unwrap();
        assert_eq!(
            step,
            Step::Challenge(br#"{"status":"invalid_token"}"#.to_vec())
        );
        assert_eq!(server.failure_detail().as_deref(), Some("expired"));
        assert_eq!(
            server.evaluate(&[1]).unwrap_err().0,
            r#"{"status":"invalid_token"}"#
        );
        let scoped = TokenRefused {
            status: "insufficient_scope",
            scope: Some("[write]".into()),
            reason: "no".into(),
        };
        assert_eq!(
            scoped.challenge(),
            r#"{"status":"insufficient_scope", "scope":"[write]"}"#
        );
        // Garbage is Kafka's generic failure, its reason kept for the log.
        let mut server = OAuthBearerServer::new(fixed(Ok(alice())), 0);
        assert_eq!(
            server.evaluate(&[1]).unwrap_err().0,
            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        );
        assert_eq!(
            server.failure_detail().as_deref(),
            Some("Invalid OAUTHBEARER client first message")
        );
    }
}
