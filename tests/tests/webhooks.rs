//! Webhook event subscriptions against a real HTTP receiver (an axum server
//! in the test, on port 0): events of the subscribed types arrive as
//! CloudEvents, in log order, signed per Standard Webhooks (checked with the
//! specification's own crate); a failing receiver gets the same delivery
//! again (same `webhook-id`) until it answers; a 400 fails the delivery and
//! the next event still goes; a restart resumes from the webhook's
//! checkpoint; the secret never leaves.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{receiver, Call};
use common::{client, send, Server};
use serde_json::{json, Value};

const ADMIN: &str = "webhooks-admin-token-0123456789-abcdef";
/// The same sealing key for every process of the topology.
const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("IGA_ADMIN_TOKEN", ADMIN),
        ("IGA_SECRETS_KEY", SECRETS_KEY),
        ("IGA_WEBHOOK_RETRY_FIRST_MS", "20"),
        ("IGA_WEBHOOK_TIMEOUT_MS", "2000"),
    ]
}

async fn get(s: &Server, token: &str, path: &str, position: &str) -> (u16, Value) {
    let r = client()
        .get(s.url(path))
        .bearer_auth(token)
        .header("X-Consistency-Token", position)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn user(s: &Server, name: &str) -> (String, String) {
    let (status, pos, v) = send(
        "POST",
        s.url("/api/v1/users"),
        ADMIN,
        Some(json!({"username": name})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    (v["id"].as_str().unwrap().to_string(), pos)
}

async fn register(s: &Server, url: &str, types: &[&str]) -> (String, String, String) {
    let (status, pos, v) = send(
        "POST",
        s.url("/api/v1/webhooks"),
        ADMIN,
        Some(json!({"url": url, "description": "test receiver", "eventTypes": types})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{v}");
    (v["id"].as_str().unwrap().to_string(), secret, pos)
}

/// Waits until the webhook's deliveries list `n` deliveries in a final state.
async fn deliveries(s: &Server, webhook: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = get(
            s,
            ADMIN,
            &format!("/api/v1/webhooks/{webhook}/deliveries"),
            "0",
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let list = v["list"].as_array().cloned().unwrap_or_default();
        let done = list.iter().filter(|d| d["status"] != "pending").count();
        if done >= n {
            return list;
        }
        assert!(Instant::now() < deadline, "deliveries: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_events_arrive_signed_in_order_and_a_failing_receiver_gets_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &env());
    let hook = receiver(&[503, 503, 503]).await;

    // Only an admin registers; a bad URL is refused and nothing is written.
    let (stranger, pos) = user(&s, "stranger").await;
    let (_, _, token) = send(
        "POST",
        s.url(&format!("/api/v1/users/{stranger}/tokens")),
        ADMIN,
        None,
    )
    .await;
    let token = token["token"].as_str().unwrap().to_string();
    get(&s, &token, "/api/v1/me", &pos).await;
    let (status, _, _) = send(
        "POST",
        s.url("/api/v1/webhooks"),
        &token,
        Some(json!({"url": hook.url, "eventTypes": ["*"]})),
    )
    .await;
    assert_eq!(status, 403);
    for url in ["ftp://example.com/x", "https://user:pw@example.com/"] {
        let (status, _, v) = send(
            "POST",
            s.url("/api/v1/webhooks"),
            ADMIN,
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(status, 422, "{url}: {v}");
    }

    let (webhook, secret, _) = register(&s, &hook.url, &["iga.v1.UserCreated"]).await;
    for name in ["ada", "bob", "cy"] {
        user(&s, name).await;
    }
    let ok = hook.delivered(3).await;
    let calls = hook.calls();
    // The first delivery was answered 503 three times, then 200: four calls
    // with one webhook-id.
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert!(calls[..4].iter().all(|c| c.id() == calls[0].id()));
    assert_eq!(
        calls.iter().map(|c| c.answered).collect::<Vec<_>>(),
        [503, 503, 503, 200, 200, 200]
    );
    // Signed: the specification's crate verifies every call with the secret.
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for c in &calls {
        verifier.verify(&c.body, &c.headers).unwrap();
        assert_eq!(c.headers["content-type"], "application/cloudevents+json");
    }
    // CloudEvents of the subscribed type only, in log order.
    let events: Vec<Value> = ok.iter().map(Call::event).collect();
    assert!(events.iter().all(|e| e["specversion"] == "1.0"
        && e["type"] == "iga.v1.UserCreated"
        && e["source"] == "urn:iga"));
    assert_eq!(
        events
            .iter()
            .map(|e| e["data"]["username"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ada", "bob", "cy"]
    );
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["igaposition"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // The deliveries, as admins see them.
    let list = deliveries(&s, &webhook, 3).await;
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|d| d["status"] == "succeeded"));
    let retried = list.iter().find(|d| d["id"] == calls[0].id()).unwrap();
    assert_eq!(
        (retried["attempts"].as_u64(), retried["lastStatus"].as_u64()),
        (Some(4), Some(200))
    );
    let (status, _) = get(
        &s,
        &token,
        &format!("/api/v1/webhooks/{webhook}/deliveries"),
        "0",
    )
    .await;
    assert_eq!(status, 403, "a stranger reads no deliveries");

    // The secret leaves neither through the API nor through the audit log.
    let (_, v) = get(&s, ADMIN, &format!("/api/v1/webhooks/{webhook}"), "0").await;
    assert!(v.get("secret").is_none(), "{v}");
    let (_, audit) = get(&s, ADMIN, "/api/v1/events?limit=1000", "0").await;
    let text = audit.to_string();
    assert!(text.contains("iga.v1.WebhookRegistered"), "{text}");
    assert!(!text.contains(secret.trim_start_matches("whsec_")));
    assert!(!text.contains("\"secretSealed\":[1") && !text.contains("\"secretSealed\":\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_fails_the_delivery_and_the_next_event_still_goes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &env());
    let hook = receiver(&[400]).await;
    let (webhook, _, _) = register(&s, &hook.url, &["*"]).await;
    user(&s, "ada").await;
    user(&s, "bob").await;
    hook.delivered(2).await;
    let list = deliveries(&s, &webhook, 3).await;
    let failed: Vec<&Value> = list.iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{list:?}");
    assert_eq!(
        (
            failed[0]["attempts"].as_u64(),
            failed[0]["lastStatus"].as_u64()
        ),
        (Some(1), Some(400)),
        "a 400 is not retried"
    );
    // ?status= filters.
    let (_, v) = get(
        &s,
        ADMIN,
        &format!("/api/v1/webhooks/{webhook}/deliveries?status=failed"),
        "0",
    )
    .await;
    assert_eq!(v["list"].as_array().unwrap().len(), 1, "{v}");

    // An admin retries the failed one: made again under the same
    // webhook-id, now answered 200 (who may: the authorization matrix).
    let id = failed[0]["id"].as_str().unwrap();
    let retry = s.url(&format!("/api/v1/webhooks/{webhook}/deliveries/{id}/retry"));
    let (status, _, v) = send("POST", retry.clone(), ADMIN, None).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (202, Some("pending")),
        "{v}"
    );
    common::eventually("the retried delivery", || async {
        hook.calls()
            .iter()
            .any(|c| c.id() == id && c.answered == 200)
            .then_some(())
    })
    .await;
    let first = hook
        .calls()
        .into_iter()
        .find(|c| c.answered == 400)
        .unwrap();
    assert_eq!(first.id(), id, "the retry is the same delivery");
    common::eventually("every delivery succeeded", || async {
        let (_, v) = get(
            &s,
            ADMIN,
            &format!("/api/v1/webhooks/{webhook}/deliveries"),
            "0",
        )
        .await;
        let list = v["list"].as_array()?.clone();
        list.iter()
            .all(|d| d["status"] == "succeeded")
            .then_some(())
    })
    .await;
    let (status, _, _) = send("POST", retry, ADMIN, None).await;
    assert_eq!(status, 409, "succeeded: nothing to retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_resume_after_a_restart_without_delivering_twice() {
    if common::single_process_only("deliveries_resume_after_a_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hook = receiver(&[]).await;
    let s = Server::start(dir.path(), &env());
    register(&s, &hook.url, &["iga.v1.UserCreated"]).await;
    user(&s, "ada").await;
    hook.delivered(1).await;
    let (status, _) = s.terminate();
    assert!(status.success());
    let s = Server::start(dir.path(), &env());
    user(&s, "bob").await;
    let ok = hook.delivered(2).await;
    // Give a redelivery of the first event the time to show up, if any.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = hook.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(ok[0].id(), ok[1].id());
    assert_eq!(
        ok.iter()
            .map(|c| c.event()["data"]["username"].clone())
            .collect::<Vec<_>>(),
        [json!("ada"), json!("bob")]
    );
}
