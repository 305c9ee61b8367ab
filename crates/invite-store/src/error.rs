//! What can go wrong in the store, sorted by what the caller should do about it.

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use invite_core::vanity::VanityRefused;

/// What a store failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A server.
    Server,
    /// An invite (unknown, or no longer there to change: revoked).
    Invite,
    /// A channel.
    Channel,
    /// A membership.
    Member,
    /// A ban.
    Ban,
    /// A join request (unknown, of another server, or another user's).
    JoinRequest,
    /// A row a query expected, unnamed: a bug, never the caller's doing.
    Row,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity the operation is about does not exist.
    #[error("{0:?} not found")]
    NotFound(Entity),
    /// A uniqueness rule refused the write; the constraint says which.
    #[error("conflict on {0:?}")]
    Conflict(Constraint),
    /// Something the store found that stops the change (a full server, a taken vanity code),
    /// named by what it is: the operations layer refuses it in the user's words.
    #[error("stopped: {0}")]
    Stopped(Fact),
    /// The database cannot be reached or did not answer in time: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure: a bug or a broken database, never the user's fault.
    #[error("database error: {0}")]
    Database(#[source] DieselError),
}

impl StoreError {
    /// Whether the database was unreachable or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// An error that can tell a database that was unreachable from a refusal: a write that failed
/// for want of the database may have a twin that did not (see [`crate::repo::keyed`]).
pub trait Availability {
    /// Whether the database was unreachable or did not answer in time.
    fn is_unavailable(&self) -> bool;
}

impl Availability for StoreError {
    fn is_unavailable(&self) -> bool {
        StoreError::is_unavailable(self)
    }
}

impl From<Fact> for StoreError {
    fn from(fact: Fact) -> Self {
        Self::Stopped(fact)
    }
}

/// What a store operation found that stops it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fact {
    /// The invite is its server's vanity invite, which the invite endpoints do not manage.
    #[error("the invite is a vanity invite")]
    VanityInvite,
    /// The channel named is not one of the server's.
    #[error("the channel is not the server's")]
    ChannelNotInServer,
    /// The server holds as many active invites as it may
    /// ([`invite_core::invite::MAX_ACTIVE_INVITES`]).
    #[error("the server holds as many active invites as it may")]
    ActiveInvitesFull,
    /// Every code drawn for a new invite was taken.
    #[error("every code drawn was taken")]
    CodesExhausted,
    /// The vanity code cannot be claimed, as the core decided.
    #[error("{0}")]
    VanityCode(VanityRefused),
    /// An Idempotency-Key already answered another request.
    #[error("the idempotency key answered another request")]
    KeyReused,
    /// A page's cursor names nothing in the list it pages through; the text says what it
    /// should name.
    #[error("the cursor must be the id of {0}")]
    UnknownCursor(&'static str),
    /// The join request was decided or withdrawn already
    /// (`invite_core::approval::check_pending`).
    #[error("the join request is not pending")]
    JoinRequestNotPending,
    /// The server holds as many pending join requests as it may
    /// ([`invite_core::approval::MAX_PENDING_PER_SERVER`]).
    #[error("the server holds as many pending join requests as it may")]
    JoinRequestsFull,
}

/// The uniqueness rules the store relies on to detect conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `invites.code`: one namespace for random and vanity codes.
    InviteCode,
    /// One active vanity invite per server.
    OneVanityPerServer,
    /// One membership per user and server.
    MemberKey,
    /// One ban per user and server.
    BanKey,
    /// A banned user cannot become a member: SQLite's `members_not_banned` trigger, or
    /// PostgreSQL's accept statement finding that a ban crossed it (its member insert then
    /// has no server, see `repo::redeem`). The same failure reports a raid's pause crossing
    /// an accept on a server protected from raids: either way the accept runs again on a
    /// snapshot that holds what crossed it.
    MemberBanned,
    /// One recorded response per user and `Idempotency-Key`.
    IdempotencyKey,
    /// Any other constraint, as the database named it.
    Other(String),
}

impl Constraint {
    /// Recognises a constraint from PostgreSQL's constraint name or SQLite's message
    /// (`UNIQUE constraint failed: invites.code`), which names columns instead.
    fn identify(info: &dyn DatabaseErrorInformation) -> Self {
        let name = info.constraint_name().unwrap_or_default();
        let message = info.message();
        let named = |constraint: &str, sqlite_columns: &str| {
            name == constraint || message.ends_with(sqlite_columns)
        };
        if named("invites_code_key", ": invites.code") {
            Self::InviteCode
        } else if named("invites_one_vanity_per_server", ": invites.server_id") {
            Self::OneVanityPerServer
        } else if named("members_pkey", ": members.server_id, members.user_id") {
            Self::MemberKey
        } else if named("bans_pkey", ": bans.server_id, bans.user_id") {
            Self::BanKey
        } else if named(
            "idempotency_records_pkey",
            ": idempotency_records.user_id, idempotency_records.idempotency_key",
        ) {
            Self::IdempotencyKey
        } else if name == MEMBER_BANNED || message == MEMBER_BANNED {
            Self::MemberBanned
        } else if name.is_empty() {
            Self::Other(message.to_owned())
        } else {
            Self::Other(name.to_owned())
        }
    }
}

/// The trigger refusing a banned user's membership; PostgreSQL reports it as the constraint's
/// name, SQLite as the message of its `RAISE(ABORT, ...)`.
const MEMBER_BANNED: &str = "members_not_banned";

/// Messages of failures that mean "the database is away or overloaded", which diesel reports
/// as unknown errors: PostgreSQL's statement timeout and shutdowns, SQLite's busy timeout.
const UNAVAILABLE_MESSAGES: [&str; 10] = [
    "canceling statement due to statement timeout",
    "canceling statement due to user request",
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "no connection to the server",
    "connection to server",
    "could not receive data from server",
    "database is locked",
    "database table is locked",
];

/// Messages of failures after which the connection they happened on is gone for good: its
/// server closed it (a restart, a failover, `pg_terminate_backend`), or the line to it broke.
const CONNECTION_LOST_MESSAGES: [&str; 6] = [
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "the database system is",
];

/// Whether a statement's failure means its connection can never be used again, so the pool
/// must drop it rather than hand it out. A statement timeout, a lock wait or a constraint leave
/// the connection as good as before; a connection that only reaches a read-only server (a
/// standby, or a primary demoted by a failover) is dropped too, so that the next one opened
/// goes wherever the URL's `target_session_attrs` finds the writable server now.
pub(crate) fn is_connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(_, info) => {
            CONNECTION_LOST_MESSAGES.iter().any(|lost| info.message().contains(lost))
        }
        _ => false,
    }
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound(Entity::Row),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                Self::Conflict(Constraint::identify(info.as_ref()))
            }
            // PostgreSQL raises it as a check violation; diesel knows no kind for SQLite's
            // trigger failures.
            DieselError::DatabaseError(
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::Unknown,
                ref info,
            ) if Constraint::identify(info.as_ref()) == Constraint::MemberBanned => {
                Self::Conflict(Constraint::MemberBanned)
            }
            DieselError::DatabaseError(DatabaseErrorKind::NotNullViolation, ref info)
                if info.table_name() == Some("members")
                    && info.column_name() == Some("server_id") =>
            {
                Self::Conflict(Constraint::MemberBanned)
            }
            // A read-only server is a standby, or a primary a failover demoted: writes are
            // refused until the connection finds the writable one, which is not the caller's
            // doing, so it is answered like a database away.
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                ref info,
            ) => Self::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(_, ref info)
                if UNAVAILABLE_MESSAGES.iter().any(|m| info.message().contains(m)) =>
            {
                Self::Unavailable(info.message().to_owned())
            }
            // The connection died under a transaction and diesel could not even roll it back:
            // the database is away, not the request at fault.
            DieselError::BrokenTransactionManager => Self::Unavailable(error.to_string()),
            other => Self::Database(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
