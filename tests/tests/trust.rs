//! Trust: each way issue 15 found to talk past the service, tried again over
//! HTTP against `iga serve` as the attacker (a requester, an owner, a
//! delegate, an anonymous caller) would, and refused.

mod common;

use std::time::{Duration, Instant};

use common::{client, Api};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ADMIN: &str = "trust-admin-token-0123456789-abcdef";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A user (with extra fields) and a token for them.
async fn person(api: &Api, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"username": name});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (_, u) = api.ok("POST", "/api/v1/users", body).await;
    let uid = id(&u);
    let (pos, t) = api
        .ok("POST", &format!("/api/v1/users/{uid}/tokens"), json!(null))
        .await;
    api.read("/api/v1/me", &pos).await;
    (uid, t["token"].as_str().unwrap().to_string())
}

async fn post(api: &Api, token: &str, path: &str, body: Value) -> (u16, String, Value) {
    api.write("POST", path, token, Some(body)).await
}

async fn get(api: &Api, token: &str, path: &str, pos: &str) -> (u16, Value) {
    let r = client()
        .get(api.s.url(path))
        .bearer_auth(token)
        .header("X-Consistency-Token", pos)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// An app owned by `owners` with one entitlement under `policy` (if any).
async fn app_with(api: &Api, owners: &[&str], policy: Option<&str>) -> (String, String) {
    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Target", "ownerIds": owners}),
        )
        .await;
    let mut ent = json!({"displayName": "Admin"});
    if let Some(p) = policy {
        ent["grantPolicyId"] = json!(p);
    }
    let (_, e) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", id(&app)),
            ent,
        )
        .await;
    (id(&app), id(&e))
}

fn request(ent: &str) -> Value {
    json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "needed"})
}

/// Creates a request as `token` and answers its id and consistency token.
async fn open(api: &Api, token: &str, body: Value) -> (String, String) {
    let (s, pos, v) = post(api, token, "/api/v1/requests", body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["errors"], json!([]), "{v}");
    (v["result"][0].as_str().unwrap().to_string(), pos)
}

#[tokio::test]
async fn policies_refuse_two_steps_of_one_name() {
    let api = Api::start(ADMIN);
    let step = |name: &str| json!({"name": name, "approvers": {"type": "MANAGER"}});
    let (s, _, v) = post(
        &api,
        ADMIN,
        "/api/v1/policies",
        json!({"displayName": "Twice", "steps": [step("Review"), step(" review")]}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "steps[1].name", "{v}");
}

#[tokio::test]
async fn an_entitlement_owner_cannot_change_how_access_is_granted() {
    let api = Api::start(ADMIN);
    let erin = person(&api, "erin", json!({})).await;
    let (_, auto) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Auto", "autoApprove": true, "steps": []}),
        )
        .await;
    let (app, ent) = app_with(&api, &[], None).await;
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app}/entitlements/{ent}/owners/{}", erin.0),
        json!(null),
    )
    .await;
    let path = format!("/api/v1/apps/{app}/entitlements/{ent}");
    for body in [
        json!({"grantPolicyId": id(&auto)}),
        json!({"revokePolicyId": id(&auto)}),
        json!({"requestable": false}),
        json!({"durationGrant": "60s"}),
        json!({"riskLevelValueId": "low"}),
        json!({"emergencyGrantEnabled": true}),
    ] {
        let (s, _, v) = post(&api, &erin.1, &path, body.clone()).await;
        assert_eq!(s, 403, "{body}: {v}");
    }
    // Nor may they choose who else approves as an owner.
    let (s, _, _) = post(&api, &erin.1, &format!("{path}/owners/admin"), json!(null)).await;
    assert_eq!(s, 403);
    let (s, _, v) = post(&api, &erin.1, &path, json!({"description": "docs"})).await;
    assert_eq!(s, 200, "{v}");
    // Their own request still waits for the app's owners (admins here).
    let (req, pos) = open(&api, &erin.1, request(&ent)).await;
    let (_, v) = get(&api, &erin.1, &format!("/api/v1/requests/{req}"), &pos).await;
    assert_eq!(v["decision"]["status"], "in-progress", "{v}");
    assert_eq!(v["grantId"], Value::Null);
}

#[tokio::test]
async fn delegates_neither_approve_for_the_requester_nor_count_twice() {
    let api = Api::start(ADMIN);
    let dora = person(&api, "dora", json!({})).await; // the requester's delegate
    let dan = person(&api, "dan", json!({})).await; // o1's delegate
    let o1 = person(&api, "o1", json!({"delegatedUserId": dan.0})).await;
    let o2 = person(&api, "o2", json!({})).await;
    let rita = person(&api, "rita", json!({"delegatedUserId": dora.0})).await;
    let (_, policy) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Two owners", "steps": [
                {"name": "Owners", "approvers": {"type": "APP_OWNERS"}, "quorum": 2}]}),
        )
        .await;
    let (_, ent) = app_with(&api, &[&dora.0, &o1.0, &o2.0], Some(&id(&policy))).await;
    let (req, pos) = open(&api, &rita.1, request(&ent)).await;
    let path = format!("/api/v1/requests/{req}");
    let (_, v) = get(&api, ADMIN, &path, &pos).await;
    let approvers = &v["decision"]["phases"][0]["approverIds"];
    assert!(
        !approvers.as_array().unwrap().contains(&json!(dora.0)),
        "{v}"
    );
    // The requester's delegate is no actor: the request does not exist for them.
    let (s, _, _) = post(&api, &dora.1, &format!("{path}/approve"), json!({})).await;
    assert_eq!(s, 404);
    // o1 through their delegate, then o1 again: one person.
    let (s, _, v) = post(&api, &dan.1, &format!("{path}/approve"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = post(&api, &o1.1, &format!("{path}/approve"), json!({})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["decision"], Value::Null);
    let (s, _, v) = post(&api, &o2.1, &format!("{path}/approve"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["decision"]["decision"], "approved", "{v}");
}

#[tokio::test]
async fn too_few_approvers_fall_back_to_admins_visibly_and_keep_the_quorum() {
    let api = Api::start(ADMIN);
    let o1 = person(&api, "o1", json!({})).await;
    let ben = person(&api, "ben", json!({})).await;
    let (_, policy) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Two owners", "steps": [
                {"name": "Owners", "approvers": {"type": "APP_OWNERS"}, "quorum": 2}]}),
        )
        .await;
    let (_, ent) = app_with(&api, &[&o1.0], Some(&id(&policy))).await;
    let (req, pos) = open(&api, &ben.1, request(&ent)).await;
    let path = format!("/api/v1/requests/{req}");
    let (_, v) = get(&api, ADMIN, &path, &pos).await;
    let phase = &v["decision"]["phases"][0];
    assert_eq!(phase["quorum"], 2, "{v}");
    assert_eq!(phase["adminFallback"], true, "{v}");
    assert_eq!(phase["approverRole"], "admin", "{v}");
    let (_, _, v) = post(&api, &o1.1, &format!("{path}/approve"), json!({})).await;
    assert_eq!(v["decision"]["decision"], Value::Null, "one of two: {v}");
    let (_, _, v) = post(&api, ADMIN, &format!("{path}/approve"), json!({})).await;
    assert_eq!(v["decision"]["decision"], "approved", "{v}");
}

#[tokio::test]
async fn a_grant_with_a_future_start_is_held_only_from_then() {
    let api = Api::start(ADMIN);
    let ben = person(&api, "ben", json!({})).await;
    let (_, auto) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Auto", "autoApprove": true, "steps": []}),
        )
        .await;
    let (_, ent) = app_with(&api, &[], Some(&id(&auto))).await;
    let start = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let start_text = start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut body = request(&ent);
    body["startDate"] = json!(start_text);
    let (req, pos) = open(&api, &ben.1, body).await;
    let grants = format!("/api/v1/grants?userId={}", ben.0);
    let (_, v) = get(&api, ADMIN, &grants, &pos).await;
    assert_eq!(v["list"], json!([]), "held before its start: {v}");
    let (_, v) = get(&api, ADMIN, &format!("/api/v1/requests/{req}"), &pos).await;
    assert_eq!(v["grantId"], Value::Null, "{v}");
    // The start timer grants it then (a durable timer: waited on, not slept).
    let deadline = Instant::now() + Duration::from_secs(20);
    let grant = loop {
        let head = common::log_head(&api.s).await;
        let (_, v) = get(&api, ADMIN, &grants, &head).await;
        if let Some(g) = v["list"].as_array().and_then(|l| l.first()) {
            break g.clone();
        }
        assert!(Instant::now() < deadline, "never granted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(Instant::now() + Duration::from_millis(50) >= start_instant(start));
    let created = time::OffsetDateTime::parse(
        grant["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(created >= start, "{grant}");
    // `at=` agrees: not held a moment before the start.
    let before = (start - time::Duration::milliseconds(500))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, v) = get(
        &api,
        ADMIN,
        &format!("{grants}&at={}", before.replace('+', "%2B")),
        &common::log_head(&api.s).await,
    )
    .await;
    assert_eq!(v["list"], json!([]), "{v}");
}

fn start_instant(start: time::OffsetDateTime) -> Instant {
    let now = time::OffsetDateTime::now_utc();
    let ahead = (start - now).max(time::Duration::ZERO);
    Instant::now() + Duration::from_micros(ahead.whole_microseconds() as u64)
}

#[tokio::test]
async fn tokens_are_listed_revoked_expire_and_die_with_their_user() {
    let api = Api::start(ADMIN);
    let (uid, first) = person(&api, "tess", json!({})).await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, pos, t) = post(
        &api,
        &first,
        &format!("/api/v1/users/{uid}/tokens"),
        json!({"description": "ci", "expiresAt": soon}),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["description"], "ci");
    let short_lived = t["token"].as_str().unwrap().to_string();
    let (s, list) = get(&api, &first, &format!("/api/v1/users/{uid}/tokens"), &pos).await;
    assert_eq!(s, 200);
    let text = list.to_string();
    assert_eq!(list["list"].as_array().unwrap().len(), 2, "{text}");
    for secret in [&first, &short_lived] {
        let hash = hex::encode(Sha256::digest(secret.as_bytes()));
        assert!(
            !text.contains(secret.as_str()) && !text.contains(&hash),
            "{text}"
        );
    }
    // The token used to list them shows when it was last used.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let head = common::log_head(&api.s).await;
        let (_, list) = get(&api, ADMIN, &format!("/api/v1/users/{uid}/tokens"), &head).await;
        let used = list["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["lastUsedAt"].is_string())
            .count();
        if used >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "lastUsedAt never set: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another user's tokens do not exist for a stranger.
    let (_, stranger) = person(&api, "stan", json!({})).await;
    let (s, _) = get(
        &api,
        &stranger,
        &format!("/api/v1/users/{uid}/tokens"),
        &pos,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = post(
        &api,
        &stranger,
        &format!("/api/v1/users/{uid}/tokens"),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    // The short-lived token stops at its expiry.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = get(&api, &short_lived, "/api/v1/me", "0").await;
        if s == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the expired token still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Revoked: 401 from then on.
    let (_, pos, t) = post(
        &api,
        ADMIN,
        &format!("/api/v1/users/{uid}/tokens"),
        json!({}),
    )
    .await;
    let third = t["token"].as_str().unwrap().to_string();
    let (s, _) = get(&api, &third, "/api/v1/me", &pos).await;
    assert_eq!(s, 200);
    let (s, pos, _) = api
        .write(
            "DELETE",
            &format!("/api/v1/users/{uid}/tokens/{}", id(&t)),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, _) = get(&api, ADMIN, "/api/v1/me", &pos).await;
    let (s, _) = get(&api, &third, "/api/v1/me", "0").await;
    assert_eq!(s, 401);
    // Disabled, then enabled again: the old token stays dead.
    let (pos, _) = api
        .ok(
            "POST",
            &format!("/api/v1/users/{uid}"),
            json!({"status": "DISABLED"}),
        )
        .await;
    let (pos2, _) = api
        .ok(
            "POST",
            &format!("/api/v1/users/{uid}"),
            json!({"status": "ENABLED"}),
        )
        .await;
    let _ = pos;
    let (_, _) = get(&api, ADMIN, "/api/v1/me", &pos2).await;
    let (s, _) = get(&api, &first, "/api/v1/me", "0").await;
    assert_eq!(s, 401);
    let (_, list) = get(&api, ADMIN, &format!("/api/v1/users/{uid}/tokens"), &pos2).await;
    assert_eq!(list["list"], json!([]));
}

#[tokio::test]
async fn no_token_or_hash_reaches_the_audit_log() {
    let api = Api::start(ADMIN);
    let (_, token) = person(&api, "ada", json!({"roles": ["auditor"]})).await;
    let head = common::log_head(&api.s).await;
    let (_, v) = get(&api, &token, "/api/v1/events?limit=1000", &head).await;
    let text = v.to_string();
    assert!(text.contains("iga.v1.ApiTokenIssued"), "{text}");
    for secret in [token.as_str(), ADMIN] {
        let hash = hex::encode(Sha256::digest(secret.as_bytes()));
        assert!(!text.contains(&hash), "a token's hash is in the audit log");
        assert!(!text.contains(secret), "a token is in the audit log");
        assert!(
            !text.contains(&hash[..12]),
            "part of a token's hash is in the audit log"
        );
    }
}

#[tokio::test]
async fn direct_grants_need_a_live_user_entitlement_and_app() {
    let api = Api::start(ADMIN);
    let (gone, _) = person(&api, "gone", json!({})).await;
    let (alive, _) = person(&api, "alive", json!({})).await;
    api.ok(
        "POST",
        &format!("/api/v1/users/{gone}"),
        json!({"status": "DISABLED"}),
    )
    .await;
    let (app, ent) = app_with(&api, &[], None).await;
    let grant = format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user");
    let (s, _, v) = post(&api, ADMIN, &grant, json!({"userId": gone})).await;
    assert_eq!(s, 409, "a disabled user: {v}");
    api.write(
        "DELETE",
        &format!("/api/v1/apps/{app}/entitlements/{ent}"),
        ADMIN,
        None,
    )
    .await;
    let (s, _, v) = post(&api, ADMIN, &grant, json!({"userId": alive})).await;
    assert!(s == 409 || s == 404, "a deleted entitlement: {s} {v}");
    let (app, ent) = app_with(&api, &[], None).await;
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app}/lifecycle/deactivate"),
        json!(null),
    )
    .await;
    let grant = format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user");
    let (s, _, v) = post(&api, ADMIN, &grant, json!({"userId": alive})).await;
    assert_eq!(s, 409, "an inactive app: {v}");
    let head = common::log_head(&api.s).await;
    let (_, v) = get(
        &api,
        ADMIN,
        &format!("/api/v1/grants?userId={alive}"),
        &head,
    )
    .await;
    assert_eq!(v["list"], json!([]));
}

#[tokio::test]
async fn an_approval_after_the_user_was_disabled_grants_nothing() {
    let api = Api::start(ADMIN);
    let ben = person(&api, "ben", json!({})).await;
    let (_, ent) = app_with(&api, &[], None).await;
    let (req, _) = open(&api, &ben.1, request(&ent)).await;
    api.ok(
        "POST",
        &format!("/api/v1/users/{}", ben.0),
        json!({"status": "DISABLED"}),
    )
    .await;
    let (s, pos, v) = post(
        &api,
        ADMIN,
        &format!("/api/v1/requests/{req}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["decision"]["outcome"], "failed", "{v}");
    assert_eq!(v["grantId"], Value::Null, "{v}");
    let (_, v) = get(
        &api,
        ADMIN,
        &format!("/api/v1/grants?userId={}", ben.0),
        &pos,
    )
    .await;
    assert_eq!(v["list"], json!([]));
}

#[tokio::test]
async fn the_last_admin_stays_and_admin_is_nobody_elses_name() {
    let api = Api::start(ADMIN);
    for body in [json!({"status": "DISABLED"}), json!({"roles": []})] {
        let (s, _, v) = post(&api, ADMIN, "/api/v1/users/admin", body).await;
        assert_eq!(s, 409, "{v}");
    }
    let (s, _, v) = post(&api, ADMIN, "/api/v1/users", json!({"username": "admin"})).await;
    assert_eq!(s, 409, "{v}");
    // With a second admin, the first may go; then the second is the last.
    let (root, _) = person(&api, "root", json!({"roles": ["admin"]})).await;
    let (s, _, v) = post(
        &api,
        ADMIN,
        &format!("/api/v1/users/{root}"),
        json!({"roles": ["auditor"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = post(
        &api,
        ADMIN,
        &format!("/api/v1/users/{root}"),
        json!({"roles": ["admin"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = post(
        &api,
        ADMIN,
        "/api/v1/users/admin",
        json!({"roles": ["auditor"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = post(
        &api,
        ADMIN,
        &format!("/api/v1/users/{root}"),
        json!({"status": "DISABLED"}),
    )
    .await;
    assert!(s == 409 || s == 403, "the last admin: {s} {v}");
}

#[tokio::test]
async fn the_audit_stream_ends_when_its_reader_loses_the_right() {
    let api = Api::start(ADMIN);
    let (aud, token) = person(&api, "audrey", json!({"roles": ["auditor"]})).await;
    let mut r = client()
        .get(api.s.url("/api/v1/events/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The backlog arrives.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    api.ok(
        "POST",
        &format!("/api/v1/users/{aud}"),
        json!({"roles": []}),
    )
    .await;
    let lost = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = r.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream still runs");
    assert!(
        lost.elapsed() < Duration::from_secs(3),
        "{:?}",
        lost.elapsed()
    );
}

#[tokio::test]
async fn consistency_waits_are_for_authenticated_callers_and_real_positions() {
    let api = Api::start(ADMIN);
    let started = Instant::now();
    let r = client()
        .get(api.s.url("/api/v1/me"))
        .header("X-Consistency-Token", "999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(api.s.url("/api/v1/me"))
        .bearer_auth("iga_not-a-token-at-all-0123456789abcdef")
        .header("X-Consistency-Token", "999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = get(&api, ADMIN, "/api/v1/me", "999999999").await;
    assert_eq!(s, 400, "a position beyond the log's head");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stranger_is_told_nothing_exists() {
    let api = Api::start(ADMIN);
    let ben = person(&api, "ben", json!({})).await;
    let stranger = person(&api, "stranger", json!({})).await;
    let (_, ent) = app_with(&api, &[], None).await;
    let (req, pos) = open(&api, &ben.1, request(&ent)).await;
    let path = format!("/api/v1/requests/{req}");
    let (s, _) = get(&api, &stranger.1, &path, &pos).await;
    assert_eq!(s, 404);
    for action in [
        "approve", "reject", "comment", "reassign", "modify", "cancel",
    ] {
        let body = match action {
            "comment" => json!({"comment": "hi"}),
            "reassign" => json!({"toUserIds": [stranger.0]}),
            "modify" => json!({"endDate": "2099-01-01T00:00:00Z"}),
            _ => json!({}),
        };
        let (s, _, v) = post(&api, &stranger.1, &format!("{path}/{action}"), body).await;
        assert_eq!(s, 404, "{action}: {v}");
    }
    let head = common::log_head(&api.s).await;
    let (_, v) = get(&api, ADMIN, &path, &head).await;
    assert_eq!(v["version"], 1, "a refused call changed the request: {v}");
}

#[tokio::test]
async fn every_service_serves_the_whole_contract() {
    // On the distributed topology this reaches a query-service through the
    // ingress; it must describe the writes too.
    let api = Api::start(ADMIN);
    let doc: Value = client()
        .get(api.s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/users", "post"),
        ("/api/v1/users", "get"),
        ("/api/v1/requests/{id}/approve", "post"),
        ("/api/v1/requests/{id}", "get"),
        ("/api/v1/users/{id}/tokens/{tokenId}", "delete"),
        ("/api/v1/events/stream", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        for status in ["400", "401", "403", "503"] {
            assert_eq!(
                op["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
    }
    assert!(paths["/api/v1/users"]["post"]["responses"]["422"].is_object());
}

#[tokio::test]
async fn grant_lists_come_a_page_at_a_time() {
    let api = Api::start(ADMIN);
    let (ben, ben_token) = person(&api, "ben", json!({})).await;
    let (owner, owner_token) = person(&api, "olivia", json!({})).await;
    let (app, _) = app_with(&api, &[&owner], None).await;
    let mut issued = Vec::new();
    for i in 0..5 {
        let (_, e) = api
            .ok(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements"),
                json!({"displayName": format!("E{i}")}),
            )
            .await;
        let (_, g) = api
            .ok(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements/{}/add-manual-user", id(&e)),
                json!({"userId": ben}),
            )
            .await;
        issued.push(id(&g));
    }
    let head = common::log_head(&api.s).await;
    for (who, path) in [
        (&ben_token, format!("/api/v1/grants?userId={ben}")),
        (&owner_token, format!("/api/v1/grants?appId={app}")),
        (&ben_token, "/api/v1/grants/history".to_string()),
    ] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let url = match &token {
                Some(t) => format!(
                    "{path}{}pageSize=2&pageToken={t}",
                    if path.contains('?') { "&" } else { "?" }
                ),
                None => format!(
                    "{path}{}pageSize=2",
                    if path.contains('?') { "&" } else { "?" }
                ),
            };
            let (s, v) = get(&api, who, &url, &head).await;
            assert_eq!(s, 200, "{url}: {v}");
            let list = v["list"].as_array().unwrap();
            assert!(list.len() <= 2);
            seen.extend(list.iter().map(|g| g["id"].as_str().unwrap().to_string()));
            match v["nextPageToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        let mut expected = issued.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "{path}");
    }
    // A stranger asking for the app's grants sees only their own: none.
    let (_, stranger) = person(&api, "stan", json!({})).await;
    let (_, v) = get(
        &api,
        &stranger,
        &format!("/api/v1/grants?appId={app}"),
        &head,
    )
    .await;
    assert_eq!(v["list"], json!([]));
}
