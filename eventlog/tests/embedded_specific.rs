//! Promises the embedded log makes beyond the contract, on each engine:
//! contiguous positions, durability across reopen, and a log that verifies.

use std::path::Path;

use iga_eventlog::contract::event;
use iga_eventlog::embedded::{EmbeddedLog, Engine};
use iga_eventlog::fjall_store::FjallEventStore;
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, ExpectedVersion, Limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_contiguous_and_survive_reopen_on_sled() {
    positions_are_contiguous_and_survive_reopen(|p| SledEventStore::open(p, Limits::default()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_contiguous_and_survive_reopen_on_fjall() {
    positions_are_contiguous_and_survive_reopen(|p| FjallEventStore::open(p, Limits::default()))
        .await;
}

async fn positions_are_contiguous_and_survive_reopen<E: Engine>(
    open: impl Fn(&Path) -> iga_eventlog::Result<EmbeddedLog<E>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut ids = Vec::new();
    {
        let store = open(&path).unwrap();
        let mut tasks = Vec::new();
        for w in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..50 {
                    let batch = vec![event("t.A", 10), event("t.B", 10)];
                    ids.extend(batch.iter().map(|e| e.event_id.clone()));
                    let expected = if i == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(2 * i)
                    };
                    store
                        .append(&format!("w-{w}"), expected, batch)
                        .await
                        .unwrap();
                }
                ids
            }));
        }
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        assert_eq!(store.head().await.unwrap(), 1600);
    }
    let store = open(&path).unwrap();
    assert_eq!(store.head().await.unwrap(), 1600);
    assert_eq!(store.verify().unwrap(), 1600);
    let all = store.read_all(0, 10_000).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
    assert_eq!(positions, (1..=1600).collect::<Vec<_>>());
    let stored: std::collections::HashSet<_> =
        all.iter().map(|r| r.envelope.event_id.clone()).collect();
    assert!(ids.iter().all(|id| stored.contains(id)));
    // Appending continues after the old head.
    let r = store
        .append("w-0", ExpectedVersion::Exact(100), vec![event("t.C", 1)])
        .await
        .unwrap();
    assert_eq!((r.position, r.last_version), (1601, 101));
}

#[tokio::test]
async fn configured_event_size_limit_is_enforced() {
    let limits = Limits {
        max_event_bytes: 1000,
        max_events_per_append: 3,
    };
    let store = SledEventStore::open_temporary(limits).unwrap();
    assert!(store
        .append("s-1", ExpectedVersion::Any, vec![event("t", 800)])
        .await
        .is_ok());
    let err = store
        .append("s-1", ExpectedVersion::Any, vec![event("t", 1000)])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("over the limit of 1000 bytes"),
        "{err}"
    );
    let err = store
        .append(
            "s-1",
            ExpectedVersion::Any,
            (0..4).map(|_| event("t", 1)).collect(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit of 3"), "{err}");
    assert_eq!(store.head().await.unwrap(), 1);
}

#[tokio::test]
async fn a_log_open_elsewhere_is_refused_on_sled() {
    a_log_open_elsewhere_is_refused(|p| SledEventStore::open(p, Limits::default())).await;
}

#[tokio::test]
async fn a_log_open_elsewhere_is_refused_on_fjall() {
    a_log_open_elsewhere_is_refused(|p| FjallEventStore::open(p, Limits::default())).await;
}

/// One writer per log: a second open while the first is in use fails (two
/// writers would hand out the same positions), and succeeds once it closed.
async fn a_log_open_elsewhere_is_refused<E: Engine>(
    open: impl Fn(&Path) -> iga_eventlog::Result<EmbeddedLog<E>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let first = open(&path).unwrap();
    first
        .append("s-1", ExpectedVersion::NoStream, vec![event("t", 1)])
        .await
        .unwrap();
    let Err(err) = open(&path) else {
        panic!("a second open of a log in use succeeded");
    };
    assert!(
        matches!(err, iga_eventlog::EventLogError::Unavailable(_)),
        "{err}"
    );
    drop(first);
    let again = open(&path).unwrap();
    assert_eq!(again.head().await.unwrap(), 1);
}
