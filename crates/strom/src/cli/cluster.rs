//! `strom cluster ...`: cluster information.

use clap::{Args, Subcommand};
use strom_client::Admin;

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
}

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
    }
}
