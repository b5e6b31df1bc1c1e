//! The verifiable log end to end. An auditor asks for a checkpoint, gets
//! it signed, and checks an event's inclusion proof on the client side with
//! the small RFC 9162 implementation written out here (not the service's),
//! the leaf being the event's own bytes and the signature Ed25519's; only
//! admins and auditors read proofs. Then `iga audit verify` on a stopped
//! service's data dir: it passes on the log as written and on a faithful
//! copy, and it catches a changed, a deleted, a reordered and an inserted
//! event in a copied log, naming the position, every time; also when the
//! stored tree is gone, and when a forger re-signs the rewritten log with a
//! key of their own.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{send, Server};
use iga_eventlog::{EventEnvelope, ExpectedVersion};
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ADMIN: &str = "audit-proofs-admin-token-0123456789-abc";

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

/// RFC 9162 §2.1.3.2, written out independently of the service's code.
fn root_from_inclusion_proof(
    leaf: [u8; 32],
    index: u64,
    size: u64,
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ % 2 == 1 || fn_ == sn {
            r = h(&[&[1], p, &r]);
            while fn_ % 2 == 0 && fn_ != 0 {
                fn_ /= 2;
                sn /= 2;
            }
        } else {
            r = h(&[&[1], &r, p]);
        }
        fn_ /= 2;
        sn /= 2;
    }
    (sn == 0).then_some(r)
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            hex::decode(x.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

/// GET as `token`, once the read models hold every write so far.
async fn get(s: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = common::client()
        .get(s.url(path))
        .bearer_auth(token)
        .header("X-Consistency-Token", common::log_head(s).await)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn start(dir: &Path) -> Server {
    Server::start(
        dir,
        &[
            ("IGA_ADMIN_TOKEN", ADMIN),
            // Only the first checkpoint and those asked for, during a test.
            ("IGA_AUDIT_CHECKPOINT_SECS", "3600"),
        ],
    )
}

/// Some history: users, an app, an entitlement.
async fn history(s: &Server) {
    for i in 0..6 {
        let (status, _, v) = send(
            "POST",
            s.url("/api/v1/users"),
            ADMIN,
            Some(json!({"username": format!("person{i}"), "displayName": format!("Person {i}")})),
        )
        .await;
        assert_eq!(status, 201, "{v}");
    }
    let (status, _, app) = send(
        "POST",
        s.url("/api/v1/apps"),
        ADMIN,
        Some(json!({"displayName": "Ledger"})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
}

/// More history, after a checkpoint.
async fn history_more(s: &Server) {
    let (status, _, v) = send(
        "POST",
        s.url("/api/v1/apps"),
        ADMIN,
        Some(json!({"displayName": "Payroll"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

/// Asks for a checkpoint and waits until one covers the request; answers
/// the request's position and that checkpoint.
async fn checkpoint_now(s: &Server) -> (u64, Value) {
    let (status, _, asked) = send(
        "POST",
        s.url("/api/v1/audit/checkpoints"),
        ADMIN,
        Some(json!({"reason": "quarterly audit"})),
    )
    .await;
    assert_eq!(status, 202, "{asked}");
    let position = asked["position"].as_u64().unwrap();
    let checkpoint = common::eventually("a checkpoint covering the request", || async {
        let (status, proof) = get(
            s,
            ADMIN,
            &format!("/api/v1/audit/proof?position={position}"),
        )
        .await;
        if status != 200 {
            return None;
        }
        let index = proof["leafIndex"].as_u64().unwrap();
        let (_, page) = get(
            s,
            ADMIN,
            &format!("/api/v1/audit/checkpoints?after={index}"),
        )
        .await;
        page["list"]
            .as_array()?
            .iter()
            .find(|c| c["verified"] == true)
            .cloned()
    })
    .await;
    (position, checkpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_checks_an_events_inclusion_against_a_signed_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    // Nothing is signed before it is due or asked for.
    let (_, none) = get(&s, ADMIN, "/api/v1/audit/checkpoints").await;
    assert_eq!(none["list"], json!([]), "{none}");
    history(&s).await;
    let (_, first) = checkpoint_now(&s).await;
    history_more(&s).await;
    let (position, checkpoint) = checkpoint_now(&s).await;
    let size = checkpoint["treeSize"].as_u64().unwrap();

    // The proof of the request event itself, in the checkpoint's tree.
    let (status, proof) = get(
        &s,
        ADMIN,
        &format!("/api/v1/audit/proof?position={position}&treeSize={size}"),
    )
    .await;
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["checkpoint"]["treeSize"], size, "{proof}");
    let leaf = b64(proof["leaf"].as_str().unwrap());
    // The leaf is the event: its envelope, as stored.
    let envelope = EventEnvelope::decode(leaf.as_slice()).unwrap();
    assert_eq!(envelope.event_type, "iga.v1.AuditCheckpointRequested");
    let leaf_hash = h(&[&[0], &leaf]);
    assert_eq!(hex::encode(leaf_hash), proof["leafHash"]);
    let index = proof["leafIndex"].as_u64().unwrap();
    let root = root_from_inclusion_proof(leaf_hash, index, size, &hashes(&proof["auditPath"]))
        .expect("a well-formed proof");
    assert_eq!(hex::encode(root), checkpoint["rootHash"]);
    // A proof for another leaf, or another index, does not lead there.
    let forged = h(&[&[0], b"forged"]);
    assert_ne!(
        root_from_inclusion_proof(forged, index, size, &hashes(&proof["auditPath"])),
        Some(root)
    );

    // The checkpoint is signed over its note's body by the key the service
    // publishes (and, on one process, the one in its data dir).
    let note = checkpoint["note"].as_str().unwrap();
    let (body, signature_line) = note.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[1], size.to_string());
    assert_eq!(hex::encode(b64(lines[2])), checkpoint["rootHash"]);
    let sig = b64(signature_line.trim().rsplit(' ').next().unwrap());
    assert_eq!(hex::encode(&sig[..4]), checkpoint["keyId"]);
    let (_, keys) = get(&s, ADMIN, "/api/v1/audit/keys").await;
    let key = keys["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyId"] == checkpoint["keyId"])
        .expect("the signing key is published");
    let public: [u8; 32] = b64(key["publicKey"].as_str().unwrap()).try_into().unwrap();
    let verifier = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&sig[4..]).unwrap();
    verifier.verify_strict(body.as_bytes(), &signature).unwrap();
    assert!(verifier
        .verify_strict(body.replace(&size.to_string(), "1").as_bytes(), &signature)
        .is_err());
    if !common::distributed() {
        let seed = std::fs::read_to_string(dir.path().join("audit-signing.key")).unwrap();
        let own = ed25519_dalek::SigningKey::from_bytes(&b64(seed.trim()).try_into().unwrap());
        assert_eq!(own.verifying_key().to_bytes(), public);
    }

    // On JetStream the log is reachable from outside: `iga audit verify`
    // recomputes it and checks the checkpoints the API serves, trusting the
    // key named by its C2SP verifier key.
    if let Some(log) = s.log.url().filter(|u| u.starts_with("nats://")) {
        let scratch = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::iga_binary())
            .args(["audit", "verify", "--data-dir"])
            .arg(scratch.path())
            .args(["--event-log", &log, "--url", &s.base, "--token", ADMIN])
            .args(["--key", key["verifierKey"].as_str().unwrap()])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{said}");
        assert!(said.contains("audit log ok"), "{said}");
    }

    // An earlier checkpoint's tree is a prefix of this one's.
    let from = first["treeSize"].as_u64().unwrap();
    assert!(from < size, "{first}");
    let (status, consistency) = get(
        &s,
        ADMIN,
        &format!("/api/v1/audit/consistency?from={from}&to={size}"),
    )
    .await;
    assert_eq!(status, 200, "{consistency}");
    assert_eq!(consistency["fromRoot"], first["rootHash"]);
    assert_eq!(consistency["toRoot"], checkpoint["rootHash"]);
    assert!(!consistency["proof"].as_array().unwrap().is_empty());

    // A token's hash never leaves: such an event is proved by its hash only.
    let (_, events) = get(
        &s,
        ADMIN,
        "/api/v1/events?eventType=iga.v1.ApiTokenIssued&limit=1",
    )
    .await;
    if let Some(p) = events["list"][0]["position"].as_u64() {
        let (status, proof) = get(&s, ADMIN, &format!("/api/v1/audit/proof?position={p}")).await;
        assert_eq!(status, 200, "{proof}");
        assert!(proof.get("leaf").is_none(), "{proof}");
    }

    // Outside the tree, or a tree too small for the event: refused plainly.
    let (status, _) = get(&s, ADMIN, "/api/v1/audit/proof?position=9000000").await;
    assert_eq!(status, 404);
    let (status, v) = get(
        &s,
        ADMIN,
        &format!("/api/v1/audit/proof?position={position}&treeSize=1"),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = get(&s, ADMIN, "/api/v1/audit/consistency?from=2&to=9000000").await;
    assert_eq!(status, 422, "{v}");

    // Only admins and auditors.
    let (status, _, user) = send(
        "POST",
        s.url("/api/v1/users"),
        ADMIN,
        Some(json!({"username": "plain", "displayName": "Plain"})),
    )
    .await;
    assert_eq!(status, 201);
    let uid = user["id"].as_str().unwrap();
    let (status, _, token) = send(
        "POST",
        s.url(&format!("/api/v1/users/{uid}/tokens")),
        ADMIN,
        Some(json!({"description": "t"})),
    )
    .await;
    assert_eq!(status, 201, "{token}");
    let plain = token["token"].as_str().unwrap();
    for path in [
        "/api/v1/audit/checkpoints".to_string(),
        format!("/api/v1/audit/proof?position={position}"),
        "/api/v1/audit/consistency?from=1&to=2".to_string(),
        "/api/v1/audit/keys".to_string(),
    ] {
        let (status, v) = common::eventually("the new token to work", || async {
            let (status, v) = get(&s, plain, &path).await;
            (status != 401).then_some((status, v))
        })
        .await;
        assert_eq!(status, 403, "{path}: {v}");
    }
    let (status, _, _) = send(
        "POST",
        s.url("/api/v1/audit/checkpoints"),
        plain,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);
    let anonymous = common::client()
        .get(s.url("/api/v1/audit/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

/// `iga audit verify` on a data dir; answers success and what it said.
fn audit_verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::iga_binary())
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A copy of `original` whose log is `events`, written afresh (the way
/// someone with the disk would rewrite it: positions contiguous again).
async fn rewritten(
    original: &Path,
    events: Vec<EventEnvelope>,
    keep_tree: bool,
) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(original, copy.path());
    // Whichever engine the original is on; the copy's is the default.
    for log in ["eventlog", "eventlog-fjall"] {
        let _ = std::fs::remove_dir_all(copy.path().join(log));
    }
    if !keep_tree {
        std::fs::remove_dir_all(copy.path().join("readmodels")).unwrap();
    }
    let store = iga_eventlog::open(None, copy.path(), iga_eventlog::Limits::default())
        .await
        .unwrap()
        .store();
    for e in events {
        let stream = e.stream_id.clone();
        store
            .append(&stream, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    drop(store);
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_first_changed_deleted_reordered_or_inserted_event() {
    if common::single_process_only(
        "audit_verify_names_the_first_changed_deleted_reordered_or_inserted_event",
    ) || common::on_jetstream()
    {
        return; // the copied log is the embedded log of one data dir
    }
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    history(&s).await;
    let (_, checkpoint) = checkpoint_now(&s).await;
    let signed = checkpoint["treeSize"].as_u64().unwrap();
    let (_, saved) = get(&s, ADMIN, "/api/v1/audit/checkpoints").await;
    let saved_path = dir.path().join("..").join(format!(
        "{}-checkpoints.json",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&saved_path, saved.to_string()).unwrap();
    let (status, _) = s.terminate();
    assert!(status.success());

    let (ok, said) = audit_verify(dir.path(), &[]);
    assert!(ok, "{said}");
    assert!(said.contains("audit log ok"), "{said}");

    let store = iga_eventlog::open(None, dir.path(), iga_eventlog::Limits::default())
        .await
        .unwrap()
        .store();
    let all: Vec<EventEnvelope> = store
        .read_all(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.envelope)
        .collect();
    drop(store);
    assert!(
        all.len() as u64 > signed && signed > 12,
        "{} events, {signed} signed",
        all.len()
    );

    // A faithful rewrite verifies: what follows is caught for what it changes.
    let same = rewritten(dir.path(), all.clone(), true).await;
    let (ok, said) = audit_verify(same.path(), &[]);
    assert!(ok, "a faithful copy: {said}");

    let k = 9usize; // leaf 9, at position 10
    let mut changed = all.clone();
    changed[k].actor_id = "mallory".into();
    let mut deleted = all.clone();
    deleted.remove(k);
    let mut reordered = all.clone();
    reordered.swap(k, k + 1);
    let mut inserted = all.clone();
    let mut forged = all[k].clone();
    forged.event_id = uuid::Uuid::now_v7().to_string();
    inserted.insert(k, forged);
    for (what, events) in [
        ("changed", changed.clone()),
        ("deleted", deleted),
        ("reordered", reordered),
        ("inserted", inserted),
    ] {
        let copy = rewritten(dir.path(), events, true).await;
        let (ok, said) = audit_verify(copy.path(), &[]);
        assert!(!ok, "{what} event not caught: {said}");
        assert!(
            said.contains(&format!(
                "first difference at position {} (leaf {k})",
                k + 1
            )),
            "{what}: {said}"
        );
    }

    // Without the stored tree, the change is still caught, within a range.
    let copy = rewritten(dir.path(), changed.clone(), false).await;
    let (ok, said) = audit_verify(copy.path(), &[]);
    assert!(!ok, "{said}");
    assert!(said.contains("does NOT match"), "{said}");

    // A forger rewrites the log, drops the checkpoints and signs their own:
    // the data dir's key and the checkpoints saved earlier still catch it.
    let forger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let rewritten_log: Vec<EventEnvelope> = changed
        .into_iter()
        .filter(|e| e.event_type != "iga.v1.AuditCheckpointSigned")
        .collect();
    let copy = rewritten(dir.path(), rewritten_log, false).await;
    {
        let store = iga_eventlog::open(None, copy.path(), iga_eventlog::Limits::default())
            .await
            .unwrap()
            .store();
        let leaves: Vec<[u8; 32]> = store
            .read_all(0, usize::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| h(&[&[0], &e.envelope.encode_to_vec()]))
            .collect();
        let head = projection_service_free_sign(&forger, leaves.len() as u64, &mth(&leaves));
        store
            .append("audit-checkpoints", ExpectedVersion::Any, vec![head])
            .await
            .unwrap();
    }
    let (ok, said) = audit_verify(copy.path(), &[]);
    assert!(!ok, "the forger's own key was trusted: {said}");
    assert!(said.contains("not trusted"), "{said}");
    // Even with the data dir's key file replaced by theirs: the auditor
    // names the real key and brings the checkpoints saved earlier.
    let real = std::fs::read_to_string(dir.path().join("audit-signing.key")).unwrap();
    let real = ed25519_dalek::SigningKey::from_bytes(&b64(real.trim()).try_into().unwrap());
    std::fs::write(
        copy.path().join("audit-signing.key"),
        base64::engine::general_purpose::STANDARD.encode(forger.to_bytes()),
    )
    .unwrap();
    let (ok, said) = audit_verify(copy.path(), &[]);
    assert!(ok, "with the disk, the key file and the log theirs, the forger wins unless the auditor kept something: {said}");
    let real_key =
        base64::engine::general_purpose::STANDARD.encode(real.verifying_key().to_bytes());
    let (ok, said) = audit_verify(
        copy.path(),
        &[
            "--checkpoints",
            saved_path.to_str().unwrap(),
            "--key",
            &real_key,
        ],
    );
    assert!(!ok, "{said}");
    assert!(said.contains("does NOT match"), "{said}");
    let _ = std::fs::remove_file(&saved_path);
}

/// RFC 9162's MTH over leaf hashes.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => h(&[]),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            h(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

/// A checkpoint event signed by `key`, written the way the note format says.
fn projection_service_free_sign(
    key: &ed25519_dalek::SigningKey,
    size: u64,
    root: &[u8; 32],
) -> EventEnvelope {
    use ed25519_dalek::Signer;
    let origin = "iga";
    let public = key.verifying_key().to_bytes();
    let id = h(&[origin.as_bytes(), b"\n\x01", &public]);
    let at = 1_800_000_000_000_000i64;
    let body = format!(
        "{origin}\n{size}\n{}\ntime {at}\n",
        base64::engine::general_purpose::STANDARD.encode(root)
    );
    let event: iga_schemas::DomainEvent = iga_schemas::v1::AuditCheckpointSigned {
        tree_size: size,
        root_hash: root.to_vec(),
        signed_at_micros: at,
        origin: origin.into(),
        public_key: public.to_vec(),
        key_id: hex::encode(&id[..4]),
        signature: key.sign(body.as_bytes()).to_bytes().to_vec(),
    }
    .into();
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        stream_id: "audit-checkpoints".into(),
        actor_id: "system".into(),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        payload: event.encode_payload(),
        ..Default::default()
    }
}
