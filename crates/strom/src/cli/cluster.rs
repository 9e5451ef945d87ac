//! `strom cluster ...`: cluster information, leader elections and partition moves.

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use strom_client::{Admin, ElectionType, PartitionOutcome};

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
