//! Embedding the rules: a service of its own (a bot, a gateway, another backend) that validates
//! invite requests and decides joins exactly as the invite service does, with `invite-core`
//! alone: no database, no HTTP, no async runtime.
//!
//! `cargo run --example embed_core`

use chrono::{Duration, Utc};
use invite_service::core::Problem;
use invite_service::core::code::{InviteCode, OsRandom};
use invite_service::core::invite::CreateInviteRequest;
use invite_service::core::permissions::{Permissions, Requirement, Standing};
use invite_service::core::redeem::{InviteStatus, RedemptionFacts, decide_redemption};
use uuid::Uuid;

/// A refusal as the rules give it: machine code and message (the status is the HTTP layer's).
fn answer(problem: &Problem) -> String {
    format!("{} \"{}\"", problem.code.as_str(), problem.message)
}

fn main() {
    let now = Utc::now();

    // 1. Requests are parsed and validated with the contract's messages.
    for body in [
        r#"{"max_uses": 10, "expires_in_hours": 24}"#,
        r#"{"max_uses": 0}"#,
        r#"{"max_age": 60, "expires_in_hours": 1}"#,
        r#"{"colour": "red"}"#,
    ] {
        let outcome = match serde_json::from_str::<CreateInviteRequest>(body) {
            Err(error) => format!("INVALID_JSON \"{error}\""),
            Ok(request) => match request.validate(now) {
                Ok(settings) => format!(
                    "ok: max_uses {:?}, max_age {} s, expires {:?}",
                    settings.max_uses, settings.max_age, settings.expires_at
                ),
                Err(problem) => answer(&problem),
            },
        };
        println!("create {body:<45} -> {outcome}");
    }

    // 2. Codes: 8 characters from the OS's CSPRNG, parsed back the way a URL is read.
    let code = InviteCode::generate(&mut OsRandom);
    assert_eq!(InviteCode::parse(code.as_str()), Ok(code.clone()));
    println!("a fresh code: {code}");

    // 3. Permissions: a member with the defaults may not create invites; granting the bit or
    //    ADMINISTRATOR lets them.
    let member = Standing {
        user_id: Uuid::now_v7(),
        is_owner: false,
        default_permissions: Permissions::DEFAULT_MEMBER,
        member_permissions: Permissions::empty(),
    };
    let refused = member
        .require(Requirement::CreateInvites)
        .expect_err("a default member lacks CREATE_INVITES");
    println!("a default member creating an invite -> {}", answer(&refused));
    let trusted = Standing { member_permissions: Permissions::CREATE_INVITES, ..member };
    assert!(trusted.require(Requirement::CreateInvites).is_ok());
    println!("with CREATE_INVITES -> allowed");

    // 4. The redemption decision, in the contract's order.
    let invite = InviteStatus {
        revoked: false,
        expires_at: Some(now + Duration::hours(1)),
        max_uses: Some(2),
        uses: 1,
    };
    // `is_allowed`: the invite names no users (`allowed_user_ids`), or names this one.
    let mut facts = RedemptionFacts {
        invite: Some(invite),
        pause: None,
        is_member: false,
        is_banned: false,
        is_allowed: true,
    };
    println!("one use left -> {:?}", decide_redemption(&facts, now));
    facts.is_banned = true;
    let banned = decide_redemption(&facts, now).expect_err("a banned user cannot join");
    println!("banned -> {}", answer(&Problem::from(banned)));
    facts.is_banned = false;
    let later = decide_redemption(&facts, now + Duration::hours(2))
        .expect_err("the invite expires after an hour");
    println!("two hours later -> {}", answer(&Problem::from(later)));
}
