//! `query-service`: The read API alone: builds its own read replica in --data-dir from the event log and serves it; honours consistency tokens from any command-service.
//!
//! Same flags and environment variables as `iga serve` (see the README).

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "query-service", version, about = "The read API alone.")]
struct Args {
    #[command(flatten)]
    serve: iga::cli::ServeArgs,
}

fn main() -> std::process::ExitCode {
    iga::run(iga::serve::serve_role(
        Args::parse().serve,
        iga::serve::Role::Queries,
    ))
}
