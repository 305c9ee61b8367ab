//! A webhook receiver, for integrators: checks each delivery's signature and freshness, ignores
//! the ones it has already seen (deliveries are at least once), and prints the events.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_... cargo run --example webhook_receiver -- 127.0.0.1:9000
//! ```
//!
//! Register `http://<that address>/` as a webhook (`POST /servers/{id}/webhooks`, whose answer
//! shows the secret once); the service must allow private targets for a local receiver
//! (`INVITE_WEBHOOK_ALLOW_PRIVATE=on`).
//!
//! The signature is `Invite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC keyed
//! with the secret over `<t>.<body>`: the timestamp is signed too, so an old delivery replayed
//! by someone who captured it is refused once it is older than [`TOLERANCE`].

use std::collections::HashSet;
use std::sync::Mutex;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How old a delivery may be, in seconds (and how far in the future, for clock skew).
const TOLERANCE: i64 = 300;

struct Receiver {
    secret: String,
    /// Event ids already handled: a delivery retried after its answer was lost comes again.
    seen: Mutex<HashSet<String>>,
}

/// Whether `header` signs `body` with `secret`, at a time within the tolerance of `now`.
fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    if (now - timestamp).abs() > TOLERANCE {
        return Err("too old (or from the future)");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "bad secret")?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    // Compared in constant time, so that guessing a signature byte by byte learns nothing.
    if signatures.iter().any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes()))) {
        Ok(())
    } else {
        Err("signature mismatch")
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    receiver: web::Data<Receiver>,
) -> HttpResponse {
    let header = req
        .headers()
        .get("invite-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if let Err(why) = verify(&receiver.secret, header, &body, chrono::Utc::now().timestamp()) {
        println!("refused a delivery: {why}");
        return HttpResponse::BadRequest().finish();
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    if !receiver.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.clone()) {
        println!("event {id} again: already handled");
        return HttpResponse::NoContent().finish();
    }
    println!(
        "event {id} {} on server {}: {}",
        event["type"].as_str().unwrap_or("?"),
        event["server_id"],
        event["data"]
    );
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let Ok(secret) = std::env::var("WEBHOOK_SECRET") else {
        eprintln!("usage: WEBHOOK_SECRET=whsec_... webhook_receiver [address]");
        std::process::exit(2);
    };
    let receiver = web::Data::new(Receiver { secret, seen: Mutex::default() });
    let server = HttpServer::new(move || {
        App::new().app_data(receiver.clone()).default_service(web::post().to(receive))
    })
    .workers(1)
    .bind(&address)?;
    println!("receiving webhooks on http://{}", server.addrs()[0]);
    server.run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fresh_signed_deliveries_pass() {
        let body = br#"{"id":"1"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(b"1000.");
        mac.update(body);
        let header = format!("t=1000,v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(verify("whsec_test", &header, body, 1100), Ok(()));
        assert!(verify("whsec_other", &header, body, 1100).is_err());
        assert!(verify("whsec_test", &header, b"{}", 1100).is_err());
        assert!(verify("whsec_test", &header, body, 1000 + TOLERANCE + 1).is_err());
        assert!(verify("whsec_test", "v1=00", body, 1000).is_err());
    }
}
