//! Creating, listing and revoking invites (Together's endpoints).

use invite_store::testing::insert_active_invites;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, bits, both_backends, server_id};

fn uuid(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

both_backends! {
    fn a_created_invite_has_every_field(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let response = app.post(&format!("/servers/{}/invites", server_id(&server)), &owner, json!({"max_uses": 10, "expires_in_hours": 24}));
        response.assert_status(201);
        let invite = &response.body;
        let code = invite["code"].as_str().unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(invite["url"], format!("https://chat.example/invite/{code}"));
        assert_eq!(invite["server_id"], server["id"]);
        assert_eq!(invite["created_by"], json!(owner.id));
        assert_eq!((invite["max_uses"].clone(), invite["uses"].clone(), invite["max_age"].clone()), (json!(10), json!(0), json!(86400)));
        assert_eq!((invite["kind"].clone(), invite["temporary"].clone(), invite["version"].clone(), invite["channel_id"].clone()), (json!("random"), json!(false), json!(1), json!(null)));
        let created = chrono::DateTime::parse_from_rfc3339(invite["created_at"].as_str().unwrap()).unwrap();
        let expires = chrono::DateTime::parse_from_rfc3339(invite["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires - created, chrono::Duration::hours(24));
        assert_eq!(response.header("etag"), Some("\"1\""));

        // The database holds the same invite.
        let stored = app.conn().find_invite(uuid(&invite["id"])).unwrap().unwrap();
        assert_eq!((stored.code.as_deref(), stored.max_uses, stored.uses), (Some(code), Some(10), 0));
    }

    fn empty_and_absent_bodies_make_a_permanent_unlimited_invite(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("{}/servers/{}/invites", app.base, server_id(&server));
        let absent = app.raw(|c, _| c.post(&path).bearer_auth(&owner.token));
        let empty = app.raw(|c, _| c.post(&path).bearer_auth(&owner.token).header("content-type", "application/json").body(""));
        for response in [absent, empty] {
            response.assert_status(201);
            assert_eq!((response.body["max_uses"].clone(), response.body["expires_at"].clone(), response.body["max_age"].clone()), (json!(null), json!(null), json!(0)));
        }
    }

    fn every_create_rule_has_its_message(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        for (body, message) in [
            (json!({"max_uses": 0}), "max_uses must be greater than 0"),
            (json!({"max_uses": -3}), "max_uses must be greater than 0"),
            (json!({"max_uses": 1_000_001}), "max_uses must be at most 1000000"),
            // Beyond any integer type: still the field's own rule, not a parse error.
            (json!({"max_uses": 1e20}), "max_uses must be at most 1000000"),
            (json!({"max_uses": u64::MAX}), "max_uses must be at most 1000000"),
            (json!({"expires_in_hours": -1e30}), "expires_in_hours must be between 1 and 720"),
            (json!({"expires_in_hours": 0}), "expires_in_hours must be between 1 and 720"),
            (json!({"expires_in_hours": 721}), "expires_in_hours must be between 1 and 720"),
            (json!({"max_age": -1}), "max_age must be between 0 and 2592000"),
            (json!({"max_age": 2_592_001}), "max_age must be between 0 and 2592000"),
            (json!({"max_age": 60, "expires_in_hours": 1}), "Provide either max_age or expires_in_hours, not both"),
        ] {
            let response = app.post(&path, &owner, body.clone());
            assert_eq!(response.status, 400, "{body}: {}", response.text);
            assert_eq!(response.body["error"], message, "{body}");
        }
        assert_eq!(app.get(&path, &owner).body, json!([]), "refused creates write nothing");
        app.post(&path, &owner, json!({"channel_id": Uuid::now_v7()})).assert_error(400, "UNKNOWN_CHANNEL", "Unknown channel");
    }

    fn a_server_holds_at_most_1000_active_invites(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        insert_active_invites(&mut app.conn(), server_id(&server).parse().unwrap(), 999, chrono::Utc::now());
        let last = app.create_invite(&server, &owner, json!({}));
        app.post(&path, &owner, json!({})).assert_error(400, "MAX_INVITES_REACHED", "Maximum number of active invites reached (1000)");
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), 1000);
        app.delete(&format!("{path}/{}", last["id"].as_str().unwrap()), &owner).assert_status(204);
        app.post(&path, &owner, json!({})).assert_status(201);
    }

    fn racing_creates_stop_exactly_at_1000_active_invites(app: &TestApp) {
        // Creates commit together in batches, each reading the creator's standing with the
        // server's lock: of 20 racing for the last 2 places, exactly 2 get one.
        const RACERS: usize = 20;
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        insert_active_invites(&mut app.conn(), server_id(&server).parse().unwrap(), 998, chrono::Utc::now());
        let barrier = std::sync::Barrier::new(RACERS);
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..RACERS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let response = app.post(&path, &owner, json!({}));
                        (response.status, response.body)
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        let created = answers.iter().filter(|(status, _)| *status == 201).count();
        assert_eq!(created, 2, "{answers:?}");
        for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
            assert_eq!((*status, body["code"].as_str()), (400, Some("MAX_INVITES_REACHED")), "{body}");
        }
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), 1000);
    }

    fn creating_and_listing_need_create_invites(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let member = app.member(&server, &owner);
        app.post(&path, &member, json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Create Invites permission");
        app.get(&path, &member).assert_error(403, "MISSING_PERMISSION", "You need the Create Invites permission");

        app.grant(&server, &owner, &member, bits::CREATE_INVITES);
        app.post(&path, &member, json!({})).assert_status(201);
        let admin = app.member_with(&server, &owner, bits::ADMINISTRATOR);
        app.post(&path, &admin, json!({})).assert_status(201);
        assert_eq!(app.get(&path, &admin).body.as_array().unwrap().len(), 4);
    }

    fn lists_are_newest_first_and_keep_expired_and_used_up_invites(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let used_up = app.create_invite(&server, &owner, json!({"max_uses": 1}));
        app.accept(&used_up, &app.user()).assert_status(201);
        let expiring = app.create_invite(&server, &owner, json!({"max_age": 60}));
        let revoked = app.create_invite(&server, &owner, json!({}));
        app.delete(&format!("{path}/{}", revoked["id"].as_str().unwrap()), &owner).assert_status(204);
        let newest = app.create_invite(&server, &owner, json!({}));
        app.clock.advance(chrono::Duration::minutes(2));

        let ids = |body: &Value| body.as_array().unwrap().iter().map(|i| i["id"].clone()).collect::<Vec<_>>();
        let listed = app.get(&path, &owner);
        assert_eq!(ids(&listed.body), [newest["id"].clone(), expiring["id"].clone(), used_up["id"].clone()]);
        assert_eq!(listed.body[2]["uses"], 1);
        assert_eq!(ids(&app.get(&format!("{path}?limit=1"), &owner).body), [newest["id"].clone()]);
        let before = format!("{path}?before={}", newest["id"].as_str().unwrap());
        assert_eq!(ids(&app.get(&before, &owner).body), [expiring["id"].clone(), used_up["id"].clone()]);
    }

    fn revoking_own_and_others_invites(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES);
        let theirs = app.create_invite(&server, &creator, json!({}));
        let owners = app.create_invite(&server, &owner, json!({}));

        // Someone else's invite needs MANAGE_SERVER.
        app.delete(&format!("{path}/{}", owners["id"].as_str().unwrap()), &creator)
            .assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission to revoke this invite");
        // One's own needs CREATE_INVITES only.
        app.delete(&format!("{path}/{}", theirs["id"].as_str().unwrap()), &creator).assert_status(204);
        // The owner (every permission) revokes anyone's.
        let again = app.create_invite(&server, &creator, json!({}));
        app.delete(&format!("{path}/{}", again["id"].as_str().unwrap()), &owner).assert_status(204);

        // Unknown, already revoked, and another server's invites are all 404.
        let other_server = app.create_server(&owner);
        let elsewhere = app.create_invite(&other_server, &owner, json!({}));
        for id in [Uuid::now_v7().to_string(), theirs["id"].as_str().unwrap().to_owned(), elsewhere["id"].as_str().unwrap().to_owned()] {
            app.delete(&format!("{path}/{id}"), &owner).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        }
        // A member without any invite permission is told so first.
        let plain = app.member(&server, &owner);
        app.delete(&format!("{path}/{}", owners["id"].as_str().unwrap()), &plain)
            .assert_error(403, "MISSING_PERMISSION", "You need the Create Invites permission");

        // A revoked invite stays in the database, keeps its code, and no longer works.
        let stored = app.conn().find_invite(uuid(&theirs["id"])).unwrap().unwrap();
        assert!(stored.revoked_at.is_some());
        assert_eq!(stored.code.as_deref(), theirs["code"].as_str());
        app.accept(&theirs, &app.user()).assert_error(404, "INVITE_REVOKED", "Invite not found");
        let listed = app.get(&path, &owner);
        assert!(listed.body.as_array().unwrap().iter().all(|i| i["id"] != theirs["id"]));
    }
}
