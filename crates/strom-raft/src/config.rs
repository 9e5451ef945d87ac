use std::collections::{BTreeMap, BTreeSet};

use crate::NodeId;

/// How one node takes part in the metadata quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: NodeId,
    /// Voter id -> "host:port" of its CONTROLLER listener (ignored for the local node).
    /// A node with no configured voters passes only itself: a one-voter quorum. A node
    /// not among them is an observer: it never votes, and follows the committed log once
    /// the leader adds it ([`crate::Quorum::add_observer`]).
    pub voters: BTreeMap<NodeId, String>,
    /// openraft's longest election timeout. A follower that has not heard from a leader
    /// for its lease (this long) plus a random election timeout (half of this up to this)
    /// starts an election, so a lost leader is replaced after 1.5 to 2 of these; a
    /// candidate that wins no majority retries after the random election timeout.
    pub election_timeout_ms: u64,
    /// How often the leader sends heartbeats; well below the election timeout.
    pub heartbeat_interval_ms: u64,
    /// A snapshot is taken once this many entries were applied since the last one, and the
    /// log is purged up to it, so the log stays bounded.
    pub snapshot_every_entries: u64,
}

impl QuorumConfig {
    /// A one-voter quorum of `node_id` with Kafka's default timeouts.
    pub fn single(node_id: NodeId) -> Self {
        Self {
            node_id,
            voters: BTreeMap::from([(node_id, String::new())]),
            election_timeout_ms: 1000,
            heartbeat_interval_ms: 100,
            snapshot_every_entries: 20_000,
        }
    }

    pub fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.voters.keys().copied().collect()
    }

    /// True when this node is not a voter: it follows the log as an openraft learner.
    pub fn is_observer(&self) -> bool {
        !self.voters.contains_key(&self.node_id)
    }

    /// True when this node is the only voter (it elects itself at once).
    pub fn is_single_voter(&self) -> bool {
        self.voters.len() == 1 && self.voters.contains_key(&self.node_id)
    }
}
