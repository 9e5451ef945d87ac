//! KIP-392: the replica a consumer should fetch from. Kafka's leader asks its
//! `replica.selector.class` (ReplicaManager.findPreferredReadReplica) and answers a
//! consumer's Fetch with that replica's id instead of records when it is not the leader.

use std::cmp::Ordering;

use crate::leader::LeaderState;
use crate::ReplicaId;

/// Kafka's class name for the rack-aware selector, the one selector Kafka ships.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `replica.selector.class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Unset (Kafka's default): the leader serves every fetch.
    #[default]
    LeaderOnly,
    /// Kafka's RackAwareReplicaSelector: a replica in the consumer's rack.
    RackAware,
}

impl ReplicaSelector {
    /// The selector a `replica.selector.class` value names; `Err` for a class strom does
    /// not have (where Kafka fails to start with ClassNotFoundException).
    pub fn from_class_name(name: Option<&str>) -> Result<Self, String> {
        match name.map(str::trim) {
            None | Some("") => Ok(Self::LeaderOnly),
            Some(RACK_AWARE_REPLICA_SELECTOR) => Ok(Self::RackAware),
            Some(other) => Err(format!(
                "unknown replica selector class {other:?}: the only one is {RACK_AWARE_REPLICA_SELECTOR}"
            )),
        }
    }
}

/// A replica as a selector sees it (Kafka's ReplicaView).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaView<'a> {
    pub id: ReplicaId,
    /// Its broker's `broker.rack`.
    pub rack: Option<&'a str>,
    pub log_end_offset: i64,
    pub time_since_last_caught_up_ms: i64,
}

/// Kafka's ReplicaView.comparator: the most caught-up replica is the greatest (higher
/// log end, then caught up more recently, then the higher id).
fn most_caught_up(a: &ReplicaView<'_>, b: &ReplicaView<'_>) -> Ordering {
    a.log_end_offset
        .cmp(&b.log_end_offset)
        .then(
            b.time_since_last_caught_up_ms
                .cmp(&a.time_since_last_caught_up_ms),
        )
        .then(a.id.cmp(&b.id))
}

impl ReplicaSelector {
    /// Kafka's ReplicaSelector.select over the leader and the eligible followers: the
    /// replica to read from (the leader's id when the leader should serve).
    pub fn select(
        self,
        client_rack: &str,
        leader: &ReplicaView<'_>,
        followers: &[ReplicaView<'_>],
    ) -> ReplicaId {
        match self {
            Self::LeaderOnly => leader.id,
            Self::RackAware => {
                if client_rack.is_empty() || leader.rack == Some(client_rack) {
                    return leader.id;
                }
                followers
                    .iter()
                    .filter(|f| f.rack == Some(client_rack))
                    .max_by(|a, b| most_caught_up(a, b))
                    .map_or(leader.id, |f| f.id)
            }
        }
    }
}

/// Where a consumer fetching `fetch_offset` should read (Kafka's findPreferredReadReplica
/// on the leader): `Some(follower)`, or `None` when the leader serves the fetch itself.
/// Only followers in the ISR whose log holds `fetch_offset` are eligible. `rack_of` gives
/// a replica's rack, or `None` when its broker is not a live (unfenced) one with an
/// endpoint (Kafka leaves those without an endpoint, so they are never chosen).
pub fn preferred_read_replica<'a>(
    selector: ReplicaSelector,
    leader: &LeaderState,
    leader_log_end_offset: i64,
    client_rack: &str,
    fetch_offset: i64,
    now_ms: i64,
    rack_of: impl Fn(ReplicaId) -> Option<Option<&'a str>>,
) -> Option<ReplicaId> {
    if selector == ReplicaSelector::LeaderOnly {
        return None;
    }
    let leader_id = leader.local_id();
    let leader_view = ReplicaView {
        id: leader_id,
        rack: rack_of(leader_id).flatten(),
        log_end_offset: leader_log_end_offset,
        time_since_last_caught_up_ms: 0,
    };
    let followers: Vec<ReplicaView<'a>> = leader
        .replicas()
        .iter()
        .filter(|&&id| id != leader_id && leader.isr().contains(&id))
        .filter_map(|&id| {
            let progress = leader.follower(id)?;
            let holds_offset = progress.log_end_offset >= fetch_offset
                && progress.log_start_offset <= fetch_offset;
            let rack = rack_of(id)?;
            holds_offset.then_some(ReplicaView {
                id,
                rack,
                log_end_offset: progress.log_end_offset,
                time_since_last_caught_up_ms: now_ms - progress.last_caught_up_time_ms,
            })
        })
        .collect();
    let chosen = selector.select(client_rack, &leader_view, &followers);
    (chosen != leader_id).then_some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader::{FollowerFetch, LeaderConfig, PartitionState};
    use crate::mem_log::MemLog;

    fn view(id: ReplicaId, rack: &str, log_end_offset: i64, since: i64) -> ReplicaView<'_> {
        ReplicaView {
            id,
            rack: Some(rack),
            log_end_offset,
            time_since_last_caught_up_ms: since,
        }
    }

    #[test]
    fn class_names_as_kafka_spells_them() {
        assert_eq!(
            ReplicaSelector::from_class_name(None),
            Ok(ReplicaSelector::LeaderOnly)
        );
        assert_eq!(
            ReplicaSelector::from_class_name(Some(" ")),
            Ok(ReplicaSelector::LeaderOnly)
        );
        assert_eq!(
            ReplicaSelector::from_class_name(Some(RACK_AWARE_REPLICA_SELECTOR)),
            Ok(ReplicaSelector::RackAware)
        );
        assert!(ReplicaSelector::from_class_name(Some("RackAwareReplicaSelector")).is_err());
    }

    #[test]
    fn rack_aware_picks_the_most_caught_up_replica_of_the_clients_rack() {
        let leader = view(1, "a", 100, 0);
        let followers = [
            view(2, "b", 90, 0),
            view(3, "b", 95, 50),
            view(4, "c", 100, 0),
        ];
        let rack_aware = ReplicaSelector::RackAware;
        assert_eq!(rack_aware.select("b", &leader, &followers), 3);
        assert_eq!(rack_aware.select("c", &leader, &followers), 4);
        // The leader in the client's rack, no replica there, or no rack: the leader.
        assert_eq!(rack_aware.select("a", &leader, &followers), 1);
        assert_eq!(rack_aware.select("z", &leader, &followers), 1);
        assert_eq!(rack_aware.select("", &leader, &followers), 1);
        assert_eq!(
            ReplicaSelector::LeaderOnly.select("b", &leader, &followers),
            1
        );
        // Equal ends: caught up more recently wins, then the higher id.
        let tied = [view(2, "b", 95, 10), view(3, "b", 95, 20)];
        assert_eq!(rack_aware.select("b", &leader, &tied), 2);
        let same = [view(3, "b", 95, 10), view(2, "b", 95, 10)];
        assert_eq!(rack_aware.select("b", &leader, &same), 3);
    }

    const NOW: i64 = 1_000_000;

    /// Broker 1 leads replicas 1..=4 with ISR {1, 2, 3}; 2 fetched up to 10, 3 up to 4,
    /// 4 (out of the ISR) up to 10. Racks: 1 "a", 2 and 4 "b", 3 "c".
    fn leader() -> LeaderState {
        let state = PartitionState {
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 5,
            replicas: vec![1, 2, 3, 4],
            isr: vec![1, 2, 3],
        };
        let log = MemLog::new();
        let mut leader =
            LeaderState::new(1, 1, &state, LeaderConfig::default(), &log, NOW).unwrap();
        for (id, offset) in [(2, 10), (3, 4), (4, 10)] {
            leader
                .on_follower_fetch(
                    &FollowerFetch {
                        replica_id: id,
                        current_leader_epoch: Some(3),
                        fetch_offset: offset,
                        log_start_offset: 2,
                        broker_epoch: -1,
                        leader_log_end_offset: 10,
                    },
                    &log,
                    NOW,
                )
                .unwrap();
        }
        leader
    }

    fn rack(id: ReplicaId) -> Option<Option<&'static str>> {
        Some(Some(match id {
            1 => "a",
            2 | 4 => "b",
            _ => "c",
        }))
    }

    #[test]
    fn only_in_sync_live_replicas_holding_the_offset_are_preferred() {
        let leader = leader();
        let prefer = |client_rack: &str, offset: i64, rack_of: &dyn Fn(ReplicaId) -> _| {
            preferred_read_replica(
                ReplicaSelector::RackAware,
                &leader,
                10,
                client_rack,
                offset,
                NOW,
                rack_of,
            )
        };
        assert_eq!(prefer("b", 10, &rack), Some(2));
        assert_eq!(prefer("b", 2, &rack), Some(2));
        // The leader's own rack, or a rack where no replica is eligible: the leader reads.
        assert_eq!(prefer("a", 10, &rack), None);
        // 3 has not reached offset 5 yet.
        assert_eq!(prefer("c", 4, &rack), Some(3));
        assert_eq!(prefer("c", 5, &rack), None);
        // Below the follower's log start.
        assert_eq!(prefer("b", 1, &rack), None);
        // 4 is out of the ISR even though it is caught up: with 2 fenced, nobody in "b".
        let two_fenced = |id| if id == 2 { None } else { rack(id) };
        assert_eq!(prefer("b", 10, &two_fenced), None);
        assert_eq!(
            preferred_read_replica(ReplicaSelector::LeaderOnly, &leader, 10, "b", 10, NOW, rack),
            None
        );
    }
}
