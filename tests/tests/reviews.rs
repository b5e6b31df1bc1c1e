//! Access reviews end to end, on every topology: a campaign over an app
//! with grants from a request and direct grants; reviewers see only their
//! items; the app owner's own grant goes to the fallback reviewer; the
//! user, strangers and a reviewer of another item are refused; a delegate
//! decides for the reviewer; a revoke ends the grant (reason `review`) and
//! is final; bulk decisions say what happened to each item; closing applies
//! `onDue`; the report (JSON and CSV) matches the decisions. Also: the due
//! date closes a campaign by itself across a restart, and two reviewers
//! revoking one item at once leave one decision and one effect.

mod common;

use common::{eventually, send, Api};
use serde_json::{json, Value};

const ADMIN: &str = "reviews-admin-token-0123456789-abcdefg";

async fn as_user(api: &Api, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let (s, _, v) = send(method, api.s.url(path), token, Some(body)).await;
    (s, v)
}

/// GET as `token`, once the read models include every write so far.
async fn get_as(api: &Api, token: &str, path: &str) -> (u16, Value) {
    let r = common::client()
        .get(api.s.url(path))
        .bearer_auth(token)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn due_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn app_with_entitlement(api: &Api, owner: &str) -> (String, String) {
    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Payroll", "ownerIds": [owner]}),
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

/// A direct grant of `ent` to `user`; answers the grant id.
async fn grant(api: &Api, app: &str, ent: &str, user: &str) -> String {
    let (_, g) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements/{ent}/add-manual-user"),
            json!({"userId": user}),
        )
        .await;
    g["id"].as_str().unwrap().to_string()
}

/// Creates and launches a campaign; answers its id once every item is open.
async fn launched(api: &Api, body: Value) -> (String, Value) {
    let (_, created) = api.ok("POST", "/api/v1/reviews", body).await;
    assert_eq!(created["status"], "draft", "{created}");
    assert_eq!(created["progress"]["total"], 0, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, active) = api
        .ok("POST", &format!("/api/v1/reviews/{id}/launch"), json!({}))
        .await;
    assert_eq!(active["status"], "active", "{active}");
    let review = eventually("the launch's items", || async {
        let (_, r) = api
            .read(
                &format!("/api/v1/reviews/{id}"),
                &common::log_head(&api.s).await,
            )
            .await;
        (r["itemsListed"] == true).then_some(r)
    })
    .await;
    (id, review)
}

/// The campaign's items, by the user whose access each is.
async fn items_by_user(api: &Api, review: &str) -> std::collections::HashMap<String, Value> {
    let (s, v) = api
        .read(
            &format!("/api/v1/reviews/{review}/items?pageSize=100"),
            &common::log_head(&api.s).await,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["userId"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["list"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_reviews_an_apps_grants_and_its_revokes_end_them() {
    let api = Api::start(ADMIN);
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    let carl = api.user("carl").await;
    let cfo = api.user("cfo").await;
    let eve = api.user("eve").await;
    let dana = api.user("dana").await;
    let late = api.user("late").await;
    // Dana stands in for the owner.
    api.ok(
        "POST",
        &format!("/api/v1/users/{}", owner.0),
        json!({"delegatedUserId": dana.0}),
    )
    .await;
    let (app, ent) = app_with_entitlement(&api, &owner.0).await;
    let (other_app, other_ent) = app_with_entitlement(&api, &eve.0).await;

    // Ben's grant comes from a request the owner approved; Carl's and the
    // owner's own are direct; Ben's grant on another app is out of scope.
    let (s, req) = as_user(
        &api,
        &ben.1,
        "POST",
        "/api/v1/requests",
        json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "payroll run"}),
    )
    .await;
    assert_eq!(s, 201, "{req}");
    let rid = req["result"][0].as_str().unwrap().to_string();
    let (s, approved) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/requests/{rid}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{approved}");
    let ben_grant = approved["grantId"].as_str().unwrap().to_string();
    let carl_grant = grant(&api, &app, &ent, &carl.0).await;
    let owner_grant = grant(&api, &app, &ent, &owner.0).await;
    grant(&api, &other_app, &other_ent, &ben.0).await;

    let body = json!({
        "displayName": "Q4 payroll",
        "scope": {"appIds": [app]},
        "reviewers": {"type": "APP_OWNERS"},
        "fallbackReviewerIds": [cfo.0],
        "dueDate": due_in(3600),
        "onDue": "revoke",
        "requireJustification": {"revoke": true},
    });
    // Only an admin creates one; a campaign that cannot run is refused.
    let (s, v) = as_user(&api, &owner.1, "POST", "/api/v1/reviews", body.clone()).await;
    assert_eq!(s, 403, "{v}");
    let mut past = body.clone();
    past["dueDate"] = json!(due_in(-60));
    let (s, _, v) = api
        .write("POST", "/api/v1/reviews", ADMIN, Some(past))
        .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (422, Some("dueDate"))
    );
    let mut nobody = body.clone();
    nobody["fallbackReviewerIds"] = json!(["no-such-user"]);
    let (s, _, v) = api
        .write("POST", "/api/v1/reviews", ADMIN, Some(nobody))
        .await;
    assert_eq!(s, 422, "{v}");

    let (review, launched_review) = launched(&api, body).await;
    assert_eq!(
        launched_review["progress"],
        json!({"total": 3, "certified": 0, "revoked": 0, "pending": 3})
    );
    // A grant that starts after the launch is not in it.
    grant(&api, &app, &ent, &late.0).await;
    let items = items_by_user(&api, &review).await;
    let mut users: Vec<&String> = items.keys().collect();
    users.sort();
    let mut expected = vec![&ben.0, &carl.0, &owner.0];
    expected.sort();
    assert_eq!(users, expected, "the grants held at launch, in scope");
    let (ben_item, carl_item, owner_item) = (
        items[&ben.0]["id"].as_str().unwrap().to_string(),
        items[&carl.0]["id"].as_str().unwrap().to_string(),
        items[&owner.0]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(items[&ben.0]["grantId"], ben_grant.as_str());
    assert_eq!(items[&carl.0]["grantId"], carl_grant.as_str());
    assert_eq!(items[&owner.0]["grantId"], owner_grant.as_str());
    // The item carries its grant's trail: the request and its approval.
    assert_eq!(items[&ben.0]["grant"]["requestId"], rid.as_str());
    assert_eq!(
        items[&ben.0]["grant"]["approvals"][0]["userId"],
        owner.0.as_str()
    );
    // Nobody reviews their own access: the owner's item is the fallback's.
    assert_eq!(items[&owner.0]["reviewerIds"], json!([cfo.0]));
    assert_eq!(items[&owner.0]["fallback"], true);
    assert_eq!(items[&ben.0]["reviewerIds"], json!([owner.0]));

    // Each reviewer's inbox holds their items only.
    let mut mine = vec![ben_item.clone(), carl_item.clone()];
    mine.sort();
    assert_eq!(
        ids(&get_as(&api, &owner.1, "/api/v1/me/reviews").await.1),
        mine
    );
    assert_eq!(
        ids(&get_as(&api, &cfo.1, "/api/v1/me/reviews").await.1),
        vec![owner_item.clone()]
    );
    for who in [&ben.1, &eve.1] {
        assert_eq!(
            ids(&get_as(&api, who, "/api/v1/me/reviews").await.1),
            Vec::<String>::new()
        );
    }
    // A stranger reads no one else's items, list or report.
    let (s, _) = get_as(
        &api,
        &eve.1,
        &format!("/api/v1/reviews/{review}/items?reviewerId={}", owner.0),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = get_as(&api, &eve.1, &format!("/api/v1/reviews/{review}")).await;
    assert_eq!(s, 404);
    let (s, _) = get_as(&api, &eve.1, "/api/v1/reviews").await;
    assert_eq!(s, 403);
    let (s, _) = get_as(&api, &owner.1, &format!("/api/v1/reviews/{review}/report")).await;
    assert_eq!(s, 403);
    // The delegate sees what the reviewer sees.
    let (s, v) = get_as(
        &api,
        &dana.1,
        &format!("/api/v1/reviews/{review}/items?reviewerId={}", owner.0),
    )
    .await;
    assert_eq!((s, ids(&v)), (200, mine.clone()));

    let decide = |item: &str| format!("/api/v1/reviews/{review}/items/{item}/decide");
    // The user, a stranger, and the owner on their own access are refused.
    for (who, item) in [
        (&ben.1, &ben_item),
        (&eve.1, &carl_item),
        (&owner.1, &owner_item),
    ] {
        let (s, v) = as_user(
            &api,
            who,
            "POST",
            &decide(item),
            json!({"decision": "certify"}),
        )
        .await;
        assert_eq!(s, 403, "{v}");
    }
    // An item of another campaign is not found under this one.
    let (s, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/reviews/other/items/{ben_item}/decide"),
        json!({"decision": "certify"}),
    )
    .await;
    assert_eq!(s, 404);
    // This campaign asks why for a revoke.
    let (s, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &decide(&ben_item),
        json!({"decision": "revoke"}),
    )
    .await;
    assert_eq!(
        (s, v["errors"][0]["field"].as_str()),
        (422, Some("justification"))
    );

    // Ben may say why he needs it.
    let (s, v) = as_user(
        &api,
        &ben.1,
        "POST",
        &format!("/api/v1/reviews/{review}/items/{ben_item}/comment"),
        json!({"comment": "I run payroll every month"}),
    )
    .await;
    assert_eq!(
        (s, v["comments"][0]["authorId"].as_str()),
        (200, Some(ben.0.as_str()))
    );

    // The delegate certifies Carl's for the owner.
    let (s, v) = as_user(
        &api,
        &dana.1,
        "POST",
        &decide(&carl_item),
        json!({"decision": "certify"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["decision"].as_str(),
            v["decidedBy"].as_str(),
            v["onBehalfOf"].as_str()
        ),
        (
            Some("certify"),
            Some(dana.0.as_str()),
            Some(owner.0.as_str())
        )
    );
    // The owner certifies Ben's, then changes their mind: both are kept.
    let (s, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &decide(&ben_item),
        json!({"decision": "certify"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &decide(&ben_item),
        json!({"decision": "revoke", "justification": "moved to sales"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["decisions"].as_array().unwrap().len(), 2);
    // The revoke ended the grant, with the review as its reason.
    let ended = eventually("ben's grant ended by the review", || async {
        let (_, h) = api
            .read(
                &format!("/api/v1/grants/history?userId={}", ben.0),
                &common::log_head(&api.s).await,
            )
            .await;
        h["list"]
            .as_array()?
            .iter()
            .find(|g| g["id"] == ben_grant.as_str() && !g["deletedAt"].is_null())
            .cloned()
    })
    .await;
    assert_eq!(ended["revokeReason"], "review", "{ended}");
    // A revoke is final.
    let (s, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &decide(&ben_item),
        json!({"decision": "certify"}),
    )
    .await;
    assert_eq!(s, 409);
    // The item shows its grant ended.
    let item = eventually("the item's grant end", || async {
        let (_, i) = api
            .read(
                &format!("/api/v1/reviews/{review}/items/{ben_item}"),
                &common::log_head(&api.s).await,
            )
            .await;
        (!i["grantEndedAt"].is_null()).then_some(i)
    })
    .await;
    assert_eq!(item["decision"], "revoke");

    // In bulk: what the fallback reviewer may decide is decided, the rest
    // says why not.
    let (s, v) = as_user(
        &api,
        &cfo.1,
        "POST",
        &format!("/api/v1/reviews/{review}/decide"),
        json!({"itemIds": [carl_item, owner_item, "no-such-item"], "decision": "certify"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let statuses: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![403, 200, 404], "{v}");
    assert_eq!(
        (v["decided"].as_u64(), v["refused"].as_u64()),
        (Some(1), Some(2))
    );

    // Reassigning never reaches the user.
    let reassign = format!("/api/v1/reviews/{review}/items/{carl_item}/reassign");
    let (s, _) = as_user(
        &api,
        &owner.1,
        "POST",
        &reassign,
        json!({"toUserIds": [carl.0]}),
    )
    .await;
    assert_eq!(s, 422);
    let (s, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &reassign,
        json!({"toUserIds": [cfo.0]}),
    )
    .await;
    assert_eq!((s, v["reviewerIds"].clone()), (200, json!([cfo.0])));

    let (_, r) = api
        .read(
            &format!("/api/v1/reviews/{review}"),
            &common::log_head(&api.s).await,
        )
        .await;
    assert_eq!(
        r["progress"],
        json!({"total": 3, "certified": 2, "revoked": 1, "pending": 0}),
        "{r}"
    );

    // Each reviewer's share.
    let (s, shares) = api
        .read(
            &format!("/api/v1/reviews/{review}/reviewers"),
            &common::log_head(&api.s).await,
        )
        .await;
    assert_eq!(s, 200, "{shares}");
    let share = |who: &str| {
        shares
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reviewerId"] == who)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // The owner's two items went to the CFO (Carl's, reassigned) and stayed
    // (Ben's, revoked); the CFO has the owner's own and Carl's, certified.
    assert_eq!(
        share(&owner.0),
        json!({"reviewerId": owner.0, "total": 1, "certified": 0, "revoked": 1, "pending": 0})
    );
    assert_eq!(
        share(&cfo.0),
        json!({"reviewerId": cfo.0, "total": 2, "certified": 2, "revoked": 0, "pending": 0})
    );

    // The report matches the decisions, in JSON and CSV.
    let report = common::client()
        .get(
            api.s
                .url(&format!("/api/v1/reviews/{review}/report?format=json")),
        )
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let report: Value = report.json().await.unwrap();
    assert_eq!(report["review"]["id"], review.as_str());
    let decisions: std::collections::HashMap<String, (String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["userId"].as_str().unwrap().to_string(),
                (
                    i["decision"].as_str().unwrap().to_string(),
                    i["decidedBy"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(decisions[&ben.0], ("revoke".to_string(), owner.0.clone()));
    assert_eq!(decisions[&carl.0], ("certify".to_string(), dana.0.clone()));
    assert_eq!(decisions[&owner.0], ("certify".to_string(), cfo.0.clone()));
    let csv = common::client()
        .get(
            api.s
                .url(&format!("/api/v1/reviews/{review}/report?format=csv")),
        )
        .bearer_auth(ADMIN)
        .header("X-Consistency-Token", common::log_head(&api.s).await)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("itemId,grantId,userId"), "{csv}");
    let ben_row = lines.iter().find(|l| l.contains(&ben_item)).unwrap();
    assert!(
        ben_row.contains("revoke") && ben_row.contains("moved to sales") && ben_row.contains(&rid),
        "{ben_row}"
    );

    // Closing: once closed, nothing more is decided.
    let (_, closed) = api
        .ok(
            "POST",
            &format!("/api/v1/reviews/{review}/close"),
            json!({}),
        )
        .await;
    assert_eq!(
        (closed["status"].as_str(), closed["closedReason"].as_str()),
        (Some("closed"), Some("closed"))
    );
    let (s, _) = as_user(
        &api,
        &cfo.1,
        "POST",
        &decide(&carl_item),
        json!({"decision": "certify", "justification": "x"}),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(
        ids(&get_as(&api, &cfo.1, "/api/v1/me/reviews").await.1),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_applies_on_due_and_the_due_date_closes_by_itself_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    let carl = api.user("carl").await;
    let (app, ent) = app_with_entitlement(&api, &owner.0).await;
    let ben_grant = grant(&api, &app, &ent, &ben.0).await;
    let carl_grant = grant(&api, &app, &ent, &carl.0).await;

    // Closed by an admin: onDue revokes the undecided item, ending its grant.
    let (revoking, _) = launched(
        &api,
        json!({
            "displayName": "Closed early",
            "scope": {"appIds": [app], "userIds": [ben.0]},
            "reviewers": {"type": "USERS", "userIds": [owner.0]},
            "dueDate": due_in(3600),
            "onDue": "revoke",
        }),
    )
    .await;
    api.ok(
        "POST",
        &format!("/api/v1/reviews/{revoking}/close"),
        json!({}),
    )
    .await;
    let item = eventually("onDue applied", || async {
        let (_, v) = api
            .read(
                &format!("/api/v1/reviews/{revoking}/items"),
                &common::log_head(&api.s).await,
            )
            .await;
        let item = v["list"][0].clone();
        (item["decision"] == "revoke").then_some(item)
    })
    .await;
    assert_eq!(item["decidedBy"], "system");
    assert_eq!(item["grantId"], ben_grant.as_str());
    eventually("ben's grant ended at closing", || async {
        let (_, h) = api
            .read(
                &format!("/api/v1/grants/history?userId={}", ben.0),
                &common::log_head(&api.s).await,
            )
            .await;
        h["list"]
            .as_array()?
            .iter()
            .find(|g| g["id"] == ben_grant.as_str() && g["revokeReason"] == "review")
            .cloned()
    })
    .await;

    // Due in a few seconds, certifying what is left; the server stops
    // before then and the campaign still closes on time once it is back.
    let (due, _) = launched(
        &api,
        json!({
            "displayName": "Due soon",
            "scope": {"appIds": [app]},
            "reviewers": {"type": "APP_OWNERS"},
            "dueDate": due_in(4),
            "onDue": "certify",
        }),
    )
    .await;
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    let api = Api::start_in(dir.path(), ADMIN);
    let closed = eventually("the due date closing the campaign", || async {
        let (_, r) = api
            .read(
                &format!("/api/v1/reviews/{due}"),
                &common::log_head(&api.s).await,
            )
            .await;
        (r["status"] == "closed").then_some(r)
    })
    .await;
    assert_eq!(closed["closedReason"], "due", "{closed}");
    let item = eventually("onDue certifying carl's item", || async {
        let (_, v) = api
            .read(
                &format!("/api/v1/reviews/{due}/items"),
                &common::log_head(&api.s).await,
            )
            .await;
        let item = v["list"].as_array()?.first()?.clone();
        (item["decision"] == "certify").then_some(item)
    })
    .await;
    assert_eq!(
        item["grantId"],
        carl_grant.as_str(),
        "only carl's grant was held at launch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reviewers_revoking_one_item_at_once_leave_one_decision_and_one_effect() {
    let api = Api::start(ADMIN);
    let owner = api.user("owner").await;
    let r1 = api.user("r1").await;
    let r2 = api.user("r2").await;
    let (app, ent) = app_with_entitlement(&api, &owner.0).await;
    let mut users = Vec::new();
    for n in 0..6 {
        let u = api.user(&format!("user{n}")).await;
        grant(&api, &app, &ent, &u.0).await;
        users.push(u);
    }
    let (review, _) = launched(
        &api,
        json!({
            "displayName": "Race",
            "scope": {"appIds": [app]},
            "reviewers": {"type": "USERS", "userIds": [r1.0, r2.0]},
            "dueDate": due_in(3600),
        }),
    )
    .await;
    let items = items_by_user(&api, &review).await;
    assert_eq!(items.len(), 6);
    for (user, item) in &items {
        let path = format!(
            "/api/v1/reviews/{review}/items/{}/decide",
            item["id"].as_str().unwrap()
        );
        let (a, b) = tokio::join!(
            as_user(
                &api,
                &r1.1,
                "POST",
                &path,
                json!({"decision": "revoke", "justification": "r1"})
            ),
            as_user(
                &api,
                &r2.1,
                "POST",
                &path,
                json!({"decision": "revoke", "justification": "r2"})
            ),
        );
        let mut statuses = vec![a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, vec![200, 409], "{} {}", a.1, b.1);
        let (_, i) = api
            .read(
                &format!(
                    "/api/v1/reviews/{review}/items/{}",
                    item["id"].as_str().unwrap()
                ),
                &common::log_head(&api.s).await,
            )
            .await;
        assert_eq!(i["decisions"].as_array().unwrap().len(), 1, "{i}");
        // One effect: the grant ended once, by the review.
        let ended = eventually("the grant ended", || async {
            let (_, h) = api
                .read(
                    &format!("/api/v1/grants/history?userId={user}"),
                    &common::log_head(&api.s).await,
                )
                .await;
            let list = h["list"].as_array()?.clone();
            list.iter()
                .all(|g| !g["deletedAt"].is_null())
                .then_some(list)
        })
        .await;
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0]["revokeReason"], "review");
    }
    let (s, events) = api
        .read(
            "/api/v1/events?eventType=iga.v1.GrantEnded&limit=1000",
            &common::log_head(&api.s).await,
        )
        .await;
    assert_eq!(s, 200, "{events}");
    assert_eq!(
        events["list"].as_array().unwrap().len(),
        6,
        "one GrantEnded per revoked grant: {events}"
    );
}

/// The one provisioning task of `grant` doing `action`, once it is open.
async fn task_of(api: &Api, grant: &str, action: &str) -> Value {
    eventually(&format!("the {action} task of grant {grant}"), || async {
        let (_, v) = api
            .read(
                &format!("/api/v1/provisioning/tasks?grantId={grant}"),
                &common::log_head(&api.s).await,
            )
            .await;
        v["list"]
            .as_array()?
            .iter()
            .find(|t| t["action"] == action)
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_deprovisions_where_the_grant_was_provisioned() {
    let api = Api::start(ADMIN);
    let owner = api.user("owner").await;
    let ben = api.user("ben").await;
    let (_, app) = api
        .ok(
            "POST",
            "/api/v1/apps",
            json!({"displayName": "Ledger", "ownerIds": [owner.0], "provisioning": {"mode": "manual"}}),
        )
        .await;
    let app = app["id"].as_str().unwrap().to_string();
    let (_, ent) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{app}/entitlements"),
            json!({"displayName": "Writer", "alias": "writer"}),
        )
        .await;
    let ent = ent["id"].as_str().unwrap().to_string();
    let g = grant(&api, &app, &ent, &ben.0).await;
    // Held once its provision task is done.
    let task = task_of(&api, &g, "provision").await;
    let (s, v) = as_user(
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
    assert_eq!(s, 200, "{v}");
    let (review, r) = launched(
        &api,
        json!({
            "displayName": "Ledger writers",
            "scope": {"appIds": [app]},
            "reviewers": {"type": "APP_OWNERS"},
            "dueDate": due_in(3600),
        }),
    )
    .await;
    assert_eq!(r["progress"]["total"], 1, "{r}");
    let items = items_by_user(&api, &review).await;
    let item = items[&ben.0]["id"].as_str().unwrap().to_string();
    let (s, v) = as_user(
        &api,
        &owner.1,
        "POST",
        &format!("/api/v1/reviews/{review}/items/{item}/decide"),
        json!({"decision": "revoke", "justification": "no longer writes"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The end opens the deprovision task; the grant is held until it is done.
    let task = task_of(&api, &g, "deprovision").await;
    assert_eq!(
        (task["mode"].as_str(), task["status"].as_str()),
        (Some("manual"), Some("pending"))
    );
    let (_, h) = api
        .read(
            &format!("/api/v1/grants/history?userId={}", ben.0),
            &common::log_head(&api.s).await,
        )
        .await;
    let held = h["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == g.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (held["state"].as_str(), held["revokeReason"].as_str()),
        (Some("deprovisioning"), Some("review")),
        "{held}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_reviews_read_model_answers_every_review_query_the_same() {
    if common::single_process_only(
        "a_rebuilt_reviews_read_model_answers_every_review_query_the_same",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let owner = api.user("owner").await;
    let cfo = api.user("cfo").await;
    let (app, ent) = app_with_entitlement(&api, &owner.0).await;
    let mut users = Vec::new();
    for n in 0..4 {
        let u = api.user(&format!("user{n}")).await;
        grant(&api, &app, &ent, &u.0).await;
        users.push(u);
    }
    grant(&api, &app, &ent, &owner.0).await;
    let (review, _) = launched(
        &api,
        json!({
            "displayName": "Rebuilt",
            "scope": {"appIds": [app]},
            "reviewers": {"type": "APP_OWNERS"},
            "fallbackReviewerIds": [cfo.0],
            "dueDate": due_in(3600),
            "onDue": "revoke",
        }),
    )
    .await;
    let items = items_by_user(&api, &review).await;
    let item = |n: usize| items[&users[n].0]["id"].as_str().unwrap().to_string();
    let path = |i: &str, action: &str| format!("/api/v1/reviews/{review}/items/{i}/{action}");
    // A certify, a change of mind to revoke, a comment, a reassignment.
    for (i, body) in [
        (item(0), json!({"decision": "certify"})),
        (item(1), json!({"decision": "certify"})),
        (
            item(1),
            json!({"decision": "revoke", "justification": "left"}),
        ),
    ] {
        let (s, v) = as_user(&api, &owner.1, "POST", &path(&i, "decide"), body).await;
        assert_eq!(s, 200, "{v}");
    }
    as_user(
        &api,
        &users[2].1,
        "POST",
        &path(&item(2), "comment"),
        json!({"comment": "still needed"}),
    )
    .await;
    as_user(
        &api,
        &owner.1,
        "POST",
        &path(&item(3), "reassign"),
        json!({"toUserIds": [cfo.0]}),
    )
    .await;
    // Revoked grant ended; the rest settles before the snapshot.
    eventually("the revoked grant's end on its item", || async {
        let (_, i) = api
            .read(
                path(&item(1), "").trim_end_matches('/'),
                &common::log_head(&api.s).await,
            )
            .await;
        (!i["grantEndedAt"].is_null()).then_some(())
    })
    .await;
    let queries = [
        "/api/v1/reviews".to_string(),
        format!("/api/v1/reviews/{review}"),
        format!("/api/v1/reviews/{review}/items?pageSize=2"),
        format!("/api/v1/reviews/{review}/items?decision=pending"),
        format!("/api/v1/reviews/{review}/items?decision=revoke"),
        format!("/api/v1/reviews/{review}/items?reviewerId={}", cfo.0),
        format!("/api/v1/reviews/{review}/reviewers"),
        format!("/api/v1/reviews/{review}/report"),
    ];
    let head = common::log_head(&api.s).await;
    let mut before = Vec::new();
    for q in &queries {
        before.push(api.read(q, &head).await);
    }
    let inbox_before = get_as(&api, &cfo.1, "/api/v1/me/reviews").await;
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    common::rebuild(dir.path());
    let api = Api::start_in(dir.path(), ADMIN);
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(
            &api.read(q, &head).await,
            expected,
            "{q} after rebuild and restart"
        );
    }
    assert_eq!(
        get_as(&api, &cfo.1, "/api/v1/me/reviews").await,
        inbox_before
    );
}
