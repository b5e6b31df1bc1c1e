//! Signed tree heads as C2SP notes (the `tlog-checkpoint` and `signed-note`
//! formats that Go's checksum database and Sigstore use), so any tool for
//! those checks ours:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! time <signed at, microseconds since the Unix epoch>
//!
//! — <origin> <base64(key id (4 bytes) || Ed25519 signature)>
//! ```
//!
//! The signature covers the text up to the blank line (the checkpoint
//! body); the key id is the first 4 bytes of
//! SHA-256(origin || "\n" || 0x01 || public key), 0x01 naming Ed25519.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use iga_schemas::v1::AuditCheckpointSigned;
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The checkpoint body a signature covers.
pub fn body(origin: &str, tree_size: u64, root: &[u8], signed_at_micros: i64) -> String {
    format!(
        "{origin}\n{tree_size}\n{}\ntime {signed_at_micros}\n",
        B64.encode(root)
    )
}

/// The C2SP key id of an Ed25519 key named `origin`.
pub fn key_id(origin: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update(b"\n\x01");
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The whole signed note of a checkpoint.
pub fn note(head: &AuditCheckpointSigned) -> String {
    let mut sig = Vec::with_capacity(68);
    sig.extend_from_slice(&hex::decode(&head.key_id).unwrap_or_default());
    sig.extend_from_slice(&head.signature);
    format!(
        "{}\n\u{2014} {} {}\n",
        body(
            &head.origin,
            head.tree_size,
            &head.root_hash,
            head.signed_at_micros
        ),
        head.origin,
        B64.encode(sig)
    )
}

/// Signs the tree of `tree_size` leaves whose root is `root`.
pub fn sign(
    key: &SigningKey,
    origin: &str,
    tree_size: u64,
    root: &Hash,
    signed_at_micros: i64,
) -> AuditCheckpointSigned {
    let public = key.verifying_key().to_bytes();
    let signature = key.sign(body(origin, tree_size, root, signed_at_micros).as_bytes());
    AuditCheckpointSigned {
        tree_size,
        root_hash: root.to_vec(),
        signed_at_micros,
        origin: origin.to_string(),
        public_key: public.to_vec(),
        key_id: hex::encode(key_id(origin, &public)),
        signature: signature.to_bytes().to_vec(),
    }
}

/// Why a checkpoint's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    #[error("the public key is not an Ed25519 key")]
    Key,
    #[error("the key id does not name the key")]
    KeyId,
    #[error("the signature does not verify")]
    Signature,
}

/// Checks that `head` is signed by the key it names.
pub fn verify(head: &AuditCheckpointSigned) -> Result<(), BadSignature> {
    let public: [u8; 32] = head
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| BadSignature::Key)?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| BadSignature::Key)?;
    if hex::encode(key_id(&head.origin, &public)) != head.key_id {
        return Err(BadSignature::KeyId);
    }
    let signature = Signature::from_slice(&head.signature).map_err(|_| BadSignature::Signature)?;
    key.verify(
        body(
            &head.origin,
            head.tree_size,
            &head.root_hash,
            head.signed_at_micros,
        )
        .as_bytes(),
        &signature,
    )
    .map_err(|_| BadSignature::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_head_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let head = sign(&key, "iga.example", 12, &[9; 32], 1_700_000_000_000_000);
        assert_eq!(verify(&head), Ok(()));
        let text = note(&head);
        assert!(text.starts_with("iga.example\n12\n"), "{text}");
        assert!(text.contains("\n\n\u{2014} iga.example "), "{text}");
        let mut other = head.clone();
        other.tree_size = 13;
        assert_eq!(verify(&other), Err(BadSignature::Signature));
        let mut other = head.clone();
        other.root_hash[0] ^= 1;
        assert_eq!(verify(&other), Err(BadSignature::Signature));
        let mut other = head.clone();
        other.signed_at_micros += 1;
        assert_eq!(verify(&other), Err(BadSignature::Signature));
        // Another key, claiming the same id: the id does not match.
        let mut other = head.clone();
        other.public_key = SigningKey::from_bytes(&[8; 32])
            .verifying_key()
            .to_bytes()
            .to_vec();
        assert_eq!(verify(&other), Err(BadSignature::KeyId));
    }
}
