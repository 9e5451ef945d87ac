//! `strom txn ...` and `strom producers ...`: transactions as their
//! coordinators see them and producers as partition leaders see them, after
//! Kafka's `kafka-transactions` tool.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use strom_client::{
    Admin, ListedTransaction, ProducerDescription, TopicPartitions, TransactionDescription,
    TransactionFilters,
};

use super::datetime::{format_age_ms, format_datetime_ms};
use super::{print_table, BrokerArgs};

const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

#[derive(Args)]
pub struct TxnArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Subcommand)]
enum TxnCommand {
    /// List transactional ids with their state and producer id (asks every
    /// broker for the transactions it coordinates).
    List {
        /// Only transactions in these states (comma-separated, any case),
        /// e.g. Ongoing,PrepareCommit.
        #[arg(long = "state", value_name = "STATE,...")]
        state: Option<String>,
        /// Only transactions of these producer ids (comma-separated or repeated).
        #[arg(long = "producer-id", value_name = "ID", value_delimiter = ',')]
        producer_ids: Vec<i64>,
    },
    /// Describe transactional ids at their coordinators: state, producer id
    /// and epoch, timeout, when the open transaction started and its age,
    /// and its partitions.
    Describe {
        #[arg(required = true, value_name = "TRANSACTIONAL-ID")]
        ids: Vec<String>,
    },
}

#[derive(Args)]
pub struct ProducersArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: ProducersCommand,
}

#[derive(Subcommand)]
enum ProducersCommand {
    /// Show the active producers of a topic's partitions as their leaders
    /// track them: epoch, last sequence and timestamp, coordinator epoch and
    /// the first offset of an open transaction.
    Describe {
        #[arg(value_name = "TOPIC")]
        topic: String,
        /// Only this partition (repeatable; default: all).
        #[arg(long = "partition", value_name = "N")]
        partitions: Vec<i32>,
    },
}

/// Kafka's transaction states, as ListTransactions and DescribeTransactions
/// name them.
const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "PrepareEpochFence",
    "Dead",
];

/// Comma-separated state names, any case, in Kafka's spelling.
fn parse_states(text: &str) -> anyhow::Result<Vec<String>> {
    let states = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            STATES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(s))
                .map(|known| known.to_string())
                .with_context(|| {
                    format!(
                        "unknown transaction state '{s}' (known: {})",
                        STATES.join(", ")
                    )
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if states.is_empty() {
        bail!("--state needs at least one state");
    }
    Ok(states)
}

pub async fn run_txn(args: TxnArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        TxnCommand::List {
            state,
            producer_ids,
        } => {
            let filters = TransactionFilters {
                states: state
                    .as_deref()
                    .map(parse_states)
                    .transpose()?
                    .unwrap_or_default(),
                producer_ids,
                min_duration_ms: None,
            };
            let listed = admin.list_transactions(&filters).await?;
            print_table(LIST_HEADERS, &list_rows(&listed));
            Ok(())
        }
        TxnCommand::Describe { ids } => describe(&mut admin, &ids).await,
    }
}

pub async fn run_producers(args: ProducersArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        ProducersCommand::Describe { topic, partitions } => {
            if let Some(p) = partitions.iter().find(|p| **p < 0) {
                bail!("invalid partition {p}");
            }
            let results = admin.describe_producers(&topic, &partitions).await?;
            let total = results.len();
            let mut rows = Vec::new();
            let mut failures = Vec::new();
            for (partition, result) in results {
                match result {
                    Ok(producers) => rows.extend(producer_rows(partition, &producers)),
                    Err(e) => failures.push(e),
                }
            }
            if failures.len() == 1 && total == 1 {
                return Err(failures.remove(0).into());
            }
            if failures.len() < total {
                print_table(PRODUCER_HEADERS, &rows);
            }
            if !failures.is_empty() {
                for e in &failures {
                    eprintln!("error: {e}");
                }
                bail!("{} of {total} partitions failed", failures.len());
            }
            Ok(())
        }
    }
}

async fn describe(admin: &mut Admin, ids: &[String]) -> anyhow::Result<()> {
    let results = admin.describe_transactions(ids).await?;
    let now_ms = now_ms();
    let total = results.len();
    let mut described = Vec::new();
    let mut failures = Vec::new();
    for (id, result) in results {
        match result {
            Ok(d) => described.push(d),
            Err(e) if e.code() == Some(TRANSACTIONAL_ID_NOT_FOUND) => {
                failures.push(anyhow::anyhow!(
                    "transactional id '{id}' does not exist (TRANSACTIONAL_ID_NOT_FOUND)"
                ))
            }
            Err(e) => failures.push(e.into()),
        }
    }
    if failures.len() == 1 && total == 1 {
        return Err(failures.remove(0));
    }
    if !described.is_empty() {
        print_table(DESCRIBE_HEADERS, &describe_rows(&described, now_ms));
    }
    if !failures.is_empty() {
        for e in &failures {
            eprintln!("error: {e:#}");
        }
        bail!("{} of {total} transactional ids failed", failures.len());
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// "t(0,1),u(2)": partitions in one cell, "-" for none.
fn partitions_cell(partitions: &[TopicPartitions]) -> String {
    if partitions.is_empty() {
        return "-".to_owned();
    }
    partitions
        .iter()
        .map(|tp| {
            let ps: Vec<String> = tp.partitions.iter().map(i32::to_string).collect();
            format!("{}({})", tp.topic, ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

const LIST_HEADERS: &[&str] = &["TRANSACTIONAL-ID", "STATE", "PRODUCER-ID", "COORDINATOR"];

fn list_rows(listed: &[ListedTransaction]) -> Vec<Vec<String>> {
    listed
        .iter()
        .map(|t| {
            vec![
                t.transactional_id.clone(),
                t.state.clone(),
                t.producer_id.to_string(),
                t.coordinator.to_string(),
            ]
        })
        .collect()
}

const DESCRIBE_HEADERS: &[&str] = &[
    "TRANSACTIONAL-ID",
    "STATE",
    "PRODUCER-ID",
    "EPOCH",
    "TIMEOUT-MS",
    "STARTED",
    "AGE",
    "COORDINATOR",
    "PARTITIONS",
];

/// States in which a transaction is open (its records not yet decided).
const OPEN_STATES: [&str; 4] = [
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "PrepareEpochFence",
];

/// One row per transactional id. The start is shown when the coordinator
/// knows it (after a commit it keeps the last transaction's); the age,
/// `now_ms` minus the start, only while the transaction is open.
fn describe_rows(described: &[TransactionDescription], now_ms: i64) -> Vec<Vec<String>> {
    described
        .iter()
        .map(|d| {
            vec![
                d.transactional_id.clone(),
                d.state.clone(),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.timeout_ms.to_string(),
                dash(d.start_time_ms.map(format_datetime_ms)),
                dash(
                    d.start_time_ms
                        .filter(|_| OPEN_STATES.contains(&d.state.as_str()))
                        .map(|start| format_age_ms(now_ms - start)),
                ),
                d.coordinator.id.to_string(),
                partitions_cell(&d.partitions),
            ]
        })
        .collect()
}

const PRODUCER_HEADERS: &[&str] = &[
    "PARTITION",
    "PRODUCER-ID",
    "EPOCH",
    "LAST-SEQUENCE",
    "LAST-TIMESTAMP",
    "COORDINATOR-EPOCH",
    "TXN-START-OFFSET",
];

fn producer_rows(partition: i32, producers: &[ProducerDescription]) -> Vec<Vec<String>> {
    producers
        .iter()
        .map(|p| {
            vec![
                partition.to_string(),
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                p.last_sequence.to_string(),
                dash(p.last_timestamp_ms.map(format_datetime_ms)),
                dash(p.coordinator_epoch),
                dash(p.current_txn_start_offset),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::format_table;
    use strom_client::BrokerInfo;

    #[test]
    fn states_are_matched_in_any_case() {
        assert_eq!(
            parse_states("ongoing, COMPLETECOMMIT").unwrap(),
            ["Ongoing", "CompleteCommit"]
        );
        assert_eq!(
            parse_states("Ongoing,open").unwrap_err().to_string(),
            "unknown transaction state 'open' (known: Empty, Ongoing, PrepareCommit, \
             PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence, Dead)"
        );
        assert_eq!(
            parse_states(" , ").unwrap_err().to_string(),
            "--state needs at least one state"
        );
    }

    #[test]
    fn listed_transactions_table() {
        let listed = [
            ListedTransaction {
                transactional_id: "orders-app".into(),
                producer_id: 1000,
                state: "Ongoing".into(),
                coordinator: 1,
            },
            ListedTransaction {
                transactional_id: "t".into(),
                producer_id: 7,
                state: "CompleteCommit".into(),
                coordinator: 2,
            },
        ];
        assert_eq!(
            format_table(LIST_HEADERS, &list_rows(&listed)),
            "TRANSACTIONAL-ID  STATE           PRODUCER-ID  COORDINATOR\n\
             orders-app        Ongoing         1000         1\n\
             t                 CompleteCommit  7            2\n"
        );
    }

    #[test]
    fn described_transactions_show_start_age_and_partitions() {
        let coordinator = BrokerInfo {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
        };
        let start = 1_709_210_096_789;
        let described = [
            TransactionDescription {
                transactional_id: "open".into(),
                coordinator: coordinator.clone(),
                state: "Ongoing".into(),
                producer_id: 1000,
                producer_epoch: 3,
                timeout_ms: 60_000,
                start_time_ms: Some(start),
                partitions: vec![
                    TopicPartitions {
                        topic: "in".into(),
                        partitions: vec![0, 2],
                    },
                    TopicPartitions {
                        topic: "out".into(),
                        partitions: vec![1],
                    },
                ],
            },
            TransactionDescription {
                transactional_id: "done".into(),
                coordinator,
                state: "CompleteCommit".into(),
                producer_id: 1001,
                producer_epoch: 0,
                timeout_ms: 10_000,
                start_time_ms: Some(0),
                partitions: Vec::new(),
            },
        ];
        assert_eq!(
            format_table(
                DESCRIBE_HEADERS,
                &describe_rows(&described, start + 245_900)
            ),
            "TRANSACTIONAL-ID  STATE           PRODUCER-ID  EPOCH  TIMEOUT-MS  \
             STARTED                   AGE    COORDINATOR  PARTITIONS\n\
             open              Ongoing         1000         3      60000       \
             2024-02-29T12:34:56.789Z  4m05s  1            in(0,2),out(1)\n\
             done              CompleteCommit  1001         0      10000       \
             1970-01-01T00:00:00.000Z  -      1            -\n"
        );
    }

    #[test]
    fn producers_table_marks_unknowns_with_dashes() {
        let producers = [
            ProducerDescription {
                producer_id: 4,
                producer_epoch: 1,
                last_sequence: 99,
                last_timestamp_ms: Some(0),
                coordinator_epoch: Some(2),
                current_txn_start_offset: Some(40),
            },
            ProducerDescription {
                producer_id: 9,
                producer_epoch: 0,
                last_sequence: 4,
                last_timestamp_ms: None,
                coordinator_epoch: None,
                current_txn_start_offset: None,
            },
        ];
        assert_eq!(
            format_table(PRODUCER_HEADERS, &producer_rows(3, &producers)),
            "PARTITION  PRODUCER-ID  EPOCH  LAST-SEQUENCE  LAST-TIMESTAMP            \
             COORDINATOR-EPOCH  TXN-START-OFFSET\n\
             3          4            1      99             1970-01-01T00:00:00.000Z  \
             2                  40\n\
             3          9            0      4              -                         \
             -                  -\n"
        );
    }
}
