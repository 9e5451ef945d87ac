//! strom's schema registry: Confluent's REST API over the compacted `_schemas` topic.
//!
//! - `records`: the topic's keys and values in Confluent's JSON format;
//! - `state`: the registry rebuilt from those records, and its write operations (sans-io);
//! - `schema`, `avro`, `protobuf`, `compatibility`: schema types, canonical texts, compatibility levels;
//! - `store`: the topic read and written through strom's Kafka client;
//! - `http`: the REST API.

pub mod avro;
pub mod compatibility;
pub mod error;
pub mod http;
pub mod json_schema;
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
    pub listeners: Vec<SocketAddr>,
    pub store: StoreConfig,
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

/// `schema.registry.listeners`: comma-separated `http://host:port` URLs; empty for none.
pub fn parse_listeners(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|listener| {
            let rest = listener
                .strip_prefix("http://")
                .ok_or_else(|| format!("{listener}: only http:// listeners are served"))?;
            let rest = rest.trim_end_matches('/');
            let rest = match rest.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}"),
                None => rest.to_owned(),
            };
            rest.parse::<SocketAddr>()
                .map_err(|e| format!("{listener}: {e}"))
        })
        .collect()
}

/// The registry's store once loaded, shared with the broker's schema validation.
pub type LoadedStore = Arc<OnceLock<Arc<store::Store>>>;

/// Loads the state from the topic, then serves the REST API until the task is dropped.
pub async fn serve(config: RegistryConfig, loaded: LoadedStore) -> Result<(), ServeError> {
    let store = store::Store::open(config.store).await?;
    let _ = loaded.set(store.clone());
    let app = http::router(store);
    let mut servers = tokio::task::JoinSet::new();
    for addr in config.listeners {
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| ServeError::Bind { addr, error })?;
        info!(%addr, "schema registry listening");
        let app = app.clone();
        servers.spawn(async move { axum::serve(socket, app).await });
    }
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(ServeError::Serve(e));
        }
    }
    Ok(())
}
