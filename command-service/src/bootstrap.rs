//! The built-in `admin` user and its bearer token, ensured at every start.
//! Idempotent: a start with a token the admin already holds appends nothing.

use iga_domain::user::{User, UserCommand};
use iga_domain::{Aggregate, Context};
use iga_schemas::v1;

use crate::{now_unix_micros, CommandError, CommandHandler, CommandMeta, Outcome};

/// The id (and username) of the built-in administrator.
pub const ADMIN_USER_ID: &str = "admin";

/// Makes sure user `admin` exists, with role `admin`, and holds the token
/// whose SHA-256 is `token_sha256_hex`. Returns the last command's outcome.
pub async fn ensure_admin(
    handler: &CommandHandler,
    token_sha256_hex: &str,
) -> Result<Outcome, CommandError> {
    let meta = CommandMeta {
        ctx: Context {
            actor_id: "system".into(),
            actor_roles: vec!["admin".into()],
            now_unix_micros: now_unix_micros(),
        },
        correlation_id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: None,
        expected_version: None,
    };
    let (admin, _) = handler.load::<User>(ADMIN_USER_ID).await?;
    if !admin.exists() {
        let create = UserCommand::Create(v1::UserCreated {
            user_id: ADMIN_USER_ID.into(),
            username: ADMIN_USER_ID.into(),
            display_name: "Administrator".into(),
            roles: vec!["admin".into()],
            ..Default::default()
        });
        handler
            .execute::<User>(ADMIN_USER_ID, &create, &meta)
            .await?;
    }
    let issue = UserCommand::IssueToken {
        token_id: format!(
            "bootstrap-{}",
            &token_sha256_hex[..token_sha256_hex.len().min(12)]
        ),
        token_sha256_hex: token_sha256_hex.to_string(),
    };
    handler
        .execute::<User>(ADMIN_USER_ID, &issue, &meta)
        .await
        .map(|(_, outcome)| outcome)
}

/// The admin's stream, for diagnostics.
pub fn admin_stream() -> String {
    User::stream_id(ADMIN_USER_ID)
}
