//! strom's REST proxy: Confluent REST Proxy's v2 and v3 APIs over strom's Kafka client.
//!
//! - `v2`: topics, partitions, brokers, produce with embedded formats, consumer instances;
//! - `v3`: clusters, brokers, topics, configs, partitions, records, consumer groups, ACLs;
//! - `formats`: the embedded formats (binary, json, and the registry's avro, jsonschema,
//!   protobuf) turned into record bytes and back;
//! - `pool`: Kafka clients shared by requests; `error`: Confluent's error bodies and codes;
//! - `media`: content types and negotiation.
//!
//! The proxy is a Kafka client like any other: it reaches the cluster through a listener,
//! so it runs beside any broker and holds no broker state.

pub mod error;
pub mod formats;
pub mod media;
pub mod pool;
pub mod v2;
pub mod v3;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use strom_client::{Admin, Client, ConnectionConfig, Consumer, ConsumerConfig, Producer};
use thiserror::Error;
use tracing::info;

use crate::pool::Pool;

/// Clients of each kind kept for requests.
const POOL_SIZE: usize = 16;

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listeners: Vec<strom_http::HttpListener>,
    /// host:port of the cluster's listener the proxy connects to.
    pub bootstrap: String,
    pub connection: ConnectionConfig,
    /// The schema registry for the avro, jsonschema and protobuf formats.
    pub schema_registry_url: Option<String>,
    /// What an https registry is trusted by, and the certificate shown to it.
    pub schema_registry_tls: Option<Arc<rustls::ClientConfig>>,
    /// `consumer.instance.timeout.ms`: an idle v2 consumer instance is closed after this.
    pub consumer_instance_timeout: Duration,
    /// `consumer.request.timeout.ms`: how long a v2 records read waits for data.
    pub consumer_request_timeout: Duration,
    /// `consumer.request.max.bytes`: the most key and value bytes a v2 read returns.
    pub consumer_request_max_bytes: usize,
    /// `consumer.metadata.max.age.ms`: how often a v2 pattern subscription is matched again.
    pub consumer_metadata_max_age: Duration,
    /// The most v2 consumer instances at once (each holds connections and a task).
    pub max_consumer_instances: usize,
}

impl ProxyConfig {
    pub fn new(listeners: Vec<strom_http::HttpListener>, bootstrap: String) -> Self {
        Self {
            listeners,
            bootstrap,
            connection: ConnectionConfig {
                client_id: "strom-rest-proxy".to_owned(),
                ..ConnectionConfig::default()
            },
            schema_registry_url: None,
            schema_registry_tls: None,
            consumer_instance_timeout: Duration::from_millis(300_000),
            consumer_request_timeout: Duration::from_millis(1_000),
            consumer_request_max_bytes: 64 * 1024 * 1024,
            consumer_metadata_max_age: Duration::from_millis(300_000),
            max_consumer_instances: 1_000,
        }
    }
}

/// What every request handler shares.
pub struct Proxy {
    pub config: ProxyConfig,
    pub admins: Pool<Admin>,
    pub producers: Pool<Producer>,
    pub consumers: Pool<Consumer>,
    pub instances: v2::instances::Instances,
    pub formats: formats::Formats,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Arc<Self> {
        let client = {
            let (bootstrap, connection) = (config.bootstrap.clone(), config.connection.clone());
            move || Client::new(&bootstrap, connection.clone())
        };
        let admins = {
            let client = client.clone();
            Pool::new(POOL_SIZE, move || client().map(Admin::new))
        };
        let producers = {
            let client = client.clone();
            Pool::new(POOL_SIZE, move || {
                Producer::new(client()?, strom_client::ProducerConfig::default())
            })
        };
        let consumers = {
            let client = client.clone();
            Pool::new(POOL_SIZE, move || {
                Ok(Consumer::new(client()?, ConsumerConfig::default()))
            })
        };
        let formats = formats::Formats::new(
            config.schema_registry_url.as_deref(),
            config.schema_registry_tls.clone(),
        );
        Arc::new(Self {
            instances: v2::instances::Instances::new(&config),
            config,
            admins,
            producers,
            consumers,
            formats,
        })
    }

    /// A new Kafka client of the proxy's own (for a consumer instance).
    pub fn client(&self) -> strom_client::Result<Client> {
        Client::new(&self.config.bootstrap, self.config.connection.clone())
    }
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("REST proxy: cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("REST proxy: {0}")]
    Serve(std::io::Error),
}

pub fn router(proxy: Arc<Proxy>) -> Router {
    v2::router(proxy.clone())
        .merge(v3::router(proxy))
        .fallback(media::fallback)
        .layer(axum::extract::DefaultBodyLimit::max(media::MAX_BODY_BYTES))
}

/// Serves the proxy until the task is dropped.
pub async fn serve(config: ProxyConfig) -> Result<(), ServeError> {
    let listeners = config.listeners.clone();
    let proxy = Proxy::new(config);
    tokio::spawn(v2::instances::expire_idle(proxy.clone()));
    let app = router(proxy);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let addr = listener.addr;
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| ServeError::Bind { addr, error })?;
        info!(url = ?listener, "REST proxy listening");
        servers.spawn(strom_http::serve(socket, app.clone(), listener.tls));
    }
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(ServeError::Serve(e));
        }
    }
    Ok(())
}
