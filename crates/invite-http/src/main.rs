//! `invite-server`: see `invite-server --help`.

use std::process::ExitCode;

use clap::Parser;
use invite_http::cli;
use invite_http::server::config::Cli;

/// jemalloc rather than glibc's malloc: it serves previews with less processor time, and holds
/// less memory at the peak under many connections, since with `background_thread` and short
/// decay times (`.cargo/config.toml`) it hands freed pages back to the system within a second
/// or two, where glibc keeps what an overload allocated. See BENCHMARKS.md, "The allocator".
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the chain of causes on one line: what failed, then why.
            eprintln!("invite-server: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
