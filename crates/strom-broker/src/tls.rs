//! TLS on a listener with rustls: the server config built from the listener's
//! PEM key and trust stores, rebuilt when those files change (new connections
//! get the new certificates; open ones keep theirs), and the Kafka principal of
//! a client certificate.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use strom_security::KafkaPrincipal;
use tracing::{info, warn};

use crate::security_config::{ClientAuth, Keystore, PemSource, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what}: {why}")]
    Pem { what: String, why: String },
    #[error("ssl.enabled.protocols {0:?} names no protocol rustls serves (TLSv1.2, TLSv1.3)")]
    NoProtocol(Vec<String>),
    #[error("ssl.cipher.suites {0:?} names no suite rustls serves")]
    NoCipherSuite(Vec<String>),
    #[error("{0}")]
    Rustls(String),
}

/// A TLS listener's current server config and how to rebuild it.
pub struct TlsListener {
    pub listener: String,
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Option<FileStamp>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl TlsListener {
    /// Reads the stores and builds the first config (blocking file reads: at start).
    pub fn new(listener: &str, settings: TlsSettings) -> Result<Self, TlsError> {
        let stamps = stamps(&settings);
        let config = server_config(&settings)?;
        Ok(Self {
            listener: listener.to_string(),
            settings,
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Rebuilds the config if a store file changed since the last look (blocking).
    /// A store that fails to load keeps the old config and is tried again once its
    /// files change again.
    pub fn reload_if_changed(&self) {
        let now = stamps(&self.settings);
        {
            let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return;
            }
            *seen = now;
        }
        match server_config(&self.settings) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                info!(listener = %self.listener, "reloaded TLS key and trust stores");
            }
            Err(e) => {
                warn!(listener = %self.listener, error = %e, "TLS stores changed but cannot be loaded; keeping the previous ones")
            }
        }
    }

    /// The principal of a client that presented `certificates` (end entity first).
    pub fn principal_of(
        &self,
        certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<KafkaPrincipal, strom_security::ssl_principal::SslPrincipalError> {
        match certificates.and_then(|c| c.first()) {
            None => Ok(KafkaPrincipal::anonymous()),
            Some(cert) => {
                let dn = strom_security::ssl_principal::subject_distinguished_name(cert)?;
                Ok(KafkaPrincipal::user(
                    self.settings.principal_mapper.name_for(&dn)?,
                ))
            }
        }
    }
}

fn watched_files(settings: &TlsSettings) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Keystore::File(path) = &settings.keystore {
        files.push(path.clone());
    }
    if let Some(PemSource::File(path)) = &settings.truststore {
        files.push(path.clone());
    }
    files
}

fn stamps(settings: &TlsSettings) -> Vec<Option<FileStamp>> {
    watched_files(settings)
        .iter()
        .map(|path| {
            std::fs::metadata(path).ok().map(|m| FileStamp {
                modified: m.modified().ok(),
                len: m.len(),
            })
        })
        .collect()
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.clone(),
        error,
    })
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.into(),
            why: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.into(),
            why: "no CERTIFICATE in it".into(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: what.into(),
        why: format!("{e} (an unencrypted PKCS#8, PKCS#1 or SEC1 PRIVATE KEY is needed)"),
    })
}

fn keystore(
    settings: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    match &settings.keystore {
        Keystore::File(path) => {
            let pem = read(path)?;
            let what = format!("ssl.keystore.location {}", path.display());
            Ok((certificates(&pem, &what)?, private_key(&pem, &what)?))
        }
        Keystore::Inline { chain, key } => Ok((
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            private_key(key.as_bytes(), "ssl.keystore.key")?,
        )),
    }
}

pub(crate) fn trust_roots(source: &PemSource) -> Result<RootCertStore, TlsError> {
    let (pem, what) = match source {
        PemSource::File(path) => (
            read(path)?,
            format!("ssl.truststore.location {}", path.display()),
        ),
        PemSource::Inline(text) => (
            text.as_bytes().to_vec(),
            "ssl.truststore.certificates".into(),
        ),
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&pem, &what)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            what: what.clone(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Kafka (Java) names TLS 1.3 suites `TLS_AES_...`; rustls prints them `TLS13_AES_...`.
fn java_suite_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn provider(settings: &TlsSettings) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites.retain(|s| {
            settings
                .cipher_suites
                .iter()
                .any(|n| *n == java_suite_name(s))
        });
        if provider.cipher_suites.is_empty() {
            return Err(TlsError::NoCipherSuite(settings.cipher_suites.clone()));
        }
    }
    Ok(provider)
}

fn protocol_versions(
    settings: &TlsSettings,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let versions: Vec<_> = settings
        .protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    if versions.is_empty() {
        return Err(TlsError::NoProtocol(settings.protocols.clone()));
    }
    Ok(versions)
}

/// The rustls server config of a listener's settings (reads its PEM files).
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(provider(settings)?);
    let versions = protocol_versions(settings)?;
    let (chain, key) = keystore(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (settings.client_auth, &settings.truststore) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(source)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(trust_roots(source)?),
                provider,
            );
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?,
            )
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(format!("the keystore's key and certificate: {e}")))
}

/// Looks at each TLS listener's files every `reload_check_interval` and rebuilds
/// its config when they change.
pub async fn watch_for_changes(listener: Arc<TlsListener>) {
    let mut interval = tokio::time::interval(listener.settings.reload_check_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let listener = listener.clone();
        let _ = tokio::task::spawn_blocking(move || listener.reload_if_changed()).await;
    }
}
