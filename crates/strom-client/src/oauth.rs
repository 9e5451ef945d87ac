//! SASL/OAUTHBEARER tokens for the client (KIP-255, KIP-768): an unsecured token made
//! here for a development listener, or one from an OAuth token endpoint by the client
//! credentials grant, kept until most of its lifetime has passed and shared by every
//! connection. The mechanism's messages (RFC 7628): the client's initial response
//! `n,,\x01auth=Bearer <token>\x01\x01`; a broker refusing the token answers an error
//! challenge, to which the client sends `\x01` and gets the refusal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use hyper::Uri;

use crate::security::SecurityError;
use strom_http::{exchange, HttpRequest};

/// A token endpoint's answer larger than this is refused.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;
const TOKEN_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is fetched again once this share of its lifetime has passed, as Kafka's
/// refreshing login does by default (`sasl.login.refresh.window.factor`).
const REFRESH_WINDOW_FACTOR: f64 = 0.8;

/// Where the client's tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An unsigned (`alg: none`) token naming `principal`, for listeners configured to
    /// accept unsecured tokens: librdkafka's `sasl.oauthbearer.config` (`principal=`,
    /// `scope=`, `lifeSeconds=`) or Kafka's unsecured login module options.
    Unsecured {
        principal: String,
        scope: Vec<String>,
        lifetime: Duration,
    },
    /// The client credentials grant against `endpoint` (`sasl.oauthbearer.token.endpoint.url`).
    ClientCredentials {
        endpoint: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
}

/// A token source with the token in use.
pub struct OAuthBearer {
    pub source: TokenSource,
    tls: Option<tokio_rustls::TlsConnector>,
    current: Mutex<Option<Token>>,
}

impl std::fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            TokenSource::Unsecured { principal, .. } => format!("unsecured token for {principal}"),
            TokenSource::ClientCredentials {
                endpoint,
                client_id,
                ..
            } => format!("client credentials of {client_id} at {endpoint}"),
        };
        f.debug_struct("OAuthBearer")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Token {
    value: String,
    refresh_at: SystemTime,
}

impl OAuthBearer {
    /// `tls` connects to an https token endpoint.
    pub fn new(source: TokenSource, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self {
            source,
            tls: tls.map(tokio_rustls::TlsConnector::from),
            current: Mutex::new(None),
        }
    }

    /// Who the token speaks for, for logs.
    pub fn principal_hint(&self) -> &str {
        match &self.source {
            TokenSource::Unsecured { principal, .. } => principal,
            TokenSource::ClientCredentials { client_id, .. } => client_id,
        }
    }

    /// The token to send now: the one in use unless most of its lifetime has passed.
    pub async fn token(&self) -> Result<String, String> {
        let now = SystemTime::now();
        if let Some(token) = self.lock().as_ref().filter(|t| now < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let (value, lifetime) = match &self.source {
            TokenSource::Unsecured {
                principal,
                scope,
                lifetime,
            } => (unsecured_token(principal, scope, *lifetime, now), *lifetime),
            TokenSource::ClientCredentials {
                endpoint,
                client_id,
                client_secret,
                scope,
            } => {
                let (token, lifetime) = self
                    .client_credentials(endpoint, client_id, client_secret, scope.as_deref())
                    .await?;
                (token, lifetime)
            }
        };
        let refresh_at = now + lifetime.mul_f64(REFRESH_WINDOW_FACTOR);
        *self.lock() = Some(Token {
            value: value.clone(),
            refresh_at,
        });
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn client_credentials(
        &self,
        endpoint: &str,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Result<(String, Duration), String> {
        let fail = |why: String| format!("the token endpoint {endpoint}: {why}");
        let uri: Uri = endpoint.parse().map_err(|e| fail(format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(self.tls.as_ref().ok_or_else(|| fail("no TLS".into()))?),
            Some("http") => None,
            _ => return Err(fail("only http and https URLs are supported".into())),
        };
        // RFC 6749 2.3.1: the id and secret form-encoded, then Basic.
        let basic = STANDARD.encode(format!(
            "{}:{}",
            form_encode(client_id),
            form_encode(client_secret)
        ));
        let mut body = "grant_type=client_credentials".to_string();
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            body.push_str("&scope=");
            body.push_str(&form_encode(scope));
        }
        let request = HttpRequest {
            method: hyper::Method::POST,
            uri: &uri,
            headers: vec![(hyper::header::AUTHORIZATION, format!("Basic {basic}"))],
            body: Bytes::from(body),
            content_type: Some("application/x-www-form-urlencoded"),
        };
        let strom_http::HttpAnswer {
            status,
            body: answer,
            ..
        } = exchange(request, tls, MAX_TOKEN_RESPONSE_BYTES, TOKEN_FETCH_TIMEOUT)
            .await
            .map_err(fail)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&answer);
            return Err(fail(format!("HTTP status {status}: {}", text.trim())));
        }
        let answer: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        let token = answer
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the answer has no access_token".into()))?;
        // The token's own expiry when it is a JWT, else the answer's expires_in.
        let now = SystemTime::now();
        let lifetime = jwt_expiry(token)
            .and_then(|exp| exp.duration_since(now).ok())
            .or_else(|| {
                answer
                    .get("expires_in")
                    .and_then(|e| e.as_u64())
                    .map(Duration::from_secs)
            })
            .unwrap_or(Duration::from_secs(3600));
        Ok((token.to_string(), lifetime))
    }
}

/// The client's first SASL message carrying `token`.
pub fn initial_response(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The client's answer to an error challenge: it ends the exchange with a failure.
pub const ERROR_CHALLENGE_ANSWER: &[u8] = b"\x01";

fn unsecured_token(
    principal: &str,
    scope: &[String],
    lifetime: Duration,
    now: SystemTime,
) -> String {
    // Whole seconds, rounded down: an `iat` a fraction ahead of the broker's clock is refused.
    let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut claims = serde_json::json!({
        "sub": principal,
        "iat": issued,
        "exp": issued + lifetime.as_secs(),
    });
    if !scope.is_empty() {
        claims["scope"] = serde_json::json!(scope);
    }
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The `exp` claim of a JWT, unverified (only to know when to fetch a new one).
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    (exp.is_finite() && exp > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
}

/// application/x-www-form-urlencoded: unreserved bytes kept, space as `+`, the rest %XX.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Reads the token source from client settings: librdkafka's names
/// (`sasl.oauthbearer.method=oidc` with `sasl.oauthbearer.client.id`,
/// `.client.secret`, `.scope`, `.token.endpoint.url`; otherwise
/// `sasl.oauthbearer.config`) or Kafka's (`sasl.oauthbearer.token.endpoint.url` with
/// the login module's `clientId`, `clientSecret` and `scope`, or its
/// `unsecuredLoginStringClaim_sub`).
pub fn token_source<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    jaas: &[(String, String)],
) -> Result<TokenSource, SecurityError> {
    let invalid = |m: String| SecurityError(m);
    let option = |name: &str| {
        jaas.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let endpoint = get("sasl.oauthbearer.token.endpoint.url").filter(|u| !u.is_empty());
    let oidc = get("sasl.oauthbearer.method").is_some_and(|m| m.eq_ignore_ascii_case("oidc"));
    if oidc || endpoint.is_some() {
        let endpoint = endpoint.ok_or_else(|| {
            invalid("sasl.oauthbearer.method=oidc needs sasl.oauthbearer.token.endpoint.url".into())
        })?;
        let client_id = get("sasl.oauthbearer.client.id").or_else(|| option("clientId"));
        let client_secret =
            get("sasl.oauthbearer.client.secret").or_else(|| option("clientSecret"));
        let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
            return Err(invalid(
                "the client credentials grant needs sasl.oauthbearer.client.id and sasl.oauthbearer.client.secret (or the login module's clientId and clientSecret)".into(),
            ));
        };
        return Ok(TokenSource::ClientCredentials {
            endpoint: endpoint.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            scope: get("sasl.oauthbearer.scope")
                .or_else(|| option("scope"))
                .map(str::to_string),
        });
    }
    let mut principal = option("unsecuredLoginStringClaim_sub").map(str::to_string);
    let mut scope = Vec::new();
    let mut lifetime = Duration::from_secs(3600);
    if let Some(s) = option("unsecuredLoginLifetimeSeconds") {
        lifetime = parse_seconds(s, "unsecuredLoginLifetimeSeconds")?;
    }
    if let Some(config) = get("sasl.oauthbearer.config") {
        for pair in config.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "sasl.oauthbearer.config: expected key=value, got {pair}"
                ))
            })?;
            match key {
                "principal" => principal = Some(value.to_string()),
                "scope" => scope = value.split(',').map(str::to_string).collect(),
                "lifeSeconds" => lifetime = parse_seconds(value, "lifeSeconds")?,
                _ => {}
            }
        }
    }
    match principal.filter(|p| !p.is_empty()) {
        Some(principal) => Ok(TokenSource::Unsecured {
            principal,
            scope,
            lifetime,
        }),
        None => Err(invalid(
            "sasl.mechanism=OAUTHBEARER needs a token source: sasl.oauthbearer.method=oidc with sasl.oauthbearer.token.endpoint.url, sasl.oauthbearer.client.id and sasl.oauthbearer.client.secret; or, for a listener accepting unsecured tokens, sasl.oauthbearer.config=principal=<name>".into(),
        )),
    }
}

fn parse_seconds(text: &str, what: &str) -> Result<Duration, SecurityError> {
    match text.parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(SecurityError(format!(
            "{what}={text} is not a positive number of seconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    #[test]
    fn sources_are_read_with_librdkafkas_and_kafkas_names() {
        let oidc = [
            ("sasl.oauthbearer.method", "oidc"),
            (
                "sasl.oauthbearer.token.endpoint.url",
                "http://127.0.0.1:1/token",
            ),
            ("sasl.oauthbearer.client.id", "cli"),
            ("sasl.oauthbearer.client.secret", "s3cret"),
            ("sasl.oauthbearer.scope", "kafka"),
        ];
        assert_eq!(
            token_source(&settings(&oidc), &[]).unwrap(),
            TokenSource::ClientCredentials {
                endpoint: "http://127.0.0.1:1/token".into(),
                client_id: "cli".into(),
                client_secret: "s3cret".into(),
                scope: Some("kafka".into()),
            }
        );
        let java = [("sasl.oauthbearer.token.endpoint.url", "https://idp/token")];
        let jaas = vec![
            ("clientId".to_string(), "app".to_string()),
            ("clientSecret".to_string(), "pw".to_string()),
        ];
        assert!(matches!(
            token_source(&settings(&java), &jaas).unwrap(),
            TokenSource::ClientCredentials { client_id, scope: None, .. } if client_id == "app"
        ));
        let unsecured = [(
            "sasl.oauthbearer.config",
            "principal=alice scope=a,b lifeSeconds=60",
        )];
        assert_eq!(
            token_source(&settings(&unsecured), &[]).unwrap(),
            TokenSource::Unsecured {
                principal: "alice".into(),
                scope: vec!["a".into(), "b".into()],
                lifetime: Duration::from_secs(60),
            }
        );
        let missing = [("sasl.oauthbearer.method", "oidc")];
        assert!(token_source(&settings(&missing), &[]).is_err());
        assert!(token_source(&settings(&[]), &[]).is_err());
    }

    #[test]
    fn an_unsecured_token_names_its_principal_and_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let token = unsecured_token("alice", &["s".into()], Duration::from_secs(60), now);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"none"}"#
        );
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], serde_json::json!(["s"]));
        assert_eq!(
            jwt_expiry(&token),
            Some(UNIX_EPOCH + Duration::from_secs(1_060))
        );
        assert_eq!(
            initial_response("t.k.n"),
            b"n,,\x01auth=Bearer t.k.n\x01\x01".to_vec()
        );
    }

    #[test]
    fn form_encoding_escapes_reserved_bytes() {
        assert_eq!(form_encode("a b+c/d:é"), "a+b%2Bc%2Fd%3A%C3%A9");
    }
}
