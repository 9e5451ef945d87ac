//! Cluster metadata, the KRaft way: every change is a [`MetadataRecord`]
//! appended to the metadata log, and the in-memory [`MetadataImage`] is only
//! ever changed by replaying those records. Controller operations are pure:
//! they read an image and return `(records, result)`; the caller persists the
//! records and then applies them, so loading from the log and serving live
//! requests share one code path. Nothing here does I/O.

pub mod acls;
pub mod alter_partition;
pub mod broker_config;
pub mod cluster_control;
pub mod controller;
pub mod dir_assignment;
pub mod elect_leaders;
pub mod error;
mod hex;
pub mod image;
pub mod partition_change;
pub mod placement;
pub mod quotas;
pub mod reassignment;
pub mod records;
pub mod scram;
pub mod topic_config;

pub use error::ControllerError;
pub use image::{MetadataImage, PartitionImage, TopicImage};
pub use records::{BrokerEndpoint, ConfigResource, LeaderRecoveryState, MetadataRecord, NO_LEADER};
