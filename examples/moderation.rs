//! A moderator's day with the typed client: an invite link leaks, strangers pour in, the link is
//! undone (revoked, and everyone who came through it removed), and raid protection is set so
//! that the next burst pauses the server's invites by itself.
//!
//! ```sh
//! cargo run --example moderation -- http://127.0.0.1:8080 <owner-token> <guest-token>,<guest-token>,...
//! INVITE_URL=... INVITE_TOKEN=... INVITE_GUEST_TOKENS=... cargo run --example moderation
//! ```
//!
//! The owner token is the moderator's (`invite-server token --user <uuid> --username mod`); the
//! guest tokens, at least four, stand in for the strangers who found the link. The example
//! creates a server of its own, so it can run against a service in use. It prints each step and
//! exits 0 when the service behaved as the contract says, 1 at the first step that did not,
//! 2 when the arguments are missing and 3 when the service could not be reached.

use std::process::ExitCode;

use invite_client::{Client, ClientError, CreateInvite, CreateServer, ErrorCode, PageBefore};

mod common;

/// How the walk-through can fail: the service answered otherwise than the contract says
/// (exit 1), or a call failed on the way (3).
enum Failure {
    Unexpected(String),
    // Boxed: a client error is large, and every step returns this.
    Call(Box<ClientError>),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self::Call(Box::new(error))
    }
}

/// Fails the walk-through with `what` unless `holds`.
fn expect(holds: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if holds { Ok(()) } else { Err(Failure::Unexpected(what())) }
}

/// A client acting as the holder of `token`.
fn client(url: &str, token: &str) -> Result<Client, Failure> {
    Client::builder(url).token(token).build().map_err(Failure::from)
}

/// `guest` accepts `code`, and the refusal it meets, if any, is returned as its code.
async fn join(guest: &Client, code: &str) -> Result<Option<ErrorCode>, Failure> {
    match guest.accept(code).send().await {
        Ok(_) => Ok(None),
        Err(error) => match error.code() {
            Some(code) => Ok(Some(code.clone())),
            None => Err(error.into()),
        },
    }
}

async fn walk_through(url: &str, owner: &str, guests: &[String]) -> Result<(), Failure> {
    let moderator = client(url, owner)?;
    let guests = guests.iter().map(|token| client(url, token)).collect::<Result<Vec<_>, _>>()?;
    let server =
        moderator.create_server(&CreateServer::named("Moderation walk-through")).send().await?;
    println!("server {} created", server.id);

    // 1. A link meant for a few friends ends up on a public forum, and strangers join.
    let leaked = moderator.create_invite(server.id, &CreateInvite::default()).send().await?;
    let leaked_code = leaked.code.clone().unwrap_or_default();
    for guest in &guests[..3] {
        let refusal = join(guest, &leaked_code).await?;
        expect(refusal.is_none(), || format!("a stranger could not join: {refusal:?}"))?;
    }
    println!("invite {leaked_code} leaked: 3 strangers joined through it");

    // 2. Undo it: revoked, and everyone who came through it removed, in one call.
    let undone = moderator.undo_invite(server.id, leaked.id, None).send().await?;
    println!("undo: revoked {}, removed {}, kept {}", undone.revoked, undone.removed, undone.kept);
    expect(undone.revoked && undone.removed == 3, || format!("the undo answered {undone:?}"))?;
    // Safe to repeat, as a retried request or a second moderator would.
    let again = moderator.undo_invite(server.id, leaked.id, None).send().await?;
    println!("undo again: removed {}", again.removed);
    expect(again.removed == 0, || format!("the second undo removed {}", again.removed))?;
    let refusal = join(&guests[0], &leaked_code).await?;
    println!("joining through the undone link: {}", describe(refusal.as_ref()));
    expect(refusal == Some(ErrorCode::InviteRevoked), || "the undone link still admits".into())?;

    // 3. Raid protection: a burst of 3 joins within a minute pauses invites for 10 minutes.
    let protection = moderator.set_raid_protection(server.id, 3, 60, 600).send().await?;
    println!(
        "raid protection: {} joins in {} s pause invites for {} s",
        protection.joins.unwrap_or_default(),
        protection.window_seconds.unwrap_or_default(),
        protection.pause_seconds.unwrap_or_default()
    );
    let fresh = moderator.create_invite(server.id, &CreateInvite::default()).send().await?;
    let fresh_code = fresh.code.clone().unwrap_or_default();
    for (n, guest) in guests.iter().enumerate() {
        let refusal = join(guest, &fresh_code).await?;
        println!("join {}: {}", n + 1, describe(refusal.as_ref()));
        // The join that reaches the threshold is admitted; the next ones meet the pause.
        let paused = refusal == Some(ErrorCode::InvitesPaused);
        expect(if n < 3 { refusal.is_none() } else { paused }, || {
            format!("join {} answered {}", n + 1, describe(refusal.as_ref()))
        })?;
    }
    // The pause is in the audit log, done by the service itself (no actor), with its reason.
    let log = moderator.audit_log(server.id, PageBefore::default()).send().await?;
    let pause = log.iter().find(|entry| entry.action.as_str() == "InvitesPause");
    let by_raid =
        pause.is_some_and(|entry| entry.actor_id.is_none() && entry.details["reason"] == "raid");
    println!(
        "audit: {}",
        if by_raid { "invites paused for a raid, by the service" } else { "no pause" }
    );
    expect(by_raid, || format!("the audit log holds no raid pause: {pause:?}"))?;

    // 4. The moderator has looked, lifts the pause early and lets the last stranger in.
    moderator.resume_invites(server.id).send().await?;
    let refusal = join(&guests[guests.len() - 1], &fresh_code).await?;
    println!("after lifting the pause, the last stranger: {}", describe(refusal.as_ref()));
    expect(refusal.is_none(), || format!("the lifted pause still refuses: {refusal:?}"))?;
    moderator.remove_raid_protection(server.id).send().await?;
    println!("raid protection off; done");
    Ok(())
}

/// An accept's outcome in words.
fn describe(refusal: Option<&ErrorCode>) -> String {
    refusal.map_or_else(|| "joined".to_owned(), |code| format!("refused {code}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some([url, owner, guests]) =
        common::settings(["INVITE_URL", "INVITE_TOKEN", "INVITE_GUEST_TOKENS"])
    else {
        eprintln!("usage: moderation <base-url> <owner-token> <guest-token>,<guest-token>,...");
        eprintln!(
            "       (or INVITE_URL, INVITE_TOKEN and INVITE_GUEST_TOKENS in the environment)"
        );
        return ExitCode::from(2);
    };
    let guests: Vec<String> = guests.split(',').map(str::to_owned).collect();
    if guests.len() < 4 {
        eprintln!("moderation needs at least four guest tokens, comma-separated");
        return ExitCode::from(2);
    }
    match walk_through(&url, &owner, &guests).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unexpected(what)) => {
            println!("unexpected: {what}");
            ExitCode::from(1)
        }
        Err(Failure::Call(error)) => {
            eprintln!("error: {error}");
            ExitCode::from(3)
        }
    }
}
