//! The one strom binary: `strom server` runs the broker; the other
//! subcommands are clients of a running broker.

mod cli;
mod dev;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strom",
    version,
    about = "A Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (zero configuration: 127.0.0.1:9092, data in ./data).
    Server(server::ServerArgs),
    /// Developer tools: `strom dev cluster --brokers 3` runs a local cluster.
    Dev(dev::DevArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Client(command) => {
            restore_default_sigpipe();
            cli::run(command)
        }
    }
}

/// A client command piped into `head` should stop quietly when the pipe closes, as
/// other command-line tools do, instead of panicking in `println!` (Rust ignores
/// SIGPIPE by default; the server keeps that, so a closed socket is an error it handles).
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default at start-up, before any
    // thread exists, has no memory effects.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
