//! `strom registry`: subjects, schemas, compatibility and modes of a schema registry with
//! Confluent's REST API (`strom server`'s own on schema.registry.listeners, or any other).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::print_table;
use strom_schema_serde::{segment, RegistryClient};

#[derive(Args)]
pub struct RegistryArgs {
    /// The schema registry's base URL (http or https).
    #[arg(
        long = "registry-url",
        global = true,
        env = "STROM_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081",
        value_name = "URL"
    )]
    registry_url: String,
    /// PEM CA certificates an https registry's certificate must chain to (default: the
    /// system's).
    #[arg(
        long = "registry-ca",
        global = true,
        env = "STROM_REGISTRY_CA",
        value_name = "FILE"
    )]
    registry_ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// List, show, register, check and delete subjects' schemas.
    #[command(subcommand)]
    Subject(SubjectCommand),
    /// Show or set the compatibility level, globally or of one subject.
    Config(LevelArgs),
    /// Show or set the mode (READWRITE, READONLY, IMPORT, ...), globally or of one subject.
    Mode(LevelArgs),
    /// Schemas by id.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Subcommand)]
enum SubjectCommand {
    /// The subjects, one per line.
    List {
        /// Also the subjects whose versions are all soft-deleted.
        #[arg(long)]
        deleted: bool,
    },
    /// A version's record (subject, version, id, schema, ...) as JSON.
    Get {
        subject: String,
        /// A version number or `latest`.
        #[arg(long, default_value = "latest", value_parser = parse_version)]
        version: String,
        /// Find soft-deleted versions too.
        #[arg(long)]
        deleted: bool,
    },
    /// Register a schema under the subject; prints its id and version.
    Register {
        subject: String,
        #[command(flatten)]
        schema: SchemaInput,
    },
    /// Delete a subject (every version) or one version; soft unless --permanent.
    Delete {
        subject: String,
        /// Only this version (a number or `latest`).
        #[arg(long, value_parser = parse_version)]
        version: Option<String>,
        /// Delete for good (only what is already soft-deleted).
        #[arg(long)]
        permanent: bool,
    },
    /// Check a schema against the subject: prints `compatible`, or `incompatible` and the
    /// reasons (exit status 1).
    Compat {
        subject: String,
        #[command(flatten)]
        schema: SchemaInput,
        /// Against this version only (a number or `latest`); default: the versions the
        /// subject's compatibility level checks.
        #[arg(long, value_parser = parse_version)]
        version: Option<String>,
    },
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// The schema with this id as JSON (schema, schemaType, references).
    Get {
        id: u32,
        /// Look the id up in this subject's context.
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Args)]
struct SchemaInput {
    /// The schema's file (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    schema: PathBuf,
    /// The schema's type.
    #[arg(long = "type", value_enum, default_value_t = SchemaTypeArg::Avro)]
    schema_type: SchemaTypeArg,
    /// A schema it references: NAME=SUBJECT:VERSION (repeatable).
    #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION", value_parser = parse_reference)]
    references: Vec<Reference>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaTypeArg {
    Avro,
    Json,
    Protobuf,
}

#[derive(Clone, Debug, PartialEq)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

#[derive(Args)]
pub struct LevelArgs {
    /// The subject (default: the global setting).
    subject: Option<String>,
    /// Set it to this value (a compatibility level: NONE, BACKWARD, BACKWARD_TRANSITIVE,
    /// FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE; a mode: READWRITE, READONLY,
    /// READONLY_OVERRIDE, IMPORT).
    #[arg(long, value_name = "VALUE", conflicts_with = "delete")]
    set: Option<String>,
    /// Remove the subject's own setting (it falls back to the global one).
    #[arg(long, requires = "subject")]
    delete: bool,
    /// With `mode --set IMPORT`: even if the subject or registry has schemas.
    #[arg(long)]
    force: bool,
}

fn parse_version(text: &str) -> Result<String, String> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok("latest".to_owned());
    }
    match text.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(n.to_string()),
        _ => Err(format!("'{text}' is not a version number or latest")),
    }
}

fn parse_reference(text: &str) -> Result<Reference, String> {
    let bad = || format!("invalid reference '{text}': expected NAME=SUBJECT:VERSION");
    let (name, rest) = text.split_once('=').ok_or_else(bad)?;
    // The version follows the last colon: subjects may be qualified (`:.ctx:s`).
    let (subject, version) = rest.rsplit_once(':').ok_or_else(bad)?;
    let version = version.parse::<i64>().map_err(|_| bad())?;
    if name.is_empty() || subject.is_empty() {
        return Err(bad());
    }
    Ok(Reference {
        name: name.to_owned(),
        subject: subject.to_owned(),
        version,
    })
}

impl SchemaInput {
    /// The registration (and lookup, and compatibility) request body.
    fn body(&self) -> anyhow::Result<Value> {
        let text = if self.schema.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading the schema from stdin")?
        } else {
            std::fs::read_to_string(&self.schema)
                .with_context(|| format!("reading --schema {}", self.schema.display()))?
        };
        let mut body = serde_json::Map::new();
        body.insert("schema".into(), Value::String(text));
        match self.schema_type {
            SchemaTypeArg::Avro => {}
            SchemaTypeArg::Json => {
                body.insert("schemaType".into(), json!("JSON"));
            }
            SchemaTypeArg::Protobuf => {
                body.insert("schemaType".into(), json!("PROTOBUF"));
            }
        }
        if !self.references.is_empty() {
            body.insert(
                "references".into(),
                self.references
                    .iter()
                    .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
                    .collect(),
            );
        }
        Ok(Value::Object(body))
    }
}

pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let client = super::registry_client(&args.registry_url, args.registry_ca.as_deref())?;
    match args.command {
        RegistryCommand::Subject(command) => subject(&client, command).await,
        RegistryCommand::Config(level) => config(&client, level).await,
        RegistryCommand::Mode(level) => mode(&client, level).await,
        RegistryCommand::Schema(SchemaCommand::Get { id, subject }) => {
            let mut path = format!("/schemas/ids/{id}");
            if let Some(subject) = subject {
                path.push_str(&format!("?subject={}", segment(&subject)));
            }
            println!("{}", client.get(&path).await?);
            Ok(())
        }
    }
}

async fn subject(client: &RegistryClient, command: SubjectCommand) -> anyhow::Result<()> {
    match command {
        SubjectCommand::List { deleted } => {
            let path = if deleted {
                "/subjects?deleted=true"
            } else {
                "/subjects"
            };
            for subject in strings(&client.get(path).await?)? {
                println!("{subject}");
            }
        }
        SubjectCommand::Get {
            subject,
            version,
            deleted,
        } => {
            let mut path = format!("/subjects/{}/versions/{version}", segment(&subject));
            if deleted {
                path.push_str("?deleted=true");
            }
            println!("{}", client.get(&path).await?);
        }
        SubjectCommand::Register { subject, schema } => {
            let body = schema.body()?;
            let s = segment(&subject);
            let answer = client
                .post(&format!("/subjects/{s}/versions"), &body)
                .await?;
            let id = answer
                .get("id")
                .and_then(Value::as_i64)
                .with_context(|| format!("the registry's answer has no id: {answer}"))?;
            // Older registries answer with the id alone: the version comes from a lookup.
            let version = match answer.get("version").and_then(Value::as_i64) {
                Some(v) => v,
                None => client
                    .post(&format!("/subjects/{s}"), &body)
                    .await?
                    .get("version")
                    .and_then(Value::as_i64)
                    .context("the registry's lookup answer has no version")?,
            };
            print_table(
                &["SUBJECT", "VERSION", "ID"],
                &[vec![subject, version.to_string(), id.to_string()]],
            );
        }
        SubjectCommand::Delete {
            subject,
            version,
            permanent,
        } => {
            let s = segment(&subject);
            let query = if permanent { "?permanent=true" } else { "" };
            let versions = match version {
                Some(v) => vec![
                    client
                        .delete(&format!("/subjects/{s}/versions/{v}{query}"))
                        .await?,
                ],
                None => client
                    .delete(&format!("/subjects/{s}{query}"))
                    .await?
                    .as_array()
                    .cloned()
                    .context("the registry's answer is not a list of versions")?,
            };
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| vec![subject.clone(), v.to_string()])
                .collect();
            print_table(&["SUBJECT", "VERSION"], &rows);
        }
        SubjectCommand::Compat {
            subject,
            schema,
            version,
        } => {
            let s = segment(&subject);
            let path = match version {
                Some(v) => format!("/compatibility/subjects/{s}/versions/{v}?verbose=true"),
                None => format!("/compatibility/subjects/{s}/versions?verbose=true"),
            };
            let answer = client.post(&path, &schema.body()?).await?;
            match answer.get("is_compatible").and_then(Value::as_bool) {
                Some(true) => println!("compatible"),
                Some(false) => {
                    println!("incompatible");
                    if let Some(messages) = answer.get("messages").and_then(Value::as_array) {
                        for m in messages {
                            println!(
                                "{}",
                                m.as_str().map_or_else(|| m.to_string(), str::to_owned)
                            );
                        }
                    }
                    bail!("the schema is incompatible with subject {subject}");
                }
                None => bail!("the registry's answer has no is_compatible: {answer}"),
            }
        }
    }
    Ok(())
}

fn strings(value: &Value) -> anyhow::Result<Vec<String>> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .with_context(|| format!("the registry's answer is not a list of strings: {value}"))
}

async fn config(client: &RegistryClient, args: LevelArgs) -> anyhow::Result<()> {
    let path = match &args.subject {
        Some(s) => format!("/config/{}", segment(s)),
        None => "/config".to_owned(),
    };
    let answer = if let Some(level) = &args.set {
        client
            .put(&path, &json!({"compatibility": level.to_ascii_uppercase()}))
            .await?
    } else if args.delete {
        client.delete(&path).await?
    } else if args.subject.is_some() {
        client.get(&format!("{path}?defaultToGlobal=true")).await?
    } else {
        client.get(&path).await?
    };
    let level = answer
        .get("compatibilityLevel")
        .or_else(|| answer.get("compatibility"))
        .and_then(Value::as_str)
        .with_context(|| format!("the registry's answer has no compatibility level: {answer}"))?;
    println!("{level}");
    Ok(())
}

async fn mode(client: &RegistryClient, args: LevelArgs) -> anyhow::Result<()> {
    let path = match &args.subject {
        Some(s) => format!("/mode/{}", segment(s)),
        None => "/mode".to_owned(),
    };
    let answer = if let Some(mode) = &args.set {
        let query = if args.force { "?force=true" } else { "" };
        client
            .put(
                &format!("{path}{query}"),
                &json!({"mode": mode.to_ascii_uppercase()}),
            )
            .await?
    } else if args.delete {
        client.delete(&path).await?
    } else if args.subject.is_some() {
        client.get(&format!("{path}?defaultToGlobal=true")).await?
    } else {
        client.get(&path).await?
    };
    let mode = answer
        .get("mode")
        .and_then(Value::as_str)
        .with_context(|| format!("the registry's answer has no mode: {answer}"))?;
    println!("{mode}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_equals_and_the_last_colon() {
        assert_eq!(
            parse_reference("com.example.Address=address-value:2"),
            Ok(Reference {
                name: "com.example.Address".into(),
                subject: "address-value".into(),
                version: 2
            })
        );
        assert_eq!(
            parse_reference("a.json=:.ctx:b:1").map(|r| (r.subject, r.version)),
            Ok((":.ctx:b".to_owned(), 1))
        );
        assert!(parse_reference("x=s").is_err());
        assert!(parse_reference("s:1").is_err());
        assert!(parse_reference("x=s:v").is_err());
    }

    #[test]
    fn versions_are_numbers_or_latest() {
        assert_eq!(parse_version("LATEST"), Ok("latest".to_owned()));
        assert_eq!(parse_version("3"), Ok("3".to_owned()));
        assert!(parse_version("0").is_err());
        assert!(parse_version("x").is_err());
    }
}
