//! The Catalog apps section of the HTTP contract, end to end: create, read,
//! update by owners, lifecycle and delete, versions and restore, errors.

mod common;

use common::{client, Api};
use serde_json::{json, Value};

const ADMIN: &str = "apps-admin-token-0123456789-abcde";

#[tokio::test]
async fn create_read_update_by_owner() {
    let api = Api::start(ADMIN);
    let (owner, owner_token) = api.user("olivia").await;
    let (_, stranger_token) = api.user("sam").await;
    let (status, pos, app) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "GitHub", "description": "Source code", "signOnMode": "SAML_2_0",
                        "monthlyCostUsd": 21, "configuration": {"org": "acme", "sso": true}, "ownerIds": [owner]})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(app["status"], "ACTIVE");
    assert_eq!(app["configuration"], json!({"org": "acme", "sso": true}));
    assert_eq!(app["version"], 1);
    assert_eq!(app["deletedAt"], Value::Null);
    assert!(app["accessEntitlementId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let id = app["id"].as_str().unwrap().to_string();
    let (status, read) = api.read(&format!("/api/v1/apps/{id}"), &pos).await;
    assert_eq!(status, 200);
    assert_eq!(read, app, "the read model answers what the write answered");

    // The owner may update; a stranger and a non-admin creator may not.
    let (status, pos, updated) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}"),
            &owner_token,
            Some(json!({"description": "Code hosting"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["description"], "Code hosting");
    assert_eq!(updated["displayName"], "GitHub");
    assert_eq!(updated["version"], 2);
    assert_eq!(
        api.read(&format!("/api/v1/apps/{id}"), &pos).await.1,
        updated
    );
    let (status, _, p) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}"),
            &stranger_token,
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!((status, p["status"].clone()), (403, json!(403)));
    let (status, _, _) = api
        .write(
            "POST",
            "/api/v1/apps",
            &owner_token,
            Some(json!({"displayName": "Mine"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}/lifecycle/deactivate"),
            &owner_token,
            None,
        )
        .await;
    assert_eq!(status, 403, "lifecycle is for admins");
}

#[tokio::test]
async fn lifecycle_and_delete_only_when_inactive() {
    let api = Api::start(ADMIN);
    let (_, _, app) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "Jira"})),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_string();
    let (status, _, p) = api
        .write("DELETE", &format!("/api/v1/apps/{id}"), ADMIN, None)
        .await;
    assert_eq!(status, 409, "{p}");
    let (status, _, app) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}/lifecycle/deactivate"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!((status, app["status"].as_str()), (200, Some("INACTIVE")));
    let (status, pos, deleted) = api
        .write("DELETE", &format!("/api/v1/apps/{id}"), ADMIN, None)
        .await;
    assert_eq!(status, 200);
    assert!(deleted["deletedAt"].as_str().is_some());
    // Gone unless asked for; kept for history.
    assert_eq!(api.read(&format!("/api/v1/apps/{id}"), &pos).await.0, 404);
    assert_eq!(
        api.read(&format!("/api/v1/apps/{id}?includeDeleted=true"), &pos)
            .await
            .1,
        deleted
    );
    // Left out of lists unless asked for; no more changes.
    let (_, list) = api.read("/api/v1/apps", &pos).await;
    assert!(list["list"].as_array().unwrap().is_empty());
    let (_, list) = api.read("/api/v1/apps?includeDeleted=true", &pos).await;
    assert_eq!(list["list"][0]["id"], id.as_str());
    let (status, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}/lifecycle/activate"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn versions_and_restore() {
    let api = Api::start(ADMIN);
    let (_, _, app) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "Slack", "configuration": {"tier": "free"}})),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_string();
    api.write(
        "POST",
        &format!("/api/v1/apps/{id}"),
        ADMIN,
        Some(json!({"displayName": "Slack Enterprise", "configuration": {"tier": "grid"}})),
    )
    .await;
    let (status, pos, restored) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}/versions/1/restore"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(restored["displayName"], "Slack");
    assert_eq!(restored["configuration"], json!({"tier": "free"}));
    assert_eq!(restored["version"], 3, "a restore is a new version");
    assert_eq!(
        api.read(&format!("/api/v1/apps/{id}"), &pos).await.1,
        restored
    );
    let (_, versions) = api.read(&format!("/api/v1/apps/{id}/versions"), &pos).await;
    let versions = versions["list"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(versions[1]["app"]["displayName"], "Slack Enterprise");
    assert_eq!(versions[1]["actorId"], "admin");
    let (status, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}/versions/9/restore"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn errors() {
    let api = Api::start(ADMIN);
    let c = client();
    for (body, field) in [
        (json!({"description": "no name"}), "displayName"),
        (
            json!({"displayName": "X", "signOnMode": "SMOKE_SIGNALS"}),
            "signOnMode",
        ),
        (
            json!({"displayName": "X", "monthlyCostUsd": "lots"}),
            "monthlyCostUsd",
        ),
        (
            json!({"displayName": "X", "configuration": [1, 2]}),
            "configuration",
        ),
    ] {
        let (status, _, p) = api
            .write("POST", "/api/v1/apps", ADMIN, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    let (status, _, _) = api
        .write(
            "POST",
            "/api/v1/apps/nope",
            ADMIN,
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, _, app) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "Zoom"})),
        )
        .await;
    let id = app["id"].as_str().unwrap();
    let r = c
        .post(api.s.url(&format!("/api/v1/apps/{id}")))
        .bearer_auth(ADMIN)
        .header("If-Match", "\"5\"")
        .json(&json!({"displayName": "Zoom 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let (status, _) = api.read("/api/v1/apps/nope", "0").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn restart_and_rebuild_answer_every_query_the_same() {
    if common::single_process_only("restart_and_rebuild_answer_every_query_the_same") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let mut ids = Vec::new();
    for i in 0..6 {
        let (_, _, app) = api
            .write(
                "POST",
                "/api/v1/apps",
                ADMIN,
                Some(json!({"displayName": format!("App {i}"), "configuration": {"n": i}})),
            )
            .await;
        let id = app["id"].as_str().unwrap().to_string();
        api.write(
            "POST",
            &format!("/api/v1/apps/{id}"),
            ADMIN,
            Some(json!({"description": format!("d{i}")})),
        )
        .await;
        if i % 2 == 0 {
            api.write(
                "POST",
                &format!("/api/v1/apps/{id}/lifecycle/deactivate"),
                ADMIN,
                None,
            )
            .await;
        }
        if i % 3 == 0 {
            api.write("DELETE", &format!("/api/v1/apps/{id}"), ADMIN, None)
                .await;
        }
        ids.push(id);
    }
    for name in ["ann", "bob", "cyd"] {
        api.user(name).await;
    }
    let (_, last, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{}/versions/1/restore", ids[1]),
            ADMIN,
            None,
        )
        .await;

    let mut queries = vec![
        "/api/v1/users?pageSize=1000".to_string(),
        "/api/v1/apps?includeDeleted=true".into(),
        "/api/v1/apps?query=app%201".into(),
        "/api/v1/me".into(),
    ];
    for id in &ids {
        queries.push(format!("/api/v1/apps/{id}"));
        queries.push(format!("/api/v1/apps/{id}/versions"));
    }
    let mut before = Vec::new();
    for q in &queries {
        before.push(api.read(q, &last).await);
    }

    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    common::rebuild(dir.path());
    let api = Api::start_in(dir.path(), ADMIN);
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(
            &api.read(q, &last).await,
            expected,
            "{q} after rebuild and restart"
        );
    }
}

#[tokio::test]
async fn owners() {
    let api = Api::start(ADMIN);
    let (olivia, olivia_token) = api.user("olivia").await;
    let (pat, pat_token) = api.user("pat").await;
    let (_, _, app) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "Figma"})),
        )
        .await;
    let id = app["id"].as_str().unwrap().to_string();
    let owners = format!("/api/v1/apps/{id}/owners");

    let (status, pos, set) = api
        .write("PUT", &owners, ADMIN, Some(json!({"userIds": [olivia]})))
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["list"][0]["username"], "olivia");
    let (status, read) = api.read(&owners, &pos).await;
    assert_eq!(status, 200);
    assert_eq!(read["list"], set["list"]);

    // Pat may not update until the owner adds them.
    let (status, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}"),
            &pat_token,
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, added) = api
        .write("POST", &format!("{owners}/{pat}"), &olivia_token, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(added["list"].as_array().unwrap().len(), 2);
    let (status, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{id}"),
            &pat_token,
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(status, 200);

    // Unknown users are refused; removing a non-owner is 404; removal works.
    let (status, _, p) = api
        .write("PUT", &owners, ADMIN, Some(json!({"userIds": ["ghost"]})))
        .await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str()),
        (422, Some("userIds"))
    );
    let (status, _, _) = api
        .write("POST", &format!("{owners}/ghost"), ADMIN, None)
        .await;
    assert_eq!(status, 422);
    let (status, _, _) = api
        .write("DELETE", &format!("{owners}/ghost"), ADMIN, None)
        .await;
    assert_eq!(status, 404);
    let (status, pos, left) = api
        .write("DELETE", &format!("{owners}/{olivia}"), ADMIN, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(left["list"][0]["username"], "pat");
    assert_eq!(api.read(&owners, &pos).await.1["list"], left["list"]);
}
