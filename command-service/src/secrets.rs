//! Secrets the service must be able to read back (a webhook's signing
//! secret: the delivery engine signs with it), kept in the log sealed with
//! the service's [`SecretsKey`] (ChaCha20-Poly1305, a random nonce per
//! seal), so the log, its exports and its subscribers never hold them in
//! the clear. Every instance of a deployment needs the same key
//! (`IGA_SECRETS_KEY`); `iga serve` keeps one in its data dir otherwise.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The key secrets are sealed with.
#[derive(Clone)]
pub struct SecretsKey(Key);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

const NONCE: usize = 12;

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Self {
        SecretsKey(*Key::from_slice(&rand::random::<[u8; 32]>()))
    }

    /// The key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("the secrets key is not base64: {e}"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "the secrets key is {} bytes; it must be 32 (generate one with: openssl rand -base64 32)",
                bytes.len()
            ));
        }
        Ok(SecretsKey(*Key::from_slice(&bytes)))
    }

    /// The key as base64 text, to keep in a file.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// `plain`, sealed: nonce then ciphertext and tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let cipher = ChaCha20Poly1305::new(&self.0);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("sealing in memory does not fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// What `seal` sealed, if it was sealed with this key and not changed.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE);
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), body)
            .ok()
    }
}

/// A new webhook signing secret: 32 random bytes as `whsec_<base64>`
/// (the Standard Webhooks form).
pub fn new_webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    )
}

/// Whether `secret` is a usable signing secret: `whsec_` and base64 of 24
/// to 64 bytes.
pub fn valid_webhook_secret(secret: &str) -> bool {
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|k| (24..=64).contains(&k.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only_and_not_once_changed() {
        let key = SecretsKey::generate();
        let sealed = key.seal(b"whsec_abc");
        assert_ne!(&sealed[NONCE..], b"whsec_abc");
        assert_eq!(key.open(&sealed).as_deref(), Some(&b"whsec_abc"[..]));
        assert_ne!(key.seal(b"whsec_abc"), sealed, "a fresh nonce every time");
        assert!(SecretsKey::generate().open(&sealed).is_none());
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(key.open(&changed).is_none());
        let again = SecretsKey::from_base64(&key.to_base64()).unwrap();
        assert!(again.open(&sealed).is_some());
        assert!(SecretsKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn webhook_secrets_are_whsec_and_enough_bytes() {
        let s = new_webhook_secret();
        assert!(valid_webhook_secret(&s), "{s}");
        assert!(!valid_webhook_secret("whsec_c2hvcnQ="));
        assert!(!valid_webhook_secret("secret"));
        assert!(!valid_webhook_secret("whsec_not base64"));
    }
}
