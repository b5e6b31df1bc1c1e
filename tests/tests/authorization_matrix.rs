//! The authorization matrix, generated from the router: every route the
//! served OpenAPI document lists, called by every kind of principal. A
//! route without a row here fails the test (so does a row without a route).
//! Allowed calls succeed with the route's status; refused ones answer 403
//! (visible, not allowed), 404 (not the caller's to see) or 401 (no live
//! token), and change nothing: the log's head does not move.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{client, Server};
use serde_json::{json, Value};

const ADMIN: &str = "matrix-admin-token-0123456789-abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Admin,
    Auditor,
    AppOwner,
    EntOwner,
    /// A manager of the beneficiary who is not the requester.
    Manager,
    /// The policy's approver.
    Approver,
    ApproverDelegate,
    /// Requests for the beneficiary (also their manager).
    Requester,
    RequesterDelegate,
    Beneficiary,
    Stranger,
    Disabled,
    Revoked,
    Expired,
    Anonymous,
}

use Who::*;

const ACTIVE: &[Who] = &[
    Admin,
    Auditor,
    AppOwner,
    EntOwner,
    Manager,
    Approver,
    ApproverDelegate,
    Requester,
    RequesterDelegate,
    Beneficiary,
    Stranger,
];
const DEAD: &[Who] = &[Disabled, Revoked, Expired, Anonymous];

/// How a route answers each principal.
struct Row {
    method: &'static str,
    path: &'static str,
    /// The body; placeholders as in paths.
    body: Option<Value>,
    /// Who succeeds, and with what status.
    allowed: &'static [Who],
    ok: u16,
    /// Who is answered 404 (the rest of the active principals get 403).
    hidden: &'static [Who],
    /// The scene's app is deactivated first.
    inactive_app: bool,
}

const fn row(method: &'static str, path: &'static str, allowed: &'static [Who], ok: u16) -> Row {
    Row {
        method,
        path,
        body: None,
        allowed,
        ok,
        hidden: &[],
        inactive_app: false,
    }
}

impl Row {
    fn body(mut self, body: Value) -> Row {
        self.body = Some(body);
        self
    }
    fn hidden(mut self, hidden: &'static [Who]) -> Row {
        self.hidden = hidden;
        self
    }
    fn inactive(mut self) -> Row {
        self.inactive_app = true;
        self
    }
}

/// Who sees the scene's request, and who of them may decide it.
const SEES_REQUEST_NOT_ACTOR: &[Who] = &[Manager, AppOwner, EntOwner, RequesterDelegate, Stranger];
const DECIDERS: &[Who] = &[Admin, Approver, ApproverDelegate];
/// Everyone but the one user (Requester) and admins: another user's tokens.
const NOT_REQUESTER: &[Who] = &[
    Auditor,
    AppOwner,
    EntOwner,
    Manager,
    Approver,
    ApproverDelegate,
    RequesterDelegate,
    Beneficiary,
    Stranger,
];

fn rows() -> Vec<Row> {
    let admin_app_owner: &'static [Who] = &[Admin, AppOwner];
    vec![
        // Catalog reads: anyone.
        row("GET", "/api/v1/apps", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/owners", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/versions", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/entitlements", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/entitlements/{entitlementId}", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/entitlements/{entitlementId}/owners", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/entitlements/{entitlementId}/grants", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/resource_types", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/resource_types/{typeId}", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/resource_types/{typeId}/resources", ACTIVE, 200),
        row("GET", "/api/v1/apps/{appId}/resource_types/{typeId}/resources/{resourceId}", ACTIVE, 200),
        row("GET", "/api/v1/catalog", ACTIVE, 200),
        row("GET", "/api/v1/policies", ACTIVE, 200),
        row("GET", "/api/v1/policies/{id}", ACTIVE, 200),
        row("GET", "/api/v1/users", ACTIVE, 200),
        row("GET", "/api/v1/users/{id}", ACTIVE, 200),
        row("GET", "/api/v1/me", ACTIVE, 200),
        row("GET", "/api/v1/me/tasks", ACTIVE, 200),
        // Filtered to what the caller may see.
        row("GET", "/api/v1/grants", ACTIVE, 200),
        row("GET", "/api/v1/grants/history", ACTIVE, 200),
        row("GET", "/api/v1/grants/diff?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", ACTIVE, 200),
        row("GET", "/api/v1/reports/access", ACTIVE, 200),
        row("GET", "/api/v1/requests", ACTIVE, 200),
        row("POST", "/api/v1/requests/search", ACTIVE, 200).body(json!({})),
        // Audit: admins and auditors.
        row("GET", "/api/v1/events", &[Admin, Auditor], 200),
        row("GET", "/api/v1/events/stream", &[Admin, Auditor], 200),
        row("GET", "/api/v1/audit/checkpoints", &[Admin, Auditor], 200),
        row("POST", "/api/v1/audit/checkpoints", &[Admin, Auditor], 202).body(json!({"reason": "matrix"})),
        row("GET", "/api/v1/audit/proof?position=1&treeSize=1", &[Admin, Auditor], 200),
        row("GET", "/api/v1/audit/consistency?from=1&to=2", &[Admin, Auditor], 200),
        row("GET", "/api/v1/audit/keys", &[Admin, Auditor], 200),
        // Only those it concerns; to everyone else it does not exist.
        row(
            "GET",
            "/api/v1/requests/{requestId}",
            &[Admin, Auditor, Approver, ApproverDelegate, Requester, Beneficiary],
            200,
        )
        .hidden(SEES_REQUEST_NOT_ACTOR),
        row("GET", "/api/v1/users/{userId}/tasks", &[Admin, Approver, ApproverDelegate], 200)
            .hidden(&[Auditor, AppOwner, EntOwner, Manager, Requester, RequesterDelegate, Beneficiary, Stranger]),
        row("GET", "/api/v1/users/{id}/tokens", &[Admin, Requester], 200).hidden(NOT_REQUESTER),
        // Identities.
        row("POST", "/api/v1/users", &[Admin], 201).body(json!({"username": "NEWNAME"})),
        row("POST", "/api/v1/users/{id}", &[Admin], 200).body(json!({"displayName": "Changed"})),
        row("POST", "/api/v1/users/{id}/tokens", &[Admin, Requester], 201).hidden(NOT_REQUESTER),
        row("DELETE", "/api/v1/users/{id}/tokens/{tokenId}", &[Admin, Requester], 204)
            .hidden(NOT_REQUESTER),
        // Apps.
        row("POST", "/api/v1/apps", &[Admin], 201).body(json!({"displayName": "New"})),
        row("POST", "/api/v1/apps/{appId}", admin_app_owner, 200).body(json!({"description": "x"})),
        row("DELETE", "/api/v1/apps/{appId}", &[Admin], 200).inactive(),
        row("POST", "/api/v1/apps/{appId}/lifecycle/activate", &[Admin], 200).inactive(),
        row("POST", "/api/v1/apps/{appId}/lifecycle/deactivate", &[Admin], 200),
        row("PUT", "/api/v1/apps/{appId}/owners", &[Admin], 200).body(json!({"userIds": ["STRANGER"]})),
        row("POST", "/api/v1/apps/{appId}/owners/{userId}", admin_app_owner, 200),
        row("DELETE", "/api/v1/apps/{appId}/owners/{appOwnerId}", admin_app_owner, 200),
        row("POST", "/api/v1/apps/{appId}/versions/{version}/restore", admin_app_owner, 200),
        row("POST", "/api/v1/apps/{appId}/resource_types", admin_app_owner, 201)
            .body(json!({"displayName": "T2"})),
        row("POST", "/api/v1/apps/{appId}/resource_types/{typeId}/resources", admin_app_owner, 201)
            .body(json!({"displayName": "R2"})),
        // Entitlements.
        row("POST", "/api/v1/apps/{appId}/entitlements", admin_app_owner, 201)
            .body(json!({"displayName": "E3"})),
        row("POST", "/api/v1/apps/{appId}/entitlements/{entitlementId}", &[Admin, AppOwner, EntOwner], 200)
            .body(json!({"description": "x"})),
        row("DELETE", "/api/v1/apps/{appId}/entitlements/{entitlementId}", admin_app_owner, 200),
        row("PUT", "/api/v1/apps/{appId}/entitlements/{entitlementId}/owners", admin_app_owner, 200)
            .body(json!({"userIds": ["STRANGER"]})),
        row("POST", "/api/v1/apps/{appId}/entitlements/{entitlementId}/owners/{userId}", admin_app_owner, 200),
        row("DELETE", "/api/v1/apps/{appId}/entitlements/{entitlementId}/owners/{entOwnerId}", admin_app_owner, 200),
        // Direct grants (on the scene's second entitlement, held by the beneficiary).
        row("POST", "/api/v1/apps/{appId}/entitlements/{grantedId}/add-manual-user", admin_app_owner, 201)
            .body(json!({"userId": "STRANGER"})),
        row("POST", "/api/v1/apps/{appId}/entitlements/{grantedId}/users/{holderId}/revoke", admin_app_owner, 200),
        row("POST", "/api/v1/apps/{appId}/entitlements/{grantedId}/users/{holderId}/update-grant-duration", admin_app_owner, 200)
            .body(json!({"deprovisionAt": "2099-01-01T00:00:00Z"})),
        row("POST", "/api/v1/apps/{appId}/entitlements/{grantedId}/users/{holderId}/remove-grant-duration", admin_app_owner, 200),
        // Policies.
        row("POST", "/api/v1/policies", &[Admin], 201)
            .body(json!({"displayName": "P", "autoApprove": true, "steps": []})),
        row("POST", "/api/v1/policies/{id}", &[Admin], 200).body(json!({"description": "x"})),
        row("DELETE", "/api/v1/policies/{id}", &[Admin], 200),
        // Webhooks: admins manage them, admins and auditors read them.
        row("GET", "/api/v1/webhooks", &[Admin, Auditor], 200),
        row("GET", "/api/v1/webhooks/{webhookId}", &[Admin, Auditor], 200),
        row("GET", "/api/v1/webhooks/{webhookId}/deliveries", &[Admin, Auditor], 200),
        row("POST", "/api/v1/webhooks", &[Admin], 201)
            .body(json!({"url": "http://127.0.0.1:9/hook", "description": "x"})),
        row("POST", "/api/v1/webhooks/{webhookId}", &[Admin], 200).body(json!({"description": "y"})),
        row("DELETE", "/api/v1/webhooks/{webhookId}", &[Admin], 200),
        row(
            "POST",
            "/api/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry",
            &[Admin],
            202,
        ),
        // Provisioning tasks: the scene's task is manual, assigned to the
        // app's owners by default. Lists answer anyone their own.
        row("GET", "/api/v1/provisioning/tasks", ACTIVE, 200),
        row("GET", "/api/v1/provisioning/tasks/{taskId}", &[Admin, Auditor, AppOwner], 200)
            .hidden(&[EntOwner, Manager, Approver, ApproverDelegate, Requester, RequesterDelegate, Beneficiary, Stranger]),
        row("POST", "/api/v1/provisioning/tasks/{taskId}/complete", &[Admin, AppOwner], 200)
            .body(json!({"outcome": "done", "message": "account created"})),
        row("POST", "/api/v1/provisioning/tasks/{taskId}/retry", &[Admin], 200),
        // Access reviews: the scene's campaign covers its app, reviewed by
        // the Approver (so the ApproverDelegate stands in); its one item is
        // the Beneficiary's direct grant.
        row("GET", "/api/v1/reviews", &[Admin, Auditor], 200),
        row("GET", "/api/v1/reviews/{reviewId}", &[Admin, Auditor, Approver, ApproverDelegate], 200)
            .hidden(&[AppOwner, EntOwner, Manager, Requester, RequesterDelegate, Beneficiary, Stranger]),
        // Anyone reads their own items of a campaign (none, for most).
        row("GET", "/api/v1/reviews/{reviewId}/items", ACTIVE, 200),
        row("GET", "/api/v1/reviews/{reviewId}/items/{itemId}", &[Admin, Auditor, Approver, ApproverDelegate, Beneficiary], 200)
            .hidden(&[AppOwner, EntOwner, Manager, Requester, RequesterDelegate, Stranger]),
        row("GET", "/api/v1/reviews/{reviewId}/report", &[Admin, Auditor], 200),
        row("GET", "/api/v1/reviews/{reviewId}/reviewers", &[Admin, Auditor], 200),
        row("GET", "/api/v1/me/reviews", ACTIVE, 200),
        row("POST", "/api/v1/reviews", &[Admin], 201).body(json!({
            "displayName": "Q4", "scope": {"appIds": ["{appId}"]},
            "reviewers": {"type": "USERS", "userIds": ["STRANGER"]},
            "dueDate": "2098-01-01T00:00:00Z"})),
        row("POST", "/api/v1/reviews/{reviewId}/launch", &[Admin], 200),
        row("POST", "/api/v1/reviews/{reviewId}/close", &[Admin], 200),
        row("POST", "/api/v1/reviews/{reviewId}/items/{itemId}/decide", &[Admin, Approver, ApproverDelegate], 200)
            .body(json!({"decision": "certify"})),
        row("POST", "/api/v1/reviews/{reviewId}/decide", &[Admin, Approver, ApproverDelegate], 200)
            .body(json!({"itemIds": ["{itemId}"], "decision": "certify"})),
        row("POST", "/api/v1/reviews/{reviewId}/items/{itemId}/reassign", &[Admin, Approver, ApproverDelegate], 200)
            .body(json!({"toUserIds": ["STRANGER"]})),
        row("POST", "/api/v1/reviews/{reviewId}/items/{itemId}/comment", &[Admin, Approver, ApproverDelegate, Beneficiary], 200)
            .body(json!({"comment": "needed for month end"})),
        // Requests: anyone asks for themselves.
        row("POST", "/api/v1/requests", ACTIVE, 201)
            .body(json!({"catalogs": [{"type": "entitlement", "id": "ENTITLEMENT"}], "justification": "x"})),
        row("POST", "/api/v1/requests/validate", ACTIVE, 200)
            .body(json!({"catalogs": [{"type": "entitlement", "id": "ENTITLEMENT"}], "justification": "x"})),
        // Actions on the scene's request.
        row("POST", "/api/v1/requests/{requestId}/approve", DECIDERS, 200)
            .body(json!({}))
            .hidden(SEES_REQUEST_NOT_ACTOR),
        row("POST", "/api/v1/requests/{requestId}/reject", DECIDERS, 200)
            .body(json!({}))
            .hidden(SEES_REQUEST_NOT_ACTOR),
        row("POST", "/api/v1/requests/{requestId}/reassign", DECIDERS, 200)
            .body(json!({"toUserIds": ["STRANGER"]}))
            .hidden(SEES_REQUEST_NOT_ACTOR),
        row("POST", "/api/v1/requests/{requestId}/modify", DECIDERS, 200)
            .body(json!({"endDate": "2099-01-01T00:00:00Z"}))
            .hidden(SEES_REQUEST_NOT_ACTOR),
        row(
            "POST",
            "/api/v1/requests/{requestId}/comment",
            &[Admin, Approver, ApproverDelegate, Requester, Beneficiary],
            200,
        )
        .body(json!({"comment": "hello"}))
        .hidden(SEES_REQUEST_NOT_ACTOR),
        row("POST", "/api/v1/requests/{requestId}/cancel", &[Admin, Requester], 200)
            .body(json!({}))
            .hidden(SEES_REQUEST_NOT_ACTOR),
    ]
}

/// The OpenAPI path a row stands for (its placeholders renamed back).
fn openapi_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.replace("{requestId}", "{id}")
        .replace("{appOwnerId}", "{userId}")
        .replace("{entOwnerId}", "{userId}")
        .replace("{grantedId}", "{entitlementId}")
        .replace("{holderId}", "{userId}")
}

struct World {
    s: Server,
    _dir: tempfile::TempDir,
    /// (who, user id, token)
    people: Vec<(Who, String, String)>,
}

impl World {
    fn token(&self, who: Who) -> Option<&str> {
        self.people
            .iter()
            .find(|p| p.0 == who)
            .map(|p| p.2.as_str())
    }
    fn id(&self, who: Who) -> &str {
        &self.people.iter().find(|p| p.0 == who).unwrap().1
    }

    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, _, v) =
            common::send(method, self.s.url(path), ADMIN, Some(body.clone())).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} {body}: {status} {v}"
        );
        v
    }

    async fn head(&self) -> String {
        common::log_head(&self.s).await
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("IGA_ADMIN_TOKEN", ADMIN)]);
    let mut w = World {
        s,
        _dir: dir,
        people: vec![(Admin, "admin".into(), ADMIN.into())],
    };
    // Created in an order that lets each name the ones before.
    let order = [
        Auditor,
        AppOwner,
        EntOwner,
        Manager,
        ApproverDelegate,
        Approver,
        RequesterDelegate,
        Requester,
        Beneficiary,
        Stranger,
        Disabled,
        Revoked,
        Expired,
    ];
    for who in order {
        let mut body = json!({"username": format!("{who:?}").to_lowercase()});
        match who {
            Auditor => body["roles"] = json!(["auditor"]),
            Approver => body["delegatedUserId"] = json!(w.id(ApproverDelegate)),
            Requester => body["delegatedUserId"] = json!(w.id(RequesterDelegate)),
            Beneficiary => body["managerIds"] = json!([w.id(Requester), w.id(Manager)]),
            _ => {}
        }
        let u = w.admin("POST", "/api/v1/users", body).await;
        let id = u["id"].as_str().unwrap().to_string();
        let token_body = if who == Expired {
            let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            json!({"expiresAt": soon})
        } else {
            json!({})
        };
        let t = w
            .admin("POST", &format!("/api/v1/users/{id}/tokens"), token_body)
            .await;
        w.people
            .push((who, id, t["token"].as_str().unwrap().to_string()));
        if who == Revoked {
            let (status, _, _) = common::send(
                "DELETE",
                w.s.url(&format!(
                    "/api/v1/users/{}/tokens/{}",
                    w.id(Revoked),
                    t["id"].as_str().unwrap()
                )),
                ADMIN,
                None,
            )
            .await;
            assert_eq!(status, 204);
        }
    }
    w.admin(
        "POST",
        &format!("/api/v1/users/{}", w.id(Disabled)),
        json!({"status": "DISABLED"}),
    )
    .await;
    // Every live token authenticates; the expired one has stopped.
    let head = w.head().await;
    for who in ACTIVE {
        let (s, _) = get(&w, w.token(*who), "/api/v1/me", &head).await;
        assert_eq!(s, 200, "{who:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&w, w.token(Expired), "/api/v1/me", &head).await.0 != 401 {
        assert!(Instant::now() < deadline, "the expired token still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w
}

async fn get(w: &World, token: Option<&str>, path: &str, pos: &str) -> (u16, Value) {
    let mut req = client()
        .get(w.s.url(path))
        .header("X-Consistency-Token", pos);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    if path.ends_with("/stream") {
        return (status, Value::Null); // a live stream: the status is the answer
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What the placeholders of one scene stand for.
struct Scene {
    subs: Vec<(&'static str, String)>,
}

impl Scene {
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.subs {
            out = out.replace(k, v);
        }
        out
    }
}

/// A fresh app (owned by AppOwner) with a resource type and resource, an
/// entitlement (owned by EntOwner) under a policy whose one step is the
/// Approver, a request for it by the Requester for the Beneficiary, and a
/// second entitlement granted directly to the Beneficiary.
async fn scene(w: &World, row: &Row) -> Scene {
    let inactive_app = row.inactive_app;
    let policy = w
        .admin(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "One approver", "steps": [
                {"name": "Approver", "approvers": {"type": "USERS", "userIds": [w.id(Approver)]}}]}),
        )
        .await;
    let policy = policy["id"].as_str().unwrap().to_string();
    let app = w
        .admin(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Target", "ownerIds": [w.id(AppOwner)]}),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_string();
    let rt = w
        .admin(
            "POST",
            &format!("/api/v1/apps/{app}/resource_types"),
            json!({"displayName": "T"}),
        )
        .await;
    let rt = rt["id"].as_str().unwrap().to_string();
    let res = w
        .admin(
            "POST",
            &format!("/api/v1/apps/{app}/resource_types/{rt}/resources"),
            json!({"displayName": "R"}),
        )
        .await;
    let ent = w
        .admin(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements"),
            json!({"displayName": "E", "ownerIds": [w.id(EntOwner)], "grantPolicyId": policy}),
        )
        .await;
    let ent = ent["id"].as_str().unwrap().to_string();
    let granted = w
        .admin(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements"),
            json!({"displayName": "Granted", "ownerIds": [w.id(EntOwner)]}),
        )
        .await;
    let granted = granted["id"].as_str().unwrap().to_string();
    w.admin(
        "POST",
        &format!("/api/v1/apps/{app}/entitlements/{granted}/add-manual-user"),
        json!({"userId": w.id(Beneficiary), "deprovisionAt": "2098-01-01T00:00:00Z"}),
    )
    .await;
    let (status, _, req) = common::send(
        "POST",
        w.s.url("/api/v1/requests"),
        w.token(Requester).unwrap(),
        Some(
            json!({"users": [w.id(Beneficiary)], "catalogs": [{"type": "entitlement", "id": ent}],
                    "justification": "needed"}),
        ),
    )
    .await;
    assert_eq!((status, &req["errors"]), (201, &json!([])), "{req}");
    let request = req["result"][0].as_str().unwrap().to_string();
    // A spare token of the Requester's to revoke (only where one is revoked:
    // a user holds a bounded number).
    let token = if row.path.contains("{tokenId}") {
        w.admin(
            "POST",
            &format!("/api/v1/users/{}/tokens", w.id(Requester)),
            json!({"description": "spare"}),
        )
        .await
    } else {
        json!({"id": "none"})
    };
    if inactive_app {
        w.admin(
            "POST",
            &format!("/api/v1/apps/{app}/lifecycle/deactivate"),
            json!(null),
        )
        .await;
    }
    // A webhook subscribed to nothing (so nothing is delivered meanwhile),
    // or, for a delivery's route, to new users at a receiver that answers
    // 400: the delivery fails at once, for good (nothing moves after it).
    let refusing = if row.path.contains("{deliveryId}") {
        Some(common::receiver::receiver(&[400; 16]).await)
    } else {
        None
    };
    let webhook = if let Some(rx) = &refusing {
        w.admin(
            "POST",
            "/api/v1/webhooks",
            json!({"url": rx.url, "eventTypes": ["iga.v1.UserCreated"]}),
        )
        .await
    } else if row.path.contains("{webhookId}") {
        w.admin(
            "POST",
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await
    } else {
        json!({"id": "none"})
    };
    let delivery = if row.path.contains("{deliveryId}") {
        let hook = webhook["id"].as_str().unwrap().to_string();
        w.admin(
            "POST",
            "/api/v1/users",
            json!({"username": format!("subject-{}", uuid::Uuid::now_v7().simple())}),
        )
        .await;
        let failed = common::eventually("a failed delivery to the scene's webhook", || async {
            let (_, list) = get(
                w,
                Some(ADMIN),
                &format!("/api/v1/webhooks/{hook}/deliveries?status=failed"),
                &w.head().await,
            )
            .await;
            list["list"][0]["id"].as_str().map(str::to_string)
        })
        .await;
        // Subscribed to nothing from now on: later scenes' users go nowhere.
        w.admin(
            "POST",
            &format!("/api/v1/webhooks/{hook}"),
            json!({"eventTypes": []}),
        )
        .await;
        failed
    } else {
        "none".into()
    };
    // A manual provisioning task, opened by the provisioning reactor once
    // the grant is issued.
    let task = if row.path.contains("{taskId}") {
        let manual = w
            .admin(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements"),
                json!({"displayName": "Manual", "provisioning": {"mode": "manual"}}),
            )
            .await;
        let manual = manual["id"].as_str().unwrap().to_string();
        let grant = w
            .admin(
                "POST",
                &format!("/api/v1/apps/{app}/entitlements/{manual}/add-manual-user"),
                json!({"userId": w.id(Beneficiary)}),
            )
            .await;
        assert_eq!(grant["state"], "pending", "{grant}");
        let grant = grant["id"].as_str().unwrap().to_string();
        common::eventually("the grant's provision task", || async {
            let (_, tasks) = get(
                w,
                Some(ADMIN),
                &format!("/api/v1/provisioning/tasks?grantId={grant}"),
                &w.head().await,
            )
            .await;
            tasks["list"][0]["id"].as_str().map(str::to_string)
        })
        .await
    } else {
        "none".into()
    };
    // An access review of the app by the Approver: a draft for its launch's
    // route, else launched, with its items open.
    let (review, item) = if row.path.contains("{reviewId}") {
        let review = w
            .admin(
                "POST",
                "/api/v1/reviews",
                json!({"displayName": "Scene review", "scope": {"appIds": [app]},
                       "reviewers": {"type": "USERS", "userIds": [w.id(Approver)]},
                       "dueDate": "2098-01-01T00:00:00Z"}),
            )
            .await;
        let review = review["id"].as_str().unwrap().to_string();
        if row.path.ends_with("/launch") {
            (review, "none".to_string())
        } else {
            w.admin(
                "POST",
                &format!("/api/v1/reviews/{review}/launch"),
                json!(null),
            )
            .await;
            let item = common::eventually("the scene review's item", || async {
                let head = w.head().await;
                let (_, r) = get(w, Some(ADMIN), &format!("/api/v1/reviews/{review}"), &head).await;
                if r["itemsListed"] != true {
                    return None;
                }
                let (_, items) = get(
                    w,
                    Some(ADMIN),
                    &format!("/api/v1/reviews/{review}/items"),
                    &head,
                )
                .await;
                items["list"][0]["id"].as_str().map(str::to_string)
            })
            .await;
            (review, item)
        }
    } else {
        ("none".to_string(), "none".to_string())
    };
    let name = format!("user-{}", uuid::Uuid::now_v7().simple()).to_lowercase();
    Scene {
        subs: vec![
            ("{requestId}", request),
            ("{appId}", app.clone()),
            ("{typeId}", rt.clone()),
            ("{resourceId}", res["id"].as_str().unwrap().to_string()),
            ("{grantedId}", granted),
            ("{holderId}", w.id(Beneficiary).to_string()),
            ("{entitlementId}", ent.clone()),
            ("/policies/{id}", format!("/policies/{policy}")),
            (
                "/users/{userId}/tasks",
                format!("/users/{}/tasks", w.id(Approver)),
            ),
            ("/users/{id}", format!("/users/{}", w.id(Requester))),
            ("{tokenId}", token["id"].as_str().unwrap().to_string()),
            ("{webhookId}", webhook["id"].as_str().unwrap().to_string()),
            ("{taskId}", task),
            ("{deliveryId}", delivery),
            ("{reviewId}", review),
            ("{itemId}", item),
            ("{appOwnerId}", w.id(AppOwner).to_string()),
            ("{entOwnerId}", w.id(EntOwner).to_string()),
            ("{userId}", w.id(Stranger).to_string()),
            ("{version}", "1".into()),
            ("ENTITLEMENT", ent),
            ("STRANGER", w.id(Stranger).to_string()),
            ("NEWNAME", name),
        ],
    }
}

async fn call(w: &World, who: Who, row: &Row, scene: &Scene) -> (u16, Value) {
    let path = scene.fill(row.path);
    let token = w.token(who);
    if row.method == "GET" {
        return get(w, token, &path, &w.head().await).await;
    }
    let c = client();
    let mut req = match row.method {
        "POST" => c.post(w.s.url(&path)),
        "PUT" => c.put(w.s.url(&path)),
        "DELETE" => c.delete(w.s.url(&path)),
        other => panic!("{other}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = &row.body {
        let text = scene.fill(&b.to_string());
        req = req.header("Content-Type", "application/json").body(text);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_with_every_kind_of_principal() {
    let w = world().await;
    let rows = rows();
    // The router's routes, from the OpenAPI document it serves.
    let doc: Value = client()
        .get(w.s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/api/v1/"))
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.to_string(), openapi_path(r.path)))
        .collect();
    let missing: Vec<_> = served.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the matrix: {missing:?}"
    );
    assert!(stale.is_empty(), "rows without a route: {stale:?}");
    assert_eq!(rows.len(), covered.len(), "two rows for one route");

    let mut checked = 0;
    let mut failures = Vec::new();
    for row in &rows {
        // Everyone refused, on one scene: each answers as expected and
        // nothing changes.
        let shared = scene(&w, row).await;
        for who in ACTIVE.iter().chain(DEAD) {
            if row.allowed.contains(who) && !DEAD.contains(who) {
                continue;
            }
            let expected = if DEAD.contains(who) {
                401
            } else if row.hidden.contains(who) {
                404
            } else {
                403
            };
            let before = w.head().await;
            let (status, body) = call(&w, *who, row, &shared).await;
            let after = w.head().await;
            checked += 1;
            if status != expected {
                failures.push(format!(
                    "{who:?} {} {}: {status}, expected {expected}: {body}",
                    row.method, row.path
                ));
            }
            if before != after {
                failures.push(format!(
                    "{who:?} {} {}: refused, yet the log moved from {before} to {after}",
                    row.method, row.path
                ));
            }
        }
        // Everyone allowed, each on a fresh scene (writes use theirs up).
        for who in row.allowed {
            let scene = if row.method == "GET" {
                &shared
            } else {
                &scene(&w, row).await
            };
            let (status, body) = call(&w, *who, row, scene).await;
            checked += 1;
            if status != row.ok {
                failures.push(format!(
                    "{who:?} {} {}: {status}, expected {}: {body}",
                    row.method, row.path, row.ok
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} calls answered otherwise:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, rows.len() * (ACTIVE.len() + DEAD.len()));
}
