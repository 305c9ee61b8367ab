use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, bits, both_backends, server_id};

both_backends! {
    fn members_are_listed_by_id_with_how_they_joined(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"temporary": true}));
        let guests: Vec<_> = (0..3).map(|_| app.user()).collect();
        for guest in &guests {
            app.accept(&invite, guest).assert_status(201);
        }
        let path = format!("/servers/{}/members", server_id(&server));
        let all = app.get(&path, &guests[0]);
        let ids: Vec<_> = all.body.as_array().unwrap().iter().map(|m| m["user_id"].as_str().unwrap().to_owned()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!((ids.len(), &ids), (4, &sorted));
        let guest = all.body.as_array().unwrap().iter().find(|m| m["user_id"] == json!(guests[1].id)).unwrap();
        assert_eq!(guest["joined_via"], json!({"source": "invite", "invite_id": invite["id"], "invite_code": invite["code"], "inviter_id": owner.id}));
        assert_eq!((guest["temporary"].clone(), guest["permissions"].clone()), (json!(true), json!(0)));

        let page = app.get(&format!("{path}?limit=2"), &owner);
        assert_eq!(page.body.as_array().unwrap().len(), 2);
        let rest = app.get(&format!("{path}?after={}", page.body[1]["user_id"].as_str().unwrap()), &owner);
        assert_eq!(rest.body.as_array().unwrap().len(), 2);
    }

    fn setting_permissions_needs_administrator_and_ends_temporary_membership(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"temporary": true}));
        let guest = app.user();
        app.accept(&invite, &guest).assert_status(201);
        let path = format!("/servers/{}/members/{}", server_id(&server), guest.id);
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        app.patch(&path, &manager, json!({"permissions": bits::CREATE_INVITES})).assert_error(403, "MISSING_PERMISSION", "You need the Administrator permission");
        let updated = app.patch(&path, &owner, json!({"permissions": bits::CREATE_INVITES}));
        updated.assert_status(200);
        assert_eq!((updated.body["permissions"].clone(), updated.body["temporary"].clone()), (json!(bits::CREATE_INVITES), json!(false)));
        app.patch(&format!("/servers/{}/members/{}", server_id(&server), Uuid::now_v7()), &owner, json!({"permissions": 0}))
            .assert_error(404, "MEMBER_NOT_FOUND", "Member not found");
        app.patch(&path, &owner, json!({"permissions": -1})).assert_code(400, "INVALID_JSON");
    }

    fn leaving_kicking_and_the_owners_immunity(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let leaver = app.member(&server, &owner);
        let target = app.member(&server, &owner);
        let moderator = app.member(&server, &owner);

        app.delete(&format!("/servers/{sid}/members/{}", leaver.id), &leaver).assert_status(204);
        app.delete(&format!("/servers/{sid}/members/{}", target.id), &moderator).assert_error(403, "MISSING_PERMISSION", "You need the Kick Members permission");
        app.grant(&server, &owner, &moderator, bits::KICK_MEMBERS);
        app.delete(&format!("/servers/{sid}/members/{}", target.id), &moderator).assert_status(204);
        app.delete(&format!("/servers/{sid}/members/{}", target.id), &moderator).assert_error(404, "MEMBER_NOT_FOUND", "Member not found");
        app.delete(&format!("/servers/{sid}/members/{}", owner.id), &moderator).assert_error(403, "OWNER_IMMUNE", "The server owner cannot be removed from their server");
        app.delete(&format!("/servers/{sid}/members/{}", owner.id), &owner).assert_error(403, "OWNER_IMMUNE", "The server owner cannot leave their own server");

        let conn = &mut app.conn();
        let id = sid.parse().unwrap();
        assert!(conn.find_member(id, leaver.id).unwrap().is_none());
        assert!(conn.find_member(id, target.id).unwrap().is_none());
        assert_eq!(app.get(&format!("/servers/{sid}"), &owner).body["member_count"], 2);
        // Someone who left is a stranger now.
        app.get(&format!("/servers/{sid}"), &leaver).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
    }
}
