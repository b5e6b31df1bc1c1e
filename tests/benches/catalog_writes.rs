//! Catalog writes (apps, and entitlements with aliases) over HTTP against a
//! real `iga serve` (release build), with 1, 16 and 64 concurrent clients: commands/s and p50/p99 latency; and, in
//! the same run, the raw append rate of the event log at the same concurrency,
//! so the ratio shows what the service layer (HTTP, auth, load-decide-append,
//! idempotency, rendering) costs.
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench catalog_writes
//! ```
//! Each cell runs `IGA_BENCH_SECS` seconds (default 3).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

mod support;
use support::{raw_cell, start, TOKEN};

fn main() {
    let secs: u64 = std::env::var("IGA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let bin = support::iga_binary();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start(&bin, dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(128).build().unwrap();
        println!("| command | clients | HTTP commands/s | p50 | p99 | raw log appends/s (same concurrency) | service / raw |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for clients in [1usize, 16, 64] {
            let raw = raw_cell(clients, Duration::from_secs(secs)).await;
            for write in [Write::App, Write::Entitlement] {
                let http = http_cell(&client, &base, write, clients, Duration::from_secs(secs)).await;
                println!(
                    "| {} | {clients} | {:.0} | {:.2} ms | {:.2} ms | {:.0} | {:.2} |",
                    write.name(),
                    http.0,
                    http.1 as f64 / 1000.0,
                    http.2 as f64 / 1000.0,
                    raw,
                    http.0 / raw
                );
            }
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}

#[derive(Clone, Copy)]
enum Write {
    /// `POST /apps`: one new stream.
    App,
    /// `POST /apps/{id}/entitlements` with an alias: loads the app, claims
    /// the alias (one stream), writes the entitlement (another).
    Entitlement,
}

impl Write {
    fn name(self) -> &'static str {
        match self {
            Write::App => "`POST /apps`",
            Write::Entitlement => "`POST /apps/{id}/entitlements` (with alias)",
        }
    }
}

/// Each client sends one kind of catalog write back to back.
async fn http_cell(
    client: &reqwest::Client,
    base: &str,
    write: Write,
    clients: usize,
    d: Duration,
) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, stop, base) = (client.clone(), stop.clone(), base.to_string());
            tokio::spawn(async move {
                let url = match write {
                    Write::App => format!("{base}/api/v1/apps"),
                    Write::Entitlement => {
                        let r = client
                            .post(format!("{base}/api/v1/apps"))
                            .bearer_auth(TOKEN)
                            .header("content-type", "application/json")
                            .body(format!(r#"{{"displayName":"Target {c}"}}"#))
                            .send()
                            .await
                            .unwrap();
                        let app: serde_json::Value = r.json().await.unwrap();
                        format!("{base}/api/v1/apps/{}/entitlements", app["id"].as_str().unwrap())
                    }
                };
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = match write {
                        Write::App => format!(r#"{{"displayName":"App {c}-{i}","signOnMode":"SAML_2_0","description":"benchmark app"}}"#),
                        Write::Entitlement => format!(r#"{{"displayName":"Role {i}","alias":"role-{i}","riskLevelValueId":"high","durationGrant":"86400s"}}"#),
                    };
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    r.bytes().await.unwrap();
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    i += 1;
                }
                hist
            })
        })
        .collect();
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    (
        hist.len() as f64 / started.elapsed().as_secs_f64(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
    )
}
