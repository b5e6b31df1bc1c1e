//! Crash safety: a child process appends under load and is killed with SIGKILL
//! at random moments; after each kill the log reopens with every acknowledged
//! event at its acknowledged position, positions contiguous, nothing corrupt.
//!
//! The child is this same test binary, re-run with `IGA_CRASH_CHILD_DIR` set
//! so that only `crash_child` does anything.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iga_eventlog::contract::event;
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, ExpectedVersion, Limits};
use rand::Rng;

const CHILD_ENV: &str = "IGA_CRASH_CHILD_DIR";

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
        let store = SledEventStore::open(&dir, Limits::default()).unwrap();
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
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
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
        let store = SledEventStore::open(&path, Limits::default()).unwrap();
        let total = store
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
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
