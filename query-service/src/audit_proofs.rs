//! The verifiable log over HTTP (admin, auditor): the checkpoints (signed
//! tree heads) found in the log, an inclusion proof for any event, a
//! consistency proof between two tree sizes, and the keys that signed.
//! Everything comes from the log's Merkle tree
//! ([`projection_service::audit_tree::LogTree`]); a client checks a proof
//! with RFC 9162's algorithms and a checkpoint with Ed25519, trusting
//! nothing the service says about itself.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use iga_http::{Principal, Problem};
use projection_service::audit_tree::{CheckpointRecord, LogTree};
use serde::{Deserialize, Serialize};

use crate::audit::admin_or_auditor;
use crate::page::internal;
use crate::QueryState;

/// Most checkpoints one page holds.
const MAX_CHECKPOINTS: usize = 1000;

fn tree(state: &QueryState) -> Result<std::sync::Arc<LogTree>, Problem> {
    state.models.log_tree().map_err(internal)
}

fn hex_all(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Refuses a number beyond what the schema allows (2^53 - 1).
fn in_range(field: &str, n: u64) -> Result<u64, Problem> {
    if n > crate::audit::MAX_POSITION {
        return Err(Problem::bad_request(format!(
            "{field} is at most {}",
            crate::audit::MAX_POSITION
        ))
        .with_field(field, "out of range"));
    }
    Ok(n)
}

fn unsatisfiable(field: &str, message: impl Into<String>) -> Problem {
    let message = message.into();
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("invalid {field}: {message}"),
    )
    .with_field(field, message)
}

/// A signed tree head.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// How many events (leaves) the signed tree holds.
    pub tree_size: u64,
    /// Its root hash, hex (SHA-256, RFC 9162).
    pub root_hash: String,
    /// When it was signed (RFC 3339).
    pub timestamp: String,
    /// The note's origin line, which names the log and its key.
    pub origin: String,
    /// The C2SP key id (4 bytes, hex).
    pub key_id: String,
    /// The Ed25519 public key, base64.
    pub public_key: String,
    /// The Ed25519 signature of the note's body, base64.
    pub signature: String,
    /// The whole signed note (C2SP tlog-checkpoint): what a note verifier reads.
    pub note: String,
    /// The log position of the checkpoint event itself.
    pub position: u64,
    /// Whether the service found its signature and root to hold.
    pub verified: bool,
    /// What failed, when not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn checkpoint(r: CheckpointRecord) -> Checkpoint {
    let h = &r.head;
    Checkpoint {
        tree_size: h.tree_size,
        root_hash: hex::encode(&h.root_hash),
        timestamp: iga_http::rfc3339(h.signed_at_micros),
        origin: h.origin.clone(),
        key_id: h.key_id.clone(),
        public_key: B64.encode(&h.public_key),
        signature: B64.encode(&h.signature),
        note: projection_service::tree_head::note(h),
        position: r.position,
        verified: r.problem.is_none(),
        problem: r.problem,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CheckpointFilter {
    /// Checkpoints of trees larger than this (default 0: from the first).
    #[serde(default)]
    #[param(maximum = 9007199254740991.0)]
    pub after: u64,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointPage {
    pub list: Vec<Checkpoint>,
    /// The size of the tree as this service has hashed it so far.
    pub tree_size: u64,
    /// Pass as `after` for the next page (absent on the last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// The checkpoints in the log, smallest tree first (admin, auditor).
#[utoipa::path(get, path = "/audit/checkpoints", tag = "audit", params(CheckpointFilter),
    responses((status = 200, description = "Signed tree heads", body = CheckpointPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_checkpoints(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(f): Query<CheckpointFilter>,
) -> Result<Response, Problem> {
    admin_or_auditor(&principal, "the audit log's checkpoints")?;
    in_range("after", f.after)?;
    let limit = f.limit.unwrap_or(100);
    if !(1..=MAX_CHECKPOINTS).contains(&limit) {
        return Err(unsatisfiable("limit", "between 1 and 1000"));
    }
    let tree = tree(&state)?;
    let mut found = tree.checkpoints(f.after, limit + 1).map_err(internal)?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next_after = more
        .then(|| found.last().map(|c| c.head.tree_size))
        .flatten();
    Ok(Json(CheckpointPage {
        list: found.into_iter().map(checkpoint).collect(),
        tree_size: tree.status().size,
        next_after,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// The event's log position.
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub position: u64,
    /// The tree to prove it in (default: the latest verified checkpoint's,
    /// if it holds the event, else the whole tree as hashed so far).
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub tree_size: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    pub position: u64,
    /// The event's leaf index: its place in log order, from 0.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// SHA-256(0x00 || leaf), hex.
    pub leaf_hash: String,
    /// The leaf: the event's envelope as stored (protobuf), base64. Absent
    /// for events holding a secret (a token's hash, a webhook's sealed
    /// secret), which never leave the service: prove those by `leafHash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    /// The audit path, nearest the leaf first (RFC 9162 §2.1.3), hex.
    pub audit_path: Vec<String>,
    /// The root of the tree of `treeSize` leaves, hex.
    pub root_hash: String,
    /// The checkpoint signing that tree, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// The inclusion proof of an event (admin, auditor).
#[utoipa::path(get, path = "/audit/proof", tag = "audit", params(ProofQuery),
    responses((status = 200, description = "An RFC 9162 inclusion proof", body = InclusionProof), (status = 403, body = Problem), (status = 404, description = "No such event in the tree (yet)", body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn inclusion_proof(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<ProofQuery>,
) -> Result<Response, Problem> {
    admin_or_auditor(&principal, "the audit log's proofs")?;
    in_range("position", q.position)?;
    if let Some(size) = q.tree_size {
        in_range("treeSize", size)?;
    }
    let tree = tree(&state)?;
    wait_for(&state, &tree, q.position).await;
    let not_found =
        || Problem::not_found(format!("no event at position {} in the tree", q.position));
    let index = tree
        .index_of(q.position)
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let latest = tree.latest_verified().map_err(internal)?;
    let size = match (q.tree_size, &latest) {
        (Some(size), _) => size,
        (None, Some(c)) if c.head.tree_size > index => c.head.tree_size,
        (None, _) => tree.status().size,
    };
    if size <= index {
        return Err(unsatisfiable(
            "treeSize",
            format!("the event is leaf {index}; a tree holding it has more than {index} leaves"),
        ));
    }
    let Some(path) = tree.inclusion(index, size).map_err(internal)? else {
        return Err(unsatisfiable(
            "treeSize",
            format!("the tree has {} leaves so far", tree.status().size),
        ));
    };
    let root = tree.root(size).map_err(internal)?.ok_or_else(not_found)?;
    let leaf_hash = tree.leaf(index).map_err(internal)?.ok_or_else(not_found)?;
    let leaf = state
        .store
        .read_all(q.position - 1, 1)
        .await
        .map_err(|e| Problem::unavailable(e.to_string(), 1))?
        .into_iter()
        .find(|e| e.position == q.position)
        .filter(|e| e.envelope.decode_event().is_ok_and(|d| !d.has_secrets()))
        .map(|e| B64.encode(projection_service::audit_tree::leaf_bytes(&e)));
    let checkpoint = tree
        .checkpoints(size - 1, 16)
        .map_err(internal)?
        .into_iter()
        .find(|c| c.head.tree_size == size && c.problem.is_none())
        .map(self::checkpoint);
    Ok(Json(InclusionProof {
        position: q.position,
        leaf_index: index,
        tree_size: size,
        leaf_hash: hex::encode(leaf_hash),
        leaf,
        audit_path: hex_all(&path),
        root_hash: hex::encode(root),
        checkpoint,
    })
    .into_response())
}

/// Waits (within the read's consistency wait) for the tree to hold `position`.
async fn wait_for(state: &QueryState, tree: &LogTree, position: u64) {
    if tree.status().position < position {
        let head = state.store.head().await.unwrap_or(0);
        if position <= head {
            tree.wait_for(
                position,
                state.consistency_wait.min(Duration::from_secs(10)),
            )
            .await;
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree's size.
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub from: u64,
    /// The newer tree's size.
    #[param(minimum = 1, maximum = 9007199254740991.0)]
    pub to: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    /// RFC 9162 §2.1.4's proof that the newer tree extends the older, hex.
    pub proof: Vec<String>,
}

/// The consistency proof between two tree sizes (admin, auditor): that
/// the log of `to` events begins with the log of `from`, unchanged.
#[utoipa::path(get, path = "/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, description = "An RFC 9162 consistency proof", body = ConsistencyProof), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn consistency_proof(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Response, Problem> {
    admin_or_auditor(&principal, "the audit log's proofs")?;
    in_range("from", q.from)?;
    in_range("to", q.to)?;
    let tree = tree(&state)?;
    if q.from > q.to {
        return Err(unsatisfiable("from", "at most `to`"));
    }
    let Some(proof) = tree.consistency(q.from, q.to).map_err(internal)? else {
        return Err(unsatisfiable(
            "to",
            format!("the tree has {} leaves so far", tree.status().size),
        ));
    };
    let root = |size| {
        tree.root(size)
            .map_err(internal)?
            .map(hex::encode)
            .ok_or_else(|| unsatisfiable("to", "beyond the tree"))
    };
    Ok(Json(ConsistencyProof {
        from: q.from,
        to: q.to,
        from_root: root(q.from)?,
        to_root: root(q.to)?,
        proof: hex_all(&proof),
    })
    .into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub key_id: String,
    pub origin: String,
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The public key, base64 (32 bytes).
    pub public_key: String,
    /// The C2SP verifier key: `<origin>+<key id>+base64(0x01 || key)`.
    pub verifier_key: String,
    pub first_signed_at: String,
    pub last_signed_at: String,
    /// The size of the first tree it signed.
    pub first_tree_size: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeys {
    pub list: Vec<SigningKey>,
}

/// The keys that signed the log's checkpoints (admin, auditor), from the
/// checkpoints themselves.
#[utoipa::path(get, path = "/audit/keys", tag = "audit",
    responses((status = 200, description = "Public keys", body = SigningKeys), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn signing_keys(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, Problem> {
    admin_or_auditor(&principal, "the audit log's keys")?;
    let keys = tree(&state)?.keys().map_err(internal)?;
    Ok(Json(SigningKeys {
        list: keys
            .into_iter()
            .map(|k| {
                let mut typed = vec![1u8];
                typed.extend_from_slice(&k.public_key);
                SigningKey {
                    verifier_key: format!("{}+{}+{}", k.origin, k.key_id, B64.encode(typed)),
                    key_id: k.key_id,
                    origin: k.origin,
                    algorithm: "Ed25519".into(),
                    public_key: B64.encode(&k.public_key),
                    first_signed_at: iga_http::rfc3339(k.first_signed_at_micros),
                    last_signed_at: iga_http::rfc3339(k.last_signed_at_micros),
                    first_tree_size: k.first_tree_size,
                }
            })
            .collect(),
    })
    .into_response())
}
