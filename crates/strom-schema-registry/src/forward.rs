//! Writes sent on to the elected leader: the request as it came (method, path and query,
//! content type, accept, body) over one HTTP/1 connection (TLS for an https leader), and the
//! leader's answer as it is.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use bytes::Bytes;
use strom_http::{exchange, HttpRequest};

/// Marks a forwarded request, which is never forwarded again.
pub const FORWARDED_HEADER: &str = "x-strom-registry-forwarded";
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ANSWER_BYTES: usize = 64 << 20;

pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

pub async fn forward(
    leader_url: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Answer, String> {
    let uri: Uri = format!("{}{}", leader_url.trim_end_matches('/'), path_and_query)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let tls = match (uri.scheme_str(), tls) {
        (Some("https"), None) => {
            return Err("the leader's URL is https and this registry has no TLS settings".into())
        }
        (Some("https"), tls) => tls,
        _ => None,
    };
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let request = HttpRequest {
        method,
        uri: &uri,
        headers: vec![
            (HeaderName::from_static(FORWARDED_HEADER), "1".to_owned()),
            // No Accept is Accept: */* to the registry's negotiation.
            (
                header::ACCEPT,
                text(&header::ACCEPT).unwrap_or("*/*").to_owned(),
            ),
        ],
        body,
        content_type: text(&header::CONTENT_TYPE),
    };
    let answer = exchange(request, tls, MAX_ANSWER_BYTES, TIMEOUT).await?;
    Ok(Answer {
        status: answer.status,
        content_type: answer.content_type,
        body: answer.body,
    })
}
