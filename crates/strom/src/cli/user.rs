//! `strom user create|delete|list`: SCRAM credentials (KIP-554) through
//! AlterUserScramCredentials and DescribeUserScramCredentials.

use anyhow::bail;
use clap::{Args, Subcommand};
use strom_client::scram::MIN_ITERATIONS;
use strom_client::{Admin, ScramCredentialChange, ScramMechanism};

use super::acl::fail_on;
use super::{print_table, BrokerArgs};

#[derive(Args)]
pub struct UserArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user's SCRAM credential, or replace it (the salted password is
    /// computed here; the password is not sent).
    Create {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: i32,
    },
    /// Delete a user's SCRAM credentials (of one mechanism, or all it has).
    Delete {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        mechanism: Option<String>,
    },
    /// List users with SCRAM credentials (all, or those named) and their
    /// mechanisms and iterations.
    List {
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
}

fn mechanism(text: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::from_name(text).ok_or_else(|| {
        anyhow::anyhow!("unknown SCRAM mechanism '{text}': expected SCRAM-SHA-256 or SCRAM-SHA-512")
    })
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        UserCommand::Create {
            name,
            password,
            mechanism: m,
            iterations,
        } => {
            let m = mechanism(&m)?;
            let change = ScramCredentialChange::Upsert {
                user: name.clone(),
                mechanism: m,
                iterations,
                password,
            };
            apply(&mut admin, &[change]).await?;
            println!(
                "Created {} credential of user {name} ({iterations} iterations)",
                m.name()
            );
            Ok(())
        }
        UserCommand::Delete { name, mechanism: m } => {
            let mechanisms = match m {
                Some(m) => vec![mechanism(&m)?],
                None => {
                    let described = admin
                        .describe_user_scram_credentials(Some(std::slice::from_ref(&name)))
                        .await?;
                    let mut found = Vec::new();
                    for (_, result) in described {
                        found.extend(result?.into_iter().filter_map(|c| c.mechanism));
                    }
                    if found.is_empty() {
                        bail!("user {name} has no SCRAM credentials");
                    }
                    found
                }
            };
            let changes: Vec<ScramCredentialChange> = mechanisms
                .iter()
                .map(|m| ScramCredentialChange::Delete {
                    user: name.clone(),
                    mechanism: *m,
                })
                .collect();
            apply(&mut admin, &changes).await?;
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            println!("Deleted {} credential(s) of user {name}", names.join(", "));
            Ok(())
        }
        UserCommand::List { names } => {
            let users = (!names.is_empty()).then_some(names.as_slice());
            let described = admin.describe_user_scram_credentials(users).await?;
            let mut rows = Vec::new();
            let mut failures = Vec::new();
            for (user, result) in described {
                match result {
                    Ok(credentials) => {
                        for c in credentials {
                            let mechanism = c.mechanism.map_or("UNKNOWN", |m| m.name());
                            rows.push(vec![
                                user.clone(),
                                mechanism.to_owned(),
                                c.iterations.to_string(),
                            ]);
                        }
                    }
                    Err(e) => failures.push(e),
                }
            }
            rows.sort();
            print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
            fail_on(failures, "users")
        }
    }
}

async fn apply(admin: &mut Admin, changes: &[ScramCredentialChange]) -> anyhow::Result<()> {
    let results = admin.alter_user_scram_credentials(changes).await?;
    fail_on(
        results.into_iter().filter_map(|(_, r)| r.err()).collect(),
        "users",
    )
}
