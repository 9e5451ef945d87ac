//! HTTP for strom's services, over plain TCP or TLS (it depends on no strom crate):
//! `client`, one bounded exchange on a new connection (OAuth token and JWKS endpoints,
//! schema registries), and `server`, the registry's and the REST proxy's listeners.

pub mod client;
pub mod server;

pub use client::{exchange, HttpAnswer, HttpRequest};
pub use server::{parse_listeners, serve, HttpListener, ListenerUrl, Scheme, TlsAcceptorSource};

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::post;
    use bytes::Bytes;
    use hyper::{Method, StatusCode, Uri};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    /// A self-signed certificate for 127.0.0.1: the server's config and a client config trusting it.
    fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    async fn echo_server(tls: Option<TlsAcceptorSource>) -> std::net::SocketAddr {
        let app = axum::Router::new().route(
            "/echo",
            post(|headers: axum::http::HeaderMap, body: Bytes| async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                (
                    StatusCode::CREATED,
                    [("content-type", "text/x-echo")],
                    format!(
                        "{}|{}|{}",
                        header("accept"),
                        header("x-forwarded-proto"),
                        String::from_utf8_lossy(&body)
                    ),
                )
            }),
        );
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(serve(socket, app, tls));
        addr
    }

    async fn post_echo(
        addr: std::net::SocketAddr,
        scheme: &str,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> Result<HttpAnswer, String> {
        let uri: Uri = format!("{scheme}://127.0.0.1:{}/echo", addr.port())
            .parse()
            .unwrap();
        let request = HttpRequest {
            method: Method::POST,
            uri: &uri,
            headers: vec![
                (hyper::header::ACCEPT, "text/plain".to_owned()),
                (server::FORWARDED_PROTO, "gopher".to_owned()),
            ],
            body: Bytes::from_static(b"ping"),
            content_type: Some("text/plain"),
        };
        exchange(request, tls, 1 << 10, Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn a_router_answers_over_tls_and_over_plain_http() {
        let (server, client) = tls_pair();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let https = echo_server(Some(Arc::new(move || acceptor.clone()))).await;
        let connector = tokio_rustls::TlsConnector::from(client);
        let answer = post_echo(https, "https", Some(&connector)).await.unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
        assert_eq!(answer.content_type.unwrap(), "text/x-echo");
        assert_eq!(answer.body, Bytes::from_static(b"text/plain|https|ping"));

        // Plain text to the TLS listener gets no HTTP answer, and the listener goes on serving.
        assert!(post_echo(https, "http", None).await.is_err());
        let again = post_echo(https, "https", Some(&connector)).await.unwrap();
        assert_eq!(again.body, Bytes::from_static(b"text/plain|https|ping"));

        let plain = echo_server(None).await;
        let answer = post_echo(plain, "http", None).await.unwrap();
        assert_eq!(
            (answer.status, answer.body),
            (
                StatusCode::CREATED,
                Bytes::from_static(b"text/plain|gopher|ping")
            )
        );
    }
}
