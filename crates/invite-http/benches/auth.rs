//! Token verification: on the path of every authenticated request.
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark whose set-up fails has nothing to measure: it stops with the cause"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use invite_http::guard::auth::Authenticator;

fn verify(c: &mut Criterion) {
    let auth = Authenticator::from_secret(b"bench-secret-bench-secret-bench-secret-0").unwrap();
    let token =
        auth.mint_for(uuid::Uuid::now_v7(), Some("ann".into()), Duration::from_hours(1)).unwrap();
    c.bench_function("JWT verify (HS256)", |b| b.iter(|| auth.verify(black_box(&token)).unwrap()));
    c.bench_function("JWT mint (HS256)", |b| {
        b.iter(|| auth.mint_for(black_box(uuid::Uuid::nil()), None, Duration::from_hours(1)));
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
