//! The log's Merkle tree read model against a real sled event log: built
//! incrementally in the runner's batches, its root at every size equals the
//! tree recomputed from the log's own events by a small independent
//! implementation here, proofs verify, and a changed event changes the root.

use std::sync::Arc;
use std::time::Duration;

use iga_eventlog::{EventEnvelope, EventStore, ExpectedVersion, Limits};
use iga_schemas::{v1, DomainEvent};
use projection_service::audit_tree::{leaf_bytes, LogTree};
use projection_service::merkle::{verify_consistency, verify_inclusion, Hash};
use projection_service::runner::{ProjectionRunner, ReadModels};
use projection_service::Projection;
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
    let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(LogTree)];
    let models = Arc::new(ReadModels::open(dir.path().join("rm"), projections).unwrap());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(ProjectionRunner::new(models.clone(), store.clone()).run(stop));
    // Streams of one to three events, so batches and positions vary.
    let mut head = 0;
    for n in 0..150 {
        let events = (0..1 + n % 3).map(|i| envelope(n * 10 + i)).collect();
        head = store
            .append(&format!("user-u{n}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap()
            .position;
    }
    assert!(models.wait_for(head, Duration::from_secs(10)).await);
    let all = store.read_all(0, usize::MAX).await.unwrap();
    let leaves: Vec<Vec<u8>> = all.iter().map(leaf_bytes).collect();
    // What is hashed is the envelope as stored, encoded.
    assert_eq!(leaves[0], all[0].envelope.encode_to_vec());
    let tree = models.audit_tree().unwrap();
    assert_eq!(tree.size().unwrap(), all.len() as u64);
    for size in [1, 2, 3, 7, 8, 9, 100, all.len() as u64] {
        let root = tree.root(size).unwrap().unwrap();
        assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
        // Every event of that tree is proved in it.
        for (i, event) in all.iter().take(size as usize).enumerate().step_by(7) {
            let (index, proof) = tree.inclusion(event.position, size).unwrap().unwrap();
            assert_eq!(index, i as u64);
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
    assert!(tree
        .inclusion(all[0].position, all.len() as u64 + 1)
        .unwrap()
        .is_none());
    // Any change to an event changes the root.
    let mut changed = leaves.clone();
    let mut tampered = all[40].envelope.clone();
    tampered.actor_id = "mallory".into();
    changed[40] = tampered.encode_to_vec();
    assert_ne!(mth(&changed), tree.root(all.len() as u64).unwrap().unwrap());
    stop_tx.send(true).unwrap();
    runner.await.unwrap().unwrap();
}
