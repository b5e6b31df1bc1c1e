//! The authorization matrix: every write endpoint, with each kind of principal
//! (admin, auditor, owner of the app, owner of an entitlement, ordinary
//! user). The allowed ones succeed; the others get 403 and change nothing.

mod common;

use common::{client, Server};
use serde_json::{json, Value};

const ADMIN: &str = "authz-admin-token-0123456789-abcd";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Admin,
    Auditor,
    Owner,
    /// Owner of the entitlement under test (not of its app).
    EntOwner,
    User,
}

/// (method, path, body, principals allowed, status when allowed)
type Case = (&'static str, String, Option<Value>, &'static [Who], u16);
/// (method, path after the app, body, deactivate the app first, principals allowed)
type AppCase = (
    &'static str,
    &'static str,
    Option<Value>,
    bool,
    &'static [Who],
);

struct World {
    s: Server,
    _dir: tempfile::TempDir,
    tokens: Vec<(Who, String, String)>, // (who, user id, token)
}

impl World {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let (status, position, _) = common::send(method, self.s.url(path), token, body).await;
        (status, position)
    }

    fn token(&self, who: Who) -> &str {
        &self.tokens.iter().find(|t| t.0 == who).unwrap().2
    }

    fn id(&self, who: Who) -> &str {
        &self.tokens.iter().find(|t| t.0 == who).unwrap().1
    }

    /// A fresh app owned by the owner; deactivated when asked.
    async fn app(&self, inactive: bool) -> String {
        let r = client()
            .post(self.s.url("/api/v1/apps"))
            .bearer_auth(ADMIN)
            .json(&json!({"displayName": "Target", "ownerIds": [self.id(Who::Owner)]}))
            .send()
            .await
            .unwrap();
        let app: Value = r.json().await.unwrap();
        let id = app["id"].as_str().unwrap().to_string();
        if inactive {
            self.call(
                "POST",
                &format!("/api/v1/apps/{id}/lifecycle/deactivate"),
                ADMIN,
                None,
            )
            .await;
        }
        id
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    let mut w = World {
        s,
        _dir: dir,
        tokens: vec![(Who::Admin, "admin".into(), ADMIN.into())],
    };
    for (who, name, roles) in [
        (Who::Auditor, "audrey", json!(["auditor"])),
        (Who::Owner, "olivia", json!([])),
        (Who::EntOwner, "erin", json!([])),
        (Who::User, "ulysses", json!([])),
    ] {
        let r = client()
            .post(w.s.url("/api/v1/users"))
            .bearer_auth(ADMIN)
            .json(&json!({"username": name, "roles": roles}))
            .send()
            .await
            .unwrap();
        let u: Value = r.json().await.unwrap();
        let id = u["id"].as_str().unwrap().to_string();
        let r = client()
            .post(w.s.url(&format!("/api/v1/users/{id}/tokens")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let pos = r.headers()["x-consistency-token"]
            .to_str()
            .unwrap()
            .to_string();
        let t: Value = r.json().await.unwrap();
        let token = t["token"].as_str().unwrap().to_string();
        // Wait until the token authenticates.
        let me = client()
            .get(w.s.url("/api/v1/me"))
            .bearer_auth(&token)
            .header("X-Consistency-Token", pos)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        w.tokens.push((who, id, token));
    }
    w
}

#[tokio::test]
async fn every_write_endpoint_with_every_kind_of_principal() {
    use Who::*;
    let w = world().await;
    let all = [Admin, Auditor, Owner, EntOwner, User];
    let mut checked = 0;
    for who in all {
        let token = w.token(who).to_string();
        // (endpoint, allowed principals, outcome when allowed)
        let target_user = w.id(User).to_string();
        let cases: Vec<Case> = vec![
            (
                "POST",
                "/api/v1/users".into(),
                Some(json!({"username": format!("new-{who:?}").to_lowercase()})),
                &[Admin],
                201,
            ),
            (
                "POST",
                format!("/api/v1/users/{target_user}"),
                Some(json!({"displayName": format!("by {who:?}")})),
                &[Admin],
                200,
            ),
            (
                "POST",
                format!("/api/v1/users/{}/tokens", w.id(Owner)),
                None,
                &[Admin, Owner],
                201,
            ),
            (
                "POST",
                "/api/v1/apps".into(),
                Some(json!({"displayName": "New"})),
                &[Admin],
                201,
            ),
        ];
        for (method, path, body, allowed, ok) in cases {
            let (status, _) = w.call(method, &path, &token, body).await;
            // Another user's tokens do not exist for the caller: 404.
            let refused = if path.contains("/tokens") { 404 } else { 403 };
            let expected = if allowed.contains(&who) { ok } else { refused };
            assert_eq!(status, expected, "{who:?} {method} {path}");
            checked += 1;
        }
        // App endpoints, each on a fresh app so the allowed call can succeed.
        let app_cases: Vec<AppCase> = vec![
            (
                "POST",
                "",
                Some(json!({"description": "changed"})),
                false,
                &[Admin, Owner],
            ),
            ("POST", "/lifecycle/deactivate", None, false, &[Admin]),
            ("POST", "/lifecycle/activate", None, true, &[Admin]),
            ("DELETE", "", None, true, &[Admin]),
            ("POST", "/versions/1/restore", None, false, &[Admin, Owner]),
            (
                "PUT",
                "/owners",
                Some(json!({"userIds": [w.id(User)]})),
                false,
                &[Admin],
            ),
            ("POST", "/owners/USER", None, false, &[Admin, Owner]),
            ("DELETE", "/owners/OWNER", None, false, &[Admin, Owner]),
        ];
        for (method, suffix, body, inactive, allowed) in app_cases {
            let app = w.app(inactive).await;
            let suffix = suffix
                .replace("USER", w.id(User))
                .replace("OWNER", w.id(Owner));
            let path = format!("/api/v1/apps/{app}{suffix}");
            let (status, _) = w.call(method, &path, &token, body).await;
            if allowed.contains(&who) {
                assert_eq!(status, 200, "{who:?} {method} {path}");
            } else {
                assert_eq!(status, 403, "{who:?} {method} {path}");
                // Nothing changed: read at the log's head, the app is still at
                // version 1 (2 if deactivated).
                let ready: Value = client()
                    .get(w.s.url("/readyz"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let head = ready["logHead"].to_string();
                let r = client()
                    .get(w.s.url(&format!("/api/v1/apps/{app}")))
                    .bearer_auth(ADMIN)
                    .header("X-Consistency-Token", head)
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                assert_eq!(
                    v["version"],
                    if inactive { 2 } else { 1 },
                    "{who:?} {method} {path} changed the app"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 12);
}

impl World {
    /// The consistency token of the log's head: a read with it sees every write so far.
    async fn head(&self) -> String {
        let ready: Value = client()
            .get(self.s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["logHead"].to_string()
    }

    async fn version_of(&self, path: &str) -> Value {
        let r = client()
            .get(self.s.url(path))
            .bearer_auth(ADMIN)
            .header("X-Consistency-Token", self.head().await)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["version"].clone()
    }

    async fn admin_post(&self, path: &str, body: Value) -> String {
        let (status, _, v) = common::send("POST", self.s.url(path), ADMIN, Some(body)).await;
        assert!(status == 201 || status == 200, "{path}: {v}");
        v["id"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn every_catalog_and_policy_write_endpoint_with_every_kind_of_principal() {
    use Who::*;
    let w = world().await;
    let mut checked = 0;
    // (method, path with APP / TYPE / ENT / USER / ENTOWNER / POLICY, body, allowed, status when allowed)
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/apps/APP/resource_types".into(),
            Some(json!({"displayName": "T"})),
            &[Admin, Owner],
            201,
        ),
        (
            "POST",
            "/api/v1/apps/APP/resource_types/TYPE/resources".into(),
            Some(json!({"displayName": "R"})),
            &[Admin, Owner],
            201,
        ),
        (
            "POST",
            "/api/v1/apps/APP/entitlements".into(),
            Some(json!({"displayName": "E"})),
            &[Admin, Owner],
            201,
        ),
        (
            "POST",
            "/api/v1/apps/APP/entitlements/ENT".into(),
            Some(json!({"description": "changed"})),
            &[Admin, Owner, EntOwner],
            200,
        ),
        (
            "DELETE",
            "/api/v1/apps/APP/entitlements/ENT".into(),
            None,
            &[Admin, Owner],
            200,
        ),
        (
            "PUT",
            "/api/v1/apps/APP/entitlements/ENT/owners".into(),
            Some(json!({"userIds": ["USER"]})),
            &[Admin, Owner],
            200,
        ),
        (
            "POST",
            "/api/v1/apps/APP/entitlements/ENT/owners/USER".into(),
            None,
            &[Admin, Owner],
            200,
        ),
        (
            "DELETE",
            "/api/v1/apps/APP/entitlements/ENT/owners/ENTOWNER".into(),
            None,
            &[Admin, Owner],
            200,
        ),
        (
            "POST",
            "/api/v1/policies".into(),
            Some(json!({"displayName": "P", "autoApprove": true, "steps": []})),
            &[Admin],
            201,
        ),
        (
            "POST",
            "/api/v1/policies/POLICY".into(),
            Some(json!({"description": "changed"})),
            &[Admin],
            200,
        ),
        (
            "DELETE",
            "/api/v1/policies/POLICY".into(),
            None,
            &[Admin],
            200,
        ),
    ];
    for who in [Admin, Auditor, Owner, EntOwner, User] {
        for (method, path, body, allowed, ok) in &cases {
            // A fresh world for each call: an app owned by Owner with a resource
            // type and an entitlement owned by EntOwner, and a policy.
            let app = w.app(false).await;
            let rt = w
                .admin_post(
                    &format!("/api/v1/apps/{app}/resource_types"),
                    json!({"displayName": "T"}),
                )
                .await;
            let ent = w
                .admin_post(
                    &format!("/api/v1/apps/{app}/entitlements"),
                    json!({"displayName": "E", "ownerIds": [w.id(EntOwner)]}),
                )
                .await;
            let policy = w
                .admin_post(
                    "/api/v1/policies",
                    json!({"displayName": "P", "autoApprove": true, "steps": []}),
                )
                .await;
            let fill = |t: &str| {
                t.replace("APP", &app)
                    .replace("TYPE", &rt)
                    .replace("ENTOWNER", w.id(EntOwner))
                    .replace("ENT", &ent)
                    .replace("USER", w.id(User))
                    .replace("POLICY", &policy)
            };
            let path = fill(path);
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&fill(&b.to_string())).unwrap());
            let (status, _) = w.call(method, &path, w.token(who), body).await;
            if allowed.contains(&who) {
                assert_eq!(status, *ok, "{who:?} {method} {path}");
            } else {
                assert_eq!(status, 403, "{who:?} {method} {path}");
                // Nothing changed.
                let ent_path = format!("/api/v1/apps/{app}/entitlements/{ent}");
                assert_eq!(w.version_of(&ent_path).await, 1, "{who:?} {method} {path}");
                let policy_path = format!("/api/v1/policies/{policy}");
                assert_eq!(
                    w.version_of(&policy_path).await,
                    1,
                    "{who:?} {method} {path}"
                );
                let app_path = format!("/api/v1/apps/{app}");
                assert_eq!(w.version_of(&app_path).await, 1, "{who:?} {method} {path}");
                let r: Value = client()
                    .get(w.s.url(&format!("/api/v1/apps/{app}/entitlements")))
                    .bearer_auth(ADMIN)
                    .header("X-Consistency-Token", w.head().await)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(
                    r["list"].as_array().unwrap().len(),
                    2,
                    "{who:?} {method} {path}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 11);
}

#[tokio::test]
async fn every_api_call_needs_a_token() {
    let w = world().await;
    for (method, path) in [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/apps"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/apps"),
        ("GET", "/api/v1/apps/x/versions"),
        ("GET", "/api/v1/apps/x/entitlements"),
        ("GET", "/api/v1/policies"),
        ("GET", "/api/v1/catalog"),
        ("POST", "/api/v1/policies"),
        ("POST", "/api/v1/apps/x/entitlements"),
    ] {
        let c = client();
        let r = match method {
            "GET" => c.get(w.s.url(path)),
            _ => c.post(w.s.url(path)).json(&json!({})),
        }
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
}
