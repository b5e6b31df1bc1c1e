//! The projection runner against a real sled event log: incremental
//! application, resume after restart, and rebuild equality.

use std::sync::Arc;
use std::time::Duration;

use iga_eventlog::{EventEnvelope, EventStore, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};
use projection_service::runner::{ProjectionRunner, ReadModels};
use projection_service::users::{UserDirectory, NAME};
use projection_service::Projection;

fn envelope(event: DomainEvent) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_unix_micros: 1_700_000_000_000_000,
        actor_id: "admin".into(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}

/// Opens read models that this process may have just closed (opening waits
/// out the file lock sled releases a moment after its last handle drops).
fn open(path: &std::path::Path, projections: Vec<Arc<dyn Projection>>) -> ReadModels {
    ReadModels::open(path, projections).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A raw `sled::open`'s answer once sled's file lock on `path` is free (a
/// background write of a database just dropped can hold it a moment longer).
fn once_unlocked<T, E: std::fmt::Display>(
    path: &std::path::Path,
    mut open: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(e)
                if (e.to_string().contains("could not acquire lock")
                    || e.to_string().contains("in use"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

fn projections() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(UserDirectory)]
}

/// Appends a mix of user events: creates, updates, token issues and revokes.
async fn write_users(store: &dyn EventStore, from: usize, to: usize) -> u64 {
    let mut last = 0;
    for i in from..to {
        let id = format!("u{i}");
        let stream = format!("user-{id}");
        let mut events = vec![envelope(
            v1::UserCreated {
                user_id: id.clone(),
                username: format!("user{i}"),
                display_name: format!("User {i}"),
                ..Default::default()
            }
            .into(),
        )];
        events.push(envelope(
            v1::ApiTokenIssued {
                user_id: id.clone(),
                token_id: format!("t{i}"),
                token_sha256_hex: format!("{i:064x}"),
                ..Default::default()
            }
            .into(),
        ));
        if i % 3 == 0 {
            events.push(envelope(
                v1::UserUpdated {
                    user_id: id.clone(),
                    display_name: Some(format!("Renamed {i}")),
                    status: Some("DISABLED".into()),
                    ..Default::default()
                }
                .into(),
            ));
        }
        if i % 4 == 0 {
            events.push(envelope(
                v1::ApiTokenRevoked {
                    user_id: id.clone(),
                    token_id: format!("t{i}"),
                    ..Default::default()
                }
                .into(),
            ));
        }
        last = store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap()
            .position;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_applies_resumes_and_rebuild_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        iga_eventlog::open(None, &dir.path().join("log"), Limits::default())
            .await
            .unwrap()
            .store();
    let rm_path = dir.path().join("readmodels");

    // Run incrementally while writing, in many small batches.
    {
        let models = Arc::new(open(&rm_path, projections()));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let runner = tokio::spawn(ProjectionRunner::new(models.clone(), store.clone()).run(stop));
        let head = write_users(&*store, 0, 300).await;
        assert!(
            models.wait_for(head, Duration::from_secs(10)).await,
            "runner caught up"
        );
        let users = models.users().unwrap();
        let u3 = users.get("u3").unwrap().unwrap();
        assert_eq!(
            (u3.display_name.as_str(), u3.status.as_str(), u3.version),
            ("Renamed 3", "DISABLED", 3)
        );
        assert_eq!(
            users
                .token_holder(&format!("{:064x}", 5), 0)
                .unwrap()
                .unwrap()
                .1
                .id,
            "u5"
        );
        assert!(
            users
                .token_holder(&format!("{:064x}", 4), 0)
                .unwrap()
                .is_none(),
            "revoked"
        );
        stop_tx.send(true).unwrap();
        runner.await.unwrap().unwrap();
    }

    // Events written while the runner is down are picked up on restart,
    // from the checkpoint, without re-applying earlier ones.
    let head = write_users(&*store, 300, 400).await;
    let models = Arc::new(open(&rm_path, projections()));
    assert!(models.checkpoint().unwrap() < head);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(ProjectionRunner::new(models.clone(), store.clone()).run(stop));
    assert!(models.wait_for(head, Duration::from_secs(10)).await);
    stop_tx.send(true).unwrap();
    runner.await.unwrap().unwrap();
    assert!(models.users().unwrap().get("u399").unwrap().is_some());

    // Re-applying already-applied events changes nothing (exactly-once effect).
    let before = models.dump(NAME).unwrap();
    let all = store.read_all(0, 100_000).await.unwrap();
    models.apply(&all[..50]).unwrap();
    assert_eq!(models.dump(NAME).unwrap(), before);

    // A rebuild from 0 into fresh trees equals the incremental state, byte for byte.
    let mut calls = 0;
    let rebuilt = models.rebuild(&*store, |_, _| calls += 1).await.unwrap();
    assert!(calls >= 1);
    assert_eq!(rebuilt.dump(NAME).unwrap(), before);
    rebuilt.switch().unwrap();
    drop(models);
    let reopened = open(&rm_path, projections());
    assert_eq!(reopened.dump(NAME).unwrap(), before);
    assert_eq!(reopened.checkpoint().unwrap(), head);
}

/// The users read model under another name and key-layout version.
struct Versioned {
    name: &'static str,
    layout: u32,
}

impl Projection for Versioned {
    fn name(&self) -> &'static str {
        self.name
    }
    fn layout(&self) -> u32 {
        self.layout
    }
    fn apply(
        &self,
        event: &iga_eventlog::RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut projection_service::Staged<'_>,
    ) -> projection_service::Result<()> {
        UserDirectory.apply(event, decoded, tx)
    }
}

fn versioned(a: u32, b: u32) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(Versioned {
            name: "a",
            layout: a,
        }),
        Arc::new(Versioned {
            name: "b",
            layout: b,
        }),
    ]
}

/// Read models "a" and "b" (layouts 1 and 1) of `users` users, in
/// `<dir>/readmodels`: the log's events, its head, and what "a" holds.
struct Stored {
    rm_path: std::path::PathBuf,
    all: Vec<iga_eventlog::RecordedEvent>,
    head: u64,
    before: Vec<(Vec<u8>, Vec<u8>)>,
}

async fn stored_with_layouts_1_1(dir: &std::path::Path, users: usize) -> Stored {
    let store = iga_eventlog::open(None, &dir.join("log"), Limits::default())
        .await
        .unwrap()
        .store();
    let rm_path = dir.join("readmodels");
    let head = write_users(store.as_ref(), 0, users).await;
    let all = store.read_all(0, 100_000).await.unwrap();
    let before = {
        let models = open(&rm_path, versioned(1, 1));
        models.apply(&all).unwrap();
        models.flush().unwrap();
        models.dump("a").unwrap()
    };
    Stored {
        rm_path,
        all,
        head,
        before,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_layout_replaces_that_read_model_only() {
    let dir = tempfile::tempdir().unwrap();
    let Stored {
        rm_path,
        all,
        head,
        before,
    } = stored_with_layouts_1_1(dir.path(), 50).await;
    assert!(before.len() > 50);

    // Read model "a" changed its layout: it starts empty, from position 0;
    // "b" keeps what it had.
    {
        let models = open(&rm_path, versioned(2, 1));
        assert_eq!(models.checkpoint().unwrap(), 0);
        assert!(models.dump("a").unwrap().is_empty());
        assert_eq!(models.dump("b").unwrap(), before);
        models.apply(&all).unwrap();
        models.flush().unwrap();
        assert_eq!(models.dump("a").unwrap(), before);
    }

    // Opened again with the same layouts: nothing is replaced.
    let models = open(&rm_path, versioned(2, 1));
    assert_eq!(models.checkpoint().unwrap(), head);
    assert_eq!(models.dump("a").unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_stored_in_the_old_value_encoding_are_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let Stored {
        rm_path,
        all,
        before,
        ..
    } = stored_with_layouts_1_1(dir.path(), 20).await;
    assert!(!before.is_empty());

    // What a version that stored JSON values recorded: the projections' own
    // layouts, with no encoding beside them.
    {
        let db = once_unlocked(&rm_path, || projection_service::store::Db::open(&rm_path));
        let meta = db.open_tree("meta").unwrap();
        for name in ["a", "b"] {
            meta.insert(format!("layout/{name}"), 1u64.to_be_bytes())
                .unwrap();
        }
        db.flush().unwrap();
    }

    // Both are refilled from position 0 and come out the same.
    let models = open(&rm_path, versioned(1, 1));
    assert_eq!(models.checkpoint().unwrap(), 0);
    assert!(models.dump("a").unwrap().is_empty());
    assert!(models.dump("b").unwrap().is_empty());
    models.apply(&all).unwrap();
    assert_eq!(models.dump("a").unwrap(), before);
}

/// Fails on the first token revocation it sees, as a projection meeting a
/// corrupt value would.
struct FailsOnRevocation;

impl Projection for FailsOnRevocation {
    fn name(&self) -> &'static str {
        "fails-on-revocation"
    }

    fn apply(
        &self,
        event: &iga_eventlog::RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut projection_service::Staged<'_>,
    ) -> projection_service::Result<()> {
        if let DomainEvent::ApiTokenRevoked(_) = decoded {
            return Err(projection_service::ProjectionError::Corrupt(format!(
                "refused at position {}",
                event.position
            )));
        }
        tx.put(event.position.to_be_bytes().to_vec(), b"seen".to_vec());
        Ok(())
    }
}

/// A batch goes into every read model or into none: when one projection
/// fails, the others that came before it in the batch have written nothing
/// either, so the batch can be applied again once the cause is fixed.
#[tokio::test]
async fn a_batch_is_committed_to_all_read_models_or_to_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = iga_eventlog::open(None, &dir.path().join("log"), Limits::default())
        .await
        .unwrap()
        .store();
    write_users(store.as_ref(), 0, 8).await;
    let events = store.read_all(0, 1000).await.unwrap();
    let revoked = events
        .iter()
        .position(|e| {
            matches!(
                e.envelope.decode_event(),
                Ok(DomainEvent::ApiTokenRevoked(_))
            )
        })
        .expect("user 0's token is revoked");
    assert!(revoked > 0);
    let models =
        ReadModels::open_temporary(vec![Arc::new(UserDirectory), Arc::new(FailsOnRevocation)])
            .unwrap();

    // Up to the revocation, both apply.
    models.apply(&events[..revoked]).unwrap();
    let users = models.dump(NAME).unwrap();
    let seen = models.dump("fails-on-revocation").unwrap();
    assert_eq!(models.checkpoint().unwrap(), events[revoked - 1].position);

    // A batch that reaches it changes neither, though `users` comes first.
    let rest = &events[revoked - 1..];
    let err = models.apply(rest).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(models.dump(NAME).unwrap(), users);
    assert_eq!(models.dump("fails-on-revocation").unwrap(), seen);
    assert_eq!(models.checkpoint().unwrap(), events[revoked - 1].position);
}

/// Read models sled kept (before the store moved to fjall) are moved aside
/// and refilled from the log; the reactors' checkpoints come along, so no
/// reactor acts on the history again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_sled_kept_are_refilled_and_reactor_checkpoints_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rm_path = dir.path().join("readmodels");
    {
        let old = sled::open(&rm_path).unwrap();
        let users = old.open_tree("users.1").unwrap();
        users.insert(b"stale", b"value").unwrap();
        let reactor = old.open_tree("reactor.publishing").unwrap();
        reactor
            .insert(b"checkpoint", &1234u64.to_be_bytes())
            .unwrap();
        old.flush().unwrap();
    }
    let models = once_unlocked(&rm_path, || {
        ReadModels::open(&rm_path, projections()).map_err(|e| e.to_string())
    });
    let reactor =
        |models: &ReadModels, name: &str| models.reactor_checkpoint(name).unwrap().get().unwrap();
    assert!(dir.path().join("readmodels.sled-old").join("conf").exists());
    assert_eq!(models.checkpoint().unwrap(), 0, "refilled from the start");
    assert_eq!(reactor(&models, "publishing"), 1234);
    assert_eq!(reactor(&models, "other"), 0);
    drop(models);
    // Opened again: nothing more to move.
    let models = open(&rm_path, projections());
    assert_eq!(reactor(&models, "publishing"), 1234);
}
