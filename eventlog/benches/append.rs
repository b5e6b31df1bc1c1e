//! Benchmark of the embedded event log: append throughput and latency with
//! 1, 16 and 256 concurrent writers and 1 and 5 events per append, then
//! `read_all` throughput over everything written, then `read_stream` the two
//! ways a command reads: a whole short stream (a cold load) and past a
//! stream's head (a fold it has cached, with nothing new).
//!
//! `cargo bench -p iga-eventlog --bench append` (each cell runs
//! `IGA_BENCH_SECS` seconds, default 3; `IGA_BENCH_LOG=sled` measures the
//! sled engine instead of fjall, the default). Prints markdown tables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use iga_eventlog::contract::event;
use iga_eventlog::fjall_store::FjallEventStore;
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, ExpectedVersion, Limits};

const PAYLOAD_BYTES: usize = 200;

fn main() {
    let secs: u64 = std::env::var("IGA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let engine = std::env::var("IGA_BENCH_LOG").unwrap_or_else(|_| "fjall".into());
        let store: Arc<dyn EventStore> = match engine.as_str() {
            "sled" => Arc::new(SledEventStore::open(path, Limits::default()).unwrap()),
            "fjall" => Arc::new(FjallEventStore::open(path, Limits::default()).unwrap()),
            other => panic!("IGA_BENCH_LOG={other}: expected fjall or sled"),
        };
        println!("log: {}\n", store.describe());
        println!("| writers | events/append | appends/s | events/s | p50 append | p99 append |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
        for writers in [1usize, 16, 256] {
            for per_append in [1usize, 5] {
                let r = run_cell(
                    store.clone(),
                    writers,
                    per_append,
                    Duration::from_secs(secs),
                )
                .await;
                println!(
                    "| {writers} | {per_append} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
                    r.appends_per_sec,
                    r.appends_per_sec * per_append as f64,
                    r.p50_us as f64 / 1000.0,
                    r.p99_us as f64 / 1000.0
                );
            }
        }
        let head = store.head().await.unwrap();
        // read_all over the whole log, twice (the second with a warm cache).
        for pass in ["cold", "warm"] {
            let started = Instant::now();
            let mut after = 0;
            let mut n = 0u64;
            loop {
                let batch = store.read_all(after, 10_000).await.unwrap();
                let Some(last) = batch.last() else { break };
                after = last.position;
                n += batch.len() as u64;
            }
            assert_eq!(n, head);
            let s = started.elapsed().as_secs_f64();
            println!(
                "\nread_all ({pass}): {n} events in {s:.2} s = {:.0} events/s",
                n as f64 / s
            );
        }
        read_stream_cells(store.as_ref(), Duration::from_secs(secs)).await;
    });
}

/// `read_stream` calls per second on 1,000 streams of 5 events, read whole
/// and read past their head.
async fn read_stream_cells(store: &dyn EventStore, duration: Duration) {
    let streams: Vec<String> = (0..1000).map(|i| format!("read-{i}")).collect();
    for stream in &streams {
        let events = (0..5)
            .map(|_| event("bench.Event", PAYLOAD_BYTES))
            .collect();
        store
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    println!("\n| read_stream | calls/s | µs per call |");
    println!("| --- | ---: | ---: |");
    for (what, from, expect) in [("whole stream (5 events)", 1, 5), ("past the head", 6, 0)] {
        let started = Instant::now();
        let mut calls = 0u64;
        while started.elapsed() < duration {
            for stream in &streams {
                let got = store.read_stream(stream, from, 1000).await.unwrap();
                assert_eq!(got.len(), expect);
            }
            calls += streams.len() as u64;
        }
        let s = started.elapsed().as_secs_f64();
        println!(
            "| {what} | {:.0} | {:.2} |",
            calls as f64 / s,
            s * 1e6 / calls as f64
        );
    }
}

struct CellResult {
    appends_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn run_cell(
    store: Arc<dyn EventStore>,
    writers: usize,
    per_append: usize,
    duration: Duration,
) -> CellResult {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let stream = format!("bench-{writers}-{per_append}-{w}");
            let mut version = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..per_append)
                    .map(|_| event("bench.Event", PAYLOAD_BYTES))
                    .collect();
                let expected = if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                };
                let t = Instant::now();
                let r = store.append(&stream, expected, batch).await.unwrap();
                hist.record(t.elapsed().as_micros() as u64).unwrap();
                version = r.last_version;
            }
            hist
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    CellResult {
        appends_per_sec: hist.len() as f64 / elapsed,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    }
}
