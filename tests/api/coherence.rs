//! Two instances on one PostgreSQL (contract section 9): a change made through one shows on the
//! other within a second, not after its preview cache's 30 seconds, through the outbox and
//! LISTEN/NOTIFY.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use invite_store::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, server_id, until};

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_change_on_one_instance_shows_on_the_other_within_a_second() {
    let first = TestApp::spawn(Backend::Postgres);
    let second = first.second_instance(&[]);
    // A transaction with an id, open in another database of the cluster the whole time (as a
    // long report or another application would be): it holds the cluster's snapshot horizon
    // back, and must not hold back this database's events.
    let mut elsewhere = PgConnection::establish(&invite_store::testing::admin_url()).unwrap();
    elsewhere.batch_execute("BEGIN; SELECT pg_current_xact_id();").unwrap();
    let (owner, server) = first.owned_server();
    // Under a preview load on the second instance: other invites' previews, from its cache.
    let loaded: Vec<String> = (0..8)
        .map(|_| {
            format!(
                "/invites/{}",
                first.create_invite(&server, &owner, json!({}))["code"].as_str().unwrap()
            )
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    // Stops the load however this test ends: a failed assertion below then reads as itself,
    // not as the load's connection errors once the instances are gone.
    let _stop_on_exit = StopOnDrop(stop.clone());
    let served = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (base, loaded, stop, served) =
                (second.base.clone(), loaded.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for n in worker.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let response = client.get(format!("{base}{}", loaded[n % loaded.len()])).send();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    assert_eq!(response.unwrap().status().as_u16(), 200);
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut delays = Vec::new();
    for round in 0..20 {
        let invite = first.create_invite(&server, &owner, json!({}));
        let preview = format!("/invites/{}", invite["code"].as_str().unwrap());
        // The second instance has the preview in its cache...
        second.request(Method::GET, &preview, None, None).assert_status(200);
        second.request(Method::GET, &preview, None, None).assert_status(200);
        // ...and the first revokes the invite.
        let path =
            format!("/servers/{}/invites/{}", server_id(&server), invite["id"].as_str().unwrap());
        first.delete(&path, &owner).assert_status(204);
        delays.push(until(|| second.request(Method::GET, &preview, None, None).status == 404));
        if round == 0 {
            second.request(Method::GET, &preview, None, None).assert_code(404, "INVITE_REVOKED");
        }
    }
    // A pause, and a join's member count, travel the same way.
    let invite = first.create_invite(&server, &owner, json!({}));
    let preview = format!("/invites/{}", invite["code"].as_str().unwrap());
    assert_eq!(second.request(Method::GET, &preview, None, None).body["member_count"], 1);
    first.accept(&invite, &first.user()).assert_status(201);
    delays.push(until(|| {
        second.request(Method::GET, &preview, None, None).body["member_count"] == 2
    }));
    first
        .put(&format!("/servers/{}/invites-pause", server_id(&server)), &owner, json!({}))
        .assert_status(204);
    delays.push(until(|| {
        second.request(Method::GET, &preview, None, None).body["invites_paused"] == true
    }));
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.join().unwrap();
    }
    delays.sort();
    let (p50, p99) = (delays[delays.len() / 2], delays[delays.len() * 99 / 100]);
    println!(
        "coherence delay over {} changes, under {} previews on the second instance: p50 {p50:?}, p99 {p99:?}, max {:?}",
        delays.len(),
        served.load(Ordering::Relaxed),
        delays[delays.len() - 1]
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    // The second instance's events endpoint has the first's events.
    let events = second.get(&format!("/servers/{}/events?limit=1000", server_id(&server)), &owner);
    let kinds: Vec<&str> =
        events.body.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|kind| **kind == "INVITE_DELETE").count(), 20);
    assert_eq!(kinds.last(), Some(&"INVITES_PAUSE"));
    // How far it has read the outbox is on its /metrics: the last event's seq. The reader
    // applies a batch before it moves its cursor, so the pause may show a moment before.
    let last = events.body.as_array().unwrap().last().unwrap()["seq"].as_i64().unwrap();
    let read = format!("invite_events_read_seq {last}\n");
    until(|| second.request(Method::GET, "/metrics", None, None).text.contains(&read));
}
