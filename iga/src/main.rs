//! `iga`: the all-in-one program. `iga serve` runs the command side, the
//! projection runner and the query side in one process on the embedded sled
//! event log; the other subcommands are for operators (`rebuild`, `verify`).

mod cli;
mod eventlog_url;
mod http;
mod serve;
mod tail;

use clap::Parser;

// The service allocates in many small pieces on every request and event
// (JSON, protobuf, sled keys); mimalloc does that faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
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
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
