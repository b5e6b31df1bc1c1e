//! `projection-service`: The reactors alone: fulfilment of decided requests, timers (grant ends, request expiries) and downstream publishing, on read models in --data-dir. HTTP serves only /healthz, /readyz and /metrics.
//!
//! Same flags and environment variables as `iga serve` (see the README).

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "projection-service", version, about = "The reactors alone.")]
struct Args {
    #[command(flatten)]
    serve: iga::cli::ServeArgs,
}

fn main() -> std::process::ExitCode {
    iga::run(iga::serve::serve_role(
        Args::parse().serve,
        iga::serve::Role::Reactors,
    ))
}
