//! Replay: more than 10,000 events generated through the API, then every
//! read model rebuilt from position 0 (`iga rebuild`) answers every query as
//! the incrementally built one did. And a request approved by a process that
//! died before fulfilling it is fulfilled, once, by the next one.

mod common;

use common::{client, Api, Server};
use serde_json::{json, Value};

const ADMIN: &str = "replay-admin-token-0123456789-abc";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn get(s: &Server, path: &str, pos: &str) -> (u16, Value) {
    let r = client()
        .get(s.url(path))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", pos)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Every page of a `{list, nextPageToken}` list.
async fn all_pages(s: &Server, path: &str, pos: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let (status, page) = get(
            s,
            &format!("{path}{sep}pageSize=1000&pageToken={token}"),
            pos,
        )
        .await;
        assert_eq!(status, 200, "{path}");
        out.push(page.clone());
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_rebuild_to_the_same_answers() {
    if common::single_process_only("ten_thousand_events_rebuild_to_the_same_answers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    // 25 users, 10 apps of 5 entitlements, owned by 5 owners.
    let mut owners = Vec::new();
    for i in 0..5 {
        owners.push(api.user(&format!("owner{i}")).await);
    }
    let mut users = Vec::new();
    for i in 0..25 {
        users.push(api.user(&format!("user{i}")).await);
    }
    let mut ents = Vec::new(); // (app, entitlement, owner token)
    for a in 0..10 {
        let owner = &owners[a % owners.len()];
        let (_, app) = api
            .ok(
                "POST",
                "/api/v1/apps",
                json!({"displayName": format!("App {a}"), "ownerIds": [owner.0]}),
            )
            .await;
        for e in 0..5 {
            let (_, ent) = api
                .ok(
                    "POST",
                    &format!("/api/v1/apps/{}/entitlements", id(&app)),
                    json!({"displayName": format!("Role {a}.{e}"), "alias": format!("role-{e}"), "durationGrant": "86400s"}),
                )
                .await;
            ents.push((id(&app), id(&ent), owner.1.clone()));
        }
    }
    // Every user asks for every entitlement; owners approve most, reject some;
    // a few grants are then removed by request. 16 clients at once.
    let base = api.s.url("");
    let work: Vec<(usize, usize)> = (0..users.len())
        .flat_map(|u| (0..ents.len()).map(move |e| (u, e)))
        .collect();
    let chunks: Vec<Vec<(usize, usize)>> = work
        .chunks(work.len().div_ceil(16))
        .map(|c| c.to_vec())
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let (base, users, ents) = (base.clone(), users.clone(), ents.clone());
        tasks.push(tokio::spawn(async move {
            for (u, e) in chunk {
                let (_, token) = &users[u];
                let (app, ent, owner_token) = &ents[e];
                let (s, _, v) = common::send(
                    "POST",
                    format!("{base}/api/v1/requests"),
                    token,
                    Some(json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "work"})),
                )
                .await;
                assert_eq!(s, 201, "{v}");
                let rid = v["result"][0].as_str().unwrap().to_string();
                let action = if (u + e) % 7 == 0 { "reject" } else { "approve" };
                let (s, _, v) = common::send(
                    "POST",
                    format!("{base}/api/v1/requests/{rid}/{action}"),
                    owner_token,
                    Some(json!({"comment": "ok"})),
                )
                .await;
                assert_eq!(s, 200, "{v}");
                if action == "approve" && (u * 3 + e) % 11 == 0 {
                    let (s, _, v) = common::send(
                        "POST",
                        format!("{base}/api/v1/requests"),
                        token,
                        Some(json!({"catalogs": [{"type": "entitlement", "id": ent}], "accessModifier": "remove"})),
                    )
                    .await;
                    assert_eq!(s, 201, "{v}");
                    let rid = v["result"][0].as_str().unwrap().to_string();
                    common::send("POST", format!("{base}/api/v1/requests/{rid}/approve"), owner_token, Some(json!({}))).await;
                }
                let _ = app;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = common::log_head(&api.s).await;
    let events: u64 = head.parse().unwrap();
    assert!(events >= 10_000, "only {events} events");

    let mut queries = vec![
        "/api/v1/requests".to_string(),
        "/api/v1/grants?includeExpired=true".into(),
        "/api/v1/catalog".into(),
        "/api/v1/users".into(),
        "/api/v1/apps".into(),
        "/api/v1/policies".into(),
    ];
    for (uid, _) in users.iter().chain(&owners) {
        queries.push(format!("/api/v1/grants/history?userId={uid}"));
        queries.push(format!("/api/v1/grants?userId={uid}"));
        if let Some((_, ent, _)) = ents.first() {
            // A pair's history and current grant, read through their own indexes.
            queries.push(format!(
                "/api/v1/grants/history?userId={uid}&entitlementId={ent}"
            ));
            queries.push(format!("/api/v1/grants?userId={uid}&entitlementId={ent}"));
        }
        queries.push(format!("/api/v1/users/{uid}/tasks?actorStatus=active"));
        queries.push(format!("/api/v1/users/{uid}/tasks?actorStatus=inactive"));
    }
    for (app, ent, _) in &ents {
        queries.push(format!("/api/v1/apps/{app}/entitlements/{ent}"));
        queries.push(format!(
            "/api/v1/apps/{app}/entitlements/{ent}/grants?includeExpired=true"
        ));
    }
    let paged = |q: &str| {
        q.starts_with("/api/v1/requests")
            || q.contains("/tasks")
            || q == "/api/v1/catalog"
            || q == "/api/v1/users"
            || q == "/api/v1/apps"
            || q == "/api/v1/policies"
    };
    let mut before = Vec::new();
    for q in &queries {
        before.push(if paged(q) {
            all_pages(&api.s, q, &head).await
        } else {
            vec![get(&api.s, q, &head).await.1]
        });
    }
    let (_, search) = {
        let r = client()
            .post(api.s.url("/api/v1/requests/search"))
            .bearer_auth(ADMIN)
            .header("X-Consistency-Token", &head)
            .json(&json!({"targetFilter": {"operator": "AND", "operand": [
                {"operator": "EQUALS", "operand": {"targetName": "decision.outcome", "targetValue": "provisioned"}},
                {"operator": "NOT", "operand": {"operator": "STARTS_WITH", "operand": {"targetName": "user.username", "targetValue": "user1"}}}]},
                "sortKeys": "user.username,-metadata.createdDate", "pageSize": 1000}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert!(search["totalCount"].as_u64().unwrap() > 100);

    // Rebuild from position 0, restart, and ask again.
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    common::rebuild(dir.path());
    let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    for (q, expected) in queries.iter().zip(&before) {
        let now = if paged(q) {
            all_pages(&s, q, &head).await
        } else {
            vec![get(&s, q, &head).await.1]
        };
        assert_eq!(&now, expected, "{q} after rebuild");
    }
    let r = client()
        .post(s.url("/api/v1/requests/search"))
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", &head)
        .json(&json!({"targetFilter": {"operator": "AND", "operand": [
            {"operator": "EQUALS", "operand": {"targetName": "decision.outcome", "targetValue": "provisioned"}},
            {"operator": "NOT", "operand": {"operator": "STARTS_WITH", "operand": {"targetName": "user.username", "targetValue": "user1"}}}]},
            "sortKeys": "user.username,-metadata.createdDate", "pageSize": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), search);
}

/// A process that recorded an approval and died before issuing the grant:
/// the next process issues it, exactly once.
#[tokio::test]
async fn an_approval_left_unfulfilled_by_a_dead_process_is_fulfilled_once() {
    if common::single_process_only(
        "an_approval_left_unfulfilled_by_a_dead_process_is_fulfilled_once",
    ) {
        return;
    }
    use iga_eventlog::ExpectedVersion;
    use iga_schemas::v1;

    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let (ben, ben_token) = api.user("ben").await;
    let (_, app) = api
        .ok("POST", "/api/v1/apps", json!({"displayName": "Vault"}))
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", id(&app)),
            json!({"displayName": "Reader"}),
        )
        .await;
    let (_, _, c) = api
        .write(
            "POST",
            "/api/v1/requests",
            &ben_token,
            Some(json!({"catalogs": [{"type": "entitlement", "id": id(&ent)}]})),
        )
        .await;
    let rid = c["result"][0].as_str().unwrap().to_string();
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());

    // What the dying process managed to write: the approval, nothing after it.
    {
        let log = common::TestEventLog::start(dir.path());
        let store = log.open(dir.path()).await;
        let stream = format!("request-{rid}");
        let version = store.read_stream(&stream, 1, 100).await.unwrap().len() as u64;
        let events: Vec<iga_schemas::DomainEvent> = vec![
            v1::RequestApprovalRecorded {
                request_id: rid.clone(),
                phase: "Approval".into(),
                user_id: "admin".into(),
                ..Default::default()
            }
            .into(),
            v1::RequestPhaseCompleted {
                request_id: rid.clone(),
                phase: "Approval".into(),
                ..Default::default()
            }
            .into(),
            v1::RequestApproved {
                request_id: rid.clone(),
            }
            .into(),
        ];
        let envelopes = events
            .iter()
            .map(|e| iga_eventlog::EventEnvelope {
                event_id: uuid::Uuid::now_v7().to_string(),
                occurred_at_unix_micros: (time::OffsetDateTime::now_utc().unix_timestamp_nanos()
                    / 1000) as i64,
                actor_id: "admin".into(),
                event_type: e.event_type().into(),
                schema_version: e.schema_version(),
                payload: e.encode_payload(),
                ..Default::default()
            })
            .collect();
        store
            .append(&stream, ExpectedVersion::Exact(version), envelopes)
            .await
            .unwrap();
    }

    // The next process: its fulfilment reactor finds the approval and issues the grant.
    let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let head = common::log_head(&s).await;
        let (_, r) = get(&s, &format!("/api/v1/requests/{rid}"), &head).await;
        if r["decision"]["outcome"] == "provisioned" {
            let (_, g) = get(&s, &format!("/api/v1/grants/history?userId={ben}"), &head).await;
            assert_eq!(g["list"].as_array().unwrap().len(), 1);
            assert_eq!(g["list"][0]["requestId"], rid.as_str());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not fulfilled: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The approval's fulfilment wrote one grant, and the request says so.
    let head = common::log_head(&s).await;
    let (_, e) = get(&s, "/api/v1/events?eventType=iga.v1.GrantIssued", &head).await;
    assert_eq!(e["list"].as_array().unwrap().len(), 1);
}

/// Timers are read models: a grant due while the service was down ends as
/// soon as the service is back, at its own time.
#[tokio::test]
async fn timers_due_while_stopped_fire_after_restart() {
    if common::single_process_only("timers_due_while_stopped_fire_after_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let (ben, _) = api.user("ben").await;
    let (_, app) = api
        .ok("POST", "/api/v1/apps", json!({"displayName": "Vault"}))
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", id(&app)),
            json!({"displayName": "Reader"}),
        )
        .await;
    let due = time::OffsetDateTime::now_utc() + std::time::Duration::from_millis(800);
    let due_text = due
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    api.ok(
        "POST",
        &format!(
            "/api/v1/apps/{}/entitlements/{}/add-manual-user",
            id(&app),
            id(&ent)
        ),
        json!({"userId": ben, "deprovisionAt": due_text}),
    )
    .await;
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    // Down past the grant's end.
    while time::OffsetDateTime::now_utc() < due + std::time::Duration::from_millis(200) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let head = common::log_head(&s).await;
        let (_, h) = get(&s, &format!("/api/v1/grants/history?userId={ben}"), &head).await;
        if h["list"][0]["deletedAt"].is_string() {
            assert_eq!(h["list"][0]["revokeReason"], "expired");
            assert_eq!(h["list"][0]["deletedAt"], h["list"][0]["deprovisionAt"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant did not end: {h}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
