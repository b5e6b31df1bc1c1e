//! The wire format of outbound deliveries, per the Standard Webhooks
//! specification: a secret shown once as `whsec_<base64>`, and three
//! headers on every call: `webhook-id` (the same across retries of one
//! delivery, so a receiver can drop a repeat), `webhook-timestamp` (seconds)
//! and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//! computed by the specification's own crate). Secrets are made by
//! `command_service::secrets::new_webhook_secret`.

/// The headers of one signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl Signed {
    /// As `(name, value)` pairs, for any HTTP client.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", self.timestamp.to_string()),
            ("webhook-signature", self.signature.clone()),
        ]
    }
}

/// Why a call could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the webhook secret is not whsec_ followed by base64")]
    Secret,
    #[error("the body is not UTF-8 JSON")]
    Body,
}

/// Signs delivery `id` of `body` at `timestamp` (Unix seconds) with `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Signed, SignError> {
    let key = standardwebhooks::Webhook::new(secret).map_err(|_| SignError::Secret)?;
    let signature = key.sign(id, timestamp, body).map_err(|_| SignError::Body)?;
    Ok(Signed {
        id: id.to_string(),
        timestamp,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use command_service::secrets::new_webhook_secret as new_secret;

    /// The specification's own example: secret, id, timestamp and body give
    /// this signature.
    #[test]
    fn signs_as_the_specification_says() {
        let signed = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        )
        .unwrap();
        assert_eq!(
            signed.signature,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    /// What a receiver does: verify with the same secret; another secret,
    /// or a changed body, does not verify.
    #[test]
    fn a_receiver_verifies_it_and_nothing_else() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let body = br#"{"type":"iga.v1.GrantIssued"}"#;
        let signed = sign(&secret, "d1", now, body).unwrap();
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed.headers() {
            headers.insert(name, value.parse().unwrap());
        }
        let receiver = standardwebhooks::Webhook::new(&secret).unwrap();
        receiver.verify(body, &headers).unwrap();
        assert!(receiver.verify(br#"{"type":"other"}"#, &headers).is_err());
        let stranger = standardwebhooks::Webhook::new(&new_secret()).unwrap();
        assert!(stranger.verify(body, &headers).is_err());
        assert!(matches!(
            sign("not base64!", "d1", now, body),
            Err(SignError::Secret)
        ));
    }
}
