//! Joining a server with an invite, the way a bot or another backend would: preview the invite,
//! accept it, and ride out maintenance windows (503) and rate limits (429) through the client's
//! retries, which honour `Retry-After` and send the accept's `Idempotency-Key` again on every
//! attempt, so a retried join never joins twice.
//!
//! ```sh
//! cargo run --example join_with_retry -- http://127.0.0.1:8080 <code> <token>
//! INVITE_URL=... INVITE_CODE=... INVITE_TOKEN=... cargo run --example join_with_retry
//! ```
//!
//! Prints `Joined <server_id>` and exits 0, or prints the refusal with its machine code and
//! message (`refused: INVITE_EXPIRED (This invite has expired)`) and exits 1. Exits 2 when the
//! arguments are missing, 3 when the service could not be reached or answered nonsense.

use std::process::ExitCode;
use std::time::Duration;

use invite_client::{Client, ClientError, RetryPolicy};

mod common;

/// The error and its causes, on one line: `reqwest` keeps the reason (refused, reset, timed
/// out) in the source chain.
fn describe(error: &ClientError) -> String {
    let causes = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source());
    causes.map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// What the caller is told when the call failed: a refusal (exit 1) or no usable answer (3).
fn failure(error: &ClientError) -> ExitCode {
    if let ClientError::Api { code, message, retry_after, .. } = error {
        println!("refused: {code} ({message})");
        if let Some(wait) = retry_after {
            println!("the service asks to retry in {}s", wait.as_secs_f64());
        }
        ExitCode::from(1)
    } else {
        eprintln!("error: {}", describe(error));
        ExitCode::from(3)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some([url, code, token]) = common::settings(["INVITE_URL", "INVITE_CODE", "INVITE_TOKEN"])
    else {
        eprintln!("usage: join_with_retry <base-url> <invite-code> <token>");
        eprintln!("       (or INVITE_URL, INVITE_CODE and INVITE_TOKEN in the environment)");
        return ExitCode::from(2);
    };

    // Patient enough for a maintenance window: the service asks for up to 60 s at a time
    // (`Retry-After`), and the whole join may take ten minutes.
    let policy = RetryPolicy::default()
        .with_max_attempts(20)
        .with_base_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_mins(2))
        .with_deadline(Some(Duration::from_mins(10)));
    let client = match Client::builder(&url)
        .token(token)
        .retry_policy(policy)
        .on_retry(|event| {
            let reason = match event.error.code() {
                Some(code) => code.to_string(),
                None => describe(event.error),
            };
            eprintln!(
                "attempt {} failed ({reason}); retrying in {:.1}s",
                event.attempt,
                event.delay.as_secs_f64()
            );
        })
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

    let preview = match client.preview(&code).await {
        Ok(preview) => preview,
        Err(error) => return failure(&error),
    };
    println!("Server: {} ({} members)", preview.server_name, preview.member_count);
    if preview.invites_paused {
        println!("note: the server's invites are paused right now");
    }

    match client.accept(&code).await {
        Ok(joined) => {
            let replay = if joined.replayed { " (an earlier attempt's join)" } else { "" };
            println!("Joined {}{replay}", joined.server_id);
            ExitCode::SUCCESS
        }
        Err(error) => failure(&error),
    }
}
