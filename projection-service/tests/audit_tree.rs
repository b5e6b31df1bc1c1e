//! The log's Merkle tree against a real sled event log: built by its
//! follower in whatever batches arrive, its root at every size equals the
//! tree recomputed from the log's own events by a small independent
//! implementation here, proofs verify, it resumes after a restart, a changed
//! event changes the root, and checkpoints in the log are checked as they
//! are added.

use std::sync::Arc;
use std::time::Duration;

use iga_eventlog::{EventEnvelope, EventStore, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};
use projection_service::audit_tree::leaf_bytes;
use projection_service::merkle::{verify_consistency, verify_inclusion, Hash};
use projection_service::runner::ReadModels;
use prost::Message;
use sha2::{Digest, Sha256};

fn envelope(n: usize) -> EventEnvelope {
    let event: DomainEvent = v1::UserCreated {
        user_id: format!("u{n}"),
        username: format!("user{n}"),
        ..Default::default()
    }
    .into();
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_unix_micros: 1_700_000_000_000_000 + n as i64,
        actor_id: "admin".into(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}

/// RFC 9162's MTH, written out from the RFC on the leaves' bytes.
fn mth(leaves: &[Vec<u8>]) -> Hash {
    let h = |parts: &[&[u8]]| -> Hash {
        let mut d = Sha256::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().into()
    };
    match leaves.len() {
        0 => h(&[]),
        1 => h(&[&[0], &leaves[0]]),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            h(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_of_the_log_is_the_rfc_9162_tree_of_its_events_at_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        iga_eventlog::open(None, &dir.path().join("log"), Limits::default())
            .await
            .unwrap()
            .store();
    let models = Arc::new(ReadModels::open(dir.path().join("rm"), vec![]).unwrap());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tree = models.log_tree().unwrap();
    let follower = tokio::spawn(tree.clone().follow(store.clone(), stop.clone()));
    // Streams of one to three events, so batches and positions vary.
    let mut head = 0;
    for n in 0..100 {
        let events = (0..1 + n % 3).map(|i| envelope(n * 10 + i)).collect();
        head = store
            .append(&format!("user-u{n}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap()
            .position;
    }
    assert!(tree.wait_for(head, Duration::from_secs(10)).await);
    // Stopped and started again, it goes on from where it was.
    stop_tx.send(true).unwrap();
    follower.await.unwrap().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(tree.clone().follow(store.clone(), stop));
    for n in 100..150 {
        let events = (0..1 + n % 3).map(|i| envelope(n * 10 + i)).collect();
        head = store
            .append(&format!("user-u{n}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap()
            .position;
    }
    assert!(tree.wait_for(head, Duration::from_secs(10)).await);
    let all = store.read_all(0, usize::MAX).await.unwrap();
    let leaves: Vec<Vec<u8>> = all.iter().map(leaf_bytes).collect();
    // What is hashed is the envelope as stored, encoded.
    assert_eq!(leaves[0], all[0].envelope.encode_to_vec());
    assert_eq!(tree.status().size, all.len() as u64);
    for size in [1, 2, 3, 7, 8, 9, 100, all.len() as u64] {
        let root = tree.root(size).unwrap().unwrap();
        assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
        // Every event of that tree is proved in it.
        for (i, event) in all.iter().take(size as usize).enumerate().step_by(7) {
            let index = tree.index_of(event.position).unwrap().unwrap();
            assert_eq!(index, i as u64);
            let proof = tree.inclusion(index, size).unwrap().unwrap();
            let leaf = mth(&leaves[i..=i]);
            assert!(verify_inclusion(&leaf, index, size, &proof, &root));
            assert_eq!(tree.position_of(index).unwrap(), Some(event.position));
        }
        let whole = tree.root(all.len() as u64).unwrap().unwrap();
        let proof = tree.consistency(size, all.len() as u64).unwrap().unwrap();
        assert!(verify_consistency(
            size,
            all.len() as u64,
            &proof,
            &root,
            &whole
        ));
    }
    // Beyond the tree: nothing.
    assert_eq!(tree.root(all.len() as u64 + 1).unwrap(), None);
    assert!(tree.inclusion(0, all.len() as u64 + 1).unwrap().is_none());
    // Any change to an event changes the root.
    let mut changed = leaves.clone();
    let mut tampered = all[40].envelope.clone();
    tampered.actor_id = "mallory".into();
    changed[40] = tampered.encode_to_vec();
    assert_ne!(mth(&changed), tree.root(all.len() as u64).unwrap().unwrap());
    stop_tx.send(true).unwrap();
    follower.await.unwrap().unwrap();
}

fn checkpoint_envelope(head: v1::AuditCheckpointSigned) -> EventEnvelope {
    let event: DomainEvent = head.into();
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        actor_id: "system".into(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_in_the_log_are_checked_against_the_tree_and_their_keys_listed() {
    use projection_service::tree_head::sign;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        iga_eventlog::open(None, &dir.path().join("log"), Limits::default())
            .await
            .unwrap()
            .store();
    let models = Arc::new(ReadModels::open(dir.path().join("rm"), vec![]).unwrap());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let tree = models.log_tree().unwrap();
    tokio::spawn(tree.clone().follow(store.clone(), stop));
    for n in 0..5 {
        store
            .append(
                &format!("user-u{n}"),
                ExpectedVersion::NoStream,
                vec![envelope(n)],
            )
            .await
            .unwrap();
    }
    let all = store.read_all(0, usize::MAX).await.unwrap();
    let leaves: Vec<Vec<u8>> = all.iter().map(leaf_bytes).collect();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    // A true head of 5 leaves, a forged root for 4, and one signed by
    // another key under this key's name.
    let good = sign(&key, "iga.test", 5, &mth(&leaves), 10);
    let lie = sign(&key, "iga.test", 4, &[0; 32], 11);
    let mut stolen = sign(
        &ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
        "iga.test",
        3,
        &mth(&leaves[..3]),
        12,
    );
    stolen.key_id = good.key_id.clone();
    stolen.public_key = good.public_key.clone();
    let mut head = 0;
    for h in [good.clone(), lie, stolen] {
        head = store
            .append(
                "audit-checkpoints",
                ExpectedVersion::Any,
                vec![checkpoint_envelope(h)],
            )
            .await
            .unwrap()
            .position;
    }
    assert!(tree.wait_for(head, Duration::from_secs(10)).await);
    let found = tree.checkpoints(0, 10).unwrap();
    let problems: Vec<(u64, Option<String>)> = found
        .iter()
        .map(|c| (c.head.tree_size, c.problem.clone()))
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0].0, 3);
    assert_eq!(
        problems[0].1.as_deref(),
        Some("the signature does not verify")
    );
    assert_eq!(problems[1].0, 4);
    assert!(
        problems[1].1.as_deref().unwrap().contains("root"),
        "{problems:?}"
    );
    assert_eq!(problems[2], (5, None));
    let status = tree.status();
    assert_eq!(
        (status.signed_size, status.content_size, status.size),
        (5, 5, 8)
    );
    let keys = tree.keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].public_key, good.public_key);
    assert_eq!(tree.latest_checkpoint().unwrap().unwrap().head, good);
}
