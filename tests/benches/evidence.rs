//! Evidence at size, over HTTP against a real `iga serve` (release build):
//! a year of synthetic grant history written straight to a fresh embedded
//! log (`IGA_BENCH_GRANTS` grants, default 100,000, over 20 apps, each held
//! 1 to 90 days, issued evenly through 2025, most of them ended), then the
//! access report for one app (about 5,000 intervals) over the year and over
//! one month, as JSON and as CSV: time to the last byte, rows, bytes; and
//! beside it the grant ledger's own page reads of the same app, the raw
//! limit the report streams from.
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench evidence
//! ```

mod support;

use std::time::Instant;

use iga_eventlog::{ExpectedVersion, Limits};
use iga_schemas::v1;
use support::{start, KillOnDrop, TOKEN};

const APPS: u64 = 20;
const YEAR_START: i64 = 1_735_689_600_000_000; // 2025-01-01T00:00:00Z
const DAY: i64 = 86_400_000_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let grants: u64 = std::env::var("IGA_BENCH_GRANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = iga_eventlog::open(None, dir.path(), Limits::default())
        .await
        .unwrap()
        .store();
    let started = Instant::now();
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ended = 0;
    for g in 0..grants {
        let app = format!("app-{}", g % APPS);
        let starts = YEAR_START + (g as i64 * 365 * DAY) / grants as i64;
        let lasts = (1 + next() % 90) as i64 * DAY;
        let user = format!("user-{}", next() % 5_000);
        let entitlement = format!("{app}-ent-{}", next() % 10);
        let grant_id = format!("grant-{g}");
        let mut events = vec![support::envelope_at(
            v1::GrantIssued {
                grant_id: grant_id.clone(),
                user_id: user.clone(),
                app_id: app.clone(),
                entitlement_id: entitlement.clone(),
                grant_type: "admin".into(),
                starts_at_micros: starts,
                ..Default::default()
            }
            .into(),
            starts,
        )];
        if starts + lasts < YEAR_START + 365 * DAY {
            ended += 1;
            events.push(support::envelope_at(
                v1::GrantEnded {
                    grant_id: grant_id.clone(),
                    user_id: user,
                    entitlement_id: entitlement,
                    ended_at_micros: starts + lasts,
                    reason: "revoked".into(),
                    app_id: app,
                    ..Default::default()
                }
                .into(),
                starts + lasts,
            ));
        }
        store
            .append(
                &format!("access-{grant_id}"),
                ExpectedVersion::NoStream,
                events,
            )
            .await
            .unwrap();
    }
    let events = store.head().await.unwrap();
    println!(
        "wrote {grants} grants ({ended} ended), {events} events, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop(store);

    let bin = support::iga_binary();
    let started = Instant::now();
    let (child, base) = start(&bin, dir.path());
    let _server = KillOnDrop(child);
    support::wait_ready(&base).await;
    println!(
        "serve ready (read models built) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::new();
    let head = {
        let r: serde_json::Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["logHead"].to_string()
    };

    for (window, from, to) in [
        ("the year", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("March", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"),
    ] {
        for format in ["json", "csv"] {
            let mut times = Vec::new();
            let (mut rows, mut bytes) = (0, 0);
            for _ in 0..5 {
                let t = Instant::now();
                let body = client
                    .get(format!(
                        "{base}/api/v1/reports/access?appId=app-0&from={from}&to={to}&format={format}"
                    ))
                    .bearer_auth(TOKEN)
                    .header("X-Consistency-Token", &head)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                bytes = body.len();
                rows = if format == "csv" {
                    body.iter().filter(|b| **b == b'\n').count() - 1
                } else {
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["list"]
                        .as_array()
                        .unwrap()
                        .len()
                };
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "report of app-0 over {window} as {format}: {rows} rows, {} KB, median {:.1} ms (min {:.1}, max {:.1}) over 5 runs",
                bytes / 1000,
                times[2],
                times[0],
                times[4]
            );
        }
    }
    // The raw limit: the ledger's pages of that app, 1,000 at a time.
    let t = Instant::now();
    let mut token: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut req = client
            .get(format!("{base}/api/v1/grants?appId=app-0&includeExpired=true&includePending=true&pageSize=1000"))
            .bearer_auth(TOKEN);
        if let Some(t) = &token {
            req = req.query(&[("pageToken", t)]);
        }
        let page: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        seen += page["list"].as_array().unwrap().len();
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    println!(
        "raw: GET /grants?appId=app-0 (every grant ever, pages of 1,000): {seen} grants in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
