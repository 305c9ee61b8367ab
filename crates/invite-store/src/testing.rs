//! Isolated databases for tests, on real PostgreSQL and real SQLite files.
//!
//! PostgreSQL: a template database is migrated once (named after the hash of the migrations, so
//! a schema change makes a new one), then every test gets `CREATE DATABASE ... TEMPLATE`, which
//! copies files instead of replaying migrations, and drops it when done. SQLite: a migrated file
//! in a temporary directory.
//!
//! The server comes from `INVITE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), with an account allowed to create databases.
//! When it cannot be reached the tests fail, loudly and with instructions: a skipped PostgreSQL
//! suite would let a broken production backend pass.
#![expect(
    clippy::missing_panics_doc,
    reason = "test support: failing to set a database up panics with its cause, as a test should"
)]

use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::connection::{Backend, DbConnection};
use crate::migrations::run_pending_migrations;
use crate::pool::{ConnectionManager, DatabaseUrl, DbPool, PoolConfig};

/// Declares tests once and runs each on PostgreSQL and on SQLite, as `postgres::name` and
/// `sqlite::name`:
/// - `on_both_backends! { fn name(db: &TestDatabase) { ... } ... }`: each test gets a database
///   of its own;
/// - `on_both_backends!(name, ...)`: functions taking a [`Backend`], for tests that set up more
///   than a database.
#[macro_export]
macro_rules! on_both_backends {
    ($(fn $name:ident($db:ident: &$database:ty) $body:block)*) => {
        $(fn $name($db: &$database) $body)*

        mod postgres {
            $(#[test] fn $name() { super::$name(&$crate::testing::TestDatabase::postgres()) })*
        }

        mod sqlite {
            $(#[test] fn $name() { super::$name(&$crate::testing::TestDatabase::sqlite()) })*
        }
    };
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(#[test] fn $name() { super::$name($crate::Backend::Postgres) })+
        }

        mod sqlite {
            $(#[test] fn $name() { super::$name($crate::Backend::Sqlite) })+
        }
    };
}

/// The variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_URL_VAR: &str = "INVITE_TEST_DATABASE_URL";
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TEMPLATE_LOCK_KEY: i64 = 0x696e_7669_7465_7400;

/// The PostgreSQL server URL tests connect to, to create and drop databases.
pub fn admin_url() -> String {
    std::env::var(TEST_DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// `admin` with its database name replaced by `database`.
fn url_for_database(admin: &str, database: &str) -> String {
    let mut url = url::Url::parse(admin)
        .unwrap_or_else(|error| panic!("{TEST_DATABASE_URL_VAR}={admin:?} is not a URL: {error}"));
    url.set_path(database);
    url.to_string()
}

fn connect_admin() -> PgConnection {
    let admin = admin_url();
    PgConnection::establish(&admin).unwrap_or_else(|error| {
        panic!(
            "\nThe PostgreSQL tests need a PostgreSQL server and could not reach {admin}: {error}\n\
             Start one (on this machine: pg_ctlcluster --skip-systemctl-redirect \
             $(ls /etc/postgresql) main start), or point {TEST_DATABASE_URL_VAR} at one, e.g.\n\
             {TEST_DATABASE_URL_VAR}=postgres://user:password@host:5432/postgres\n\
             The account must be allowed to CREATE DATABASE.\n"
        )
    })
}

#[derive(diesel::QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

/// The migrated template, created once per schema version by whichever test gets there first.
fn template_name() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("invite_test_template_{}", env!("INVITE_MIGRATIONS_HASH"));
        let mut admin = connect_admin();
        // Test binaries run as parallel processes: one creates the template, the others wait
        // for the lock and find it.
        admin
            .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
            .expect("lock the template");
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result::<Found>(&mut admin)
        .expect("look the template up")
        .found;
        if !exists {
            // Built under another name and renamed when complete: a run that dies half-way
            // leaves an unused database behind, never a half-migrated template. Nobody may be
            // connected to a template while others clone it, so nothing connects to it after.
            let building = format!("invite_test_building_{}", Uuid::now_v7().simple());
            admin
                .batch_execute(&format!("CREATE DATABASE \"{building}\""))
                .expect("create template");
            let url = url_for_database(&admin_url(), &building);
            let mut conn = DbConnection::Postgres(
                PgConnection::establish(&url).expect("connect to the template"),
            );
            run_pending_migrations(&mut conn).expect("migrate the template");
            drop(conn);
            admin
                .batch_execute(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
                .expect("publish the template");
        }
        admin
            .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
            .expect("unlock the template");
        name
    })
}

enum Cleanup {
    Postgres {
        database: String,
    },
    Sqlite(
        #[expect(dead_code, reason = "held so the directory lives as long as the test")]
        tempfile::TempDir,
    ),
}

/// A migrated database of its own for one test, removed when dropped.
pub struct TestDatabase {
    url: DatabaseUrl,
    pool: Option<DbPool>,
    cleanup: Cleanup,
}

impl TestDatabase {
    /// A fresh PostgreSQL database cloned from the migrated template.
    pub fn postgres() -> Self {
        let template = template_name();
        let database = format!("invite_test_{}", Uuid::now_v7().simple());
        connect_admin()
            .batch_execute(&format!("CREATE DATABASE \"{database}\" TEMPLATE \"{template}\""))
            .expect("create the test database from the template");
        let url = DatabaseUrl::Postgres(url_for_database(&admin_url(), &database));
        Self::with_pool(url, Cleanup::Postgres { database })
    }

    /// A fresh, migrated SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("invites.db");
        let url = DatabaseUrl::Sqlite(path.to_string_lossy().into_owned());
        let database = Self::with_pool(url, Cleanup::Sqlite(dir));
        run_pending_migrations(&mut database.connect()).expect("migrate the SQLite file");
        database
    }

    /// A fresh database of the given backend.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres(),
            Backend::Sqlite => Self::sqlite(),
        }
    }

    fn with_pool(url: DatabaseUrl, cleanup: Cleanup) -> Self {
        let mut config = PoolConfig::new(url.clone());
        config.max_size = 8;
        config.checkout_timeout = std::time::Duration::from_secs(10);
        Self { pool: Some(DbPool::new(&config)), url, cleanup }
    }

    /// The database's URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The URL as `INVITE_DATABASE_URL` would give it.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// A pool of up to 8 connections.
    pub fn pool(&self) -> &DbPool {
        self.pool.as_ref().expect("the pool lives until drop")
    }

    /// A connection of its own, outside the pool.
    pub fn connect(&self) -> DbConnection {
        let config = PoolConfig::new(self.url.clone());
        ConnectionManager::new(&config).open().expect("connect to the test database")
    }
}

/// Inserts `count` active random invites into the server, in one transaction and without the
/// repository's checks: tests of the 1000-active-invites limit would otherwise make a thousand
/// requests first.
pub fn insert_active_invites(
    conn: &mut DbConnection,
    server_id: Uuid,
    count: usize,
    now: chrono::DateTime<chrono::Utc>,
) {
    use diesel::prelude::*;

    use crate::schema::invites;
    use crate::sql_types::{Id, Ts};

    conn.transaction(|conn| {
        (0..count).try_for_each(|_| {
            let code = invite_core::code::InviteCode::generate(&mut invite_core::code::OsRandom);
            diesel::insert_into(invites::table)
                .values((
                    invites::id.eq(Id(Uuid::now_v7())),
                    invites::server_id.eq(Id(server_id)),
                    invites::code.eq(code.as_str()),
                    invites::kind.eq("random"),
                    invites::created_at.eq(Ts(now)),
                    invites::updated_at.eq(Ts(now)),
                ))
                .execute(conn)
                .map(drop)
        })
    })
    .expect("insert the invites");
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Close the pool's connections before the database goes away.
        drop(self.pool.take());
        if let Cleanup::Postgres { database } = &self.cleanup {
            let dropped = connect_admin()
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"));
            if let Err(error) = dropped {
                eprintln!("could not drop test database {database}: {error}");
            }
        }
    }
}
