//! What the HTTP benchmarks share: the release binary, a server on a free
//! port, the raw log append rate at a given concurrency.
#![allow(dead_code)] // each benchmark uses its own part

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_eventlog::contract::event;
use iga_eventlog::{EventStore, ExpectedVersion, Limits, StreamAppend};

pub const TOKEN: &str = "bench-admin-token-0123456789-abcd";

/// The `iga` binary beside the benchmark (built by `cargo build --release -p iga`).
pub fn iga_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap().join("iga");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p iga ({} missing)",
        bin.display()
    );
    bin
}

/// The event log a benchmark runs on, from `IGA_BENCH_EVENT_LOG`: `fjall`
/// (the default, the embedded log), `sled` (the embedded log on sled), `nats` (one
/// JetStream server, R1) or `nats-r3` (a three-node cluster on loopback,
/// R3). The NATS servers are started here and killed when this is dropped.
pub enum BenchLog {
    Sled,
    Fjall,
    Nats(iga_eventlog::nats_server::NatsServer),
    NatsR3(iga_eventlog::nats_server::NatsCluster),
}

impl BenchLog {
    pub fn from_env() -> BenchLog {
        use iga_eventlog::nats_server::{NatsCluster, NatsServer};
        match std::env::var("IGA_BENCH_EVENT_LOG").as_deref() {
            Ok("sled") => BenchLog::Sled,
            Err(_) | Ok("") | Ok("fjall") => BenchLog::Fjall,
            Ok("nats") => BenchLog::Nats(NatsServer::start().expect("start nats-server")),
            Ok("nats-r3") => BenchLog::NatsR3(NatsCluster::start().expect("start nats cluster")),
            Ok(other) => panic!("IGA_BENCH_EVENT_LOG={other}: use sled, fjall, nats or nats-r3"),
        }
    }

    /// `--event-log` for the server, with JetStream stream `stream` and
    /// the options in `IGA_BENCH_NATS_OPTIONS` (e.g. `batches_in_flight=1`).
    pub fn url(&self, stream: &str) -> Option<String> {
        let options = std::env::var("IGA_BENCH_NATS_OPTIONS")
            .map(|o| format!("&{o}"))
            .unwrap_or_default();
        match self {
            BenchLog::Sled => Some("sled:".into()),
            BenchLog::Fjall => None,
            BenchLog::Nats(n) => Some(format!("{}?stream={stream}{options}", n.url)),
            BenchLog::NatsR3(c) => Some(format!(
                "nats://{}?replicas=3&stream={stream}{options}",
                c.urls()
            )),
        }
    }

    /// The processes of the log's servers (none for the embedded logs).
    pub fn server_pids(&self) -> Vec<u32> {
        match self {
            BenchLog::Sled | BenchLog::Fjall => Vec::new(),
            BenchLog::Nats(n) => n.pid().into_iter().collect(),
            BenchLog::NatsR3(c) => c.servers.iter().filter_map(|s| s.pid()).collect(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BenchLog::Sled => "sled (embedded)",
            BenchLog::Fjall => "fjall (embedded)",
            BenchLog::Nats(_) => "NATS JetStream, R1",
            BenchLog::NatsR3(_) => "NATS JetStream, three nodes, R3",
        }
    }

    /// A fresh log of the same kind for the raw append cells.
    pub async fn raw_store(&self, dir: &std::path::Path, cell: usize) -> Arc<dyn EventStore> {
        let url = match self.raw_jetstream_url(cell) {
            None if matches!(self, BenchLog::Sled) => Some("sled:".to_string()),
            None => None,
            Some(url) => Some(format!("{url}&prefix=raw{cell}")),
        };
        iga_eventlog::open(url.as_deref(), dir, Limits::default())
            .await
            .unwrap()
            .store()
    }

    /// The JetStream URL of raw cell `cell`; `None` on the embedded logs,
    /// whose raw logs are in temporary directories of their own.
    fn raw_jetstream_url(&self, cell: usize) -> Option<String> {
        match self {
            BenchLog::Sled | BenchLog::Fjall => None,
            BenchLog::Nats(_) | BenchLog::NatsR3(_) => self.url(&format!("RAW{cell}")),
        }
    }
}

impl BenchLog {
    /// Deletes the JetStream stream of raw cell `cell` (nothing for the
    /// embedded logs, in their own temporary directories): hundreds of
    /// thousands of messages, and their ids in the duplicate window, would
    /// otherwise stay on the server the next workflow cell uses.
    pub async fn drop_raw_store(&self, cell: usize) {
        let Some(url) = self.raw_jetstream_url(cell) else {
            return;
        };
        let config = iga_eventlog::jetstream::JetStreamConfig::from_url(&url).unwrap();
        let client = config.connect_client().await.unwrap();
        async_nats::jetstream::new(client)
            .delete_stream(&config.stream)
            .await
            .unwrap();
    }
}

/// Starts `iga serve` on a free port; answers the child and its base URL.
pub fn start(bin: &std::path::Path, dir: &std::path::Path) -> (Child, String) {
    start_on(bin, dir, None)
}

/// Starts `iga serve` on a free port with `--event-log event_log`.
pub fn start_on(
    bin: &std::path::Path,
    dir: &std::path::Path,
    event_log: Option<&str>,
) -> (Child, String) {
    start_process(bin, &["serve"], dir, event_log)
}

/// Starts `bin` `args` (`iga serve`, or a single-role binary such as
/// `command-service` with no args) on a free port with `--event-log
/// event_log` and the bench's admin token; answers the child and its base
/// URL once it listens.
pub fn start_process(
    bin: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    event_log: Option<&str>,
) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(bin);
    if let Some(url) = event_log {
        cmd.env("IGA_EVENT_LOG", url);
    }
    let mut child = cmd
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("IGA_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, base)
}

/// Kills the server when dropped, so a failing benchmark leaves nothing behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `/readyz` answers 200.
pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log alone: each writer appends one event to a new stream per append,
/// as a create does. Answers appends per second.
pub async fn raw_cell(writers: usize, d: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = iga_eventlog::open(None, dir.path(), Limits::default())
        .await
        .unwrap()
        .store();
    raw_cell_on(store, writers, d).await
}

/// [`raw_cell`] on a given log.
pub async fn raw_cell_on(store: Arc<dyn EventStore>, writers: usize, d: Duration) -> f64 {
    raw_rate(store, writers, d, 1).await
}

/// The log alone, in the shape of a workflow command's commit: each writer
/// appends one event to each of two new streams as one atomic append
/// ([`EventStore::append_streams`], as the request and its pair are
/// written). Answers commits per second; `None` on a log that cannot
/// append to several streams at once.
pub async fn raw_commit_cell_on(
    store: Arc<dyn EventStore>,
    writers: usize,
    d: Duration,
) -> Option<f64> {
    if !store.appends_streams_atomically() {
        return None;
    }
    Some(raw_rate(store, writers, d, 2).await)
}

/// Appends per second by `writers` concurrent writers for `d`, each append
/// one event to each of `streams` new streams (one stream: a plain append).
async fn raw_rate(store: Arc<dyn EventStore>, writers: usize, d: Duration, streams: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let parts: Vec<StreamAppend> = (0..streams)
                        .map(|s| StreamAppend {
                            stream: format!("raw{streams}-{w}-{n}-{s}"),
                            expected: ExpectedVersion::NoStream,
                            events: vec![event("bench.AppCreated", 200)],
                        })
                        .collect();
                    if streams == 1 {
                        let p = parts.into_iter().next().unwrap();
                        store.append(&p.stream, p.expected, p.events).await.unwrap();
                    } else {
                        store.append_streams(parts).await.unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// `event` as the command service would have stored it, recorded at `at`
/// (micros) by `admin`: for benchmarks that write a log straight.
pub fn envelope_at(event: iga_schemas::DomainEvent, at: i64) -> iga_schemas::EventEnvelope {
    iga_schemas::EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_unix_micros: at,
        actor_id: "admin".into(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}

/// A POST of `body` as `token`; answers the status, the consistency token
/// (empty if none) and the JSON body (null if none).
pub async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: serde_json::Value,
) -> (u16, String, serde_json::Value) {
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
    (
        status,
        pos,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// CPU time (user + system) the process `pid` has used, in seconds.
#[allow(dead_code)]
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, so 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// A webhook receiver in the bench process that answers 200 at once and
/// counts the calls; its URL.
pub async fn receiver(count: Arc<std::sync::atomic::AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
