//! The core's hot functions: drawing a code, deciding a redemption, validating a request.
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark whose set-up fails has nothing to measure: it stops with the cause"
)]

use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use invite_core::code::{CodeRef, InviteCode, OsRandom, Reservation, reserve_code};
use invite_core::invite::CreateInviteRequest;
use invite_core::redeem::{InviteStatus, RedemptionFacts, decide_redemption};

fn codes(c: &mut Criterion) {
    c.bench_function("InviteCode::generate (OS CSPRNG)", |b| {
        b.iter(|| InviteCode::generate(&mut OsRandom));
    });
    // The worst case that still succeeds: the first two codes drawn are taken.
    c.bench_function("reserve_code (two collisions, then reserved)", |b| {
        b.iter(|| {
            let mut attempts = 0;
            reserve_code(&mut OsRandom, |code| {
                attempts += 1;
                Ok::<_, ()>(if attempts < 3 {
                    Reservation::Taken
                } else {
                    Reservation::Reserved(code.clone())
                })
            })
        });
    });
    c.bench_function("CodeRef::parse", |b| b.iter(|| CodeRef::parse(black_box("aB3xK9mZ"))));
}

fn decisions(c: &mut Criterion) {
    let now = Utc::now();
    let facts = RedemptionFacts {
        invite: Some(InviteStatus {
            revoked: false,
            expires_at: Some(now + Duration::hours(1)),
            max_uses: Some(10),
            uses: 3,
        }),
        pause: None,
        is_member: false,
        is_allowed: true,
        is_banned: false,
    };
    c.bench_function("decide_redemption (admit)", |b| {
        b.iter(|| decide_redemption(black_box(&facts), black_box(now)));
    });
}

fn requests(c: &mut Criterion) {
    let now = Utc::now();
    c.bench_function("CreateInviteRequest: parse JSON and validate", |b| {
        b.iter(|| {
            let request: CreateInviteRequest = serde_json::from_str(black_box(
                r#"{"max_uses": 10, "expires_in_hours": 24, "temporary": false}"#,
            ))
            .unwrap();
            request.validate(now)
        });
    });
}

criterion_group!(benches, codes, decisions, requests);
criterion_main!(benches);
