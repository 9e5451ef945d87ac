//! Client subcommands: `topic`, `produce`, `consume`, `group`, `txn`,
//! `producers`, `cluster`, `perf`, `acl`, `user`, `quota`, `registry`.

mod acl;
mod cluster;
mod consume;
mod datetime;
mod group;
mod perf;
mod produce;
mod quota;
mod registry;
mod topic;
mod txn;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use strom_client::security::parse_properties;
use strom_client::{Client, ConnectionConfig, SecurityConfig};

/// How to reach the cluster; every client subcommand takes it.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Bootstrap brokers, comma-separated HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "STROM_BROKERS",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,
    /// A Kafka client properties file (as kafka-topics.sh --command-config):
    /// security.protocol, sasl.mechanism, sasl.username/sasl.password or
    /// sasl.jaas.config, ssl.ca.location, ssl.certificate.location,
    /// ssl.key.location, ssl.keystore.location, ...
    #[arg(long = "command-config", global = true, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// A client config that overrides the file (repeatable, as kcat's -X),
    /// e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub client_configs: Vec<String>,
    /// Built once from the options above (files read, TLS set up).
    #[arg(skip)]
    connection: OnceLock<Arc<ConnectionConfig>>,
}

impl BrokerArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let config = match self.connection.get() {
            Some(config) => config.clone(),
            None => {
                let config = Arc::new(self.connection_config()?);
                let _ = self.connection.set(config.clone());
                config
            }
        };
        Ok(Client::new(
            &self.brokers,
            ConnectionConfig::clone(&config),
        )?)
    }

    /// The properties file, then the -X overrides, as connection settings.
    /// Reads files: called once, before any request is sent.
    fn connection_config(&self) -> anyhow::Result<ConnectionConfig> {
        let mut pairs = Vec::new();
        if let Some(path) = &self.command_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --command-config {}", path.display()))?;
            pairs = parse_properties(&text)
                .with_context(|| format!("--command-config {}", path.display()))?;
        }
        for pair in &self.client_configs {
            pairs.push(parse_key_value(pair)?);
        }
        let security =
            SecurityConfig::from_properties(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .context("invalid client security settings")?;
        let mut config = ConnectionConfig {
            security: security
                .load()
                .context("invalid client security settings")?,
            ..ConnectionConfig::default()
        };
        for (key, value) in &security.other {
            match key.as_str() {
                "client.id" => config.client_id = value.clone(),
                "request.timeout.ms" => {
                    let ms: u64 = value
                        .parse()
                        .with_context(|| format!("request.timeout.ms={value}: not a number"))?;
                    config.request_timeout = Duration::from_millis(ms);
                }
                // The --brokers option names them.
                "bootstrap.servers" => {}
                _ => {
                    tracing::warn!("the client config {key} was supplied but is not used by strom")
                }
            }
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create, list, describe, alter and delete topics.
    Topic(topic::TopicArgs),
    /// Produce records read from stdin, one per line.
    Produce(Box<produce::ProduceArgs>),
    /// Consume records and print them to stdout.
    Consume(consume::ConsumeArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(group::GroupArgs),
    /// List and describe transactions at their coordinators.
    Txn(txn::TxnArgs),
    /// Show the producers (idempotent and transactional) partitions track.
    Producers(txn::ProducersArgs),
    /// Inspect the cluster.
    Cluster(cluster::ClusterArgs),
    /// Load tests: produce, consume or end-to-end throughput and latency.
    Perf(perf::PerfArgs),
    /// Create, list and delete ACLs.
    Acl(Box<acl::AclArgs>),
    /// Create, delete and list SCRAM users.
    User(user::UserArgs),
    /// Set and describe client quotas.
    Quota(quota::QuotaArgs),
    /// Schema registry: subjects, schemas, compatibility, modes.
    Registry(registry::RegistryArgs),
}

pub fn run(command: ClientCommand) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            ClientCommand::Topic(args) => topic::run(args).await,
            ClientCommand::Produce(args) => produce::run(*args).await,
            ClientCommand::Consume(args) => consume::run(args).await,
            ClientCommand::Group(args) => group::run(args).await,
            ClientCommand::Txn(args) => txn::run_txn(args).await,
            ClientCommand::Producers(args) => txn::run_producers(args).await,
            ClientCommand::Cluster(args) => cluster::run(args).await,
            ClientCommand::Perf(args) => perf::run(args).await,
            ClientCommand::Acl(args) => acl::run(*args).await,
            ClientCommand::User(args) => user::run(args).await,
            ClientCommand::Quota(args) => quota::run(args).await,
            ClientCommand::Registry(args) => registry::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Client-side logs go to stderr, quiet unless STROM_LOG asks for more.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Splits `key=value` (at the first `=`).
/// A schema registry client; an https URL trusts the PEM CAs in `ca`, else the system's.
pub(crate) fn registry_client(
    url: &str,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<strom_schema_serde::RegistryClient> {
    let tls = if url.starts_with("https://") {
        let settings = strom_client::security::TlsConfig {
            ca_location: ca.map(PathBuf::from),
            verify_hostname: true,
            ..Default::default()
        };
        Some(Arc::new(strom_client::tls::client_config(&settings)?))
    } else {
        None
    };
    Ok(strom_schema_serde::RegistryClient::new(url, tls)?)
}

pub fn parse_key_value(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => anyhow::bail!("invalid '{text}': expected KEY=VALUE"),
    }
}

/// Prints successes; a lone failure is the command's error, several are
/// each reported on stderr and summed up (`noun`: "topics", "groups").
pub fn report(
    results: Vec<(String, strom_client::Result<()>)>,
    noun: &str,
    on_success: impl Fn(&str),
) -> anyhow::Result<()> {
    let total = results.len();
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Ok(()) => on_success(&name),
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 if total == 1 => Err(failures.remove(0).into()),
        n => {
            for e in &failures {
                eprintln!("error: {e}");
            }
            anyhow::bail!("{n} of {total} {noun} failed")
        }
    }
}

/// Prints rows as left-aligned columns separated by two spaces.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", format_table(headers, rows));
}

pub(crate) fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<pad$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_key_value("a=").unwrap(), ("a".into(), "".into()));
        assert_eq!(
            parse_key_value("novalue").unwrap_err().to_string(),
            "invalid 'novalue': expected KEY=VALUE"
        );
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["orders".to_owned(), "12".to_owned(), "3".to_owned()],
            vec!["t".to_owned(), "1".to_owned(), "1".to_owned()],
        ];
        assert_eq!(
            format_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows),
            "NAME    PARTITIONS  REPLICAS\norders  12          3\nt       1           1\n"
        );
    }
}
