//! `strom cluster ...`: cluster information, leader elections and partition moves.

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use strom_client::{Admin, ElectionType, PartitionOutcome};

use strom_client::{ClusterInfo, QuorumInfo, TopicMetadata};

use super::topic::ids_or_dash;
use super::{print_table, BrokerArgs};

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers.
    Info,
    /// Elect partition leaders: the preferred replica, or (unclean) any live replica
    /// of a partition that has no leader. Every partition unless a topic is given.
    ElectLeaders {
        #[arg(long = "type", value_enum, default_value = "preferred")]
        election: Election,
        #[arg(long)]
        topic: Option<String>,
        /// One partition of the topic (default: all of them).
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
    /// Move a partition to other replicas, cancel a move, or list the moves in progress.
    #[command(group(ArgGroup::new("action").required(true).args(["replicas", "list", "cancel"])))]
    Reassign {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        /// The new replicas, preferred leader first (e.g. 1,2,3).
        #[arg(long, value_delimiter = ',', value_name = "IDS", requires_all = ["topic", "partition"])]
        replicas: Option<Vec<i32>>,
        /// List the moves in progress (of the topic, or partition, if given).
        #[arg(long)]
        list: bool,
        /// Cancel the partition's move, back to its replicas from before.
        #[arg(long, requires_all = ["topic", "partition"])]
        cancel: bool,
    },
    /// Show the brokers (fenced or not), the active controller, each metadata quorum
    /// voter's lag, and the under-replicated and offline partitions.
    Status,
    /// Decommission a broker (Kafka's `kafka-cluster.sh unregister`): move its
    /// partitions away and stop it first.
    Unregister {
        /// The id of the broker to unregister.
        #[arg(long)]
        id: i32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Election {
    Preferred,
    Unclean,
}

/// Kafka's ELECTION_NOT_NEEDED: the partition already has the leader asked for.
const ELECTION_NOT_NEEDED: i16 = 84;

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        ClusterCommand::Info => {
            let cluster = admin.describe_cluster().await?;
            print_table(
                &["CLUSTER", &cluster.cluster_id],
                &[vec![
                    "CONTROLLER".to_owned(),
                    cluster.controller_id.to_string(),
                ]],
            );
            println!();
            let rows: Vec<Vec<String>> = cluster
                .brokers
                .iter()
                .map(|b| {
                    vec![
                        b.id.to_string(),
                        b.host.clone(),
                        b.port.to_string(),
                        b.rack.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["BROKER", "HOST", "PORT", "RACK"], &rows);
            Ok(())
        }
        ClusterCommand::ElectLeaders {
            election,
            topic,
            partition,
        } => elect_leaders(&mut admin, election, topic, partition).await,
        ClusterCommand::Reassign {
            topic,
            partition,
            replicas,
            list,
            cancel: _,
        } => {
            if list {
                return list_reassignments(&mut admin, topic, partition).await;
            }
            let (Some(topic), Some(partition)) = (topic, partition) else {
                bail!("--topic and --partition are required");
            };
            let mut outcomes = admin
                .alter_partition_reassignments(&[(topic.clone(), partition, replicas.clone())])
                .await?;
            let outcome = outcomes
                .pop()
                .context("the broker answered for no partition")?;
            outcome.result?;
            match replicas {
                Some(replicas) => println!(
                    "Reassignment of {topic}-{partition} to replicas {} started.",
                    join(&replicas)
                ),
                None => println!("Reassignment of {topic}-{partition} cancelled."),
            }
            Ok(())
        }
        ClusterCommand::Unregister { id } => {
            admin.unregister_broker(id).await?;
            println!("Broker {id} is no longer registered.");
            Ok(())
        }
        ClusterCommand::Status => {
            let cluster = admin.describe_cluster_with_fenced().await?;
            // The active controller is the quorum's leader; without DescribeQuorum, what
            // DescribeCluster names.
            let quorum = admin.describe_quorum().await;
            let topics = admin.list_topics().await?;
            print!("{}", status_report(&cluster, quorum.as_ref(), &topics));
            if let Err(e) = &quorum {
                eprintln!("metadata quorum not described: {e}");
            }
            Ok(())
        }
    }
}

async fn elect_leaders(
    admin: &mut Admin,
    election: Election,
    topic: Option<String>,
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let election = match election {
        Election::Preferred => ElectionType::Preferred,
        Election::Unclean => ElectionType::Unclean,
    };
    let partitions: Option<Vec<(String, Vec<i32>)>> = match (topic, partition) {
        (None, _) => None,
        (Some(topic), Some(partition)) => Some(vec![(topic, vec![partition])]),
        (Some(topic), None) => {
            let described = admin.describe_topics(std::slice::from_ref(&topic)).await?;
            let count = described
                .first()
                .map(|t| t.partitions.len() as i32)
                .unwrap_or(0);
            Some(vec![(topic, (0..count).collect())])
        }
    };
    let outcomes = admin.elect_leaders(election, partitions.as_deref()).await?;
    if outcomes.is_empty() {
        println!("No partition needed an election.");
        return Ok(());
    }
    let failed = outcomes
        .iter()
        .filter(|o| {
            o.result
                .as_ref()
                .is_err_and(|e| e.code() != Some(ELECTION_NOT_NEEDED))
        })
        .count();
    let total = outcomes.len();
    let rows: Vec<Vec<String>> = outcomes.into_iter().map(election_row).collect();
    print_table(&["TOPIC", "PARTITION", "RESULT"], &rows);
    if failed > 0 {
        bail!("{failed} of {total} elections failed");
    }
    Ok(())
}

fn election_row(outcome: PartitionOutcome) -> Vec<String> {
    let result = match outcome.result {
        Ok(()) => "ELECTED".to_owned(),
        Err(e) => match &e {
            strom_client::Error::Kafka { name, .. } => name.clone(),
            other => other.to_string(),
        },
    };
    vec![outcome.topic, outcome.partition.to_string(), result]
}

async fn list_reassignments(
    admin: &mut Admin,
    topic: Option<String>,
    partition: Option<i32>,
) -> anyhow::Result<()> {
    let listed: Vec<Vec<String>> = admin
        .list_partition_reassignments(None)
        .await?
        .into_iter()
        .filter(|r| topic.as_ref().is_none_or(|t| *t == r.topic))
        .filter(|r| partition.is_none_or(|p| p == r.partition))
        .map(|r| {
            vec![
                r.topic,
                r.partition.to_string(),
                join(&r.replicas),
                or_dash(join(&r.adding_replicas)),
                or_dash(join(&r.removing_replicas)),
            ]
        })
        .collect();
    if listed.is_empty() {
        println!("No partition reassignment is in progress.");
        return Ok(());
    }
    print_table(
        &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
        &listed,
    );
    Ok(())
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

fn dash_or(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The `cluster status` text. Quorum times are shown as milliseconds before the leader's
/// own answer time (the leader reports itself as fetching then), so they do not depend on
/// this machine's clock.
fn status_report(
    cluster: &ClusterInfo,
    quorum: Result<&QuorumInfo, &strom_client::Error>,
    topics: &[TopicMetadata],
) -> String {
    use super::format_table;
    let mut out = String::new();
    let controller = quorum.map_or(cluster.controller_id, |q| q.leader_id);
    out += &format_table(
        &["CLUSTER", &cluster.cluster_id],
        &[vec!["CONTROLLER".to_owned(), controller.to_string()]],
    );
    out.push('\n');
    let brokers: Vec<Vec<String>> = cluster
        .brokers
        .iter()
        .map(|b| {
            let fenced = cluster.fenced.contains(&b.id);
            vec![
                b.id.to_string(),
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_else(|| "-".to_owned()),
                if fenced { "fenced" } else { "unfenced" }.to_owned(),
            ]
        })
        .collect();
    out += &format_table(&["BROKER", "HOST", "PORT", "RACK", "STATE"], &brokers);

    if let Ok(q) = quorum {
        out.push('\n');
        out += &format_table(
            &["QUORUM-LEADER", &q.leader_id.to_string()],
            &[
                vec!["LEADER-EPOCH".to_owned(), q.leader_epoch.to_string()],
                vec!["HIGH-WATERMARK".to_owned(), q.high_watermark.to_string()],
            ],
        );
        out.push('\n');
        let leader_end = q
            .voters
            .iter()
            .find(|v| v.replica_id == q.leader_id)
            .map(|v| v.log_end_offset);
        let leader_now = q
            .voters
            .iter()
            .find(|v| v.replica_id == q.leader_id)
            .and_then(|v| v.last_fetch_timestamp);
        let ago = |at: Option<i64>| dash_or(leader_now.zip(at).map(|(now, at)| now - at));
        let voters: Vec<Vec<String>> = q
            .voters
            .iter()
            .map(|v| {
                let lag = leader_end
                    .filter(|_| v.log_end_offset >= 0)
                    .map(|end| end - v.log_end_offset);
                vec![
                    v.replica_id.to_string(),
                    if v.replica_id == q.leader_id {
                        "leader"
                    } else {
                        "follower"
                    }
                    .to_owned(),
                    dash_or((v.log_end_offset >= 0).then_some(v.log_end_offset)),
                    dash_or(lag),
                    ago(v.last_fetch_timestamp),
                    ago(v.last_caught_up_timestamp),
                ]
            })
            .collect();
        out += &format_table(
            &[
                "VOTER",
                "STATUS",
                "LOG-END-OFFSET",
                "LAG",
                "LAST-FETCH-MS-AGO",
                "CAUGHT-UP-MS-AGO",
            ],
            &voters,
        );
    }

    // Kafka's definitions: under-replicated when the ISR is smaller than the replica set,
    // offline when there is no leader.
    let mut under_replicated = Vec::new();
    let mut offline = Vec::new();
    for topic in topics {
        for p in &topic.partitions {
            let row = vec![
                topic.name.clone(),
                p.partition.to_string(),
                p.leader.to_string(),
                ids_or_dash(&p.replicas),
                ids_or_dash(&p.isr),
                ids_or_dash(&p.offline_replicas),
            ];
            if p.leader < 0 {
                offline.push(row.clone());
            }
            if p.isr.len() < p.replicas.len() {
                under_replicated.push(row);
            }
        }
    }
    let headers = ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"];
    for (title, list) in [
        ("UNDER-REPLICATED-PARTITIONS", &under_replicated),
        ("OFFLINE-PARTITIONS", &offline),
    ] {
        out.push('\n');
        out += &format!("{title}  {}\n", list.len());
        if !list.is_empty() {
            out += &format_table(&headers, list);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::{BrokerInfo, PartitionMetadata, QuorumReplica};

    fn broker(id: i32, rack: Option<&str>) -> BrokerInfo {
        BrokerInfo {
            id,
            host: "127.0.0.1".to_owned(),
            port: 9090 + id,
            rack: rack.map(str::to_owned),
        }
    }

    fn partition(
        index: i32,
        leader: i32,
        replicas: &[i32],
        isr: &[i32],
        offline: &[i32],
    ) -> PartitionMetadata {
        PartitionMetadata {
            partition: index,
            leader,
            leader_epoch: 3,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: offline.to_vec(),
            error_code: if leader < 0 { 5 } else { 0 },
        }
    }

    #[test]
    fn status_names_fenced_brokers_lagging_voters_and_unhealthy_partitions() {
        let cluster = ClusterInfo {
            cluster_id: "c1".to_owned(),
            controller_id: 3,
            brokers: vec![broker(1, Some("a")), broker(2, None), broker(3, Some("b"))],
            fenced: vec![2],
        };
        let now = 1_000_000;
        let replica = |id, end, fetched: Option<i64>, caught_up: Option<i64>| QuorumReplica {
            replica_id: id,
            log_end_offset: end,
            last_fetch_timestamp: fetched,
            last_caught_up_timestamp: caught_up,
        };
        let quorum = QuorumInfo {
            leader_id: 1,
            leader_epoch: 5,
            high_watermark: 120,
            voters: vec![
                replica(1, 130, Some(now), Some(now)),
                replica(2, -1, None, None),
                replica(3, 118, Some(now - 40), Some(now - 900)),
            ],
            observers: Vec::new(),
        };
        let topics = vec![TopicMetadata {
            name: "orders".to_owned(),
            topic_id: Default::default(),
            is_internal: false,
            error_code: 0,
            partitions: vec![
                partition(0, 1, &[1, 2, 3], &[1, 2, 3], &[]),
                partition(1, 3, &[3, 2], &[3], &[2]),
                partition(2, -1, &[2], &[2], &[2]),
            ],
        }];
        let report = status_report(&cluster, Ok(&quorum), &topics);
        assert_eq!(
            report,
            "CLUSTER     c1\n\
             CONTROLLER  1\n\
             \n\
             BROKER  HOST       PORT  RACK  STATE\n\
             1       127.0.0.1  9091  a     unfenced\n\
             2       127.0.0.1  9092  -     fenced\n\
             3       127.0.0.1  9093  b     unfenced\n\
             \n\
             QUORUM-LEADER   1\n\
             LEADER-EPOCH    5\n\
             HIGH-WATERMARK  120\n\
             \n\
             VOTER  STATUS    LOG-END-OFFSET  LAG  LAST-FETCH-MS-AGO  CAUGHT-UP-MS-AGO\n\
             1      leader    130             0    0                  0\n\
             2      follower  -               -    -                  -\n\
             3      follower  118             12   40                 900\n\
             \n\
             UNDER-REPLICATED-PARTITIONS  1\n\
             TOPIC   PARTITION  LEADER  REPLICAS  ISR  OFFLINE\n\
             orders  1          3       3,2       3    2\n\
             \n\
             OFFLINE-PARTITIONS  1\n\
             TOPIC   PARTITION  LEADER  REPLICAS  ISR  OFFLINE\n\
             orders  2          -1      2         2    2\n"
        );
        // Without DescribeQuorum the controller is what DescribeCluster names.
        let error = strom_client::Error::Protocol("no".to_owned());
        let report = status_report(&cluster, Err(&error), &[]);
        assert!(
            report.starts_with("CLUSTER     c1\nCONTROLLER  3\n"),
            "{report}"
        );
        assert!(!report.contains("QUORUM-LEADER"), "{report}");
    }
}
