//! `UserDirectory`: users as the API shows them, their API tokens by hash
//! (for authentication), and usernames.
//!
//! Keys: `u/<userId>` -> [`UserView`]; `t/<sha256>` -> [`TokenHolder`]
//! (who holds a live token, and until when); `k/<tokenId>` -> sha256;
//! `tk/<userId>/<tokenId>` -> [`TokenView`] (what `GET /users/{id}/tokens`
//! lists: never the token or its hash).

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "users";

/// A user as the read API answers it. Timestamps are microseconds since the
/// Unix epoch; the HTTP layer formats them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub manager_ids: Vec<String>,
    pub delegated_user_id: Option<String>,
    pub roles: Vec<String>,
    pub status: String,
    pub created_at_micros: i64,
    pub updated_at_micros: i64,
    pub version: u64,
}

impl UserView {
    /// The user as the API shows it.
    pub fn render(self) -> iga_api::User {
        iga_api::User {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            email: self.email,
            manager_ids: self.manager_ids,
            delegated_user_id: self.delegated_user_id,
            roles: self.roles,
            status: self.status,
            created_at: iga_api::rfc3339(self.created_at_micros),
            updated_at: iga_api::rfc3339(self.updated_at_micros),
            version: self.version,
        }
    }
}

impl iga_domain::user::Profile for UserView {
    fn set_display_name(&mut self, v: &str) {
        self.display_name = v.to_string();
    }
    fn set_email(&mut self, v: &str) {
        self.email = v.to_string();
    }
    fn set_manager_ids(&mut self, v: &[String]) {
        self.manager_ids = v.to_vec();
    }
    fn set_delegate(&mut self, v: Option<&str>) {
        self.delegated_user_id = v.map(str::to_string);
    }
    fn set_roles(&mut self, v: &[String]) {
        self.roles = v.to_vec();
    }
    fn set_enabled(&mut self, enabled: bool) {
        self.status = if enabled { "ENABLED" } else { "DISABLED" }.to_string();
    }
}

/// Who holds a live token, by its hash: what authentication reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenHolder {
    pub user_id: String,
    pub token_id: String,
    /// 0: never expires.
    pub expires_at_micros: i64,
}

/// A live token as its owner and admins see it listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub description: String,
    pub created_at_micros: i64,
    /// 0: never expires.
    pub expires_at_micros: i64,
    /// When it last authenticated a request, to the hour (0: never).
    #[serde(default)]
    pub last_used_at_micros: i64,
}

pub struct UserDirectory;

fn token_view_key(user_id: &str, token_id: &str) -> Vec<u8> {
    format!("tk/{user_id}/{token_id}").into_bytes()
}

pub(crate) fn user_key(id: &str) -> Vec<u8> {
    format!("u/{id}").into_bytes()
}

fn token_key(sha: &str) -> Vec<u8> {
    format!("t/{sha}").into_bytes()
}

impl Projection for UserDirectory {
    fn name(&self) -> &'static str {
        NAME
    }

    /// 2: tokens keep their holder and expiry (`t/`) and their listing
    /// (`tk/`); no write-only `n/` index.
    fn layout(&self) -> u32 {
        2
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let at = event.envelope.occurred_at_unix_micros;
        let version = event.envelope.stream_version;
        match decoded {
            DomainEvent::UserCreated(e) => {
                let view = UserView {
                    id: e.user_id.clone(),
                    username: e.username.clone(),
                    display_name: e.display_name.clone(),
                    email: e.email.clone(),
                    manager_ids: e.manager_ids.clone(),
                    delegated_user_id: Some(e.delegated_user_id.clone()).filter(|d| !d.is_empty()),
                    roles: e.roles.clone(),
                    status: "ENABLED".into(),
                    created_at_micros: at,
                    updated_at_micros: at,
                    version,
                };
                tx.put_value(user_key(&e.user_id), &view);
            }
            DomainEvent::UserUpdated(e) => {
                if let Some(mut view) = tx.get_value::<UserView>(&user_key(&e.user_id))? {
                    iga_domain::user::apply_update(e, &mut view);
                    view.updated_at_micros = at;
                    view.version = version;
                    tx.put_value(user_key(&e.user_id), &view);
                }
            }
            DomainEvent::ApiTokenIssued(e) => {
                let holder = TokenHolder {
                    user_id: e.user_id.clone(),
                    token_id: e.token_id.clone(),
                    expires_at_micros: e.expires_at_micros,
                };
                tx.put_value(token_key(&e.token_sha256_hex), &holder);
                tx.put(format!("k/{}", e.token_id), e.token_sha256_hex.clone());
                let view = TokenView {
                    id: e.token_id.clone(),
                    description: e.description.clone(),
                    created_at_micros: at,
                    expires_at_micros: e.expires_at_micros,
                    last_used_at_micros: 0,
                };
                tx.put_value(token_view_key(&e.user_id, &e.token_id), &view);
                bump_version(tx, &e.user_id, version, at)?;
            }
            DomainEvent::ApiTokenUsed(e) => {
                let key = token_view_key(&e.user_id, &e.token_id);
                if let Some(mut view) = tx.get_value::<TokenView>(&key)? {
                    view.last_used_at_micros = e.used_at_micros;
                    tx.put_value(key, &view);
                }
            }
            DomainEvent::ApiTokenRevoked(e) => {
                let key = format!("k/{}", e.token_id).into_bytes();
                if let Some(sha) = tx.get(&key)? {
                    tx.delete(token_key(&String::from_utf8_lossy(&sha)));
                    tx.delete(key);
                }
                tx.delete(token_view_key(&e.user_id, &e.token_id));
                bump_version(tx, &e.user_id, version, at)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Every event of a user's stream moves its version (the `ETag`) and
/// `updatedAt`, so a conditional write checks against the aggregate's real
/// version and reads agree with what the write side answers.
fn bump_version(tx: &mut Staged<'_>, user_id: &str, version: u64, at: i64) -> Result<()> {
    if let Some(mut view) = tx.get_value::<UserView>(&user_key(user_id))? {
        view.version = version;
        view.updated_at_micros = at;
        tx.put_value(user_key(user_id), &view);
    }
    Ok(())
}

impl UserDirectory {
    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<UserView>> {
        Staged::new(tree).get_value(&user_key(id))
    }

    /// The live token with this SHA-256 and the user holding it.
    pub(crate) fn token_holder(
        tree: &crate::store::Tree,
        sha256_hex: &str,
        now_micros: i64,
    ) -> Result<Option<(TokenHolder, UserView)>> {
        let holder: Option<TokenHolder> = Staged::new(tree).get_value(&token_key(sha256_hex))?;
        match holder {
            Some(h) if h.expires_at_micros == 0 || now_micros < h.expires_at_micros => {
                Ok(Self::get(tree, &h.user_id)?.map(|u| (h, u)))
            }
            _ => Ok(None),
        }
    }

    /// The live tokens of `user_id`, oldest first (ids are UUID v7).
    pub(crate) fn tokens(tree: &crate::store::Tree, user_id: &str) -> Result<Vec<TokenView>> {
        let staged = Staged::new(tree);
        let mut list = Vec::new();
        for kv in tree.scan_prefix(format!("tk/{user_id}/").as_bytes()) {
            let (k, _) = kv?;
            if let Some(v) = staged.get_value::<TokenView>(&k)? {
                list.push(v);
            }
        }
        Ok(list)
    }
}
