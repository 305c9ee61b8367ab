//! Accepting an invite: the one write that must never over-admit. The store decides and writes
//! it in one conditional step (on PostgreSQL, one statement: the use, the member, the count, the
//! audit entry, the `MEMBER_JOIN` event and, with an Idempotency-Key, the recorded response).

use invite_core::code::CodeRef;
use invite_store::repo::{
    IdempotencyClaim, InviteRepository, JoinResponseTemplate, Keyed, Redemption, keyed,
};
use invite_store::{Backend, DbConnection};

use crate::{Ctx, OpResult, Outcome};

/// Which accepts may be committed together by one transaction (group commit): those of one
/// invite on PostgreSQL, where they queue on its row lock anyway; every accept on SQLite, where
/// all writes queue for its one writer anyway. Accepts of different groups never wait for each
/// other's commits.
pub fn commit_group(code: &CodeRef, backend: Backend) -> String {
    match backend {
        Backend::Postgres => code.as_str().to_owned(),
        Backend::Sqlite => String::new(),
    }
}

/// An Idempotency-Key's claim and the response a join records under it.
pub type Recording<'a> = (&'a IdempotencyClaim, &'a JoinResponseTemplate<'a>);

/// Accepts the invite for the caller. With `recording`, a key already answered replays its
/// response, and a join records its own.
pub fn accept(
    conn: &mut DbConnection,
    ctx: &Ctx,
    code: &CodeRef,
    recording: Option<Recording<'_>>,
) -> OpResult<Keyed<Outcome<Redemption>>> {
    let attempt = |conn: &mut DbConnection| -> OpResult<Outcome<Redemption>> {
        let redemption = match recording {
            None => conn.redeem(code, &ctx.actor, ctx.now)?,
            Some((claim, template)) => {
                conn.redeem_recorded(code, &ctx.actor, ctx.now, claim, template)?
            }
        };
        let events = match &redemption {
            Redemption::Joined(joined) => vec![joined.event.clone()],
            Redemption::Refused(_) => Vec::new(),
        };
        Ok(Outcome::new(redemption, events))
    };
    match recording {
        None => attempt(conn).map(Keyed::Fresh),
        Some((claim, _)) => keyed(conn, claim, ctx.now, attempt, |done| {
            matches!(done.value(), Redemption::Joined(_))
        }),
    }
}
