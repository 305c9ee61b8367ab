//! What an operation reports when it does not happen.

use invite_core::{ErrorCode, Problem};
use invite_store::{Entity, Fact, StoreError, diesel_error};

/// Why an operation did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// A rule refused it; the problem says which, in the user's words. Nothing changed.
    #[error("refused: {0}")]
    Refused(Problem),
    /// The database could not be reached, or did not answer in time: nothing is known to have
    /// changed, and the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken database, never the caller's doing; the text is for the log.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for operation results.
pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    /// A refusal with its catalogue message.
    pub fn refused(code: ErrorCode) -> Self {
        Self::Refused(Problem::of(code))
    }

    /// Whether the database was unreachable (rather than the operation refused or broken).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl invite_store::Availability for OpError {
    fn is_unavailable(&self) -> bool {
        OpError::is_unavailable(self)
    }
}

impl From<Problem> for OpError {
    fn from(problem: Problem) -> Self {
        Self::Refused(problem)
    }
}

impl From<StoreError> for OpError {
    /// The store's facts in the user's words: a missing entity is its 404, what the store found
    /// that stops a change is the refusal of the rule it breaks, an unreachable database stays
    /// so, and anything else (an unnamed row, a conflict nothing expected, a database error)
    /// is a bug.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(Entity::Server) => Self::refused(ErrorCode::ServerNotFound),
            StoreError::NotFound(Entity::Invite) => Self::refused(ErrorCode::InviteNotFound),
            StoreError::NotFound(Entity::Channel) => Self::refused(ErrorCode::ChannelNotFound),
            StoreError::NotFound(Entity::Member) => Self::refused(ErrorCode::MemberNotFound),
            StoreError::NotFound(Entity::Ban) => Self::refused(ErrorCode::BanNotFound),
            StoreError::NotFound(Entity::JoinRequest) => {
                Self::refused(ErrorCode::JoinRequestNotFound)
            }
            StoreError::Stopped(fact) => Self::Refused(refusal(&fact)),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::NotFound(Entity::Row)
            | StoreError::Conflict(_)
            | StoreError::Database(_) => Self::Internal(error.to_string()),
        }
    }
}

impl From<diesel_error::Error> for OpError {
    fn from(error: diesel_error::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// The refusal a fact of the store stands for.
fn refusal(fact: &Fact) -> Problem {
    match fact {
        Fact::VanityInvite => Problem::of(ErrorCode::VanityInvite),
        Fact::ChannelNotInServer => Problem::of(ErrorCode::UnknownChannel),
        Fact::ActiveInvitesFull => Problem::of(ErrorCode::MaxInvitesReached),
        Fact::CodesExhausted => Problem::of(ErrorCode::CodeSpaceExhausted),
        Fact::VanityCode(refused) => (*refused).into(),
        Fact::KeyReused => Problem::of(ErrorCode::IdempotencyKeyReused),
        Fact::UnknownCursor(what) => Problem::with_message(
            ErrorCode::InvalidQuery,
            format!("the cursor must be the id of {what} of this server"),
        ),
        Fact::JoinRequestNotPending => Problem::of(ErrorCode::JoinRequestNotPending),
        Fact::JoinRequestsFull => Problem::of(ErrorCode::TooManyJoinRequests),
    }
}

#[cfg(test)]
mod tests {
    use invite_core::vanity::VanityRefused;

    use super::*;

    #[test]
    fn every_fact_is_refused_in_the_users_words() {
        let cases = [
            (
                Fact::VanityInvite,
                ErrorCode::VanityInvite,
                "Vanity invites are managed through /servers/{server_id}/vanity-url",
            ),
            (Fact::ChannelNotInServer, ErrorCode::UnknownChannel, "Unknown channel"),
            (
                Fact::ActiveInvitesFull,
                ErrorCode::MaxInvitesReached,
                "Maximum number of active invites reached (1000)",
            ),
            (
                Fact::VanityCode(VanityRefused::Taken),
                ErrorCode::VanityTaken,
                "This vanity code is not available",
            ),
            (
                Fact::UnknownCursor("an invite"),
                ErrorCode::InvalidQuery,
                "the cursor must be the id of an invite of this server",
            ),
        ];
        for (fact, code, message) in cases {
            let OpError::Refused(problem) = OpError::from(StoreError::Stopped(fact.clone())) else {
                panic!("{fact:?} was not refused");
            };
            assert_eq!((problem.code, problem.message.as_ref()), (code, message), "{fact:?}");
        }
    }

    #[test]
    fn a_database_away_stays_so_and_the_rest_is_a_bug() {
        assert!(OpError::from(StoreError::Unavailable("gone".into())).is_unavailable());
        assert!(matches!(OpError::from(StoreError::NotFound(Entity::Row)), OpError::Internal(_)));
        assert_eq!(
            OpError::from(StoreError::NotFound(Entity::Invite)),
            OpError::refused(ErrorCode::InviteNotFound)
        );
    }
}
