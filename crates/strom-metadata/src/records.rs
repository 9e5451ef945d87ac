//! The records of the metadata log. They are serialized as JSON in the values
//! of ordinary record batches, so the metadata log is a normal partition log.

use serde::{Deserialize, Serialize};
use strom_types::{NodeId, TopicId};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// A broker's dynamic configs; `None` is the cluster-wide default.
    Broker(Option<NodeId>),
    /// A group's configs (KIP-848 `consumer.session.timeout.ms`, ...).
    Group(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// The leader of a partition that has none.
pub const NO_LEADER: NodeId = -1;

/// A replica whose log dir the controller has not been told yet (Kafka's
/// DirectoryId.UNASSIGNED): taken as online.
pub const UNASSIGNED_DIR: uuid::Uuid = uuid::Uuid::nil();
/// A replica whose log dir was lost (Kafka's DirectoryId.LOST): never online.
pub const LOST_DIR: uuid::Uuid = uuid::Uuid::from_u128(1);
/// A replica of a broker moving to dir ids (Kafka's DirectoryId.MIGRATING): online.
pub const MIGRATING_DIR: uuid::Uuid = uuid::Uuid::from_u128(2);

/// Kafka's DirectoryId.isOnline: whether a replica in `dir` is online on a broker whose
/// online dirs are `online` (a broker reporting none predates dir ids: all online).
pub fn is_dir_online(dir: uuid::Uuid, online: &[uuid::Uuid]) -> bool {
    if dir == UNASSIGNED_DIR || dir == MIGRATING_DIR {
        return true;
    }
    if dir == LOST_DIR {
        return false;
    }
    online.is_empty() || online.contains(&dir)
}

/// Kafka's LeaderRecoveryState: a leader chosen by unclean election is `Recovering`
/// until it has written under its own epoch, and takes no ISR additions before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaderRecoveryState {
    #[default]
    Recovered,
    Recovering,
}

impl LeaderRecoveryState {
    pub fn is_recovered(&self) -> bool {
        *self == Self::Recovered
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker (re)registers: a new incarnation gets a new epoch and starts fenced
    /// until it has caught up with the metadata log (KRaft's RegisterBrokerRecord).
    /// Records written before the cluster existed have no epoch and were unfenced.
    RegisterBroker {
        broker_id: NodeId,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        #[serde(default)]
        incarnation_id: Option<uuid::Uuid>,
        #[serde(default)]
        broker_epoch: i64,
        #[serde(default)]
        fenced: bool,
        #[serde(default)]
        in_controlled_shutdown: bool,
        /// The ids of its log dirs that are online (KIP-858); empty from a broker that
        /// does not report them, whose replicas are then all taken as online.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        log_dirs: Vec<uuid::Uuid>,
    },
    /// A broker leaves the cluster for good (decommissioning).
    UnregisterBroker {
        broker_id: NodeId,
        broker_epoch: i64,
    },
    /// Fencing, unfencing and controlled shutdown of a registered broker
    /// (KRaft's BrokerRegistrationChangeRecord); `None` leaves a flag as it was.
    BrokerRegistrationChange {
        broker_id: NodeId,
        broker_epoch: i64,
        #[serde(default)]
        fenced: Option<bool>,
        #[serde(default)]
        in_controlled_shutdown: Option<bool>,
        /// Its online log dirs after some went offline (`None`: unchanged).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_dirs: Option<Vec<uuid::Uuid>>,
    },
    Topic {
        name: String,
        topic_id: TopicId,
    },
    Partition {
        topic_id: TopicId,
        partition: i32,
        replicas: Vec<NodeId>,
        isr: Vec<NodeId>,
        leader: NodeId,
        leader_epoch: i32,
        partition_epoch: i32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<NodeId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<NodeId>,
        /// KIP-966 eligible leader replicas: out of the ISR, but hold every committed record.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        elr: Vec<NodeId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<NodeId>,
        #[serde(default, skip_serializing_if = "LeaderRecoveryState::is_recovered")]
        leader_recovery_state: LeaderRecoveryState,
        /// The log dir of each replica, in `replicas` order (KIP-858); empty while none
        /// is assigned ([`UNASSIGNED_DIR`] for each).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        directories: Vec<uuid::Uuid>,
    },
    /// A change to one partition (KRaft's PartitionChangeRecord): `None` leaves a field as
    /// it was. Replaying it bumps the partition epoch, and the leader epoch when `leader`
    /// is set (`Some(NO_LEADER)`: no leader now).
    PartitionChange {
        topic_id: TopicId,
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<NodeId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elr: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_known_elr: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader_recovery_state: Option<LeaderRecoveryState>,
        /// New replica dirs, in `replicas` order. When `replicas` changes without them,
        /// replaying keeps each remaining replica's dir and leaves new ones unassigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        directories: Option<Vec<uuid::Uuid>>,
    },
    /// Sets (`Some`) or removes (`None`) one dynamic config.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    RemoveTopic {
        topic_id: TopicId,
    },
    /// A block of producer ids handed to a broker; ids below
    /// `next_producer_id` are never handed out again.
    ProducerIds {
        broker_id: NodeId,
        next_producer_id: i64,
    },
    /// A user's SCRAM credential for one mechanism (KRaft's UserScramCredentialRecord;
    /// mechanism 1 is SCRAM-SHA-256, 2 SCRAM-SHA-512); salt and keys in hex.
    UserScramCredential {
        name: String,
        mechanism: i8,
        salt: String,
        stored_key: String,
        server_key: String,
        iterations: i32,
    },
    RemoveUserScramCredential {
        name: String,
        mechanism: i8,
    },
    /// One ACL (KRaft's AccessControlEntryRecord), with Kafka's wire codes for the
    /// resource type, pattern type, operation and permission.
    AccessControlEntry {
        id: uuid::Uuid,
        resource_type: i8,
        resource_name: String,
        pattern_type: i8,
        principal: String,
        host: String,
        operation: i8,
        permission_type: i8,
    },
    RemoveAccessControlEntry {
        id: uuid::Uuid,
    },
    /// One client quota value (KRaft's ClientQuotaRecord): the entity as (type, name)
    /// pairs, a null name standing for the default entity.
    ClientQuota {
        entity: Vec<(String, Option<String>)>,
        key: String,
        value: QuotaValue,
    },
    RemoveClientQuota {
        entity: Vec<(String, Option<String>)>,
        key: String,
    },
}

/// A client quota's value; records compare it bit for bit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

impl MetadataRecord {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records always serialize")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_the_cluster_still_read() {
        let old = br#"{"type":"RegisterBroker","broker_id":1,"endpoints":[],"rack":null}"#;
        assert_eq!(
            MetadataRecord::from_json(old).unwrap(),
            MetadataRecord::RegisterBroker {
                log_dirs: vec![],
                broker_id: 1,
                endpoints: vec![],
                rack: None,
                incarnation_id: None,
                broker_epoch: 0,
                fenced: false,
                in_controlled_shutdown: false,
            }
        );
        let old = br#"{"type":"Partition","topic_id":"00000000-0000-0000-0000-000000000007","partition":0,"replicas":[1],"isr":[1],"leader":1,"leader_epoch":0,"partition_epoch":0}"#;
        assert!(matches!(
            MetadataRecord::from_json(old).unwrap(),
            MetadataRecord::Partition { elr, leader_recovery_state: LeaderRecoveryState::Recovered, .. } if elr.is_empty()
        ));
    }

    #[test]
    fn records_round_trip_through_json() {
        let record = MetadataRecord::Partition {
            directories: vec![],
            topic_id: TopicId::from_u128(7),
            partition: 3,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: vec![],
            last_known_elr: vec![],
            leader_recovery_state: LeaderRecoveryState::Recovered,
        };
        assert_eq!(
            MetadataRecord::from_json(&record.to_json()).unwrap(),
            record
        );
        let config = MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "retention.ms".into(),
            value: None,
        };
        assert_eq!(
            MetadataRecord::from_json(&config.to_json()).unwrap(),
            config
        );
    }
}
