//! The database cut away under load (contract section 6): a proxy between the service and
//! PostgreSQL drops every connection for 10 s. Every answer meanwhile is a 503 with
//! `Retry-After`, none takes longer than the 2 s bound, and the service succeeds again within 3 s
//! of the database coming back, by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use invite_store::Backend;
use invite_store::testing::TestDatabase;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::support::{Proxy, Service, assert_invariants, client, seed, token};

/// One request as the load saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// When it was sent, from the start of the load.
    sent: Duration,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    what: &'static str,
}

#[test]
fn a_database_cut_under_load_is_answered_with_fast_503s_and_recovered_from() {
    let db = TestDatabase::new(Backend::Postgres);
    let proxy = Proxy::start("127.0.0.1:5432");
    let mut url = url::Url::parse(&db.url_string()).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    // No preview cache: every request the load sends needs the database.
    let service = Service::start(url.as_str(), &[("INVITE_PREVIEW_CACHE_TTL", "0s")]);
    let (_, codes) = seed(&service.base, 10, 1_000_000);

    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let (seen, stop, codes, base) =
                (seen.clone(), stop.clone(), codes.clone(), service.base.clone());
            std::thread::spawn(move || {
                let client = client();
                let mut n = worker;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let code = &codes[n % codes.len()];
                    let (what, request) = if n % 2 == 0 {
                        ("preview", client.get(format!("{base}/invites/{code}")))
                    } else {
                        let user = Uuid::now_v7();
                        let request = client
                            .post(format!("{base}/invites/{code}/accept"))
                            .bearer_auth(token(user))
                            .header("Idempotency-Key", user.to_string());
                        ("accept", request)
                    };
                    let sent = start.elapsed();
                    let response = request.send().expect("the service answers, whatever happens");
                    let took = start.elapsed().saturating_sub(sent);
                    seen.lock().push(Seen {
                        sent,
                        took,
                        status: response.status().as_u16(),
                        retry_after: response
                            .headers()
                            .get("retry-after")
                            .map(|value| value.to_str().unwrap().to_owned()),
                        what,
                    });
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(2));
    let (cut_at, restored_at) =
        proxy.outage(Proxy::cut, Duration::from_secs(10), || start.elapsed());
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Release);
    for worker in workers {
        worker.join().unwrap();
    }

    let seen = seen.lock().clone();
    let before = seen.iter().filter(|s| s.sent < cut_at).count();
    assert!(before > 20, "the load ran before the cut ({before} requests)");
    for request in &seen {
        assert!(request.status < 500 || request.status == 503, "{request:?}");
        if request.status == 503 {
            assert!(request.retry_after.is_some(), "a 503 without Retry-After: {request:?}");
        }
        assert!(request.took < Duration::from_secs(2), "slower than the 2 s bound: {request:?}");
    }
    // Once the cut has taken effect, nothing that needs the database succeeds until it is back.
    let during: Vec<_> = seen
        .iter()
        .filter(|s| s.sent > cut_at + Duration::from_millis(100) && s.sent + s.took < restored_at)
        .collect();
    assert!(during.len() > 20, "the load went on during the cut ({})", during.len());
    assert!(
        during.iter().all(|s| s.status == 503),
        "{:?}",
        during.iter().find(|s| s.status != 503)
    );
    let recovered = seen
        .iter()
        .filter(|s| s.sent >= restored_at && s.status < 300)
        .map(|s| s.sent + s.took)
        .min()
        .expect("the service succeeded again after the database came back");
    let recovery = recovered.saturating_sub(restored_at);
    println!(
        "database cut: {} requests, {} during the cut, slowest {:?}, first success {recovery:?} after the database came back",
        seen.len(),
        during.len(),
        seen.iter().map(|s| s.took).max().unwrap(),
    );
    assert!(recovery < Duration::from_secs(3), "success again only after {recovery:?}");
    assert!(seen.iter().any(|s| s.what == "accept" && s.sent > restored_at && s.status == 201));
    drop(service);
    assert_invariants(&mut db.connect());
}
