//! The AppEntitlement aggregate: something of an app a user can be granted
//! (a role, a group, plain access), with its risk, compliance frameworks,
//! maximum grant duration, requestability, policies and owners.
//!
//! Every app has a built-in "access" entitlement ([`builtin_access`]): it is
//! implied by `AppCreated` and written to its own stream (as an
//! `AppEntitlementCreated` with `systemBuiltin`) the first time it changes.
//!
//! Aliases are unique within an app through [`AliasClaim`] streams, the way
//! usernames are: of two entitlements claiming one alias, one wins.

use iga_schemas::v1;

use crate::app::{dedup, AppFacts};
use crate::{Aggregate, Context, DomainError, DomainEvent};

pub const PURPOSE_ASSIGNMENT: &str = "APP_ENTITLEMENT_PURPOSE_VALUE_ASSIGNMENT";
pub const PURPOSE_PERMISSION: &str = "APP_ENTITLEMENT_PURPOSE_VALUE_PERMISSION";
pub const PURPOSES: &[&str] = &[PURPOSE_ASSIGNMENT, PURPOSE_PERMISSION];
/// The alias of every app's built-in entitlement; no other entitlement may take it.
pub const ACCESS_ALIAS: &str = "access";
/// The longest maximum grant duration: ten years.
pub const MAX_DURATION_GRANT_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// The built-in "access" entitlement of `app`, as it stands until first changed.
pub fn builtin_access(app: &v1::AppCreated) -> v1::AppEntitlementCreated {
    v1::AppEntitlementCreated {
        app_id: app.app_id.clone(),
        entitlement_id: app.access_entitlement_id.clone(),
        display_name: "Access".into(),
        description: String::new(),
        alias: ACCESS_ALIAS.into(),
        slug: ACCESS_ALIAS.into(),
        purpose: PURPOSE_ASSIGNMENT.into(),
        requestable: true,
        system_builtin: true,
        ..Default::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entitlement {
    pub fields: v1::AppEntitlementCreated,
    pub deleted: bool,
}

impl Entitlement {
    pub fn exists(&self) -> bool {
        !self.fields.entitlement_id.is_empty()
    }

    fn is_owner(&self, ctx: &Context) -> bool {
        self.fields.owner_ids.contains(&ctx.actor_id)
    }
}

#[derive(Debug, Clone)]
pub enum EntitlementCommand {
    Create {
        fields: v1::AppEntitlementCreated,
        app: AppFacts,
    },
    /// Writes the built-in entitlement to its stream (before its first
    /// change); a no-op once written. Issued by the service, not a caller.
    MaterializeBuiltin(v1::AppEntitlementCreated),
    Update {
        update: v1::AppEntitlementUpdated,
        app: AppFacts,
    },
    Delete {
        app: AppFacts,
    },
    SetOwners {
        owners: Vec<String>,
        app: AppFacts,
    },
    AddOwner {
        user: String,
        app: AppFacts,
    },
    RemoveOwner {
        user: String,
        app: AppFacts,
    },
}

impl Aggregate for Entitlement {
    type Command = EntitlementCommand;
    const TYPE: &'static str = "entitlement";

    fn decide(
        &self,
        command: &EntitlementCommand,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        use EntitlementCommand as C;
        match command {
            C::MaterializeBuiltin(fields) => {
                return Ok(if self.exists() {
                    vec![]
                } else {
                    vec![fields.clone().into()]
                });
            }
            C::Create { fields, app } => {
                if self.exists() {
                    return Err(DomainError::AlreadyExists(format!(
                        "entitlement {}",
                        self.fields.entitlement_id
                    )));
                }
                app.require_live()?;
                if !app.admin_or_owner(ctx) {
                    return Err(DomainError::Forbidden(
                        "only an admin or an owner of the app creates entitlements".into(),
                    ));
                }
                validate(fields)?;
                return Ok(vec![fields.clone().into()]);
            }
            _ => {}
        }
        if !self.exists() {
            return Err(DomainError::NotFound("entitlement".into()));
        }
        let (C::Update { app, .. }
        | C::Delete { app }
        | C::SetOwners { app, .. }
        | C::AddOwner { app, .. }
        | C::RemoveOwner { app, .. }) = command
        else {
            unreachable!("create and materialize are handled above")
        };
        if app.app_id != self.fields.app_id {
            return Err(DomainError::NotFound("entitlement".into()));
        }
        app.require_live()?;
        if self.deleted {
            return Err(DomainError::InvalidTransition(format!(
                "entitlement {} is deleted",
                self.fields.entitlement_id
            )));
        }
        let app_level = app.admin_or_owner(ctx);
        let any_owner = app_level || self.is_owner(ctx);
        let need = |allowed: bool, what: &str| {
            if allowed {
                Ok(())
            } else {
                Err(DomainError::Forbidden(format!("only {what}")))
            }
        };
        let ids = (
            self.fields.app_id.clone(),
            self.fields.entitlement_id.clone(),
        );
        match command {
            C::Update { update, .. } => {
                need(
                    any_owner,
                    "an admin, an owner of the app or of the entitlement updates it",
                )?;
                if !app_level {
                    if let Some(field) = access_field(update) {
                        return Err(DomainError::Forbidden(format!(
                            "only an admin or an owner of the app changes {field}: it decides who gets access and how"
                        )));
                    }
                }
                let after = apply_update(&self.fields, update);
                if self.fields.system_builtin && after.alias != self.fields.alias {
                    return Err(DomainError::invalid(
                        "alias",
                        "the built-in access entitlement keeps its alias",
                    ));
                }
                validate(&after)?;
                if after == self.fields {
                    return Ok(vec![]);
                }
                let mut update = update.clone();
                (update.app_id, update.entitlement_id) = ids;
                Ok(vec![update.into()])
            }
            C::Delete { .. } => {
                need(
                    app_level,
                    "an admin or an owner of the app deletes entitlements",
                )?;
                if self.fields.system_builtin {
                    return Err(DomainError::InvalidTransition(
                        "the built-in access entitlement goes only with its app".into(),
                    ));
                }
                Ok(vec![v1::AppEntitlementDeleted {
                    app_id: ids.0,
                    entitlement_id: ids.1,
                }
                .into()])
            }
            C::SetOwners { owners, .. } => {
                need(
                    app_level,
                    "an admin or an owner of the app replaces the owners of an entitlement",
                )?;
                self.owners_event(dedup(owners.clone()))
            }
            C::AddOwner { user, .. } => {
                // Entitlement owners approve under ENTITLEMENT_OWNERS steps:
                // choosing them decides who grants access.
                need(
                    app_level,
                    "an admin or an owner of the app adds owners of an entitlement",
                )?;
                let mut owners = self.fields.owner_ids.clone();
                owners.push(user.clone());
                self.owners_event(dedup(owners))
            }
            C::RemoveOwner { user, .. } => {
                need(
                    app_level,
                    "an admin or an owner of the app removes owners of an entitlement",
                )?;
                if !self.fields.owner_ids.contains(user) {
                    return Err(DomainError::NotFound(format!(
                        "owner {user} of entitlement {}",
                        ids.1
                    )));
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
            C::Create { .. } | C::MaterializeBuiltin(_) => unreachable!("handled above"),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::AppEntitlementCreated(e) => self.fields = e.clone(),
            DomainEvent::AppEntitlementUpdated(e) => self.fields = apply_update(&self.fields, e),
            DomainEvent::AppEntitlementDeleted(_) => self.deleted = true,
            DomainEvent::AppEntitlementOwnersSet(e) => {
                self.fields.owner_ids = e
                    .owner_ids
                    .as_ref()
                    .map(|l| l.values.clone())
                    .unwrap_or_default()
            }
            _ => {}
        }
        self
    }
}

/// The first field of `update` that changes who gets access or how (grant
/// and revoke policies, requestability, maximum duration, risk, emergency
/// grants): those are for admins and app owners; an entitlement owner keeps
/// the descriptive ones.
pub fn access_field(update: &v1::AppEntitlementUpdated) -> Option<&'static str> {
    [
        (update.grant_policy_id.is_some(), "grantPolicyId"),
        (update.revoke_policy_id.is_some(), "revokePolicyId"),
        (update.provisioning.is_some(), "provisioning"),
        (update.requestable.is_some(), "requestable"),
        (update.duration_grant_seconds.is_some(), "durationGrant"),
        (update.risk_level_value_id.is_some(), "riskLevelValueId"),
        (
            update.emergency_grant_enabled.is_some(),
            "emergencyGrantEnabled",
        ),
    ]
    .into_iter()
    .find_map(|(set, field)| set.then_some(field))
}

impl Entitlement {
    fn owners_event(&self, owners: Vec<String>) -> Result<Vec<DomainEvent>, DomainError> {
        if owners == self.fields.owner_ids {
            return Ok(vec![]);
        }
        Ok(vec![v1::AppEntitlementOwnersSet {
            app_id: self.fields.app_id.clone(),
            entitlement_id: self.fields.entitlement_id.clone(),
            owner_ids: Some(v1::StringList { values: owners }),
        }
        .into()])
    }
}

/// The fields after an update: only the fields present change.
pub fn apply_update(
    fields: &v1::AppEntitlementCreated,
    u: &v1::AppEntitlementUpdated,
) -> v1::AppEntitlementCreated {
    let mut f = fields.clone();
    let set = |target: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            target.clone_from(v);
        }
    };
    set(&mut f.display_name, &u.display_name);
    set(&mut f.description, &u.description);
    set(&mut f.alias, &u.alias);
    set(&mut f.slug, &u.slug);
    set(&mut f.purpose, &u.purpose);
    set(&mut f.risk_level_value_id, &u.risk_level_value_id);
    set(&mut f.grant_policy_id, &u.grant_policy_id);
    set(&mut f.revoke_policy_id, &u.revoke_policy_id);
    if let Some(l) = &u.compliance_framework_value_ids {
        f.compliance_framework_value_ids.clone_from(&l.values);
    }
    if let Some(d) = u.duration_grant_seconds {
        f.duration_grant_seconds = d;
    }
    if let Some(r) = u.requestable {
        f.requestable = r;
    }
    if let Some(e) = u.emergency_grant_enabled {
        f.emergency_grant_enabled = e;
    }
    if let Some(p) = &u.provisioning {
        f.provisioning = Some(p.clone());
    }
    f
}

/// An alias: 1 to 64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn validate_alias(alias: &str) -> Result<(), DomainError> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(DomainError::invalid(
            "alias",
            "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

fn validate(f: &v1::AppEntitlementCreated) -> Result<(), DomainError> {
    crate::resource::validate_name(&f.display_name)?;
    if let Some(p) = &f.provisioning {
        crate::provisioning::validate_setting(p, true)?;
    }
    if f.description.chars().count() > 4096 {
        return Err(DomainError::invalid(
            "description",
            "at most 4096 characters",
        ));
    }
    if !f.alias.is_empty() {
        validate_alias(&f.alias)?;
        if !f.system_builtin && f.alias.eq_ignore_ascii_case(ACCESS_ALIAS) {
            // Taken, by the built-in entitlement: a conflict like any taken alias.
            return Err(DomainError::AlreadyExists(
                "alias \"access\" (the app's built-in entitlement)".into(),
            ));
        }
    }
    if f.slug.chars().count() > 200 {
        return Err(DomainError::invalid("slug", "at most 200 characters"));
    }
    if !PURPOSES.contains(&f.purpose.as_str()) {
        return Err(DomainError::invalid(
            "purpose",
            format!("one of {}", PURPOSES.join(", ")),
        ));
    }
    if f.risk_level_value_id.chars().count() > 128 {
        return Err(DomainError::invalid(
            "riskLevelValueId",
            "at most 128 characters",
        ));
    }
    if f.compliance_framework_value_ids.len() > 32
        || f.compliance_framework_value_ids
            .iter()
            .any(|v| v.is_empty() || v.chars().count() > 128)
    {
        return Err(DomainError::invalid(
            "complianceFrameworkValueIds",
            "at most 32 ids of 1 to 128 characters",
        ));
    }
    if !(0..=MAX_DURATION_GRANT_SECONDS).contains(&f.duration_grant_seconds) {
        return Err(DomainError::unsatisfiable(
            "durationGrant",
            "between 0s (no maximum) and ten years",
        ));
    }
    if f.owner_ids.len() > 100 {
        return Err(DomainError::invalid("ownerIds", "at most 100 owners"));
    }
    Ok(())
}

/// A claim on an alias within an app (stream key: see [`alias_key`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasClaim {
    /// The entitlement holding the alias, if any.
    pub holder: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AliasCommand {
    /// Claims the alias for `entitlement_id`. `holder_gone` says the current
    /// holder no longer uses it (deleted, renamed, or never created after a
    /// crash), so the claim may be taken over.
    Claim {
        app_id: String,
        alias: String,
        entitlement_id: String,
        holder_gone: bool,
    },
    Release {
        app_id: String,
        alias: String,
        entitlement_id: String,
    },
}

/// The claim stream key of `alias` in `app_id`: case-insensitive, and hex so
/// it holds only characters a stream id may.
pub fn alias_key(app_id: &str, alias: &str) -> String {
    let hex: String = alias
        .to_ascii_lowercase()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{app_id}_{hex}")
}

impl Aggregate for AliasClaim {
    type Command = AliasCommand;
    const TYPE: &'static str = "entitlement_alias";

    fn decide(&self, c: &AliasCommand, _ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        match c {
            AliasCommand::Claim {
                app_id,
                alias,
                entitlement_id,
                holder_gone,
            } => match &self.holder {
                Some(h) if h == entitlement_id => Ok(vec![]),
                Some(_) if !holder_gone => Err(DomainError::AlreadyExists(format!(
                    "alias {alias:?} in app {app_id}"
                ))),
                _ => Ok(vec![v1::EntitlementAliasClaimed {
                    app_id: app_id.clone(),
                    alias: alias.clone(),
                    entitlement_id: entitlement_id.clone(),
                }
                .into()]),
            },
            AliasCommand::Release {
                app_id,
                alias,
                entitlement_id,
            } => Ok(match &self.holder {
                Some(h) if h == entitlement_id => vec![v1::EntitlementAliasReleased {
                    app_id: app_id.clone(),
                    alias: alias.clone(),
                    entitlement_id: entitlement_id.clone(),
                }
                .into()],
                _ => vec![],
            }),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::EntitlementAliasClaimed(e) => self.holder = Some(e.entitlement_id.clone()),
            DomainEvent::EntitlementAliasReleased(_) => self.holder = None,
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn app() -> AppFacts {
        AppFacts {
            app_id: "a1".into(),
            exists: true,
            deleted: false,
            owner_ids: vec!["app-owner".into()],
        }
    }

    fn created() -> v1::AppEntitlementCreated {
        v1::AppEntitlementCreated {
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
            display_name: "Admin".into(),
            alias: "admin".into(),
            purpose: PURPOSE_PERMISSION.into(),
            duration_grant_seconds: 3600,
            requestable: true,
            owner_ids: vec!["ent-owner".into()],
            ..Default::default()
        }
    }

    fn create() -> EntitlementCommand {
        EntitlementCommand::Create {
            fields: created(),
            app: app(),
        }
    }

    #[test]
    fn app_owners_create_entitlements_others_cannot() {
        given::<Entitlement>(&[])
            .when(&create(), &ctx("app-owner", &[]))
            .then(&[created().into()]);
        given::<Entitlement>(&[])
            .when(&create(), &ctx("ent-owner", &[]))
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app creates entitlements".into(),
            ));
        given::<Entitlement>(&[])
            .when(
                &EntitlementCommand::Create {
                    fields: created(),
                    app: AppFacts::default(),
                },
                &ctx("admin", &["admin"]),
            )
            .then_error(DomainError::NotFound("app".into()));
    }

    #[test]
    fn fields_are_checked() {
        let bad = |f: fn(&mut v1::AppEntitlementCreated), field: &str| {
            let mut fields = created();
            f(&mut fields);
            let err = given::<Entitlement>(&[])
                .state_for_test()
                .decide(
                    &EntitlementCommand::Create { fields, app: app() },
                    &ctx("admin", &["admin"]),
                )
                .unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid { field: f, .. }
                    | DomainError::Unsatisfiable { field: f, .. } if f == field),
                "{field}: {err:?}"
            );
        };
        bad(|f| f.display_name = " ".into(), "displayName");
        bad(|f| f.alias = "has space".into(), "alias");
        // The built-in entitlement's alias is taken, like any taken alias.
        let mut access = created();
        access.alias = "ACCESS".into();
        assert!(matches!(
            Entitlement::default().decide(
                &EntitlementCommand::Create {
                    fields: access,
                    app: app()
                },
                &ctx("admin", &["admin"])
            ),
            Err(DomainError::AlreadyExists(_))
        ));
        bad(|f| f.purpose = "FUN".into(), "purpose");
        bad(|f| f.duration_grant_seconds = -1, "durationGrant");
        bad(
            |f| f.compliance_framework_value_ids = vec![String::new()],
            "complianceFrameworkValueIds",
        );
    }

    #[test]
    fn entitlement_owners_edit_descriptions_but_nothing_that_decides_access() {
        let update = v1::AppEntitlementUpdated {
            description: Some("what it is".into()),
            ..Default::default()
        };
        let state = given::<Entitlement>(&[created().into()])
            .when(
                &EntitlementCommand::Update {
                    update: update.clone(),
                    app: app(),
                },
                &ctx("ent-owner", &[]),
            )
            .then(&[v1::AppEntitlementUpdated {
                app_id: "a1".into(),
                entitlement_id: "e2".into(),
                ..update
            }
            .into()]);
        assert_eq!(state.fields.description, "what it is");
        // Every field that changes who gets access or how is refused.
        let refused: Vec<(v1::AppEntitlementUpdated, &str)> = vec![
            (
                v1::AppEntitlementUpdated {
                    grant_policy_id: Some("auto".into()),
                    ..Default::default()
                },
                "grantPolicyId",
            ),
            (
                v1::AppEntitlementUpdated {
                    revoke_policy_id: Some("auto".into()),
                    ..Default::default()
                },
                "revokePolicyId",
            ),
            (
                v1::AppEntitlementUpdated {
                    requestable: Some(false),
                    ..Default::default()
                },
                "requestable",
            ),
            (
                v1::AppEntitlementUpdated {
                    duration_grant_seconds: Some(0),
                    ..Default::default()
                },
                "durationGrant",
            ),
            (
                v1::AppEntitlementUpdated {
                    risk_level_value_id: Some("low".into()),
                    ..Default::default()
                },
                "riskLevelValueId",
            ),
            (
                v1::AppEntitlementUpdated {
                    emergency_grant_enabled: Some(true),
                    description: Some("with a harmless change".into()),
                    ..Default::default()
                },
                "emergencyGrantEnabled",
            ),
        ];
        for (update, field) in refused {
            given::<Entitlement>(&[created().into()])
                .when(
                    &EntitlementCommand::Update {
                        update: update.clone(),
                        app: app(),
                    },
                    &ctx("ent-owner", &[]),
                )
                .then_error(DomainError::Forbidden(format!(
                    "only an admin or an owner of the app changes {field}: it decides who gets access and how"
                )));
            // The app's owners may.
            given::<Entitlement>(&[created().into()])
                .when(
                    &EntitlementCommand::Update { update, app: app() },
                    &ctx("app-owner", &[]),
                )
                .state_for_test_ok();
        }
        // Owners approve ENTITLEMENT_OWNERS steps: an entitlement owner
        // cannot choose them.
        given::<Entitlement>(&[created().into()])
            .when(
                &EntitlementCommand::AddOwner {
                    user: "u9".into(),
                    app: app(),
                },
                &ctx("ent-owner", &[]),
            )
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app adds owners of an entitlement".into(),
            ));
        given::<Entitlement>(&[created().into()])
            .when(
                &EntitlementCommand::AddOwner {
                    user: "u9".into(),
                    app: app(),
                },
                &ctx("app-owner", &[]),
            )
            .then(&[v1::AppEntitlementOwnersSet {
                app_id: "a1".into(),
                entitlement_id: "e2".into(),
                owner_ids: Some(v1::StringList {
                    values: vec!["ent-owner".into(), "u9".into()],
                }),
            }
            .into()]);
        given::<Entitlement>(&[created().into()])
            .when(
                &EntitlementCommand::Delete { app: app() },
                &ctx("ent-owner", &[]),
            )
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app deletes entitlements".into(),
            ));
        let deleted: DomainEvent = v1::AppEntitlementDeleted {
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
        }
        .into();
        given::<Entitlement>(&[created().into()])
            .when(
                &EntitlementCommand::Delete { app: app() },
                &ctx("app-owner", &[]),
            )
            .then(std::slice::from_ref(&deleted));
        given::<Entitlement>(&[created().into(), deleted])
            .when(
                &EntitlementCommand::SetOwners {
                    owners: vec![],
                    app: app(),
                },
                &ctx("admin", &["admin"]),
            )
            .then_error(DomainError::InvalidTransition(
                "entitlement e2 is deleted".into(),
            ));
    }

    #[test]
    fn the_builtin_is_materialized_once_keeps_its_alias_and_is_not_deleted() {
        let app_created = v1::AppCreated {
            app_id: "a1".into(),
            access_entitlement_id: "acc".into(),
            ..Default::default()
        };
        let builtin = builtin_access(&app_created);
        given::<Entitlement>(&[])
            .when(
                &EntitlementCommand::MaterializeBuiltin(builtin.clone()),
                &ctx("anyone", &[]),
            )
            .then(&[builtin.clone().into()]);
        given::<Entitlement>(&[builtin.clone().into()])
            .when(
                &EntitlementCommand::MaterializeBuiltin(builtin.clone()),
                &ctx("anyone", &[]),
            )
            .then(&[]);
        given::<Entitlement>(&[builtin.clone().into()])
            .when(
                &EntitlementCommand::Update {
                    update: v1::AppEntitlementUpdated {
                        alias: Some("other".into()),
                        ..Default::default()
                    },
                    app: app(),
                },
                &ctx("admin", &["admin"]),
            )
            .then_error(DomainError::invalid(
                "alias",
                "the built-in access entitlement keeps its alias",
            ));
        given::<Entitlement>(&[builtin.into()])
            .when(
                &EntitlementCommand::Delete { app: app() },
                &ctx("admin", &["admin"]),
            )
            .then_error(DomainError::InvalidTransition(
                "the built-in access entitlement goes only with its app".into(),
            ));
    }

    #[test]
    fn one_alias_one_holder_until_released_or_gone() {
        let claim = |id: &str, gone: bool| AliasCommand::Claim {
            app_id: "a1".into(),
            alias: "Admin".into(),
            entitlement_id: id.into(),
            holder_gone: gone,
        };
        let claimed = |id: &str| -> DomainEvent {
            v1::EntitlementAliasClaimed {
                app_id: "a1".into(),
                alias: "Admin".into(),
                entitlement_id: id.into(),
            }
            .into()
        };
        let anyone = ctx("x", &[]);
        given::<AliasClaim>(&[])
            .when(&claim("e1", false), &anyone)
            .then(&[claimed("e1")]);
        given::<AliasClaim>(&[claimed("e1")])
            .when(&claim("e1", false), &anyone)
            .then(&[]);
        given::<AliasClaim>(&[claimed("e1")])
            .when(&claim("e2", false), &anyone)
            .then_error(DomainError::AlreadyExists(
                "alias \"Admin\" in app a1".into(),
            ));
        given::<AliasClaim>(&[claimed("e1")])
            .when(&claim("e2", true), &anyone)
            .then(&[claimed("e2")]);
        let release = AliasCommand::Release {
            app_id: "a1".into(),
            alias: "Admin".into(),
            entitlement_id: "e1".into(),
        };
        let released: DomainEvent = v1::EntitlementAliasReleased {
            app_id: "a1".into(),
            alias: "Admin".into(),
            entitlement_id: "e1".into(),
        }
        .into();
        given::<AliasClaim>(&[claimed("e1")])
            .when(&release, &anyone)
            .then(std::slice::from_ref(&released));
        given::<AliasClaim>(&[claimed("e1"), released])
            .when(&claim("e2", false), &anyone)
            .then(&[claimed("e2")]);
        assert_eq!(alias_key("a1", "Admin"), alias_key("a1", "admin"));
    }
}
