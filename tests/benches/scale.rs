//! The embedded default at size (issue #20): `IGA_BENCH_EVENTS` events
//! (default 10,000,000) written straight to a fresh embedded log, as the
//! command service would have: users (1 per 100 events), 1,000 apps,
//! entitlements and grants (1 per 10 events each, the grants over random
//! users and entitlements) and, for the rest, users' profile updates (the
//! history a long-lived deployment accumulates). Then, against the real
//! binaries (release build):
//!
//! - disk per million events: the log, the read models, the log's Merkle tree;
//! - `iga rebuild`: time, events/s, peak resident memory;
//! - `iga serve` on the rebuilt data dir: time to `/readyz`, resident memory
//!   when ready and once the Merkle tree has caught up with the log (a first
//!   start builds it);
//! - p50/p99 of a user's grants (`GET /grants?userId=`), and of an approver's
//!   inbox (`GET /me/tasks`, 300 pending requests made over HTTP).
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench scale
//! ```
//! `IGA_BENCH_DATA_DIR` keeps the data dir there (it must not exist yet).
//! Catalog search at 1,000,000 entitlements is `catalog_search` with
//! `IGA_BENCH_APPS=1000 IGA_BENCH_ENTITLEMENTS_PER_APP=1000`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use iga_eventlog::{EventEnvelope, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};
use serde_json::{json, Value};
use support::{KillOnDrop, TOKEN};

const APPS: u64 = 1000;
const AT: i64 = 1_735_689_600_000_000; // 2025-01-01T00:00:00Z

fn envelope(event: DomainEvent) -> EventEnvelope {
    support::envelope_at(event, AT)
}

/// A stream and the events of one append to it.
type Append = (String, Vec<EventEnvelope>);

/// The synthetic history, one append at a time, `events` in all.
fn history(events: u64) -> impl Iterator<Item = Append> {
    let users = (events / 100).max(10);
    let entitlements = (events / 10).max(10);
    let grants = (events / 10).max(10);
    let updates = events.saturating_sub(users + APPS + entitlements + grants);
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let per_user = updates / users;
    let users_made = (0..users).map(move |u| {
        let id = format!("user-{u}");
        let mut batch = vec![envelope(
            v1::UserCreated {
                user_id: id.clone(),
                username: format!("person{u}"),
                display_name: format!("Person {u}"),
                email: format!("person{u}@example.com"),
                ..Default::default()
            }
            .into(),
        )];
        for n in 0..per_user {
            batch.push(envelope(
                v1::UserUpdated {
                    user_id: id.clone(),
                    display_name: Some(format!("Person {u} ({n})")),
                    ..Default::default()
                }
                .into(),
            ));
        }
        (format!("user-{id}"), batch)
    });
    let apps_made = (0..APPS).map(|a| {
        (
            format!("app-app-{a}"),
            vec![envelope(
                v1::AppCreated {
                    app_id: format!("app-{a}"),
                    display_name: format!("Application {a}"),
                    ..Default::default()
                }
                .into(),
            )],
        )
    });
    let per_app = entitlements / APPS;
    let entitlements_made = (0..APPS).flat_map(move |a| {
        (0..per_app)
            .collect::<Vec<_>>()
            .chunks(100)
            .map(|chunk| {
                let batch = chunk
                    .iter()
                    .map(|e| {
                        envelope(
                            v1::AppEntitlementCreated {
                                app_id: format!("app-{a}"),
                                entitlement_id: format!("ent-{a}-{e}"),
                                display_name: format!("Role {e} of application {a}"),
                                requestable: true,
                                ..Default::default()
                            }
                            .into(),
                        )
                    })
                    .collect();
                (format!("app-app-{a}"), batch)
            })
            .collect::<Vec<_>>()
    });
    let grants_made = (0..grants).map(move |g| {
        let app = next() % APPS;
        let e = next() % per_app.max(1);
        let user = next() % users;
        (
            format!("access-grant-{g}"),
            vec![envelope(
                v1::GrantIssued {
                    grant_id: format!("grant-{g}"),
                    user_id: format!("user-{user}"),
                    app_id: format!("app-{app}"),
                    entitlement_id: format!("ent-{app}-{e}"),
                    grant_type: "admin".into(),
                    starts_at_micros: AT,
                    ..Default::default()
                }
                .into(),
            )],
        )
    });
    apps_made
        .chain(users_made)
        .chain(entitlements_made)
        .chain(grants_made)
}

/// Bytes under `path`.
fn disk(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let meta = e.metadata().unwrap();
            total += if meta.is_dir() {
                disk(&e.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Runs `cmd` to the end, sampling its resident memory; answers its
/// stdout, the time it took and its peak resident memory in MiB.
fn run_sampled(cmd: &mut std::process::Command) -> (String, Duration, u64) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(support::rss_mib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
        peak,
    )
}

fn p(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("IGA_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("IGA_BENCH_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let bin = support::iga_binary();

    // The log.
    let store = iga_eventlog::open(None, &dir, Limits::default())
        .await
        .unwrap()
        .store();
    let started = Instant::now();
    let appends = futures::stream::iter(history(events).map(|(stream, batch)| {
        let store = store.clone();
        async move {
            store
                .append(&stream, ExpectedVersion::Any, batch)
                .await
                .unwrap();
        }
    }))
    .buffer_unordered(64);
    appends.collect::<Vec<()>>().await;
    let head = store.head().await.unwrap();
    let wrote = started.elapsed();
    drop(store);
    let log_bytes = disk(&dir.join("eventlog-fjall"));
    println!(
        "wrote {head} events in {:.0} s ({:.0} events/s); the log: {:.0} MB, {:.0} MB per million events",
        wrote.as_secs_f64(),
        head as f64 / wrote.as_secs_f64(),
        mb(log_bytes),
        mb(log_bytes) / (head as f64 / 1e6)
    );

    // Rebuild.
    let (said, took, peak) = run_sampled(
        std::process::Command::new(&bin)
            .args(["rebuild", "--data-dir"])
            .arg(&dir),
    );
    let models_bytes = disk(&dir.join("readmodels"));
    println!(
        "iga rebuild: {} in {:.0} s, peak RSS {peak} MiB; read models {:.0} MB ({:.0} MB per million events)",
        said.trim(),
        took.as_secs_f64(),
        mb(models_bytes),
        mb(models_bytes) / (head as f64 / 1e6)
    );

    // Serve.
    let started = Instant::now();
    let (child, base) = support::start(&bin, &dir);
    let server = KillOnDrop(child);
    let pid = server.0.id();
    support::wait_ready(&base).await;
    println!(
        "iga serve: ready in {:.1} s, RSS {} MiB",
        started.elapsed().as_secs_f64(),
        support::rss_mib(pid)
    );
    let client = reqwest::Client::new();
    let mut peak = 0;
    loop {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let size = metrics
            .lines()
            .find(|l| l.starts_with("iga_audit_tree_size "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        peak = peak.max(support::rss_mib(pid));
        if size >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "Merkle tree of {head} events built {:.0} s after start; RSS then {} MiB (peak {peak} MiB); \
         read models with the tree {:.0} MB",
        started.elapsed().as_secs_f64(),
        support::rss_mib(pid),
        mb(disk(&dir.join("readmodels")))
    );

    // A user's grants.
    let users = (events / 100).max(10);
    let mut held = 0;
    let h = timed_gets(
        &client,
        TOKEN,
        1000,
        |i| format!("{base}/api/v1/grants?userId=user-{}", (i * 7919) % users),
        |page| held += page["list"].as_array().map_or(0, Vec::len),
    )
    .await;
    println!(
        "a user's grants (1,000 users, {:.1} grants each on average): {}",
        held as f64 / 1000.0,
        p(&h)
    );

    // An approver's inbox.
    let inbox = inbox(&client, &base, 300).await;
    let h = timed_gets(
        &client,
        &inbox,
        500,
        |_| format!("{base}/api/v1/me/tasks?pageSize=50"),
        |page| assert_eq!(page["list"].as_array().map(Vec::len), Some(50), "{page}"),
    )
    .await;
    println!(
        "an approver's inbox (300 pending, first page of 50): {}",
        p(&h)
    );
}

/// `n` reads as `token`, the `i`-th of `url(i)`, timed one after another;
/// `each` sees every answer.
async fn timed_gets(
    client: &reqwest::Client,
    token: &str,
    n: u64,
    url: impl Fn(u64) -> String,
    mut each: impl FnMut(&Value),
) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..n {
        let t = Instant::now();
        let page: Value = client
            .get(url(i))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        h.record(t.elapsed().as_micros() as u64).unwrap();
        each(&page);
    }
    h
}

/// A POST that must succeed; answers its consistency token and body.
async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> (String, Value) {
    let (status, pos, v) = support::post(client, url, token, body).await;
    assert!((200..300).contains(&status), "{status}: {v}");
    (pos, v)
}

/// An app owner with `n` requests waiting for their approval; their token.
async fn inbox(client: &reqwest::Client, base: &str, n: usize) -> String {
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for name in ["approver", "requester"] {
        let (_, u) = post(
            client,
            format!("{base}/api/v1/users"),
            TOKEN,
            json!({"username": format!("bench-{name}")}),
        )
        .await;
        let id = u["id"].as_str().unwrap().to_string();
        let (pos, t) = post(
            client,
            format!("{base}/api/v1/users/{id}/tokens"),
            TOKEN,
            json!(null),
        )
        .await;
        let token = t["token"].as_str().unwrap().to_string();
        client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(&token)
            .header("X-Consistency-Token", pos)
            .send()
            .await
            .unwrap();
        tokens.push(token);
        ids.push(id);
    }
    let (_, app) = post(
        client,
        format!("{base}/api/v1/apps"),
        TOKEN,
        json!({"displayName": "Inbox bench", "ownerIds": [ids[0]]}),
    )
    .await;
    let app = app["id"].as_str().unwrap().to_string();
    let mut pos = String::new();
    for i in 0..n {
        let (_, e) = post(
            client,
            format!("{base}/api/v1/apps/{app}/entitlements"),
            TOKEN,
            json!({"displayName": format!("Inbox role {i}")}),
        )
        .await;
        (pos, _) = post(
            client,
            format!("{base}/api/v1/requests"),
            &tokens[1],
            json!({"catalogs": [{"type": "entitlement", "id": e["id"]}], "justification": "bench"}),
        )
        .await;
    }
    client
        .get(format!("{base}/api/v1/me/tasks"))
        .bearer_auth(&tokens[0])
        .header("X-Consistency-Token", pos)
        .send()
        .await
        .unwrap();
    tokens.swap_remove(0)
}
