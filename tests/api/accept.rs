//! Previewing and accepting (Together's endpoints), and the accept race.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use invite_core::ErrorCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, both_backends, server_id};

fn member_count(app: &TestApp, server: &Value) -> (usize, i64) {
    let id: Uuid = server_id(server).parse().unwrap();
    let mut conn = app.conn();
    let rows = conn
        .list_members(
            id,
            None,
            invite_core::server::PageLimit::parse(Some(1000), 1000, 1000).unwrap(),
        )
        .unwrap()
        .len();
    let counted =
        invite_store::DbConnection::find_server(&mut conn, id).unwrap().unwrap().member_count;
    (rows, counted)
}

/// Sends every user's accept of `invite` at once (released together by a barrier), and returns
/// each answer's status and body in the users' order.
fn race_accepts<'a>(
    app: &TestApp,
    invite: &Value,
    users: impl ExactSizeIterator<Item = &'a TestUser>,
) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(users.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .map(|user| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    let response = app.accept(invite, user);
                    (response.status, response.body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn uses(app: &TestApp, invite: &Value) -> i64 {
    app.uses(invite)
}

both_backends! {
    fn anyone_can_preview_without_a_token(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"expires_in_hours": 1}));
        let preview = app.request(reqwest::Method::GET, &format!("/invites/{}", invite["code"].as_str().unwrap()), None, None);
        preview.assert_status(200);
        assert_eq!(preview.body, json!({
            "code": invite["code"], "server_id": server["id"], "server_name": "Test server",
            "server_icon_url": null, "member_count": 1, "expires_at": invite["expires_at"],
            "channel": null, "inviter_id": owner.id, "temporary": false, "invites_paused": false,
            "requires_approval": false,
        }));
        // Fluxer's clients ask for the expiry explicitly; it is always there.
        let fluxer = app.request(reqwest::Method::GET, &format!("/invites/{}?with_expiration=true", invite["code"].as_str().unwrap()), None, None);
        assert_eq!(fluxer.body, preview.body);
    }

    fn previews_of_unusable_invites_are_404_with_their_reason(app: &TestApp) {
        let (owner, server, used_up) = app.server_with_invite(json!({"max_uses": 1}));
        app.accept(&used_up, &app.user()).assert_status(201);
        let revoked = app.create_invite(&server, &owner, json!({}));
        app.delete(&format!("/servers/{}/invites/{}", server_id(&server), revoked["id"].as_str().unwrap()), &owner).assert_status(204);
        let expiring = app.create_invite(&server, &owner, json!({"max_age": 60}));
        app.clock.advance(chrono::Duration::seconds(60));
        let anyone = app.user();
        for (code, reason) in [
            ("zzzzzzzz", "INVITE_NOT_FOUND"),
            ("no", "INVITE_NOT_FOUND"),
            (revoked["code"].as_str().unwrap(), "INVITE_REVOKED"),
            (expiring["code"].as_str().unwrap(), "INVITE_EXPIRED"),
            (used_up["code"].as_str().unwrap(), "INVITE_MAXED_OUT"),
        ] {
            app.get(&format!("/invites/{code}"), &anyone).assert_error(404, reason, "Invite not found or has expired");
        }
    }

    fn a_cached_preview_never_outlives_the_change_that_ends_it(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let anyone = app.user();
        let single = app.create_invite(&server, &owner, json!({"max_uses": 1}));
        let revoked = app.create_invite(&server, &owner, json!({}));
        let preview = |invite: &Value| app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &anyone);
        // Read twice: the second answer comes from the cache.
        for invite in [&single, &revoked] {
            preview(invite).assert_status(200);
            preview(invite).assert_status(200);
        }
        app.accept(&single, &app.user()).assert_status(201);
        preview(&single).assert_code(404, "INVITE_MAXED_OUT");
        app.delete(&format!("/servers/{}/invites/{}", server_id(&server), revoked["id"].as_str().unwrap()), &owner).assert_status(204);
        preview(&revoked).assert_code(404, "INVITE_REVOKED");

        let open = app.create_invite(&server, &owner, json!({}));
        assert_eq!(preview(&open).body["invites_paused"], false);
        app.put(&format!("/servers/{}/invites-pause", server_id(&server)), &owner, json!({})).assert_status(204);
        assert_eq!(preview(&open).body["invites_paused"], true);
        app.patch(&format!("/servers/{}", server_id(&server)), &owner, json!({"name": "Renamed"})).assert_status(200);
        assert_eq!(preview(&open).body["server_name"], "Renamed");
        let expiring = app.create_invite(&server, &owner, json!({"max_age": 60}));
        preview(&expiring).assert_status(200);
        app.clock.advance(chrono::Duration::seconds(61));
        preview(&expiring).assert_code(404, "INVITE_EXPIRED");
    }

    fn accepting_joins_and_records_how(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"max_uses": 2}));
        let guest = app.user_named(Some("guest"));
        let joined = app.accept(&invite, &guest);
        joined.assert_status(201);
        assert_eq!(joined.body, json!({"message": "Joined server", "server_id": server["id"]}));

        assert_eq!(uses(app, &invite), 1);
        assert_eq!(member_count(app, &server), (2, 2));
        let member = app.conn().find_member(server_id(&server).parse().unwrap(), guest.id).unwrap().unwrap();
        assert_eq!(member.joined_via_code.as_deref(), invite["code"].as_str());
        assert_eq!(member.inviter_id, Some(owner.id));
        assert_eq!(member.username.as_deref(), Some("guest"));
        let preview = app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &guest);
        assert_eq!(preview.body["member_count"], 2);
    }

    fn every_preview_of_a_server_shows_its_member_count_after_a_join_or_a_leave(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let (first, second) = (app.create_invite(&server, &owner, json!({})), app.create_invite(&server, &owner, json!({})));
        let count = |invite: &Value| app.request(reqwest::Method::GET, &format!("/invites/{}", invite["code"].as_str().unwrap()), None, None).body["member_count"].clone();
        // Both previews are read, so both are cached; a join through one changes the other's.
        assert_eq!((count(&first), count(&second)), (json!(1), json!(1)));
        let guest = app.user();
        app.accept(&first, &guest).assert_status(201);
        assert_eq!((count(&first), count(&second)), (json!(2), json!(2)));
        app.delete(&format!("/servers/{}/members/{}", server_id(&server), guest.id), &guest).assert_status(204);
        assert_eq!(count(&second), json!(1));
        let banned = app.member(&server, &owner);
        assert_eq!(count(&second), json!(2));
        app.put(&format!("/servers/{}/bans/{}", server_id(&server), banned.id), &owner, json!({})).assert_status(204);
        assert_eq!(count(&second), json!(1));
        assert_eq!(member_count(app, &server), (1, 1));
    }

    fn every_refusal_has_its_status_and_consumes_nothing(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"max_uses": 2}));
        let member = app.user();
        app.accept(&invite, &member).assert_status(201);

        app.raw(|c, base| c.post(format!("{base}/invites/zzzzzzzz/accept")).bearer_auth(&member.token))
            .assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        app.accept(&invite, &member).assert_error(409, "ALREADY_MEMBER", "Already a member of this server");
        app.accept(&invite, &owner).assert_error(409, "ALREADY_MEMBER", "Already a member of this server");

        let banned = app.user();
        app.put(&format!("/servers/{}/bans/{}", server_id(&server), banned.id), &owner, json!({})).assert_status(204);
        app.accept(&invite, &banned).assert_error(403, "BANNED", "You are banned from this server");

        let last = app.user();
        app.accept(&invite, &last).assert_status(201);
        app.accept(&invite, &app.user()).assert_error(400, "INVITE_MAXED_OUT", "This invite has reached its maximum uses");
        assert_eq!(uses(app, &invite), 2);
        assert_eq!(member_count(app, &server), (3, 3));

        app.raw(|c, base| c.post(format!("{base}/invites/abc/accept"))).assert_code(401, "UNAUTHORIZED");
    }

    fn an_invite_expires_after_max_age(app: &TestApp) {
        let (_, server, invite) = app.server_with_invite(json!({"max_age": 1}));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        app.accept(&invite, &app.user()).assert_error(400, "INVITE_EXPIRED", "This invite has expired");
        assert_eq!(uses(app, &invite), 0);
        assert_eq!(member_count(app, &server), (1, 1));
    }

    fn a_hundred_users_racing_for_ten_uses(app: &TestApp) {
        let (_, server, invite) = app.server_with_invite(json!({"max_uses": 10}));
        let users: Vec<_> = (0..100).map(|_| app.user()).collect();
        let statuses = race_accepts(app, &invite, users.iter());
        let mut by_status: HashMap<u16, usize> = HashMap::new();
        for (status, body) in &statuses {
            *by_status.entry(*status).or_default() += 1;
            if *status == 400 {
                assert_eq!(body["code"], ErrorCode::InviteMaxedOut.as_str());
            }
        }
        assert_eq!(by_status, HashMap::from([(201, 10), (400, 90)]));
        assert_eq!(uses(app, &invite), 10);
        assert_eq!(member_count(app, &server), (11, 11));
    }

    fn accepts_committed_together_each_get_their_own_outcome(app: &TestApp) {
        // Forty-odd accepts of one invite at once: they are committed in groups (the combiner
        // of `Db::run_combined`), and each request must still get exactly its own answer.
        let (owner, server) = app.owned_server();
        let sid = server_id(&server);
        let invite = app.create_invite(&server, &owner, json!({"max_uses": 20}));
        let members: Vec<_> = (0..5).map(|_| app.member(&server, &owner)).collect();
        let banned: Vec<_> = (0..5).map(|_| app.user()).collect();
        for user in &banned {
            app.put(&format!("/servers/{sid}/bans/{}", user.id), &owner, json!({})).assert_status(204);
        }
        let fresh: Vec<_> = (0..30).map(|_| app.user()).collect();
        // One fresh user sends twice, as a double click does.
        let requests: Vec<_> = members
            .iter()
            .chain(&banned)
            .chain(&fresh)
            .chain(std::iter::once(&fresh[0]))
            .collect();
        let uses_before = uses(app, &invite);
        let answers = race_accepts(app, &invite, requests.into_iter());
        for (status, body) in &answers[..5] {
            assert_eq!((*status, body["code"].as_str()), (409, Some("ALREADY_MEMBER")), "{body}");
        }
        for (status, body) in &answers[5..10] {
            assert_eq!((*status, body["code"].as_str()), (403, Some("BANNED")), "{body}");
        }
        let mut fresh_answers: HashMap<(u16, Option<String>), usize> = HashMap::new();
        for (status, body) in &answers[10..] {
            let code = body["code"].as_str().map(str::to_owned);
            *fresh_answers.entry((*status, code)).or_default() += 1;
        }
        // Twenty uses for thirty-one requests of thirty users: twenty join; the double click's
        // second request finds its own membership or the invite used up, like the other ten.
        assert_eq!(fresh_answers.get(&(201, None)), Some(&20), "{fresh_answers:?}");
        let refused: usize = fresh_answers
            .iter()
            .filter(|((status, code), _)| {
                (*status, code.as_deref()) == (400, Some("INVITE_MAXED_OUT"))
                    || (*status, code.as_deref()) == (409, Some("ALREADY_MEMBER"))
            })
            .map(|(_, count)| count)
            .sum();
        assert_eq!(refused, 11, "{fresh_answers:?}");
        assert_eq!(uses(app, &invite), uses_before + 20);
        assert_eq!(member_count(app, &server), (26, 26));
        let metrics = app.request(reqwest::Method::GET, "/metrics", None, None);
        let batches: Vec<&str> = metrics
            .text
            .lines()
            .filter(|line| line.starts_with("invite_db_write_batch_size_bucket"))
            .collect();
        println!("batch sizes of this run: {batches:?}");
    }
}
