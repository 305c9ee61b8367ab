use serde_json::json;

use crate::helpers::{TestApp, bits, both_backends, server_id};

both_backends! {
    fn channels_need_manage_channels_to_create_and_membership_to_list(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/channels", server_id(&server));
        let created = app.post(&path, &owner, json!({"name": "general"}));
        created.assert_status(201);
        assert_eq!((created.body["name"].clone(), created.body["server_id"].clone()), (json!("general"), server["id"].clone()));

        let member = app.member(&server, &owner);
        app.post(&path, &member, json!({"name": "mine"})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Channels permission");
        app.grant(&server, &owner, &member, bits::MANAGE_CHANNELS);
        app.post(&path, &member, json!({"name": "random"})).assert_status(201);
        app.post(&path, &member, json!({"name": "  "})).assert_error(400, "VALIDATION_ERROR", "name must be between 1 and 100 characters");

        let listed = app.get(&path, &member);
        let names: Vec<_> = listed.body.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["general", "random"]);
    }
}
