//! The verifiable log at size: appends N events (default 1,000,000) to a
//! real embedded sled log, lets the audit tree's follower hash them
//! (events/s, against the log's raw read rate and SHA-256's in the same
//! run), then times inclusion and consistency proofs at that size, and
//! leaves a signed checkpoint in the log so `iga audit verify` can be timed
//! on the same data dir.
//!
//! `IGA_BENCH_EVENTS=1000000 IGA_BENCH_DIR=/tmp/audit-bench cargo bench -p projection-service --bench audit_tree`
//! then `target/release/iga audit verify --data-dir /tmp/audit-bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_eventlog::{EventEnvelope, EventStore, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};
use projection_service::audit_tree::leaf_bytes;
use projection_service::merkle::{leaf_hash, verify_inclusion};
use projection_service::ReadModels;

fn envelope(n: u64) -> EventEnvelope {
    let event: DomainEvent = v1::GrantIssued {
        grant_id: format!("grant-{n:012}"),
        user_id: format!("user-{:08}", n % 100_000),
        app_id: format!("app-{:04}", n % 500),
        entitlement_id: format!("ent-{:06}", n % 20_000),
        request_id: format!("req-{n:012}"),
        ..Default::default()
    }
    .into();
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_unix_micros: 1_700_000_000_000_000 + n as i64,
        actor_id: "system".into(),
        correlation_id: format!("corr-{n}"),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("IGA_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::var("IGA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("iga-audit-bench"));
    // IGA_BENCH_REUSE=1: keep the log of an earlier run, hash it afresh.
    let reuse = std::env::var("IGA_BENCH_REUSE").is_ok() && dir.join("eventlog").exists();
    if reuse {
        let _ = std::fs::remove_dir_all(dir.join("readmodels"));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn EventStore> = iga_eventlog::open(None, &dir, Limits::default())
        .await
        .unwrap()
        .store();

    let started = Instant::now();
    let mut next = if reuse {
        store.head().await.unwrap()
    } else {
        0
    };
    let n = if reuse { next.max(n) } else { n };
    while next < n {
        let events: Vec<_> = (next..(next + 1000).min(n)).map(envelope).collect();
        next += events.len() as u64;
        store
            .append(&format!("access-{next}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    let append = started.elapsed();
    println!(
        "appended {n} events in {:.1}s ({:.0}/s)",
        append.as_secs_f64(),
        n as f64 / append.as_secs_f64()
    );

    // Raw limits, same run: reading the log back, and SHA-256 of the leaves.
    let started = Instant::now();
    let mut after = 0;
    let mut bytes = 0usize;
    let mut leaves = 0u64;
    let mut hash_time = Duration::ZERO;
    loop {
        let batch = store.read_all(after, 8192).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        let t = Instant::now();
        for e in &batch {
            let leaf = leaf_bytes(e);
            bytes += leaf.len();
            std::hint::black_box(leaf_hash(&leaf));
            leaves += 1;
        }
        hash_time += t.elapsed();
    }
    let read = started.elapsed() - hash_time;
    println!(
        "raw: read the log {:.0} events/s; encode + SHA-256 of leaves {:.0} events/s ({:.0} bytes/leaf)",
        leaves as f64 / read.as_secs_f64(),
        leaves as f64 / hash_time.as_secs_f64(),
        bytes as f64 / leaves as f64
    );

    // The follower, from nothing to the whole log.
    let models = Arc::new(ReadModels::open(dir.join("readmodels"), vec![]).unwrap());
    let tree = models.log_tree().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let follower = tokio::spawn(tree.clone().follow(store.clone(), stop));
    let head = store.head().await.unwrap();
    assert!(tree.wait_for(head, Duration::from_secs(3600)).await);
    let follow = started.elapsed();
    println!(
        "audit tree follower: {n} events hashed and stored in {:.1}s ({:.0} events/s)",
        follow.as_secs_f64(),
        n as f64 / follow.as_secs_f64()
    );

    // Proofs at size n.
    let size = tree.status().size;
    let root = tree.root(size).unwrap().unwrap();
    let mut inclusion = Vec::new();
    let mut rng = 0x2545F4914F6CDD1Du64;
    for _ in 0..10_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let position = 1 + rng % n;
        let t = Instant::now();
        let index = tree.index_of(position).unwrap().unwrap();
        let proof = tree.inclusion(index, size).unwrap().unwrap();
        let leaf = tree.leaf(index).unwrap().unwrap();
        inclusion.push(t.elapsed());
        assert!(verify_inclusion(&leaf, index, size, &proof, &root));
    }
    inclusion.sort();
    println!(
        "inclusion proof at {size} events (index lookup + proof + leaf, 10,000 random): p50 {:?} p99 {:?} max {:?}",
        pct(&inclusion, 0.5),
        pct(&inclusion, 0.99),
        inclusion.last().unwrap()
    );
    let mut consistency = Vec::new();
    for i in 1..=1000u64 {
        let from = 1 + (i * 7919) % size;
        let t = Instant::now();
        std::hint::black_box(tree.consistency(from, size).unwrap().unwrap());
        consistency.push(t.elapsed());
    }
    consistency.sort();
    println!(
        "consistency proof to {size} events (1,000 sizes): p50 {:?} p99 {:?}",
        pct(&consistency, 0.5),
        pct(&consistency, 0.99)
    );

    // A checkpoint, so `iga audit verify` has something to check.
    let seed = [11u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let head =
        projection_service::tree_head::sign(&key, "iga.bench", size, &root, 1_800_000_000_000_000);
    let event: DomainEvent = head.into();
    store
        .append(
            "audit-checkpoints",
            ExpectedVersion::Any,
            vec![EventEnvelope {
                event_id: uuid::Uuid::now_v7().to_string(),
                actor_id: "system".into(),
                event_type: event.event_type().into(),
                schema_version: event.schema_version(),
                payload: event.encode_payload(),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    use base64::Engine as _;
    std::fs::write(
        dir.join("audit-signing.key"),
        base64::engine::general_purpose::STANDARD.encode(seed),
    )
    .unwrap();
    let head = store.head().await.unwrap();
    assert!(tree.wait_for(head, Duration::from_secs(60)).await);
    stop_tx.send(true).unwrap();
    follower.await.unwrap().unwrap();
    let on_disk = |p: &std::path::Path| -> u64 { walk(p) };
    println!(
        "disk: log {} MB, read models + tree {} MB; data dir {}",
        on_disk(&dir.join("eventlog")) / 1_000_000,
        on_disk(&dir.join("readmodels")) / 1_000_000,
        dir.display()
    );
}

fn walk(p: &std::path::Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| walk(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}
