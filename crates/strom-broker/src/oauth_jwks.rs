//! The JWKS an OAUTHBEARER listener checks signatures against
//! (`sasl.oauthbearer.jwks.endpoint.url`), as Kafka's resolvers keep it: a `file:` set is
//! read once at start; an `http(s):` set is fetched at start (a failure stops the start),
//! then again every `sasl.oauthbearer.jwks.endpoint.refresh.ms`, and early when a token
//! names a key id the set lacks (once a minute per id). A failed refresh is retried with
//! backoff and otherwise keeps the keys in use. Fetches run as tasks on the runtime and
//! the validator only reads the cached set, so no worker ever waits on the network.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::Uri;
use strom_http::{exchange, HttpRequest};
use strom_security::sasl::oauthbearer::jwt::{KeySet, MissingKeyIds, VerificationKeys};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::security_config::PemSource;

/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Connecting, the TLS handshake, the request and the body, together.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("The OAuth configuration option sasl.oauthbearer.jwks.endpoint.url contains a file ({0}) that doesn't exist")]
    FileMissing(PathBuf),
    #[error("The OAuth configuration option sasl.oauthbearer.jwks.endpoint.url references a directory ({0}), not a file")]
    FileIsDirectory(PathBuf),
    #[error("reading {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("fetching {url}: {why}")]
    Fetch { url: String, why: String },
    #[error("the JWKS from {url}: {why}")]
    Parse { url: String, why: String },
    #[error("the truststore for {url}: {why}")]
    Trust { url: String, why: String },
}

/// Where the set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    File(PathBuf),
    Http(Uri),
}

/// How an http(s) set is refreshed (Kafka's sasl.oauthbearer.jwks.endpoint.* settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub interval: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

pub struct Jwks {
    /// The URL as configured, for logs.
    pub url: String,
    location: JwksLocation,
    refresh: Refresh,
    /// The CAs an https endpoint must chain to (the login module's `ssl.truststore.*`
    /// options); the system's roots otherwise.
    truststore: Option<PemSource>,
    keys: RwLock<Arc<KeySet>>,
    missing: Mutex<MissingKeyIds>,
    expedite: Notify,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    pub fn new(
        url: String,
        location: JwksLocation,
        refresh: Refresh,
        truststore: Option<PemSource>,
    ) -> Self {
        Self {
            url,
            location,
            refresh,
            truststore,
            keys: RwLock::new(Arc::new(KeySet::default())),
            missing: Mutex::new(MissingKeyIds::default()),
            expedite: Notify::new(),
        }
    }

    fn install(&self, set: KeySet) {
        if set.skipped > 0 {
            warn!(url = %self.url, skipped = set.skipped, "JWKS entries that are not public signature keys of a known algorithm are ignored");
        }
        if let Ok(mut missing) = self.missing.lock() {
            missing.found(&set);
        }
        let key_ids = set.key_ids();
        if let Ok(mut keys) = self.keys.write() {
            *keys = Arc::new(set);
        }
        info!(url = %self.url, ?key_ids, "JWKS loaded");
    }
}

impl VerificationKeys for Jwks {
    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .map(|keys| keys.clone())
            .unwrap_or_default()
    }

    fn key_missing(&self, key_id: &str, now_ms: i64) {
        let refresh = matches!(self.location, JwksLocation::Http(_))
            && self
                .missing
                .lock()
                .is_ok_and(|mut missing| missing.should_refresh(key_id, now_ms));
        if refresh {
            info!(url = %self.url, key_id, "no JWKS key for a token's key id; refreshing early");
            self.expedite.notify_one();
        }
    }
}

/// Loads the set for the first time and, for an http(s) endpoint, returns the task that
/// keeps it current.
pub async fn start(jwks: Arc<Jwks>) -> Result<Option<tokio::task::JoinHandle<()>>, JwksError> {
    match jwks.location.clone() {
        JwksLocation::File(path) => {
            let bytes = read_file(&path).await?;
            let set = KeySet::parse(&bytes).map_err(|why| JwksError::Parse {
                url: jwks.url.clone(),
                why,
            })?;
            jwks.install(set);
            Ok(None)
        }
        JwksLocation::Http(uri) => {
            let tls = if uri.scheme_str() == Some("https") {
                Some(tls_connector(&jwks).await?)
            } else {
                None
            };
            let fetcher = Fetcher { uri, tls };
            let set = fetcher.key_set(&jwks.url).await?;
            jwks.install(set);
            info!(url = %jwks.url, interval_ms = jwks.refresh.interval.as_millis() as u64, "JWKS refresh task started");
            Ok(Some(tokio::spawn(keep_current(jwks, fetcher))))
        }
    }
}

async fn keep_current(jwks: Arc<Jwks>, fetcher: Fetcher) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(jwks.refresh.interval) => {}
            _ = jwks.expedite.notified() => {}
        }
        // Kafka's Retry: backoff doubling from retry.backoff.ms while the waits stay
        // within retry.backoff.max.ms.
        let mut waited = Duration::ZERO;
        let mut backoff = jwks.refresh.retry_backoff;
        loop {
            match fetcher.key_set(&jwks.url).await {
                Ok(set) => {
                    jwks.install(set);
                    break;
                }
                Err(e) if waited + backoff > jwks.refresh.retry_backoff_max => {
                    warn!(url = %jwks.url, error = %e, "JWKS refresh failed; keeping the keys in use");
                    break;
                }
                Err(e) => {
                    warn!(url = %jwks.url, error = %e, retry_in_ms = backoff.as_millis() as u64, "JWKS refresh failed; retrying");
                    tokio::time::sleep(backoff).await;
                    waited += backoff;
                    backoff *= 2;
                }
            }
        }
    }
}

async fn read_file(path: &PathBuf) -> Result<Vec<u8>, JwksError> {
    match tokio::fs::metadata(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(JwksError::FileMissing(path.clone()))
        }
        Ok(m) if m.is_dir() => return Err(JwksError::FileIsDirectory(path.clone())),
        _ => {}
    }
    tokio::fs::read(path)
        .await
        .map_err(|error| JwksError::Read {
            path: path.clone(),
            error,
        })
}

async fn tls_connector(jwks: &Jwks) -> Result<tokio_rustls::TlsConnector, JwksError> {
    let trust = |why: String| JwksError::Trust {
        url: jwks.url.clone(),
        why,
    };
    let truststore = jwks.truststore.clone();
    // Reading the PEM file or the system's store is blocking file I/O.
    let roots = tokio::task::spawn_blocking(move || match truststore {
        Some(source) => crate::tls::trust_roots(&source).map_err(|e| e.to_string()),
        None => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no CA certificates in the system's store ({:?}); set ssl.truststore.location in the OAuthBearerLoginModule's JAAS options",
                    found.errors
                ));
            }
            Ok(roots)
        }
    })
    .await
    .map_err(|e| trust(e.to_string()))?
    .map_err(trust)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| trust(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

struct Fetcher {
    uri: Uri,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Fetcher {
    async fn key_set(&self, url: &str) -> Result<KeySet, JwksError> {
        let fetch = |why: String| JwksError::Fetch {
            url: url.to_string(),
            why,
        };
        let request = HttpRequest {
            method: hyper::Method::GET,
            uri: &self.uri,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            content_type: None,
        };
        let strom_http::HttpAnswer { status, body, .. } =
            exchange(request, self.tls.as_ref(), MAX_JWKS_BYTES, FETCH_TIMEOUT)
                .await
                .map_err(fetch)?;
        if status != hyper::StatusCode::OK {
            return Err(fetch(format!("HTTP status {status}")));
        }
        KeySet::parse(&body).map_err(|why| JwksError::Parse {
            url: url.to_string(),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An endpoint that answers every request with `response`; returns its URL.
    async fn endpoint(response: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(&response).await;
                });
            }
        });
        format!("http://{addr}/jwks")
    }

    fn jwks(url: &str) -> Arc<Jwks> {
        let location = if let Some(path) = url.strip_prefix("file://") {
            JwksLocation::File(path.into())
        } else {
            JwksLocation::Http(url.parse().unwrap())
        };
        Arc::new(Jwks::new(
            url.into(),
            location,
            Refresh {
                interval: Duration::from_secs(3600),
                retry_backoff: Duration::from_millis(1),
                retry_backoff_max: Duration::from_millis(1),
            },
            None,
        ))
    }

    fn ok(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn a_jwks_is_fetched_and_bad_answers_fail_the_start() {
        let key = r#"{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let set = jwks(&endpoint(ok(&format!(r#"{{"keys":[{key}]}}"#))).await);
        let task = start(set.clone()).await.unwrap();
        assert_eq!(set.current().key_ids(), vec!["k1".to_string()]);
        task.unwrap().abort();
        let missing =
            jwks(&endpoint(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()).await);
        let err = start(missing).await.unwrap_err().to_string();
        assert!(err.contains("HTTP status 404"), "{err}");
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_JWKS_BYTES + 1
        );
        let mut response = huge.into_bytes();
        response.resize(response.len() + MAX_JWKS_BYTES + 1, b' ');
        let err = start(jwks(&endpoint(response).await))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("reading the body"), "{err}");
        let err = start(jwks(&endpoint(ok("{}")).await))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no \"keys\" array"), "{err}");
        let err = start(jwks("file:///nonexistent/jwks.json"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("that doesn't exist"), "{err}");
    }
}
