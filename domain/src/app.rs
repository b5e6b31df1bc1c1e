//! The App aggregate: an application in the catalog, its Okta-style lifecycle
//! (ACTIVE / INACTIVE; deleted only while INACTIVE), its owners, and every
//! earlier version of its fields, any of which can be restored (as a new
//! version, never a rewrite).

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// Okta's `signOnMode` values.
pub const SIGN_ON_MODES: &[&str] = &[
    "AUTO_LOGIN",
    "BASIC_AUTH",
    "BOOKMARK",
    "BROWSER_PLUGIN",
    "OPENID_CONNECT",
    "SAML_1_1",
    "SAML_2_0",
    "SECURE_PASSWORD_STORE",
    "WS_FEDERATION",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct App {
    /// The current fields (owners included), as a full snapshot.
    pub fields: v1::AppCreated,
    pub active: bool,
    pub deleted: bool,
    /// `history[v - 1]` is the snapshot of the fields at version `v`.
    pub history: Vec<v1::AppCreated>,
}

impl App {
    pub fn exists(&self) -> bool {
        !self.fields.app_id.is_empty()
    }

    pub fn version(&self) -> u64 {
        self.history.len() as u64
    }

    fn is_owner(&self, ctx: &Context) -> bool {
        self.fields.owner_ids.contains(&ctx.actor_id)
    }
}

/// What a command on something inside an app (a resource type, a resource,
/// an entitlement) needs to know about the app: that it exists, is not
/// deleted, and who owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppFacts {
    pub app_id: String,
    pub exists: bool,
    pub deleted: bool,
    pub owner_ids: Vec<String>,
}

impl AppFacts {
    pub fn of(app: &App) -> AppFacts {
        AppFacts {
            app_id: app.fields.app_id.clone(),
            exists: app.exists(),
            deleted: app.deleted,
            owner_ids: app.fields.owner_ids.clone(),
        }
    }

    /// Refuses a missing or deleted app.
    pub fn require_live(&self) -> Result<(), DomainError> {
        if !self.exists {
            return Err(DomainError::NotFound("app".into()));
        }
        if self.deleted {
            return Err(DomainError::InvalidTransition(format!(
                "app {} is deleted",
                self.app_id
            )));
        }
        Ok(())
    }

    /// Whether the actor is an admin or an owner of the app.
    pub fn admin_or_owner(&self, ctx: &Context) -> bool {
        ctx.is_admin() || self.owner_ids.contains(&ctx.actor_id)
    }
}

#[derive(Debug, Clone)]
pub enum AppCommand {
    Create(v1::AppCreated),
    Update(v1::AppUpdated),
    Activate,
    Deactivate,
    Delete,
    Restore { version: u64 },
    SetOwners(Vec<String>),
    AddOwner(String),
    RemoveOwner(String),
}

impl Aggregate for App {
    type Command = AppCommand;
    const TYPE: &'static str = "app";

    fn decide(&self, command: &AppCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        if let AppCommand::Create(c) = command {
            if self.exists() {
                return Err(DomainError::AlreadyExists(format!(
                    "app {}",
                    self.fields.app_id
                )));
            }
            if !ctx.is_admin() {
                return Err(DomainError::Forbidden("only an admin creates apps".into()));
            }
            validate(c)?;
            return Ok(vec![c.clone().into()]);
        }
        if !self.exists() {
            return Err(DomainError::NotFound("app".into()));
        }
        if self.deleted {
            return Err(DomainError::InvalidTransition(format!(
                "app {} is deleted",
                self.fields.app_id
            )));
        }
        let id = self.fields.app_id.clone();
        let admin = ctx.is_admin();
        let admin_or_owner = admin || self.is_owner(ctx);
        let need = |allowed: bool, what: &str| {
            if allowed {
                Ok(())
            } else {
                Err(DomainError::Forbidden(format!("only {what}")))
            }
        };
        match command {
            AppCommand::Create(_) => unreachable!("handled above"),
            AppCommand::Update(u) => {
                need(admin_or_owner, "an admin or an owner of the app updates it")?;
                let after = apply_update(&self.fields, u);
                validate(&after)?;
                if after == self.fields {
                    return Ok(vec![]);
                }
                let mut u = u.clone();
                u.app_id = id;
                Ok(vec![u.into()])
            }
            AppCommand::Activate => {
                need(admin, "an admin activates apps")?;
                Ok(if self.active {
                    vec![]
                } else {
                    vec![v1::AppActivated { app_id: id }.into()]
                })
            }
            AppCommand::Deactivate => {
                need(admin, "an admin deactivates apps")?;
                Ok(if self.active {
                    vec![v1::AppDeactivated { app_id: id }.into()]
                } else {
                    vec![]
                })
            }
            AppCommand::Delete => {
                need(admin, "an admin deletes apps")?;
                if self.active {
                    return Err(DomainError::InvalidTransition(
                        "an ACTIVE app cannot be deleted; deactivate it first".into(),
                    ));
                }
                Ok(vec![v1::AppDeleted { app_id: id }.into()])
            }
            AppCommand::Restore { version } => {
                need(
                    admin_or_owner,
                    "an admin or an owner of the app restores it",
                )?;
                let Some(snapshot) = version
                    .checked_sub(1)
                    .and_then(|i| self.history.get(i as usize))
                else {
                    return Err(DomainError::NotFound(format!(
                        "version {version} of app {id}"
                    )));
                };
                Ok(vec![v1::AppRestored {
                    app_id: id,
                    restored_version: *version,
                    state: Some(snapshot.clone()),
                }
                .into()])
            }
            AppCommand::SetOwners(owners) => {
                need(admin, "an admin replaces the owners of an app")?;
                self.owners_event(dedup(owners.clone()))
            }
            AppCommand::AddOwner(user) => {
                need(
                    admin_or_owner,
                    "an admin or an owner of the app adds owners",
                )?;
                let mut owners = self.fields.owner_ids.clone();
                owners.push(user.clone());
                self.owners_event(dedup(owners))
            }
            AppCommand::RemoveOwner(user) => {
                need(
                    admin_or_owner,
                    "an admin or an owner of the app removes owners",
                )?;
                if !self.fields.owner_ids.contains(user) {
                    return Err(DomainError::NotFound(format!("owner {user} of app {id}")));
                }
                let owners = self
                    .fields
                    .owner_ids
                    .iter()
                    .filter(|o| *o != user)
                    .cloned()
                    .collect();
                self.owners_event(owners)
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::AppCreated(e) => {
                self.fields = e.clone();
                self.active = true;
            }
            DomainEvent::AppUpdated(e) => self.fields = apply_update(&self.fields, e),
            DomainEvent::AppActivated(_) => self.active = true,
            DomainEvent::AppDeactivated(_) => self.active = false,
            DomainEvent::AppDeleted(_) => self.deleted = true,
            DomainEvent::AppRestored(e) => {
                if let Some(state) = &e.state {
                    self.fields = state.clone();
                }
            }
            DomainEvent::AppOwnersSet(e) => {
                self.fields.owner_ids = e
                    .owner_ids
                    .as_ref()
                    .map(|l| l.values.clone())
                    .unwrap_or_default()
            }
            _ => return self,
        }
        self.history.push(self.fields.clone());
        self
    }
}

impl App {
    fn owners_event(&self, owners: Vec<String>) -> Result<Vec<DomainEvent>, DomainError> {
        if owners == self.fields.owner_ids {
            return Ok(vec![]);
        }
        Ok(vec![v1::AppOwnersSet {
            app_id: self.fields.app_id.clone(),
            owner_ids: Some(v1::StringList { values: owners }),
        }
        .into()])
    }
}

/// The fields after an update: only the fields present change.
pub fn apply_update(fields: &v1::AppCreated, u: &v1::AppUpdated) -> v1::AppCreated {
    let mut f = fields.clone();
    let set = |target: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            target.clone_from(v);
        }
    };
    set(&mut f.display_name, &u.display_name);
    set(&mut f.description, &u.description);
    set(&mut f.icon_url, &u.icon_url);
    set(&mut f.instructions, &u.instructions);
    set(&mut f.identity_matching, &u.identity_matching);
    set(&mut f.sign_on_mode, &u.sign_on_mode);
    set(&mut f.configuration_json, &u.configuration_json);
    set(&mut f.grant_policy_id, &u.grant_policy_id);
    set(&mut f.revoke_policy_id, &u.revoke_policy_id);
    if let Some(cost) = u.monthly_cost_usd {
        f.monthly_cost_usd = cost;
    }
    if let Some(p) = &u.provisioning {
        f.provisioning = Some(p.clone());
    }
    f
}

/// `ids` without repeats, first occurrence kept.
pub fn dedup(mut ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

fn validate(app: &v1::AppCreated) -> Result<(), DomainError> {
    let display_name = app.display_name.as_str();
    let sign_on_mode = app.sign_on_mode.as_str();
    let configuration_json = app.configuration_json.as_str();
    let cost = app.monthly_cost_usd;
    for (field, text, max) in [
        ("description", &app.description, 4096),
        ("iconUrl", &app.icon_url, 2048),
        ("instructions", &app.instructions, 4096),
        ("identityMatching", &app.identity_matching, 200),
    ] {
        if crate::text::chars(text) > max {
            return Err(DomainError::invalid(
                field,
                format!("at most {max} characters"),
            ));
        }
    }
    if crate::text::is_blank(display_name) || crate::text::chars(display_name) > 200 {
        return Err(DomainError::invalid("displayName", "1 to 200 characters"));
    }
    if !sign_on_mode.is_empty() && !SIGN_ON_MODES.contains(&sign_on_mode) {
        return Err(DomainError::invalid(
            "signOnMode",
            format!("one of {}", SIGN_ON_MODES.join(", ")),
        ));
    }
    if let Some(p) = &app.provisioning {
        crate::provisioning::validate_setting(p, false)?;
    }
    if configuration_json.len() > 64 * 1024 {
        return Err(DomainError::invalid("configuration", "at most 64 KiB"));
    }
    if cost < 0 {
        return Err(DomainError::invalid(
            "monthlyCostUsd",
            "must not be negative",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn created() -> v1::AppCreated {
        v1::AppCreated {
            app_id: "a1".into(),
            display_name: "GitHub".into(),
            sign_on_mode: "SAML_2_0".into(),
            configuration_json: r#"{"org":"acme"}"#.into(),
            owner_ids: vec!["owner".into()],
            access_entitlement_id: "e1".into(),
            ..Default::default()
        }
    }

    fn admin() -> Context {
        ctx("admin", &["admin"])
    }

    #[test]
    fn admin_creates_and_others_cannot() {
        given::<App>(&[])
            .when(&AppCommand::Create(created()), &admin())
            .then(&[created().into()]);
        given::<App>(&[])
            .when(&AppCommand::Create(created()), &ctx("owner", &[]))
            .then_error(DomainError::Forbidden("only an admin creates apps".into()));
        let mut bad = created();
        bad.sign_on_mode = "SMOKE_SIGNALS".into();
        assert!(matches!(
            given::<App>(&[]).state_for_test().decide(&AppCommand::Create(bad), &admin()),
            Err(DomainError::Invalid { field, .. }) if field == "signOnMode"
        ));
    }

    #[test]
    fn owners_update_strangers_cannot() {
        let update = v1::AppUpdated {
            display_name: Some("GitHub Enterprise".into()),
            ..Default::default()
        };
        let expected = v1::AppUpdated {
            app_id: "a1".into(),
            ..update.clone()
        };
        let state = given::<App>(&[created().into()])
            .when(&AppCommand::Update(update.clone()), &ctx("owner", &[]))
            .then(&[expected.into()]);
        assert_eq!(state.version(), 2);
        given::<App>(&[created().into()])
            .when(&AppCommand::Update(update), &ctx("stranger", &[]))
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app updates it".into(),
            ));
    }

    #[test]
    fn delete_only_when_inactive_and_then_nothing_else() {
        given::<App>(&[created().into()])
            .when(&AppCommand::Delete, &admin())
            .then_error(DomainError::InvalidTransition(
                "an ACTIVE app cannot be deleted; deactivate it first".into(),
            ));
        let deactivated: DomainEvent = v1::AppDeactivated {
            app_id: "a1".into(),
        }
        .into();
        let deleted: DomainEvent = v1::AppDeleted {
            app_id: "a1".into(),
        }
        .into();
        given::<App>(&[created().into(), deactivated.clone()])
            .when(&AppCommand::Delete, &admin())
            .then(std::slice::from_ref(&deleted));
        given::<App>(&[created().into(), deactivated, deleted])
            .when(&AppCommand::Activate, &admin())
            .then_error(DomainError::InvalidTransition("app a1 is deleted".into()));
    }

    #[test]
    fn restore_brings_back_an_earlier_version_as_a_new_one() {
        let renamed: DomainEvent = v1::AppUpdated {
            app_id: "a1".into(),
            display_name: Some("Renamed".into()),
            ..Default::default()
        }
        .into();
        let state = given::<App>(&[created().into(), renamed])
            .when(&AppCommand::Restore { version: 1 }, &admin())
            .then(&[v1::AppRestored {
                app_id: "a1".into(),
                restored_version: 1,
                state: Some(created()),
            }
            .into()]);
        assert_eq!(state.fields.display_name, "GitHub");
        assert_eq!(state.version(), 3);
        given::<App>(&[created().into()])
            .when(&AppCommand::Restore { version: 9 }, &admin())
            .then_error(DomainError::NotFound("version 9 of app a1".into()));
    }

    #[test]
    fn owners_are_added_and_removed_once() {
        let set = |ids: &[&str]| -> DomainEvent {
            v1::AppOwnersSet {
                app_id: "a1".into(),
                owner_ids: Some(v1::StringList {
                    values: ids.iter().map(|s| s.to_string()).collect(),
                }),
            }
            .into()
        };
        given::<App>(&[created().into()])
            .when(&AppCommand::AddOwner("u2".into()), &ctx("owner", &[]))
            .then(&[set(&["owner", "u2"])]);
        given::<App>(&[created().into()])
            .when(&AppCommand::AddOwner("owner".into()), &admin())
            .then(&[]);
        given::<App>(&[created().into()])
            .when(&AppCommand::RemoveOwner("nobody".into()), &admin())
            .then_error(DomainError::NotFound("owner nobody of app a1".into()));
        given::<App>(&[created().into()])
            .when(
                &AppCommand::SetOwners(vec!["x".into(), "x".into()]),
                &ctx("owner", &[]),
            )
            .then_error(DomainError::Forbidden(
                "only an admin replaces the owners of an app".into(),
            ));
    }
}
