//! Access reviews at size, over HTTP against a real `iga serve` (release
//! build): `IGA_BENCH_GRANTS` direct grants (default 100,000: 1,000 users ×
//! 100 entitlements, each entitlement with its own owner), one campaign over
//! all of them reviewed by ENTITLEMENT_OWNERS (100 reviewers with 1,000
//! items each). Reported: the time to launch (the launch's answer, every
//! item open, every item counted in the read model, so in the reviewers'
//! inboxes), the launch's items/s beside the raw log's appends/s at the
//! same concurrency, a reviewer's inbox (`GET /me/reviews?pageSize=50`)
//! p50/p99 under 8 concurrent readers, and bulk decisions per second
//! (reviewers certifying their items 1,000 per call, 4 calls at once).
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench access_reviews
//! ```

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use support::{raw_cell, start, TOKEN};

const ENTITLEMENTS: usize = 100;

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let (s, v) = call(
        client,
        reqwest::Method::POST,
        url.clone(),
        token,
        Some(body),
    )
    .await;
    assert!((200..300).contains(&s), "POST {url}: {s} {v}");
    v
}

fn main() {
    let grants: usize = std::env::var("IGA_BENCH_GRANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let users = grants.div_ceil(ENTITLEMENTS);
    let bin = support::iga_binary();
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = start(&bin, dir.path());
    let pid = child.id();
    let _child = support::KillOnDrop(child);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .unwrap();
        let c = &client;
        let base = base.as_str();
        // Reviewers: one owner per entitlement, each with a token.
        let mut owners = Vec::new();
        for i in 0..ENTITLEMENTS {
            let u = post(c, format!("{base}/api/v1/users"), TOKEN, json!({"username": format!("owner{i}")})).await;
            let id = u["id"].as_str().unwrap().to_string();
            let t = post(c, format!("{base}/api/v1/users/{id}/tokens"), TOKEN, json!({})).await;
            owners.push((id, t["token"].as_str().unwrap().to_string()));
        }
        let app = post(c, format!("{base}/api/v1/apps"), TOKEN, json!({"displayName": "Bench"})).await;
        let app = app["id"].as_str().unwrap().to_string();
        let mut ents = Vec::new();
        for (i, (owner, _)) in owners.iter().enumerate() {
            let e = post(
                c,
                format!("{base}/api/v1/apps/{app}/entitlements"),
                TOKEN,
                json!({"displayName": format!("Role {i}"), "ownerIds": [owner]}),
            )
            .await;
            ents.push(e["id"].as_str().unwrap().to_string());
        }
        let user_ids: Vec<String> = futures::stream::iter(0..users)
            .map(|i| async move {
                let u = post(c, format!("{base}/api/v1/users"), TOKEN, json!({"username": format!("user{i}")})).await;
                u["id"].as_str().unwrap().to_string()
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let started = Instant::now();
        let pairs: Vec<(String, String)> = user_ids
            .iter()
            .flat_map(|u| ents.iter().map(move |e| (u.clone(), e.clone())))
            .take(grants)
            .collect();
        let app_ref = &app;
        futures::stream::iter(pairs)
            .map(|(user, ent)| async move {
                post(
                    c,
                    format!("{base}/api/v1/apps/{app_ref}/entitlements/{ent}/add-manual-user"),
                    TOKEN,
                    json!({"userId": user}),
                )
                .await;
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        let granting = started.elapsed();
        println!(
            "setup: {grants} direct grants to {users} users in {:.1} s ({:.0} grants/s, 64 clients)\n",
            granting.as_secs_f64(),
            grants as f64 / granting.as_secs_f64()
        );

        // Launch.
        let review = post(
            c,
            format!("{base}/api/v1/reviews"),
            TOKEN,
            json!({"displayName": "Bench", "scope": {"appIds": [app]},
                   "reviewers": {"type": "ENTITLEMENT_OWNERS"},
                   "dueDate": "2098-01-01T00:00:00Z"}),
        )
        .await;
        let id = review["id"].as_str().unwrap().to_string();
        let cpu0 = support::cpu_secs(pid);
        let t0 = Instant::now();
        post(c, format!("{base}/api/v1/reviews/{id}/launch"), TOKEN, json!({})).await;
        let answered = t0.elapsed();
        let (mut listed, mut counted) = (None, None);
        loop {
            let (_, r) = call(c, reqwest::Method::GET, format!("{base}/api/v1/reviews/{id}"), TOKEN, None).await;
            if listed.is_none() && r["itemsListed"] == true {
                listed = Some(t0.elapsed());
            }
            if r["progress"]["total"].as_u64() == Some(grants as u64) {
                counted = Some(t0.elapsed());
            }
            if listed.is_some() && counted.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (listed, counted) = (listed.unwrap(), counted.unwrap());
        let launch_cpu = support::cpu_secs(pid) - cpu0;
        let raw = raw_cell(64, Duration::from_secs(3)).await;
        println!("| grants in scope | launch answered | every item open | every item in the inboxes | items/s (launch) | server CPU per item | raw log appends/s (64 writers) | server RSS |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| {grants} | {:.0} ms | {:.1} s | {:.1} s | {:.0} | {:.0} µs ({:.2} cores) | {:.0} | {} MiB |\n",
            answered.as_secs_f64() * 1000.0,
            listed.as_secs_f64(),
            counted.as_secs_f64(),
            grants as f64 / listed.as_secs_f64(),
            launch_cpu * 1e6 / grants as f64,
            launch_cpu / counted.as_secs_f64(),
            raw,
            support::rss_mib(pid)
        );

        // A reviewer's inbox, 8 readers at once.
        let mut inbox = Histogram::<u64>::new(3).unwrap();
        let samples: Vec<u64> = futures::stream::iter(0..2000usize)
            .map(|n| {
                let token = owners[n % owners.len()].1.clone();
                async move {
                    let t = Instant::now();
                    let (s, v) = call(c, reqwest::Method::GET, format!("{base}/api/v1/me/reviews?pageSize=50"), &token, None).await;
                    let want = (grants / ENTITLEMENTS).min(50);
                    assert_eq!((s, v["list"].as_array().map(Vec::len)), (200, Some(want)));
                    t.elapsed().as_micros() as u64
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for s in samples {
            inbox.record(s).unwrap();
        }
        println!("| inbox reads | items per reviewer | p50 | p99 |");
        println!("| ---: | ---: | ---: | ---: |");
        println!(
            "| 2000 (8 at once) | {} | {:.1} ms | {:.1} ms |\n",
            grants / ENTITLEMENTS,
            inbox.value_at_quantile(0.5) as f64 / 1000.0,
            inbox.value_at_quantile(0.99) as f64 / 1000.0
        );

        // Bulk decisions: each of 20 reviewers certifies up to 1,000 of
        // their items in one call; 4 calls at once.
        let deciders: Vec<(String, String)> = owners.iter().take(20).cloned().collect();
        let mut batches = Vec::new();
        for (owner, token) in &deciders {
            let (_, v) = call(
                c,
                reqwest::Method::GET,
                format!("{base}/api/v1/reviews/{id}/items?reviewerId={owner}&pageSize=1000"),
                TOKEN,
                None,
            )
            .await;
            let items: Vec<String> = v["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect();
            batches.push((token.clone(), items));
        }
        let total: usize = batches.iter().map(|(_, i)| i.len()).sum();
        let id_ref = &id;
        let cpu0 = support::cpu_secs(pid);
        let t0 = Instant::now();
        let decided: Vec<u64> = futures::stream::iter(batches)
            .map(|(token, items)| async move {
                let v = post(
                    c,
                    format!("{base}/api/v1/reviews/{id_ref}/decide"),
                    &token,
                    json!({"itemIds": items, "decision": "certify"}),
                )
                .await;
                v["decided"].as_u64().unwrap()
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let took = t0.elapsed();
        let bulk_cpu = support::cpu_secs(pid) - cpu0;
        assert_eq!(decided.iter().sum::<u64>() as usize, total);
        println!("| bulk decisions | calls (1,000 items each, 4 at once) | decisions/s | server CPU per decision |");
        println!("| ---: | ---: | ---: | ---: |");
        println!(
            "| {total} | {} | {:.0} | {:.0} µs ({:.2} cores) |",
            deciders.len(),
            total as f64 / took.as_secs_f64(),
            bulk_cpu * 1e6 / total as f64,
            bulk_cpu / took.as_secs_f64()
        );
    });
}
