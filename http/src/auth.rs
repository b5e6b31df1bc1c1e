//! Bearer-token authentication. A request's token is hashed (SHA-256) and
//! looked up through an [`Authenticator`]; only hashes are ever stored.
//! [`require_principal`] is the middleware: it answers 401 for a missing or
//! unknown token and puts the [`Principal`] in the request's extensions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::Problem;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub roles: Vec<String>,
    /// The hash of the token the caller authenticated with, so long-lived
    /// answers (the audit stream) can check that it is still good. Internal:
    /// never rendered into an answer.
    pub token_sha256_hex: String,
    /// The id of that token (for `lastUsedAt`).
    pub token_id: String,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
}

/// Finds the principal holding a token, by the token's SHA-256 hex digest.
pub trait Authenticator: Send + Sync + 'static {
    fn principal_for_token_sha256(&self, sha256_hex: &str) -> Result<Option<Principal>, Problem>;

    /// Called once when a token is unknown, before answering 401: a chance
    /// to catch up with writes this instance has not seen yet (a token
    /// created a moment ago, through another instance). Default: none.
    fn catch_up(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async {})
    }

    /// Called once a token authenticated a request (never blocks): where
    /// `lastUsedAt` is recorded. Default: nothing.
    fn used(&self, _principal: &Principal) {}
}

/// SHA-256 hex digest of a bearer token.
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Middleware: authenticates the bearer token or answers 401.
pub async fn require_principal(
    State(auth): State<Arc<dyn Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Problem::unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
            .into_response();
    };
    let hash = token_sha256_hex(token);
    let mut found = auth.principal_for_token_sha256(&hash);
    if let Ok(None) = found {
        auth.catch_up().await;
        found = auth.principal_for_token_sha256(&hash);
    }
    match found {
        Ok(Some(principal)) => {
            auth.used(&principal);
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) => Problem::unauthorized("unknown or revoked token").into_response(),
        Err(p) => p.into_response(),
    }
}
