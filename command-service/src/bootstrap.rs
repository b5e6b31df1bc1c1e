//! The built-in `admin` user and its bearer token, ensured at every start.
//! Idempotent: a start with a token the admin already holds appends nothing;
//! a start with a new token revokes the bootstrap token before it. The
//! username `admin` is claimed like any other, so nobody can create a second
//! `admin`, and the admin roster starts with the built-in admin.

use iga_domain::roster::{AdminRoster, SetAdmin, ROSTER_ID};
use iga_domain::user::{User, UserCommand};
use iga_domain::username::{ClaimUsername, Username};
use iga_domain::{Context, DomainError};
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
    let claim = ClaimUsername {
        username: ADMIN_USER_ID.into(),
        user_id: ADMIN_USER_ID.into(),
        holder_gone: false,
    };
    match handler
        .execute::<Username>(&crate::users::username_key(ADMIN_USER_ID), &claim, &meta)
        .await
    {
        Ok(_) => {}
        // A log from before the built-in admin claimed its name, where
        // someone else took it: both keep it; say so.
        Err(CommandError::Domain(DomainError::AlreadyExists(_))) => tracing::warn!(
            "the username 'admin' belongs to another user (created before the built-in admin claimed it)"
        ),
        Err(e) => return Err(e),
    }
    let (admin, _) = handler.load::<User>(ADMIN_USER_ID).await?;
    if admin.is_enabled_admin() {
        let seed = SetAdmin {
            user_id: ADMIN_USER_ID.into(),
            enabled_admin: true,
        };
        let (roster, _) = handler.load::<AdminRoster>(ROSTER_ID).await?;
        if roster.admins.is_empty() {
            handler
                .execute::<AdminRoster>(ROSTER_ID, &seed, &meta)
                .await?;
        }
    }
    // The token id says nothing of the token: not even part of its hash.
    let issue = UserCommand::IssueToken {
        token_id: uuid::Uuid::now_v7().to_string(),
        token_sha256_hex: token_sha256_hex.to_string(),
        description: "bootstrap (IGA_ADMIN_TOKEN or admin.token)".into(),
        expires_at_micros: 0,
        bootstrap: true,
    };
    handler
        .execute::<User>(ADMIN_USER_ID, &issue, &meta)
        .await
        .map(|(_, outcome)| outcome)
}
