//! The Identities section of the HTTP contract, end to end: create, read,
//! list and page users, issue tokens; every error class; idempotency and
//! concurrency.

mod common;

use common::{client, Server};
use serde_json::{json, Value};

const ADMIN: &str = "users-admin-token-0123456789-abcd";

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    (dir, server)
}

async fn create(s: &Server, token: &str, body: Value) -> reqwest::Response {
    client()
        .post(s.url("/api/v1/users"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn problem(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    r.json().await.unwrap()
}

#[tokio::test]
async fn create_then_read_your_write() {
    let (_dir, s) = start();
    let r = create(
        &s,
        ADMIN,
        json!({"username": "ada", "displayName": "Ada Lovelace", "email": "ada@example.com", "roles": ["auditor"], "managerIds": ["admin"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], "\"1\"");
    let position = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["username"], "ada");
    assert_eq!(created["roles"], json!(["auditor"]));
    assert_eq!(created["status"], "ENABLED");
    assert_eq!(created["delegatedUserId"], Value::Null);
    let id = created["id"].as_str().unwrap();

    let read = client()
        .get(s.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", &position)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read: Value = read.json().await.unwrap();
    assert_eq!(
        read, created,
        "the read model answers exactly what the write answered"
    );

    let missing = client()
        .get(s.url("/api/v1/users/nobody"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
}

#[tokio::test]
async fn bad_bodies_are_refused_and_write_nothing() {
    let (_dir, s) = start();
    let c = client();
    let cases = [
        (json!({"displayName": "no username"}), "username"),
        (json!({"username": "bob", "roles": 5}), "roles"),
        (json!({"username": "bob", "roles": ["root"]}), "roles"),
        (json!({"username": "Bob Smith"}), "username"),
        (json!({"username": "bob", "email": "not-an-email"}), "email"),
        (
            json!({"username": "bob", "managerIds": ["nobody"]}),
            "managerIds",
        ),
        (
            json!({"username": "bob", "delegatedUserId": "nobody"}),
            "delegatedUserId",
        ),
    ];
    for (body, field) in cases {
        // Malformed: 400; well-formed but naming a user that does not exist: 422.
        let status = if field.ends_with("Ids") || field == "delegatedUserId" {
            422
        } else {
            400
        };
        let p = problem(create(&s, ADMIN, body.clone()).await, status).await;
        assert!(
            p["errors"][0]["field"].as_str().unwrap().contains(field),
            "{body}: {p}"
        );
    }
    let r = c
        .post(s.url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    let r = c
        .post(s.url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .body(r#"{"username":"bob"}"#)
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    // None of the refused requests claimed "bob": it is still free.
    let bob = create(&s, ADMIN, json!({"username": "bob"})).await;
    assert_eq!(bob.status(), 201);
    let position = bob.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let list: Value = c
        .get(s.url("/api/v1/users?pageSize=100"))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", position)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["list"].as_array().unwrap().len(), 2, "admin and bob");
}

#[tokio::test]
async fn usernames_are_unique_even_under_concurrency() {
    let (_dir, s) = start();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let url = s.url("/api/v1/users");
            tokio::spawn(async move {
                client()
                    .post(url)
                    .bearer_auth(ADMIN)
                    .json(&json!({"username": "grace", "displayName": format!("Grace {i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    let p = problem(create(&s, ADMIN, json!({"username": "grace"})).await, 409).await;
    assert_eq!(p["errors"][0]["field"], "username");
}

#[tokio::test]
async fn idempotency_key_answers_the_first_outcome() {
    let (_dir, s) = start();
    let send = || {
        client()
            .post(s.url("/api/v1/users"))
            .bearer_auth(ADMIN)
            .header("Idempotency-Key", "create-linus-1")
            .json(&json!({"username": "linus"}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    let position = second.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["version"], second["version"]);
    let list: Value = client()
        .get(s.url("/api/v1/users?query=linus"))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", position)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["list"].as_array().unwrap().len(), 1);

    // The same key with another body is refused and writes nothing.
    let r = client()
        .post(s.url("/api/v1/users"))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", "create-linus-1")
        .json(&json!({"username": "linus2"}))
        .send()
        .await
        .unwrap();
    let p = problem(r, 422).await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    let r = client()
        .get(s.url("/api/v1/users?query=linus2"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert!(list["list"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn tokens_and_authorization() {
    let (_dir, s) = start();
    let c = client();
    let ada: Value = create(&s, ADMIN, json!({"username": "ada"}))
        .await
        .json()
        .await
        .unwrap();
    let id = ada["id"].as_str().unwrap();
    let r = c
        .post(s.url(&format!("/api/v1/users/{id}/tokens")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let position = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let issued: Value = r.json().await.unwrap();
    let token = issued["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("iga_"));

    // The new token works at once when the request carries the write's position.
    let me = c
        .get(s.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("X-Consistency-Token", &position)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "ada");

    // An ordinary user may not create users (403) nor issue tokens to others
    // (whose tokens do not exist for them: 404), but may issue one to themselves.
    problem(
        create(&s, &token, json!({"username": "mallory"})).await,
        403,
    )
    .await;
    let r = c
        .post(s.url("/api/v1/users/admin/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    let r = c
        .post(s.url(&format!("/api/v1/users/{id}/tokens")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(s.url("/api/v1/users/nobody/tokens"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    let r = c
        .post(s.url(&format!("/api/v1/users/{id}/tokens")))
        .bearer_auth(ADMIN)
        .header("Idempotency-Key", "k")
        .send()
        .await
        .unwrap();
    problem(r, 422).await;
}

#[tokio::test]
async fn list_pages_and_filters() {
    let (_dir, s) = start();
    let c = client();
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        assert_eq!(
            create(
                &s,
                ADMIN,
                json!({"username": name, "displayName": name.to_uppercase()})
            )
            .await
            .status(),
            201
        );
    }
    // The consistency token of the last write makes the list complete.
    let last = create(&s, ADMIN, json!({"username": "fay"})).await;
    let position = last.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = s.url("/api/v1/users?pageSize=2");
        if let Some(t) = &token {
            url.push_str(&format!("&pageToken={t}"));
        }
        let page: Value = c
            .get(url)
            .bearer_auth(ADMIN)
            .header("X-Consistency-Token", &position)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = page["list"].as_array().unwrap();
        assert!(list.len() <= 2);
        seen.extend(
            list.iter()
                .map(|u| u["username"].as_str().unwrap().to_string()),
        );
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec!["admin", "ann", "ben", "cat", "dan", "eve", "fay"]
    );

    let found: Value = c
        .get(s.url("/api/v1/users?query=EV"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["list"].as_array().unwrap().len(), 1);
    assert_eq!(found["list"][0]["username"], "eve");

    for bad in ["pageSize=0", "pageSize=1001", "pageToken=zz"] {
        let r = c
            .get(s.url(&format!("/api/v1/users?{bad}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        problem(r, 400).await;
    }
}

#[tokio::test]
async fn update_with_if_match_and_read_it_back() {
    let (_dir, s) = start();
    let c = client();
    let ada: Value = create(&s, ADMIN, json!({"username": "ada", "displayName": "Ada"}))
        .await
        .json()
        .await
        .unwrap();
    let id = ada["id"].as_str().unwrap();
    let url = s.url(&format!("/api/v1/users/{id}"));

    // A stale If-Match is 412 and writes nothing; a current one applies.
    let r = c
        .post(&url)
        .bearer_auth(ADMIN)
        .header("If-Match", "\"7\"")
        .json(&json!({"displayName": "Nope"}))
        .send()
        .await
        .unwrap();
    problem(r, 412).await;
    let r = c
        .post(&url)
        .bearer_auth(ADMIN)
        .header("If-Match", "\"1\"")
        .json(&json!({"displayName": "Ada Lovelace", "roles": ["auditor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let position = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["displayName"], "Ada Lovelace");
    assert_eq!(updated["roles"], json!(["auditor"]));
    assert_eq!(updated["email"], "", "fields not sent are unchanged");
    assert_eq!(updated["createdAt"], ada["createdAt"]);
    assert_ne!(updated["updatedAt"], ada["updatedAt"]);
    let read: Value = c
        .get(&url)
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", position)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        read, updated,
        "the read model answers what the write answered"
    );

    // The same update again changes nothing (same version); a bad one is 400;
    // an unknown user 404; a malformed If-Match 400.
    let again: Value = c
        .post(&url)
        .bearer_auth(ADMIN)
        .json(&json!({"displayName": "Ada Lovelace"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["version"], 2);
    let r = c
        .post(&url)
        .bearer_auth(ADMIN)
        .json(&json!({"status": "GONE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 400).await["errors"][0]["field"], "status");
    let r = c
        .post(s.url("/api/v1/users/nobody"))
        .bearer_auth(ADMIN)
        .json(&json!({"displayName": "x"}))
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    let r = c
        .post(&url)
        .bearer_auth(ADMIN)
        .header("If-Match", "soon")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, 400).await;

    // Disabling a user makes their tokens stop working.
    let token: Value = c
        .post(format!("{url}/tokens"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap();
    let r = c
        .post(&url)
        .bearer_auth(ADMIN)
        .json(&json!({"status": "DISABLED"}))
        .send()
        .await
        .unwrap();
    let position = r.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_string();
    let me = c
        .get(s.url("/api/v1/me"))
        .bearer_auth(token)
        .header("X-Consistency-Token", position)
        .send()
        .await
        .unwrap();
    problem(me, 401).await;
}
