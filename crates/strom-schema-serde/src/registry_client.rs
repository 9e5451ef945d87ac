//! A small client for a schema registry with Confluent's REST API (strom's own, or
//! Confluent's), over plain http with hyper: one connection per request. Errors carry the
//! registry's `error_code` and `message` and the HTTP status.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::error::{Result, SerdeError};

/// The registry's content type, sent and accepted.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Connecting, the request and the answer, together.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer larger than this is refused (schemas are small).
const MAX_BODY_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct RegistryClient {
    url: String,
    host: String,
    port: u16,
    authority: String,
    /// The URL's path without its trailing slash ("" for the root).
    base_path: String,
}

impl RegistryClient {
    pub fn new(url: &str) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .map_err(|e| SerdeError::Url(format!("invalid schema registry URL '{url}': {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(SerdeError::Url(format!(
                    "schema registry URL '{url}': https is not supported yet, only http"
                )))
            }
            _ => {
                return Err(SerdeError::Url(format!(
                    "schema registry URL '{url}': expected http://HOST:PORT"
                )))
            }
        }
        let host = uri
            .host()
            .ok_or_else(|| SerdeError::Url(format!("schema registry URL '{url}' has no host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url: url.to_owned(),
            host,
            port,
            authority,
            base_path,
        })
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
        let (status, bytes) =
            tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, body))
                .await
                .map_err(|_| {
                    transport(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))
                })?
                .map_err(transport)?;
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

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(connection);
        let result = async {
            let mut request = hyper::Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.base_path))
                .header(hyper::header::HOST, &self.authority)
                .header(hyper::header::ACCEPT, CONTENT_TYPE);
            let payload = match body {
                Some(body) => {
                    request = request.header(hyper::header::CONTENT_TYPE, CONTENT_TYPE);
                    Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?)
                }
                None => Bytes::new(),
            };
            let request = request
                .body(Full::new(payload))
                .map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((status, body))
        }
        .await;
        driver.abort();
        result
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
    fn urls_are_plain_http() {
        let c = RegistryClient::new("http://127.0.0.1:8081/").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8081));
        assert_eq!(c.base_path, "");
        let c = RegistryClient::new("http://[::1]/registry/").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 80));
        assert_eq!(c.base_path, "/registry");
        assert!(RegistryClient::new("https://h:1").is_err());
        assert!(RegistryClient::new("h:1").is_err());
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
