//! `invite-loadtest`: seeds a database, drives the service with a scenario, prints throughput
//! and latency, and checks the invariants afterwards. See `bench/run` for the whole benchmark.

mod client_joins;
mod compare;
mod cpu;
mod gateway;
mod ids;
mod peer;
mod pgbench;
mod scenario;
mod seed;
mod verify;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use invite_http::auth::Authenticator;
use invite_store::pool::{ConnectionManager, DatabaseUrl, PoolConfig};
use invite_store::{DbConnection, migrations};

use crate::scenario::{Load, Report, Scenario, Target};

#[derive(Debug, Parser)]
#[command(name = "invite-loadtest", about = "Load tests for the invite service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How the requests address a peer implementation as well as this service: the options
/// `run` and `compare` share.
#[derive(Debug, Clone, Copy, clap::Args)]
struct Addressing {
    /// Previews carry a bearer token (of server 1's owner), as a peer may require (Together
    /// does); this service needs none.
    #[arg(long)]
    preview_token: bool,
    /// Accepting users come from the numbered range starting at this user (see `seed-peer`,
    /// which writes the same range into a peer's user table), one user per accept, instead
    /// of a new random user each.
    #[arg(long)]
    users_from: Option<u64>,
}

/// The `compare` command's options.
#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Service A's base URL.
    #[arg(long)]
    a: String,
    /// Service B's base URL.
    #[arg(long)]
    b: String,
    /// A's name in the report.
    #[arg(long, default_value = "A")]
    a_label: String,
    /// B's name in the report.
    #[arg(long, default_value = "B")]
    b_label: String,
    /// The token secret both services share.
    #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Scenarios, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "preview,accept-distinct,accept-hot,create"
    )]
    scenarios: Vec<Scenario>,
    /// Concurrencies, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    concurrency: Vec<usize>,
    /// Rounds (odd rounds run A first, even ones B first).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured time of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Seeded servers (as given to `seed`).
    #[arg(long, default_value_t = 10_000)]
    servers: u64,
    /// Seeded invites.
    #[arg(long, default_value_t = 100_000)]
    invites: u64,
    /// Append every run as JSON lines to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the table of medians, as Markdown, to this file.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    #[command(flatten)]
    addressing: Addressing,
    /// A's process, to count its processor time per request.
    #[arg(long)]
    a_pid: Option<u32>,
    /// B's process.
    #[arg(long)]
    b_pid: Option<u32>,
    /// A's database name, to count its PostgreSQL backends' processor time per request
    /// (with `--a-pid`; PostgreSQL on this machine).
    #[arg(long)]
    a_database: Option<String>,
    /// B's database name.
    #[arg(long)]
    b_database: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seed an empty database (migrating it first): servers, invites, a big and a small server.
    Seed {
        /// The service's database.
        #[arg(long, env = "INVITE_DATABASE_URL")]
        database_url: String,
        #[command(flatten)]
        size: seed::SeedSize,
        /// Turns raid protection on for every seeded server, to measure joins with it on
        /// against off: `joins,window_seconds,pause_seconds` (e.g. `10000,10,60`). Written by
        /// SQL, unchecked, so a threshold above the API's bound can keep a fast `accept-hot`
        /// from ever reaching it: counting costs a join the same whatever the threshold.
        #[arg(long, value_parser = seed::parse_raid_protection)]
        raid_protection: Option<seed::RaidSetting>,
    },
    /// Drive a running service with a scenario and print what it measured.
    Run {
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The service's token secret, to mint a token per simulated user.
        #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        /// The scenario.
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Requests in flight at once: the senders of a closed loop, the connections of an open
        /// one (`--rate`).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Measured time.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Unmeasured time first.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        warmup: Duration,
        /// Send this many requests a second, each when it is due whatever the answers do (an
        /// open loop; latency counts from when a request was due), instead of `concurrency`
        /// senders going as fast as they are answered.
        #[arg(long)]
        rate: Option<f64>,
        /// Seeded servers and invites (as given to `seed`).
        #[arg(long, default_value_t = 10_000)]
        servers: u64,
        /// Seeded invites.
        #[arg(long, default_value_t = 100_000)]
        invites: u64,
        /// A label for the report (the backend, the setup).
        #[arg(long, default_value = "")]
        label: String,
        /// Spread requests over this many client addresses, sent in `X-Forwarded-For` (the
        /// service must trust this tool's address in `INVITE_TRUSTED_PROXIES`); 0 sends none.
        #[arg(long, default_value_t = 0)]
        client_addresses: u32,
        /// Append the report as JSON lines to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        #[command(flatten)]
        addressing: Addressing,
        /// Write a line per answered request into this file, warm-up included: when it was
        /// sent (Unix milliseconds), its latency (milliseconds), the status (0: no answer), the
        /// kind, then an accept's code and user and a 201 creation's code, so that
        /// a failover test can find when 503s were answered and check that every confirmed
        /// change is in the database.
        #[arg(long)]
        record: Option<std::path::PathBuf>,
        /// Threads sending and reading requests; 0 is one per core. One thread costs the
        /// machine less processor time per request (no hand-offs between threads), which
        /// matters when the tool shares the machine with the service and its database:
        /// `bench/shed` can use it for the open-loop overload runs. A closed loop of previews
        /// needs more than one core's worth of sending.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Hold gateway sessions of the big server's members and measure the fan-out of a stream
    /// of joins: delivery time, losses, order, and the server's memory.
    Gateway {
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The service's token secret.
        #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        /// Sessions to hold (members of the seeded big server, each its own user).
        #[arg(long, default_value_t = 10_000)]
        connections: u64,
        /// One join every this long.
        #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
        every: Duration,
        /// For this long.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// The service's process id, to sample its resident memory.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Append the report as a JSON line to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Two services side by side: each scenario at each concurrency on A, then on B, in
    /// alternating order for `rounds` rounds; prints every run, then the medians and A / B.
    /// Both must accept tokens signed with the same secret and hold the same seeded data
    /// (`seed` seeds this service's database, `seed-peer` writes a peer's). Only the scenario's
    /// success statuses count; a run with more than 1% other answers is marked invalid and
    /// the command fails, naming it with its statuses.
    Compare(CompareArgs),
    /// Write SQL that seeds a peer implementation's database with the rows `seed` writes into
    /// this service's (same ids, codes and counts), and the range of accepting users
    /// `--users-from` draws from. Run it with psql after the peer has migrated its database.
    SeedPeer {
        /// The peer.
        #[arg(long, value_enum)]
        peer: peer::Peer,
        /// Where to write the SQL.
        #[arg(long)]
        sql: std::path::PathBuf,
        // As given to `seed`.
        #[command(flatten)]
        size: seed::SeedSize,
        /// The first accepting user of the range.
        #[arg(long, default_value_t = 1)]
        users_from: u64,
        /// Accepting users in the range: each accept uses one up.
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
    },
    /// Write bearer tokens into a file, one a line, for another load generator (wrk): the
    /// accepting users of the numbered range (`--users-from` and `--count`), or the owners of
    /// servers 1..=`--owners`, each line `<k> <token>`.
    Tokens {
        /// The token secret.
        #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        /// The first accepting user.
        #[arg(long, conflicts_with = "owners", requires = "count")]
        users_from: Option<u64>,
        /// Accepting users.
        #[arg(long)]
        count: Option<u64>,
        /// Owners of servers 1..=this.
        #[arg(long)]
        owners: Option<u64>,
        /// Where to write them.
        #[arg(long)]
        out: std::path::PathBuf,
        /// How long they stay valid.
        #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// New users join one invite through `invite-client` (its retries, each accept with an
    /// `Idempotency-Key`), `concurrency` at a time, for `duration`: run across a failover, each
    /// join must complete exactly once. Writes a line per join into `out` and fails when any
    /// join did not complete.
    ClientJoins {
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The service's token secret.
        #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        /// Users joining at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// For how long new joins start.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Where to write a line per join.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Check the invariants in the database, each a set-based count over whole tables with no
    /// statement timeout, so that a grown database is checked too; exits non-zero on a
    /// violation.
    Verify {
        /// The service's database.
        #[arg(long, env = "INVITE_DATABASE_URL")]
        database_url: String,
    },
    /// Print the pgbench script(s) of a scenario's database work into a directory.
    PgbenchScripts {
        /// The scenario.
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Where to write the files.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Seeded servers.
        #[arg(long, default_value_t = 10_000)]
        servers: u64,
        /// Seeded invites.
        #[arg(long, default_value_t = 100_000)]
        invites: u64,
    },
}

/// A connection without a statement timeout: seeding and checking a grown database take
/// statements longer than the service's pool allows, and the tool waits for them.
fn connect(url: &str) -> anyhow::Result<DbConnection> {
    let mut config = PoolConfig::new(DatabaseUrl::parse(url)?);
    config.statement_timeout = Duration::ZERO;
    ConnectionManager::new(&config).open().context("cannot connect to the database")
}

/// A service to drive, with a token per simulated user signed by `secret`.
fn target(
    url: &str,
    secret: &str,
    concurrency: usize,
    seeded: (u64, u64),
    addresses: u32,
    addressing: Addressing,
) -> anyhow::Result<Target> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut target = Target {
        base: url.trim_end_matches('/').to_owned(),
        auth: Arc::new(Authenticator::from_secret(secret.as_bytes())?),
        client,
        servers: seeded.0,
        invites: seeded.1,
        addresses,
        preview_token: None,
        users: addressing.users_from.map(|first| Arc::new(AtomicU64::new(first))),
        probe: None,
        record: None,
    };
    if addressing.preview_token {
        target.preview_token = Some(target.token(ids::owner(1), ids::owner_name(1)));
    }
    Ok(target)
}

/// The `gateway` command: the fan-out load, its report appended to `json`; an error when
/// anything was lost or reordered.
fn run_gateway(
    target: &Target,
    load: &gateway::GatewayLoad,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let limit = gateway::raise_fd_limit();
    if limit < load.connections + 64 {
        bail!("{} sessions need about as many open files; the limit is {limit}", load.connections);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (clean, line) = runtime.block_on(gateway::run(target, load))?;
    if let Some(path) = json {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{line}")?;
    }
    if !clean {
        bail!("events were lost or reordered");
    }
    Ok(())
}

/// Appends reports to a JSON-lines file.
fn append_json(path: &std::path::Path, reports: &[Report]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    for report in reports {
        writeln!(file, "{}", serde_json::to_string(report)?)?;
    }
    Ok(())
}

/// The runtime `run` sends from: one thread per core (0), a current-thread runtime (1), or `n`
/// threads.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        0 => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    }
}

/// The `tokens` command: the accepting users `first..first + count`, or the owners of servers
/// `1..=owners`, one token a line.
fn write_tokens(
    secret: &str,
    (users_from, count, owners): (Option<u64>, Option<u64>, Option<u64>),
    out: &std::path::Path,
    ttl: Duration,
) -> anyhow::Result<()> {
    let auth = Authenticator::from_secret(secret.as_bytes())?;
    let mint = |user, name| auth.mint_for(user, Some(name), ttl).context("cannot mint");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?,
    );
    match (users_from, owners) {
        (Some(first), _) => {
            for n in first..first + count.unwrap_or(0) {
                writeln!(file, "{}", mint(ids::accepter(n), ids::accepter_name(n))?)?;
            }
        }
        (None, Some(owners)) => {
            for k in 1..=owners {
                writeln!(file, "{k} {}", mint(ids::owner(k), ids::owner_name(k))?)?;
            }
        }
        (None, None) => bail!("say which tokens: --users-from and --count, or --owners"),
    }
    file.flush()?;
    Ok(())
}

/// After `compare`: the runs as JSON lines, the table of medians printed (and written as
/// Markdown), the accepting users each side used up; an error when a run was invalid.
fn report_compare(
    (a, b): (&compare::Side, &compare::Side),
    plan: &compare::Plan,
    reports: &[Report],
    (json, markdown): (Option<std::path::PathBuf>, Option<std::path::PathBuf>),
    users_from: Option<u64>,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        append_json(&path, reports)?;
    }
    let table = compare::summary(a, b, plan, reports);
    print!("\n{table}");
    if let Some(path) = markdown {
        std::fs::write(&path, &table)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for side in [a, b] {
        if let (Some(first), Some(next)) = (users_from, &side.target.users) {
            let next = next.load(std::sync::atomic::Ordering::Relaxed);
            println!("{}: accepting users {first}..{next} used", side.label);
        }
    }
    compare::check_valid(reports)
}

/// The `compare` command.
fn compare_command(args: CompareArgs) -> anyhow::Result<()> {
    let CompareArgs {
        a,
        b,
        a_label,
        b_label,
        jwt_secret,
        scenarios,
        concurrency,
        rounds,
        duration,
        warmup,
        servers,
        invites,
        json,
        markdown,
        addressing,
        a_pid,
        b_pid,
        a_database,
        b_database,
    } = args;
    if a_label == b_label {
        bail!("the two sides need different labels");
    }
    let most = concurrency.iter().copied().max().unwrap_or(1);
    let side = |url: &str,
                label: String,
                pid: Option<u32>,
                database: Option<String>|
     -> anyhow::Result<compare::Side> {
        let mut target = target(url, &jwt_secret, most, (servers, invites), 0, addressing)?;
        target.probe = pid.map(|pid| cpu::Probe { pid, database });
        Ok(compare::Side { label, target })
    };
    let a = side(&a, a_label, a_pid, a_database)?;
    let b = side(&b, b_label, b_pid, b_database)?;
    let plan = compare::Plan {
        scenarios,
        concurrency: concurrency.into_iter().map(|c| c.max(1)).collect(),
        rounds: rounds.max(1),
        load: Load { concurrency: 1, duration, warmup, rate: None },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let reports = runtime.block_on(compare::compare(&a, &b, &plan))?;
    report_compare((&a, &b), &plan, &reports, (json, markdown), addressing.users_from)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed { database_url, size, raid_protection } => {
            let mut conn = connect(&database_url)?;
            migrations::run_pending_migrations(&mut conn)?;
            let started = std::time::Instant::now();
            seed::seed(&mut conn, size)?;
            if let Some(setting) = raid_protection {
                seed::protect_from_raids(&mut conn, setting)?;
                println!("raid protection on for every server: {setting}");
            }
            let seed::SeedSize { servers, invites, big_members } = size;
            println!(
                "seeded {servers} servers, {invites} invites, a server of {big_members} members in {:.1?}",
                started.elapsed()
            );
        }
        Command::Run {
            url,
            jwt_secret,
            scenario,
            concurrency,
            duration,
            warmup,
            rate,
            servers,
            invites,
            label,
            client_addresses,
            json,
            addressing,
            record,
            threads,
        } => {
            let mut target = target(
                &url,
                &jwt_secret,
                concurrency,
                (servers, invites),
                client_addresses,
                addressing,
            )?;
            if let Some(path) = &record {
                target.record = Some(Arc::new(scenario::Recorder::create(path)?));
            }
            let load = Load { concurrency: concurrency.max(1), duration, warmup, rate };
            let runtime = runtime(threads)?;
            let outcome = runtime.block_on(scenario::run(&target, scenario, &label, load));
            // Written out even when the run failed (accept-capped's count), which is when it
            // is read most closely.
            if let Some(record) = &target.record {
                record.flush()?;
            }
            let reports = outcome?;
            scenario::print_table(&reports);
            if let Some(path) = json {
                append_json(&path, &reports)?;
            }
        }
        Command::Compare(args) => compare_command(args)?,
        Command::SeedPeer { peer, sql, size, users_from, users } => {
            let script = peer::seed_sql(peer, size, users_from..users_from + users);
            std::fs::write(&sql, script)
                .with_context(|| format!("cannot write {}", sql.display()))?;
            println!("{}", sql.display());
        }
        Command::Tokens { jwt_secret, users_from, count, owners, out, ttl } => {
            write_tokens(&jwt_secret, (users_from, count, owners), &out, ttl)?;
        }
        Command::Gateway { url, jwt_secret, connections, every, duration, server_pid, json } => {
            let addressing = Addressing { preview_token: false, users_from: None };
            let target = target(&url, &jwt_secret, 64, (0, 0), 0, addressing)?;
            let load = gateway::GatewayLoad { connections, every, duration, server_pid };
            run_gateway(&target, &load, json.as_deref())?;
        }
        Command::ClientJoins { url, jwt_secret, concurrency, duration, out } => {
            let addressing = Addressing { preview_token: false, users_from: None };
            let target = target(&url, &jwt_secret, concurrency, (0, 0), 0, addressing)?;
            let joins = client_joins::Joins { concurrency, duration };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(client_joins::run(&target, joins, &out))?;
        }
        Command::Verify { database_url } => {
            let violated = verify::verify(&mut connect(&database_url)?)?;
            if !violated.is_empty() {
                bail!("{} invariant(s) violated", violated.len());
            }
        }
        Command::PgbenchScripts { scenario, dir, servers, invites } => {
            let scripts = pgbench::scripts(scenario, servers, invites)
                .context("this scenario has no database-only equivalent")?;
            std::fs::create_dir_all(&dir)?;
            for (name, script) in scripts {
                let file = name.split('@').next().unwrap_or(name);
                std::fs::write(dir.join(file), script)?;
                println!("{}", dir.join(name).display());
            }
        }
    }
    Ok(())
}
