//! Who may claim a vanity code.
//!
//! Vanity codes share the code namespace with random codes. A code is never issued to a second
//! server while the first holds it, and a code a server released stays reserved for that server
//! for [`VANITY_COOLDOWN_DAYS`]: without the cooldown, anyone watching for a popular server to
//! change its vanity URL could grab the old one and collect the members following old links.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::invite::InviteKind;
use crate::problem::{ErrorCode, Problem};

/// Days a released vanity code stays reserved for the server that released it.
pub const VANITY_COOLDOWN_DAYS: i64 = 30;

/// The invite that already holds the code being claimed, as the store found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeHolder {
    /// The holder's server.
    pub server_id: Uuid,
    /// Random or vanity.
    pub kind: InviteKind,
    /// When the holder was revoked (a vanity code's release); `None` while active.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How a claim that is allowed proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VanityClaim {
    /// Nobody has the code: create a vanity invite with it.
    New,
    /// The claimant already has this code as its active vanity URL: nothing to do.
    AlreadyHeld,
    /// The claimant released this code earlier: reactivate its own invite.
    Reclaim,
    /// Another server released it more than the cooldown ago: that server's old invite gives up
    /// the code and the claimant gets a new invite with it.
    TakeOver,
}

/// Why a vanity code cannot be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VanityRefused {
    /// Another server holds it, or it is a random code (never reissued).
    #[error("the vanity code is taken")]
    Taken,
    /// Another server released it less than [`VANITY_COOLDOWN_DAYS`] ago.
    #[error("the vanity code was released recently")]
    ReleasedRecently {
        /// When other servers may claim it.
        free_from: DateTime<Utc>,
    },
}

impl From<VanityRefused> for Problem {
    fn from(refused: VanityRefused) -> Self {
        match refused {
            VanityRefused::Taken => Self::of(ErrorCode::VanityTaken),
            VanityRefused::ReleasedRecently { free_from } => Self::with_message(
                ErrorCode::VanityTaken,
                format!(
                    "This vanity code was released recently; other servers can claim it from {}",
                    free_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
        }
    }
}

/// Decides whether `claimant` may make `holder`'s code its vanity code at `now`.
pub fn decide_vanity_claim(
    claimant: Uuid,
    holder: Option<&CodeHolder>,
    now: DateTime<Utc>,
) -> Result<VanityClaim, VanityRefused> {
    let Some(holder) = holder else {
        return Ok(VanityClaim::New);
    };
    let own = holder.server_id == claimant;
    match (holder.kind, holder.revoked_at) {
        (InviteKind::Vanity, None) if own => Ok(VanityClaim::AlreadyHeld),
        // Random codes are never reissued; an active vanity code is its server's.
        (InviteKind::Random, _) | (InviteKind::Vanity, None) => Err(VanityRefused::Taken),
        (InviteKind::Vanity, Some(_)) if own => Ok(VanityClaim::Reclaim),
        (InviteKind::Vanity, Some(released_at)) => {
            let free_from = released_at + Duration::days(VANITY_COOLDOWN_DAYS);
            if now >= free_from {
                Ok(VanityClaim::TakeOver)
            } else {
                Err(VanityRefused::ReleasedRecently { free_from })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    const MINE: Uuid = Uuid::from_u128(1);
    const THEIRS: Uuid = Uuid::from_u128(2);

    fn holder(server_id: Uuid, kind: InviteKind, revoked_at: Option<DateTime<Utc>>) -> CodeHolder {
        CodeHolder { server_id, kind, revoked_at }
    }

    #[test]
    fn a_free_code_is_new_and_an_own_active_one_is_held() {
        assert_eq!(decide_vanity_claim(MINE, None, now()), Ok(VanityClaim::New));
        let active = holder(MINE, InviteKind::Vanity, None);
        assert_eq!(decide_vanity_claim(MINE, Some(&active), now()), Ok(VanityClaim::AlreadyHeld));
    }

    #[test]
    fn random_codes_and_other_servers_active_codes_are_taken() {
        for taken in [
            holder(THEIRS, InviteKind::Random, None),
            holder(MINE, InviteKind::Random, Some(now())),
            holder(THEIRS, InviteKind::Vanity, None),
        ] {
            let problem =
                Problem::from(decide_vanity_claim(MINE, Some(&taken), now()).unwrap_err());
            assert_eq!(problem.code.as_str(), "VANITY_TAKEN");
            assert_eq!(problem.message, "This vanity code is not available");
        }
    }

    #[test]
    fn the_releasing_server_can_reclaim_at_once() {
        let released = holder(MINE, InviteKind::Vanity, Some(now()));
        assert_eq!(decide_vanity_claim(MINE, Some(&released), now()), Ok(VanityClaim::Reclaim));
    }

    #[test]
    fn other_servers_wait_thirty_days() {
        let released_at = now() - Duration::days(VANITY_COOLDOWN_DAYS);
        let released = holder(THEIRS, InviteKind::Vanity, Some(released_at));
        assert_eq!(decide_vanity_claim(MINE, Some(&released), now()), Ok(VanityClaim::TakeOver));
        let just_before = now() - Duration::microseconds(1);
        let problem =
            Problem::from(decide_vanity_claim(MINE, Some(&released), just_before).unwrap_err());
        assert_eq!(problem.code.as_str(), "VANITY_TAKEN");
        assert_eq!(
            problem.message,
            "This vanity code was released recently; other servers can claim it from 2026-11-22T12:00:00Z"
        );
    }
}
