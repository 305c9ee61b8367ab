//! Embedded migrations, one set per backend (`migrations/postgres`, `migrations/sqlite`): the
//! binary carries its schema and needs no files beside it.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::DbConnection;

/// The PostgreSQL migrations.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Any key will do as long as no other application on the same database uses it: instances
/// starting together take turns migrating instead of racing.
const MIGRATION_LOCK_KEY: i64 = 0x696e_7669_7465; // "invite"

/// A migration failed; the message comes from diesel and names the migration.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

fn failed(error: impl std::fmt::Display) -> MigrationError {
    MigrationError(error.to_string())
}

/// Where the database's schema stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied.
    pub applied: Vec<String>,
    /// Versions the binary carries that are not applied yet.
    pub pending: Vec<String>,
}

/// Applies every pending migration; returns the versions applied.
pub fn run_pending_migrations(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .map_err(failed)?;
            let result = pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| versions(&v));
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .map_err(failed)?;
            result
        }
        DbConnection::Sqlite(sqlite) => {
            sqlite.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| versions(&v))
        }
    };
    applied.map_err(failed)
}

/// Reverts every applied migration, newest first (for tests and for starting over).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let reverted = match conn {
        DbConnection::Postgres(pg) => {
            pg.revert_all_migrations(POSTGRES_MIGRATIONS).map(|v| versions(&v))
        }
        DbConnection::Sqlite(sqlite) => {
            sqlite.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| versions(&v))
        }
    };
    reverted.map_err(failed)
}

/// Which migrations are applied and which are pending, for `check` and `/readyz`.
pub fn migration_status(conn: &mut DbConnection) -> Result<MigrationStatus, MigrationError> {
    match conn {
        DbConnection::Postgres(pg) => status::<Pg, _>(pg, POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(sqlite) => status::<Sqlite, _>(sqlite, SQLITE_MIGRATIONS),
    }
}

fn status<DB, C>(
    conn: &mut C,
    source: EmbeddedMigrations,
) -> Result<MigrationStatus, MigrationError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let applied = conn.applied_migrations().map_err(failed)?;
    let pending = conn.pending_migrations(source).map_err(failed)?;
    Ok(MigrationStatus {
        applied: applied.iter().map(ToString::to_string).collect(),
        pending: pending.iter().map(|migration| migration.name().version().to_string()).collect(),
    })
}

fn versions(versions: &[diesel::migration::MigrationVersion<'_>]) -> Vec<String> {
    versions.iter().map(ToString::to_string).collect()
}
