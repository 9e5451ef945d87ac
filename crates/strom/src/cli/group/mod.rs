//! `strom group ...`: consumer-group administration, after Kafka's
//! `kafka-consumer-groups` tool.

mod describe;
mod plan;
mod reset;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use strom_client::{Admin, Consumer, ConsumerConfig, TopicPartition};

use super::{print_table, report, BrokerArgs};

#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// List groups with their state and protocol type.
    List {
        /// Only groups in these states (comma-separated, any case), e.g.
        /// Stable,Empty.
        #[arg(long = "state", value_name = "STATE,...")]
        state: Option<String>,
    },
    /// Show a group: state, members and their partitions, and per
    /// partition the committed offset, log end offset and lag.
    Describe {
        #[arg(value_name = "GROUP")]
        group: String,
    },
    /// Delete groups (each must have no active members).
    Delete {
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Delete a group's committed offsets of some topics or partitions.
    DeleteOffsets {
        #[arg(value_name = "GROUP")]
        group: String,
        /// TOPIC (all partitions) or TOPIC:P,P,... (repeatable).
        #[arg(long = "topic", required = true, value_name = "TOPIC[:P,...]")]
        topics: Vec<String>,
    },
    /// Move a group's committed offsets (the group must be inactive).
    /// Without --execute this only prints the plan.
    ResetOffsets(reset::ResetArgs),
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        GroupCommand::List { state } => list(&mut admin, state.as_deref()).await,
        GroupCommand::Describe { group } => describe::run(&mut admin, &args.brokers, &group).await,
        GroupCommand::Delete { groups } => {
            let results = admin.delete_groups(&groups).await?;
            report(results, "groups", |group| {
                println!("Deleted group {group}.")
            })
        }
        GroupCommand::DeleteOffsets { group, topics } => {
            delete_offsets(&mut admin, &args.brokers, &group, &topics).await
        }
        GroupCommand::ResetOffsets(reset) => reset::run(&mut admin, &args.brokers, reset).await,
    }
}

/// Kafka's group states, as ListGroups and DescribeGroups name them.
const STATES: [&str; 8] = [
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
    "NotReady",
];

/// Comma-separated state names, any case, in Kafka's spelling.
fn parse_states(text: &str) -> anyhow::Result<Vec<String>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            STATES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(s))
                .map(|known| known.to_string())
                .with_context(|| {
                    format!("unknown group state '{s}' (known: {})", STATES.join(", "))
                })
        })
        .collect()
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

async fn list(admin: &mut Admin, state: Option<&str>) -> anyhow::Result<()> {
    let states = match state {
        Some(text) => {
            let states = parse_states(text)?;
            if states.is_empty() {
                bail!("--state needs at least one state");
            }
            states
        }
        None => Vec::new(),
    };
    let groups = admin.list_groups(&states).await?;
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                dash(g.state.as_deref().unwrap_or("")),
                dash(g.group_type.as_deref().unwrap_or("")),
                dash(&g.protocol_type),
            ]
        })
        .collect();
    print_table(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"], &rows);
    Ok(())
}

/// `TOPIC` or `TOPIC:P,P,...`: the topic and its listed partitions (none
/// listed means all).
fn parse_topic_spec(text: &str) -> anyhow::Result<(String, Vec<i32>)> {
    let (topic, partitions) = match text.split_once(':') {
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| match p.trim().parse::<i32>() {
                    Ok(p) if p >= 0 => Ok(p),
                    _ => bail!("invalid partition '{p}' in '{text}'"),
                })
                .collect::<anyhow::Result<Vec<i32>>>()?;
            (topic, partitions)
        }
        None => (text, Vec::new()),
    };
    if topic.is_empty() {
        bail!("invalid topic '{text}': expected TOPIC or TOPIC:P,P,...");
    }
    Ok((topic.to_owned(), partitions))
}

/// The partitions `--topic` options name, checked against the topics'
/// metadata (all partitions when a spec lists none).
async fn resolve_partitions(
    consumer: &mut Consumer,
    specs: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
    let mut resolved: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for spec in specs {
        let (topic, listed) = parse_topic_spec(spec)?;
        let existing = consumer.partitions(&topic).await?;
        let chosen = if listed.is_empty() {
            existing
        } else {
            if let Some(p) = listed.iter().find(|p| !existing.contains(p)) {
                bail!("topic {topic} has no partition {p}");
            }
            listed
        };
        let entry = resolved.entry(topic).or_default();
        entry.extend(chosen);
        entry.sort_unstable();
        entry.dedup();
    }
    Ok(resolved)
}

async fn delete_offsets(
    admin: &mut Admin,
    brokers: &BrokerArgs,
    group: &str,
    specs: &[String],
) -> anyhow::Result<()> {
    let mut consumer = Consumer::new(brokers.client()?, ConsumerConfig::default());
    let partitions: Vec<TopicPartition> = resolve_partitions(&mut consumer, specs)
        .await?
        .into_iter()
        .flat_map(|(topic, ps)| ps.into_iter().map(move |p| (topic.clone(), p)))
        .collect();
    let results = admin.delete_group_offsets(group, &partitions).await?;
    let mut failures = 0;
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|((topic, partition), result)| {
            let status = match result {
                Ok(()) => "Successful".to_owned(),
                Err(e) => {
                    failures += 1;
                    format!("Error: {}", e)
                }
            };
            vec![topic.clone(), partition.to_string(), status]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "STATUS"], &rows);
    if failures > 0 {
        bail!("{failures} of {} partitions failed", results.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_matched_in_any_case() {
        assert_eq!(
            parse_states("stable, EMPTY,preparingrebalance").unwrap(),
            ["Stable", "Empty", "PreparingRebalance"]
        );
        assert_eq!(
            parse_states("Stable,bogus").unwrap_err().to_string(),
            "unknown group state 'bogus' (known: PreparingRebalance, CompletingRebalance, \
             Stable, Dead, Empty, Assigning, Reconciling, NotReady)"
        );
        assert!(parse_states(",").unwrap().is_empty());
    }

    #[test]
    fn topic_specs_name_a_topic_and_maybe_partitions() {
        assert_eq!(
            parse_topic_spec("orders").unwrap(),
            ("orders".into(), vec![])
        );
        assert_eq!(
            parse_topic_spec("orders:2,0").unwrap(),
            ("orders".into(), vec![2, 0])
        );
        assert_eq!(
            parse_topic_spec("orders:1,x").unwrap_err().to_string(),
            "invalid partition 'x' in 'orders:1,x'"
        );
        assert!(parse_topic_spec("orders:").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }
}
