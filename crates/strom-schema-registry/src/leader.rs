//! One writer among a cluster's registries, elected as Confluent's registries elect theirs:
//! each registry is a member of the Kafka group `schema-registry` (protocol type "sr",
//! protocol "v0") whose metadata is its identity (host, port, scheme, eligibility); the
//! group's leader names the registry leader (the current one while it stays in the group,
//! otherwise the eligible member with the smallest URL) in an assignment every member gets.
//! Followers forward writes to the leader's URL (`http::forward_writes`).

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strom_client::{ClassicMember, Client, ConnectionConfig, GroupMemberConfig, GroupProtocol};
use tokio::sync::watch;

pub const GROUP: &str = "schema-registry";
const PROTOCOL_TYPE: &str = "sr";
const PROTOCOL: &str = "v0";
const VERSION: i32 = 1;
const NO_ERROR: i16 = 0;
const DUPLICATE_URLS: i16 = 1;
/// Confluent's registry heartbeats every 3 s with a 10 s session.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// A failed join is tried again after this.
const RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// A registry as its group metadata describes it (Confluent's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub version: i32,
    pub host: String,
    pub port: u16,
    #[serde(rename = "master_eligibility")]
    pub leader_eligibility: bool,
    #[serde(default = "http")]
    pub scheme: String,
    /// Whether this member believes it is the leader (sticky election).
    #[serde(default)]
    pub leader: bool,
}

fn http() -> String {
    "http".to_owned()
}

impl Identity {
    pub fn new(scheme: &str, host: &str, port: u16) -> Self {
        Self {
            version: VERSION,
            host: host.to_owned(),
            port,
            leader_eligibility: true,
            scheme: scheme.to_owned(),
            leader: false,
        }
    }

    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    fn same_registry(&self, other: &Identity) -> bool {
        self.url() == other.url()
    }
}

/// What every member is assigned: who leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub version: i32,
    pub error: i16,
    #[serde(rename = "master")]
    pub leader: Option<String>,
    #[serde(rename = "master_identity")]
    pub leader_identity: Option<Identity>,
}

/// The elected leader as this registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// Not known yet, or the group is between generations.
    Unknown,
    This,
    Other {
        url: String,
    },
}

/// Picks the registry leader from the members' identities (member id, identity): a member
/// that already leads keeps leading (one such member only), otherwise the eligible member
/// with the smallest URL.
pub fn elect(members: &[(String, Identity)]) -> Assignment {
    let eligible = members.iter().filter(|(_, i)| i.leader_eligibility);
    let sitting: Vec<_> = eligible.clone().filter(|(_, i)| i.leader).collect();
    let chosen = match sitting.as_slice() {
        [one] => Some(*one),
        _ => eligible.min_by_key(|(_, i)| i.url()),
    };
    let mut urls: Vec<String> = members.iter().map(|(_, i)| i.url()).collect();
    urls.sort();
    urls.dedup();
    Assignment {
        version: VERSION,
        error: if urls.len() == members.len() {
            NO_ERROR
        } else {
            DUPLICATE_URLS
        },
        leader: chosen.map(|(id, _)| id.clone()),
        leader_identity: chosen.map(|(_, i)| i.clone()),
    }
}

/// The "sr" protocol as a classic group member speaks it.
struct RegistryProtocol {
    identity: Identity,
    assignment: Option<Assignment>,
}

impl GroupProtocol for RegistryProtocol {
    fn protocol_type(&self) -> &str {
        PROTOCOL_TYPE
    }

    fn protocols(&self, _generation: i32) -> strom_client::Result<Vec<(String, Bytes)>> {
        let metadata = serde_json::to_vec(&self.identity)
            .map_err(|e| strom_client::Error::InvalidArgument(e.to_string()))?;
        Ok(vec![(PROTOCOL.to_owned(), Bytes::from(metadata))])
    }

    async fn assign(
        &mut self,
        _client: &mut Client,
        _protocol: &str,
        members: &[(String, Bytes)],
    ) -> strom_client::Result<Vec<(String, Bytes)>> {
        let identities: Vec<(String, Identity)> = members
            .iter()
            .filter_map(|(id, metadata)| match serde_json::from_slice(metadata) {
                Ok(identity) => Some((id.clone(), identity)),
                Err(e) => {
                    tracing::warn!(member = %id, error = %e, "a schema-registry group member's metadata is not a registry identity; it cannot lead");
                    None
                }
            })
            .collect();
        let assignment = elect(&identities);
        if assignment.error == DUPLICATE_URLS {
            tracing::error!("schema registries of this cluster share a URL; give each its own listener host and port");
        }
        let bytes = Bytes::from(
            serde_json::to_vec(&assignment)
                .map_err(|e| strom_client::Error::InvalidArgument(e.to_string()))?,
        );
        Ok(members
            .iter()
            .map(|(id, _)| (id.clone(), bytes.clone()))
            .collect())
    }

    fn assigned(&mut self, assignment: &Bytes) -> strom_client::Result<()> {
        let assignment: Assignment = serde_json::from_slice(assignment).map_err(|e| {
            strom_client::Error::Protocol(format!("schema-registry assignment: {e}"))
        })?;
        self.identity.leader = assignment
            .leader_identity
            .as_ref()
            .is_some_and(|l| l.same_registry(&self.identity));
        self.assignment = Some(assignment);
        Ok(())
    }

    fn left(&mut self) {
        self.assignment = None;
    }
}

impl RegistryProtocol {
    fn leader(&self) -> Leader {
        match self
            .assignment
            .as_ref()
            .and_then(|a| a.leader_identity.as_ref())
        {
            None => Leader::Unknown,
            Some(_) if self.identity.leader => Leader::This,
            Some(other) => Leader::Other { url: other.url() },
        }
    }
}

/// Takes part in the election until the task is dropped, publishing the leader as it changes.
pub async fn run(
    bootstrap: String,
    connection: ConnectionConfig,
    identity: Identity,
    leader: watch::Sender<Leader>,
) {
    let config = GroupMemberConfig {
        session_timeout: SESSION_TIMEOUT,
        rebalance_timeout: SESSION_TIMEOUT,
        group_instance_id: None,
    };
    let protocol = RegistryProtocol {
        identity,
        assignment: None,
    };
    let client = match Client::new(&bootstrap, connection) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "schema registry: cannot take part in the leader election");
            return;
        }
    };
    let mut member = ClassicMember::with_protocol(client, GROUP, protocol, config);
    loop {
        if let Err(e) = member.join().await {
            tracing::warn!(error = %e, "schema registry: joining the leader election failed; trying again");
            leader.send_replace(Leader::Unknown);
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        let elected = member.protocol().leader();
        if *leader.borrow() != elected {
            tracing::info!(leader = ?elected, generation = member.generation(), "schema registry leader elected");
        }
        leader.send_replace(elected);
        // Heartbeat until the group rebalances or the coordinator forgets us.
        loop {
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            if let Err(e) = member.heartbeat().await {
                tracing::debug!(error = %e, "schema registry: the election group rebalances");
                // Writes wait for the next generation's leader rather than go to a gone one.
                leader.send_replace(Leader::Unknown);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, port: u16, leader: bool) -> (String, Identity) {
        let mut identity = Identity::new("http", "127.0.0.1", port);
        identity.leader = leader;
        (id.to_owned(), identity)
    }

    #[test]
    fn the_smallest_url_leads_unless_a_leader_sits() {
        let fresh = [
            member("b", 8082, false),
            member("a", 8083, false),
            member("c", 8081, false),
        ];
        let a = elect(&fresh);
        assert_eq!(a.leader.as_deref(), Some("c"));
        assert_eq!(a.error, NO_ERROR);
        let sitting = [member("b", 8082, true), member("c", 8081, false)];
        assert_eq!(elect(&sitting).leader.as_deref(), Some("b"));
        // Two members claiming the lead: back to the smallest URL.
        let both = [member("b", 8082, true), member("c", 8081, true)];
        assert_eq!(elect(&both).leader.as_deref(), Some("c"));
        let mut ineligible = member("z", 8080, false);
        ineligible.1.leader_eligibility = false;
        assert_eq!(
            elect(&[ineligible, member("y", 9000, false)])
                .leader
                .as_deref(),
            Some("y")
        );
        assert_eq!(
            elect(&[member("x", 1, false), member("y", 1, false)]).error,
            DUPLICATE_URLS
        );
    }

    #[test]
    fn identities_use_confluents_field_names() {
        let json = serde_json::to_value(Identity::new("http", "h", 8081)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "host": "h", "port": 8081,
                               "master_eligibility": true, "scheme": "http", "leader": false})
        );
        assert_eq!(Identity::new("https", "h", 8443).url(), "https://h:8443");
        assert_eq!(
            Identity::new("http", "::1", 8081).url(),
            "http://[::1]:8081"
        );
        let assignment = elect(&[member("m1", 8081, false)]);
        let json = serde_json::to_value(&assignment).unwrap();
        assert_eq!(json["master"], "m1");
        assert_eq!(json["master_identity"]["port"], 8081);
        assert_eq!(json["error"], 0);
    }
}
