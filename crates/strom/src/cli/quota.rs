//! `strom quota set|describe`: client quotas by user and client id
//! (AlterClientQuotas, DescribeClientQuotas).

use anyhow::bail;
use clap::{Args, Subcommand};
use strom_client::quotas::{CLIENT_ID, IP, USER};
use strom_client::{Admin, QuotaEntity, QuotaMatch, QuotaOp};

use super::acl::fail_on;
use super::{parse_key_value, print_table, BrokerArgs};

#[derive(Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: QuotaCommand,
}

#[derive(Subcommand)]
enum QuotaCommand {
    /// Set or remove quotas of one entity: producer_byte_rate,
    /// consumer_byte_rate, request_percentage, controller_mutation_rate
    /// (connection_creation_rate for an --ip entity).
    Set {
        #[command(flatten)]
        entity: EntityArgs,
        /// Set a quota (repeatable).
        #[arg(long = "add", value_name = "KEY=VALUE")]
        add: Vec<String>,
        /// Remove a quota (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Show quotas: of the entity given, or all.
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
    },
}

#[derive(Args)]
struct EntityArgs {
    /// The user (principal name) the quota is for.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The client id the quota is for.
    #[arg(long = "client-id", value_name = "ID")]
    client_id: Option<String>,
    /// The client address (connection_creation_rate).
    #[arg(long, value_name = "ADDRESS")]
    ip: Option<String>,
    /// The default entity of a type: `user`, `client-id` or `ip` (repeatable).
    #[arg(long = "default", value_name = "TYPE")]
    defaults: Vec<String>,
}

/// (entity type, name; `None` = that type's default), users first.
fn entity_parts(args: &EntityArgs) -> anyhow::Result<Vec<(String, Option<String>)>> {
    for d in &args.defaults {
        if ![USER, CLIENT_ID, IP].contains(&d.as_str()) {
            bail!("--default {d}: expected user, client-id or ip");
        }
    }
    let mut parts = Vec::new();
    for (kind, name) in [
        (USER, &args.user),
        (CLIENT_ID, &args.client_id),
        (IP, &args.ip),
    ] {
        match (name, args.defaults.iter().any(|d| d == kind)) {
            (Some(_), true) => bail!("give either --{kind} or --default {kind}, not both"),
            (Some(name), false) => parts.push((kind.to_owned(), Some(name.clone()))),
            (None, true) => parts.push((kind.to_owned(), None)),
            (None, false) => {}
        }
    }
    Ok(parts)
}

fn ops(add: &[String], delete: &[String]) -> anyhow::Result<Vec<QuotaOp>> {
    let mut out = Vec::new();
    for pair in add {
        let (key, value) = parse_key_value(pair)?;
        let number: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| anyhow::anyhow!("quota {key}={value}: the value must be a number"))?;
        out.push(QuotaOp::Set(key, number));
    }
    for key in delete {
        out.push(QuotaOp::Remove(key.trim().to_owned()));
    }
    if out.is_empty() {
        bail!("give --add KEY=VALUE or --delete KEY");
    }
    Ok(out)
}

pub async fn run(args: QuotaArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        QuotaCommand::Set {
            entity,
            add,
            delete,
        } => {
            let parts = entity_parts(&entity)?;
            if parts.is_empty() {
                bail!("give the entity: --user, --client-id, --ip or --default TYPE");
            }
            let entity = QuotaEntity(parts);
            let ops = ops(&add, &delete)?;
            let results = admin
                .alter_client_quotas(&[(entity.clone(), ops)], false)
                .await?;
            fail_on(
                results.into_iter().filter_map(|(_, r)| r.err()).collect(),
                "quota entities",
            )?;
            println!("Altered quotas of {entity}");
            Ok(())
        }
        QuotaCommand::Describe { entity } => {
            let components: Vec<(String, QuotaMatch)> = entity_parts(&entity)?
                .into_iter()
                .map(|(kind, name)| {
                    let m = name.map_or(QuotaMatch::Default, QuotaMatch::Exact);
                    (kind, m)
                })
                .collect();
            let described = admin.describe_client_quotas(&components, false).await?;
            let mut rows = Vec::new();
            for (entity, values) in described {
                for (key, value) in values {
                    rows.push(vec![entity.to_string(), key, value.to_string()]);
                }
            }
            print_table(&["ENTITY", "QUOTA", "VALUE"], &rows);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_ops_parse() {
        let args = EntityArgs {
            user: Some("alice".into()),
            client_id: None,
            ip: None,
            defaults: vec!["client-id".into()],
        };
        assert_eq!(
            entity_parts(&args).unwrap(),
            vec![
                (USER.to_owned(), Some("alice".to_owned())),
                (CLIENT_ID.to_owned(), None)
            ]
        );
        let both = EntityArgs {
            user: Some("a".into()),
            client_id: None,
            ip: None,
            defaults: vec!["user".into()],
        };
        assert!(entity_parts(&both).is_err());
        assert_eq!(
            ops(
                &["producer_byte_rate=1048576".into()],
                &["consumer_byte_rate".into()]
            )
            .unwrap(),
            vec![
                QuotaOp::Set("producer_byte_rate".into(), 1048576.0),
                QuotaOp::Remove("consumer_byte_rate".into())
            ]
        );
        assert_eq!(
            ops(&["request_percentage=lots".into()], &[])
                .unwrap_err()
                .to_string(),
            "quota request_percentage=lots: the value must be a number"
        );
    }
}
