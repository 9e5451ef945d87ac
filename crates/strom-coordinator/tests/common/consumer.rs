//! A consumer-group simulator: a shard, a record log, and clients that own exactly
//! what their last heartbeat response assigned them. `check` asserts that no
//! partition is owned by two clients at once.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::TopicId;

use super::{client, gid, s};

pub type Parts = BTreeMap<TopicId, BTreeSet<i32>>;

pub const T: TopicId = TopicId::from_u128(0x7);
pub const U: TopicId = TopicId::from_u128(0x9);
pub const REBALANCE_TIMEOUT_MS: i32 = 60_000;

/// `t` with 4 partitions, `u` with 3.
pub fn cluster() -> BTreeMap<String, (TopicId, i32)> {
    [("t".to_owned(), (T, 4)), ("u".to_owned(), (U, 3))].into()
}

pub fn parts(list: &[(TopicId, &[i32])]) -> Parts {
    list.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn to_wire(owned: &Parts) -> Vec<Owned> {
    owned
        .iter()
        .map(|(t, ps)| {
            Owned::default()
                .with_topic_id(*t)
                .with_partitions(ps.iter().copied().collect())
        })
        .collect()
}

pub fn from_wire(a: &consumer_group_heartbeat_response::Assignment) -> Parts {
    let mut out = Parts::new();
    for tp in &a.topic_partitions {
        if !tp.partitions.is_empty() {
            out.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    out
}

pub fn join_request(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| TopicName(s(t))).collect()))
        .with_topic_partitions(Some(Vec::new()))
}

pub fn cg_heartbeat_of(out: &Output, rid: u64) -> ConsumerGroupHeartbeatResponse {
    match out.reply_for(rid) {
        Some(Reply::ConsumerGroupHeartbeat(r)) => r.clone(),
        other => panic!("no ConsumerGroupHeartbeat reply for {rid}: {other:?}"),
    }
}

pub struct Sim {
    pub shard: GroupCoordinatorShard,
    pub log: Vec<CoordinatorRecord>,
    pub now: i64,
    rid: u64,
    pub group: String,
    /// What each client owns and the epoch it last heard.
    pub owned: BTreeMap<String, Parts>,
    pub epochs: BTreeMap<String, i32>,
}

impl Sim {
    pub fn new(config: GroupConfig) -> Self {
        let mut shard = GroupCoordinatorShard::new(config);
        let out = shard.set_topic_metadata(0, &cluster());
        assert!(out.is_empty());
        Self {
            shard,
            log: Vec::new(),
            now: 0,
            rid: 0,
            group: "g".to_owned(),
            owned: BTreeMap::new(),
            epochs: BTreeMap::new(),
        }
    }

    pub fn keep(&mut self, out: Output) -> Output {
        self.log.extend(out.records.iter().cloned());
        out
    }

    /// Sends a heartbeat request and applies the response to the client's view.
    pub fn send(
        &mut self,
        member: &str,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        self.rid += 1;
        let rid = self.rid;
        let out = self
            .shard
            .consumer_group_heartbeat(self.now, rid, 1, &client("c"), request);
        let out = self.keep(out);
        let response = cg_heartbeat_of(&out, rid);
        if response.error_code == 0 {
            if response.member_epoch < 0 {
                self.owned.remove(member);
                self.epochs.remove(member);
            } else {
                self.epochs.insert(member.to_owned(), response.member_epoch);
                if let Some(a) = &response.assignment {
                    self.owned.insert(member.to_owned(), from_wire(a));
                }
            }
        }
        self.check();
        response
    }

    pub fn join(&mut self, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatResponse {
        let group = self.group.clone();
        self.send(member, join_request(&group, member, topics))
    }

    /// A regular heartbeat at the client's epoch, reporting what it owns.
    pub fn beat(&mut self, member: &str) -> ConsumerGroupHeartbeatResponse {
        let epoch = self.epochs.get(member).copied().unwrap_or(0);
        let owned = self.owned.get(member).cloned().unwrap_or_default();
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid(&self.group))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(to_wire(&owned)));
        self.send(member, request)
    }

    pub fn leave(&mut self, member: &str, epoch: i32) -> ConsumerGroupHeartbeatResponse {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid(&self.group))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1);
        self.send(member, request)
    }

    pub fn tick(&mut self, now: i64) -> Output {
        self.now = now;
        let out = self.shard.tick(now);
        self.keep(out)
    }

    /// Beats every client until nothing changes; returns the rounds it took.
    pub fn settle(&mut self) -> usize {
        for round in 0..20 {
            let before = (self.owned.clone(), self.epochs.clone());
            let members: Vec<String> = self.epochs.keys().cloned().collect();
            for m in members {
                self.beat(&m);
            }
            if before == (self.owned.clone(), self.epochs.clone()) {
                return round;
            }
        }
        panic!("group did not settle");
    }

    /// No partition is owned by two clients.
    pub fn check(&self) {
        let mut seen: BTreeMap<(TopicId, i32), &str> = BTreeMap::new();
        for (member, owned) in &self.owned {
            for (t, ps) in owned {
                for p in ps {
                    if let Some(other) = seen.insert((*t, *p), member) {
                        panic!("{t}-{p} owned by {member} and {other}: {:?}", self.owned);
                    }
                }
            }
        }
    }

    pub fn describe(&mut self) -> consumer_group_describe_response::DescribedGroup {
        let request =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(&self.group)]);
        match self
            .shard
            .consumer_group_describe(self.now, 9_999, 1, request)
            .reply_for(9_999)
        {
            Some(Reply::ConsumerGroupDescribe(r)) => r.groups[0].clone(),
            other => panic!("{other:?}"),
        }
    }
}
