//! Catalog search at scale: 100,000 entitlements across 10,000 apps.
//!
//! Writes the catalog's events straight into an embedded event log (as the
//! command service would have), then measures, against a real `iga serve`
//! (release build):
//! - how long building every read model, the search index included, from the
//!   log takes: `iga rebuild`, and a cold start until `/readyz`;
//! - `GET /api/v1/catalog` latency (p50/p99) over HTTP for several kinds of
//!   query, from 1 client and from 8 concurrent clients.
//!
//! ```sh
//! cargo build --release -p iga && cargo bench -p iga-tests --bench catalog_search
//! ```
//! `IGA_BENCH_APPS` (default 10000) and `IGA_BENCH_ENTITLEMENTS_PER_APP`
//! (default 10) size the catalog; `IGA_BENCH_QUERIES` (default 400) is the
//! number of queries per kind and client count. `IGA_BENCH_DATA_DIR` keeps
//! the data dir there (it must not exist yet) for a closer look.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use iga_eventlog::{EventEnvelope, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};

/// Makes the query string of the i-th query of a kind.
type QueryMaker = Box<dyn Fn(usize) -> String>;

mod support;
use support::{rss_mib, start, wait_ready, TOKEN};

const WORDS: &[&str] = &[
    "admin",
    "read",
    "write",
    "billing",
    "deploy",
    "ops",
    "finance",
    "payroll",
    "sales",
    "support",
    "engineering",
    "security",
    "audit",
    "viewer",
    "editor",
    "owner",
    "member",
    "guest",
    "analyst",
    "developer",
    "release",
    "incident",
    "oncall",
    "database",
    "warehouse",
    "marketing",
    "legal",
    "compliance",
    "network",
    "storage",
    "compute",
    "cluster",
    "project",
    "team",
    "region",
    "europe",
    "america",
    "asia",
    "production",
    "staging",
    "sandbox",
    "reporting",
    "dashboard",
    "pipeline",
    "backup",
    "restore",
    "schema",
    "bucket",
    "queue",
    "topic",
    "ledger",
    "invoice",
    "contract",
    "vendor",
    "customer",
    "partner",
    "identity",
    "access",
    "token",
    "secret",
    "vault",
    "key",
    "certificate",
    "domain",
    "mail",
    "calendar",
    "drive",
    "wiki",
    "ticket",
    "chat",
    "video",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A deterministic pseudo-random word.
fn word(seed: u64) -> &'static str {
    let h = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    WORDS[(h % WORDS.len() as u64) as usize]
}

fn envelope(e: DomainEvent) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_unix_micros: 1_700_000_000_000_000,
        actor_id: "bench".into(),
        event_type: e.event_type().into(),
        schema_version: e.schema_version(),
        payload: e.encode_payload(),
        ..Default::default()
    }
}

fn main() {
    let apps = env_usize("IGA_BENCH_APPS", 10_000);
    let per_app = env_usize("IGA_BENCH_ENTITLEMENTS_PER_APP", 10);
    let queries = env_usize("IGA_BENCH_QUERIES", 400);
    let bin = support::iga_binary();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = std::env::var_os("IGA_BENCH_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The log: one AppCreated per app, one AppEntitlementCreated per entitlement.
    let started = Instant::now();
    let (app_ids, aliases) = rt.block_on(write_catalog(&dir_path, apps, per_app));
    let events = apps * (per_app + 1);
    println!(
        "wrote {events} events ({apps} apps, {} entitlements) in {:.1}s",
        apps * per_app,
        started.elapsed().as_secs_f64()
    );

    // 2. Building the read models from the log.
    let t = Instant::now();
    let out = Command::new(&bin)
        .args(["rebuild", "--data-dir"])
        .arg(&dir_path)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let rebuild = t.elapsed();
    let t = Instant::now();
    let (mut child, base) = start(&bin, &dir_path);
    rt.block_on(wait_ready(&base));
    let cold_start = t.elapsed();
    let rss = rss_mib(child.id());
    println!("\n| catalog | `iga rebuild` (all read models) | rebuild events/s | cold start to ready (index loaded) | server RSS |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| {apps} apps, {} entitlements | {:.1} s | {:.0} | {:.2} s | {rss} MiB |",
        apps * per_app,
        rebuild.as_secs_f64(),
        events as f64 / rebuild.as_secs_f64(),
        cold_start.as_secs_f64()
    );

    // 3. Queries.
    let kinds: Vec<(&str, QueryMaker)> = vec![
        (
            "one word (`query=billing`)",
            Box::new(|i| format!("query={}", word(i as u64 * 7 + 1))),
        ),
        (
            "two-letter prefix (`query=de`)",
            Box::new(|i| format!("query={}", &word(i as u64 * 3)[..2])),
        ),
        (
            "two words (`query=billing%20adm`)",
            Box::new(|i| format!("query={}%20{}", word(i as u64), &word(i as u64 + 5)[..3])),
        ),
        ("exact alias", {
            let aliases = aliases.clone();
            Box::new(move |i| format!("query={}", aliases[i * 7919 % aliases.len()]))
        }),
        ("app filter, no text", {
            let app_ids = app_ids.clone();
            Box::new(move |i| format!("appId={}", app_ids[i * 104_729 % app_ids.len()]))
        }),
        (
            "word + type + risk filters",
            Box::new(|i| {
                format!(
                    "query={}&type=entitlement&riskLevelValueId=high",
                    word(i as u64)
                )
            }),
        ),
        (
            "everything, no text (first page)",
            Box::new(|_| String::new()),
        ),
        (
            "page 5 of a word query",
            Box::new(|i| format!("query={}&pageSize=25&PAGE5", word(i as u64))),
        ),
    ];
    println!("\n| query (pageSize 25) | matches (median) | 1 client p50 | 1 client p99 | 8 clients p50 | 8 clients p99 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()
        .unwrap();
    for (name, make) in &kinds {
        let make: Arc<dyn Fn(usize) -> String + Send + Sync> = {
            let qs: Vec<String> = (0..queries).map(make).collect();
            Arc::new(move |i| qs[i % qs.len()].clone())
        };
        let (h1, matches) = rt.block_on(run_queries(&client, &base, make.clone(), queries, 1));
        let (h8, _) = rt.block_on(run_queries(&client, &base, make, queries, 8));
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {name} | {matches} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            ms(&h1, 0.5),
            ms(&h1, 0.99),
            ms(&h8, 0.5),
            ms(&h8, 0.99)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn write_catalog(
    dir: &std::path::Path,
    apps: usize,
    per_app: usize,
) -> (Vec<String>, Vec<String>) {
    let store = iga_eventlog::open(None, dir, Limits::default())
        .await
        .unwrap()
        .store();
    let mut app_ids = Vec::with_capacity(apps);
    let mut aliases = Vec::new();
    let mut work: Vec<(String, DomainEvent)> = Vec::with_capacity(apps * (per_app + 1));
    for a in 0..apps {
        let app_id = uuid::Uuid::now_v7().to_string();
        let seed = a as u64 * 1000;
        work.push((
            format!("app-{app_id}"),
            v1::AppCreated {
                app_id: app_id.clone(),
                display_name: format!("{} {} {a}", capital(word(seed)), capital(word(seed + 1))),
                description: format!("The {} and {} system", word(seed + 2), word(seed + 3)),
                access_entitlement_id: uuid::Uuid::now_v7().to_string(),
                configuration_json: "{}".into(),
                ..Default::default()
            }
            .into(),
        ));
        for e in 0..per_app {
            let id = uuid::Uuid::now_v7().to_string();
            let s = seed + 10 + e as u64 * 10;
            let alias = format!("{}-{}-{e}", word(s), word(s + 1));
            if a % 10 == 0 {
                aliases.push(alias.clone());
            }
            work.push((
                format!("entitlement-{id}"),
                v1::AppEntitlementCreated {
                    app_id: app_id.clone(),
                    entitlement_id: id,
                    display_name: format!("{} {}", capital(word(s)), capital(word(s + 1))),
                    description: format!(
                        "Lets you {} the {} {}",
                        word(s + 2),
                        word(s + 3),
                        word(s + 4)
                    ),
                    alias,
                    slug: word(s + 5).into(),
                    purpose: "APP_ENTITLEMENT_PURPOSE_VALUE_ASSIGNMENT".into(),
                    risk_level_value_id: ["low", "medium", "high"][e % 3].into(),
                    requestable: e % 7 != 0,
                    ..Default::default()
                }
                .into(),
            ));
        }
        app_ids.push(app_id);
    }
    // Append concurrently, as many clients would.
    let work = Arc::new(work);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, work, next) = (store.clone(), work.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((stream, event)) = work.get(i) else {
                        break;
                    };
                    store
                        .append(
                            stream,
                            ExpectedVersion::NoStream,
                            vec![envelope(event.clone())],
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(store);
    (app_ids, aliases)
}

fn capital(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn run_queries(
    client: &reqwest::Client,
    base: &str,
    make: Arc<dyn Fn(usize) -> String + Send + Sync>,
    n: usize,
    clients: usize,
) -> (Histogram<u64>, u64) {
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, base, make) = (client.clone(), base.to_string(), make.clone());
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut matches = Vec::new();
                for i in (c..n).step_by(clients) {
                    let mut q = make(i);
                    let page5 = q.contains("&PAGE5");
                    q = q.replace("&PAGE5", "");
                    let mut token = String::new();
                    for page in 0..if page5 { 5 } else { 1 } {
                        let url = format!("{base}/api/v1/catalog?{q}&pageToken={token}");
                        let t = Instant::now();
                        let r = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                        assert_eq!(r.status(), 200, "{url}");
                        let v: serde_json::Value = r.json().await.unwrap();
                        if page == 4 || !page5 {
                            hist.record(t.elapsed().as_micros() as u64).unwrap();
                            matches.push(v["totalCount"].as_u64().unwrap());
                        }
                        match v["nextPageToken"].as_str() {
                            Some(t) => token = t.to_string(),
                            None => break,
                        }
                    }
                }
                (hist, matches)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut matches = Vec::new();
    for t in tasks {
        let (h, m) = t.await.unwrap();
        hist.add(h).unwrap();
        matches.extend(m);
    }
    matches.sort();
    (hist, matches.get(matches.len() / 2).copied().unwrap_or(0))
}
