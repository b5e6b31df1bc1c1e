//! Webhook deliveries per second against real `iga serve` (release build):
//! 1 and 16 webhooks, each its own local receiver (an axum server in this
//! process, answering 200 at once), subscribed to `iga.v1.UserCreated`;
//! `IGA_BENCH_EVENTS` users (default 500) are created first, then the clock
//! runs until every webhook got every event. Each delivery is signed and
//! recorded in the log (requested, attempted, succeeded): the rate is the
//! engine's, not only the receivers'.
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench webhook_deliveries
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{receiver, start, wait_ready, KillOnDrop, TOKEN};

fn main() {
    let events: usize = std::env::var("IGA_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let bin = support::iga_binary();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| webhooks | events | deliveries | seconds | deliveries/s | user creates/s (same run) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for webhooks in [1usize, 16] {
        let dir = tempfile::tempdir().unwrap();
        let (child, base) = start(&bin, dir.path());
        let _server = KillOnDrop(child);
        rt.block_on(async {
            wait_ready(&base).await;
            let client = reqwest::Client::new();
            let count = Arc::new(AtomicUsize::new(0));
            for _ in 0..webhooks {
                let url = receiver(count.clone()).await;
                let r = client
                    .post(format!("{base}/api/v1/webhooks"))
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({"url": url, "eventTypes": ["iga.v1.UserCreated"]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
            let started = Instant::now();
            let writers = 16;
            let per = events.div_ceil(writers);
            let mut tasks = Vec::new();
            for w in 0..writers {
                let client = client.clone();
                let base = base.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..per {
                        let r = client
                            .post(format!("{base}/api/v1/users"))
                            .bearer_auth(TOKEN)
                            .json(&serde_json::json!({"username": format!("u{w}-{i}")}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 201);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let created = started.elapsed();
            let want = per * writers * webhooks;
            let deadline = Instant::now() + Duration::from_secs(600);
            while count.load(Ordering::Relaxed) < want {
                assert!(
                    Instant::now() < deadline,
                    "{} of {want} delivered",
                    count.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "| {webhooks} | {} | {want} | {secs:.2} | {:.0} | {:.0} |",
                per * writers,
                want as f64 / secs,
                (per * writers) as f64 / created.as_secs_f64()
            );
        });
    }
}
