//! The User aggregate: an identity with roles, a manager chain, a delegate,
//! and API tokens (stored only as SHA-256 hashes).

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// The roles a user can hold.
pub const ROLES: &[&str] = &["admin", "auditor"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub manager_ids: Vec<String>,
    pub delegated_user_id: String,
    pub roles: Vec<String>,
    pub enabled: bool,
    /// Every live (not revoked) token.
    pub tokens: Vec<Token>,
}

/// A live API token: its hash, never the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub sha256_hex: String,
    pub description: String,
    /// 0: never.
    pub expires_at_micros: i64,
    pub bootstrap: bool,
}

/// Most live tokens one user holds.
pub const MAX_TOKENS: usize = 50;
/// The longest a token's description is, in characters.
pub const MAX_TOKEN_DESCRIPTION: usize = 200;
/// The shortest bootstrap token (`IGA_ADMIN_TOKEN`) accepted: 32 characters
/// keep an offline search out of reach even for a chosen one.
pub const MIN_BOOTSTRAP_TOKEN_LEN: usize = 32;

impl User {
    pub fn exists(&self) -> bool {
        !self.id.is_empty()
    }

    /// Whether the user is an enabled admin.
    pub fn is_enabled_admin(&self) -> bool {
        self.exists() && self.enabled && self.roles.iter().any(|r| r == "admin")
    }

    /// Revocations of every live token, for `reason`.
    fn revoke_all(&self, reason: &str) -> Vec<DomainEvent> {
        self.tokens
            .iter()
            .map(|t| {
                v1::ApiTokenRevoked {
                    user_id: self.id.clone(),
                    token_id: t.id.clone(),
                    reason: reason.into(),
                }
                .into()
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub enum UserCommand {
    Create(v1::UserCreated),
    /// Issues a token; a token whose hash the user already holds is a no-op,
    /// so re-running a bootstrap appends nothing. A `bootstrap` token
    /// revokes the bootstrap tokens before it.
    IssueToken {
        token_id: String,
        token_sha256_hex: String,
        description: String,
        /// 0: never.
        expires_at_micros: i64,
        bootstrap: bool,
    },
    RevokeToken {
        token_id: String,
    },
    /// Changes the fields present; a change to nothing appends nothing.
    Update(v1::UserUpdated),
}

impl Aggregate for User {
    type Command = UserCommand;
    const TYPE: &'static str = "user";

    fn decide(
        &self,
        command: &UserCommand,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        match command {
            UserCommand::Create(c) => {
                if self.exists() {
                    return Err(DomainError::AlreadyExists(format!("user {}", self.id)));
                }
                if !ctx.is_admin() {
                    return Err(DomainError::Forbidden("only an admin creates users".into()));
                }
                validate_username(&c.username)?;
                validate_roles(&c.roles)?;
                if c.manager_ids.contains(&c.user_id) {
                    return Err(DomainError::invalid(
                        "managerIds",
                        "a user cannot manage themselves",
                    ));
                }
                if c.delegated_user_id == c.user_id {
                    return Err(DomainError::invalid(
                        "delegatedUserId",
                        "a user cannot be their own delegate",
                    ));
                }
                if !c.email.is_empty() && (!c.email.contains('@') || c.email.chars().count() > 254)
                {
                    return Err(DomainError::invalid("email", "not an email address"));
                }
                if c.display_name.chars().count() > 200 {
                    return Err(DomainError::invalid(
                        "displayName",
                        "at most 200 characters",
                    ));
                }
                Ok(vec![c.clone().into()])
            }
            UserCommand::IssueToken {
                token_id,
                token_sha256_hex,
                description,
                expires_at_micros,
                bootstrap,
            } => {
                self.must_exist()?;
                if ctx.actor_id != self.id && !ctx.is_admin() {
                    return Err(DomainError::Forbidden(
                        "only an admin or the user themselves issues a token".into(),
                    ));
                }
                if !self.enabled {
                    return Err(DomainError::InvalidTransition(format!(
                        "user {} is disabled",
                        self.id
                    )));
                }
                let valid_hash = token_sha256_hex.len() == 64
                    && token_sha256_hex.bytes().all(|b| b.is_ascii_hexdigit());
                if !valid_hash {
                    return Err(DomainError::invalid(
                        "token",
                        "expected a SHA-256 hex digest",
                    ));
                }
                if self
                    .tokens
                    .iter()
                    .any(|t| &t.sha256_hex == token_sha256_hex)
                {
                    return Ok(vec![]);
                }
                if description.chars().count() > MAX_TOKEN_DESCRIPTION {
                    return Err(DomainError::invalid(
                        "description",
                        format!("at most {MAX_TOKEN_DESCRIPTION} characters"),
                    ));
                }
                if *expires_at_micros != 0 && *expires_at_micros <= ctx.now_unix_micros {
                    return Err(DomainError::unsatisfiable(
                        "expiresAt",
                        "must be in the future",
                    ));
                }
                let mut events = Vec::new();
                let mut live = self.tokens.len();
                if *bootstrap {
                    // A new bootstrap token replaces the old: the one an
                    // operator rotated away must stop working.
                    for t in self.tokens.iter().filter(|t| t.bootstrap) {
                        live -= 1;
                        events.push(
                            v1::ApiTokenRevoked {
                                user_id: self.id.clone(),
                                token_id: t.id.clone(),
                                reason: "replaced".into(),
                            }
                            .into(),
                        );
                    }
                }
                if live >= MAX_TOKENS {
                    return Err(DomainError::InvalidTransition(format!(
                        "user {} holds {MAX_TOKENS} tokens already; revoke one first",
                        self.id
                    )));
                }
                events.push(
                    v1::ApiTokenIssued {
                        user_id: self.id.clone(),
                        token_id: token_id.clone(),
                        token_sha256_hex: token_sha256_hex.clone(),
                        description: description.clone(),
                        expires_at_micros: *expires_at_micros,
                        bootstrap: *bootstrap,
                    }
                    .into(),
                );
                Ok(events)
            }
            UserCommand::Update(u) => self.update(u, ctx),
            UserCommand::RevokeToken { token_id } => {
                self.must_exist()?;
                if ctx.actor_id != self.id && !ctx.is_admin() {
                    return Err(DomainError::Forbidden(
                        "only an admin or the user themselves revokes a token".into(),
                    ));
                }
                if !self.tokens.iter().any(|t| &t.id == token_id) {
                    return Err(DomainError::NotFound(format!("token {token_id}")));
                }
                Ok(vec![v1::ApiTokenRevoked {
                    user_id: self.id.clone(),
                    token_id: token_id.clone(),
                    reason: "revoked".into(),
                }
                .into()])
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::UserCreated(e) => {
                self.id = e.user_id.clone();
                self.username = e.username.clone();
                self.display_name = e.display_name.clone();
                self.email = e.email.clone();
                self.manager_ids = e.manager_ids.clone();
                self.delegated_user_id = e.delegated_user_id.clone();
                self.roles = e.roles.clone();
                self.enabled = true;
            }
            DomainEvent::UserUpdated(e) => apply_update(e, &mut self),
            DomainEvent::ApiTokenIssued(e) => self.tokens.push(Token {
                id: e.token_id.clone(),
                sha256_hex: e.token_sha256_hex.clone(),
                description: e.description.clone(),
                expires_at_micros: e.expires_at_micros,
                // Before the flag, the built-in admin's tokens were all
                // bootstrap tokens (only the bootstrap issued them).
                bootstrap: e.bootstrap || e.token_id.starts_with("bootstrap-"),
            }),
            DomainEvent::ApiTokenRevoked(e) => self.tokens.retain(|t| t.id != e.token_id),
            _ => {}
        }
        self
    }
}

impl User {
    fn must_exist(&self) -> Result<(), DomainError> {
        if self.exists() {
            Ok(())
        } else {
            Err(DomainError::NotFound("user".into()))
        }
    }
}

/// Known roles, each at most once.
fn validate_roles(roles: &[String]) -> Result<(), DomainError> {
    if let Some(bad) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
        return Err(DomainError::invalid(
            "roles",
            format!("unknown role {bad:?}; roles are {}", ROLES.join(", ")),
        ));
    }
    let distinct: std::collections::HashSet<&String> = roles.iter().collect();
    if distinct.len() != roles.len() {
        return Err(DomainError::invalid("roles", "each role at most once"));
    }
    Ok(())
}

/// 1 to 64 characters: lowercase letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(username: &str) -> Result<(), DomainError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "username",
            "1 to 64 characters of lowercase letters, digits, '.', '_', '-' and '@'",
        ))
    }
}

impl User {
    /// An update by an admin: checked field by field, reduced to what
    /// differs (nothing: no event), and, when it disables the user, every
    /// token revoked with it.
    fn update(&self, u: &v1::UserUpdated, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        self.must_exist()?;
        if !ctx.is_admin() {
            return Err(DomainError::Forbidden("only an admin updates users".into()));
        }
        if let Some(roles) = &u.roles {
            validate_roles(&roles.values)?;
        }
        if let Some(m) = &u.manager_ids {
            if m.values.contains(&self.id) {
                return Err(DomainError::invalid(
                    "managerIds",
                    "a user cannot manage themselves",
                ));
            }
        }
        if u.delegated_user_id.as_deref() == Some(self.id.as_str()) {
            return Err(DomainError::invalid(
                "delegatedUserId",
                "a user cannot be their own delegate",
            ));
        }
        if let Some(email) = &u.email {
            if !email.is_empty() && (!email.contains('@') || email.chars().count() > 254) {
                return Err(DomainError::invalid("email", "not an email address"));
            }
        }
        if let Some(status) = &u.status {
            if status != "ENABLED" && status != "DISABLED" {
                return Err(DomainError::invalid("status", "ENABLED or DISABLED"));
            }
        }
        let mut changed = u.clone();
        changed.user_id = self.id.clone();
        // Keep only what differs, so an update to the same values appends nothing.
        if changed.display_name.as_ref() == Some(&self.display_name) {
            changed.display_name = None;
        }
        if changed.email.as_ref() == Some(&self.email) {
            changed.email = None;
        }
        if changed.manager_ids.as_ref().map(|m| &m.values) == Some(&self.manager_ids) {
            changed.manager_ids = None;
        }
        if changed.delegated_user_id.as_ref() == Some(&self.delegated_user_id) {
            changed.delegated_user_id = None;
        }
        if changed.roles.as_ref().map(|r| &r.values) == Some(&self.roles) {
            changed.roles = None;
        }
        let status_now = if self.enabled { "ENABLED" } else { "DISABLED" };
        if changed.status.as_deref() == Some(status_now) {
            changed.status = None;
        }
        let nothing = v1::UserUpdated {
            user_id: self.id.clone(),
            ..Default::default()
        };
        if changed == nothing {
            return Ok(vec![]);
        }
        // Disabling a user ends every token they hold: enabling them
        // again must not bring old tokens back.
        let disabling = changed.status.as_deref() == Some("DISABLED");
        let mut events: Vec<DomainEvent> = vec![changed.into()];
        if disabling {
            events.extend(self.revoke_all("user disabled"));
        }
        Ok(events)
    }
}

/// The fields a `UserUpdated` may change. The aggregate and the users
/// read model keep them each their own way; [`apply_update`] is the one
/// fold of an update over them.
pub trait Profile {
    fn set_display_name(&mut self, v: &str);
    fn set_email(&mut self, v: &str);
    fn set_manager_ids(&mut self, v: &[String]);
    /// `None`: no delegate.
    fn set_delegate(&mut self, v: Option<&str>);
    fn set_roles(&mut self, v: &[String]);
    fn set_enabled(&mut self, enabled: bool);
}

/// Folds update `e` into `to`: each field it carries replaces the old one;
/// an empty delegate removes the delegate; a status other than `ENABLED`
/// disables.
pub fn apply_update(e: &v1::UserUpdated, to: &mut impl Profile) {
    if let Some(v) = &e.display_name {
        to.set_display_name(v);
    }
    if let Some(v) = &e.email {
        to.set_email(v);
    }
    if let Some(v) = &e.manager_ids {
        to.set_manager_ids(&v.values);
    }
    if let Some(v) = &e.delegated_user_id {
        to.set_delegate(Some(v.as_str()).filter(|d| !d.is_empty()));
    }
    if let Some(v) = &e.roles {
        to.set_roles(&v.values);
    }
    if let Some(v) = &e.status {
        to.set_enabled(v == "ENABLED");
    }
}

impl Profile for User {
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
        self.delegated_user_id = v.unwrap_or_default().to_string();
    }
    fn set_roles(&mut self, v: &[String]) {
        self.roles = v.to_vec();
    }
    fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn created(id: &str, roles: &[&str]) -> v1::UserCreated {
        v1::UserCreated {
            user_id: id.into(),
            username: format!("{id}@example.com"),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    const HASH: &str = "a3f1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    #[test]
    fn admin_creates_a_user() {
        let c = created("u1", &["auditor"]);
        given::<User>(&[])
            .when(&UserCommand::Create(c.clone()), &ctx("admin", &["admin"]))
            .then(&[c.into()]);
    }

    #[test]
    fn email_delegate_and_display_name_are_checked() {
        let admin = ctx("admin", &["admin"]);
        let field_of = |c: v1::UserCreated| match given::<User>(&[])
            .state_for_test()
            .decide(&UserCommand::Create(c), &admin)
        {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        };
        let mut c = created("u1", &[]);
        c.email = "nope".into();
        assert_eq!(field_of(c), "email");
        let mut c = created("u1", &[]);
        c.delegated_user_id = "u1".into();
        assert_eq!(field_of(c), "delegatedUserId");
        let mut c = created("u1", &[]);
        c.display_name = "x".repeat(201);
        assert_eq!(field_of(c), "displayName");
    }

    #[test]
    fn update_keeps_only_real_changes() {
        let admin = ctx("admin", &["admin"]);
        let given_user = [created("u1", &["auditor"]).into()];
        let update = v1::UserUpdated {
            user_id: "u1".into(),
            display_name: Some("Ada".into()),
            roles: Some(v1::StringList {
                values: vec!["auditor".into()],
            }),
            ..Default::default()
        };
        let expected = v1::UserUpdated {
            user_id: "u1".into(),
            display_name: Some("Ada".into()),
            ..Default::default()
        };
        let state = given::<User>(&given_user)
            .when(&UserCommand::Update(update.clone()), &admin)
            .then(&[expected.into()]);
        assert_eq!(state.display_name, "Ada");
        // The same update again changes nothing.
        given::<User>(&[
            given_user[0].clone(),
            v1::UserUpdated {
                user_id: "u1".into(),
                display_name: Some("Ada".into()),
                ..Default::default()
            }
            .into(),
        ])
        .when(&UserCommand::Update(update), &admin)
        .then(&[]);
    }

    #[test]
    fn update_rules() {
        let admin = ctx("admin", &["admin"]);
        let u = |f: fn(&mut v1::UserUpdated)| {
            let mut x = v1::UserUpdated {
                user_id: "u1".into(),
                ..Default::default()
            };
            f(&mut x);
            UserCommand::Update(x)
        };
        given::<User>(&[])
            .when(&u(|_| {}), &admin)
            .then_error(DomainError::NotFound("user".into()));
        given::<User>(&[created("u1", &[]).into()])
            .when(&u(|x| x.display_name = Some("x".into())), &ctx("u1", &[]))
            .then_error(DomainError::Forbidden("only an admin updates users".into()));
        given::<User>(&[created("u1", &[]).into()])
            .when(&u(|x| x.status = Some("GONE".into())), &admin)
            .then_error(DomainError::invalid("status", "ENABLED or DISABLED"));
        let state = given::<User>(&[created("u1", &[]).into()])
            .when(&u(|x| x.status = Some("DISABLED".into())), &admin)
            .then(&[v1::UserUpdated {
                user_id: "u1".into(),
                status: Some("DISABLED".into()),
                ..Default::default()
            }
            .into()]);
        assert!(!state.enabled);
    }

    #[test]
    fn non_admin_cannot_create() {
        given::<User>(&[])
            .when(&UserCommand::Create(created("u1", &[])), &ctx("u2", &[]))
            .then_error(DomainError::Forbidden("only an admin creates users".into()));
    }

    #[test]
    fn creating_twice_is_refused() {
        given::<User>(&[created("u1", &[]).into()])
            .when(
                &UserCommand::Create(created("u1", &[])),
                &ctx("admin", &["admin"]),
            )
            .then_error(DomainError::AlreadyExists("user u1".into()));
    }

    #[test]
    fn unknown_roles_and_bad_usernames_are_invalid() {
        let admin = ctx("admin", &["admin"]);
        let mut c = created("u1", &["root"]);
        assert!(matches!(
            given::<User>(&[]).state_for_test().decide(&UserCommand::Create(c.clone()), &admin),
            Err(DomainError::Invalid { field, .. }) if field == "roles"
        ));
        c.roles.clear();
        c.username = "Has Spaces".into();
        assert!(matches!(
            given::<User>(&[]).state_for_test().decide(&UserCommand::Create(c), &admin),
            Err(DomainError::Invalid { field, .. }) if field == "username"
        ));
    }

    #[test]
    fn issuing_the_same_token_twice_appends_nothing() {
        let issue = UserCommand::IssueToken {
            token_id: "t1".into(),
            token_sha256_hex: HASH.into(),
            description: String::new(),
            expires_at_micros: 0,
            bootstrap: false,
        };
        let issued = v1::ApiTokenIssued {
            user_id: "u1".into(),
            token_id: "t1".into(),
            token_sha256_hex: HASH.into(),
            description: String::new(),
            expires_at_micros: 0,
            bootstrap: false,
        };
        given::<User>(&[created("u1", &[]).into()])
            .when(&issue, &ctx("u1", &[]))
            .then(&[issued.clone().into()]);
        given::<User>(&[created("u1", &[]).into(), issued.into()])
            .when(&issue, &ctx("admin", &["admin"]))
            .then(&[]);
    }

    #[test]
    fn another_user_cannot_issue_a_token() {
        given::<User>(&[created("u1", &[]).into()])
            .when(
                &UserCommand::IssueToken {
                    token_id: "t1".into(),
                    token_sha256_hex: HASH.into(),
                    description: String::new(),
                    expires_at_micros: 0,
                    bootstrap: false,
                },
                &ctx("u2", &[]),
            )
            .then_error(DomainError::Forbidden(
                "only an admin or the user themselves issues a token".into(),
            ));
    }

    #[test]
    fn revoking_an_unknown_token_is_not_found() {
        given::<User>(&[created("u1", &[]).into()])
            .when(
                &UserCommand::RevokeToken {
                    token_id: "nope".into(),
                },
                &ctx("u1", &[]),
            )
            .then_error(DomainError::NotFound("token nope".into()));
    }

    #[test]
    fn a_revoked_token_is_gone_from_state() {
        let state = given::<User>(&[
            created("u1", &[]).into(),
            v1::ApiTokenIssued {
                user_id: "u1".into(),
                token_id: "t1".into(),
                token_sha256_hex: HASH.into(),
                ..Default::default()
            }
            .into(),
        ])
        .when(
            &UserCommand::RevokeToken {
                token_id: "t1".into(),
            },
            &ctx("admin", &["admin"]),
        )
        .then(&[v1::ApiTokenRevoked {
            user_id: "u1".into(),
            token_id: "t1".into(),
            reason: "revoked".into(),
        }
        .into()]);
        assert!(state.tokens.is_empty());
    }

    fn token(id: &str, hash: &str, bootstrap: bool) -> DomainEvent {
        v1::ApiTokenIssued {
            user_id: "u1".into(),
            token_id: id.into(),
            token_sha256_hex: hash.into(),
            bootstrap,
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn given_a_bootstrap_token_when_a_new_one_is_issued_then_the_old_one_is_revoked() {
        let other = "b".repeat(64);
        given::<User>(&[
            created("u1", &["admin"]).into(),
            token("old", HASH, true),
            token("mine", &"c".repeat(64), false),
        ])
        .when(
            &UserCommand::IssueToken {
                token_id: "new".into(),
                token_sha256_hex: other.clone(),
                description: String::new(),
                expires_at_micros: 0,
                bootstrap: true,
            },
            &ctx("system", &["admin"]),
        )
        .then(&[
            v1::ApiTokenRevoked {
                user_id: "u1".into(),
                token_id: "old".into(),
                reason: "replaced".into(),
            }
            .into(),
            token("new", &other, true),
        ]);
    }

    #[test]
    fn given_a_user_with_tokens_when_disabled_then_every_token_is_revoked() {
        let disable = UserCommand::Update(v1::UserUpdated {
            user_id: "u1".into(),
            status: Some("DISABLED".into()),
            ..Default::default()
        });
        given::<User>(&[
            created("u1", &[]).into(),
            token("t1", HASH, false),
            token("t2", &"d".repeat(64), false),
        ])
        .when(&disable, &ctx("admin", &["admin"]))
        .then(&[
            v1::UserUpdated {
                user_id: "u1".into(),
                status: Some("DISABLED".into()),
                ..Default::default()
            }
            .into(),
            v1::ApiTokenRevoked {
                user_id: "u1".into(),
                token_id: "t1".into(),
                reason: "user disabled".into(),
            }
            .into(),
            v1::ApiTokenRevoked {
                user_id: "u1".into(),
                token_id: "t2".into(),
                reason: "user disabled".into(),
            }
            .into(),
        ]);
    }

    #[test]
    fn tokens_expire_in_the_future_and_describe_themselves_briefly() {
        let issue = |description: String, expires_at_micros: i64| UserCommand::IssueToken {
            token_id: "t1".into(),
            token_sha256_hex: HASH.into(),
            description,
            expires_at_micros,
            bootstrap: false,
        };
        let now = ctx("u1", &[]).now_unix_micros;
        given::<User>(&[created("u1", &[]).into()])
            .when(&issue(String::new(), now), &ctx("u1", &[]))
            .then_error(DomainError::unsatisfiable(
                "expiresAt",
                "must be in the future",
            ));
        given::<User>(&[created("u1", &[]).into()])
            .when(&issue("x".repeat(201), 0), &ctx("u1", &[]))
            .then_error(DomainError::invalid(
                "description",
                "at most 200 characters",
            ));
        given::<User>(&[created("u1", &[]).into()])
            .when(&issue("ci".into(), now + 1), &ctx("u1", &[]))
            .state_for_test_ok();
    }

    #[test]
    fn a_user_holds_a_bounded_number_of_tokens() {
        let mut events: Vec<DomainEvent> = vec![created("u1", &[]).into()];
        for i in 0..MAX_TOKENS {
            events.push(token(&format!("t{i}"), &format!("{i:064}"), false));
        }
        given::<User>(&events)
            .when(
                &UserCommand::IssueToken {
                    token_id: "one-more".into(),
                    token_sha256_hex: "e".repeat(64),
                    description: String::new(),
                    expires_at_micros: 0,
                    bootstrap: false,
                },
                &ctx("u1", &[]),
            )
            .then_error(DomainError::InvalidTransition(format!(
                "user u1 holds {MAX_TOKENS} tokens already; revoke one first"
            )));
    }

    #[test]
    fn an_update_replaces_what_it_carries_and_only_that() {
        let mut u = User {
            id: "u1".into(),
            display_name: "Ada".into(),
            email: "ada@example.com".into(),
            delegated_user_id: "u2".into(),
            enabled: true,
            ..Default::default()
        };
        apply_update(
            &v1::UserUpdated {
                user_id: "u1".into(),
                email: Some("a@example.com".into()),
                delegated_user_id: Some(String::new()),
                status: Some("DISABLED".into()),
                ..Default::default()
            },
            &mut u,
        );
        assert_eq!(
            (
                u.display_name.as_str(),
                u.email.as_str(),
                u.delegated_user_id.as_str(),
                u.enabled
            ),
            ("Ada", "a@example.com", "", false)
        );
    }
}
