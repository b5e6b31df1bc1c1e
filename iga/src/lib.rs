//! The program's wiring: flags, the HTTP router and its layers, and the
//! start-up and shutdown of each role. `iga serve` runs every role in one
//! process; `command-service`, `query-service` and `projection-service` (the
//! other binaries of this crate) run one role each, for the distributed
//! deployment. `rebuild`, `verify`, `migrate`, `audit verify`, `events tail` and `health`
//! are for operators.

pub mod audit;
pub mod cli;
pub mod health;
pub mod http;
pub mod migrate;
pub mod openapi;
pub mod progress;
pub mod role;
pub mod serve;
pub mod tail;

/// Runs the subcommand `cli` names.
pub async fn run_cli(cli: cli::Cli) -> cli::anyhow_like::Result<()> {
    use cli::{AuditCommand, Command, EventsCommand};
    match cli.command {
        Command::Serve(args) => serve::serve(*args).await,
        Command::Rebuild(args) => serve::rebuild(args).await,
        Command::Verify(args) => serve::verify(args).await,
        Command::Migrate(args) => migrate::migrate(args),
        Command::Health(args) => health::health(args).await,
        Command::Events(EventsCommand::Tail(args)) => tail::tail(args).await,
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(args).await,
    }
}

/// Runs `work` on a multi-threaded runtime; errors go to stderr and a
/// non-zero exit status. Every binary's `main` is this.
pub fn run(
    work: impl std::future::Future<Output = cli::anyhow_like::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
