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
//!
//! Every cell also reports the server's CPU time (user + system, from
//! `/proc`) per command. After the saturated cells, paced cells drive the
//! workflow at fixed rates (`IGA_BENCH_RATES`, workflows/s, default
//! `50,100,200`; 16 clients, each starting its workflows on its own clock)
//! to show what a modest load costs; `IGA_BENCH_CLIENTS` (default `1,16,64`)
//! picks the saturated cells, and an idle cell measures the server doing
//! nothing.
//!
//! `IGA_BENCH_COMMAND_SERVICES=n` (JetStream only) starts `n`
//! `command-service` processes on the same log beside `iga serve`, and the
//! clients send their commands to them (client `k` to service `k mod n`,
//! as an ingress spreading connections would), their reads to `iga serve`:
//! what a second command-service adds. The CPU column then counts every
//! `iga` process; the log servers' cores are reported beside it.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use support::{post, raw_cell_on, raw_commit_cell_on, receiver, start_on, BenchLog, TOKEN};

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
    let command_services: usize = list_var("IGA_BENCH_COMMAND_SERVICES", "0")
        .first()
        .copied()
        .unwrap_or(0);
    let commanders: Vec<(support::KillOnDrop, String)> = (0..command_services)
        .map(|n| {
            let url = log
                .url("IGA_EVENTS")
                .filter(|u| u.starts_with("nats://"))
                .expect("IGA_BENCH_COMMAND_SERVICES needs a JetStream log (IGA_BENCH_EVENT_LOG=nats or nats-r3)");
            let dir = dir_path.join(format!("command-{n}"));
            let (c, b) = support::start_process(&bin.with_file_name("command-service"), &[], &dir, Some(&url));
            (support::KillOnDrop(c), b)
        })
        .collect();
    let command_bases: Vec<String> = commanders.iter().map(|(_, b)| b.clone()).collect();
    if !command_bases.is_empty() {
        println!(
            "commands sent to {} command-service processes; reads to iga serve\n",
            command_bases.len()
        );
    }
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
        // Every iga process; the log's servers apart.
        let pids: Vec<u32> = std::iter::once(child.0.id())
            .chain(commanders.iter().map(|(c, _)| c.0.id()))
            .collect();
        let cpu_of = |pids: &[u32]| pids.iter().map(|p| support::cpu_secs(*p)).sum::<f64>();
        let log_pids = log.server_pids();
        let idle0 = cpu_of(&pids);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        println!(
            "server idle: {:.1} ms of CPU per second\n",
            (cpu_of(&pids) - idle0) * 1000.0 / secs as f64
        );
        println!("| clients | commands/s | workflows/s | command p50 | command p99 | projection lag p99 | server CPU per command | server cores | raw log appends/s (same concurrency) | raw two-stream commits/s | commands/s ÷ raw commits/s | log server cores |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let rates: Vec<f64> = list_var("IGA_BENCH_RATES", "50,100,200");
        let cells: Vec<(usize, Option<f64>)> = list_var("IGA_BENCH_CLIENTS", "1,16,64")
            .into_iter()
            .map(|c| (c, None))
            .chain(rates.into_iter().map(|r| (16, Some(r))))
            .collect();
        for (clients, pace) in cells {
            let (cpu0, log_cpu0) = (cpu_of(&pids), cpu_of(&log_pids));
            let load = Load { clients, d: Duration::from_secs(secs), pace };
            let cell = workflow_cell(&client, &base, &command_bases, &owner_token, &ents, load, webhook).await;
            let cpu = cpu_of(&pids) - cpu0;
            let log_cpu = cpu_of(&log_pids) - log_cpu0;
            let raw_dir = tempfile::tempdir().unwrap();
            let raw_store = log.raw_store(raw_dir.path(), clients).await;
            let raw = raw_cell_on(raw_store.clone(), clients, Duration::from_secs(secs)).await;
            // Each workflow command is one commit to two streams: the raw
            // rate of that shape is what the log alone allows.
            let commits = raw_commit_cell_on(raw_store, clients, Duration::from_secs(secs)).await;
            // The raw cell's messages must not weigh on the next workflow cell.
            log.drop_raw_store(clients).await;
            let label = match pace {
                Some(rate) => format!("{clients}, paced at {rate:.0} workflows/s"),
                None => clients.to_string(),
            };
            println!(
                "| {label} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} µs | {:.2} | {raw:.0} | {} | {} | {} |",
                cell.commands_per_sec,
                cell.commands_per_sec / 2.0,
                cell.command.value_at_quantile(0.5) as f64 / 1000.0,
                cell.command.value_at_quantile(0.99) as f64 / 1000.0,
                cell.lag.value_at_quantile(0.99) as f64 / 1000.0,
                cpu * 1e6 / cell.commands as f64,
                cpu / cell.secs,
                commits.map_or("-".into(), |c| format!("{c:.0}")),
                commits.map_or("-".into(), |c| format!("{:.0} %", cell.commands_per_sec * 100.0 / c)),
                if log_pids.is_empty() { "-".to_string() } else { format!("{:.2}", log_cpu / cell.secs) },
            );
        }
        if webhook {
            println!(
                "\nprovisioning deliveries answered by the receiver: {}",
                delivered.load(Ordering::Relaxed)
            );
        }
    });
    drop(commanders);
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

/// A comma-separated list from the environment, or `default`.
fn list_var<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("{name}: {s:?}")))
        .collect()
}

/// How a cell drives the server: `clients` at once for `d`, each as fast
/// as it can or, `pace`d, at that many workflows/s in all.
struct Load {
    clients: usize,
    d: Duration,
    pace: Option<f64>,
}

struct Cell {
    commands_per_sec: f64,
    commands: u64,
    secs: f64,
    command: Histogram<u64>,
    lag: Histogram<u64>,
}

/// `command_bases`: where the clients send their commands (client `k` to
/// the `k mod n`th); none: to `base`, which serves the reads.
async fn workflow_cell(
    client: &reqwest::Client,
    base: &str,
    command_bases: &[String],
    owner_token: &str,
    ents: &[String],
    load: Load,
    webhook: bool,
) -> Cell {
    let Load { clients, d, pace } = load;
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
        .enumerate()
        .map(|(n, (user_id, token))| {
            let commands = match command_bases {
                [] => base.to_string(),
                bases => bases[n % bases.len()].clone(),
            };
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
                // Paced: this client starts a workflow every clients/rate
                // seconds, the clients spread evenly over that period,
                // skipping starts it missed.
                let mut clock = pace.map(|rate| {
                    let every = Duration::from_secs_f64(clients as f64 / rate);
                    let offset = every.mul_f64(n as f64 / clients as f64);
                    let mut clock = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    clock
                });
                for ent in &ents {
                    if let Some(clock) = clock.as_mut() {
                        clock.tick().await;
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    let (s, _, v) = post(
                        &client,
                        format!("{commands}/api/v1/requests"),
                        &token,
                        json!({"catalogs": [{"type": "entitlement", "id": ent}], "justification": "bench"}),
                    )
                    .await;
                    assert_eq!(s, 201, "{v}");
                    command.record(t.elapsed().as_micros() as u64).unwrap();
                    let rid = v["result"][0].as_str().unwrap().to_string();
                    let t = Instant::now();
                    let (s, pos, v) =
                        post(&client, format!("{commands}/api/v1/requests/{rid}/approve"), &owner_token, json!({})).await;
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
    let secs = started.elapsed().as_secs_f64();
    Cell {
        commands_per_sec: command.len() as f64 / secs,
        commands: command.len(),
        secs,
        command,
        lag,
    }
}
