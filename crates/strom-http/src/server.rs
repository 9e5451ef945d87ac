//! The schema registry's and the REST proxy's listeners: `http://` and `https://` URLs,
//! each served with an axum router or service, in plain text or with TLS.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// Set to `https` on every request that came over TLS (whatever the client sent), so that
/// links in answers name the scheme the client used; a plain listener keeps what a load
/// balancer in front of it set.
pub const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// A peer that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request whose headers have not all arrived by then is dropped (slow clients).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed accept (out of descriptors, say), the loop waits this long.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One listener URL of a `*.listeners` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerUrl {
    pub scheme: Scheme,
    pub addr: SocketAddr,
}

impl ListenerUrl {
    /// The URL another process on this host reaches the listener by (an unspecified
    /// address stands for loopback).
    pub fn local_url(&self) -> String {
        if self.addr.ip().is_unspecified() {
            self.url_for("127.0.0.1")
        } else {
            self.url_for(&self.addr.ip().to_string())
        }
    }

    /// The URL naming the listener by `host` (a name, or an address; IPv6 in brackets).
    pub fn url_for(&self, host: &str) -> String {
        if host.contains(':') {
            format!("{}://[{host}]:{}", self.scheme.name(), self.addr.port())
        } else {
            format!("{}://{host}:{}", self.scheme.name(), self.addr.port())
        }
    }
}

/// Comma-separated `http://host:port` and `https://host:port` URLs; empty for none.
pub fn parse_listeners(text: &str) -> Result<Vec<ListenerUrl>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|listener| {
            let (scheme, rest) = if let Some(rest) = listener.strip_prefix("http://") {
                (Scheme::Http, rest)
            } else if let Some(rest) = listener.strip_prefix("https://") {
                (Scheme::Https, rest)
            } else {
                return Err(format!(
                    "{listener}: expected http://HOST:PORT or https://HOST:PORT"
                ));
            };
            let rest = rest.trim_end_matches('/');
            let rest = match rest.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}"),
                None => rest.to_owned(),
            };
            let addr = rest
                .parse::<SocketAddr>()
                .map_err(|e| format!("{listener}: {e}"))?;
            Ok(ListenerUrl { scheme, addr })
        })
        .collect()
}

/// The TLS acceptor of the moment: certificates may be reloaded while serving.
pub type TlsAcceptorSource = Arc<dyn Fn() -> TlsAcceptor + Send + Sync>;

/// An address to serve on, with TLS when it is an https listener.
#[derive(Clone)]
pub struct HttpListener {
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptorSource>,
}

impl HttpListener {
    pub fn plain(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }

    pub fn scheme(&self) -> Scheme {
        if self.tls.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }
}

impl fmt::Debug for HttpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme().name(), self.addr)
    }
}

/// What a listener serves: an axum router, or a service around one.
pub trait HttpService:
    tower_service::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower_service::Service<
            Request,
            Response = Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The most connections one listener serves at once; more peers wait in the kernel's
/// accept backlog until one ends.
pub const MAX_CONNECTIONS: usize = 1024;

/// Serves `app` on `socket`, each connection on its own task (TLS handshake included, so a
/// slow peer holds up no other), at most [`MAX_CONNECTIONS`] at once. A failed accept or
/// handshake only drops that peer.
pub async fn serve<S>(
    socket: TcpListener,
    app: S,
    tls: Option<TlsAcceptorSource>,
) -> std::io::Result<()>
where
    S: HttpService,
{
    serve_at_most(socket, app, tls, MAX_CONNECTIONS).await
}

async fn serve_at_most<S>(
    socket: TcpListener,
    app: S,
    tls: Option<TlsAcceptorSource>,
    max_connections: usize,
) -> std::io::Result<()>
where
    S: HttpService,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(()); // never closed
        };
        let (tcp, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "accepting an http connection failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let acceptor = tls.as_ref().map(|source| source());
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                return serve_connection(tcp, app, peer, false).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => serve_connection(stream, app, peer, true).await,
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
            }
        });
    }
}

/// HTTP/1 on one connection until it ends; `https` marks each request with X-Forwarded-Proto.
async fn serve_connection<IO, S>(io: IO, app: S, peer: SocketAddr, https: bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let mut request = request.map(axum::body::Body::new);
        if https {
            request
                .headers_mut()
                .insert(FORWARDED_PROTO, HeaderValue::from_static("https"));
        }
        let mut app = app.clone();
        async move {
            std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
            app.call(request).await
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        debug!(%peer, error = %e, "http connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_serves_at_most_its_connections_at_once() {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(serve_at_most(socket, app, None, 1));
        let uri: hyper::Uri = format!("http://{addr}/").parse().unwrap();
        let get = || {
            crate::exchange(
                crate::HttpRequest {
                    method: hyper::Method::GET,
                    uri: &uri,
                    headers: Vec::new(),
                    body: bytes::Bytes::new(),
                    content_type: None,
                },
                None,
                64,
                Duration::from_millis(500),
            )
        };
        assert_eq!(get().await.unwrap().body, "ok");
        // An idle peer holds the one slot: the next request waits in the backlog.
        let idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(get().await.unwrap_err().contains("no answer within"));
        drop(idle);
        assert_eq!(get().await.unwrap().body, "ok");
    }

    #[test]
    fn listeners_are_http_or_https_urls() {
        let parsed = parse_listeners(" http://127.0.0.1:8081, https://localhost:8443/ ,").unwrap();
        assert_eq!(
            parsed,
            vec![
                ListenerUrl {
                    scheme: Scheme::Http,
                    addr: "127.0.0.1:8081".parse().unwrap()
                },
                ListenerUrl {
                    scheme: Scheme::Https,
                    addr: "127.0.0.1:8443".parse().unwrap()
                },
            ]
        );
        assert_eq!(parsed[1].local_url(), "https://127.0.0.1:8443");
        assert_eq!(
            parsed[1].url_for("registry.example"),
            "https://registry.example:8443"
        );
        let any = parse_listeners("https://0.0.0.0:1").unwrap();
        assert_eq!(any[0].local_url(), "https://127.0.0.1:1");
        let v6 = parse_listeners("http://[::1]:2").unwrap();
        assert_eq!(v6[0].local_url(), "http://[::1]:2");
        assert!(parse_listeners("").unwrap().is_empty());
        assert!(parse_listeners("ftp://127.0.0.1:1").is_err());
        assert!(parse_listeners("127.0.0.1:1").is_err());
        assert!(parse_listeners("http://nohost").is_err());
    }
}
