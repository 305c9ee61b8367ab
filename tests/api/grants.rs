//! Permissions on join (contract section 11): `grant_permissions` on create and PATCH, who may
//! grant what, what the join gives, and every way a member lacking a bit might try to get it
//! through an invite.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, bits, both_backends, server_id};

fn id_of(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

fn invites_path(server: &Value) -> String {
    format!("/servers/{}/invites", server_id(server))
}

fn invite_path(server: &Value, invite: &Value) -> String {
    format!("/servers/{}/invites/{}", server_id(server), invite["id"].as_str().unwrap())
}

/// The member's permissions and whether they are temporary, as the database holds them
/// (`None`: not a member).
fn membership(app: &TestApp, server: &Value, user: &TestUser) -> Option<(i64, bool)> {
    let member = app.conn().find_member(id_of(server), user.id).unwrap()?;
    Some((member.permissions.bits(), member.temporary))
}

/// How many invites the database holds for the server.
fn invite_count(app: &TestApp, server: &Value) -> usize {
    let page = invite_core::server::PageLimit::parse(Some(1000), 1000, 1000).unwrap();
    let scope = invite_store::repo::InviteScope::Server(id_of(server));
    app.conn().list_invites(scope, None, page).unwrap().len()
}

/// A new user who joins through `invite` (201).
fn joins(app: &TestApp, invite: &Value) -> TestUser {
    let user = app.user();
    app.accept(invite, &user).assert_status(201);
    user
}

both_backends! {
    fn whoever_joins_gets_the_invites_permissions_and_is_not_temporary(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let grant = bits::KICK_MEMBERS | bits::BAN_MEMBERS;
        let created = app.post(&invites_path(&server), &owner, json!({"grant_permissions": grant, "temporary": true}));
        created.assert_status(201);
        assert_eq!((created.body["grant_permissions"].as_i64(), created.body["temporary"].as_bool()), (Some(grant), Some(true)));
        assert_eq!(created.body["allowed_user_ids"], Value::Null);
        let invite = created.body;
        let listed = app.get(&invites_path(&server), &owner);
        assert_eq!(listed.body[0]["grant_permissions"], grant);
        // The preview says joining it is not temporary, and nothing of the grant.
        let preview = app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner);
        assert_eq!(preview.body["temporary"], false);
        assert!(preview.body.get("grant_permissions").is_none(), "{}", preview.text);

        let guest = joins(app, &invite);
        assert_eq!(membership(app, &server, &guest), Some((grant, false)));
        assert_eq!(app.uses(&invite), 1);
        let members = app.get(&format!("/servers/{}/members", server_id(&server)), &owner);
        let member = members.body.as_array().unwrap().iter().find(|m| m["user_id"] == guest.id.to_string()).unwrap();
        assert_eq!((member["permissions"].as_i64(), member["temporary"].as_bool()), (Some(grant), Some(false)));
        // They can use what they were given at once.
        let plain = app.member(&server, &owner);
        app.delete(&format!("/servers/{}/members/{}", server_id(&server), plain.id), &guest).assert_status(204);
        // The join's event says the member is not temporary; the create's audit entry says
        // what the invite grants.
        let events = app.get(&format!("/servers/{}/events?limit=1000", server_id(&server)), &owner);
        let join = events.body.as_array().unwrap().iter().find(|e| e["type"] == "MEMBER_JOIN" && e["data"]["user_id"] == guest.id.to_string()).unwrap().clone();
        assert_eq!(join["data"]["temporary"], false);
        let log = app.get(&format!("/servers/{}/audit-log?limit=100", server_id(&server)), &owner);
        let entry = log.body.as_array().unwrap().iter().find(|e| e["action"] == "InviteCreate" && e["target_id"] == invite["id"]).unwrap().clone();
        assert_eq!(entry["details"]["grant_permissions"], grant);
    }

    fn a_grant_needs_every_bit_administrator_the_owner_and_known_bits(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES | bits::KICK_MEMBERS);
        let admin = app.member_with(&server, &owner, bits::ADMINISTRATOR);
        let before = invite_count(app, &server);
        let path = invites_path(&server);
        app.post(&path, &creator, json!({"grant_permissions": bits::BAN_MEMBERS}))
            .assert_error(403, "MISSING_PERMISSION", "An invite can only grant permissions you have");
        app.post(&path, &admin, json!({"grant_permissions": bits::ADMINISTRATOR}))
            .assert_error(403, "OWNER_ONLY", "Only the server owner can grant the Administrator permission");
        // OWNER_ONLY first, though a bit is missing too.
        app.post(&path, &creator, json!({"grant_permissions": bits::ADMINISTRATOR | bits::BAN_MEMBERS}))
            .assert_code(403, "OWNER_ONLY");
        for wrong in [json!(1 << 15), json!(-1), json!("256"), json!(true), json!(2.5), json!([256])] {
            app.post(&path, &owner, json!({"grant_permissions": wrong})).assert_code(400, "VALIDATION_ERROR");
        }
        assert_eq!(invite_count(app, &server), before, "no refused create made an invite");

        app.post(&path, &creator, json!({"grant_permissions": bits::KICK_MEMBERS})).assert_status(201);
        let by_admin = app.post(&path, &admin, json!({"grant_permissions": bits::BAN_MEMBERS | bits::MANAGE_SERVER}));
        by_admin.assert_status(201);
        let by_owner = app.post(&path, &owner, json!({"grant_permissions": bits::ADMINISTRATOR}));
        by_owner.assert_status(201);
        let guest = joins(app, &by_owner.body);
        assert_eq!(membership(app, &server, &guest), Some((bits::ADMINISTRATOR, false)));
        // Through a channel's path too.
        let channel = app.post(&format!("/servers/{}/channels", server_id(&server)), &owner, json!({"name": "general"}));
        let channel_path = format!("/channels/{}/invites", channel.body["id"].as_str().unwrap());
        app.post(&channel_path, &creator, json!({"grant_permissions": bits::BAN_MEMBERS})).assert_code(403, "MISSING_PERMISSION");
        let through_channel = app.post(&channel_path, &creator, json!({"grant_permissions": bits::KICK_MEMBERS}));
        assert_eq!(through_channel.body["grant_permissions"], bits::KICK_MEMBERS);
    }

    fn no_member_gets_a_bit_through_an_invite_that_its_granter_lacks(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES | bits::KICK_MEMBERS);
        let path = invites_path(&server);

        // 1. Creating an invite that grants a bit one lacks.
        app.post(&path, &creator, json!({"grant_permissions": bits::BAN_MEMBERS})).assert_code(403, "MISSING_PERMISSION");

        // 2. Editing one's own invite to add it: refused, and the invite is as it was.
        let invite = app.create_invite(&server, &creator, json!({"grant_permissions": bits::KICK_MEMBERS}));
        let widen = json!({"grant_permissions": bits::KICK_MEMBERS | bits::BAN_MEMBERS});
        app.patch(&invite_path(&server, &invite), &creator, widen.clone()).assert_code(403, "MISSING_PERMISSION");
        let stored = app.conn().find_invite(id_of(&invite)).unwrap().unwrap();
        assert_eq!((stored.grant_permissions.bits(), stored.version), (bits::KICK_MEMBERS, 1));
        // Nor through someone else's edit who lacks it too: a moderator with Manage Server.
        let moderator = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        app.patch(&invite_path(&server, &invite), &moderator, widen).assert_code(403, "MISSING_PERMISSION");

        // 3. An invite whose granter loses the bit afterwards grants it no more...
        let guest = joins(app, &invite);
        assert_eq!(membership(app, &server, &guest), Some((bits::KICK_MEMBERS, false)));
        app.grant(&server, &owner, &creator, bits::CREATE_INVITES);
        let late = joins(app, &invite);
        assert_eq!(membership(app, &server, &late), Some((0, false)));
        // ...nor after they have left, been kicked or banned.
        let second = app.member_with(&server, &owner, bits::CREATE_INVITES | bits::KICK_MEMBERS);
        let theirs = app.create_invite(&server, &second, json!({"grant_permissions": bits::KICK_MEMBERS}));
        app.delete(&format!("/servers/{sid}/members/{}", second.id), &second).assert_status(204);
        let after_leaving = joins(app, &theirs);
        assert_eq!(membership(app, &server, &after_leaving), Some((0, false)));
        // The invite still shows what it was made to grant; the join is what checks.
        let listed = app.get(&path, &owner);
        let shown = listed.body.as_array().unwrap().iter().find(|i| i["id"] == theirs["id"]).unwrap().clone();
        assert_eq!(shown["grant_permissions"], bits::KICK_MEMBERS);

        // 4. An administrator cannot mint administrators, not even by editing the owner's
        // invite; the owner's grant of it made by an edit is the owner's.
        let admin = app.member_with(&server, &owner, bits::ADMINISTRATOR);
        let owners = app.create_invite(&server, &owner, json!({}));
        app.patch(&invite_path(&server, &owners), &admin, json!({"grant_permissions": bits::ADMINISTRATOR})).assert_code(403, "OWNER_ONLY");
        let by_admin = app.patch(&invite_path(&server, &owners), &admin, json!({"grant_permissions": bits::BAN_MEMBERS}));
        by_admin.assert_status(200);
        assert_eq!((by_admin.body["grant_permissions"].as_i64(), by_admin.body["version"].as_i64()), (Some(bits::BAN_MEMBERS), Some(2)));
        // The edit made the administrator the granter: once they lose the bits, so does the join.
        app.grant(&server, &owner, &admin, 0);
        let after_demotion = joins(app, &owners);
        assert_eq!(membership(app, &server, &after_demotion), Some((0, false)));

        // 5. Someone who joined with a bit cannot pass on more than they hold.
        let holder = app.member_with(&server, &owner, bits::CREATE_INVITES);
        app.post(&path, &holder, json!({"grant_permissions": bits::CREATE_INVITES | bits::KICK_MEMBERS})).assert_code(403, "MISSING_PERMISSION");

        // Wrong types on PATCH are the field's validation errors; an empty grant is fine.
        for wrong in [json!("1"), json!(1 << 15), json!({})] {
            app.patch(&invite_path(&server, &invite), &creator, json!({"grant_permissions": wrong})).assert_code(400, "VALIDATION_ERROR");
        }
        let cleared = app.patch(&invite_path(&server, &invite), &creator, json!({"grant_permissions": 0}));
        cleared.assert_status(200);
        assert_eq!(cleared.body["grant_permissions"], 0);
    }
}
