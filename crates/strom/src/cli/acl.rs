//! `strom acl create|list|delete`: ACLs in the spirit of kafka-acls.sh
//! (CreateAcls, DescribeAcls, DeleteAcls).

use anyhow::bail;
use clap::{Args, Subcommand};
use strom_client::acls::CLUSTER_NAME;
use strom_client::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, Admin, PatternType,
};

use super::{print_table, BrokerArgs};

#[derive(Args)]
pub struct AclArgs {
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Subcommand)]
enum AclCommand {
    /// Create ACLs: every principal x host x operation, on every resource given.
    Create {
        #[command(flatten)]
        resources: ResourceArgs,
        #[command(flatten)]
        entries: EntryArgs,
    },
    /// List ACLs (all of them, or those of the resources given).
    List {
        #[command(flatten)]
        resources: ResourceArgs,
        /// Only the ACLs of this principal (repeatable).
        #[arg(long = "principal", value_name = "TYPE:NAME")]
        principals: Vec<String>,
    },
    /// Delete ACLs of the resources given: those of the principals, hosts and
    /// operations given, or all of them when no principal is given.
    Delete {
        #[command(flatten)]
        resources: ResourceArgs,
        #[command(flatten)]
        entries: EntryArgs,
    },
}

#[derive(Args)]
struct ResourceArgs {
    /// A topic (repeatable; with a prefixed pattern type, a prefix; `*`: all topics).
    #[arg(long = "topic", value_name = "NAME")]
    topics: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
    /// A transactional id (repeatable).
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// How resource names match: literal (the default) or prefixed; list and
    /// delete also take match (every ACL that applies to the name) and any.
    #[arg(long = "resource-pattern-type", value_name = "TYPE")]
    pattern_type: Option<String>,
}

#[derive(Args)]
struct EntryArgs {
    /// A principal to allow, e.g. User:alice (repeatable).
    #[arg(long = "allow-principal", value_name = "TYPE:NAME")]
    allow_principals: Vec<String>,
    /// A principal to deny (repeatable).
    #[arg(long = "deny-principal", value_name = "TYPE:NAME")]
    deny_principals: Vec<String>,
    /// A host the allowed principals may connect from (repeatable; default `*`).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A host the denied principals are denied from (repeatable; default `*`).
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// An operation (repeatable): Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All.
    #[arg(long = "operation", value_name = "OPERATION", default_value = "All")]
    operations: Vec<String>,
}

/// The resource patterns named (type, name, pattern type).
fn resources(
    args: &ResourceArgs,
    pattern: PatternType,
) -> anyhow::Result<Vec<(AclResourceType, String)>> {
    let mut out = Vec::new();
    for (kind, names) in [
        (AclResourceType::Topic, &args.topics),
        (AclResourceType::Group, &args.groups),
        (AclResourceType::TransactionalId, &args.transactional_ids),
    ] {
        for name in names {
            if name.trim().is_empty() {
                bail!("a {} name must not be empty", kind.name().to_lowercase());
            }
            out.push((kind, name.trim().to_owned()));
        }
    }
    if args.cluster {
        if pattern == PatternType::Prefixed {
            bail!("--cluster takes only the literal pattern type");
        }
        out.push((AclResourceType::Cluster, CLUSTER_NAME.to_owned()));
    }
    Ok(out)
}

fn pattern_type(args: &ResourceArgs, default: PatternType) -> anyhow::Result<PatternType> {
    match &args.pattern_type {
        None => Ok(default),
        Some(text) => PatternType::parse(text).ok_or_else(|| {
            anyhow::anyhow!(
                "--resource-pattern-type {text}: expected literal, prefixed, match or any"
            )
        }),
    }
}

fn principal(text: &str) -> anyhow::Result<String> {
    match text.trim().split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(text.trim().to_owned()),
        _ => bail!("invalid principal '{text}': expected TYPE:NAME, e.g. User:alice"),
    }
}

fn operation(text: &str) -> anyhow::Result<AclOperation> {
    match AclOperation::parse(text) {
        Some(op) if !matches!(op, AclOperation::Any | AclOperation::Unknown) => Ok(op),
        _ => bail!(
            "unknown operation '{text}': expected Read, Write, Create, Delete, Alter, Describe, \
             ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All"
        ),
    }
}

/// Kafka's AclEntry.supportedOperations, plus ALL.
fn supported(resource: AclResourceType, op: AclOperation) -> bool {
    use AclOperation::*;
    if op == All {
        return true;
    }
    match resource {
        AclResourceType::Topic => matches!(
            op,
            Read | Write | Create | Describe | Delete | Alter | DescribeConfigs | AlterConfigs
        ),
        AclResourceType::Group => {
            matches!(
                op,
                Read | Describe | Delete | DescribeConfigs | AlterConfigs
            )
        }
        AclResourceType::Cluster => matches!(
            op,
            Create
                | ClusterAction
                | DescribeConfigs
                | AlterConfigs
                | IdempotentWrite
                | Alter
                | Describe
        ),
        AclResourceType::TransactionalId => matches!(op, Describe | Write),
        _ => false,
    }
}

/// (principal, host, operation, permission) for every combination given.
fn entries(args: &EntryArgs) -> anyhow::Result<Vec<(String, String, AclOperation, AclPermission)>> {
    let operations = args
        .operations
        .iter()
        .map(|o| operation(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (principals, hosts, permission) in [
        (
            &args.allow_principals,
            &args.allow_hosts,
            AclPermission::Allow,
        ),
        (&args.deny_principals, &args.deny_hosts, AclPermission::Deny),
    ] {
        if principals.is_empty() {
            if !hosts.is_empty() {
                bail!(
                    "--{0}-host needs --{0}-principal",
                    permission.name().to_lowercase()
                );
            }
            continue;
        }
        let hosts: Vec<String> = if hosts.is_empty() {
            vec!["*".to_owned()]
        } else {
            hosts.iter().map(|h| h.trim().to_owned()).collect()
        };
        for p in principals {
            let p = principal(p)?;
            for host in &hosts {
                for op in &operations {
                    let entry = (p.clone(), host.clone(), *op, permission);
                    if !out.contains(&entry) {
                        out.push(entry);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn row(b: &AclBinding) -> Vec<String> {
    vec![
        b.resource_type.to_string(),
        b.resource_name.clone(),
        b.pattern_type.to_string(),
        b.principal.clone(),
        b.host.clone(),
        b.operation.to_string(),
        b.permission.to_string(),
    ]
}

const HEADERS: [&str; 7] = [
    "RESOURCE_TYPE",
    "NAME",
    "PATTERN_TYPE",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

fn print_bindings(mut bindings: Vec<AclBinding>) {
    bindings.sort();
    bindings.dedup();
    let rows: Vec<Vec<String>> = bindings.iter().map(row).collect();
    print_table(&HEADERS, &rows);
}

pub async fn run(args: AclArgs) -> anyhow::Result<()> {
    let mut admin = Admin::new(args.brokers.client()?);
    match args.command {
        AclCommand::Create {
            resources: r,
            entries: e,
        } => {
            let pattern = pattern_type(&r, PatternType::Literal)?;
            if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
                bail!("ACLs are created with a literal or prefixed pattern type, not {pattern}");
            }
            let resources = resources(&r, pattern)?;
            if resources.is_empty() {
                bail!(
                    "give at least one resource: --topic, --group, --transactional-id or --cluster"
                );
            }
            let entries = entries(&e)?;
            if entries.is_empty() {
                bail!("give --allow-principal or --deny-principal");
            }
            let mut bindings = Vec::new();
            for (kind, name) in &resources {
                for (principal, host, op, permission) in &entries {
                    if !supported(*kind, *op) {
                        bail!("resource type {kind} does not take the operation {op}");
                    }
                    bindings.push(AclBinding {
                        resource_type: *kind,
                        resource_name: name.clone(),
                        pattern_type: pattern,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission: *permission,
                    });
                }
            }
            let results = admin.create_acls(&bindings).await?;
            let mut failures = Vec::new();
            let mut created = Vec::new();
            for (binding, result) in bindings.into_iter().zip(results) {
                match result {
                    Ok(()) => created.push(binding),
                    Err(e) => failures.push(e),
                }
            }
            if !created.is_empty() {
                println!("Created {} ACL(s):", created.len());
                print_bindings(created);
            }
            fail_on(failures, "ACLs")
        }
        AclCommand::List {
            resources: r,
            principals,
        } => {
            let principals = principals
                .iter()
                .map(|p| principal(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let named = !r.topics.is_empty()
                || !r.groups.is_empty()
                || !r.transactional_ids.is_empty()
                || r.cluster;
            let pattern = pattern_type(
                &r,
                if named {
                    PatternType::Literal
                } else {
                    PatternType::Any
                },
            )?;
            let filters: Vec<AclBindingFilter> = if named {
                resources(&r, pattern)?
                    .into_iter()
                    .map(|(kind, name)| AclBindingFilter {
                        resource_type: kind,
                        resource_name: Some(name),
                        pattern_type: pattern,
                        ..AclBindingFilter::any()
                    })
                    .collect()
            } else {
                vec![AclBindingFilter {
                    pattern_type: pattern,
                    ..AclBindingFilter::any()
                }]
            };
            let mut found = Vec::new();
            for filter in &filters {
                found.extend(admin.describe_acls(filter).await?);
            }
            if !principals.is_empty() {
                found.retain(|b| principals.contains(&b.principal));
            }
            print_bindings(found);
            Ok(())
        }
        AclCommand::Delete {
            resources: r,
            entries: e,
        } => {
            let pattern = pattern_type(&r, PatternType::Literal)?;
            let resources = resources(&r, pattern)?;
            if resources.is_empty() {
                bail!(
                    "give at least one resource: --topic, --group, --transactional-id or --cluster"
                );
            }
            let entries = entries(&e)?;
            let mut filters = Vec::new();
            for (kind, name) in resources {
                let resource = AclBindingFilter {
                    resource_type: kind,
                    resource_name: Some(name),
                    pattern_type: pattern,
                    ..AclBindingFilter::any()
                };
                if entries.is_empty() {
                    filters.push(resource);
                    continue;
                }
                for (principal, host, op, permission) in &entries {
                    filters.push(AclBindingFilter {
                        principal: Some(principal.clone()),
                        host: Some(host.clone()),
                        operation: *op,
                        permission: *permission,
                        ..resource.clone()
                    });
                }
            }
            let results = admin.delete_acls(&filters).await?;
            let mut failures = Vec::new();
            let mut deleted = Vec::new();
            for result in results {
                match result {
                    Ok(bindings) => deleted.extend(bindings),
                    Err(e) => failures.push(e),
                }
            }
            println!("Deleted {} ACL(s):", deleted.len());
            print_bindings(deleted);
            fail_on(failures, "ACL filters")
        }
    }
}

/// Reports each failure on stderr; a lone one is the command's error.
pub(super) fn fail_on(mut failures: Vec<strom_client::Error>, noun: &str) -> anyhow::Result<()> {
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0).into()),
        n => {
            for e in &failures {
                eprintln!("error: {e}");
            }
            bail!("{n} {noun} failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_args(allow: &[&str], hosts: &[&str], ops: &[&str]) -> EntryArgs {
        EntryArgs {
            allow_principals: allow.iter().map(|s| s.to_string()).collect(),
            deny_principals: vec![],
            allow_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            deny_hosts: vec![],
            operations: ops.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn entries_are_the_cross_product_with_host_star_by_default() {
        let e = entries(&entry_args(
            &["User:alice", "User:bob"],
            &[],
            &["Read", "Write"],
        ))
        .unwrap();
        assert_eq!(
            e,
            vec![
                (
                    "User:alice".into(),
                    "*".into(),
                    AclOperation::Read,
                    AclPermission::Allow
                ),
                (
                    "User:alice".into(),
                    "*".into(),
                    AclOperation::Write,
                    AclPermission::Allow
                ),
                (
                    "User:bob".into(),
                    "*".into(),
                    AclOperation::Read,
                    AclPermission::Allow
                ),
                (
                    "User:bob".into(),
                    "*".into(),
                    AclOperation::Write,
                    AclPermission::Allow
                ),
            ]
        );
        assert_eq!(
            entries(&entry_args(&["alice"], &[], &["Read"]))
                .unwrap_err()
                .to_string(),
            "invalid principal 'alice': expected TYPE:NAME, e.g. User:alice"
        );
        assert!(entries(&entry_args(&["User:a"], &[], &["Fly"])).is_err());
        assert_eq!(
            entries(&entry_args(&[], &["10.0.0.1"], &["Read"]))
                .unwrap_err()
                .to_string(),
            "--allow-host needs --allow-principal"
        );
    }

    #[test]
    fn operations_are_checked_per_resource_type() {
        assert!(supported(AclResourceType::Topic, AclOperation::Write));
        assert!(!supported(AclResourceType::Group, AclOperation::Write));
        assert!(supported(
            AclResourceType::Cluster,
            AclOperation::IdempotentWrite
        ));
        assert!(supported(
            AclResourceType::TransactionalId,
            AclOperation::All
        ));
        assert!(!supported(
            AclResourceType::TransactionalId,
            AclOperation::Read
        ));
    }
}
