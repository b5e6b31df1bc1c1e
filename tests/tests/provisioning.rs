//! Provisioning end to end, against real HTTP receivers (axum on port 0):
//! a manual task closed by its assignee and refused to a stranger; the
//! whole webhook workflow (request, approve, provision, revoke, deprovision)
//! with the grant's state and the request's outcome checked at each step;
//! retries on 5xx and on a receiver that hangs past the timeout, with the
//! same `webhook-id`, signatures verified; a 202 left open and completed
//! through the API; a 400 failing the task, loudly.

mod common;

use common::receiver::{receiver, HANG};
use common::{eventually, send, Api, Server};
use serde_json::{json, Value};

const ADMIN: &str = "provisioning-admin-token-0123456789-abc";
const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("IGA_ADMIN_TOKEN", ADMIN),
            ("IGA_SECRETS_KEY", SECRETS_KEY),
            ("IGA_WEBHOOK_RETRY_FIRST_MS", "20"),
            ("IGA_WEBHOOK_TIMEOUT_MS", "2000"),
        ],
    );
    Api {
        s,
        _dir: dir,
        admin: ADMIN.into(),
    }
}

async fn as_user(
    api: &Api,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, String, Value) {
    send(method, api.s.url(path), token, Some(body)).await
}

async fn get_as(api: &Api, token: &str, path: &str, pos: &str) -> (u16, Value) {
    let r = common::client()
        .get(api.s.url(path))
        .bearer_auth(token)
        .header("X-Consistency-Token", pos)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The one task of `grant` doing `action`, once the reactor opened it and
/// it satisfies `ready`.
async fn task_of(api: &Api, grant: &str, action: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("the {action} task of grant {grant}"), || async {
        let (_, v) = api
            .read(&format!("/api/v1/provisioning/tasks?grantId={grant}"), "0")
            .await;
        v["list"]
            .as_array()?
            .iter()
            .find(|t| t["action"] == action && ready(t))
            .cloned()
    })
    .await
}

/// The grant as `GET /grants/history` shows it, once it satisfies `ready`.
async fn grant_when(api: &Api, user: &str, grant: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("grant {grant}"), || async {
        let (_, v) = api
            .read(&format!("/api/v1/grants/history?userId={user}"), "0")
            .await;
        v["list"]
            .as_array()?
            .iter()
            .find(|g| g["id"] == grant && ready(g))
            .cloned()
    })
    .await
}

async fn held_now(api: &Api, user: &str, pos: &str, include_pending: bool) -> Vec<String> {
    let (_, v) = api
        .read(
            &format!("/api/v1/grants?userId={user}&includePending={include_pending}"),
            pos,
        )
        .await;
    v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

/// An app owned by `owner` whose grants go through `provisioning`, and its
/// entitlement.
async fn app_with(api: &Api, owner: &str, provisioning: Value) -> (String, String) {
    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Payroll", "ownerIds": [owner], "provisioning": provisioning}),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_string();
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements"),
            json!({"displayName": "Clerk", "alias": "clerk"}),
        )
        .await;
    (app, ent["id"].as_str().unwrap().to_string())
}

/// `user` asks for `ent`; `approver` approves. Answers the request id, the
/// approval's answer and its consistency token.
async fn request_and_approve(
    api: &Api,
    user: &(String, String),
    approver: &str,
    ent: &str,
) -> (String, Value, String) {
    let (s, _, created) = as_user(
        api,
        &user.1,
        "POST",
        "/api/v1/requests",
        json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "payroll run"}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let rid = created["result"][0].as_str().unwrap().to_string();
    let (s, pos, approved) = as_user(
        api,
        approver,
        "POST",
        &format!("/api/v1/requests/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{approved}");
    (rid, approved, pos)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_task_is_closed_by_its_assignee_and_refused_to_a_stranger() {
    let api = api();
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    let eve = api.user("eve").await;
    let (app, ent) = app_with(&api, &owner.0, json!({"mode": "manual"})).await;
    let (_, app_read) = api.read(&format!("/api/v1/apps/{app}"), "0").await;
    assert_eq!(app_read["provisioning"]["mode"], "manual");

    // Approved: the grant is recorded but pending, the request provisioning.
    let (rid, approved, pos) = request_and_approve(&api, &ben, &owner.1, &ent).await;
    assert_eq!(
        approved["decision"]["outcome"], "provisioning",
        "{approved}"
    );
    let grant = approved["grantId"].as_str().unwrap().to_string();
    assert!(
        held_now(&api, &ben.0, &pos, false).await.is_empty(),
        "pending is not held"
    );
    assert_eq!(
        held_now(&api, &ben.0, &pos, true).await,
        vec![grant.clone()]
    );
    let g = grant_when(&api, &ben.0, &grant, |_| true).await;
    assert_eq!(
        (g["state"].as_str(), &g["provisionedAt"]),
        (Some("pending"), &Value::Null)
    );

    // The task is in the owner's list (the default assignees), not in Eve's.
    let task = task_of(&api, &grant, "provision", |_| true).await;
    let tid = task["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            task["mode"].as_str(),
            task["status"].as_str(),
            task["assigneeIds"].clone()
        ),
        (Some("manual"), Some("pending"), json!([owner.0]))
    );
    let (_, mine) = get_as(
        &api,
        &owner.1,
        "/api/v1/provisioning/tasks?status=pending",
        "0",
    )
    .await;
    assert_eq!(mine["list"][0]["id"], tid.as_str());
    let (_, theirs) = get_as(&api, &eve.1, "/api/v1/provisioning/tasks", "0").await;
    assert_eq!(theirs["list"], json!([]));
    // Asking for someone else's list answers one's own.
    let (_, theirs) = get_as(
        &api,
        &eve.1,
        &format!("/api/v1/provisioning/tasks?assigneeId={}", owner.0),
        "0",
    )
    .await;
    assert_eq!(theirs["list"], json!([]));
    let (s, _) = get_as(
        &api,
        &eve.1,
        &format!("/api/v1/provisioning/tasks/{tid}"),
        "0",
    )
    .await;
    assert_eq!(s, 404);

    // Neither a stranger nor the beneficiary can say the access is there.
    let complete = format!("/api/v1/provisioning/tasks/{tid}/complete");
    for who in [&eve.1, &ben.1] {
        let (s, _, v) = as_user(&api, who, "POST", &complete, json!({"outcome": "done"})).await;
        assert_eq!(s, 403, "{v}");
    }
    let (s, _, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &complete,
        json!({"outcome": "maybe"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, pos, done) = as_user(
        &api,
        &owner.1,
        "POST",
        &complete,
        json!({"outcome": "done", "message": "account created"}),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(
        (
            done["status"].as_str(),
            done["completedBy"].as_str(),
            done["message"].as_str()
        ),
        (
            Some("done"),
            Some(owner.0.as_str()),
            Some("account created")
        )
    );
    let (s, _, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &complete,
        json!({"outcome": "failed"}),
    )
    .await;
    assert_eq!(s, 409, "closed stays closed");

    // Held now, from the moment it was done; the request is provisioned.
    assert_eq!(
        held_now(&api, &ben.0, &pos, false).await,
        vec![grant.clone()]
    );
    let (_, req) = api.read(&format!("/api/v1/requests/{rid}"), &pos).await;
    assert_eq!(req["decision"]["outcome"], "provisioned");
    let g = grant_when(&api, &ben.0, &grant, |g| g["state"] == "active").await;
    let created_at = g["createdAt"].as_str().unwrap();
    let provisioned_at = g["provisionedAt"].as_str().unwrap();
    assert!(provisioned_at > created_at, "{g}");
    let (_, then) = api
        .read(
            &format!("/api/v1/grants?userId={}&at={created_at}", ben.0),
            &pos,
        )
        .await;
    assert_eq!(
        then["list"],
        json!([]),
        "not held before it was provisioned"
    );

    // Revoked: still held while the access is being taken away; a failed
    // deprovision keeps it held, loudly, until an admin retries and it is done.
    let (s, pos, revoked) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!(
            "/api/v1/apps/{app}/entitlements/{ent}/users/{}/revoke",
            ben.0
        ),
        json!({"reason": "left"}),
    )
    .await;
    assert_eq!(s, 200, "{revoked}");
    assert_eq!(revoked["state"], "deprovisioning");
    assert_eq!(
        held_now(&api, &ben.0, &pos, false).await,
        vec![grant.clone()]
    );
    let task = task_of(&api, &grant, "deprovision", |_| true).await;
    let tid = task["id"].as_str().unwrap().to_string();
    let (s, pos, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/provisioning/tasks/{tid}/complete"),
        json!({"outcome": "failed", "message": "account locked"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        held_now(&api, &ben.0, &pos, false).await,
        vec![grant.clone()]
    );
    grant_when(&api, &ben.0, &grant, |g| g["state"] == "deprovisionFailed").await;
    let retry = format!("/api/v1/provisioning/tasks/{tid}/retry");
    let (s, _, _) = as_user(&api, &owner.1, "POST", &retry, json!({})).await;
    assert_eq!(s, 403, "only an admin reopens a task");
    let (_, again) = api.ok("POST", &retry, json!({})).await;
    assert_eq!(again["status"], "pending");
    let (_, pos, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/provisioning/tasks/{tid}/complete"),
        json!({"outcome": "done"}),
    )
    .await;
    assert!(held_now(&api, &ben.0, &pos, false).await.is_empty());
    let g = grant_when(&api, &ben.0, &grant, |g| g["state"] == "ended").await;
    assert!(g["deprovisionedAt"].as_str().unwrap() >= g["deletedAt"].as_str().unwrap());

    // The owner's own access: the task is theirs to do, not theirs to close.
    let (_, own) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user"),
            json!({"userId": owner.0}),
        )
        .await;
    let own = own["id"].as_str().unwrap().to_string();
    let task = task_of(&api, &own, "provision", |_| true).await;
    let (s, _, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!(
            "/api/v1/provisioning/tasks/{}/complete",
            task["id"].as_str().unwrap()
        ),
        json!({"outcome": "done"}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_workflow_provisions_and_deprovisions_with_retries_and_signatures() {
    let api = api();
    // Three failures (two 5xx, one hang past the timeout), then the
    // provision; then the deprovision at once.
    let rx = receiver(&[503, 500, HANG]).await;
    let (_, hook) = api
        .ok(
            "POST",
            "/api/v1/webhooks",
            json!({"url": rx.url, "description": "payroll bridge"}),
        )
        .await;
    let (hook, secret) = (
        hook["id"].as_str().unwrap().to_string(),
        hook["secret"].as_str().unwrap().to_string(),
    );
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    // The app says manual; the entitlement's webhook wins.
    let (app, _) = app_with(&api, &owner.0, json!({"mode": "manual"})).await;
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements"),
            json!({"displayName": "Approver", "provisioning": {"mode": "webhook", "webhookId": hook}}),
        )
        .await;
    assert_eq!(ent["provisioning"]["webhookId"], hook.as_str());
    let ent = ent["id"].as_str().unwrap().to_string();

    let (rid, approved, _) = request_and_approve(&api, &ben, &owner.1, &ent).await;
    assert_eq!(approved["decision"]["outcome"], "provisioning");
    let grant = approved["grantId"].as_str().unwrap().to_string();
    let calls = rx.delivered(1).await;
    let task = task_of(&api, &grant, "provision", |t| t["status"] == "done").await;
    assert_eq!(task["completedBy"], "system");
    assert_eq!(task["attempts"], 4, "{task}");
    // Every attempt was the same delivery, signed, with the task's body.
    let all = rx.calls();
    assert_eq!(all.len(), 4, "three failures and the success");
    assert!(all.iter().all(|c| c.id() == calls[0].id()));
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for c in &all {
        verifier.verify(&c.body, &c.headers).unwrap();
    }
    let body = calls[0].event();
    assert_eq!(
        (
            body["type"].as_str(),
            body["task"]["id"].as_str(),
            body["user"]["username"].as_str()
        ),
        (Some("iga.provision"), task["id"].as_str(), Some("ben"))
    );
    assert_eq!(
        (
            body["app"]["id"].as_str(),
            body["entitlement"]["id"].as_str()
        ),
        (Some(app.as_str()), Some(ent.as_str()))
    );
    let g = grant_when(&api, &ben.0, &grant, |g| g["state"] == "active").await;
    assert!(g["provisionedAt"].is_string());
    let req = eventually("the request provisioned", || async {
        let (_, r) = api.read(&format!("/api/v1/requests/{rid}"), "0").await;
        (r["decision"]["outcome"] == "provisioned").then_some(r)
    })
    .await;
    assert_eq!(req["grantId"], grant.as_str());

    // A removal request: deprovisioned through the same webhook.
    let (s, _, removal) = as_user(
        &api,
        &ben.1,
        "POST",
        "/api/v1/requests",
        json!({"catalogs": [{"type": "entitlement", "id": ent}], "accessModifier": "remove"}),
    )
    .await;
    assert_eq!(s, 201, "{removal}");
    let remove_id = removal["result"][0].as_str().unwrap().to_string();
    let (_, _, removed) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/requests/{remove_id}/approve"),
        json!({}),
    )
    .await;
    // (Held until the receiver answers, which it does at once: the manual
    // test pins the in-between state.)
    assert_eq!(
        removed["decision"]["outcome"], "deprovisioning",
        "{removed}"
    );
    let calls = rx.delivered(2).await;
    assert_eq!(calls[1].event()["type"], "iga.deprovision");
    grant_when(&api, &ben.0, &grant, |g| g["state"] == "ended").await;
    eventually("the removal deprovisioned", || async {
        let (_, r) = api
            .read(&format!("/api/v1/requests/{remove_id}"), "0")
            .await;
        (r["decision"]["outcome"] == "deprovisioned").then_some(())
    })
    .await;
    // The deliveries are listed, each settled.
    let (_, list) = api
        .read(&format!("/api/v1/webhooks/{hook}/deliveries"), "0")
        .await;
    let kinds: Vec<_> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].clone(), d["status"].clone()))
        .collect();
    let settled = (json!("provisioning"), json!("succeeded"));
    assert_eq!(kinds, [settled.clone(), settled]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_stays_open_until_completed_and_a_400_fails_the_task_loudly() {
    let api = api();
    let accepting = receiver(&[202]).await;
    let refusing = receiver(&[400]).await;
    let mut hooks = vec![];
    for rx in [&accepting, &refusing] {
        let (_, hook) = api
            .ok("POST", "/api/v1/webhooks", json!({"url": rx.url}))
            .await;
        hooks.push(hook["id"].as_str().unwrap().to_string());
    }
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    let (app, _) = app_with(&api, &owner.0, json!({"mode": "none"})).await;
    let mut grants = vec![];
    for hook in &hooks {
        let (_, ent) = api
            .ok(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements"),
                json!({"displayName": format!("via {hook}"), "provisioning": {"mode": "webhook", "webhookId": hook}}),
            )
            .await;
        let ent = ent["id"].as_str().unwrap().to_string();
        // A direct grant opens a task too.
        let (_, g) = api
            .ok(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user"),
                json!({"userId": ben.0}),
            )
            .await;
        assert_eq!(g["state"], "pending");
        grants.push(g["id"].as_str().unwrap().to_string());
    }

    // 202: delivered, the task open until the receiver's system completes it.
    accepting.delivered(1).await;
    let task = task_of(&api, &grants[0], "provision", |t| t["attempts"] == 1).await;
    assert_eq!(task["status"], "pending", "{task}");
    let (_, hook_deliveries) = api
        .read(
            &format!("/api/v1/webhooks/{}/deliveries?status=succeeded", hooks[0]),
            "0",
        )
        .await;
    assert_eq!(hook_deliveries["list"].as_array().unwrap().len(), 1);
    let (pos, done) = api
        .ok(
            "POST",
            &format!(
                "/api/v1/provisioning/tasks/{}/complete",
                task["id"].as_str().unwrap()
            ),
            json!({"outcome": "done", "message": "ticket PAY-12 closed"}),
        )
        .await;
    assert_eq!(done["status"], "done");
    assert_eq!(
        held_now(&api, &ben.0, &pos, false).await,
        [grants[0].clone()]
    );

    // 400: failed at once, not retried; the grant never counts as held.
    refusing.delivered(0).await;
    let task = task_of(&api, &grants[1], "provision", |t| t["status"] == "failed").await;
    assert_eq!(
        (task["attempts"].as_u64(), task["completedBy"].as_str()),
        (Some(1), Some("system"))
    );
    assert!(task["message"].as_str().unwrap().contains("400"), "{task}");
    assert_eq!(refusing.calls().len(), 1);
    let g = grant_when(&api, &ben.0, &grants[1], |g| {
        g["state"] == "provisionFailed"
    })
    .await;
    assert_eq!(g["provisionedAt"], Value::Null);
    let (_, failed) = api
        .read("/api/v1/provisioning/tasks?status=failed", "0")
        .await;
    assert_eq!(failed["list"][0]["id"], task["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_name_nothing_or_misuse_a_mode_are_refused() {
    let api = api();
    let owner = api.user("owner").await;
    for (setting, field) in [
        (json!({"mode": "webhook"}), "provisioning.webhookId"),
        (
            json!({"mode": "webhook", "webhookId": "no-such-hook"}),
            "provisioning.webhookId",
        ),
        (
            json!({"mode": "manual", "assigneeIds": ["no-such-user"]}),
            "provisioning.assigneeIds",
        ),
        (json!({"mode": ""}), "provisioning.mode"),
    ] {
        let (s, _, v) = api
            .write(
                "POST",
                "/api/v1/apps",
                &api.admin,
                Some(json!({"displayName": "X", "provisioning": setting})),
            )
            .await;
        assert_eq!(s, 422, "{setting}: {v}");
        assert!(v.to_string().contains(field), "{setting}: {v}");
    }
    // Only admins and the app's owners change how access is given.
    let (app, ent) = app_with(&api, &owner.0, json!({"mode": "none"})).await;
    let ent_owner = api.user("ent-owner").await;
    api.ok(
        "PUT",
        &format!("/api/v1/apps/{app}/entitlements/{ent}/owners"),
        json!({"userIds": [ent_owner.0]}),
    )
    .await;
    let path = format!("/api/v1/apps/{app}/entitlements/{ent}");
    let (s, _, _) = as_user(
        &api,
        &ent_owner.1,
        "POST",
        &path,
        json!({"provisioning": {"mode": "manual"}}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &path,
        json!({"provisioning": {"mode": "manual"}}),
    )
    .await;
    assert_eq!(
        (s, v["provisioning"]["mode"].as_str()),
        (200, Some("manual"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_kill_9_is_finished_after_the_restart_with_the_same_webhook_id() {
    if common::single_process_only("a_delivery_cut_by_kill_9") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("IGA_ADMIN_TOKEN", ADMIN),
        ("IGA_SECRETS_KEY", SECRETS_KEY),
        ("IGA_WEBHOOK_RETRY_FIRST_MS", "20"),
        ("IGA_WEBHOOK_TIMEOUT_MS", "4000"),
    ];
    // The first call gets no answer: the server dies while it waits.
    let rx = receiver(&[HANG]).await;
    let mut s = Server::start(dir.path(), &env);
    let api_of = |s: Server| Api {
        s,
        _dir: tempfile::tempdir().unwrap(),
        admin: ADMIN.into(),
    };
    let (_, _, hook) = send(
        "POST",
        s.url("/api/v1/webhooks"),
        ADMIN,
        Some(json!({"url": rx.url})),
    )
    .await;
    let hook = hook["id"].as_str().unwrap().to_string();
    let (_, _, ben) = send(
        "POST",
        s.url("/api/v1/users"),
        ADMIN,
        Some(json!({"username": "ben"})),
    )
    .await;
    let ben = ben["id"].as_str().unwrap().to_string();
    let (_, _, app) = send(
        "POST",
        s.url("/api/v1/apps"),
        ADMIN,
        Some(json!({"displayName": "Ledger", "provisioning": {"mode": "webhook", "webhookId": hook}})),
    )
    .await;
    let app = app["id"].as_str().unwrap().to_string();
    let access = format!(
        "/api/v1/apps/{app}/entitlements/{}/add-manual-user",
        app_access(&s, &app).await
    );
    let (status, _, grant) =
        send("POST", s.url(&access), ADMIN, Some(json!({"userId": ben}))).await;
    assert_eq!(status, 201, "{grant}");
    let grant = grant["id"].as_str().unwrap().to_string();
    eventually("the first call", || async {
        (!rx.calls().is_empty()).then_some(())
    })
    .await;
    s.child.kill().unwrap(); // SIGKILL, mid-call
    s.child.wait().unwrap();
    drop(s);

    let api = api_of(Server::start(dir.path(), &env));
    let calls = rx.delivered(1).await;
    let all = rx.calls();
    assert_eq!(all.len(), 2, "the cut call and its repeat: {all:?}");
    assert_eq!(
        calls[0].id(),
        all[0].id(),
        "the same webhook-id after the restart"
    );
    let task = task_of(&api, &grant, "provision", |t| t["status"] == "done").await;
    assert_eq!(
        task["attempts"], 1,
        "the cut attempt was never recorded: {task}"
    );
    grant_when(&api, &ben, &grant, |g| g["state"] == "active").await;
}

/// The id of app `app`'s built-in access entitlement.
async fn app_access(s: &Server, app: &str) -> String {
    let r = common::client()
        .get(s.url(&format!("/api/v1/apps/{app}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["accessEntitlementId"].as_str().unwrap().to_string()
}
