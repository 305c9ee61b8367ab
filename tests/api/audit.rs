//! Every audited action leaves its entry, visible to administrators, newest first.

use diesel::connection::SimpleConnection;
use invite_store::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestApp, bits, both_backends, server_id};

/// Makes every insert into the audit log fail, as a full disk or a broken table would.
fn break_the_audit_log(app: &TestApp) {
    let mut conn = app.conn();
    let sql = match conn.backend() {
        Backend::Postgres => {
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'the audit log is broken'; END $$; \
             CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit();"
        }
        Backend::Sqlite => {
            "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
             BEGIN SELECT RAISE(ABORT, 'the audit log is broken'); END;"
        }
    };
    conn.batch_execute(sql).unwrap();
}

/// Held by the test that breaks the audit log: the failure counter belongs to the process, and
/// no other test makes audit writes fail, so while it is held every failure counted is ours.
static BREAKING_THE_AUDIT_LOG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn audit_failures_in_metrics(app: &TestApp) -> u64 {
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("invite_audit_write_failures_total "))
        .unwrap()
        .parse()
        .unwrap()
}

both_backends! {
    fn every_action_is_in_the_audit_log(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        app.patch(&format!("/servers/{sid}"), &owner, json!({"features": ["VANITY_URL"]})).assert_status(200);
        let invite = app.create_invite(&server, &owner, json!({"max_uses": 7}));
        let invite_path = format!("/servers/{sid}/invites/{}", invite["id"].as_str().unwrap());
        app.patch(&invite_path, &owner, json!({"max_uses": 8})).assert_status(200);
        let joiner = app.user();
        app.accept(&invite, &joiner).assert_status(201);
        app.delete(&invite_path, &owner).assert_status(204);
        app.patch(&format!("/servers/{sid}/vanity-url"), &owner, json!({"code": "audited"})).assert_status(200);
        app.put(&format!("/servers/{sid}/invites-pause"), &owner, json!({})).assert_status(204);
        app.delete(&format!("/servers/{sid}/invites-pause"), &owner).assert_status(204);
        app.delete(&format!("/servers/{sid}/members/{}", joiner.id), &owner).assert_status(204);
        app.put(&format!("/servers/{sid}/bans/{}", joiner.id), &owner, json!({"reason": "spam"})).assert_status(204);
        app.delete(&format!("/servers/{sid}/bans/{}", joiner.id), &owner).assert_status(204);

        let log = app.get(&format!("/servers/{sid}/audit-log?limit=100"), &owner);
        log.assert_status(200);
        let entries = log.body.as_array().unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, [
            "MemberUnban", "MemberBan", "MemberKick", "InvitesResume", "InvitesPause", "VanityUpdate",
            "InviteRevoke", "MemberJoin", "InviteUpdate", "InviteCreate",
        ]);
        let entry = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap().clone();
        let create = entry("InviteCreate");
        assert_eq!((create["target_type"].clone(), create["target_id"].clone()), (json!("invite"), invite["id"].clone()));
        assert_eq!(create["details"], json!({"code": invite["code"], "max_uses": 7}));
        assert_eq!(entry("MemberJoin")["details"]["code"], invite["code"]);
        assert_eq!(entry("MemberJoin")["actor_id"], json!(joiner.id));
        assert_eq!(entry("MemberBan")["details"]["reason"], "spam");
        assert_eq!(entry("VanityUpdate")["details"], json!({"old_code": null, "new_code": "audited"}));
        assert_eq!(entry("MemberKick")["target_id"], json!(joiner.id));
        assert!(entries.iter().all(|e| e["server_id"] == server["id"] && e["created_at"].as_str().unwrap().ends_with('Z')));

        // Pages, newest first.
        let page: Vec<Value> = app.get(&format!("/servers/{sid}/audit-log?limit=3"), &owner).body.as_array().unwrap().clone();
        assert_eq!(page, entries[..3]);
        let next = app.get(&format!("/servers/{sid}/audit-log?before={}", page[2]["id"].as_str().unwrap()), &owner);
        assert_eq!(next.body.as_array().unwrap()[..], entries[3..]);
        app.get(&format!("/servers/{sid}/audit-log?limit=101"), &owner).assert_error(400, "INVALID_QUERY", "limit must be between 1 and 100");
    }

    fn the_audit_log_is_for_administrators(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/audit-log", server_id(&server));
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        app.get(&path, &manager).assert_error(403, "MISSING_PERMISSION", "You need the Administrator permission");
        app.grant(&server, &owner, &manager, bits::ADMINISTRATOR);
        app.get(&path, &manager).assert_status(200);
    }

    fn a_failed_audit_write_fails_the_operation_it_describes(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let member = app.member(&server, &owner);
        let invite = app.create_invite(&server, &owner, json!({"max_uses": 3}));
        let invite_path = format!("/servers/{sid}/invites/{}", invite["id"].as_str().unwrap());
        let log = |app: &TestApp| app.get(&format!("/servers/{sid}/audit-log?limit=100"), &owner).body.as_array().unwrap().len();
        let events = |app: &TestApp| app.get(&format!("/servers/{sid}/events?limit=1000"), &owner).body.as_array().unwrap().len();
        let (entries_before, events_before) = (log(app), events(app));
        let _alone = BREAKING_THE_AUDIT_LOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let failures_before = audit_failures_in_metrics(app);
        break_the_audit_log(app);

        // Each audited change answers 500 (the cause is in the log) and changes nothing.
        let joiner = app.user();
        let attempts = [
            app.post(&format!("/servers/{sid}/invites"), &owner, json!({})),
            app.patch(&invite_path, &owner, json!({"max_uses": 4})),
            app.accept(&invite, &joiner),
            app.put(&format!("/servers/{sid}/invites-pause"), &owner, json!({})),
            app.delete(&format!("/servers/{sid}/members/{}", member.id), &owner),
            app.put(&format!("/servers/{sid}/bans/{}", member.id), &owner, json!({})),
            app.delete(&invite_path, &owner),
        ];
        for attempt in &attempts {
            attempt.assert_error(500, "INTERNAL_ERROR", "Internal server error");
        }
        let mut conn = app.conn();
        let stored = conn.find_invite(invite["id"].as_str().unwrap().parse().unwrap()).unwrap().unwrap();
        assert_eq!((stored.max_uses, stored.uses, stored.revoked_at.is_some()), (Some(3), 0, false));
        assert!(conn.find_member(sid.parse().unwrap(), joiner.id).unwrap().is_none());
        assert!(conn.find_member(sid.parse().unwrap(), member.id).unwrap().is_some());
        assert_eq!(app.get(&format!("/servers/{sid}/invites"), &owner).body.as_array().unwrap().len(), 2);
        assert_eq!(app.get(&format!("/servers/{sid}"), &owner).body["invites_paused_until"], Value::Null);
        assert_eq!(app.get(&format!("/servers/{sid}/bans"), &owner).body, json!([]));
        // No entry, no event: the change, its entry and its events commit together or not at all.
        assert_eq!((log(app), events(app)), (entries_before, events_before));
        // On PostgreSQL the accept and the create write their entries in their single
        // statements: a statement fails as a whole, and its failure is the change's, not
        // counted apart.
        let counted = if app.conn().backend() == Backend::Postgres { 5 } else { 7 };
        assert_eq!(audit_failures_in_metrics(app), failures_before + counted);
    }
}
