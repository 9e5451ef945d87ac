//! One bounded HTTP/1.1 exchange over plain TCP or TLS, on a new connection: an OAuth
//! token endpoint, an OAUTHBEARER listener's JWKS endpoint, a schema registry.
//! The body read is capped and the whole exchange has a deadline.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A request to send. `Accept` is `application/json` unless `headers` name another.
pub struct HttpRequest<'a> {
    pub method: Method,
    pub uri: &'a Uri,
    pub headers: Vec<(HeaderName, String)>,
    /// Empty for none.
    pub body: Bytes,
    pub content_type: Option<&'a str>,
}

/// What came back.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

/// Sends `request` to its URI's host (TLS through `tls` for https) and reads the
/// answer's body up to `max_body_bytes`; connecting, TLS, the request and the body
/// together must finish within `timeout`.
pub async fn exchange(
    request: HttpRequest<'_>,
    tls: Option<&tokio_rustls::TlsConnector>,
    max_body_bytes: usize,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    tokio::time::timeout(timeout, connect_and_send(request, tls, max_body_bytes))
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

async fn connect_and_send(
    request: HttpRequest<'_>,
    tls: Option<&tokio_rustls::TlsConnector>,
    max_body_bytes: usize,
) -> Result<HttpAnswer, String> {
    let host = request.uri.host().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = request
        .uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    match tls {
        None => send(tcp, request, max_body_bytes).await,
        Some(connector) => {
            let name = rustls_pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| format!("{host}: {e}"))?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
            send(stream, request, max_body_bytes).await
        }
    }
}

async fn send<S>(
    stream: S,
    request: HttpRequest<'_>,
    max_body_bytes: usize,
) -> Result<HttpAnswer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let result = async {
        let path = request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let authority = request
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(path)
            .header(HOST, authority);
        if !request.headers.iter().any(|(name, _)| name == ACCEPT) {
            builder = builder.header(ACCEPT, "application/json");
        }
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        if let Some(content_type) = request.content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        let request = builder
            .body(Full::new(request.body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let body = Limited::new(response.into_body(), max_body_bytes)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok(HttpAnswer {
            status,
            content_type,
            body,
        })
    }
    .await;
    driver.abort();
    result
}
