use serde_json::json;

use crate::helpers::{TestApp, bits, both_backends, server_id};

both_backends! {
    fn bans_remove_the_member_and_block_joins_until_lifted(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let invite = app.create_invite(&server, &owner, json!({}));
        let troll = app.user();
        app.accept(&invite, &troll).assert_status(201);
        let moderator = app.member(&server, &owner);
        let ban_path = format!("/servers/{sid}/bans/{}", troll.id);

        app.put(&ban_path, &moderator, json!({"reason": "spam"})).assert_error(403, "MISSING_PERMISSION", "You need the Ban Members permission");
        app.grant(&server, &owner, &moderator, bits::BAN_MEMBERS);
        app.put(&ban_path, &moderator, json!({"reason": "spam"})).assert_status(204);
        app.put(&format!("/servers/{sid}/bans/{}", owner.id), &moderator, json!({})).assert_error(403, "OWNER_IMMUNE", "The server owner cannot be banned");
        app.put(&ban_path, &moderator, json!({"reason": "x".repeat(513)})).assert_error(400, "VALIDATION_ERROR", "reason must be at most 512 characters");

        let bans = app.get(&format!("/servers/{sid}/bans"), &moderator);
        assert_eq!(bans.body.as_array().unwrap().len(), 1);
        assert_eq!((bans.body[0]["user_id"].clone(), bans.body[0]["reason"].clone(), bans.body[0]["banned_by"].clone()), (json!(troll.id), json!("spam"), json!(moderator.id)));
        app.get(&format!("/servers/{sid}"), &troll).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        assert_eq!(app.get(&format!("/servers/{sid}"), &owner).body["member_count"], 2);
        app.accept(&invite, &troll).assert_error(403, "BANNED", "You are banned from this server");

        app.delete(&ban_path, &moderator).assert_status(204);
        app.delete(&ban_path, &moderator).assert_error(404, "BAN_NOT_FOUND", "Ban not found");
        app.accept(&invite, &troll).assert_status(201);
    }
}
