//! TLS for client connections (rustls on ring, as the broker): the client
//! config built from PEM files, and the stream a connection reads and
//! writes, plain or TLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::security::{SecurityError, TlsConfig};

fn read(path: &Path, what: &str) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path)
        .map_err(|e| SecurityError(format!("{what}: cannot read {}: {e}", path.display())))
}

fn certificates(
    pem: &[u8],
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SecurityError(format!(
            "{what} {}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(
    pem: &[u8],
    path: &Path,
    what: &str,
) -> Result<PrivateKeyDer<'static>, SecurityError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        SecurityError(format!(
            "{what} {}: no usable unencrypted PEM private key: {e}",
            path.display()
        ))
    })
}

/// The rustls client config for `settings`: trusted CAs (the system's when
/// none are named), the client certificate if any, hostname checks unless
/// turned off.
pub fn client_config(settings: &TlsConfig) -> Result<rustls::ClientConfig, SecurityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &settings.ca_location {
        Some(path) => {
            let pem = read(path, "ssl.ca.location")?;
            for cert in certificates(&pem, path, "ssl.ca.location")? {
                roots.add(cert).map_err(|e| {
                    SecurityError(format!("ssl.ca.location {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // Unparsable system certificates are skipped, as other clients do.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(SecurityError(
                    "no trusted CA: set ssl.ca.location (no system CA certificates were found)"
                        .to_owned(),
                ));
            }
        }
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| SecurityError(format!("TLS trust store: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname {
        verifier
    } else {
        Arc::new(AnyHostname(verifier))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SecurityError(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let identity = match (
        &settings.keystore_location,
        &settings.certificate_location,
        &settings.key_location,
    ) {
        (Some(keystore), _, _) => {
            let pem = read(keystore, "ssl.keystore.location")?;
            Some((
                certificates(&pem, keystore, "ssl.keystore.location")?,
                private_key(&pem, keystore, "ssl.keystore.location")?,
            ))
        }
        (None, Some(cert), Some(key)) => {
            let cert_pem = read(cert, "ssl.certificate.location")?;
            let key_pem = read(key, "ssl.key.location")?;
            Some((
                certificates(&cert_pem, cert, "ssl.certificate.location")?,
                private_key(&key_pem, key, "ssl.key.location")?,
            ))
        }
        _ => None,
    };
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| SecurityError(format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain must still
/// lead to a trusted CA, but the certificate need not name the host. The
/// webpki verifier checks the chain before the name, so a name mismatch
/// means the chain was good.
#[derive(Debug)]
struct AnyHostname(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The host part of `host:port` (IPv6 in brackets) as a TLS server name.
pub fn server_name(addr: &str) -> Option<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// A connection's byte stream.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The reading half of a split [`Stream`].
pub enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The writing half of a split [`Stream`].
pub enum WriteHalf {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

impl Stream {
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_address() {
        assert_eq!(
            server_name("127.0.0.1:9093"),
            Some(ServerName::try_from("127.0.0.1").unwrap())
        );
        assert_eq!(
            server_name("broker-1.example.com:9093"),
            Some(ServerName::try_from("broker-1.example.com").unwrap())
        );
        assert_eq!(
            server_name("[::1]:9093"),
            Some(ServerName::try_from("::1").unwrap())
        );
        assert_eq!(server_name("bad host:1"), None);
    }

    /// A self-signed certificate for `name`, written as a PEM file (its own CA).
    fn self_signed(name: &str) -> (rcgen::Certificate, rcgen::KeyPair, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let path = std::env::temp_dir().join(format!("strom-client-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, cert.pem()).unwrap();
        (cert, key, path)
    }

    async fn handshake(config: rustls::ClientConfig, addr: std::net::SocketAddr) -> io::Result<()> {
        let tcp = TcpStream::connect(addr).await?;
        let name = server_name(&addr.to_string()).unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map(drop)
    }

    #[tokio::test]
    async fn hostname_checks_can_be_turned_off_but_the_chain_is_still_checked() {
        // The broker's certificate names another host than the one connected to.
        let (cert, key, ca) = self_signed("other.example");
        let (_, _, rogue_ca) = self_signed("other.example");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let server_task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        let settings = |ca: &Path, verify_hostname| TlsConfig {
            ca_location: Some(ca.to_path_buf()),
            verify_hostname,
            ..TlsConfig::default()
        };
        let err = handshake(client_config(&settings(&ca, true)).unwrap(), addr)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("certificate not valid for name \"127.0.0.1\""),
            "{err}"
        );
        handshake(client_config(&settings(&ca, false)).unwrap(), addr)
            .await
            .unwrap();
        let err = handshake(client_config(&settings(&rogue_ca, false)).unwrap(), addr)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("UnknownIssuer") || err.to_string().contains("BadSignature"),
            "{err}"
        );
        server_task.abort();
        let _ = std::fs::remove_file(ca);
        let _ = std::fs::remove_file(rogue_ca);
    }

    #[test]
    fn missing_files_are_named() {
        let settings = TlsConfig {
            ca_location: Some("/nonexistent/ca.pem".into()),
            verify_hostname: true,
            ..TlsConfig::default()
        };
        let err = client_config(&settings).unwrap_err().to_string();
        assert!(
            err.starts_with("ssl.ca.location: cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
