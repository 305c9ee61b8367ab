//! The database's connections lost under load, again and again (contract section 6): every
//! backend of the service terminated by an operator, every connection reset by the network, the
//! network silent for 10 s. Whatever happens to the connections, the service is back within
//! 2 s of the database being reachable: joins are answered 201 again and `/readyz` says 200, and
//! nothing but 201 and 503 with `Retry-After` is ever answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use invite_store::Backend;
use invite_store::testing::TestDatabase;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::support::{Proxy, Service, assert_invariants, client, seed, token};

/// How soon after the database is reachable again the service must be back.
const BACK_WITHIN: Duration = Duration::from_secs(2);

/// One answer, as a client saw it.
#[derive(Debug, Clone)]
struct Answer {
    /// When it was sent and answered, from the start of the load.
    sent: Duration,
    answered: Duration,
    status: u16,
    retry_after: bool,
}

/// Clients in closed loops against the service: `accepts` of them joining (a new user each
/// time, so every attempt can succeed), and one asking `/readyz` every 50 ms.
struct Load {
    start: Instant,
    accepts: Arc<Mutex<Vec<Answer>>>,
    ready: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, codes: &[String], clients: usize) -> Self {
        let start = Instant::now();
        let (accepts, ready) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<_> = (0..clients)
            .map(|worker| {
                let (accepts, stop, codes, base) =
                    (accepts.clone(), stop.clone(), codes.to_vec(), base.to_owned());
                std::thread::spawn(move || {
                    let client = client();
                    let mut n = worker;
                    while !stop.load(Ordering::Acquire) {
                        n += clients;
                        let code = &codes[n % codes.len()];
                        let request = client
                            .post(format!("{base}/invites/{code}/accept"))
                            .bearer_auth(token(Uuid::now_v7()));
                        accepts.lock().push(answer(start, request));
                    }
                })
            })
            .collect();
        let (poll, stop_polling, base) = (ready.clone(), stop.clone(), base.to_owned());
        threads.push(std::thread::spawn(move || {
            let client = client();
            while !stop_polling.load(Ordering::Acquire) {
                poll.lock().push(answer(start, client.get(format!("{base}/readyz"))));
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
        Self { start, accepts, ready, stop, threads }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stops the clients; every join's answer, and every `/readyz` answer.
    fn stop(self) -> (Vec<Answer>, Vec<Answer>) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            thread.join().unwrap();
        }
        (self.accepts.lock().clone(), self.ready.lock().clone())
    }
}

fn answer(start: Instant, request: reqwest::blocking::RequestBuilder) -> Answer {
    let sent = start.elapsed();
    let response = request.send().expect("the service answers, whatever happens");
    Answer {
        sent,
        answered: start.elapsed(),
        status: response.status().as_u16(),
        retry_after: response.headers().contains_key("retry-after"),
    }
}

/// Checks one break: `reachable` is when the database could be reached again (the break itself,
/// for a kill or a reset), `until` when the next break came. The service must be back within
/// [`BACK_WITHIN`] and stay back; returns how long it took to answer a join 201, and `/readyz`
/// 200, counted from `reachable`.
fn back_after(
    what: &str,
    (accepts, ready): (&[Answer], &[Answer]),
    reachable: Duration,
    until: Duration,
) -> (Duration, Duration) {
    let first = |answers: &[Answer], status: u16| {
        answers
            .iter()
            .filter(|answer| answer.sent >= reachable && answer.status == status)
            .map(|answer| answer.answered.saturating_sub(reachable))
            .min()
    };
    let joined = first(accepts, 201).unwrap_or_else(|| panic!("{what}: no join succeeded after"));
    let readied = first(ready, 200).unwrap_or_else(|| panic!("{what}: /readyz never said 200"));
    assert!(joined < BACK_WITHIN, "{what}: the first join after took {joined:?}");
    assert!(readied < BACK_WITHIN, "{what}: /readyz said 200 only after {readied:?}");
    // Back, and staying back: nothing sent once the service should be back fails.
    let settled = reachable + BACK_WITHIN;
    for (answers, status) in [(accepts, 201), (ready, 200)] {
        let late: Vec<_> = answers
            .iter()
            .filter(|answer| answer.sent >= settled && answer.answered < until)
            .collect();
        assert!(!late.is_empty(), "{what}: no request between {settled:?} and {until:?}");
        let failed = late.iter().filter(|answer| answer.status != status).count();
        assert_eq!(
            failed,
            0,
            "{what}: {failed} of {} answers still not {status} {BACK_WITHIN:?} after the database \
             was reachable again, e.g. {:?}",
            late.len(),
            late.iter().find(|answer| answer.status != status)
        );
    }
    (joined, readied)
}

/// Every answer was a 201 (or a `/readyz` 200), or a 503 with `Retry-After`, within the
/// deadline and its margin.
fn assert_only_201_and_503(accepts: &[Answer], ready: &[Answer]) {
    for (answers, ok) in [(accepts, 201), (ready, 200)] {
        for answer in answers {
            assert!(
                answer.status == ok || (answer.status == 503 && answer.retry_after),
                "{answer:?}"
            );
            assert!(
                answer.answered.saturating_sub(answer.sent) < Duration::from_millis(2_500),
                "slower than the deadline: {answer:?}"
            );
        }
    }
}

/// The backends of the service's database, but this connection's own.
fn terminate_backends(admin: &mut diesel::PgConnection, database: &str) {
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ))
        .unwrap();
}

fn database_name(db: &TestDatabase) -> String {
    let url = url::Url::parse(&db.url_string()).unwrap();
    url.path().trim_start_matches('/').to_owned()
}

/// Kills every backend of the service ten times under a closed loop of `clients` joins.
fn backends_killed_under(clients: usize) {
    let db = TestDatabase::new(Backend::Postgres);
    let service = Service::start(&db.url_string(), &[]);
    let (_, codes) = seed(&service.base, 20, 1_000_000);
    let database = database_name(&db);
    let mut admin = diesel::Connection::establish(&invite_store::testing::admin_url()).unwrap();
    let load = Load::start(&service.base, &codes, clients);
    std::thread::sleep(Duration::from_secs(1));
    let kills: Vec<Duration> = (0..10)
        .map(|_| {
            let at = load.now();
            terminate_backends(&mut admin, &database);
            std::thread::sleep(Duration::from_secs(3));
            at
        })
        .collect();
    let end = load.now();
    let (accepts, ready) = load.stop();
    assert_only_201_and_503(&accepts, &ready);
    let mut worst = (Duration::ZERO, Duration::ZERO);
    for (round, at) in kills.iter().enumerate() {
        let until = kills.get(round + 1).copied().unwrap_or(end);
        let what = format!("kill {} of 10 at c={clients}", round + 1);
        let (joined, readied) = back_after(&what, (&accepts, &ready), *at, until);
        worst = (worst.0.max(joined), worst.1.max(readied));
    }
    println!(
        "every backend killed 10 times at c={clients}: {} joins, {} of them 503, first 201 after \
         at worst {:?}, /readyz 200 at worst {:?}",
        accepts.len(),
        accepts.iter().filter(|answer| answer.status == 503).count(),
        worst.0,
        worst.1,
    );
    drop(service);
    assert_invariants(&mut db.connect());
}

#[test]
fn every_backend_killed_ten_times_under_8_joining_clients() {
    backends_killed_under(8);
}

#[test]
fn every_backend_killed_ten_times_under_64_joining_clients() {
    backends_killed_under(64);
}

/// The service behind a proxy to its database, under a closed loop of 8, then 64 joining
/// clients: `fault` breaks the line under each load (started a second before) and checks what
/// the service answered; then the database's invariants are checked.
fn under_load_behind_a_proxy(mut fault: impl FnMut(&Proxy, Load, usize)) {
    let db = TestDatabase::new(Backend::Postgres);
    let proxy = Proxy::start("127.0.0.1:5432");
    let mut url = url::Url::parse(&db.url_string()).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    let service = Service::start(url.as_str(), &[]);
    let (_, codes) = seed(&service.base, 20, 1_000_000);
    for clients in [8, 64] {
        let load = Load::start(&service.base, &codes, clients);
        std::thread::sleep(Duration::from_secs(1));
        fault(&proxy, load, clients);
    }
    drop(service);
    assert_invariants(&mut db.connect());
}

#[test]
fn every_connection_reset_ten_times_under_load() {
    under_load_behind_a_proxy(|proxy, load, clients| {
        let resets: Vec<Duration> = (0..10)
            .map(|_| {
                let at = load.now();
                proxy.reset();
                std::thread::sleep(Duration::from_secs(3));
                at
            })
            .collect();
        let end = load.now();
        let (accepts, ready) = load.stop();
        assert_only_201_and_503(&accepts, &ready);
        for (round, at) in resets.iter().enumerate() {
            let until = resets.get(round + 1).copied().unwrap_or(end);
            let what = format!("reset {} of 10 at c={clients}", round + 1);
            back_after(&what, (&accepts, &ready), *at, until);
        }
    });
}

#[test]
fn a_ten_second_blackhole_under_load() {
    under_load_behind_a_proxy(|proxy, load, clients| {
        let (silent_at, back_at) =
            proxy.outage(Proxy::blackhole, Duration::from_secs(10), || load.now());
        std::thread::sleep(Duration::from_secs(4));
        let end = load.now();
        let (accepts, ready) = load.stop();
        assert_only_201_and_503(&accepts, &ready);
        // Silent for long: the service answered 503 meanwhile, not one join slipped through
        // a line that carried nothing.
        let during: Vec<_> = accepts
            .iter()
            .filter(|answer| answer.sent > silent_at + BACK_WITHIN && answer.answered < back_at)
            .collect();
        assert!(during.len() > 10, "the load went on in the blackhole ({})", during.len());
        assert!(during.iter().all(|answer| answer.status == 503), "{during:?}");
        let what = format!("blackhole at c={clients}");
        let (joined, readied) = back_after(&what, (&accepts, &ready), back_at, end);
        println!(
            "10 s blackhole at c={clients}: {} joins meanwhile, all 503; back after {joined:?}, \
             /readyz 200 after {readied:?}",
            during.len()
        );
    });
}
