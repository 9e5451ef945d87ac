//! What a run must satisfy once healed and quiet: no acknowledged record lost, no
//! duplicate, replicas identical up to the high watermark, the consumer read nothing
//! later lost. (One leader per leader epoch and per raft term is checked while running.)

use std::collections::BTreeMap;

use strom_replication::{MemLog, ReplicaLog};
use strom_wire::batch::BatchHeader;

use crate::net::lock;
use crate::{NodeState, Sim};

/// The partition's leader per the first node's metadata, when every node agrees.
fn leader(sim: &Sim, partition: i32) -> Option<i32> {
    let mut leaders = sim.nodes.values().map(|n| match &n.state {
        NodeState::Up(running) => running
            .sm
            .applied()
            .image
            .partition(&sim.topic_id, partition)
            .map(|p| (p.leader, p.isr.len())),
        _ => None,
    });
    let first = leaders.next()??;
    if leaders.any(|l| l != Some(first)) || first.0 <= 0 {
        return None;
    }
    // Healed: the ISR is every replica again.
    (first.1 == sim.config.nodes as usize).then_some(first.0)
}

fn log_of(sim: &Sim, node: i32, partition: i32) -> Option<&MemLog> {
    sim.nodes.get(&node)?.logs.get(&partition)
}

pub(crate) fn replicas_converged(sim: &Sim) -> bool {
    if sim
        .nodes
        .values()
        .any(|n| !matches!(n.state, NodeState::Up(_)))
    {
        return false;
    }
    (0..sim.config.partitions).all(|partition| {
        let Some(leader) = leader(sim, partition) else {
            return false;
        };
        let Some(leader_log) = log_of(sim, leader, partition) else {
            return false;
        };
        let consumer_done = sim
            .client
            .consumer
            .get(&partition)
            .is_some_and(|c| c.position == leader_log.high_watermark());
        consumer_done
            && leader_log.high_watermark() == leader_log.log_end_offset()
            && sim.nodes.keys().all(|&node| {
                log_of(sim, node, partition).is_some_and(|log| {
                    log.log_end_offset() == leader_log.log_end_offset()
                        && log.high_watermark() == leader_log.high_watermark()
                })
            })
    })
}

/// The violations, and the losses an unclean election explains.
pub(crate) fn check(sim: &Sim) -> (Vec<String>, Vec<String>) {
    let mut violations = Vec::new();
    let mut unclean_losses = Vec::new();
    let unclean = lock(&sim.world).observed.unclean_partitions.clone();
    for partition in 0..sim.config.partitions {
        let Some(leader) = leader(sim, partition) else {
            violations.push(format!("p{partition}: no agreed leader with a full ISR"));
            continue;
        };
        let Some(leader_log) = log_of(sim, leader, partition) else {
            violations.push(format!("p{partition}: leader {leader} has no log"));
            continue;
        };
        let high_watermark = leader_log.high_watermark();
        for &node in sim.nodes.keys() {
            match log_of(sim, node, partition) {
                Some(log) => {
                    if let Err(e) = log.same_prefix(leader_log, high_watermark) {
                        violations.push(format!(
                            "p{partition}: replica {node} differs from leader {leader} below the high watermark {high_watermark}: {e}"
                        ));
                    }
                }
                None => violations.push(format!("p{partition}: replica {node} has no log")),
            }
        }
        // Batches below the high watermark, by base offset: (sequence, crc).
        let mut committed = BTreeMap::new();
        let mut sequences = BTreeMap::new();
        for batch in leader_log.batches() {
            if batch.last_offset >= high_watermark {
                break;
            }
            let Ok(header) = BatchHeader::new(&batch.bytes) else {
                violations.push(format!(
                    "p{partition}: unreadable batch at {}",
                    batch.base_offset
                ));
                continue;
            };
            committed.insert(
                batch.base_offset,
                (
                    header.producer_epoch(),
                    header.base_sequence(),
                    header.crc(),
                ),
            );
            let key = (header.producer_epoch(), header.base_sequence());
            if let Some(other) = sequences.insert(key, batch.base_offset) {
                violations.push(format!(
                    "p{partition}: duplicate: epoch {} sequence {} at offsets {other} and {}",
                    header.producer_epoch(),
                    header.base_sequence(),
                    batch.base_offset
                ));
            }
        }
        let losses = if unclean.contains(&partition) {
            &mut unclean_losses
        } else {
            &mut violations
        };
        for acked in sim.client.acked.iter().filter(|a| a.partition == partition) {
            if committed.get(&acked.base_offset) != Some(&(acked.epoch, acked.sequence, acked.crc))
            {
                losses.push(format!(
                    "p{partition}: acknowledged batch seq {} at offset {} lost (found {:?})",
                    acked.sequence,
                    acked.base_offset,
                    committed.get(&acked.base_offset)
                ));
            }
        }
        for consumed in sim
            .client
            .consumed
            .iter()
            .filter(|c| c.partition == partition)
        {
            if committed.get(&consumed.base_offset).map(|c| c.2) != Some(consumed.crc) {
                losses.push(format!(
                    "p{partition}: consumed batch at offset {} later lost",
                    consumed.base_offset
                ));
            }
        }
    }
    (violations, unclean_losses)
}
