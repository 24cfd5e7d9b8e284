//! `bulwark`: the control plane server and its command-line client.

mod args;
mod audit;
mod client;
mod commands;
mod demo;
mod detect;
mod exit;
mod gate;
mod manual;
mod output;
mod progress;
mod release;
mod sim;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than the C library's allocator: the server's hot paths
/// (gateway ingest, detection) allocate on one thread and free on another,
/// where glibc's malloc spent about a fifth of the gateway's CPU
/// (BENCHMARKS.md, device gateway).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The one crypto provider for every TLS connection in this process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = commands::Cli::parse();
    let format = cli.log_format();
    bulwark_agent::logging::init(format, cli.default_log_filter());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = anyhow::Error::new(e).context("starting the runtime");
            bulwark_agent::logging::exit_error("bulwark", format, &e);
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            bulwark_agent::logging::exit_error("bulwark", format, &e);
            // By kind: not found, refused by policy, conflict, auth,
            // server, network (`bulwark --help`).
            ExitCode::from(exit::code(&e))
        }
    }
}
