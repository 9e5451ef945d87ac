//! `strom group describe GROUP`: the group, its members, and per
//! partition the committed offset, log end offset, lag and owner (like
//! `kafka-consumer-groups --describe`).

use std::collections::BTreeMap;

use anyhow::bail;
use strom_client::{
    Admin, CommittedOffset, Consumer, ConsumerConfig, GroupDescription, OffsetSpec, TopicPartition,
};

use super::dash;
use crate::cli::{print_table, BrokerArgs};

const GROUP_ID_NOT_FOUND: i16 = 69;

/// One line of the offsets table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: Option<i64>,
    /// Index into the group's members of the partition's owner.
    pub owner: Option<usize>,
}

impl OffsetRow {
    /// Kafka's lag: log end minus committed, when both are known.
    pub fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.committed?)
    }
}

/// Rows for every partition a member owns or the group has committed,
/// sorted by topic and partition; log end offsets are filled in later.
pub fn offset_rows(
    group: &GroupDescription,
    committed: &BTreeMap<TopicPartition, CommittedOffset>,
) -> Vec<OffsetRow> {
    let mut owners: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for (i, member) in group.members.iter().enumerate() {
        for tp in member.assignment.iter().flatten() {
            for p in &tp.partitions {
                owners.insert((tp.topic.clone(), *p), i);
            }
        }
    }
    let mut keys: Vec<TopicPartition> = owners.keys().cloned().collect();
    keys.extend(committed.keys().cloned());
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|tp| OffsetRow {
            committed: committed.get(&tp).map(|c| c.offset),
            owner: owners.get(&tp).copied(),
            log_end: None,
            topic: tp.0,
            partition: tp.1,
        })
        .collect()
}

fn cell(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// "t(0,1),u(2)": a member's assignment in one cell.
fn assignment_cell(member: &strom_client::MemberDescription) -> String {
    match &member.assignment {
        None => "-".to_owned(),
        Some(parts) if parts.is_empty() => "-".to_owned(),
        Some(parts) => parts
            .iter()
            .map(|tp| {
                let ps: Vec<String> = tp.partitions.iter().map(i32::to_string).collect();
                format!("{}({})", tp.topic, ps.join(","))
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

pub async fn run(admin: &mut Admin, brokers: &BrokerArgs, group: &str) -> anyhow::Result<()> {
    let description = match admin.describe_group(group).await {
        Ok(d) => d,
        Err(e) if e.code() == Some(GROUP_ID_NOT_FOUND) => {
            bail!("consumer group '{group}' does not exist")
        }
        Err(e) => return Err(e.into()),
    };
    let committed = admin.list_group_offsets(group).await?;
    let mut rows = offset_rows(&description, &committed);

    // Log end offsets per topic; a topic that cannot be asked shows "-".
    let mut consumer = Consumer::new(brokers.client()?, ConsumerConfig::default());
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for row in &rows {
        by_topic
            .entry(row.topic.clone())
            .or_default()
            .push(row.partition);
    }
    for (topic, partitions) in &by_topic {
        match consumer
            .list_offsets(topic, partitions, OffsetSpec::Latest)
            .await
        {
            Ok(ends) => {
                for row in rows.iter_mut().filter(|r| &r.topic == topic) {
                    row.log_end = ends.get(&row.partition).copied().flatten();
                }
            }
            Err(e) => eprintln!("warning: no log end offsets for topic {topic}: {e}"),
        }
    }

    let coordinator = &description.coordinator;
    print_table(
        &["GROUP", group],
        &[
            vec!["STATE".to_owned(), dash(&description.state)],
            vec!["PROTOCOL-TYPE".to_owned(), dash(&description.protocol_type)],
            vec!["PROTOCOL".to_owned(), dash(&description.protocol)],
            vec![
                "COORDINATOR".to_owned(),
                format!("{} ({})", coordinator.id, coordinator.addr()),
            ],
            vec!["MEMBERS".to_owned(), description.members.len().to_string()],
        ],
    );
    println!();
    if matches!(
        description.state.as_str(),
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling"
    ) {
        eprintln!("warning: consumer group '{group}' is rebalancing");
    }
    if description.members.is_empty() {
        println!("Consumer group '{group}' has no active members.");
    } else {
        let members: Vec<Vec<String>> = description
            .members
            .iter()
            .map(|m| {
                let count = m
                    .assignment
                    .iter()
                    .flatten()
                    .map(|tp| tp.partitions.len())
                    .sum::<usize>();
                vec![
                    m.member_id.clone(),
                    dash(m.group_instance_id.as_deref().unwrap_or("")),
                    dash(&m.client_id),
                    dash(&m.client_host),
                    count.to_string(),
                    assignment_cell(m),
                ]
            })
            .collect();
        print_table(
            &[
                "CONSUMER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "#PARTITIONS",
                "ASSIGNMENT",
            ],
            &members,
        );
    }
    println!();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let owner = r.owner.and_then(|i| description.members.get(i));
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                cell(r.committed),
                cell(r.log_end),
                cell(r.lag()),
                owner.map_or_else(|| "-".to_owned(), |m| m.member_id.clone()),
                owner.map_or_else(|| "-".to_owned(), |m| dash(&m.client_host)),
                owner.map_or_else(|| "-".to_owned(), |m| dash(&m.client_id)),
            ]
        })
        .collect();
    print_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &table,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use strom_client::{BrokerInfo, MemberDescription, TopicPartitions};

    fn member(id: &str, parts: &[(&str, &[i32])]) -> MemberDescription {
        MemberDescription {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            raw_assignment: Bytes::new(),
            assignment: Some(
                parts
                    .iter()
                    .map(|(t, p)| TopicPartitions {
                        topic: t.to_string(),
                        partitions: p.to_vec(),
                    })
                    .collect(),
            ),
        }
    }

    fn committed(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, CommittedOffset> {
        entries
            .iter()
            .map(|(t, p, o)| {
                let offset = CommittedOffset {
                    offset: *o,
                    leader_epoch: None,
                    metadata: String::new(),
                };
                ((t.to_string(), *p), offset)
            })
            .collect()
    }

    #[test]
    fn rows_join_owned_and_committed_partitions() {
        let group = GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![
                member("m1", &[("t", &[1, 0])]),
                member("m2", &[("u", &[0])]),
            ],
            coordinator: BrokerInfo {
                id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
            },
        };
        let rows = offset_rows(&group, &committed(&[("t", 0, 4), ("a", 3, 7)]));
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.committed, r.owner))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", 3, Some(7), None),
                ("t", 0, Some(4), Some(0)),
                ("t", 1, None, Some(0)),
                ("u", 0, None, Some(1)),
            ]
        );
        assert_eq!(assignment_cell(&group.members[0]), "t(1,0)");
    }

    #[test]
    fn lag_needs_both_offsets() {
        let mut row = OffsetRow {
            topic: "t".into(),
            partition: 0,
            committed: Some(3),
            log_end: Some(10),
            owner: None,
        };
        assert_eq!(row.lag(), Some(7));
        row.log_end = None;
        assert_eq!(row.lag(), None);
        row.log_end = Some(10);
        row.committed = None;
        assert_eq!(row.lag(), None);
    }
}
