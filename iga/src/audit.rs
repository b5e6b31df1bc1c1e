//! `iga audit verify`: recomputes the log's Merkle tree from the events
//! themselves and checks every signed checkpoint against it, naming the
//! first position whose event does not match what was signed.
//!
//! The checkpoints come from the log itself (each `AuditCheckpointSigned`
//! event), from a running service's API (`--url`), and, better, from
//! somewhere the log's operator cannot edit: a file of checkpoints saved
//! earlier (`--checkpoints`, the JSON of `GET /api/v1/audit/checkpoints`). Which keys are trusted: the ones given with
//! `--key`, else the data dir's own `audit-signing.key`, else (said loudly)
//! whatever key signed.
//!
//! Finding the position: a failing checkpoint only says that something in
//! the leaves it signs changed. The service's stored tree (beside the read
//! models) keeps every leaf hash; when its root at that size is the signed
//! one, its leaves are the signed ones, and the first leaf the log no
//! longer matches is the position named. When the stored tree was changed
//! too, the answer is the range between the last checkpoint that holds and
//! the first that does not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use iga_eventlog::Limits;
use iga_schemas::v1::AuditCheckpointSigned;
use iga_schemas::DomainEvent;
use projection_service::audit_tree::leaf_bytes;
use projection_service::merkle::{self, leaf_hash, node_hash, Hash, Nodes};
use projection_service::ReadModels;

use crate::cli::anyhow_like::Result;
use crate::cli::AuditVerifyArgs;

/// The whole tree in memory: every perfect subtree, level by level (about
/// 64 bytes per event).
struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level");
            let up: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        MemTree { levels }
    }

    fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }
}

impl Nodes for MemTree {
    type Error = std::convert::Infallible;
    fn node(&self, level: u32, index: u64) -> std::result::Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

/// A checkpoint to check, and where it came from.
struct Claim {
    head: AuditCheckpointSigned,
    source: String,
}

/// One line of `GET /audit/checkpoints`' list, as far as a check needs it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedCheckpoint {
    tree_size: u64,
    root_hash: String,
    timestamp: String,
    origin: String,
    key_id: String,
    public_key: String,
    signature: String,
}

fn saved_to_head(c: SavedCheckpoint) -> Result<AuditCheckpointSigned> {
    let at =
        time::OffsetDateTime::parse(&c.timestamp, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("checkpoint timestamp {:?}: {e}", c.timestamp))?;
    Ok(AuditCheckpointSigned {
        tree_size: c.tree_size,
        root_hash: hex::decode(&c.root_hash).map_err(|e| format!("rootHash: {e}"))?,
        signed_at_micros: (at.unix_timestamp_nanos() / 1000) as i64,
        origin: c.origin,
        public_key: B64
            .decode(&c.public_key)
            .map_err(|e| format!("publicKey: {e}"))?,
        key_id: c.key_id,
        signature: B64
            .decode(&c.signature)
            .map_err(|e| format!("signature: {e}"))?,
    })
}

/// Checkpoints saved from the API: a page (`{"list": [...]}`) or a list.
fn load_saved(path: &PathBuf) -> Result<Vec<Claim>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let list = match value {
        serde_json::Value::Object(mut o) => o.remove("list").unwrap_or_default(),
        other => other,
    };
    let saved: Vec<SavedCheckpoint> =
        serde_json::from_value(list).map_err(|e| format!("{}: {e}", path.display()))?;
    saved
        .into_iter()
        .map(|c| {
            Ok(Claim {
                head: saved_to_head(c)?,
                source: path.display().to_string(),
            })
        })
        .collect()
}

/// Every checkpoint a running service serves, page by page.
async fn fetch_served(url: &str, token: Option<&str>) -> Result<Vec<Claim>> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let base = url.trim_end_matches('/');
    let mut claims = Vec::new();
    let mut after = 0u64;
    loop {
        let mut req = client.get(format!(
            "{base}/api/v1/audit/checkpoints?after={after}&limit=1000"
        ));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(|e| format!("{base}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!(
                "{base}/api/v1/audit/checkpoints: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )
            .into());
        }
        let page: serde_json::Value = r.json().await.map_err(|e| format!("{base}: {e}"))?;
        let list: Vec<SavedCheckpoint> =
            serde_json::from_value(page["list"].clone()).map_err(|e| format!("{base}: {e}"))?;
        for c in list {
            claims.push(Claim {
                head: saved_to_head(c)?,
                source: base.to_string(),
            });
        }
        match page["nextAfter"].as_u64() {
            Some(n) if n > after => after = n,
            _ => break,
        }
    }
    Ok(claims)
}

/// The public keys trusted to sign: given, else the data dir's own.
fn trusted_keys(args: &AuditVerifyArgs) -> Result<Option<Vec<Vec<u8>>>> {
    if !args.key.is_empty() {
        return args
            .key
            .iter()
            .map(|k| {
                // A C2SP verifier key is `<name>+<key id: 8 hex>+<base64>`;
                // anything else is the key's base64 (which may hold `+`).
                let parts: Vec<&str> = k.splitn(3, '+').collect();
                let raw = match parts.as_slice() {
                    [_, id, key] if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        key
                    }
                    _ => k.as_str(),
                };
                let mut bytes = B64
                    .decode(raw.trim())
                    .map_err(|e| format!("--key {k:?}: {e}"))?;
                // A C2SP verifier key carries the algorithm byte first.
                if bytes.len() == 33 && bytes[0] == 1 {
                    bytes.remove(0);
                }
                if bytes.len() != 32 {
                    return Err(format!("--key {k:?}: not a 32-byte Ed25519 key").into());
                }
                Ok(bytes)
            })
            .collect::<Result<Vec<_>>>()
            .map(Some);
    }
    let path = args.data.data_dir.join(crate::serve::AUDIT_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = crate::serve::parse_audit_key(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Some(vec![key.verifying_key().to_bytes().to_vec()]))
        }
        Err(_) => Ok(None),
    }
}

pub async fn verify(args: AuditVerifyArgs) -> Result<()> {
    let trusted = trusted_keys(&args)?;
    let store = iga_eventlog::open(
        args.data.event_log.as_deref(),
        &args.data.data_dir,
        Limits::default(),
    )
    .await?
    .store();
    let head = store.head().await?;
    let bar = crate::progress::bar(head, "hashing the log's events");
    let started = std::time::Instant::now();
    let mut leaves: Vec<Hash> = Vec::new();
    let mut positions: Vec<u64> = Vec::new();
    let mut claims: Vec<Claim> = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.read_all(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for e in &batch {
            leaves.push(leaf_hash(&leaf_bytes(e)));
            positions.push(e.position);
            if e.envelope.event_type == "iga.v1.AuditCheckpointSigned" {
                if let Ok(DomainEvent::AuditCheckpointSigned(h)) = e.envelope.decode_event() {
                    claims.push(Claim {
                        head: h,
                        source: format!("the log, position {}", e.position),
                    });
                }
            }
        }
        bar.set_position(after.min(head));
    }
    bar.finish_and_clear();
    let hashing = started.elapsed().as_secs_f64();
    for path in &args.checkpoints {
        claims.extend(load_saved(path)?);
    }
    if let Some(url) = &args.url {
        claims.extend(fetch_served(url, args.token.as_deref()).await?);
    }
    let tree = MemTree::new(leaves);
    let n = tree.size();

    // Every claim: signed by a trusted key, then checked against the tree.
    let mut signers = BTreeMap::new();
    let mut untrusted = Vec::new();
    let mut checked: Vec<(u64, Option<String>, String)> = Vec::new();
    for c in &claims {
        if let Err(e) = projection_service::tree_head::verify(&c.head) {
            untrusted.push(format!(
                "checkpoint of {} events from {}: {e}",
                c.head.tree_size, c.source
            ));
            continue;
        }
        if let Some(keys) = &trusted {
            if !keys.contains(&c.head.public_key) {
                untrusted.push(format!(
                    "checkpoint of {} events from {}: signed by key {}, which is not trusted",
                    c.head.tree_size, c.source, c.head.key_id
                ));
                continue;
            }
        }
        signers.insert(c.head.key_id.clone(), B64.encode(&c.head.public_key));
        let problem = if c.head.tree_size > n {
            Some(format!(
                "it signs {} events; the log holds {n}",
                c.head.tree_size
            ))
        } else {
            let ours = merkle::root(&tree, c.head.tree_size).expect("infallible");
            (ours.as_slice() != c.head.root_hash.as_slice())
                .then(|| "its root is not the log's".to_string())
        };
        checked.push((c.head.tree_size, problem, c.source.clone()));
    }
    checked.sort_by_key(|(size, _, _)| *size);
    for u in &untrusted {
        eprintln!("ignored: {u}");
    }
    if trusted.is_none() {
        eprintln!(
            "warning: no trusted key (--key, or {} in the data dir): any key that signed is accepted, \
             so a forger who rewrote the log could have signed it too",
            crate::serve::AUDIT_KEY_FILE
        );
    }
    let first_bad = checked.iter().find(|(_, p, _)| p.is_some());
    let Some((bad_size, problem, source)) = first_bad else {
        let latest = checked.last().map(|c| c.0).unwrap_or(0);
        if checked.is_empty() {
            return Err(format!(
                "no checkpoint to check the log against ({n} events hashed): \
                 run the service until it signs one, or give --checkpoints"
            )
            .into());
        }
        println!(
            "audit log ok: {n} events hashed in {hashing:.2}s ({:.0} events/s); {} checkpoints verified, \
             the latest signing {latest} events; {} events after it are not signed yet; keys: {}",
            n as f64 / hashing.max(1e-9),
            checked.len(),
            n - latest,
            signers.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return Ok(());
    };
    let good = checked
        .iter()
        .filter(|(size, p, _)| p.is_none() && size < bad_size)
        .map(|c| c.0)
        .max()
        .unwrap_or(0);
    let claim = claims
        .iter()
        .find(|c| c.head.tree_size == *bad_size && c.source == *source)
        .expect("the claim checked");
    let located = locate(&args, &claim.head, &tree, good, &positions);
    let problem = problem.as_deref().unwrap_or_default();
    Err(match located {
        Some(found) => format!(
            "audit log does NOT match its checkpoint of {bad_size} events (from {source}): {problem}; {found}"
        ),
        None => format!(
            "audit log does NOT match its checkpoint of {bad_size} events (from {source}): {problem}; \
             the first change is among leaves {good}..{bad_size} (log positions {}..{}); the service's \
             stored tree cannot narrow it (absent, or changed too)",
            positions.get(good as usize).copied().unwrap_or(0),
            positions
                .get((*bad_size as usize).min(positions.len()).saturating_sub(1))
                .copied()
                .unwrap_or(0),
        )
    }
    .into())
}

/// The first leaf in `good..head.tree_size` where the log differs from the
/// stored tree, once the stored tree is shown to be the signed one.
fn locate(
    args: &AuditVerifyArgs,
    head: &AuditCheckpointSigned,
    tree: &MemTree,
    good: u64,
    positions: &[u64],
) -> Option<String> {
    let models = ReadModels::open(args.data.data_dir.join("readmodels"), vec![]).ok()?;
    let stored = models.log_tree().ok()?;
    let signed_root = stored.root(head.tree_size).ok()??;
    if signed_root.as_slice() != head.root_hash.as_slice() {
        return None;
    }
    for i in good..head.tree_size {
        let signed = stored.leaf(i).ok()??;
        let ours = tree.levels[0].get(i as usize);
        if ours != Some(&signed) {
            let signed_position = stored.position_of(i).ok().flatten();
            return Some(match (positions.get(i as usize), ours) {
                (Some(p), Some(_)) => format!(
                    "first difference at position {p} (leaf {i}): the event there is not the one signed{}",
                    signed_position
                        .map(|s| format!(" (which was at position {s})"))
                        .unwrap_or_default()
                ),
                _ => format!(
                    "first difference at leaf {i}: the log ends there, but the checkpoint signs {} events",
                    head.tree_size
                ),
            });
        }
    }
    None
}
