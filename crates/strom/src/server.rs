//! `strom server`: broker configs by Kafka name from a TOML file, then
//! `STROM_*` environment variables, then `--set` flags (each overriding the
//! one before), turned into a typed `BrokerConfig`; then the broker runs
//! until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use strom_broker::BrokerConfig;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// A TOML file of Kafka broker configs, e.g. `"log.dirs" = "./data"`.
    #[arg(long, short = 'c', env = "STROM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Any broker config as NAME=VALUE with Kafka's names (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
}

pub fn run(args: ServerArgs) -> ExitCode {
    init_logging();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("strom server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("STROM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Raises the soft open-file limit to the hard one, as Kafka operators do with `ulimit -n`:
/// sockets and segment files share it.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::info!(
                from = soft,
                to = limit.rlim_max,
                "raised the open-file limit"
            );
        }
    }
}

fn serve(args: ServerArgs) -> anyhow::Result<()> {
    raise_open_file_limit();
    let mut settings = gather(args.config.as_deref(), std::env::vars(), &args.overrides)?;
    let registry_listeners =
        listener_urls(&mut settings, REGISTRY_LISTENERS, DEFAULT_REGISTRY_LISTENER)?;
    let proxy_listeners = listener_urls(&mut settings, PROXY_LISTENERS, DEFAULT_PROXY_LISTENER)?;
    let registry_host = settings
        .remove(REGISTRY_HOST_NAME)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    // The proxy's registry: this node's own unless told otherwise, by its advertised host when
    // one is set (the name its certificate holds).
    let proxy_registry_url = settings
        .remove(PROXY_REGISTRY_URL)
        .or_else(|| {
            registry_listeners.first().map(|l| match &registry_host {
                Some(host) => l.url_for(host),
                None => l.local_url(),
            })
        })
        .filter(|url| !url.is_empty());
    let registry_tls = ServiceTls::take(&mut settings, REGISTRY_TLS_PREFIX);
    let proxy_tls = ServiceTls::take(&mut settings, PROXY_TLS_PREFIX);
    let registry_security = take_client_security(&mut settings, REGISTRY_CLIENT_PREFIX);
    let proxy_security = take_client_security(&mut settings, PROXY_CLIENT_PREFIX);
    let proxy_consumers = take_proxy_consumer_settings(&mut settings)?;
    let config = BrokerConfig::from_map(settings)?;
    let mut tls_watched = Vec::new();
    let registry = if registry_listeners.is_empty() {
        None
    } else {
        let connection = client_connection(&registry_security, "strom-schema-registry")
            .with_context(|| format!("the schema registry's {REGISTRY_CLIENT_PREFIX}* settings"))?;
        let (listeners, watched) = registry_tls.http_listeners(&registry_listeners)?;
        tls_watched.extend(watched);
        // Writes go to an https leader with the registry's own trust and certificate.
        let forward_tls = if listeners.iter().any(|l| l.tls.is_some()) {
            Some(registry_tls.client_config()?)
        } else {
            None
        };
        let advertised_host = registry_host.or_else(|| {
            registry_listeners
                .first()
                .filter(|l| l.addr.ip().is_unspecified())
                .and_then(|_| host_name())
        });
        registry_config(&config, listeners, connection).map(|mut registry| {
            registry.forward_tls = forward_tls;
            registry.advertised_host = advertised_host;
            registry
        })
    };
    let proxy = if proxy_listeners.is_empty() {
        None
    } else {
        let connection = client_connection(&proxy_security, "strom-rest-proxy")
            .with_context(|| format!("the REST proxy's {PROXY_CLIENT_PREFIX}* settings"))?;
        let (listeners, watched) = proxy_tls.http_listeners(&proxy_listeners)?;
        tls_watched.extend(watched);
        let registry_client_tls = match &proxy_registry_url {
            Some(url) if url.starts_with("https://") => Some(registry_tls.client_config()?),
            _ => None,
        };
        client_listener(&config, "REST proxy", connection.security.protocol).map(|bootstrap| {
            let mut proxy = strom_rest_proxy::ProxyConfig::new(listeners, bootstrap);
            proxy.connection = connection;
            proxy.schema_registry_url = proxy_registry_url;
            proxy.schema_registry_tls = registry_client_tls;
            proxy_consumers.apply(&mut proxy);
            proxy
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()
        .context("starting the runtime")?;
    for watched in tls_watched {
        runtime.spawn(strom_broker::tls::watch_for_changes(watched));
    }
    let mut services = strom_broker::Services::default();
    if let Some(registry) = registry {
        let loaded = strom_schema_registry::LoadedStore::default();
        services.schema_ids = Some(Arc::new(RegistrySchemaIds(loaded.clone())));
        runtime.spawn(async move {
            if let Err(e) = strom_schema_registry::serve(registry, loaded).await {
                tracing::error!(error = %e, "the schema registry stopped; the broker goes on");
            }
        });
    }
    if let Some(proxy) = proxy {
        runtime.spawn(async move {
            if let Err(e) = strom_rest_proxy::serve(proxy).await {
                tracing::error!(error = %e, "the REST proxy stopped; the broker goes on");
            }
        });
    }
    runtime.block_on(strom_broker::run_with(config, shutdown_signal(), services))
}

/// The registry this process serves, as the broker's schema validation sees it.
struct RegistrySchemaIds(strom_schema_registry::LoadedStore);

impl strom_broker::schema_validation::SchemaIds for RegistrySchemaIds {
    fn registered(&self, subject: &str, id: i32) -> Option<bool> {
        let store = self.0.get()?;
        Some(store.read(|registry| registry.subject_has_id(subject, id)))
    }
}

const REGISTRY_LISTENERS: &str = "schema.registry.listeners";
/// The host other nodes' registries send writes to (Confluent's `host.name`); by default
/// the first listener's address, or this machine's host name when that is a wildcard.
const REGISTRY_HOST_NAME: &str = "schema.registry.host.name";
/// The registry's https listeners: `schema.registry.ssl.*`, else the broker's `ssl.*`. The
/// same settings say what an https registry is trusted by, for this node's proxy and for
/// writes sent on to the leader (Confluent's `schema.registry.ssl.*` in the REST proxy).
const REGISTRY_TLS_PREFIX: &str = "schema.registry.";
/// The REST proxy's https listeners: `rest.proxy.ssl.*`, else the broker's `ssl.*`.
const PROXY_TLS_PREFIX: &str = "rest.proxy.";
const DEFAULT_REGISTRY_LISTENER: &str = "http://127.0.0.1:8081";
const PROXY_LISTENERS: &str = "rest.proxy.listeners";
const DEFAULT_PROXY_LISTENER: &str = "http://127.0.0.1:8082";
/// The registry the REST proxy uses for avro, jsonschema and protobuf (Confluent's name).
const PROXY_REGISTRY_URL: &str = "schema.registry.url";

fn listener_urls(
    settings: &mut BTreeMap<String, String>,
    key: &str,
    default: &str,
) -> anyhow::Result<Vec<strom_http::ListenerUrl>> {
    let text = settings.remove(key).unwrap_or_else(|| default.to_owned());
    strom_http::parse_listeners(&text).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

/// A service's TLS settings: its own `<prefix>ssl.*` over the broker's `ssl.*`.
struct ServiceTls {
    prefix: &'static str,
    /// The broker's `ssl.*` and the service's `<prefix>ssl.*`, as given.
    settings: BTreeMap<String, String>,
}

impl ServiceTls {
    /// Takes the service's keys out of the broker's settings (the broker's own stay).
    fn take(settings: &mut BTreeMap<String, String>, prefix: &'static str) -> Self {
        let own = format!("{prefix}ssl.");
        let keys: Vec<String> = settings
            .keys()
            .filter(|k| k.starts_with(&own))
            .cloned()
            .collect();
        let mut taken: BTreeMap<String, String> = settings
            .iter()
            .filter(|(k, _)| k.starts_with("ssl."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for key in keys {
            if let Some(value) = settings.remove(&key) {
                taken.insert(key, value);
            }
        }
        Self {
            prefix,
            settings: taken,
        }
    }

    fn get(&self, name: &str) -> Option<&String> {
        self.settings
            .get(&format!("{}{name}", self.prefix))
            .or_else(|| self.settings.get(name))
    }

    /// The listeners to serve; https ones share one TLS config, returned to be watched
    /// for certificate changes.
    fn http_listeners(
        &self,
        urls: &[strom_http::ListenerUrl],
    ) -> anyhow::Result<(
        Vec<strom_http::HttpListener>,
        Option<Arc<strom_broker::tls::TlsListener>>,
    )> {
        let mut tls = None;
        if urls.iter().any(|u| u.scheme == strom_http::Scheme::Https) {
            let settings =
                strom_broker::security_config::service_tls_settings(&self.settings, self.prefix)?;
            let service = self.prefix.trim_end_matches('.');
            tls = Some(Arc::new(
                strom_broker::tls::TlsListener::new(service, settings)
                    .with_context(|| format!("https on {service}.listeners"))?,
            ));
        }
        let listeners = urls
            .iter()
            .map(|url| strom_http::HttpListener {
                addr: url.addr,
                tls: match (url.scheme, &tls) {
                    (strom_http::Scheme::Https, Some(listener)) => {
                        let listener = listener.clone();
                        let source: strom_http::TlsAcceptorSource =
                            Arc::new(move || listener.acceptor());
                        Some(source)
                    }
                    _ => None,
                },
            })
            .collect();
        Ok((listeners, tls))
    }

    /// What a client of an https registry trusts (`ssl.truststore.location`, else the
    /// system's CAs) and shows (`ssl.keystore.location`, when set).
    fn client_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut pairs = vec![("security.protocol", "SSL")];
        for name in [
            "ssl.truststore.type",
            "ssl.truststore.location",
            "ssl.keystore.type",
            "ssl.keystore.location",
            "ssl.endpoint.identification.algorithm",
        ] {
            if let Some(value) = self.get(name) {
                pairs.push((name, value.as_str()));
            }
        }
        let security = strom_client::SecurityConfig::from_properties(pairs)?;
        let config = strom_client::tls::client_config(&security.tls).with_context(|| {
            format!(
                "the TLS client settings for an https schema registry ({}ssl.*)",
                self.prefix
            )
        })?;
        Ok(Arc::new(config))
    }
}

/// The registry's and the proxy's own client settings (Confluent's names:
/// `kafkastore.security.protocol`, `client.sasl.jaas.config`, ...).
const REGISTRY_CLIENT_PREFIX: &str = "kafkastore.";
const PROXY_CLIENT_PREFIX: &str = "client.";

/// Takes `<prefix>security.protocol`, `<prefix>sasl.*` and `<prefix>ssl.*` out of the broker's
/// settings, without the prefix (other `client.*` keys are the broker's own).
fn take_client_security(
    settings: &mut BTreeMap<String, String>,
    prefix: &str,
) -> Vec<(String, String)> {
    let keys: Vec<String> = settings
        .keys()
        .filter(|k| {
            k.strip_prefix(prefix).is_some_and(|rest| {
                rest == "security.protocol" || rest.starts_with("sasl.") || rest.starts_with("ssl.")
            })
        })
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| {
            let value = settings.remove(&k)?;
            Some((k[prefix.len()..].to_owned(), value))
        })
        .collect()
}

/// The REST proxy's v2 consumer settings, by Confluent's names (milliseconds, bytes).
#[derive(Default)]
struct ProxyConsumerSettings {
    instance_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    request_max_bytes: Option<u64>,
    metadata_max_age_ms: Option<u64>,
}

impl ProxyConsumerSettings {
    fn apply(&self, proxy: &mut strom_rest_proxy::ProxyConfig) {
        let ms = Duration::from_millis;
        if let Some(v) = self.instance_timeout_ms {
            proxy.consumer_instance_timeout = ms(v);
        }
        if let Some(v) = self.request_timeout_ms {
            proxy.consumer_request_timeout = ms(v);
        }
        if let Some(v) = self.request_max_bytes {
            proxy.consumer_request_max_bytes = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(v) = self.metadata_max_age_ms {
            proxy.consumer_metadata_max_age = ms(v);
        }
    }
}

fn take_proxy_consumer_settings(
    settings: &mut BTreeMap<String, String>,
) -> anyhow::Result<ProxyConsumerSettings> {
    let mut take = |key: &str| -> anyhow::Result<Option<u64>> {
        settings
            .remove(key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow::anyhow!("{key}: {v:?} is not a positive integer"))
            })
            .transpose()
    };
    Ok(ProxyConsumerSettings {
        instance_timeout_ms: take("consumer.instance.timeout.ms")?,
        request_timeout_ms: take("consumer.request.timeout.ms")?,
        request_max_bytes: take("consumer.request.max.bytes")?,
        metadata_max_age_ms: take("consumer.metadata.max.age.ms")?,
    })
}

/// A service's connections to this node: PLAINTEXT unless its settings say otherwise
/// (reads the PEM files they name, once, at start).
fn client_connection(
    pairs: &[(String, String)],
    client_id: &str,
) -> anyhow::Result<strom_client::ConnectionConfig> {
    let security = strom_client::SecurityConfig::from_properties(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    Ok(strom_client::ConnectionConfig {
        client_id: client_id.to_owned(),
        security: security.load()?,
        ..strom_client::ConnectionConfig::default()
    })
}

/// host:port of this node's first client listener of `protocol`: the registry and the REST
/// proxy reach the cluster through it, as any client would.
fn client_listener(
    config: &BrokerConfig,
    service: &str,
    protocol: strom_client::SecurityProtocol,
) -> Option<String> {
    let found = config.listeners.iter().find(|l| {
        !config.cluster.is_controller_listener(&l.name)
            && config.security.get(&l.name).map_or(
                strom_broker::security_config::SecurityProtocol::Plaintext,
                |s| s.protocol,
            ) == protocol
    });
    let Some(listener) = found else {
        tracing::warn!(
            "the {service} needs a {} client listener to reach the cluster (its security.protocol); it is not started",
            protocol.name()
        );
        return None;
    };
    let host = match listener.host.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        host => host,
    };
    Some(format!("{host}:{}", listener.port))
}

fn registry_config(
    config: &BrokerConfig,
    listeners: Vec<strom_http::HttpListener>,
    connection: strom_client::ConnectionConfig,
) -> Option<strom_schema_registry::RegistryConfig> {
    let bootstrap = client_listener(config, "schema registry", connection.security.protocol)?;
    Some(strom_schema_registry::RegistryConfig {
        listeners,
        store: strom_schema_registry::StoreConfig {
            bootstrap,
            connection,
            topic: strom_schema_registry::store::DEFAULT_TOPIC.to_owned(),
            replication_factor: 3,
            expected_brokers: config.cluster.voters.len().max(1),
        },
        forward_tls: None,
        advertised_host: None,
    })
}

/// This machine's host name, as Confluent's registry advertises itself by default.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if done != 0 {
        return None;
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    std::str::from_utf8(&buffer[..end])
        .ok()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Environment variables `STROM_LOG_RETENTION_MS=...` stand for
/// `log.retention.ms`; these few are the binary's own, not broker configs.
const NOT_BROKER_CONFIGS: &[&str] = &[
    "STROM_CONFIG",
    "STROM_LOG",
    "STROM_LOG_FORMAT",
    "STROM_BROKERS",
    // Tests only: holds compaction rounds open (strom-broker's housekeeping).
    "STROM_TEST_CLEANER_PAUSE_FILE",
];

fn gather(
    file: Option<&Path>,
    env: impl Iterator<Item = (String, String)>,
    overrides: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = BTreeMap::new();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        flatten("", &table, &mut settings);
    }
    for (key, value) in env {
        if let Some(name) = key.strip_prefix("STROM_") {
            if !NOT_BROKER_CONFIGS.contains(&key.as_str()) {
                settings.insert(name.to_ascii_lowercase().replace('_', "."), value);
            }
        }
    }
    for item in overrides {
        let Some((name, value)) = item.split_once('=') else {
            bail!("--set expects NAME=VALUE, got {item:?}");
        };
        settings.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(settings)
}

/// TOML tables nest by dots: `[log] dirs = "x"` is `log.dirs`.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out),
            toml::Value::String(s) => {
                out.insert(name, s.clone());
            }
            toml::Value::Array(items) => {
                let joined: Vec<String> = items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect();
                out.insert(name, joined.join(","));
            }
            other => {
                out.insert(name, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_file() {
        let dir = std::env::temp_dir().join(format!("strom-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("strom.toml");
        std::fs::write(
            &file,
            "\"num.partitions\" = 2\n\"log.dirs\" = \"/from/file\"\n[auto.create.topics]\nenable = false\n",
        )
        .unwrap();
        let env = vec![
            ("STROM_LOG_DIRS".to_string(), "/from/env".to_string()),
            ("STROM_LOG".to_string(), "debug".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let settings = gather(
            Some(&file),
            env.into_iter(),
            &["num.partitions=5".to_string()],
        )
        .unwrap();
        assert_eq!(settings["num.partitions"], "5");
        assert_eq!(settings["log.dirs"], "/from/env");
        assert_eq!(settings["auto.create.topics.enable"], "false");
        assert!(!settings.contains_key("log"));
        assert!(gather(None, std::iter::empty(), &["oops".to_string()]).is_err());
    }
}
