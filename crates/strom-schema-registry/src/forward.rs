//! Writes sent on to the elected leader: the request as it came (method, path and query,
//! content type, accept, body) over one HTTP/1 connection, and the leader's answer as it is.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Answer, String> {
    tokio::time::timeout(
        TIMEOUT,
        exchange(leader_url, method, path_and_query, headers, body),
    )
    .await
    .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
}

async fn exchange(
    leader_url: &str,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Answer, String> {
    let uri: Uri = format!("{}{}", leader_url.trim_end_matches('/'), path_and_query)
        .parse()
        .map_err(|e| format!("{e}"))?;
    let authority = uri
        .authority()
        .ok_or("no host in the leader's URL")?
        .clone();
    let tcp = TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(header::HOST, authority.as_str())
        .header(FORWARDED_HEADER, "1");
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}
