//! Time travel and evidence, end to end. Every object read right after
//! each change (what the read models said then) is what `?at=` answers for
//! that instant later, for users, apps, entitlements and policies, deleted
//! ones included; before an object existed it is 404. `GET /grants/diff`
//! answers what access was added and removed between two instants, by user
//! and by app; `GET /reports/access` every interval held during a window,
//! with why and how it ended, as JSON and CSV; and the audit log leaves as
//! JSON Lines and as OCSF events, every event once, with no secret in them.

mod common;

use common::Api;
use serde_json::{json, Value};

const ADMIN: &str = "time-travel-admin-token-0123456789-abcd";

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// GET as the admin once every write so far is in the read models.
async fn get(api: &Api, path: &str) -> (u16, Value) {
    api.read(path, &common::log_head(&api.s).await).await
}

async fn get_text(api: &Api, path: &str) -> (u16, String, String) {
    let r = common::client()
        .get(api.s.url(path))
        .bearer_auth(&api.admin)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, r.text().await.unwrap())
}

/// What `path` answered at an instant.
struct Seen {
    path: String,
    at: String,
    body: Value,
}

/// Reads `path` now and notes the instant just after.
async fn see(api: &Api, path: &str, seen: &mut Vec<Seen>) {
    let (status, body) = get(api, &format!("{path}?includeDeleted=true")).await;
    assert_eq!(status, 200, "{path}: {body}");
    seen.push(Seen {
        path: path.to_string(),
        at: now(),
        body,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_at_any_instant_is_what_the_read_models_said_then() {
    let api = Api::start(ADMIN);
    let before = now();
    let mut seen = Vec::new();

    let (_, user) = api
        .ok(
            "POST",
            "/api/v1/users",
            json!({"username": "tara", "displayName": "Tara"}),
        )
        .await;
    let uid = user["id"].as_str().unwrap().to_string();
    let user_path = format!("/api/v1/users/{uid}");
    see(&api, &user_path, &mut seen).await;
    api.ok(
        "POST",
        &user_path,
        json!({"displayName": "Tara Quinn", "email": "tara@example.com"}),
    )
    .await;
    see(&api, &user_path, &mut seen).await;
    let (_, token) = api
        .ok(
            "POST",
            &format!("{user_path}/tokens"),
            json!({"description": "laptop"}),
        )
        .await;
    assert!(token["token"].is_string());
    see(&api, &user_path, &mut seen).await;
    api.ok("POST", &user_path, json!({"status": "DISABLED"}))
        .await;
    see(&api, &user_path, &mut seen).await;

    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Ledger", "ownerIds": [uid]}),
        )
        .await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let app_path = format!("/api/v1/apps/{app_id}");
    see(&api, &app_path, &mut seen).await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("{app_path}/entitlements"),
            json!({"displayName": "Clerk", "alias": "clerk"}),
        )
        .await;
    let ent_id = ent["id"].as_str().unwrap().to_string();
    let ent_path = format!("{app_path}/entitlements/{ent_id}");
    see(&api, &ent_path, &mut seen).await;
    api.ok("POST", &app_path, json!({"description": "the books"}))
        .await;
    see(&api, &app_path, &mut seen).await;
    api.ok("POST", &ent_path, json!({"description": "posts entries"}))
        .await;
    see(&api, &ent_path, &mut seen).await;
    // A holder, then none: grantCount at each instant.
    let (_, holder) = api
        .ok(
            "POST",
            "/api/v1/users",
            json!({"username": "hal", "displayName": "Hal"}),
        )
        .await;
    let hid = holder["id"].as_str().unwrap().to_string();
    api.ok(
        "POST",
        &format!("{ent_path}/add-manual-user"),
        json!({"userId": hid}),
    )
    .await;
    see(&api, &ent_path, &mut seen).await;
    assert_eq!(seen.last().unwrap().body["grantCount"], 1);
    api.ok("POST", &format!("{ent_path}/users/{hid}/revoke"), json!({}))
        .await;
    see(&api, &ent_path, &mut seen).await;
    api.ok("DELETE", &ent_path, json!({})).await;
    see(&api, &ent_path, &mut seen).await;
    api.ok(
        "POST",
        &format!("{app_path}/lifecycle/deactivate"),
        json!({}),
    )
    .await;
    see(&api, &app_path, &mut seen).await;

    let (_, policy) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Fast", "autoApprove": true, "steps": []}),
        )
        .await;
    let pid = policy["id"].as_str().unwrap().to_string();
    let policy_path = format!("/api/v1/policies/{pid}");
    see(&api, &policy_path, &mut seen).await;
    api.ok("POST", &policy_path, json!({"description": "no approvals"}))
        .await;
    see(&api, &policy_path, &mut seen).await;
    api.ok("DELETE", &policy_path, json!({})).await;
    see(&api, &policy_path, &mut seen).await;

    for s in &seen {
        let path = format!("{}?at={}&includeDeleted=true", s.path, urlencode(&s.at));
        let (status, then) = get(&api, &path).await;
        assert_eq!(status, 200, "{path}: {then}");
        assert_eq!(then, s.body, "{path}");
    }
    // Before it existed: 404.
    for path in [&user_path, &app_path, &ent_path, &policy_path] {
        let (status, v) = get(&api, &format!("{path}?at={}", urlencode(&before))).await;
        assert_eq!(status, 404, "{path}: {v}");
    }
    // Deleted then: shown only when asked.
    let last = seen.last().unwrap();
    let (status, _) = get(&api, &format!("{}?at={}", last.path, urlencode(&last.at))).await;
    assert_eq!(status, 404);
    // Not an instant: 400.
    let (status, _) = get(&api, &format!("{user_path}?at=yesterday")).await;
    assert_eq!(status, 400);
}

fn urlencode(t: &str) -> String {
    t.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_diffs_and_the_access_report_follow_the_grants() {
    let api = Api::start(ADMIN);
    let mut people = Vec::new();
    for name in ["uma", "vic"] {
        let (_, u) = api
            .ok(
                "POST",
                "/api/v1/users",
                json!({"username": name, "displayName": name}),
            )
            .await;
        people.push(u["id"].as_str().unwrap().to_string());
    }
    let (_, app) = api
        .ok("POST", "/api/v1/apps", json!({"displayName": "Vault"}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let (_, other) = api
        .ok("POST", "/api/v1/apps", json!({"displayName": "Wiki"}))
        .await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app_id}/entitlements"),
            json!({"displayName": "Reader", "alias": "reader"}),
        )
        .await;
    let ent_id = ent["id"].as_str().unwrap().to_string();
    let ent_path = format!("/api/v1/apps/{app_id}/entitlements/{ent_id}");
    let t0 = now();
    api.ok(
        "POST",
        &format!("{ent_path}/add-manual-user"),
        json!({"userId": people[0]}),
    )
    .await;
    let t1 = now();
    api.ok(
        "POST",
        &format!("{ent_path}/add-manual-user"),
        json!({"userId": people[1]}),
    )
    .await;
    // Access to another app, in the same window.
    let other_ent = other["accessEntitlementId"].as_str().unwrap().to_string();
    let (status, _) = get(
        &api,
        &format!("/api/v1/apps/{other_id}/entitlements/{other_ent}"),
    )
    .await;
    assert_eq!(status, 200);
    api.ok(
        "POST",
        &format!("/api/v1/apps/{other_id}/entitlements/{other_ent}/add-manual-user"),
        json!({"userId": people[1]}),
    )
    .await;
    let t2 = now();
    api.ok(
        "POST",
        &format!("{ent_path}/users/{}/revoke", people[0]),
        json!({"reason": "left"}),
    )
    .await;
    let t3 = now();

    let users_of = |v: &Value, key: &str| -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["userId"].as_str().unwrap().to_string(),
                    g["appId"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        l.sort();
        l
    };
    let diff = |from: &str, to: &str, filter: &str| {
        format!(
            "/api/v1/grants/diff?from={}&to={}{filter}",
            urlencode(from),
            urlencode(to)
        )
    };
    let (status, d) = get(&api, &diff(&t0, &t2, &format!("&appId={app_id}"))).await;
    assert_eq!(status, 200, "{d}");
    let mut both = vec![
        (people[0].clone(), app_id.clone()),
        (people[1].clone(), app_id.clone()),
    ];
    both.sort();
    assert_eq!(users_of(&d, "added"), both);
    assert!(d["removed"].as_array().unwrap().is_empty(), "{d}");
    let (_, d) = get(&api, &diff(&t1, &t3, &format!("&appId={app_id}"))).await;
    assert_eq!(
        users_of(&d, "added"),
        vec![(people[1].clone(), app_id.clone())]
    );
    assert_eq!(
        users_of(&d, "removed"),
        vec![(people[0].clone(), app_id.clone())]
    );
    // By user: across apps.
    let (_, d) = get(&api, &diff(&t0, &t3, &format!("&userId={}", people[1]))).await;
    let mut vic = vec![
        (people[1].clone(), app_id.clone()),
        (people[1].clone(), other_id.clone()),
    ];
    vic.sort();
    assert_eq!(users_of(&d, "added"), vic);
    let (status, _) = get(&api, &diff(&t3, &t0, "")).await;
    assert_eq!(status, 422);

    // The report: both intervals on the app in [t0, t3); after t3 only vic's.
    let report = |from: &str, to: &str, format: &str| {
        format!(
            "/api/v1/reports/access?appId={app_id}&from={}&to={}&format={format}",
            urlencode(from),
            urlencode(to)
        )
    };
    let (status, kind, text) = get_text(&api, &report(&t0, &t3, "json")).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("application/json"), "{kind}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(users_of(&r, "list"), both);
    let uma = r["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["userId"] == people[0].as_str())
        .unwrap();
    assert_eq!(uma["revokeReason"], "revoked", "{uma}");
    assert_eq!(uma["revokeComment"], "left", "{uma}");
    assert_eq!(uma["grantedBy"], "admin", "{uma}");
    let later = now();
    let (_, _, text) = get_text(&api, &report(&t3, &later, "json")).await;
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        users_of(&r, "list"),
        vec![(people[1].clone(), app_id.clone())]
    );
    let (status, kind, csv) = get_text(&api, &report(&t0, &t3, "csv")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("grantId,userId,appId"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains(",revoked,left"), "{csv}");
    // The holder sees their own intervals only; a stranger nothing of others'.
    let (_, stranger) = api.user("sid").await;
    let r = common::client()
        .get(api.s.url(&report(&t0, &t3, "json")))
        .bearer_auth(&stranger)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r: Value = r.json().await.unwrap();
    assert!(r["list"].as_array().unwrap().is_empty(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_leaves_as_json_lines_and_ocsf_without_secrets() {
    let api = Api::start(ADMIN);
    let (uid, _token) = api.user("wes").await;
    let (_, app) = api
        .ok("POST", "/api/v1/apps", json!({"displayName": "Mail"}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let access = app["accessEntitlementId"].as_str().unwrap();
    api.ok(
        "POST",
        &format!("/api/v1/apps/{app_id}/entitlements/{access}/add-manual-user"),
        json!({"userId": uid}),
    )
    .await;
    let head: u64 = common::log_head(&api.s).await.parse().unwrap();

    let (status, kind, text) = get_text(&api, "/api/v1/events?format=ndjson").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "application/x-ndjson");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() as u64 >= head,
        "{} lines, head {head}",
        lines.len()
    );
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in log order, once each"
    );
    assert_eq!(positions[0], 1);
    assert!(lines.iter().any(|l| l["type"] == "iga.v1.ApiTokenIssued"));
    assert!(no_hash(&lines), "a token hash left: {text}");

    let (status, _, ocsf) = get_text(&api, "/api/v1/events?format=ocsf").await;
    assert_eq!(status, 200);
    let events: Vec<Value> = ocsf
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), lines.len());
    for e in &events {
        let class = e["class_uid"].as_u64().unwrap();
        assert!([3001, 3004, 3005].contains(&class), "{e}");
        assert_eq!(e["category_uid"], 3);
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            class * 100 + e["activity_id"].as_u64().unwrap()
        );
        assert!(
            e["time"].as_i64().unwrap() > 1_600_000_000_000,
            "milliseconds: {e}"
        );
        assert_eq!(e["metadata"]["version"], "1.3.0");
    }
    let granted = events
        .iter()
        .find(|e| e["unmapped"]["event_type"] == "iga.v1.GrantIssued")
        .expect("the grant");
    assert_eq!(granted["class_uid"], 3005);
    assert_eq!(granted["activity_id"], 1);
    assert_eq!(granted["user"]["uid"], uid.as_str());
    assert_eq!(granted["resource"]["uid"], app_id.as_str());
    let created = events
        .iter()
        .find(|e| e["unmapped"]["event_type"] == "iga.v1.UserCreated")
        .unwrap();
    assert_eq!(
        (
            created["class_uid"].as_u64(),
            created["activity_id"].as_u64()
        ),
        (Some(3001), Some(1))
    );
    assert!(no_hash(
        &events
            .iter()
            .map(|e| e["unmapped"]["data"].clone())
            .collect::<Vec<_>>()
    ));

    // Filters and a limit hold in exports too; others may not export.
    let (_, _, some) = get_text(
        &api,
        "/api/v1/events?format=ndjson&eventType=iga.v1.UserCreated&limit=1",
    )
    .await;
    assert_eq!(some.lines().count(), 1, "{some}");
    let (_, stranger) = api.user("xia").await;
    let r = common::client()
        .get(api.s.url("/api/v1/events?format=ocsf"))
        .bearer_auth(&stranger)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

/// Whether no token hash (a non-empty `tokenSha256Hex`) is anywhere in `values`.
fn no_hash(values: &[Value]) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Object(o) => o.iter().all(|(k, v)| {
                !(k == "tokenSha256Hex" && v.as_str().is_some_and(|s| !s.is_empty())) && walk(v)
            }),
            Value::Array(a) => a.iter().all(walk),
            _ => true,
        }
    }
    values.iter().all(walk)
}
