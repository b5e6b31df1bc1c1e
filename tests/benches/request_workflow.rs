//! The access-request workflow over HTTP against a real `iga serve` (release
//! build), with 1, 16 and 64 concurrent clients. One workflow is two
//! commands, `POST /requests` then `POST /requests/{id}/approve` by the app's
//! owner (the default policy: one phase), then a read of the grant with the
//! approval's consistency token. Reported: commands/s, p50/p99 command
//! latency, p99 projection lag (approval acknowledged to grant visible in a
//! read), the rebuild rate of every read model (`iga rebuild`) over the log
//! the run produced, and the raw log append rate at the same concurrency.
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench request_workflow
//! ```
//! Each cell runs `IGA_BENCH_SECS` seconds (default 3). `IGA_BENCH_EVENT_LOG`
//! picks the log: `fjall` (default, the embedded log), `sled` (the embedded log on sled),
//! `nats` (JetStream R1) or `nats-r3`
//! (three local nodes, R3); the raw cells then append to the same kind.
//! `IGA_BENCH_DATA_DIR` names a data dir to use and keep (for profiling
//! `iga rebuild` of the run's log) instead of a temporary one.
//! `IGA_BENCH_PROVISIONING=webhook` gives the app webhook provisioning (a
//! receiver in this process answering 200 at once): every grant is then
//! pending until its task is delivered, and the lag column is the time
//! from the approval's answer to the grant being held (polled), the
//! delivery included; `none` (the default) records grants only.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use support::{raw_cell_on, receiver, start_on, BenchLog, TOKEN};

/// Entitlements to request: each client walks them for its own user.
const ENTITLEMENTS: usize = 2000;

fn main() {
    let secs: u64 = std::env::var("IGA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let bin = support::iga_binary();
    // IGA_BENCH_DATA_DIR keeps the run's data (log and read models) for
    // profiling `iga rebuild` afterwards; by default it is a temporary dir.
    let kept = std::env::var_os("IGA_BENCH_DATA_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir_path = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let log = BenchLog::from_env();
    let webhook = std::env::var("IGA_BENCH_PROVISIONING").as_deref() == Ok("webhook");
    println!(
        "event log: {}; provisioning: {}\n",
        log.name(),
        if webhook { "webhook" } else { "none" }
    );
    let (child, base) = start_on(&bin, &dir_path, log.url("IGA_EVENTS").as_deref());
    let child = support::KillOnDrop(child);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(128).build().unwrap();
        let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hook = if webhook {
            Some(receiver(delivered.clone()).await)
        } else {
            None
        };
        let (owner_token, ents) = setup(&client, &base, hook.as_deref()).await;
        println!("| clients | commands/s | workflows/s | command p50 | command p99 | projection lag p99 | raw log appends/s (same concurrency) |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for clients in [1usize, 16, 64] {
            let cell = workflow_cell(&client, &base, &owner_token, &ents, clients, Duration::from_secs(secs), webhook).await;
            let raw_dir = tempfile::tempdir().unwrap();
            let raw_store = log.raw_store(raw_dir.path(), clients).await;
            let raw = raw_cell_on(raw_store, clients, Duration::from_secs(secs)).await;
            // The raw cell's messages must not weigh on the next workflow cell.
            log.drop_raw_store(clients).await;
            println!(
                "| {clients} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {raw:.0} |",
                cell.commands_per_sec,
                cell.commands_per_sec / 2.0,
                cell.command.value_at_quantile(0.5) as f64 / 1000.0,
                cell.command.value_at_quantile(0.99) as f64 / 1000.0,
                cell.lag.value_at_quantile(0.99) as f64 / 1000.0,
            );
        }
        if webhook {
            println!(
                "\nprovisioning deliveries answered by the receiver: {}",
                delivered.load(Ordering::Relaxed)
            );
        }
    });
    drop(child);
    let mut rebuild = std::process::Command::new(&bin);
    if let Some(url) = log.url("IGA_EVENTS") {
        rebuild.env("IGA_EVENT_LOG", url);
    }
    let out = rebuild
        .args(["rebuild", "--data-dir"])
        .arg(&dir_path)
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    println!(
        "\n`iga rebuild` of the run's log: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> (u16, String, Value) {
    let r = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let pos = r
        .headers()
        .get("x-consistency-token")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, pos, r.json().await.unwrap_or(Value::Null))
}

/// An owner with a token and one app of `ENTITLEMENTS` entitlements (its
/// grants provisioned through a webhook at `hook`, if given).
async fn setup(client: &reqwest::Client, base: &str, hook: Option<&str>) -> (String, Vec<String>) {
    let (_, _, owner) = post(
        client,
        format!("{base}/api/v1/users"),
        TOKEN,
        json!({"username": "owner"}),
    )
    .await;
    let owner_id = owner["id"].as_str().unwrap().to_string();
    let (_, _, t) = post(
        client,
        format!("{base}/api/v1/users/{owner_id}/tokens"),
        TOKEN,
        json!(null),
    )
    .await;
    let owner_token = t["token"].as_str().unwrap().to_string();
    let provisioning = match hook {
        Some(url) => {
            let (s, _, w) = post(
                client,
                format!("{base}/api/v1/webhooks"),
                TOKEN,
                json!({"url": url}),
            )
            .await;
            assert_eq!(s, 201, "{w}");
            json!({"mode": "webhook", "webhookId": w["id"]})
        }
        None => json!({"mode": "none"}),
    };
    let (_, _, app) = post(
        client,
        format!("{base}/api/v1/apps"),
        TOKEN,
        json!({"displayName": "Bench", "ownerIds": [owner_id], "provisioning": provisioning}),
    )
    .await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let mut ents = Vec::with_capacity(ENTITLEMENTS);
    for i in 0..ENTITLEMENTS {
        let (_, _, e) = post(
            client,
            format!("{base}/api/v1/apps/{app_id}/entitlements"),
            TOKEN,
            json!({"displayName": format!("Role {i}"), "durationGrant": "86400s"}),
        )
        .await;
        ents.push(e["id"].as_str().unwrap().to_string());
    }
    (owner_token, ents)
}

struct Cell {
    commands_per_sec: f64,
    command: Histogram<u64>,
    lag: Histogram<u64>,
}

async fn workflow_cell(
    client: &reqwest::Client,
    base: &str,
    owner_token: &str,
    ents: &[String],
    clients: usize,
    d: Duration,
    webhook: bool,
) -> Cell {
    // A fresh user per client, so every (user, entitlement) pair is new.
    let mut users = Vec::new();
    for _ in 0..clients {
        let name = format!("u{}", uuid::Uuid::now_v7().simple());
        let (_, _, u) = post(
            client,
            format!("{base}/api/v1/users"),
            TOKEN,
            json!({"username": name}),
        )
        .await;
        let id = u["id"].as_str().unwrap().to_string();
        let (_, pos, t) = post(
            client,
            format!("{base}/api/v1/users/{id}/tokens"),
            TOKEN,
            json!(null),
        )
        .await;
        // The token authenticates once the read models have it.
        client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(t["token"].as_str().unwrap())
            .header("X-Consistency-Token", pos)
            .send()
            .await
            .unwrap();
        users.push((id, t["token"].as_str().unwrap().to_string()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    // A client that has requested every entitlement ends the cell early
    // (the rate is over the time the clients actually ran).
    let exhausted = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let tasks: Vec<_> = users
        .into_iter()
        .map(|(user_id, token)| {
            let (client, stop, exhausted, base, owner_token, ents) = (
                client.clone(),
                stop.clone(),
                exhausted.clone(),
                base.to_string(),
                owner_token.to_string(),
                ents.to_vec(),
            );
            tokio::spawn(async move {
                let mut command = Histogram::<u64>::new(3).unwrap();
                let mut lag = Histogram::<u64>::new(3).unwrap();
                for ent in &ents {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    let (s, _, v) = post(
                        &client,
                        format!("{base}/api/v1/requests"),
                        &token,
                        json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "bench"}),
                    )
                    .await;
                    assert_eq!(s, 201, "{v}");
                    command.record(t.elapsed().as_micros() as u64).unwrap();
                    let rid = v["result"][0].as_str().unwrap().to_string();
                    let t = Instant::now();
                    let (s, pos, v) =
                        post(&client, format!("{base}/api/v1/requests/{rid}/approve"), &owner_token, json!({})).await;
                    assert_eq!(s, 200, "{v}");
                    command.record(t.elapsed().as_micros() as u64).unwrap();
                    let t = Instant::now();
                    loop {
                        let r = client
                            .get(format!("{base}/api/v1/grants?userId={user_id}&entitlementId={ent}"))
                            .bearer_auth(&token)
                            .header("X-Consistency-Token", &pos)
                            .send()
                            .await
                            .unwrap();
                        let g: Value = r.json().await.unwrap();
                        let held = g["list"].as_array().map(Vec::len);
                        if held == Some(1) {
                            break;
                        }
                        // Pending until its delivery: only then held.
                        assert!(webhook && held == Some(0), "{g}");
                        assert!(t.elapsed() < Duration::from_secs(60), "never provisioned");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    lag.record(t.elapsed().as_micros() as u64).unwrap();
                }
                exhausted.notify_one();
                (command, lag)
            })
        })
        .collect();
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = exhausted.notified() => eprintln!("a client ran out of entitlements; the cell ends early"),
    }
    stop.store(true, Ordering::Relaxed);
    let mut command = Histogram::<u64>::new(3).unwrap();
    let mut lag = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        let (c, l) = t.await.unwrap();
        command.add(c).unwrap();
        lag.add(l).unwrap();
    }
    Cell {
        commands_per_sec: command.len() as f64 / started.elapsed().as_secs_f64(),
        command,
        lag,
    }
}
