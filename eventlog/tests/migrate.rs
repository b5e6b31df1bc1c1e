//! `migrate`: a log moved to the other engine holds the same bytes at the
//! same positions, both ways; a copy that differs from the log (a byte, an
//! extra event) is refused and leaves both logs where they were.

use std::path::Path;

use iga_eventlog::contract::event;
use iga_eventlog::fjall_store::FjallEventStore;
use iga_eventlog::migrate::{migrate, remove_old, EmbeddedEngine, Step};
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventEnvelope, EventStore, ExpectedVersion, Limits};

fn events(n: usize) -> Vec<EventEnvelope> {
    (0..n)
        .map(|i| event(if i % 2 == 0 { "t.A" } else { "t.B" }, 10 + i % 50))
        .collect()
}

/// Appends `events` in streams of up to 7, in groups of up to 3.
async fn fill(store: &dyn EventStore, events: &[EventEnvelope]) {
    for (s, stream) in events.chunks(7).enumerate() {
        let mut version = 0u64;
        for group in stream.chunks(3) {
            let expected = match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v),
            };
            store
                .append(&format!("s-{s}"), expected, group.to_vec())
                .await
                .unwrap();
            version += group.len() as u64;
        }
    }
}

async fn all(store: &dyn EventStore) -> Vec<(u64, EventEnvelope)> {
    store
        .read_all(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.position, e.envelope))
        .collect()
}

fn quiet() -> impl FnMut(Step) {
    |_| {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_moves_to_fjall_and_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let written = events(10_000);
    let sled = SledEventStore::open(dir.path().join("eventlog"), Limits::default()).unwrap();
    fill(&sled, &written).await;
    let before = all(&sled).await;
    drop(sled);

    let mut steps = Vec::new();
    let moved = migrate(dir.path(), EmbeddedEngine::Fjall, &mut |s: Step| {
        steps.push((s.phase, s.done, s.total))
    })
    .unwrap();
    assert_eq!(moved.events, 10_000);
    assert_eq!(moved.kept, Some(dir.path().join("eventlog.old")));
    // Progress: each phase, counting up to its total.
    for phase in [
        "copying events",
        "copying indexes",
        "checking events",
        "checking indexes",
    ] {
        assert!(steps.iter().any(|s| s.0 == phase), "{phase}: {steps:?}");
    }
    assert!(steps.contains(&("copying events", 10_000, Some(10_000))));
    assert!(steps.contains(&("checking events", 10_000, Some(10_000))));

    let fjall =
        FjallEventStore::open(dir.path().join("eventlog-fjall"), Limits::default()).unwrap();
    assert_eq!(all(&fjall).await, before);
    // The indexes came along: stream reads, versions, idempotent retries.
    let s3 = fjall.read_stream("s-3", 0, usize::MAX).await.unwrap();
    assert_eq!(s3.len(), 7);
    let retry = fjall
        .append("s-0", ExpectedVersion::NoStream, written[0..3].to_vec())
        .await
        .unwrap();
    assert_eq!(retry.position, 3, "a retry answers the original");
    drop(fjall);

    // And back to sled, beside the sled log kept from the first move.
    migrate(dir.path(), EmbeddedEngine::Sled, &mut quiet()).unwrap();
    let sled = SledEventStore::open(dir.path().join("eventlog"), Limits::default()).unwrap();
    assert_eq!(all(&sled).await, before);
    assert_eq!(sled.verify().unwrap(), 10_000);
    drop(sled);
    // A third move would have to put the log where an old one is kept.
    let err = migrate(dir.path(), EmbeddedEngine::Fjall, &mut quiet()).unwrap_err();
    assert!(err.to_string().contains("--remove-old"), "{err}");
    assert_eq!(remove_old(dir.path()).unwrap().len(), 2);
    migrate(dir.path(), EmbeddedEngine::Fjall, &mut quiet()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_differs_is_refused_and_nothing_moves() {
    let written = events(300);
    for (what, changed, expected) in [
        (
            "a changed byte",
            150usize,
            "differs from the log at position 151",
        ),
        ("an extra event", usize::MAX, "holds position 301"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledEventStore::open(dir.path().join("eventlog"), Limits::default()).unwrap();
        fill(&sled, &written).await;
        drop(sled);
        // The state a crash between the renames leaves, with a copy that
        // does not hold the log's events.
        let mut copy = written.clone();
        if changed < copy.len() {
            copy[changed].actor_id = "mallory".into();
        } else {
            copy.push(event("t.A", 10));
        }
        let fjall =
            FjallEventStore::open(dir.path().join("eventlog-fjall"), Limits::default()).unwrap();
        fill(&fjall, &copy).await;
        drop(fjall);

        let err = migrate(dir.path(), EmbeddedEngine::Fjall, &mut quiet()).unwrap_err();
        assert!(err.to_string().contains(expected), "{what}: {err}");
        assert!(err.to_string().contains("untouched"), "{what}: {err}");
        for kept in ["eventlog", "eventlog-fjall"] {
            assert!(dir.path().join(kept).exists(), "{what}: {kept}");
        }
        assert!(!Path::new(&dir.path().join("eventlog.old")).exists());
        // And opening either is refused until it is sorted out.
        let err = iga_eventlog::open(None, dir.path(), Limits::default())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("interrupted"), "{what}: {err}");
    }
}
