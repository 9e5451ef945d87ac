//! Client subcommands (being written).

use clap::Subcommand;

#[derive(Subcommand)]
pub enum ClientCommand {}

pub fn run(command: ClientCommand) -> std::process::ExitCode {
    match command {}
}
