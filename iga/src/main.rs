//! `iga`: the all-in-one program. `iga serve` runs the command side, the
//! projection runner, the reactors and the query side in one process on the
//! embedded event log; the other subcommands are for operators (`rebuild`,
//! `verify`, `events tail`).

use clap::Parser;
use iga::cli;

// The service allocates in many small pieces on every request and event
// (JSON, protobuf, sled keys); mimalloc does that faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    iga::run(iga::run_cli(cli::Cli::parse()))
}
