//! Crash safety of the embedded log, on each engine: a child process appends
//! under load and is killed with SIGKILL at random moments; after each kill
//! the log reopens with every acknowledged event at its acknowledged
//! position, positions contiguous, nothing corrupt.
//!
//! The child is this same test binary, re-run with `IGA_CRASH_CHILD_DIR` set
//! so that only `crash_child` does anything (on the engine named by
//! `IGA_CRASH_CHILD_ENGINE`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iga_eventlog::contract::event;
use iga_eventlog::fjall_store::FjallEventStore;
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, ExpectedVersion, Limits};
use rand::Rng;

const CHILD_ENV: &str = "IGA_CRASH_CHILD_DIR";
const ENGINE_ENV: &str = "IGA_CRASH_CHILD_ENGINE";

/// Opens the log at `path` on `engine` (`sled` or `fjall`).
fn open(engine: &str, path: &str) -> std::sync::Arc<dyn EventStore> {
    match engine {
        "fjall" => std::sync::Arc::new(FjallEventStore::open(path, Limits::default()).unwrap()),
        _ => std::sync::Arc::new(SledEventStore::open(path, Limits::default()).unwrap()),
    }
}

/// Checks the whole log at `path` and returns how many events it holds.
fn verify(engine: &str, path: &str) -> iga_eventlog::Result<u64> {
    match engine {
        "fjall" => FjallEventStore::open(path, Limits::default())?.verify(),
        _ => SledEventStore::open(path, Limits::default())?.verify(),
    }
}

/// In the child: append forever from 32 writers, printing each acknowledgement.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let engine = std::env::var(ENGINE_ENV).unwrap_or_default();
        let store = open(&engine, &dir);
        let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
        println!("READY");
        let mut tasks = Vec::new();
        for w in 0..32 {
            let (store, out) = (store.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                let stream = format!("crash-{w}-{}", uuid_suffix());
                loop {
                    let n = 1 + (w % 3);
                    let batch: Vec<_> = (0..n).map(|_| event("t.Crash", 64)).collect();
                    let ids: Vec<_> = batch.iter().map(|e| e.event_id.clone()).collect();
                    let r = store
                        .append(&stream, ExpectedVersion::Any, batch)
                        .await
                        .unwrap();
                    let mut out = out.lock().unwrap();
                    for (i, id) in ids.iter().enumerate() {
                        let pos = r.position + 1 + i as u64 - n as u64;
                        writeln!(out, "ACK {id} {pos}").unwrap();
                    }
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn uuid_suffix() -> String {
    event("x", 0).event_id.replace('-', "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_on_sled() {
    acknowledged_events_survive_sigkill("sled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_on_fjall() {
    acknowledged_events_survive_sigkill("fjall").await;
}

async fn acknowledged_events_survive_sigkill(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let path_str = path.to_str().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut rng = rand::rng();
    let rounds = 12;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &path)
            .env(ENGINE_ENV, engine)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait until the child is appending, then let it run a random while.
        let mut before_kill = Vec::new();
        loop {
            let line = lines.next().expect("child exited early").unwrap();
            if line.ends_with("READY") {
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(20..400));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in lines.map_while(Result::ok) {
                got.push(line);
            }
            got
        });
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        before_kill.extend(reader.join().unwrap());
        let mut this_round = 0;
        for line in before_kill {
            let mut parts = line.split(' ');
            if parts.next() == Some("ACK") {
                let id = parts.next().unwrap().to_string();
                let pos: u64 = parts.next().unwrap().parse().unwrap();
                acked.insert(id, pos);
                this_round += 1;
            }
        }
        let total = verify(engine, path_str).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let store = open(engine, path_str);
        let all = store.read_all(0, usize::MAX).await.unwrap();
        assert_eq!(all.len() as u64, total);
        let stored: HashMap<&str, u64> = all
            .iter()
            .map(|r| (r.envelope.event_id.as_str(), r.position))
            .collect();
        for (id, pos) in &acked {
            assert_eq!(
                stored.get(id.as_str()),
                Some(pos),
                "round {round}: acknowledged event {id} lost or moved"
            );
        }
        eprintln!(
            "round {round}: {this_round} acknowledged this round, {} in total, {total} stored",
            acked.len()
        );
        drop(store);
    }
    assert!(
        acked.len() > 1000,
        "the child acknowledged too little to prove anything: {}",
        acked.len()
    );
}
