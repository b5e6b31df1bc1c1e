//! Three projection-services on one JetStream log share the reactor work
//! through durable consumers: timers fire once between them, approved
//! requests are fulfilled once, every event is published once; killing one
//! of them mid-load loses none of it (its unfinished work goes to the others).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{client, Server};
use iga_eventlog::{EventStore, Limits};
use iga_schemas::DomainEvent;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

const ADMIN: &str = "shared-reactors-admin-token-0123";
const REQUESTS: usize = 40;

/// POST to the command-service; retries while a new token is not yet known
/// there (its read models follow the log). Answers status and body.
async fn post(base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status != 401 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ok(base: &str, path: &str, token: &str, body: Value) -> Value {
    let (status, v) = post(base, path, token, body).await;
    assert!((200..300).contains(&status), "POST {path}: {status} {v}");
    v
}

/// A counter's value in a server's `/metrics` (0 when not yet reported).
async fn counter(server: &Server, name: &str) -> u64 {
    common::metrics(server)
        .await
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Every event in the log, decoded.
async fn history(log: &std::sync::Arc<dyn EventStore>) -> Vec<DomainEvent> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = log.read_all(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        out.extend(batch.iter().map(|e| e.envelope.decode_event().unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_projection_services_share_reactor_work_and_survive_losing_one() {
    let nats = iga_eventlog::nats_server::NatsServer::start().expect("start nats-server");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = [("IGA_ADMIN_TOKEN", ADMIN)];
    let commands = Server::start_service("command-service", dirs[0].path(), &nats.url, &env);
    let mut reactors: Vec<Option<Server>> = dirs[1..]
        .iter()
        .map(|d| {
            Some(Server::start_service(
                "projection-service",
                d.path(),
                &nats.url,
                &env,
            ))
        })
        .collect();
    let base = commands.base.clone();

    // An app owned by `owner`, who approves; requests by the admin for
    // REQUESTS users, each ending a few seconds after the last approval.
    let owner = ok(&base, "/api/v1/users", ADMIN, json!({"username": "owner"})).await;
    let owner_id = owner["id"].as_str().unwrap().to_string();
    let owner_token = ok(
        &base,
        &format!("/api/v1/users/{owner_id}/tokens"),
        ADMIN,
        json!({}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let app = ok(
        &base,
        "/api/v1/apps",
        ADMIN,
        json!({"displayName": "Payroll", "ownerIds": [owner_id]}),
    )
    .await;
    let app = app["id"].as_str().unwrap().to_string();
    let ent = ok(
        &base,
        &format!("/api/v1/apps/{app}/entitlements"),
        ADMIN,
        json!({"displayName": "Viewer"}),
    )
    .await;
    let ent = ent["id"].as_str().unwrap().to_string();
    let ends_from = time::OffsetDateTime::now_utc() + Duration::from_secs(6);
    let mut request_ids = Vec::new();
    for i in 0..REQUESTS {
        let user = ok(
            &base,
            "/api/v1/users",
            ADMIN,
            json!({"username": format!("worker{i}")}),
        )
        .await;
        let ends = ends_from + Duration::from_millis(50 * i as u64);
        let created = ok(
            &base,
            "/api/v1/requests",
            ADMIN,
            json!({
                "users": [user["id"]],
                "catalogs": [{"type": "entitlement", "id": ent}],
                "justification": "shift work",
                "endDate": ends.format(&Rfc3339).unwrap(),
            }),
        )
        .await;
        let rid = created["result"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"))
            .to_string();
        ok(
            &base,
            &format!("/api/v1/requests/{rid}/approve"),
            &owner_token,
            json!({"justification": "ok"}),
        )
        .await;
        request_ids.push(rid);
    }
    assert!(
        time::OffsetDateTime::now_utc() < ends_from,
        "the requests took too long to set up: the timers fired before the kill could land among them"
    );

    // Once timers are firing, kill the instance that fired the most.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (victim, fired_by_victim) = loop {
        let mut counts = Vec::new();
        for r in reactors.iter().flatten() {
            counts.push(counter(r, "iga_timers_fired_total").await);
        }
        if counts.iter().sum::<u64>() >= 5 {
            let (i, n) = counts.iter().enumerate().max_by_key(|(_, n)| **n).unwrap();
            break (i, *n);
        }
        assert!(Instant::now() < deadline, "no timer fired: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    reactors[victim].as_mut().unwrap().child.kill().unwrap();
    reactors[victim].take();

    // Every grant ends, once, though one instance died with work in hand.
    let scratch = tempfile::tempdir().unwrap();
    let log = iga_eventlog::open(Some(&nats.url), scratch.path(), Limits::default())
        .await
        .unwrap()
        .store();
    let deadline = Instant::now() + Duration::from_secs(40);
    let events = loop {
        let events = history(&log).await;
        let ended = events
            .iter()
            .filter(|e| matches!(e, DomainEvent::GrantEnded(_)))
            .count();
        if ended >= REQUESTS {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "{ended} of {REQUESTS} grants ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut issued: HashMap<String, usize> = HashMap::new();
    let mut fulfilled: HashMap<String, usize> = HashMap::new();
    let mut ended: HashMap<String, usize> = HashMap::new();
    for e in &events {
        match e {
            DomainEvent::GrantIssued(g) => *issued.entry(g.request_id.clone()).or_default() += 1,
            DomainEvent::RequestFulfilled(f) => {
                *fulfilled.entry(f.request_id.clone()).or_default() += 1
            }
            DomainEvent::GrantEnded(g) => *ended.entry(g.grant_id.clone()).or_default() += 1,
            _ => {}
        }
    }
    for rid in &request_ids {
        assert_eq!(issued.get(rid), Some(&1), "grants issued for request {rid}");
        assert_eq!(fulfilled.get(rid), Some(&1), "fulfilments of request {rid}");
    }
    assert_eq!(ended.len(), REQUESTS, "grants ended: {ended:?}");
    assert!(
        ended.values().all(|n| *n == 1),
        "a grant ended twice: {ended:?}"
    );

    // The survivors did their share: the timers were spread, not all fired
    // by one instance.
    let mut fired = vec![fired_by_victim];
    for r in reactors.iter().flatten() {
        fired.push(counter(r, "iga_timers_fired_total").await);
    }
    eprintln!("timers fired per instance (the killed one first): {fired:?}");
    assert!(
        fired.iter().filter(|n| **n > 0).count() >= 2,
        "the timers were not shared: {fired:?}"
    );
    assert!(
        fired.iter().sum::<u64>() >= REQUESTS as u64,
        "fewer firings than timers: {fired:?}"
    );

    // Publishing went on in the survivors: every event downstream once.
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let total = events.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut published = js.get_stream("IGA_PUBLISHED").await.unwrap();
        let n = published.info().await.unwrap().state.messages;
        if n == total {
            break;
        }
        assert!(n < total, "{n} events published for {total} in the log");
        assert!(Instant::now() < deadline, "{n} of {total} events published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(reactors);
    drop(commands);
}

/// A webhook-provisioned grant and subscribed events with three
/// projection-services on JetStream: each delivery is in flight on one
/// instance at a time, and when the instance holding a delivery is killed
/// mid-call, another finishes it with the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_deliveries_and_finish_a_killed_ones() {
    use common::receiver::{receiver, HANG};
    const GRANTS: usize = 6;
    let nats = iga_eventlog::nats_server::NatsServer::start().expect("start nats-server");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let env = [
        ("IGA_ADMIN_TOKEN", ADMIN),
        (
            "IGA_SECRETS_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("IGA_WEBHOOK_RETRY_FIRST_MS", "20"),
        ("IGA_WEBHOOK_TIMEOUT_MS", "4000"),
    ];
    let commands = Server::start_service("command-service", dirs[0].path(), &nats.url, &env);
    let mut instances: Vec<Option<Server>> = dirs[1..]
        .iter()
        .map(|d| {
            Some(Server::start_service(
                "projection-service",
                d.path(),
                &nats.url,
                &env,
            ))
        })
        .collect();
    let base = commands.base.clone();
    // The first provisioning call hangs: its instance is killed meanwhile.
    let provisioner = receiver(&[HANG]).await;
    let subscriber = receiver(&[]).await;
    let hook = ok(
        &base,
        "/api/v1/webhooks",
        ADMIN,
        json!({"url": provisioner.url}),
    )
    .await;
    ok(
        &base,
        "/api/v1/webhooks",
        ADMIN,
        json!({"url": subscriber.url, "eventTypes": ["iga.v1.GrantIssued"]}),
    )
    .await;
    let app = ok(
        &base,
        "/api/v1/apps",
        ADMIN,
        json!({"displayName": "Ledger", "provisioning": {"mode": "webhook", "webhookId": hook["id"]}}),
    )
    .await;
    let access = app["accessEntitlementId"].as_str().unwrap().to_string();
    let app = app["id"].as_str().unwrap().to_string();
    for i in 0..GRANTS {
        let user = ok(
            &base,
            "/api/v1/users",
            ADMIN,
            json!({"username": format!("clerk{i}")}),
        )
        .await;
        ok(
            &base,
            &format!("/api/v1/apps/{app}/entitlements/{access}/add-manual-user"),
            ADMIN,
            json!({"userId": user["id"]}),
        )
        .await;
    }
    // The instance whose call hangs is the one that counted an attempt.
    common::eventually("the first provisioning call", || async {
        (!provisioner.calls().is_empty()).then_some(())
    })
    .await;
    let mut holder = None;
    for (i, s) in instances.iter().enumerate() {
        let s = s.as_ref().unwrap();
        if counter(s, "iga_webhook_attempts_total").await > 0 && holder.is_none() {
            holder = Some(i);
        }
    }
    let holder = holder.expect("an instance counted the hanging call");
    let cut = provisioner.calls()[0].id();
    instances[holder].as_mut().unwrap().child.kill().unwrap();
    instances[holder].take();

    // Every task is delivered, the cut one again under its id, by another
    // instance; no delivery was ever called twice at once.
    let ok_calls = provisioner.delivered(GRANTS).await;
    assert!(
        ok_calls.iter().any(|c| c.id() == cut),
        "the cut delivery was finished"
    );
    let calls = provisioner.calls();
    assert_eq!(calls.len(), GRANTS + 1, "one repeat: the cut call");
    assert_eq!(provisioner.overlaps(), 0, "a delivery in flight twice");
    // Every subscribed event arrived once, though three instances follow it.
    let events = subscriber.delivered(GRANTS).await;
    let mut ids: Vec<String> = events.iter().map(|c| c.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), GRANTS, "{} calls", subscriber.calls().len());
    assert_eq!(subscriber.overlaps(), 0);
    drop(instances);
    drop(commands);
}
