//! Access requests, approvals, grants, task inboxes, history and audit, end
//! to end over HTTP against `iga serve`.

mod common;

use std::time::{Duration, Instant};

use common::{client, Api};
use serde_json::{json, Value};

const ADMIN: &str = "requests-admin-token-0123456789-a";

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

/// POST as `token`; answers status, consistency token and body.
async fn post(api: &Api, token: &str, path: &str, body: Value) -> (u16, String, Value) {
    api.write("POST", path, token, Some(body)).await
}

/// GET as `token` after `pos`.
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

struct World {
    api: Api,
    owner: (String, String),
    manager: (String, String),
    ben: (String, String),
    other: (String, String),
    app: String,
    ent: String,
}

async fn world() -> World {
    let api = Api::start(ADMIN);
    let owner = person(&api, "olivia", json!({})).await;
    let manager = person(&api, "max", json!({})).await;
    let ben = person(&api, "ben", json!({"managerIds": [manager.0]})).await;
    let other = person(&api, "oscar", json!({})).await;
    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "GitHub", "ownerIds": [owner.0]}),
        )
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", id(&app)),
            json!({"displayName": "Maintainer", "durationGrant": "3600s"}),
        )
        .await;
    World {
        api,
        owner,
        manager,
        ben,
        other,
        app: id(&app),
        ent: id(&ent),
    }
}

fn item(ent: &str) -> Value {
    json!([{"type": "entitlement", "id": ent}])
}

#[tokio::test]
async fn the_default_policy_from_request_to_grant_to_history() {
    let w = world().await;
    let (api, ben) = (&w.api, &w.ben);
    // Validate creates nothing; create creates one; a second is a DUPLICATE.
    let body = json!({"catalogs": item(&w.ent), "justification": "on call", "priority": "high"});
    let (s, _, v) = post(api, &ben.1, "/api/v1/requests/validate", body.clone()).await;
    assert_eq!(
        (
            s,
            v["result"].as_array().unwrap().len(),
            v["errors"].as_array().unwrap().len()
        ),
        (200, 0, 0)
    );
    let (s, pos, created) = post(api, &ben.1, "/api/v1/requests", body.clone()).await;
    assert_eq!(s, 201, "{created}");
    let rid = created["result"][0].as_str().unwrap().to_string();
    let (_, again) = api
        .ok(
            "POST",
            "/api/v1/requests/validate",
            json!({"users": [ben.0], "catalogs": item(&w.ent)}),
        )
        .await;
    assert_eq!(again["errors"][0]["error"], "DUPLICATE");
    assert_eq!(again["errors"][0]["requestId"], rid.as_str());

    // The request reads back with one phase for the app's owners, in their inbox.
    let (s, req) = get(api, &ben.1, &format!("/api/v1/requests/{rid}"), &pos).await;
    assert_eq!(s, 200);
    assert_eq!(req["decision"]["phases"][0]["name"], "Approval");
    assert_eq!(
        req["decision"]["actors"]["active"][0]["id"],
        w.owner.0.as_str()
    );
    assert_eq!(req["request"]["common"]["priority"], "high");
    let (_, inbox) = get(api, &w.owner.1, "/api/v1/me/tasks", &pos).await;
    assert_eq!(
        (
            inbox["totalCount"].as_u64(),
            inbox["list"][0]["id"].as_str()
        ),
        (Some(1), Some(rid.as_str()))
    );
    // Strangers neither see nor act.
    let (s, _) = get(api, &w.other.1, &format!("/api/v1/requests/{rid}"), &pos).await;
    assert_eq!(s, 404);
    // What a caller may not see does not exist for them, to act on either.
    let (s, _, _) = post(
        api,
        &w.other.1,
        &format!("/api/v1/requests/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = post(
        api,
        &ben.1,
        &format!("/api/v1/requests/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 403, "no self-approval");

    // Comments by the parties; the owner approves; the grant is visible with the answer's token.
    let (s, _, _) = post(
        api,
        &ben.1,
        &format!("/api/v1/requests/{rid}/comment"),
        json!({"comment": "please"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, pos, done) = post(
        api,
        &w.owner.1,
        &format!("/api/v1/requests/{rid}/approve"),
        json!({"justification": "ok"}),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(
        (
            done["decision"]["status"].as_str(),
            done["decision"]["outcome"].as_str()
        ),
        (Some("complete"), Some("provisioned"))
    );
    let (_, read) = get(api, &ben.1, &format!("/api/v1/requests/{rid}"), &pos).await;
    assert_eq!(read, done, "the write answers what the read answers");
    let (_, grants) = get(
        api,
        &ben.1,
        &format!("/api/v1/grants?userId={}", ben.0),
        &pos,
    )
    .await;
    let grant = &grants["list"][0];
    assert_eq!(
        (grant["grantType"].as_str(), grant["requestId"].as_str()),
        (Some("request"), Some(rid.as_str()))
    );
    let (_, pair) = get(
        api,
        &ben.1,
        &format!("/api/v1/grants?userId={}&entitlementId={}", ben.0, w.ent),
        &pos,
    )
    .await;
    assert_eq!(
        pair, grants,
        "the pair's current grant through its own index"
    );
    assert!(
        grant["deprovisionAt"].is_string(),
        "maximum duration applies"
    );
    let (_, inbox) = get(
        api,
        &w.owner.1,
        "/api/v1/me/tasks?actorStatus=inactive",
        &pos,
    )
    .await;
    assert_eq!(inbox["totalCount"], 1);
    let (_, ent) = get(
        api,
        ADMIN,
        &format!("/api/v1/apps/{}/entitlements/{}", w.app, w.ent),
        &pos,
    )
    .await;
    assert_eq!(ent["grantCount"], 1);

    // Held now: a new grant request is ALREADY_GRANTED; removal goes through the same policy.
    let (_, v) = api
        .ok(
            "POST",
            "/api/v1/requests/validate",
            json!({"users": [ben.0], "catalogs": item(&w.ent)}),
        )
        .await;
    assert_eq!(v["errors"][0]["error"], "ALREADY_GRANTED");
    let (_, _, removal) = post(
        api,
        &ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&w.ent), "accessModifier": "remove"}),
    )
    .await;
    let remove_id = removal["result"][0].as_str().unwrap().to_string();
    let (s, pos, removed) = post(
        api,
        &w.owner.1,
        &format!("/api/v1/requests/{remove_id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(
        (s, removed["decision"]["outcome"].as_str()),
        (200, Some("deprovisioned"))
    );
    let (_, now) = get(
        api,
        &ben.1,
        &format!("/api/v1/grants?userId={}", ben.0),
        &pos,
    )
    .await;
    assert_eq!(now["list"], json!([]));
    let (_, v) = api
        .ok(
            "POST",
            "/api/v1/requests/validate",
            json!({"users": [ben.0], "catalogs": item(&w.ent), "accessModifier": "remove"}),
        )
        .await;
    assert_eq!(v["errors"][0]["error"], "NOT_GRANTED");

    // History: one interval, ended by the removal, with the approval and policy behind it.
    let (_, history) = get(
        api,
        ADMIN,
        &format!("/api/v1/grants/history?userId={}", ben.0),
        &pos,
    )
    .await;
    let h = &history["list"][0];
    assert_eq!(h["revokeReason"], "removal request");
    // The same interval through the pair's own index; none for another pair.
    let (_, pair) = get(
        api,
        ADMIN,
        &format!(
            "/api/v1/grants/history?userId={}&entitlementId={}",
            ben.0, w.ent
        ),
        &pos,
    )
    .await;
    assert_eq!(pair, history);
    let (_, other) = get(
        api,
        ADMIN,
        &format!(
            "/api/v1/grants/history?userId={}&entitlementId={}",
            w.owner.0, w.ent
        ),
        &pos,
    )
    .await;
    assert_eq!(other["list"], json!([]));
    assert_eq!(h["approvals"][0]["userId"], w.owner.0.as_str());
    // Point in time: held between createdAt and deletedAt.
    let created_at = h["createdAt"].as_str().unwrap();
    let (_, then) = get(
        api,
        ADMIN,
        &format!("/api/v1/grants?userId={}&at={created_at}", ben.0),
        &pos,
    )
    .await;
    assert_eq!(then["list"].as_array().unwrap().len(), 1);
    let deleted_at = h["deletedAt"].as_str().unwrap();
    let (_, after) = get(
        api,
        ADMIN,
        &format!("/api/v1/grants?userId={}&at={deleted_at}", ben.0),
        &pos,
    )
    .await;
    assert_eq!(after["list"], json!([]));

    // The audit log has it all, in order, filtered.
    let (s, events) = get(
        api,
        ADMIN,
        "/api/v1/events?eventType=iga.v1.GrantIssued",
        &pos,
    )
    .await;
    assert_eq!((s, events["list"].as_array().unwrap().len()), (200, 1));
    assert_eq!(events["list"][0]["data"]["requestId"], rid.as_str());
    let (s, _) = get(api, &ben.1, "/api/v1/events", &pos).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn per_pair_errors_and_who_may_request_for_whom() {
    let w = world().await;
    let api = &w.api;
    let (_, hidden) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Hidden", "requestable": false}),
        )
        .await;
    let (_, risky) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Root", "riskLevelValueId": "high"}),
        )
        .await;
    let body = json!({"users": [w.ben.0], "catalogs": [
        {"type": "entitlement", "id": w.ent},
        {"type": "entitlement", "id": id(&hidden)},
        {"type": "entitlement", "id": id(&risky)},
        {"type": "entitlement", "id": "nope"},
        {"type": "application", "id": w.app}]});
    let (s, _, v) = post(api, &w.manager.1, "/api/v1/requests", body.clone()).await;
    assert_eq!(s, 201, "{v}");
    let mut codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["INVALID", "NOT_FOUND", "NOT_REQUESTABLE"]);
    assert_eq!(
        v["result"].as_array().unwrap().len(),
        2,
        "the valid pairs are created"
    );
    // Only admins and managers request for others.
    let (s, _, _) = post(api, &w.other.1, "/api/v1/requests", body).await;
    assert_eq!(s, 403);
    for (bad, field) in [
        (json!({"catalogs": []}), "catalogs"),
        (
            json!({"catalogs": item(&w.ent), "endDate": "yesterday"}),
            "endDate",
        ),
        (
            json!({"catalogs": item(&w.ent), "expiryDate": "2001-01-01T00:00:00Z"}),
            "expiryDate",
        ),
        (
            json!({"catalogs": [{"type": "group", "id": "x"}]}),
            "catalogs[0].type",
        ),
        (
            json!({"catalogs": item(&w.ent), "priority": "urgent"}),
            "priority",
        ),
    ] {
        let (s, _, e) = post(api, &w.other.1, "/api/v1/requests", bad.clone()).await;
        // Malformed: 400; well-formed but already past: 422.
        let status = if bad.to_string().contains("2001-01-01") {
            422
        } else {
            400
        };
        assert_eq!(
            (s, e["errors"][0]["field"].as_str()),
            (status, Some(field)),
            "{bad} -> {e}"
        );
    }
}

/// A create loads the first aggregates of each pair at once, ahead of its
/// checks; that head start changes no answer. An item id that names no
/// entitlement and is too long for any pair's stream is still the pair's
/// `NOT_FOUND`, beside a pair that is created.
#[tokio::test]
async fn an_item_no_pair_stream_can_hold_is_not_found_as_before() {
    let w = world().await;
    let long = "n".repeat(180);
    let body = json!({"users": [w.ben.0], "catalogs": [
        {"type": "entitlement", "id": long},
        {"type": "entitlement", "id": w.ent}]});
    let (s, _, v) = post(&w.api, &w.manager.1, "/api/v1/requests", body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["errors"][0]["error"], "NOT_FOUND", "{v}");
    assert_eq!(v["result"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn policies_phases_quorum_reassign_modify_reject_cancel() {
    let w = world().await;
    let api = &w.api;
    let (s1, s1t) = person(api, "sec1", json!({})).await;
    let (s2, s2t) = person(api, "sec2", json!({})).await;
    let (s3, s3t) = person(api, "sec3", json!({})).await;
    let (_, policy) = api
        .ok("POST", "/api/v1/policies", json!({"displayName": "Manager then security", "steps": [
            {"name": "Manager", "approvers": {"type": "MANAGER"}, "requireJustification": true},
            {"name": "Security", "approvers": {"type": "USERS", "userIds": [s1, s2, s3]}, "quorum": 2}]}))
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Prod", "grantPolicyId": id(&policy), "durationGrant": "86400s"}),
        )
        .await;
    let (_, _, created) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&id(&ent))}),
    )
    .await;
    let rid = created["result"][0].as_str().unwrap().to_string();
    let act = |what: &str| format!("/api/v1/requests/{rid}/{what}");
    // The manager must justify; the security phase is not current yet.
    let (s, _, _) = post(api, &w.manager.1, &act("approve"), json!({})).await;
    assert_eq!(s, 400);
    let (s, _, _) = post(api, &s1t, &act("approve"), json!({})).await;
    assert_eq!(s, 403);
    let (s, _, _) = post(
        api,
        &w.manager.1,
        &act("approve"),
        json!({"phaseName": "Security", "justification": "x"}),
    )
    .await;
    assert_eq!(s, 409);
    // The manager shortens the window, then approves.
    let end = time_in(Duration::from_secs(7200));
    let (s, _, modified) = post(api, &w.manager.1, &act("modify"), json!({"endDate": end})).await;
    assert_eq!(s, 200, "{modified}");
    let (s, _, _) = post(
        api,
        &w.manager.1,
        &act("modify"),
        json!({"endDate": time_in(Duration::from_secs(100_000))}),
    )
    .await;
    assert_eq!(s, 400, "never lengthened");
    let (s, _, r) = post(
        api,
        &w.manager.1,
        &act("approve"),
        json!({"justification": "team member"}),
    )
    .await;
    assert_eq!(
        (s, r["decision"]["phases"][1]["status"].as_str()),
        (200, Some("in-progress"))
    );
    // Security: sec1 hands over to sec3 ... who with sec2 makes the quorum of 2.
    let (s, _, r) = post(api, &s1t, &act("reassign"), json!({"toUserIds": [s3]})).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["decision"]["actors"]["inactive"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == s1.as_str()));
    let (s, _, _) = post(api, &s1t, &act("approve"), json!({})).await;
    assert_eq!(s, 403, "sec1 handed the task on");
    let (_, _, r) = post(api, &s2t, &act("approve"), json!({})).await;
    assert_eq!(r["decision"]["status"], "in-progress");
    let (s, pos, r) = post(api, &s3t, &act("approve"), json!({})).await;
    assert_eq!(
        (s, r["decision"]["outcome"].as_str()),
        (200, Some("provisioned"))
    );
    let (_, g) = get(
        api,
        ADMIN,
        &format!(
            "/api/v1/grants?userId={}&entitlementId={}",
            w.ben.0,
            id(&ent)
        ),
        &pos,
    )
    .await;
    assert_eq!(
        g["list"][0]["deprovisionAt"].as_str().unwrap()[..16],
        end[..16],
        "ends when the manager said"
    );
    let (_, hist) = get(
        api,
        ADMIN,
        &format!("/api/v1/grants/history?entitlementId={}", id(&ent)),
        &pos,
    )
    .await;
    let approvers: Vec<&str> = hist["list"][0]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["userId"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, [w.manager.0.as_str(), s2.as_str(), s3.as_str()]);
    assert_eq!(
        (
            hist["list"][0]["policyId"].as_str(),
            hist["list"][0]["policyVersion"].as_u64()
        ),
        (Some(id(&policy).as_str()), Some(1))
    );

    // Reject ends it; cancel is for the requester; both free the pair.
    let (_, other_ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Wiki"}),
        )
        .await;
    let (_, _, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&id(&other_ent))}),
    )
    .await;
    let r2 = c["result"][0].as_str().unwrap().to_string();
    let (s, _, r) = post(
        api,
        &w.owner.1,
        &format!("/api/v1/requests/{r2}/reject"),
        json!({"comment": "no"}),
    )
    .await;
    assert_eq!(
        (s, r["decision"]["outcome"].as_str()),
        (200, Some("denied"))
    );
    let (_, _, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&id(&other_ent))}),
    )
    .await;
    let r3 = c["result"][0]
        .as_str()
        .expect("the pair is free again")
        .to_string();
    let (s, _, _) = post(
        api,
        &w.owner.1,
        &format!("/api/v1/requests/{r3}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, r) = post(
        api,
        &w.ben.1,
        &format!("/api/v1/requests/{r3}/cancel"),
        json!({"comment": "never mind"}),
    )
    .await;
    assert_eq!(
        (s, r["decision"]["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (s, _, _) = post(
        api,
        &w.owner.1,
        &format!("/api/v1/requests/{r3}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 409);
}

fn time_in(d: Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + d;
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn auto_approval_admin_grants_and_timers() {
    let w = world().await;
    let api = &w.api;
    let (_, auto) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Auto", "autoApprove": true, "steps": []}),
        )
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Docs", "grantPolicyId": id(&auto)}),
        )
        .await;
    // Auto-approved and fulfilled before the answer; the grant ends by itself at endDate.
    let end = time_in(Duration::from_millis(1500));
    let (s, pos, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&id(&ent)), "endDate": end}),
    )
    .await;
    assert_eq!(s, 201);
    let rid = c["result"][0].as_str().unwrap();
    let (_, r) = get(api, &w.ben.1, &format!("/api/v1/requests/{rid}"), &pos).await;
    assert_eq!(r["decision"]["outcome"], "provisioned");
    // An admin grant with a deprovisionAt, then another request that expires.
    let (s, _, g) = post(
        api,
        ADMIN,
        &format!(
            "/api/v1/apps/{}/entitlements/{}/add-manual-user",
            w.app, w.ent
        ),
        json!({"userId": w.other.0, "deprovisionAt": time_in(Duration::from_millis(1500))}),
    )
    .await;
    assert_eq!((s, g["grantType"].as_str()), (201, Some("admin")));
    let (s, _, _) = post(
        api,
        ADMIN,
        &format!(
            "/api/v1/apps/{}/entitlements/{}/add-manual-user",
            w.app, w.ent
        ),
        json!({"userId": w.other.0}),
    )
    .await;
    assert_eq!(s, 409, "held already");
    let (_, _, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&w.ent), "expiryDate": time_in(Duration::from_millis(1500))}),
    )
    .await;
    let expiring = c["result"][0].as_str().unwrap().to_string();
    // Within a second of their time, all three happen by themselves.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let head = common::log_head(&api.s).await;
        let (_, g1) = get(
            api,
            ADMIN,
            &format!("/api/v1/grants?userId={}", w.ben.0),
            &head,
        )
        .await;
        let (_, g2) = get(
            api,
            ADMIN,
            &format!("/api/v1/grants?userId={}", w.other.0),
            &head,
        )
        .await;
        let (_, r) = get(api, ADMIN, &format!("/api/v1/requests/{expiring}"), &head).await;
        if g1["list"] == json!([])
            && g2["list"] == json!([])
            && r["decision"]["outcome"] == "expired"
        {
            let (_, h) = get(
                api,
                ADMIN,
                &format!("/api/v1/grants/history?userId={}", w.other.0),
                &head,
            )
            .await;
            assert_eq!(h["list"][0]["revokeReason"], "expired");
            assert_eq!(
                h["list"][0]["deletedAt"], h["list"][0]["deprovisionAt"],
                "ended at its time, not when noticed"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timers did not fire: {g1} {g2} {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Duration changes and revocation by the app's owner; strangers cannot.
    let (_, _, _) = post(
        api,
        ADMIN,
        &format!(
            "/api/v1/apps/{}/entitlements/{}/add-manual-user",
            w.app, w.ent
        ),
        json!({"userId": w.other.0}),
    )
    .await;
    let base = format!(
        "/api/v1/apps/{}/entitlements/{}/users/{}",
        w.app, w.ent, w.other.0
    );
    let (s, _, g) = post(
        api,
        &w.owner.1,
        &format!("{base}/update-grant-duration"),
        json!({"deprovisionAt": time_in(Duration::from_secs(3600))}),
    )
    .await;
    assert_eq!((s, g["deprovisionAt"].is_string()), (200, true));
    let (s, _, g) = post(
        api,
        &w.owner.1,
        &format!("{base}/remove-grant-duration"),
        json!({}),
    )
    .await;
    assert_eq!((s, g["deprovisionAt"].is_null()), (200, true));
    let (s, _, _) = post(
        api,
        &w.other.1,
        &format!("{base}/revoke"),
        json!({"reason": "me"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, pos, g) = post(
        api,
        &w.owner.1,
        &format!("{base}/revoke"),
        json!({"reason": "left the team"}),
    )
    .await;
    assert_eq!(
        (s, g["revokeReason"].as_str(), g["revokeComment"].as_str()),
        (200, Some("revoked"), Some("left the team"))
    );
    let (_, list) = get(
        api,
        ADMIN,
        &format!(
            "/api/v1/apps/{}/entitlements/{}/grants?includeExpired=true",
            w.app, w.ent
        ),
        &pos,
    )
    .await;
    assert!(list["list"].as_array().unwrap().iter().any(|x| x == &g));
    let (s, _, _) = post(api, &w.owner.1, &format!("{base}/revoke"), json!({})).await;
    assert_eq!(s, 404, "nothing held any more");
}

#[tokio::test]
async fn identical_requests_at_once_create_exactly_one() {
    let w = world().await;
    let url = w.api.s.url("/api/v1/requests");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, token, ent) = (url.clone(), w.ben.1.clone(), w.ent.clone());
            tokio::spawn(async move {
                common::send("POST", url, &token, Some(json!({"catalogs": item(&ent)})))
                    .await
                    .2
            })
        })
        .collect();
    let mut created = 0;
    let mut duplicates = 0;
    for t in tasks {
        let v = t.await.unwrap();
        created += v["result"].as_array().unwrap().len();
        duplicates += v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["error"] == "DUPLICATE")
            .count();
    }
    assert_eq!((created, duplicates), (1, 7));
}

#[tokio::test]
async fn fifty_concurrent_approvals_complete_a_quorum_phase_once() {
    let w = world().await;
    let api = &w.api;
    let mut approvers = Vec::new();
    for i in 0..50 {
        approvers.push(person(api, &format!("approver{i}"), json!({})).await);
    }
    let ids: Vec<&str> = approvers.iter().map(|a| a.0.as_str()).collect();
    let (_, policy) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Committee", "steps": [
            {"name": "Committee", "approvers": {"type": "USERS", "userIds": ids}, "quorum": 10}]}),
        )
        .await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{}/entitlements", w.app),
            json!({"displayName": "Vault", "grantPolicyId": id(&policy)}),
        )
        .await;
    let (_, _, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&id(&ent))}),
    )
    .await;
    let rid = c["result"][0].as_str().unwrap().to_string();
    let url = api.s.url(&format!("/api/v1/requests/{rid}/approve"));
    let tasks: Vec<_> = approvers
        .iter()
        .map(|(_, token)| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move { common::send("POST", url, &token, Some(json!({}))).await })
        })
        .collect();
    let mut ok = 0;
    let mut late = 0;
    let mut pos = String::new();
    for t in tasks {
        let (s, p, _) = t.await.unwrap();
        match s {
            200 => ok += 1,
            409 => late += 1,
            other => panic!("approval answered {other}"),
        }
        pos = pos.max(p);
    }
    assert_eq!((ok, late), (10, 40), "the quorum, then the phase is closed");
    let head = common::log_head(&api.s).await;
    let (_, r) = get(api, ADMIN, &format!("/api/v1/requests/{rid}"), &head).await;
    assert_eq!(
        r["decision"]["phases"][0]["approvals"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let (_, g) = get(
        api,
        ADMIN,
        &format!("/api/v1/grants/history?entitlementId={}", id(&ent)),
        &head,
    )
    .await;
    assert_eq!(g["list"].as_array().unwrap().len(), 1, "one grant");
    let (_, e) = get(
        api,
        ADMIN,
        &format!("/api/v1/events?streamId=request-{rid}&eventType=iga.v1.RequestPhaseCompleted"),
        &head,
    )
    .await;
    assert_eq!(e["list"].as_array().unwrap().len(), 1, "completed once");
}

#[tokio::test]
async fn approve_and_cancel_at_once_leave_one_outcome() {
    let w = world().await;
    let api = &w.api;
    for _ in 0..5 {
        let (_, _, c) = post(
            api,
            &w.ben.1,
            "/api/v1/requests",
            json!({"catalogs": item(&w.ent)}),
        )
        .await;
        let rid = c["result"][0].as_str().unwrap().to_string();
        let approve = common::send(
            "POST",
            api.s.url(&format!("/api/v1/requests/{rid}/approve")),
            &w.owner.1,
            Some(json!({})),
        );
        let cancel = common::send(
            "POST",
            api.s.url(&format!("/api/v1/requests/{rid}/cancel")),
            &w.ben.1,
            Some(json!({})),
        );
        let ((a, _, _), (c, _, _)) = tokio::join!(approve, cancel);
        let mut statuses = [a, c];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "one wins");
        let head = common::log_head(&api.s).await;
        let (_, r) = get(api, ADMIN, &format!("/api/v1/requests/{rid}"), &head).await;
        let (_, g) = get(
            api,
            ADMIN,
            &format!("/api/v1/grants?userId={}", w.ben.0),
            &head,
        )
        .await;
        let held = !g["list"].as_array().unwrap().is_empty();
        match r["decision"]["outcome"].as_str() {
            Some("provisioned") => {
                assert!(held);
                // Give it back for the next round.
                post(
                    api,
                    ADMIN,
                    &format!(
                        "/api/v1/apps/{}/entitlements/{}/users/{}/revoke",
                        w.app, w.ent, w.ben.0
                    ),
                    json!({}),
                )
                .await;
            }
            Some("cancelled") => assert!(!held),
            other => panic!("outcome {other:?}"),
        }
    }
}

#[tokio::test]
async fn audit_events_stream_resumes_with_last_event_id() {
    let w = world().await;
    let head: u64 = common::log_head(&w.api.s).await.parse().unwrap();
    let mut r = client()
        .get(w.api.s.url("/api/v1/events/stream"))
        .bearer_auth(ADMIN)
        .header("Last-Event-ID", (head - 2).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The backlog after head - 2, then a live event.
    post(
        &w.api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&w.ent)}),
    )
    .await;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the live request event: the service may record a token's first
    // use (`ApiTokenUsed`) just before it.
    let live = |t: &str| {
        t.contains("event: iga.v1.AccessRequestOpened")
            || t.contains("event: iga.v1.AccessRequestCreated")
    };
    while text.matches("\nid: ").count() + usize::from(text.starts_with("id: ")) < 3 || !live(&text)
    {
        let chunk = tokio::time::timeout_at(deadline.into(), r.chunk())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: ").and_then(|s| s.parse().ok()))
        .collect();
    // The backlog after the Last-Event-ID, then live, without a gap.
    assert_eq!(ids[..3], [head - 1, head, head + 1]);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
}

#[tokio::test]
async fn delegates_see_and_act_on_the_tasks_of_those_they_stand_in_for() {
    let w = world().await;
    let api = &w.api;
    let (deputy, deputy_token) = person(api, "deputy", json!({})).await;
    // The owner names a delegate: new requests reach the delegate too.
    api.ok(
        "POST",
        &format!("/api/v1/users/{}", w.owner.0),
        json!({"delegatedUserId": deputy}),
    )
    .await;
    let (_, pos, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&w.ent)}),
    )
    .await;
    let rid = c["result"][0].as_str().unwrap().to_string();
    let (s, inbox) = get(
        api,
        &deputy_token,
        &format!("/api/v1/users/{}/tasks", w.owner.0),
        &pos,
    )
    .await;
    assert_eq!(
        (s, inbox["list"][0]["id"].as_str()),
        (200, Some(rid.as_str())),
        "the delegate reads the owner's inbox"
    );
    let (_, mine) = get(api, &deputy_token, "/api/v1/me/tasks", &pos).await;
    assert_eq!(
        mine["list"][0]["id"],
        rid.as_str(),
        "and has the task in their own"
    );
    let (s, _) = get(
        api,
        &w.other.1,
        &format!("/api/v1/users/{}/tasks", w.owner.0),
        &pos,
    )
    .await;
    assert_eq!(s, 404, "someone else's inbox does not exist for them");
    let (s, _, r) = post(
        api,
        &deputy_token,
        &format!("/api/v1/requests/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(
        (s, r["decision"]["outcome"].as_str()),
        (200, Some("provisioned"))
    );
}

#[tokio::test]
async fn idempotency_keys_hold_on_action_routes_too() {
    let w = world().await;
    let api = &w.api;
    let (_, _, c) = post(
        api,
        &w.ben.1,
        "/api/v1/requests",
        json!({"catalogs": item(&w.ent)}),
    )
    .await;
    let rid = c["result"][0].as_str().unwrap().to_string();
    let send = |body: Value| {
        client()
            .post(api.s.url(&format!("/api/v1/requests/{rid}/comment")))
            .bearer_auth(&w.ben.1)
            .header("Idempotency-Key", "comment-1")
            .json(&body)
            .send()
    };
    let first = send(json!({"comment": "please"})).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"comment": "please"})).await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "a retry answers the first outcome");
    assert_eq!(
        again["decision"]["comments"].as_array().unwrap().len(),
        1,
        "and writes nothing"
    );
    let other = send(json!({"comment": "something else"})).await.unwrap();
    assert_eq!(other.status(), 422);
}

/// A keyed create and a keyed approval, sent twice, answer the first outcome
/// and write once: one request, one grant (on logs that append a decision
/// and its grant as one, the retry is found before anything is decided).
#[tokio::test]
async fn keyed_create_and_approve_retries_answer_the_first_outcome() {
    let w = world().await;
    let api = &w.api;
    let keyed = |token: String, path: String, key: &'static str, body: Value| {
        common::answer(
            client()
                .post(api.s.url(&path))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body),
        )
    };
    let create = json!({"catalogs": item(&w.ent)});
    let path = "/api/v1/requests".to_string();
    let (s1, _, first) = keyed(w.ben.1.clone(), path.clone(), "create-1", create.clone()).await;
    let (s2, _, again) = keyed(w.ben.1.clone(), path, "create-1", create).await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(again, first, "a retried create answers the first outcome");
    let rid = first["result"][0].as_str().unwrap().to_string();

    let path = format!("/api/v1/requests/{rid}/approve");
    let (s1, _, first) = keyed(w.owner.1.clone(), path.clone(), "approve-1", json!({})).await;
    let (s2, pos, again) = keyed(w.owner.1.clone(), path, "approve-1", json!({})).await;
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    assert_eq!(again, first, "a retried approval answers the first outcome");
    assert_eq!(first["decision"]["outcome"].as_str(), Some("provisioned"));
    let (_, reqs) = get(
        api,
        ADMIN,
        &format!("/api/v1/requests?userId={}", w.ben.0),
        &pos,
    )
    .await;
    assert_eq!(reqs["list"].as_array().map(Vec::len), Some(1), "{reqs}");
    let (_, hist) = get(
        api,
        ADMIN,
        &format!(
            "/api/v1/grants/history?userId={}&entitlementId={}",
            w.ben.0, w.ent
        ),
        &pos,
    )
    .await;
    assert_eq!(hist["list"].as_array().map(Vec::len), Some(1), "{hist}");
}
