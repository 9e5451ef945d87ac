//! The Kafka broker. A request flows: listener (`server`) -> connection
//! (`connection`: frame size checked before buffering, header decoded) ->
//! the API table (`apis`: one module per Kafka API) -> the partition's log
//! (`strom-log`) or a metadata change through the controller path
//! (`broker::commit`: metadata log first, then the image) -> response.

mod alter_partition_sender;
pub mod apis;
pub mod broker;
mod broker_lifecycle;
pub mod client_quotas;
pub mod config;
mod connection;
pub mod connection_quotas;
pub mod controller_channel;
mod controller_ops;
mod coordinator_loads;
mod coordinator_runtime;
pub mod errors;
pub mod fetch_session;
// Compiled for its tests too, so a change to the request path that breaks fuzz/ fails
// `cargo test`.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod group_coordinator;
mod housekeeping;
mod internal_log;
mod internal_topics;
mod log_dirs;
mod meta_properties;
pub mod metadata_quorum;
pub mod metrics;
pub mod node_rpc;
pub mod oauth_jwks;
pub mod partition;
mod replica_fetcher;
pub mod replica_manager;
mod request_memory;
pub mod response_frame;
mod sasl_session;
pub mod schema_validation;
pub mod security_config;
pub mod server;
pub mod tls;
pub mod topic_settings;
pub mod txn_coordinator;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use server::{run, run_with, Services};
