//! `command-service`: The write API alone: takes commands and appends their events to the event log. It keeps the read models it needs to authenticate and check references in a temporary directory (or --data-dir), rebuilt from the log at start.
//!
//! Same flags and environment variables as `iga serve` (see the README).

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "command-service", version, about = "The write API alone.")]
struct Args {
    #[command(flatten)]
    serve: iga::cli::ServeArgs,
}

fn main() -> std::process::ExitCode {
    iga::run(iga::serve::serve_role(
        Args::parse().serve,
        iga::serve::Role::Commands,
    ))
}
