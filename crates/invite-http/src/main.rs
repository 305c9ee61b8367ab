//! `invite-server`: see `invite-server --help`.

use std::process::ExitCode;

use clap::Parser;
use invite_http::cli;
use invite_http::config::Cli;

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
