//! `strom dev cluster`: a local cluster for developers. Each broker is a child process of
//! this same binary (`strom server`) with its own data folder and ports on 127.0.0.1;
//! the command prints the bootstrap servers once every broker is listed, and stops them
//! all (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or SIGTERM. A broker that
//! exits leaves the others running (to watch a failover), until none is left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use strom_client::{Admin, Client, ConnectionConfig};

#[derive(Args)]
pub struct DevArgs {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Subcommand)]
enum DevCommand {
    /// Run N brokers on 127.0.0.1, each its own process, data folder and ports.
    Cluster(ClusterArgs),
}

#[derive(Args, Clone)]
struct ClusterArgs {
    /// How many brokers (each also a voter of the metadata quorum).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=99))]
    brokers: u16,
    /// The folder holding each broker's data and log (`node-<id>/`).
    #[arg(long, default_value = "dev-cluster")]
    dir: PathBuf,
    /// Broker i (from 1) listens for clients on BASE+i-1, for its controller peers on
    /// BASE+100+i-1 and serves metrics on BASE+200+i-1.
    #[arg(long, default_value_t = 19092)]
    base_port: u16,
    /// A config every broker gets, after the planned ones (`--set broker.session.timeout.ms=2000`).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// How long the brokers have to be listed by every one of them.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker has to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// One broker's settings, as `strom server --set` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub node_id: u16,
    pub client_port: u16,
    pub controller_port: u16,
    pub metrics_port: u16,
    pub dir: PathBuf,
    pub settings: Vec<(String, String)>,
}

/// The brokers of a dev cluster. One broker is a quorum of one with no controller
/// listener (strom's zero-configuration node); several are a KRaft cluster in which
/// every node is broker and controller.
pub fn plan(brokers: u16, dir: &Path, base_port: u16) -> anyhow::Result<Vec<NodePlan>> {
    let port = |offset: u16, index: u16| {
        base_port
            .checked_add(offset + index)
            .with_context(|| format!("--base-port {base_port} leaves no room for the ports"))
    };
    let mut nodes = Vec::new();
    for index in 0..brokers {
        let node_id = index + 1;
        nodes.push(NodePlan {
            node_id,
            client_port: port(0, index)?,
            controller_port: port(100, index)?,
            metrics_port: port(200, index)?,
            dir: dir.join(format!("node-{node_id}")),
            settings: Vec::new(),
        });
    }
    let voters: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.node_id, n.controller_port))
        .collect();
    for node in &mut nodes {
        let mut settings = vec![
            ("node.id", node.node_id.to_string()),
            ("log.dirs", node.dir.join("data").display().to_string()),
            (
                "strom.metrics.listener",
                format!("127.0.0.1:{}", node.metrics_port),
            ),
        ];
        if brokers == 1 {
            settings.push((
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{}", node.client_port),
            ));
        } else {
            settings.extend([
                ("process.roles", "broker,controller".to_owned()),
                ("controller.quorum.voters", voters.join(",")),
                (
                    "listeners",
                    format!(
                        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                        node.client_port, node.controller_port
                    ),
                ),
                (
                    "advertised.listeners",
                    format!("PLAINTEXT://127.0.0.1:{}", node.client_port),
                ),
                ("controller.listener.names", "CONTROLLER".to_owned()),
            ]);
            // One node serves the schema registry and the REST proxy, on their default
            // ports (every node could, each on its own port).
            if node.node_id != 1 {
                settings.push(("schema.registry.listeners", String::new()));
                settings.push(("rest.proxy.listeners", String::new()));
            }
        }
        node.settings = settings
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    }
    Ok(nodes)
}

pub fn run(args: DevArgs) -> ExitCode {
    let DevCommand::Cluster(args) = args.command;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cluster(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The children, stopped when dropped (also on an error).
struct Brokers(Vec<(u16, Child)>);

impl Brokers {
    /// SIGTERM to every broker, then waits; one that does not stop in time is killed.
    fn stop(&mut self) {
        for (_, child) in &self.0 {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (id, child) in &mut self.0 {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        eprintln!("broker {id} stopped ({status})");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!("broker {id} did not stop in time: killed");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.0.clear();
    }

    /// The brokers that have exited, with their status.
    fn exited(&mut self) -> Vec<(u16, std::process::ExitStatus)> {
        self.0
            .iter_mut()
            .filter_map(|(id, child)| child.try_wait().ok().flatten().map(|s| (*id, s)))
            .collect()
    }
}

impl Drop for Brokers {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let mut nodes = plan(args.brokers, &args.dir, args.base_port)?;
    for node in &mut nodes {
        node.settings.extend(args.settings.iter().cloned());
    }
    let exe = std::env::current_exe().context("finding the strom binary")?;
    let mut brokers = Brokers(Vec::new());
    for node in &nodes {
        std::fs::create_dir_all(node.dir.join("data"))
            .with_context(|| format!("creating {}", node.dir.display()))?;
        let log_path = node.dir.join("server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(&exe);
        command.arg("server");
        for (name, value) in &node.settings {
            command.arg("--set").arg(format!("{name}={value}"));
        }
        // Configs come from the flags alone: the environment's STROM_* would override
        // them (STROM_LOG, the log filter, is kept).
        for (name, _) in std::env::vars() {
            if name.starts_with("STROM_") && name != "STROM_LOG" && name != "STROM_LOG_FORMAT" {
                command.env_remove(name);
            }
        }
        stop_with_parent(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting broker {}", node.node_id))?;
        eprintln!(
            "broker {} (pid {}): 127.0.0.1:{}, data {}, log {}",
            node.node_id,
            child.id(),
            node.client_port,
            node.dir.join("data").display(),
            log_path.display()
        );
        brokers.0.push((node.node_id, child));
    }

    let bootstrap: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect();
    let bootstrap = bootstrap.join(",");
    let deadline = Instant::now() + READY_TIMEOUT;
    while !all_listed(&nodes).await {
        if let Some((id, status)) = brokers.exited().first() {
            bail!("broker {id} exited while starting ({status}); see its log");
        }
        if Instant::now() >= deadline {
            bail!(
                "the brokers did not all list each other within {}s",
                READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("bootstrap servers: {bootstrap}");
    eprintln!("{} brokers ready; Ctrl-C stops them", nodes.len());

    let stopped_by = wait_for_stop(&mut brokers).await;
    match stopped_by {
        Stop::Signal => {
            eprintln!("stopping the brokers");
            brokers.stop();
            Ok(())
        }
        Stop::AllExited => bail!("every broker exited"),
    }
}

/// A broker gets SIGTERM when this command dies, even by SIGKILL (Linux), so no broker
/// outlives its dev cluster.
fn stop_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Every broker lists all the brokers (registered and unfenced) in DescribeCluster.
async fn all_listed(nodes: &[NodePlan]) -> bool {
    for node in nodes {
        let Ok(client) = Client::new(
            &format!("127.0.0.1:{}", node.client_port),
            ConnectionConfig {
                request_timeout: Duration::from_secs(2),
                ..ConnectionConfig::default()
            },
        ) else {
            return false;
        };
        match Admin::new(client).describe_cluster().await {
            Ok(cluster) if cluster.brokers.len() == nodes.len() => {}
            _ => return false,
        }
    }
    true
}

enum Stop {
    Signal,
    AllExited,
}

async fn wait_for_stop(brokers: &mut Brokers) -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return Stop::Signal;
    };
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut reported = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Signal,
            _ = terminate.recv() => return Stop::Signal,
            _ = poll.tick() => {
                // A broker that dies (a developer's `kill -9` to watch a failover) leaves
                // the others running.
                let exited = brokers.exited();
                for (id, status) in &exited {
                    if reported.insert(*id) {
                        eprintln!("broker {id} exited ({status}); the others keep running");
                    }
                }
                if exited.len() == brokers.0.len() {
                    return Stop::AllExited;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(node: &NodePlan) -> Vec<String> {
        node.settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    #[test]
    fn three_brokers_are_one_kraft_cluster_on_distinct_ports() {
        let nodes = plan(3, Path::new("/tmp/dc"), 19092).unwrap();
        let ports: Vec<(u16, u16, u16, u16)> = nodes
            .iter()
            .map(|n| (n.node_id, n.client_port, n.controller_port, n.metrics_port))
            .collect();
        assert_eq!(
            ports,
            vec![
                (1, 19092, 19192, 19292),
                (2, 19093, 19193, 19293),
                (3, 19094, 19194, 19294)
            ]
        );
        assert_eq!(
            settings(&nodes[1]),
            vec![
                "node.id=2",
                "log.dirs=/tmp/dc/node-2/data",
                "strom.metrics.listener=127.0.0.1:19293",
                "process.roles=broker,controller",
                "controller.quorum.voters=1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194",
                "listeners=PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19193",
                "advertised.listeners=PLAINTEXT://127.0.0.1:19093",
                "controller.listener.names=CONTROLLER",
                "schema.registry.listeners=",
                "rest.proxy.listeners=",
            ]
        );
    }

    #[test]
    fn one_broker_is_a_quorum_of_one_without_a_controller_listener() {
        let nodes = plan(1, Path::new("d"), 29092).unwrap();
        assert_eq!(
            settings(&nodes[0]),
            vec![
                "node.id=1",
                "log.dirs=d/node-1/data",
                "strom.metrics.listener=127.0.0.1:29292",
                "listeners=PLAINTEXT://127.0.0.1:29092",
            ]
        );
        assert!(plan(3, Path::new("d"), 65400).is_err());
    }
}
