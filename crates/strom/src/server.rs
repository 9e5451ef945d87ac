//! `strom server`: configuration from a TOML file, `STROM_*` environment
//! variables and flags (in rising precedence), then the broker runs.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// A TOML file of Kafka broker configs (`"log.dirs" = "./data"`).
    #[arg(long, short = 'c')]
    pub config: Option<std::path::PathBuf>,
    /// Any broker config as NAME=VALUE, with Kafka's names (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
}

pub fn run(_args: ServerArgs) -> ExitCode {
    eprintln!("strom server: not built yet");
    ExitCode::FAILURE
}
