//! Three voters with FileStorage in temporary dirs, over an in-memory network.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use strom_raft::{ProposeError, Quorum};

const VOTERS: [u64; 3] = [1, 2, 3];

type Node = (Arc<Quorum<TestSm>>, TestSm);

/// Three voters over one in-memory network, each with its own dir.
struct ThreeVoters {
    net: Arc<Net>,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Node>,
}

impl ThreeVoters {
    async fn start(snapshot_every: u64) -> Self {
        let net = Arc::new(Net::default());
        let dirs: Vec<_> = VOTERS
            .iter()
            .map(|_| tempfile::tempdir().unwrap())
            .collect();
        // Started together, so that each sees the others while it waits for a leader.
        let starts: Vec<_> = VOTERS
            .iter()
            .zip(&dirs)
            .map(|(id, dir)| {
                let (net, dir, config) = (
                    net.clone(),
                    dir.path().to_owned(),
                    config(*id, &VOTERS, snapshot_every),
                );
                tokio::spawn(async move { start_file_node(&net, &dir, config).await })
            })
            .collect();
        let mut nodes = Vec::new();
        for start in starts {
            nodes.push(start.await.unwrap());
        }
        Self { net, dirs, nodes }
    }

    fn node(&self, id: u64) -> &Node {
        self.nodes.iter().find(|(q, _)| q.node_id() == id).unwrap()
    }

    fn dir(&self, id: u64) -> &Path {
        self.dirs[VOTERS.iter().position(|v| *v == id).unwrap()].path()
    }

    /// Every voter but `id`.
    fn others(&self, id: u64) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|(q, _)| q.node_id() != id)
            .collect()
    }

    /// The leader that every voter but `excluded` agrees on.
    async fn leader(&self, excluded: Option<u64>) -> u64 {
        let quorums: Vec<_> = self
            .nodes
            .iter()
            .map(|(q, _)| q)
            .filter(|q| Some(q.node_id()) != excluded)
            .collect();
        agreed_leader(&quorums).await
    }

    async fn shutdown(&self) {
        for (q, _) in &self.nodes {
            q.shutdown().await;
        }
    }
}

/// Proposes each entry on `leader`, returning their offsets (which must be contiguous).
async fn propose_all(leader: &Quorum<TestSm>, entries: &[Vec<String>]) -> Vec<u64> {
    let mut offsets = Vec::new();
    for records in entries {
        offsets.push(
            leader
                .propose(records.clone())
                .await
                .expect("proposal commits"),
        );
    }
    for pair in offsets.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "offsets {offsets:?}");
    }
    offsets
}

async fn wait_applied(sm: &TestSm, offset: u64) -> common::Seen {
    eventually("entries applied", || {
        let seen = sm.seen();
        let last = seen
            .applied
            .last()
            .map(|(o, _)| *o)
            .max(seen.restored.last().copied());
        (last >= Some(offset)).then_some(seen)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_replicate_and_fail_over() {
    let voters = ThreeVoters::start(1000).await;
    let leader_id = voters.leader(None).await;
    let (leader, _) = voters.node(leader_id);

    assert_eq!(
        voters.others(leader_id)[0].0.propose(strings(&["x"])).await,
        Err(ProposeError::NotLeader {
            leader: Some(leader_id)
        })
    );

    let entries = vec![strings(&["a"]), strings(&["b", "c"]), strings(&["d"])];
    let offsets = propose_all(leader, &entries).await;
    let expected: Vec<(u64, Vec<String>)> = offsets.iter().copied().zip(entries.clone()).collect();
    for (_, sm) in &voters.nodes {
        let seen = wait_applied(sm, offsets[2]).await;
        assert_eq!(seen.applied, expected);
        assert_eq!(seen.state, strings(&["a", "b", "c", "d"]));
    }

    // The leader is cut off: the other two elect one of themselves and go on.
    voters.net.cut(leader_id, true);
    let new_leader_id = voters.leader(Some(leader_id)).await;
    assert_ne!(new_leader_id, leader_id);
    let (new_leader, _) = voters.node(new_leader_id);
    let later = propose_all(new_leader, &[strings(&["e"]), strings(&["f"])]).await;
    // The new leader's blank entry sits between the old and the new proposals.
    assert!(later[0] > offsets[2] + 1, "{later:?} after {offsets:?}");
    for (_, sm) in voters.others(leader_id) {
        let seen = wait_applied(sm, later[1]).await;
        assert_eq!(seen.state, strings(&["a", "b", "c", "d", "e", "f"]));
        assert_eq!(
            &seen.applied[3..],
            &[(later[0], strings(&["e"])), (later[1], strings(&["f"]))]
        );
    }

    // Back on the network, the old leader follows and applies the same entries.
    voters.net.cut(leader_id, false);
    let (_, old_sm) = voters.node(leader_id);
    let seen = wait_applied(old_sm, later[1]).await;
    assert_eq!(seen.state, strings(&["a", "b", "c", "d", "e", "f"]));
    // The old leader's vote requests may force one more election (openraft 0.9 has no
    // pre-vote), but its log ends in an older term, so it cannot win it.
    let final_leader_id = voters.leader(None).await;
    assert_ne!(final_leader_id, leader_id);
    let (final_leader, _) = voters.node(final_leader_id);
    let status = eventually("every voter matched at the leader's last entry", || {
        let status = final_leader.status();
        let matched = status.applied_offset.is_some()
            && status
                .voters
                .iter()
                .all(|v| v.matched_offset == status.applied_offset);
        matched.then_some(status)
    })
    .await;
    assert_eq!(status.leader, Some(final_leader_id));
    assert!(status.applied_offset >= Some(later[1]), "{status:?}");
    assert_eq!(status.voters.len(), 3);
    for voter in &status.voters {
        assert!(voter.last_contact_ms_ago.is_some(), "{status:?}");
        // Matched at the leader's last entry: the AppendEntries that got it there ended
        // at the leader's log end, so the voter counts as caught up.
        assert!(voter.last_caught_up_ms_ago.is_some(), "{status:?}");
    }
    voters.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_voter_restarts_from_its_files_and_catches_up() {
    // A snapshot every 4 entries: the restart rebuilds from a snapshot plus the log.
    let voters = ThreeVoters::start(4).await;
    let leader_id = voters.leader(None).await;
    let (leader, _) = voters.node(leader_id);
    let entries: Vec<Vec<String>> = (0..6).map(|i| vec![format!("r{i}")]).collect();
    let offsets = propose_all(leader, &entries).await;
    let (follower, follower_sm) = voters.others(leader_id)[0];
    let follower_id = follower.node_id();
    wait_applied(follower_sm, offsets[5]).await;

    voters.net.remove(follower_id);
    follower.shutdown().await;
    let more: Vec<Vec<String>> = (6..9).map(|i| vec![format!("r{i}")]).collect();
    let more_offsets = propose_all(leader, &more).await;

    let (restarted, sm) = start_file_node(
        &voters.net,
        voters.dir(follower_id),
        config(follower_id, &VOTERS, 4),
    )
    .await;
    let seen = wait_applied(&sm, more_offsets[2]).await;
    let all_records: Vec<String> = (0..9).map(|i| format!("r{i}")).collect();
    assert_eq!(seen.state, all_records);
    // Restored from the snapshot it had taken, then the entries after it from the log.
    let restored = seen.restored[0];
    assert!(restored >= offsets[0], "{seen:?}");
    let applied_offsets: Vec<u64> = seen.applied.iter().map(|(o, _)| *o).collect();
    let expected: Vec<u64> = offsets
        .iter()
        .chain(&more_offsets)
        .copied()
        .filter(|o| *o > restored)
        .collect();
    assert_eq!(applied_offsets, expected, "{seen:?}");
    restarted.shutdown().await;
    voters.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_voter_gets_the_snapshot_installed() {
    let voters = ThreeVoters::start(3).await;
    let leader_id = voters.leader(None).await;
    let (leader, _) = voters.node(leader_id);
    let (lagging, lagging_sm) = voters.others(leader_id)[0];
    let lagging_id = lagging.node_id();
    let first = propose_all(leader, &[strings(&["a"])]).await;
    wait_applied(lagging_sm, first[0]).await;

    voters.net.cut(lagging_id, true);
    let entries: Vec<Vec<String>> = (0..8).map(|i| vec![format!("s{i}")]).collect();
    let offsets = propose_all(leader, &entries).await;
    // The leader snapshotted and purged the entries the lagging voter misses.
    let purged = eventually("the leader's snapshot", || {
        leader.status().snapshot_offset.filter(|s| *s > first[0])
    })
    .await;
    voters.net.cut(lagging_id, false);
    let seen = wait_applied(lagging_sm, offsets[7]).await;
    let mut expected = strings(&["a"]);
    expected.extend((0..8).map(|i| format!("s{i}")));
    assert_eq!(seen.state, expected);
    assert!(
        seen.restored.iter().any(|o| *o >= purged),
        "no snapshot installed: {seen:?}"
    );
    let checkpoints: Vec<String> =
        std::fs::read_dir(voters.dir(lagging_id).join("__cluster_metadata-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".checkpoint"))
            .collect();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    voters.shutdown().await;
}

/// An observer (a learner: not in `voters`) applies only committed entries, follows a new
/// leader after a failover, restarts from its own files, and stops receiving the log once
/// removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_follows_the_committed_log_across_failover_and_restart() {
    const OBSERVER: u64 = 4;
    let voters = ThreeVoters::start(1000).await;
    let net = &voters.net;
    let leader_id = voters.leader(None).await;
    let (leader, _) = voters.node(leader_id);
    propose_all(leader, &[strings(&["a"])]).await;

    let observer_dir = tempfile::tempdir().unwrap();
    let observer_config = config(OBSERVER, &VOTERS, 1000);
    assert!(observer_config.is_observer());
    let (observer, observer_sm) =
        start_file_node(net, observer_dir.path(), observer_config.clone()).await;
    // Not added yet: it hears nothing and never elects itself.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(observer.leader(), None);
    assert!(observer_sm.seen().applied.is_empty());

    // Every voter learns where the observer is (the application does it from its state).
    for (q, _) in &voters.nodes {
        q.set_observer_addresses([(OBSERVER, "127.0.0.1:19004".to_string())].into());
    }
    leader.add_observer(OBSERVER).await.unwrap();
    leader.add_observer(OBSERVER).await.unwrap(); // already one: nothing to do
    assert_eq!(leader.observers(), vec![OBSERVER]);
    let first = propose_all(leader, &[strings(&["b"])]).await;
    let seen = wait_applied(&observer_sm, first[0]).await;
    assert_eq!(seen.state, strings(&["a", "b"]));
    assert_eq!(observer.leader(), Some(leader_id));
    assert_eq!(
        observer.propose(strings(&["x"])).await,
        Err(ProposeError::NotLeader {
            leader: Some(leader_id)
        })
    );
    let status = leader.status();
    assert_eq!(status.voters.len(), 3);
    assert_eq!(status.observers.len(), 1);
    assert_eq!(status.observers[0].node_id, OBSERVER);

    // The leader goes away: the new leader sends the observer the log (membership is in it).
    net.cut(leader_id, true);
    let new_leader_id = voters.leader(Some(leader_id)).await;
    let (new_leader, _) = voters.node(new_leader_id);
    let later = propose_all(new_leader, &[strings(&["c"])]).await;
    let seen = wait_applied(&observer_sm, later[0]).await;
    assert_eq!(seen.state, strings(&["a", "b", "c"]));
    eventually("the observer knows the new leader", || {
        (observer.leader() == Some(new_leader_id)).then_some(())
    })
    .await;

    // Restarted from its files, it applies its own log again and keeps following.
    net.remove(OBSERVER);
    observer.shutdown().await;
    drop(observer);
    let (observer, observer_sm) =
        start_file_node(net, observer_dir.path(), observer_config.clone()).await;
    let more = propose_all(new_leader, &[strings(&["d"])]).await;
    let seen = wait_applied(&observer_sm, more[0]).await;
    assert_eq!(seen.state, strings(&["a", "b", "c", "d"]));

    // Removed: it gets nothing after the removal.
    new_leader.remove_observer(OBSERVER).await.unwrap();
    assert!(new_leader.observers().is_empty());
    let applied_at_removal = observer_sm.seen().applied.len();
    let after = propose_all(new_leader, &[strings(&["e"])]).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let seen = observer_sm.seen();
    assert!(
        seen.applied.iter().all(|(o, _)| *o < after[0]),
        "{seen:?} (applied {applied_at_removal} at removal)"
    );
    observer.shutdown().await;
    voters.shutdown().await;
}
