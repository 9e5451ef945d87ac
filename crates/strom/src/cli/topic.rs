//! `strom topic ...`: topic administration.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use strom_client::{
    Admin, AlterConfigOp, ConfigSource, Consumer, ConsumerConfig, NewTopic, OffsetSpec,
    ResourceType, TopicMetadata,
};

use super::{parse_key_value, print_table, report, BrokerArgs};

#[derive(Args)]
pub struct TopicArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create topics.
    Create {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long = "replication-factor", visible_alias = "replicas")]
        replication_factor: Option<i16>,
        /// A topic config (repeatable).
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Only ask the broker to validate the request.
        #[arg(long)]
        dry_run: bool,
    },
    /// List topics.
    List {
        /// Include internal topics.
        #[arg(short = 'i', long)]
        internal: bool,
    },
    /// Show a topic's partitions (leader, replicas, ISR, offsets) and configs.
    Describe {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Set or reset (delete) topic configs.
    AlterConfig {
        #[arg(value_name = "NAME")]
        name: String,
        /// Set a config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Reset a config to its default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Grow a topic to a total number of partitions.
    AddPartitions {
        #[arg(value_name = "NAME")]
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        total: i32,
    },
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        TopicCommand::Create {
            names,
            partitions,
            replication_factor,
            configs,
            dry_run,
        } => {
            let configs = configs
                .iter()
                .map(|c| parse_key_value(c))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let topics: Vec<NewTopic> = names
                .iter()
                .map(|name| NewTopic {
                    name: name.clone(),
                    partitions: partitions.unwrap_or(-1),
                    replication_factor: replication_factor.unwrap_or(-1),
                    configs: configs.clone(),
                })
                .collect();
            let results = admin.create_topics(&topics, dry_run).await?;
            let verb = if dry_run {
                "Validated creation of"
            } else {
                "Created"
            };
            report(results, "topics", |name| println!("{verb} topic {name}."))
        }
        TopicCommand::List { internal } => {
            let topics = admin.list_topics().await?;
            let rows: Vec<Vec<String>> = topics
                .iter()
                .filter(|t| internal || !t.is_internal)
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.partitions.len().to_string(),
                        replication_factor(t).to_string(),
                    ]
                })
                .collect();
            print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
            Ok(())
        }
        TopicCommand::Describe { name } => describe(&mut admin, &args.brokers, &name).await,
        TopicCommand::AlterConfig { name, set, delete } => {
            alter_config(&mut admin, &name, &set, &delete).await
        }
        TopicCommand::Delete { names } => {
            let results = admin.delete_topics(&names).await?;
            report(results, "topics", |name| println!("Deleted topic {name}."))
        }
        TopicCommand::AddPartitions { name, total } => {
            admin.create_partitions(&name, total).await?;
            println!("Topic {name} now has {total} partitions.");
            Ok(())
        }
    }
}

fn replication_factor(topic: &TopicMetadata) -> usize {
    topic.partitions.first().map_or(0, |p| p.replicas.len())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Ids, or "-" for none (an empty cell would shift the columns after it).
pub(crate) fn ids_or_dash(list: &[i32]) -> String {
    if list.is_empty() {
        "-".to_owned()
    } else {
        ids(list)
    }
}

async fn describe(admin: &mut Admin, brokers: &BrokerArgs, name: &str) -> anyhow::Result<()> {
    let topic = admin
        .describe_topics(&[name.to_owned()])
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .with_context(|| format!("the broker did not describe topic {name}"))?;
    topic.check()?;
    let mut configs = admin
        .describe_configs(ResourceType::Topic, name, None)
        .await?;
    configs.sort_by(|a, b| a.name.cmp(&b.name));

    // Offsets are informative only: a partition without a leader shows "-".
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let mut consumer = Consumer::new(brokers.client()?, ConsumerConfig::default());
    let start = consumer
        .list_offsets(name, &partitions, OffsetSpec::Earliest)
        .await
        .ok();
    let end = consumer
        .list_offsets(name, &partitions, OffsetSpec::Latest)
        .await
        .ok();
    let offset = |map: &Option<std::collections::BTreeMap<i32, Option<i64>>>, p: i32| {
        map.as_ref()
            .and_then(|m| m.get(&p).copied().flatten())
            .map_or_else(|| "-".to_owned(), |o| o.to_string())
    };

    print_table(
        &["NAME", name],
        &[
            vec!["TOPIC ID".to_owned(), topic.topic_id.to_string()],
            vec!["INTERNAL".to_owned(), topic.is_internal.to_string()],
            vec!["PARTITIONS".to_owned(), topic.partitions.len().to_string()],
            vec![
                "REPLICAS".to_owned(),
                replication_factor(&topic).to_string(),
            ],
        ],
    );
    println!();
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.leader.to_string(),
                p.leader_epoch.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                ids_or_dash(&p.offline_replicas),
                offset(&start, p.partition),
                offset(&end, p.partition),
            ]
        })
        .collect();
    print_table(
        &[
            "PARTITION",
            "LEADER",
            "EPOCH",
            "REPLICAS",
            "ISR",
            "OFFLINE",
            "LOG-START",
            "HIGH-WATERMARK",
        ],
        &rows,
    );
    println!();
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|c| {
            let value = match (&c.value, c.sensitive) {
                (Some(v), _) => v.clone(),
                (None, true) => "(sensitive)".to_owned(),
                (None, false) => String::new(),
            };
            vec![c.name.clone(), value, c.source.name().to_owned()]
        })
        .collect();
    print_table(&["CONFIG", "VALUE", "SOURCE"], &rows);
    Ok(())
}

async fn alter_config(
    admin: &mut Admin,
    name: &str,
    set: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    if set.is_empty() && delete.is_empty() {
        bail!("nothing to change: give --set KEY=VALUE and/or --delete KEY");
    }
    let set = set
        .iter()
        .map(|s| parse_key_value(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some((key, _)) = set.iter().find(|(k, _)| delete.contains(k)) {
        bail!("config {key} is both set and deleted");
    }
    if admin.supports_incremental_alter().await? {
        let ops: Vec<AlterConfigOp> = set
            .into_iter()
            .map(|(k, v)| AlterConfigOp::Set(k, v))
            .chain(delete.iter().map(|k| AlterConfigOp::Delete(k.clone())))
            .collect();
        admin
            .incremental_alter_configs(ResourceType::Topic, name, &ops)
            .await?;
    } else {
        // Legacy AlterConfigs replaces every dynamic config: start from the
        // topic's current overrides.
        let current = admin
            .describe_configs(ResourceType::Topic, name, None)
            .await?;
        let mut configs: Vec<(String, String)> = current
            .into_iter()
            .filter(|c| c.source == ConfigSource::DynamicTopicConfig && !delete.contains(&c.name))
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
            .collect();
        configs.extend(set);
        admin
            .alter_configs(ResourceType::Topic, name, &configs)
            .await?;
    }
    println!("Completed updating config for topic {name}.");
    Ok(())
}
