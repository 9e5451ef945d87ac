//! A small client for a schema registry with Confluent's REST API (strom's own, or
//! Confluent's), over http or https (`strom-http`'s exchange: one connection per request).
//! Errors carry the registry's `error_code` and `message` and the HTTP status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, Uri};
use serde_json::Value;
use strom_http::{exchange, HttpRequest};

use crate::error::{Result, SerdeError};

/// The registry's content type, sent and accepted.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Connecting, the request and the answer, together.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer larger than this is refused (schemas are small).
const MAX_BODY_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct RegistryClient {
    url: String,
    /// `scheme://authority` of the URL.
    origin: String,
    /// The URL's path without its trailing slash ("" for the root).
    base_path: String,
    /// Set for an https URL.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.url)
            .finish()
    }
}

impl RegistryClient {
    /// A client of the registry at `url`; an https URL needs `tls` (what to trust, and
    /// the client certificate if the registry asks for one).
    pub fn new(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| SerdeError::Url(format!("invalid schema registry URL '{url}': {e}")))?;
        let tls = match (uri.scheme_str(), tls) {
            (Some("http"), _) => None,
            (Some("https"), Some(config)) => Some(tokio_rustls::TlsConnector::from(config)),
            (Some("https"), None) => {
                return Err(SerdeError::Url(format!(
                    "schema registry URL '{url}': https needs a TLS configuration"
                )))
            }
            _ => {
                return Err(SerdeError::Url(format!(
                    "schema registry URL '{url}': expected http://HOST:PORT or https://HOST:PORT"
                )))
            }
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| SerdeError::Url(format!("schema registry URL '{url}' has no host")))?;
        let origin = format!("{}://{authority}", uri.scheme_str().unwrap_or("http"));
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url: url.to_owned(),
            origin,
            base_path,
            tls,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    /// `path` starts with '/' and is already encoded (see [`segment`]).
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let transport = |why: String| SerdeError::Transport {
            url: self.url.clone(),
            why,
        };
        let uri: Uri = format!("{}{}{path}", self.origin, self.base_path)
            .parse()
            .map_err(|e| transport(format!("{e}")))?;
        let payload = body
            .map(|body| serde_json::to_vec(body).map(Bytes::from))
            .transpose()
            .map_err(|e| transport(e.to_string()))?;
        let request = HttpRequest {
            method,
            uri: &uri,
            headers: vec![(hyper::header::ACCEPT, CONTENT_TYPE.to_owned())],
            content_type: payload.as_ref().map(|_| CONTENT_TYPE),
            body: payload.unwrap_or_default(),
        };
        let answer = exchange(request, self.tls.as_ref(), MAX_BODY_BYTES, REQUEST_TIMEOUT)
            .await
            .map_err(transport)?;
        let (status, bytes) = (answer.status, answer.body);
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return parsed.ok_or_else(|| SerdeError::Transport {
                url: self.url.clone(),
                why: format!(
                    "HTTP {status} with a body that is not JSON: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
            });
        }
        let field = |v: &Option<Value>, name: &str| v.as_ref().and_then(|v| v.get(name)).cloned();
        let error_code = field(&parsed, "error_code")
            .and_then(|c| c.as_i64())
            .unwrap_or(status.as_u16() as i64);
        let message = field(&parsed, "message")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    text
                }
            });
        Err(SerdeError::Registry {
            status: status.as_u16(),
            error_code,
            message,
        })
    }
}

/// A path segment (a subject name) percent-encoded: everything but RFC 3986's unreserved
/// characters, so that contexts (`:.ctx:subject`), slashes and spaces survive.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_unreserved_characters_only() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment(":.ctx:a b/c"), "%3A.ctx%3Aa%20b%2Fc");
        assert_eq!(segment("ü"), "%C3%BC");
    }

    #[test]
    fn urls_are_http_or_https_with_a_tls_config() {
        let c = RegistryClient::new("http://127.0.0.1:8081/", None).unwrap();
        assert_eq!(
            (c.origin.as_str(), c.base_path.as_str()),
            ("http://127.0.0.1:8081", "")
        );
        assert!(c.tls.is_none());
        let c = RegistryClient::new("http://[::1]/registry/", None).unwrap();
        assert_eq!(
            (c.origin.as_str(), c.base_path.as_str()),
            ("http://[::1]", "/registry")
        );
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let c = RegistryClient::new("https://h:1", Some(Arc::new(config))).unwrap();
        assert_eq!(c.origin, "https://h:1");
        assert!(c.tls.is_some());
        assert!(RegistryClient::new("https://h:1", None).is_err());
        assert!(RegistryClient::new("h:1", None).is_err());
        assert!(RegistryClient::new("http:///x", None).is_err());
    }

    #[test]
    fn errors_show_confluents_code_and_message() {
        let e = SerdeError::Registry {
            status: 404,
            error_code: 40401,
            message: "Subject 's' not found.".into(),
        };
        assert_eq!(e.to_string(), "error_code 40401: Subject 's' not found.");
    }
}
