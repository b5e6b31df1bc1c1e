//! The rest of the Catalog section, Policies and Catalog search, end to end:
//! resource types and resources, entitlements (aliases, the built-in access
//! entitlement, owners), versioned policies, and `GET /catalog`.

mod common;

use common::Api;
use serde_json::{json, Value};

const ADMIN: &str = "catalog-admin-token-0123456789-ab";

/// An app; answers its id and its access entitlement's id.
async fn app(api: &Api, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"displayName": name});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (_, app) = api.ok("POST", "/api/v1/apps", body).await;
    (
        app["id"].as_str().unwrap().into(),
        app["accessEntitlementId"].as_str().unwrap().into(),
    )
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn resource_types_and_resources() {
    let api = Api::start(ADMIN);
    let (a, _) = app(&api, "Postgres", json!({})).await;
    let (b, _) = app(&api, "Other", json!({})).await;
    let (pos, rt) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{a}/resource_types"),
            json!({"displayName": "Database"}),
        )
        .await;
    let rt_id = id(&rt);
    assert_eq!(
        api.read(&format!("/api/v1/apps/{a}/resource_types/{rt_id}"), &pos)
            .await,
        (200, rt.clone())
    );
    let base = format!("/api/v1/apps/{a}/resource_types/{rt_id}/resources");
    let (_, parent) = api.ok("POST", &base, json!({"displayName": "prod"})).await;
    let (pos, child) = api
        .ok("POST", &base, json!({"displayName": "prod/billing", "description": "Billing schema", "parentAppResourceId": id(&parent)}))
        .await;
    assert_eq!(child["parentAppResourceId"], parent["id"]);
    assert_eq!(
        api.read(&format!("{base}/{}", id(&child)), &pos).await,
        (200, child.clone())
    );
    let (_, list) = api.read(&base, &pos).await;
    assert_eq!(list["list"], json!([parent, child]));
    let (_, types) = api
        .read(&format!("/api/v1/apps/{a}/resource_types"), &pos)
        .await;
    assert_eq!(types["list"], json!([rt]));

    // A parent from another app, a type of another app, a missing name, unknown ids.
    let (_, brt) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{b}/resource_types"),
            json!({"displayName": "T"}),
        )
        .await;
    let (_, bres) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{b}/resource_types/{}/resources", id(&brt)),
            json!({"displayName": "r"}),
        )
        .await;
    let (s, _, e) = api
        .write(
            "POST",
            &base,
            ADMIN,
            Some(json!({"displayName": "x", "parentAppResourceId": id(&bres)})),
        )
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (400, Some("parentAppResourceId"))
    );
    let (s, _, _) = api
        .write(
            "POST",
            &format!("/api/v1/apps/{a}/resource_types/{}/resources", id(&brt)),
            ADMIN,
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _, e) = api.write("POST", &base, ADMIN, Some(json!({}))).await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (400, Some("displayName"))
    );
    let (s, _, _) = api
        .write(
            "POST",
            "/api/v1/apps/nope/resource_types",
            ADMIN,
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .read(&format!("/api/v1/apps/{a}/resource_types/nope"), &pos)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn entitlements_aliases_builtin_and_owners() {
    let api = Api::start(ADMIN);
    let (olivia, olivia_token) = api.user("olivia").await;
    let (pat, pat_token) = api.user("pat").await;
    let (a, access) = app(&api, "GitHub", json!({"ownerIds": [olivia]})).await;
    let (_, policy) = api
        .ok("POST", "/api/v1/policies", json!({"displayName": "Owners", "steps": [{"name": "Owners", "approvers": {"type": "APP_OWNERS"}}]}))
        .await;
    let (_, rt) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{a}/resource_types"),
            json!({"displayName": "Org"}),
        )
        .await;
    let (_, res) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{a}/resource_types/{}/resources", id(&rt)),
            json!({"displayName": "acme"}),
        )
        .await;
    let ents = format!("/api/v1/apps/{a}/entitlements");

    // The built-in access entitlement exists from the start.
    let (_, builtin) = api.read(&format!("{ents}/{access}"), "0").await;
    assert_eq!(
        (
            builtin["alias"].as_str(),
            builtin["systemBuiltin"].as_bool()
        ),
        (Some("access"), Some(true))
    );

    // An app owner creates one with every field; the answer is what is read back.
    let (status, pos, admin_ent) = api
        .write("POST", &ents, &olivia_token, Some(json!({
            "displayName": "Org Admin", "description": "Owns the org", "alias": "admin", "slug": "org-admin",
            "purpose": "APP_ENTITLEMENT_PURPOSE_VALUE_PERMISSION", "riskLevelValueId": "high",
            "complianceFrameworkValueIds": ["sox", "soc2"], "durationGrant": "86400s", "requestable": true,
            "emergencyGrantEnabled": true, "grantPolicyId": id(&policy), "appResourceId": id(&res), "ownerIds": [pat]})))
        .await;
    assert_eq!(status, 201, "{admin_ent}");
    assert_eq!(
        admin_ent["appResourceTypeId"], rt["id"],
        "type taken from the resource"
    );
    assert_eq!(admin_ent["durationGrant"], "86400s");
    let e1 = format!("{ents}/{}", id(&admin_ent));
    assert_eq!(api.read(&e1, &pos).await, (200, admin_ent.clone()));

    // Aliases are unique per app, case-insensitively; "access" is the built-in's.
    let (s, _, e) = api
        .write(
            "POST",
            &ents,
            ADMIN,
            Some(json!({"displayName": "Again", "alias": "ADMIN"})),
        )
        .await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (409, Some("alias")));
    let (s, _, e) = api
        .write(
            "POST",
            &ents,
            ADMIN,
            Some(json!({"displayName": "Sneaky", "alias": "access"})),
        )
        .await;
    assert_eq!(s, 409, "{e}");
    let (b, _) = app(&api, "GitLab", json!({})).await;
    api.ok(
        "POST",
        &format!("/api/v1/apps/{b}/entitlements"),
        json!({"displayName": "Admin", "alias": "admin"}),
    )
    .await;

    // Other mistakes, each naming its field.
    for (body, field, status) in [
        (
            json!({"displayName": "x", "durationGrant": "1 day"}),
            "durationGrant",
            400,
        ),
        (
            json!({"displayName": "x", "purpose": "FUN"}),
            "purpose",
            400,
        ),
        (
            json!({"displayName": "x", "grantPolicyId": "nope"}),
            "grantPolicyId",
            422,
        ),
        (
            json!({"displayName": "x", "ownerIds": ["nobody"]}),
            "ownerIds",
            422,
        ),
        (
            json!({"displayName": "x", "appResourceTypeId": "nope"}),
            "appResourceTypeId",
            422,
        ),
        (json!({"displayName": "x", "colour": "red"}), "colour", 400),
        (json!({"displayName": 7}), "displayName", 400),
    ] {
        let (s, _, e) = api.write("POST", &ents, ADMIN, Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {e}");
        assert!(
            e["errors"][0]["field"].as_str().unwrap().contains(field),
            "{body} -> {e}"
        );
    }

    // The entitlement's owner edits what describes it, not how it is granted.
    let (s, _, refused) = api
        .write(
            "POST",
            &e1,
            &pat_token,
            Some(json!({"alias": "owner", "requestable": false})),
        )
        .await;
    assert_eq!(s, 403, "{refused}");
    // The app's owners decide those; renaming the alias frees the old one.
    let (s, pos, updated) = api
        .write(
            "POST",
            &e1,
            ADMIN,
            Some(json!({"alias": "owner", "requestable": false, "durationGrant": "0s"})),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(
        (
            updated["version"].as_u64(),
            updated["durationGrant"].is_null()
        ),
        (Some(2), true)
    );
    assert_eq!(api.read(&e1, &pos).await, (200, updated.clone()));
    let (_, taken) = api
        .ok(
            "POST",
            &ents,
            json!({"displayName": "Admin 2", "alias": "admin"}),
        )
        .await;
    let (s, _, _) = api
        .write("POST", &e1, ADMIN, Some(json!({"alias": "Admin"})))
        .await;
    assert_eq!(s, 409);
    // If-Match.
    let c = common::client();
    let r = c
        .post(api.s.url(&e1))
        .bearer_auth(ADMIN)
        .header("If-Match", "\"1\"")
        .json(&json!({"slug": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);

    // Owners of an entitlement: the same four calls as for apps, by admins
    // and the app's owners (entitlement owners approve ENTITLEMENT_OWNERS
    // steps, so they do not choose each other).
    let owners = format!("{e1}/owners");
    let (s, _, _) = api
        .write("POST", &format!("{owners}/{olivia}"), &pat_token, None)
        .await;
    assert_eq!(s, 403);
    let (s, _, list) = api
        .write("POST", &format!("{owners}/{olivia}"), &olivia_token, None)
        .await;
    assert_eq!((s, list["list"].as_array().unwrap().len()), (200, 2));
    let (s, pos, list) = api
        .write("DELETE", &format!("{owners}/{pat}"), &olivia_token, None)
        .await;
    assert_eq!(
        (s, list["list"][0]["id"].as_str()),
        (200, Some(olivia.as_str()))
    );
    assert_eq!(api.read(&owners, &pos).await, (200, list));
    let (s, _, _) = api
        .write("PUT", &owners, &pat_token, Some(json!({"userIds": [pat]})))
        .await;
    assert_eq!(s, 403, "pat is no longer an owner");

    // The built-in entitlement can be changed, never deleted or re-aliased.
    let (s, pos, b1) = api
        .write(
            "POST",
            &format!("{ents}/{access}"),
            ADMIN,
            Some(json!({"riskLevelValueId": "low"})),
        )
        .await;
    assert_eq!((s, b1["riskLevelValueId"].as_str()), (200, Some("low")));
    assert_eq!(
        api.read(&format!("{ents}/{access}"), &pos).await,
        (200, b1.clone())
    );
    assert_eq!(b1["createdAt"], builtin["createdAt"]);
    let (s, _, _) = api
        .write("DELETE", &format!("{ents}/{access}"), ADMIN, None)
        .await;
    assert_eq!(s, 409);
    let (s, _, _) = api
        .write(
            "POST",
            &format!("{ents}/{access}"),
            ADMIN,
            Some(json!({"alias": "x"})),
        )
        .await;
    assert_eq!(s, 400);

    // Delete: soft, hidden from the list unless asked for, alias free again.
    let (s, pos, deleted) = api
        .write(
            "DELETE",
            &format!("{ents}/{}", id(&taken)),
            &olivia_token,
            None,
        )
        .await;
    assert_eq!((s, deleted["deletedAt"].is_string()), (200, true));
    let (_, list) = api.read(&ents, &pos).await;
    let names: Vec<_> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Access", "Org Admin"]);
    let (_, list) = api
        .read(&format!("{ents}?includeDeleted=true&alias=ADMIN"), &pos)
        .await;
    assert_eq!(list["list"], json!([deleted]));
    api.ok(
        "POST",
        &ents,
        json!({"displayName": "Admin 3", "alias": "admin"}),
    )
    .await;
    let (s, _, _) = api
        .write(
            "POST",
            &format!("{ents}/{}", id(&taken)),
            ADMIN,
            Some(json!({"slug": "x"})),
        )
        .await;
    assert_eq!(s, 409, "a deleted entitlement changes no more");
}

#[tokio::test]
async fn concurrent_claims_of_one_alias_create_exactly_one_entitlement() {
    let api = Api::start(ADMIN);
    let (a, _) = app(&api, "Slack", json!({})).await;
    let url = api.s.url(&format!("/api/v1/apps/{a}/entitlements"));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                common::send(
                    "POST",
                    url,
                    ADMIN,
                    Some(json!({"displayName": format!("Admin {i}"), "alias": "admin"})),
                )
                .await
                .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn policies_are_versioned() {
    let api = Api::start(ADMIN);
    let (sec1, _) = api.user("sec1").await;
    let (sec2, sec2_token) = api.user("sec2").await;
    let body = json!({"displayName": "Manager then security", "description": "Two steps", "steps": [
        {"name": "Manager", "approvers": {"type": "MANAGER"}},
        {"name": "Security", "approvers": {"type": "USERS", "userIds": [sec1, sec2]}, "quorum": 2, "requireJustification": true}]});
    let (s, pos, v1) = api
        .write("POST", "/api/v1/policies", ADMIN, Some(body))
        .await;
    assert_eq!(s, 201, "{v1}");
    let url = format!("/api/v1/policies/{}", id(&v1));
    assert_eq!(api.read(&url, &pos).await, (200, v1.clone()));
    let (s, pos, v2) = api.write("POST", &url, ADMIN, Some(json!({"allowSelfApproval": true, "steps": [{"name": "Admins", "approvers": {"type": "ROLE", "role": "admin"}}]}))).await;
    assert_eq!((s, v2["version"].as_u64()), (200, Some(2)));
    assert_eq!(api.read(&url, &pos).await, (200, v2.clone()));
    assert_eq!(
        api.read(&format!("{url}?version=1"), &pos).await,
        (200, v1.clone())
    );
    let (s, _) = api.read(&format!("{url}?version=9"), &pos).await;
    assert_eq!(s, 404);
    for (body, field) in [
        (
            json!({"displayName": "x", "steps": [{"name": "s", "approvers": {"type": "USERS", "userIds": [sec1]}, "quorum": 2}]}),
            "steps[0].quorum",
        ),
        (
            json!({"displayName": "x", "steps": [{"name": "s", "approvers": {"type": "USERS", "userIds": ["nobody"]}}]}),
            "steps[0].approvers.userIds",
        ),
        (json!({"displayName": "x", "steps": []}), "steps"),
        (json!({"displayName": "x"}), "steps"),
        (
            json!({"displayName": "x", "steps": [{"name": "s", "approvers": {"type": "ROLE", "role": "king"}}]}),
            "steps[0].approvers.role",
        ),
    ] {
        let (s, _, e) = api
            .write("POST", "/api/v1/policies", ADMIN, Some(body.clone()))
            .await;
        // A missing field is 400; fields that do not hold together (or name
        // nobody) are 422.
        let status = if body.get("steps").is_none() {
            400
        } else {
            422
        };
        assert_eq!(
            (s, e["errors"][0]["field"].as_str()),
            (status, Some(field)),
            "{body} -> {e}"
        );
    }
    let (s, _, _) = api
        .write(
            "POST",
            "/api/v1/policies",
            &sec2_token,
            Some(json!({"displayName": "x", "autoApprove": true, "steps": []})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, pos, gone) = api.write("DELETE", &url, ADMIN, None).await;
    assert_eq!((s, gone["deletedAt"].is_string()), (200, true));
    let (_, list) = api.read("/api/v1/policies", &pos).await;
    assert_eq!(list["list"], json!([]));
    let (_, list) = api.read("/api/v1/policies?includeDeleted=true", &pos).await;
    assert_eq!(list["list"], json!([gone]));
    // A deleted policy can no longer be named by an app.
    let (s, _, e) = api
        .write(
            "POST",
            "/api/v1/apps",
            ADMIN,
            Some(json!({"displayName": "x", "grantPolicyId": id(&v1)})),
        )
        .await;
    assert_eq!(
        (s, e["errors"][0]["field"].as_str()),
        (422, Some("grantPolicyId"))
    );
}

/// Builds a small catalog; answers the consistency token of its last write.
async fn small_catalog(api: &Api) -> String {
    let (gh, _) = app(api, "GitHub", json!({"description": "Source code hosting"})).await;
    let (aws, _) = app(
        api,
        "AWS Production",
        json!({"description": "Cloud account"}),
    )
    .await;
    let (old, _) = app(api, "Legacy CRM", json!({})).await;
    let e = |a: &str| format!("/api/v1/apps/{a}/entitlements");
    api.ok(
        "POST",
        &e(&gh),
        json!({"displayName": "Org Admin", "alias": "admin", "riskLevelValueId": "high"}),
    )
    .await;
    api.ok(
        "POST",
        &e(&gh),
        json!({"displayName": "Administrator of billing", "alias": "billing"}),
    )
    .await;
    api.ok(
        "POST",
        &e(&gh),
        json!({"displayName": "Reader", "description": "Grants admin rights to read"}),
    )
    .await;
    api.ok(
        "POST",
        &e(&gh),
        json!({"displayName": "Hidden", "requestable": false}),
    )
    .await;
    api.ok(
        "POST",
        &e(&aws),
        json!({"displayName": "Admin Role", "alias": "aws-admin", "riskLevelValueId": "high"}),
    )
    .await;
    let (_, gone) = api
        .ok("POST", &e(&aws), json!({"displayName": "Admin old"}))
        .await;
    api.ok("DELETE", &format!("{}/{}", e(&aws), id(&gone)), json!(null))
        .await;
    api.ok("POST", &e(&old), json!({"displayName": "Admin legacy"}))
        .await;
    api.ok(
        "POST",
        &format!("/api/v1/apps/{old}/lifecycle/deactivate"),
        json!(null),
    )
    .await;
    let (pos, _) = api
        .ok(
            "POST",
            &format!("/api/v1/apps/{aws}"),
            json!({"displayName": "AWS Prod"}),
        )
        .await;
    pos
}

fn names(v: &Value) -> Vec<String> {
    v["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["displayName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn catalog_search_ranks_filters_and_pages() {
    let api = Api::start(ADMIN);
    let pos = small_catalog(&api).await;
    let (s, r) = api.read("/api/v1/catalog?query=admin", &pos).await;
    assert_eq!(s, 200);
    // Exact alias, then name prefixes (by name), then whole words, then description.
    assert_eq!(
        names(&r),
        [
            "Org Admin",
            "Admin Role",
            "Administrator of billing",
            "Reader"
        ]
    );
    assert_eq!(r["totalCount"], 4);
    assert_eq!(
        r["list"][1]["appDisplayName"], "AWS Prod",
        "follows the app's rename"
    );
    let (_, r) = api.read("/api/v1/catalog?query=AWS-ADMIN", &pos).await;
    assert_eq!(names(&r)[0], "Admin Role");
    // Word-prefix matches only: one tier, by name.
    let (_, r) = api.read("/api/v1/catalog?query=git%20adm", &pos).await;
    assert_eq!(
        names(&r),
        ["Administrator of billing", "Org Admin", "Reader"],
    );
    let (_, r) = api.read("/api/v1/catalog?type=application", &pos).await;
    assert_eq!(
        names(&r),
        ["AWS Prod", "GitHub"],
        "inactive apps are not requestable"
    );
    let (_, r) = api.read("/api/v1/catalog?requestable=false", &pos).await;
    assert_eq!(names(&r), ["Admin legacy", "Hidden", "Legacy CRM"]);
    let (_, r) = api
        .read("/api/v1/catalog?riskLevelValueId=high&query=adm", &pos)
        .await;
    assert_eq!(
        names(&r),
        ["Admin Role", "Org Admin"],
        "name prefix before word prefix"
    );
    let (_, r) = api
        .read("/api/v1/catalog?query=old&includeDeleted=true", &pos)
        .await;
    assert_eq!(names(&r), ["Admin old"]);
    let (_, r) = api.read("/api/v1/catalog?query=old", &pos).await;
    assert_eq!(r["totalCount"], 0);

    // Paging: every item once, in order, totalCount on every page.
    let (_, all) = api.read("/api/v1/catalog?pageSize=1000", &pos).await;
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let (_, p) = api
            .read(
                &format!("/api/v1/catalog?pageSize=2&pageToken={token}"),
                &pos,
            )
            .await;
        assert_eq!(p["totalCount"], all["totalCount"]);
        paged.extend(names(&p));
        match p["nextPageToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert_eq!(paged, names(&all));
    assert_eq!(paged.len(), 6);

    for bad in [
        "pageSize=0",
        "pageToken=zz",
        "type=group",
        "requestable=maybe",
    ] {
        let (s, _) = api.read(&format!("/api/v1/catalog?{bad}"), &pos).await;
        assert_eq!(s, 400, "{bad}");
    }
    let long = "a".repeat(300);
    let (s, _) = api
        .read(&format!("/api/v1/catalog?query={long}"), &pos)
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn restart_and_rebuild_answer_every_catalog_query_the_same() {
    if common::single_process_only("restart_and_rebuild_answer_every_catalog_query_the_same") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_in(dir.path(), ADMIN);
    let pos = small_catalog(&api).await;
    let (_, apps) = api.read("/api/v1/apps?includeDeleted=true", &pos).await;
    let (_, policy) = api
        .ok(
            "POST",
            "/api/v1/policies",
            json!({"displayName": "Auto", "autoApprove": true, "steps": []}),
        )
        .await;
    api.ok(
        "POST",
        &format!("/api/v1/policies/{}", id(&policy)),
        json!({"description": "v2"}),
    )
    .await;
    let mut queries = vec![
        "/api/v1/catalog?query=admin".to_string(),
        "/api/v1/catalog?pageSize=1000&includeDeleted=true&requestable=false".into(),
        "/api/v1/catalog?pageSize=3".into(),
        "/api/v1/policies?includeDeleted=true".into(),
        format!("/api/v1/policies/{}?version=1", id(&policy)),
    ];
    for a in apps["list"].as_array().unwrap() {
        queries.push(format!(
            "/api/v1/apps/{}/entitlements?includeDeleted=true",
            id(a)
        ));
        queries.push(format!("/api/v1/apps/{}/resource_types", id(a)));
    }
    let (pos, _) = api
        .ok(
            "POST",
            &format!("/api/v1/policies/{}", id(&policy)),
            json!({"description": "v3"}),
        )
        .await;
    let mut before = Vec::new();
    for q in &queries {
        before.push(api.read(q, &pos).await);
    }
    let Api { s, _dir, .. } = api;
    assert!(s.terminate().0.success());
    common::rebuild(dir.path());
    let api = Api::start_in(dir.path(), ADMIN);
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(
            &api.read(q, &pos).await,
            expected,
            "{q} after rebuild and restart"
        );
    }
}
