//! Downstream publishing: every event of the log reaches NATS on
//! `iga.events.<aggregate>.<event>`, in log order, once (a restart that
//! republishes is deduplicated by event id), and `iga events tail` prints them.

mod common;

use std::process::Command;

use common::{iga_binary, send, Server};
use iga_eventlog::nats_server::NatsServer;
use serde_json::{json, Value};

const ADMIN: &str = "published-admin-token-01234-abcde";

fn tail(url: &str, count: u64) -> Vec<Value> {
    let out = Command::new(iga_binary())
        .args([
            "events",
            "tail",
            "--publish",
            url,
            "--after",
            "0",
            "--count",
        ])
        .arg(count.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn published_count(url: &str) -> u64 {
    let nc = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(nc);
    let mut stream = js.get_stream("IGA_PUBLISHED").await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_in_order_and_tail_prints_it() {
    let nats = NatsServer::start().expect("start nats-server");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("IGA_ADMIN_TOKEN", ADMIN),
        ("IGA_PUBLISH", nats.url.as_str()),
    ];
    let s = Server::start_on(dir.path(), "sled:", &env);
    let (status, _, ada) = send(
        "POST",
        s.url("/api/v1/users"),
        ADMIN,
        Some(json!({"username": "ada", "displayName": "Ada"})),
    )
    .await;
    assert_eq!(status, 201);
    let ada_id = ada["id"].as_str().unwrap().to_string();
    let (status, _, _) = send(
        "POST",
        s.url(&format!("/api/v1/users/{ada_id}")),
        ADMIN,
        Some(json!({"displayName": "Ada Lovelace"})),
    )
    .await;
    assert!(status == 200, "{status}");
    let head: u64 = common::log_head(&s).await.parse().unwrap();

    // Every event of the log, in log order, on its subject.
    let events = tail(&nats.url, head);
    assert_eq!(events.len() as u64, head);
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let created = events
        .iter()
        .find(|e| e["eventType"] == "iga.v1.UserCreated" && e["event"]["username"] == "ada")
        .expect("ada's creation is published");
    assert_eq!(created["subject"], "iga.events.user.UserCreated");
    assert_eq!(created["stream"], format!("user-{ada_id}"));
    let ada_events: Vec<u64> = events
        .iter()
        .filter(|e| e["stream"] == format!("user-{ada_id}"))
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(ada_events, vec![1, 2], "in order per aggregate");

    // A restart that forgot its publishing checkpoint republishes everything;
    // JetStream keeps one copy of each event. (The log is the embedded one,
    // whose reactors keep their checkpoints in the read models: on a NATS
    // log, publishing goes on from its durable consumer instead, see
    // `shared_reactors.rs`.)
    drop(s);
    let _ = std::fs::remove_dir_all(dir.path().join("readmodels"));
    let s = Server::start_on(dir.path(), "sled:", &env);
    let head: u64 = common::log_head(&s).await.parse().unwrap();
    // Wait until the publishing reactor has republished up to the head.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let wanted = format!("iga_reactor_position{{reactor=\"publishing\"}} {head}");
    loop {
        let metrics = common::metrics(&s).await;
        if metrics.contains(&wanted) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not republished: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(published_count(&nats.url).await, head);
}
