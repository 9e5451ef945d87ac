//! `strom group reset-offsets`: plan new committed offsets for an inactive
//! group, print the plan, and commit it only with `--execute`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Args;
use strom_client::{Admin, CommittedOffset, Consumer, ConsumerConfig, OffsetSpec, TopicPartition};

use super::plan::{plan, PartitionOffsets, ResetSpec};
use super::resolve_partitions;
use crate::cli::datetime::{parse_datetime, parse_duration_ms};
use crate::cli::{print_table, BrokerArgs};

const GROUP_ID_NOT_FOUND: i16 = 69;

#[derive(Args)]
pub struct ResetArgs {
    #[arg(value_name = "GROUP")]
    group: String,
    /// TOPIC (all partitions) or TOPIC:P,P,... (repeatable).
    #[arg(
        long = "topic",
        value_name = "TOPIC[:P,...]",
        required_unless_present = "all_topics"
    )]
    topics: Vec<String>,
    /// Every partition the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    target: Target,
    /// Only print the plan (the default without --execute).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Commit the planned offsets.
    #[arg(long)]
    execute: bool,
}

/// Exactly one reset scenario.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Target {
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset.
    #[arg(long)]
    to_latest: bool,
    /// The committed offset (the log end where there is none).
    #[arg(long)]
    to_current: bool,
    /// This offset, moved into [log start, log end] if outside.
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// The committed offset plus N (negative: back), kept inside the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// The first offset at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    to_timestamp: Option<i64>,
    /// The first offset at or after this time (UTC unless a zone is given).
    #[arg(long, value_name = "YYYY-MM-DDTHH:mm:SS.sss", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// The first offset at or after this long ago (ISO-8601, e.g. PT1H30M).
    #[arg(long, value_name = "PnDTnHnMnS", value_parser = parse_duration_ms)]
    by_duration: Option<i64>,
}

impl Target {
    fn spec(&self, now_ms: i64) -> ResetSpec {
        if self.to_earliest {
            ResetSpec::Earliest
        } else if self.to_latest {
            ResetSpec::Latest
        } else if let Some(n) = self.to_offset {
            ResetSpec::Offset(n)
        } else if let Some(n) = self.shift_by {
            ResetSpec::ShiftBy(n)
        } else if let Some(ts) = self.to_timestamp.or(self.to_datetime) {
            ResetSpec::Timestamp(ts)
        } else if let Some(ago) = self.by_duration {
            ResetSpec::Timestamp(now_ms.saturating_sub(ago))
        } else {
            ResetSpec::Current
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub async fn run(admin: &mut Admin, brokers: &BrokerArgs, args: ResetArgs) -> anyhow::Result<()> {
    let group = args.group.as_str();
    let spec = args.target.spec(now_ms());

    // Kafka resets only groups without active members.
    match admin.describe_group(group).await {
        Ok(d) if d.state == "Empty" || d.state == "Dead" => {}
        Ok(d) => bail!(
            "assignments can only be reset if the group '{group}' is inactive, but the \
             current state is {}",
            d.state
        ),
        Err(e) if e.code() == Some(GROUP_ID_NOT_FOUND) => {}
        Err(e) => return Err(e.into()),
    }
    let committed: BTreeMap<TopicPartition, CommittedOffset> =
        match admin.list_group_offsets(group).await {
            Ok(c) => c,
            Err(e) if e.code() == Some(GROUP_ID_NOT_FOUND) => BTreeMap::new(),
            Err(e) => return Err(e.into()),
        };

    let mut consumer = Consumer::new(brokers.client()?, ConsumerConfig::default());
    let partitions: BTreeMap<String, Vec<i32>> = if args.all_topics {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in committed.keys() {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        by_topic
    } else {
        resolve_partitions(&mut consumer, &args.topics).await?
    };

    let mut offsets: BTreeMap<TopicPartition, PartitionOffsets> = BTreeMap::new();
    for (topic, ps) in &partitions {
        let lookup = |what: &'static str| format!("{what} offsets of topic {topic}");
        let starts = consumer
            .list_offsets(topic, ps, OffsetSpec::Earliest)
            .await
            .with_context(|| lookup("log start"))?;
        let ends = consumer
            .list_offsets(topic, ps, OffsetSpec::Latest)
            .await
            .with_context(|| lookup("log end"))?;
        let for_time = match spec {
            ResetSpec::Timestamp(ts) => consumer
                .list_offsets(topic, ps, OffsetSpec::Timestamp(ts))
                .await
                .with_context(|| lookup("timestamp"))?,
            _ => BTreeMap::new(),
        };
        for p in ps {
            let known = |m: &BTreeMap<i32, Option<i64>>| m.get(p).copied().flatten();
            let (Some(log_start), Some(log_end)) = (known(&starts), known(&ends)) else {
                bail!("the broker gave no log start or end offset for {topic}-{p}");
            };
            offsets.insert(
                (topic.clone(), *p),
                PartitionOffsets {
                    log_start,
                    log_end,
                    committed: committed.get(&(topic.clone(), *p)).map(|c| c.offset),
                    for_timestamp: known(&for_time),
                },
            );
        }
    }

    let planned = plan(spec, &offsets)?;
    for line in &planned {
        if let Some(warning) = &line.warning {
            eprintln!("warning: {warning}");
        }
    }
    if args.execute {
        let new_offsets: BTreeMap<TopicPartition, i64> = planned
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.new_offset))
            .collect();
        let results = admin.commit_group_offsets(group, &new_offsets).await?;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string()))
            .collect();
        if let Some(first) = failed.first() {
            for e in &failed[1..] {
                eprintln!("error: {e}");
            }
            bail!("{first}");
        }
    } else if !args.dry_run {
        eprintln!(
            "note: nothing was changed; this is a dry run. Add --execute to commit these \
             offsets (or --dry-run to say so)."
        );
    }
    let rows: Vec<Vec<String>> = planned
        .iter()
        .map(|p| {
            vec![
                group.to_owned(),
                p.topic.clone(),
                p.partition.to_string(),
                p.new_offset.to_string(),
            ]
        })
        .collect();
    print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
    Ok(())
}
