//! strom's schema registry: Confluent's REST API over the compacted `_schemas` topic.
//!
//! - `records`: the topic's keys and values in Confluent's JSON format;
//! - `state`: the registry rebuilt from those records, and its write operations (sans-io);
//! - `schema`, `avro`, `protobuf`, `compatibility`: schema types, canonical texts, compatibility levels;
//! - `store`: the topic read and written through strom's Kafka client;
//! - `http`: the REST API.

pub mod avro;
pub mod compatibility;
mod contexts;
pub mod error;
mod forward;
pub mod http;
pub mod json_schema;
pub mod leader;
pub mod protobuf;
pub mod records;
pub mod schema;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

pub use store::StoreConfig;
use thiserror::Error;
use tracing::info;

/// The config of a registry served by a strom node.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub listeners: Vec<strom_http::HttpListener>,
    pub store: StoreConfig,
    /// The host other registries reach this one by (Confluent's `host.name`); `None`: the
    /// first listener's address.
    pub advertised_host: Option<String>,
    /// How writes are sent on to a leader whose URL is https: the CAs trusted and the
    /// certificate shown (the registry's own, as Confluent's does).
    pub forward_tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("schema registry: {0}")]
    Store(#[from] strom_client::Error),
    #[error("schema registry: cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("schema registry: {0}")]
    Serve(std::io::Error),
}

/// The registry's store once loaded, shared with the broker's schema validation.
pub type LoadedStore = Arc<OnceLock<Arc<store::Store>>>;

/// Loads the state from the topic, then serves the REST API until the task is dropped.
pub async fn serve(config: RegistryConfig, loaded: LoadedStore) -> Result<(), ServeError> {
    let (bootstrap, connection) = (
        config.store.bootstrap.clone(),
        config.store.connection.clone(),
    );
    let store = store::Store::open(config.store).await?;
    let _ = loaded.set(store.clone());
    // The registry's identity in the election: its first listener, as other nodes reach it.
    let identity = config.listeners.first().map(|listener| {
        let addr = listener.addr;
        let host = config
            .advertised_host
            .clone()
            .unwrap_or_else(|| addr.ip().to_string());
        leader::Identity::new(listener.scheme().name(), &host, addr.port())
    });
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(leader::Leader::Unknown);
    // The `/contexts/{context}/...` form is rewritten before routing, so it reaches every route.
    let app = tower_layer::Layer::layer(
        &axum::middleware::from_fn(contexts::rewrite_request),
        http::router(
            store,
            http::Forwarding {
                leader: leader_rx,
                tls: config.forward_tls.map(tokio_rustls::TlsConnector::from),
            },
        ),
    );
    let mut sockets = Vec::new();
    for listener in config.listeners {
        let addr = listener.addr;
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| ServeError::Bind { addr, error })?;
        info!(url = ?listener, "schema registry listening");
        sockets.push((socket, listener.tls));
    }
    // Stand for leader only once serving: a leader no one can reach would block every write.
    let _election = identity.map(|identity| {
        let mut connection = connection;
        connection.client_id = "strom-schema-registry-election".to_owned();
        AbortOnDrop(tokio::spawn(leader::run(
            bootstrap, connection, identity, leader_tx,
        )))
    });
    let mut servers = tokio::task::JoinSet::new();
    for (socket, tls) in sockets {
        servers.spawn(strom_http::serve(socket, app.clone(), tls));
    }
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(ServeError::Serve(e));
        }
    }
    Ok(())
}

/// Leaves the election when the registry stops serving.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
