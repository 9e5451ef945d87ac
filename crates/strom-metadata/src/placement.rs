//! Replica placement, as Kafka's StripedReplicaPlacer: brokers are grouped by rack,
//! each partition starts on the next rack in turn with an unfenced leader, and its
//! followers go to the following racks, so replicas spread over racks first and over
//! brokers second. Fenced brokers may hold followers; brokers in controlled shutdown
//! get nothing.

use std::collections::BTreeMap;

use strom_types::NodeId;

use crate::error::ControllerError;
use crate::image::MetadataImage;

/// A broker replicas may be placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: NodeId,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// Registered brokers not in controlled shutdown, in id order.
pub fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .brokers()
        .filter(|b| !b.in_controlled_shutdown)
        .map(|b| UsableBroker {
            id: b.id,
            rack: b.rack.clone(),
            fenced: b.fenced,
        })
        .collect()
}

/// A small deterministic generator (splitmix64): placement only needs spread, and a
/// seed makes it reproducible (the controller seeds it from the topic id).
#[derive(Debug, Clone)]
pub struct PlacementRng(u64);

impl PlacementRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Brokers of one kind in one rack, walked round-robin from a moving offset.
#[derive(Debug, Default)]
struct BrokerCycle {
    brokers: Vec<NodeId>,
    index: usize,
    offset: usize,
    epoch: usize,
}

impl BrokerCycle {
    fn initialize(&mut self, rng: &mut PlacementRng) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = rng.below(self.brokers.len());
        }
    }

    /// The next broker of this placement round (`epoch`), or `None` when every one
    /// was handed out in this round.
    fn next(&mut self, epoch: usize) -> Option<NodeId> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(broker)
    }
}

#[derive(Debug, Default)]
struct Rack {
    unfenced: BrokerCycle,
    fenced: BrokerCycle,
}

impl Rack {
    fn next(&mut self, epoch: usize) -> Option<NodeId> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

struct RackList {
    racks: BTreeMap<Option<String>, Rack>,
    names: Vec<Option<String>>,
    total: usize,
    unfenced: usize,
    epoch: usize,
    offset: usize,
}

impl RackList {
    fn new(brokers: &[UsableBroker], rng: &mut PlacementRng) -> Self {
        let mut racks: BTreeMap<Option<String>, Rack> = BTreeMap::new();
        let mut unfenced = 0;
        for b in brokers {
            let rack = racks.entry(b.rack.clone()).or_default();
            if b.fenced {
                rack.fenced.brokers.push(b.id);
            } else {
                rack.unfenced.brokers.push(b.id);
                unfenced += 1;
            }
        }
        for rack in racks.values_mut() {
            rack.unfenced.initialize(rng);
            rack.fenced.initialize(rng);
        }
        // BTreeMap order: no rack first, then racks by name.
        let names: Vec<Option<String>> = racks.keys().cloned().collect();
        let offset = if names.is_empty() {
            0
        } else {
            rng.below(names.len())
        };
        Self {
            racks,
            names,
            total: brokers.len(),
            unfenced,
            epoch: 0,
            offset,
        }
    }

    fn rack(&mut self, index: usize) -> &mut Rack {
        self.racks
            .get_mut(&self.names[index])
            .expect("every rack name has a rack")
    }

    fn place(&mut self, replication_factor: usize, rng: &mut PlacementRng) -> Vec<NodeId> {
        // After as many partitions as unfenced brokers, reshuffle so the same
        // assignments do not simply repeat.
        if self.epoch == self.unfenced && self.unfenced > 1 {
            rng.shuffle(&mut self.names);
            for rack in self.racks.values_mut() {
                rng.shuffle(&mut rack.unfenced.brokers);
                rng.shuffle(&mut rack.fenced.brokers);
                // A rack untouched since an earlier round's same epoch number must
                // not look used up in the new round.
                rack.unfenced.epoch = usize::MAX;
                rack.fenced.epoch = usize::MAX;
            }
            self.epoch = 0;
        }
        if self.offset == self.names.len() {
            self.offset = 0;
        }
        let epoch = self.epoch;
        let mut replicas = Vec::with_capacity(replication_factor);
        // The leader: the first unfenced broker from the rack at `offset` on.
        let mut first_rack = self.offset;
        loop {
            if let Some(leader) = self.rack(first_rack).unfenced.next(epoch) {
                replicas.push(leader);
                break;
            }
            first_rack = (first_rack + 1) % self.names.len();
        }
        // Followers: one per rack in turn, skipping the leader's rack the first time.
        let mut skip = Some(first_rack);
        let mut rack_index = self.offset;
        while replicas.len() < replication_factor {
            let mut next = None;
            while next.is_none() {
                if skip == Some(rack_index) {
                    skip = None;
                } else {
                    next = self.rack(rack_index).next(epoch);
                }
                rack_index = (rack_index + 1) % self.names.len();
            }
            replicas.extend(next);
        }
        self.epoch += 1;
        self.offset += 1;
        replicas
    }
}

/// Places `partitions` partitions of `replication_factor` replicas each. Errors carry
/// Kafka's InvalidReplicationFactorException messages.
pub fn place_replicas(
    brokers: &[UsableBroker],
    partitions: usize,
    replication_factor: i32,
    rng: &mut PlacementRng,
) -> Result<Vec<Vec<NodeId>>, ControllerError> {
    let mut racks = RackList::new(brokers, rng);
    if replication_factor <= 0 {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Invalid replication factor {replication_factor}: the replication factor must be positive."
        )));
    }
    if racks.unfenced == 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            "All brokers are currently fenced.".into(),
        ));
    }
    let replication_factor = replication_factor as usize;
    if replication_factor > racks.total {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
            racks.total
        )));
    }
    Ok((0..partitions)
        .map(|_| racks.place(replication_factor, rng))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn usable(id: NodeId, rack: Option<&str>, fenced: bool) -> UsableBroker {
        UsableBroker {
            id,
            rack: rack.map(str::to_string),
            fenced,
        }
    }

    #[test]
    fn replicas_spread_over_racks_before_brokers() {
        let brokers = vec![
            usable(1, Some("a"), false),
            usable(2, Some("a"), false),
            usable(3, Some("b"), false),
            usable(4, Some("b"), false),
            usable(5, Some("c"), false),
            usable(6, Some("c"), false),
        ];
        let rack_of = |id: NodeId| brokers.iter().find(|b| b.id == id).unwrap().rack.clone();
        let placed = place_replicas(&brokers, 60, 3, &mut PlacementRng::new(7)).unwrap();
        let mut leaders = BTreeMap::<NodeId, usize>::new();
        for replicas in &placed {
            let racks: BTreeSet<_> = replicas.iter().map(|r| rack_of(*r)).collect();
            assert_eq!(racks.len(), 3, "{replicas:?} shares a rack");
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        // Every broker leads exactly a sixth of the partitions.
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![10; 6]);
    }

    #[test]
    fn leaders_are_unfenced_and_fenced_brokers_only_follow() {
        let brokers = vec![
            usable(1, None, true),
            usable(2, None, false),
            usable(3, None, true),
        ];
        let placed = place_replicas(&brokers, 10, 3, &mut PlacementRng::new(1)).unwrap();
        for replicas in &placed {
            assert_eq!(replicas[0], 2);
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        let placed = place_replicas(&brokers, 3, 1, &mut PlacementRng::new(1)).unwrap();
        assert_eq!(placed, vec![vec![2], vec![2], vec![2]]);
    }

    #[test]
    fn placement_errors_are_kafkas() {
        let brokers = vec![usable(1, None, false), usable(2, None, true)];
        let err = |brokers: &[UsableBroker], rf| {
            place_replicas(brokers, 1, rf, &mut PlacementRng::new(0)).unwrap_err()
        };
        assert_eq!(
            err(&brokers, 3),
            ControllerError::InvalidReplicationFactor(
                "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered.".into()
            )
        );
        assert_eq!(
            err(&brokers, 0),
            ControllerError::InvalidReplicationFactor(
                "Invalid replication factor 0: the replication factor must be positive.".into()
            )
        );
        assert_eq!(
            err(&brokers[1..], 1),
            ControllerError::InvalidReplicationFactor("All brokers are currently fenced.".into())
        );
        assert_eq!(
            err(&[], 1),
            ControllerError::InvalidReplicationFactor("All brokers are currently fenced.".into())
        );
    }

    #[test]
    fn the_same_seed_places_the_same_way() {
        let brokers: Vec<_> = (1..=5).map(|id| usable(id, None, false)).collect();
        let a = place_replicas(&brokers, 20, 2, &mut PlacementRng::new(42)).unwrap();
        let b = place_replicas(&brokers, 20, 2, &mut PlacementRng::new(42)).unwrap();
        assert_eq!(a, b);
    }
}
