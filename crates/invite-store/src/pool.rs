//! Connection pools for both backends, tuned to fail fast: a short checkout timeout (pool
//! exhaustion or a dead database becomes `StoreError::Unavailable`, never a hang), a
//! `statement_timeout` on PostgreSQL, and WAL, `busy_timeout`, foreign keys and full
//! synchronisation on SQLite.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

use crate::connection::{Backend, DbConnection};
use crate::error::{StoreError, StoreResult};

/// A connection idle for longer than this is pinged before it is handed out; one used more
/// recently is trusted, so busy paths pay no extra round trip. A connection that lost its
/// server is never handed out again (see [`LossWatch`]), and once one has, every other is
/// pinged before its next use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// How soon the SQLite checkpointer (see [`PoolConfig::checkpoint_thread`]) looks again after
/// a pass that copied pages back into the database file: often, so that each pass is short and
/// the WAL stays small; passes further apart copy more at a time, and the writer's commits wait
/// behind those longer writes.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(10);

/// The longest the checkpointer sleeps while nothing is written: each pass with nothing to copy
/// doubles its sleep up to this, so an idle service does not wake a hundred times a second.
const CHECKPOINT_IDLE_INTERVAL: Duration = Duration::from_millis(500);

/// A database URL this service cannot use; the message says what would work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDatabaseUrl(String);

/// Where the database is, parsed from `INVITE_DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://...` or `postgresql://...`, passed to libpq as is.
    Postgres(String),
    /// `sqlite://path/to/file.db`: the file, created if missing.
    Sqlite(String),
}

impl DatabaseUrl {
    /// Parses a URL; anything but the two schemes is refused with a message that says so.
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) =
            url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.starts_with(":memory:") {
                // Each pooled connection would get its own empty database.
                return Err(InvalidDatabaseUrl(
                    "an in-memory SQLite database cannot be shared by a pool; use a file".into(),
                ));
            }
            Ok(Self::Sqlite(path.to_owned()))
        } else {
            Err(InvalidDatabaseUrl(format!(
                "unsupported database URL {:?}: use postgres://... or sqlite://path/to/file.db",
                redact(url)
            )))
        }
    }

    /// Which backend the URL is for.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The URL without its password, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(url) => write!(f, "Postgres({})", redact(url)),
            Self::Sqlite(path) => write!(f, "Sqlite({path})"),
        }
    }
}

/// How the pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The database.
    pub url: DatabaseUrl,
    /// Most connections open at once.
    pub max_size: u32,
    /// Longest wait for a connection before failing with `Unavailable`; also bounds how long
    /// SQLite waits for the write lock.
    pub checkout_timeout: Duration,
    /// Longest a single PostgreSQL statement may run.
    pub statement_timeout: Duration,
    /// SQLite: copy the WAL back into the database file on a thread of the pool's own. All joins
    /// commit through one writer, and checkpointing in that writer takes a large share of its
    /// time; with the thread, the commit that finds the WAL past 1,000 pages (SQLite's own
    /// automatic checkpoint, kept) has only the last few frames left to copy, and then starts
    /// the WAL over. The writers' own checkpoints stay: a thread alone never catches up with a
    /// writer that keeps appending, and the WAL, and the joins' latency, would grow without
    /// bound. For a long-running service; off by default, so a short-lived process (the CLI, a
    /// test) starts no thread.
    pub checkpoint_thread: bool,
    /// PostgreSQL: how long a connection serves before the pool replaces it, which bounds how
    /// old a prepared statement's plan can be (see [`CONNECTION_LIFETIME`], the default).
    pub connection_lifetime: Duration,
    /// PostgreSQL: every transaction of the pool's sessions is read-only
    /// (`default_transaction_read_only`), so a write sent to it by mistake fails instead of
    /// landing where it should not: for the pool of reads a standby may serve
    /// (`INVITE_DATABASE_READ_URL`).
    pub read_only: bool,
}

impl PoolConfig {
    /// Defaults for a URL: 2 s checkout, 5 s statements, and 10 connections on PostgreSQL but
    /// 4 on SQLite. SQLite writes one transaction at a time and its readers share the machine's
    /// cores with the service, so connections past a few only wait, each holding a page cache
    /// (BENCHMARKS.md compares pool sizes).
    pub fn new(url: DatabaseUrl) -> Self {
        let max_size = match url.backend() {
            Backend::Postgres => 10,
            Backend::Sqlite => 4,
        };
        Self {
            url,
            max_size,
            checkout_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            checkpoint_thread: false,
            connection_lifetime: CONNECTION_LIFETIME,
            read_only: false,
        }
    }
}

/// A pooled connection: the connection plus what the pool needs to judge its health.
pub struct PooledConnection {
    conn: DbConnection,
    last_used: Instant,
    /// Set by the connection's own [`LossWatch`] when a statement found the server gone.
    lost: Arc<AtomicBool>,
    /// The pool's [`Losses::epoch`] when this connection was last known to work.
    known_good: u64,
}

/// What the pool's connections tell each other about lost servers.
#[derive(Debug, Default)]
struct Losses {
    /// Bumped whenever a connection of the pool finds its server gone. A server that closed one
    /// connection (a restart, a failover, an operator terminating backends) has usually closed
    /// them all, and an idle connection cannot know it until it sends something: every
    /// connection last known good before the latest loss is pinged before it is handed out.
    epoch: AtomicU64,
}

/// Watches every statement a pooled connection runs, whichever code path runs it and whatever
/// that code does with the error: a statement that finds the connection gone marks it, so the
/// pool drops it instead of handing it out again. Callers that swallow errors (a batch that
/// settles each write's outcome by itself, a background loop that logs and retries) cannot
/// return a dead connection to the pool this way.
struct LossWatch {
    lost: Arc<AtomicBool>,
    losses: Arc<Losses>,
}

impl Instrumentation for LossWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(error), .. } = event
            && crate::error::is_connection_lost(error)
            && !self.lost.swap(true, Ordering::Relaxed)
        {
            self.losses.epoch.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Deref for PooledConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Opens connections of the configured backend and prepares each session.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    statement_timeout: Duration,
    busy_timeout: Duration,
    read_only: bool,
    losses: Arc<Losses>,
}

impl ConnectionManager {
    /// A manager for the configured database.
    pub fn new(config: &PoolConfig) -> Self {
        if config.url.backend() == Backend::Sqlite {
            crate::connection::set_sqlite_writer_patience(config.checkout_timeout);
        }
        Self {
            url: config.url.clone(),
            statement_timeout: config.statement_timeout,
            busy_timeout: config.checkout_timeout,
            read_only: config.read_only,
            losses: Arc::default(),
        }
    }

    /// Opens and prepares one connection, outside any pool (migrations, checks, tests).
    pub fn open(&self) -> Result<DbConnection, r2d2::Error> {
        let conn = match &self.url {
            DatabaseUrl::Postgres(url) => {
                let url = with_network_timeouts(url, self.busy_timeout);
                let mut conn =
                    PgConnection::establish(&url).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "SET statement_timeout = {}",
                    self.statement_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                if self.read_only {
                    conn.batch_execute("SET default_transaction_read_only = on")
                        .map_err(r2d2::Error::QueryError)?;
                }
                DbConnection::Postgres(conn)
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // FULL makes each commit durable before it is acknowledged (nothing committed
                // is ever lost). The page cache is 1 MiB per connection rather than SQLite's
                // 2 MiB: the upper levels of the indexes a request walks fit, the rest is in the
                // kernel's page cache anyway, and a full pool stays within the memory budget.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA cache_size = -1024;",
                    self.busy_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                enable_wal(&mut conn, self.busy_timeout)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(conn)
    }
}

/// The URL with libpq's network timeouts, unless it sets them itself: a connection attempt
/// gives up after the checkout timeout (libpq counts whole seconds, at least 2), and a
/// connection whose sent data stays unacknowledged for 10 s (a network that drops packets
/// rather than refusing them) is closed, instead of holding its thread for the kernel's
/// retransmissions, which take a quarter of an hour.
fn with_network_timeouts(url: &str, connect: Duration) -> String {
    let mut url = url.to_owned();
    let connect_seconds = connect.as_secs_f64().ceil().max(2.0).to_string();
    for (name, value) in
        [("connect_timeout", connect_seconds.as_str()), ("tcp_user_timeout", "10000")]
    {
        if !url.contains(&format!("{name}=")) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(name);
            url.push('=');
            url.push_str(value);
        }
    }
    url
}

/// Switches the file to WAL, which lets readers proceed while one writer commits. The mode is
/// stored in the file, so only the first connection to a new file changes anything; but that
/// change needs the file to itself and fails at once, without waiting for `busy_timeout`, when
/// other connections (a pool filling up) are opening it at the same moment. So it is retried.
fn enable_wal(conn: &mut SqliteConnection, patience: Duration) -> Result<(), r2d2::Error> {
    let started = Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL") {
            Ok(()) => return Ok(()),
            Err(error) if error.to_string().contains("locked") && started.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => return Err(r2d2::Error::QueryError(error)),
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = PooledConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, r2d2::Error> {
        // Read before connecting: a loss reported while this connection opens may predate it,
        // and then costs one needless ping, never a dead connection handed out.
        let known_good = self.losses.epoch.load(Ordering::Relaxed);
        let mut conn = self.open()?;
        let lost = Arc::new(AtomicBool::new(false));
        conn.set_instrumentation(LossWatch {
            lost: Arc::clone(&lost),
            losses: Arc::clone(&self.losses),
        });
        Ok(PooledConnection { conn, last_used: Instant::now(), lost, known_good })
    }

    fn is_valid(&self, conn: &mut PooledConnection) -> Result<(), r2d2::Error> {
        if conn.lost.load(Ordering::Relaxed) {
            return Err(r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                "the connection lost its server".to_owned(),
            )));
        }
        let epoch = self.losses.epoch.load(Ordering::Relaxed);
        if conn.known_good == epoch && conn.last_used.elapsed() < PING_AFTER_IDLE {
            return Ok(());
        }
        conn.conn.ping().map_err(r2d2::Error::QueryError)?;
        conn.last_used = Instant::now();
        conn.known_good = epoch;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PooledConnection) -> bool {
        // Called as the connection comes back: the moment it was last used.
        conn.last_used = Instant::now();
        conn.lost.load(Ordering::Relaxed) || std::thread::panicking() || conn.conn.is_broken()
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    checkout_timeout: Duration,
    /// SQLite's checkpointer, shared by the pool's clones: it stops with the last of them.
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// Tells the checkpointer's thread to stop when dropped.
struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Checkpointer {
    /// Starts the thread that checkpoints the WAL on a connection of its own (see
    /// [`CHECKPOINT_INTERVAL`]). `PASSIVE` never waits for a lock: it copies what readers and
    /// the writer let it, and neither waits for it. A connection that fails is opened again at
    /// the next pass.
    fn spawn(manager: ConnectionManager) -> Option<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_until(&manager, &stopped));
        match spawned {
            Ok(_) => Some(Self { stop }),
            Err(error) => {
                tracing::warn!(%error, "no checkpointer thread; writers checkpoint by themselves");
                None
            }
        }
    }
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(diesel::QueryableByName)]
struct CheckpointReport {
    /// Frames in the WAL.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
    /// Of which copied back into the database file.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    checkpointed: i32,
}

/// The checkpointer's loop, until `stopped`.
fn checkpoint_until(manager: &ConnectionManager, stopped: &AtomicBool) {
    let mut conn: Option<DbConnection> = None;
    let mut failing = false;
    let mut interval = CHECKPOINT_INTERVAL;
    let mut last = (0, 0);
    while !stopped.load(Ordering::Relaxed) {
        std::thread::sleep(interval);
        let pass = match conn.as_mut() {
            Some(conn) => diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
                .get_result::<CheckpointReport>(conn)
                .map_err(|error| error.to_string()),
            None => match manager.open() {
                Ok(opened) => {
                    conn = Some(opened);
                    continue;
                }
                Err(error) => Err(error.to_string()),
            },
        };
        match pass {
            Ok(report) => {
                failing = false;
                let now = (report.log, report.checkpointed);
                // The WAL moved (frames written, or a writer started it over): look again soon.
                interval = if now == last {
                    (interval * 2).min(CHECKPOINT_IDLE_INTERVAL)
                } else {
                    CHECKPOINT_INTERVAL
                };
                last = now;
            }
            Err(error) => {
                conn = None;
                if !failing {
                    // Once per outage: the writers' own checkpoints cover meanwhile.
                    tracing::warn!(%error, "the WAL checkpoint failed; retrying");
                }
                failing = true;
            }
        }
    }
}

impl fmt::Debug for DbPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPool")
            .field("url", &self.url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Connections open and idle, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Open connections.
    pub connections: u32,
    /// Of which idle.
    pub idle: u32,
    /// The configured maximum.
    pub max_size: u32,
}

/// Logs connection failures through `tracing` instead of r2d2's default (stderr).
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<r2d2::Error> for LogErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// How long a PostgreSQL connection serves, by default, before the pool replaces it.
///
/// PostgreSQL keeps a prepared statement's generic plan, chosen for the table sizes of the
/// moment it was made, until the table is analysed again. Where nothing analyses (autovacuum
/// off), a plan made while a table was nearly empty stays for the connection's whole life: the
/// preview's join to `users`, planned as a hash of an empty table, went on hashing every user
/// at every preview once the table had filled.
/// A new connection plans for the tables as they are, so this bounds how old any plan can be
/// (give or take the pool's reaper, which closes idle connections past it every 30 s);
/// replacing one connection every few seconds costs PostgreSQL a few milliseconds each.
pub const CONNECTION_LIFETIME: Duration = Duration::from_mins(2);

impl DbPool {
    /// Builds the pool without connecting: a database that is down at start-up is reported by
    /// the first checkout (and by `/readyz`) instead of preventing the pool from existing.
    pub fn new(config: &PoolConfig) -> Self {
        let pool = r2d2::Pool::builder()
            .max_size(config.max_size)
            .min_idle(Some(config.max_size.min(2)))
            // SQLite plans without table statistics, so its connections keep theirs.
            .max_lifetime(
                (config.url.backend() == Backend::Postgres).then_some(config.connection_lifetime),
            )
            .connection_timeout(config.checkout_timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(LogErrors))
            .build_unchecked(ConnectionManager::new(config));
        let checkpointer = (config.checkpoint_thread && config.url.backend() == Backend::Sqlite)
            .then(|| Checkpointer::spawn(ConnectionManager::new(config)))
            .flatten()
            .map(Arc::new);
        Self {
            pool,
            url: config.url.clone(),
            checkout_timeout: config.checkout_timeout,
            _checkpointer: checkpointer,
        }
    }

    /// How long a checkout may wait for a connection.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The database.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection, or `Unavailable` after the checkout timeout.
    pub fn get(&self) -> StoreResult<r2d2::PooledConnection<ConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` on a pooled connection. A connection that lost its server on the way is
    /// dropped rather than handed to the next caller, whatever `work` did with the error.
    pub fn run<T>(&self, work: impl FnOnce(&mut DbConnection) -> StoreResult<T>) -> StoreResult<T> {
        self.run_by(Instant::now() + self.checkout_timeout, work)
    }

    /// Like [`DbPool::run`], for work that reports errors of its own (converted from the
    /// store's), and the checkout gives up at `deadline` rather than a full timeout
    /// after it starts: a caller that queued for a thread before reaching the pool still fails
    /// within the timeout it was promised, and one whose deadline has passed fails at once. A
    /// write transaction of `work` that is still open at `deadline` rolls back instead of
    /// committing.
    pub fn run_by<T, E: From<StoreError>>(
        &self,
        deadline: Instant,
        work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(StoreError::Unavailable(
                "timed out waiting for a database connection".to_owned(),
            )
            .into());
        }
        let mut conn = self.pool.get_timeout(remaining).map_err(StoreError::from)?;
        crate::connection::with_deadline(deadline, || work(&mut conn))
    }

    /// Whether the database answers now, by `deadline`: the cheapest statement on a connection
    /// of the pool. For health checks.
    pub fn ping_by(&self, deadline: Instant) -> StoreResult<()> {
        self.run_by(deadline, |conn| Ok::<_, StoreError>(conn.ping()?))
    }

    /// Open and idle connections.
    pub fn state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.pool.max_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_already_passed_fails_at_once_without_running_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.db").to_string_lossy().into_owned();
        let pool = DbPool::new(&PoolConfig::new(DatabaseUrl::Sqlite(path)));
        let mut ran = false;
        let started = Instant::now();
        let result = pool.run_by(started, |_| {
            ran = true;
            Ok::<_, StoreError>(())
        });
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(!ran, "the work must not run after its deadline");
        assert!(started.elapsed() < Duration::from_millis(500), "it must not wait");
        let later = Instant::now() + Duration::from_secs(2);
        assert_eq!(pool.run_by(later, |_| Ok::<_, StoreError>(7)).unwrap(), 7);
    }

    /// Writes 500 pages of rows in one transaction, then returns how long the database file
    /// took to grow to hold them (`None`: not within 3 s). Until a checkpoint copies them, the
    /// rows live only in the WAL.
    fn time_to_checkpoint(checkpoint_thread: bool) -> Option<Duration> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.db");
        let mut config = PoolConfig::new(DatabaseUrl::Sqlite(path.to_string_lossy().into_owned()));
        config.checkpoint_thread = checkpoint_thread;
        let pool = DbPool::new(&config);
        // 500 pages: a WAL of half SQLite's default automatic checkpoint, so no writer copies
        // them by itself.
        let rows = 500;
        pool.run(|conn| {
            conn.batch_execute("CREATE TABLE filler (body BLOB NOT NULL)")?;
            conn.batch_execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO filler SELECT zeroblob(4000) FROM n"
            ))?;
            Ok(())
        })
        .unwrap();
        let written = Instant::now();
        let wanted = rows * 4000;
        while written.elapsed() < Duration::from_secs(3) {
            if std::fs::metadata(&path).unwrap().len() >= wanted {
                return Some(written.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn the_checkpointer_copies_the_wal_into_the_file_without_a_writer_doing_it() {
        let copied = time_to_checkpoint(true);
        assert!(copied.is_some(), "the checkpointer thread never copied the WAL back");
        // The control: without the thread, the same write stays in the WAL.
        assert_eq!(time_to_checkpoint(false), None, "a writer checkpointed by itself");
    }

    #[test]
    fn urls_pick_the_backend_and_refuse_the_rest() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://invites.db").unwrap(),
            DatabaseUrl::Sqlite("invites.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/invites.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/invites.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@localhost/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@localhost/db").unwrap().backend(),
            Backend::Postgres
        );
        for bad in ["mysql://x", "invites.db", "sqlite://", "sqlite::memory:"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_timeouts_are_added_unless_set() {
        assert_eq!(
            with_network_timeouts("postgres://u@h/db", Duration::from_millis(1500)),
            "postgres://u@h/db?connect_timeout=2&tcp_user_timeout=10000"
        );
        assert_eq!(
            with_network_timeouts("postgres://u@h/db?connect_timeout=9", Duration::from_secs(5)),
            "postgres://u@h/db?connect_timeout=9&tcp_user_timeout=10000"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        let error = DatabaseUrl::parse("mysql://app:s3cret@db/x").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/x").unwrap();
        assert_eq!(format!("{url:?}"), "Postgres(postgres://app:***@db:5432/x)");
    }
}
