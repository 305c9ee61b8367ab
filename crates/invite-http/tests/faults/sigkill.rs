//! SIGKILL under an accept load (contract section 6): the process dies three times with joins
//! in flight, on each backend. Afterwards every invariant holds, and every accept whose answer
//! was lost, retried with its Idempotency-Key, gets the answer its first attempt earned: 201 if
//! it joined (never "already a member"), a refusal if it did not.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use invite_store::Backend;
use invite_store::testing::TestDatabase;
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::support::{Service, assert_invariants, client, members, seed, token};

/// One accept attempt and what came of it.
#[derive(Debug, Clone)]
struct Attempt {
    user: Uuid,
    code: String,
    /// The status, or `None` when the connection died with the process.
    status: Option<u16>,
}

fn accept(base: &str, attempt: &Attempt) -> reqwest::Result<reqwest::blocking::Response> {
    client()
        .post(format!("{base}/invites/{}/accept", attempt.code))
        .bearer_auth(token(attempt.user))
        // One key per user: the user's retry is the same request.
        .header("Idempotency-Key", attempt.user.to_string())
        .send()
}

fn three_kills_under_an_accept_load(backend: Backend) {
    let db = TestDatabase::new(backend);
    let url = db.url_string();
    let service = Service::start(&url, &[]);
    // Enough uses that joins go on through all three kills; a few invites run out.
    let (server, codes) = seed(&service.base, 6, 120);
    let base = Arc::new(RwLock::new(service.base.clone()));
    let mut service = Some(service);
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..8)
        .map(|worker| {
            let (base, attempts, stop, codes) =
                (base.clone(), attempts.clone(), stop.clone(), codes.clone());
            std::thread::spawn(move || {
                let mut n = worker;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let mut attempt = Attempt {
                        user: Uuid::now_v7(),
                        code: codes[n % codes.len()].clone(),
                        status: None,
                    };
                    let target = base.read().clone();
                    match accept(&target, &attempt) {
                        Ok(response) => attempt.status = Some(response.status().as_u16()),
                        // Killed under it, or not restarted yet.
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                    attempts.lock().push(attempt);
                }
            })
        })
        .collect();
    for round in 0..3_u64 {
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        service.take().unwrap().kill();
        let restarted = Service::start(&url, &[]);
        base.write().clone_from(&restarted.base);
        service = Some(restarted);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Release);
    for worker in load {
        worker.join().unwrap();
    }
    let base = base.read().clone();
    let attempts = attempts.lock().clone();
    let lost: Vec<_> = attempts.iter().filter(|attempt| attempt.status.is_none()).collect();
    assert!(attempts.len() > 100, "the load ran: {} attempts", attempts.len());
    assert!(!lost.is_empty(), "some accepts were in flight when the process died");

    let mut conn = db.connect();
    let joined = members(&mut conn, server);
    let mut replayed_joins = 0;
    for attempt in &lost {
        let retry = accept(&base, attempt).unwrap();
        let status = retry.status().as_u16();
        let replayed = retry.headers().get("idempotent-replayed").is_some();
        let body: serde_json::Value = retry.json().unwrap();
        if joined.contains(&attempt.user) {
            // It joined before the kill: the retry is told so, exactly as the first answer
            // would have been.
            assert_eq!((status, replayed), (201, true), "{attempt:?}: {body}");
            replayed_joins += 1;
        } else {
            // It did not: the retry is decided now.
            assert!(status == 201 || body["code"] == "INVITE_MAXED_OUT", "{attempt:?}: {body}");
            assert!(!replayed, "{attempt:?}");
        }
    }
    assert_invariants(&mut conn);
    // Everyone told 201 is a member, and every member was told 201 (or lost their answer).
    let told: HashSet<Uuid> = attempts
        .iter()
        .filter(|attempt| attempt.status == Some(201))
        .map(|attempt| attempt.user)
        .collect();
    let joined = members(&mut conn, server);
    assert!(told.is_subset(&joined));
    let unanswered: HashSet<Uuid> = lost.iter().map(|attempt| attempt.user).collect();
    for member in &joined {
        assert!(told.contains(member) || unanswered.contains(member), "{member}");
    }
    println!(
        "{backend:?}: {} accepts, {} lost to the kills ({replayed_joins} of them had joined, and \
         their retry was answered 201 from the record), {} members after three kills",
        attempts.len(),
        lost.len(),
        joined.len()
    );
}

invite_store::on_both_backends!(three_kills_under_an_accept_load);
