//! The Policy aggregate: an approval policy, an ordered list of steps, each
//! naming who approves (the beneficiary's MANAGER, APP_OWNERS,
//! ENTITLEMENT_OWNERS, explicit USERS, or every user with a ROLE) and how
//! many distinct approvers complete it.
//!
//! Policies are versioned: every change is the whole new definition, kept
//! with its version, so a request can hold on to the version it was created
//! under while the policy moves on.

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

pub const APPROVER_TYPES: &[&str] = &[
    "MANAGER",
    "APP_OWNERS",
    "ENTITLEMENT_OWNERS",
    "USERS",
    "ROLE",
];
pub const MAX_STEPS: usize = 10;
pub const MAX_QUORUM: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub id: String,
    pub definition: v1::PolicyDefinition,
    pub deleted: bool,
    /// `(stream version, definition)` of every version, oldest first.
    pub versions: Vec<(u64, v1::PolicyDefinition)>,
    /// Events folded so far: the stream version.
    pub version: u64,
}

impl Policy {
    pub fn exists(&self) -> bool {
        !self.id.is_empty()
    }

    /// The definition in force at stream version `version`.
    pub fn at_version(&self, version: u64) -> Option<&v1::PolicyDefinition> {
        self.versions
            .iter()
            .rev()
            .find(|(v, _)| *v <= version)
            .map(|(_, d)| d)
    }
}

/// The fields of an update; only those present change.
#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub allow_self_approval: Option<bool>,
    pub auto_approve: Option<bool>,
    pub steps: Option<Vec<v1::PolicyStep>>,
}

#[derive(Debug, Clone)]
pub enum PolicyCommand {
    Create {
        policy_id: String,
        definition: v1::PolicyDefinition,
    },
    Update(PolicyPatch),
    Delete,
}

impl Aggregate for Policy {
    type Command = PolicyCommand;
    const TYPE: &'static str = "policy";

    fn decide(&self, c: &PolicyCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        if let PolicyCommand::Create {
            policy_id,
            definition,
        } = c
        {
            if self.exists() {
                return Err(DomainError::AlreadyExists(format!("policy {}", self.id)));
            }
            if !ctx.is_admin() {
                return Err(DomainError::Forbidden(
                    "only an admin creates policies".into(),
                ));
            }
            validate(definition)?;
            return Ok(vec![v1::PolicyCreated {
                policy_id: policy_id.clone(),
                definition: Some(definition.clone()),
            }
            .into()]);
        }
        if !self.exists() {
            return Err(DomainError::NotFound("policy".into()));
        }
        if self.deleted {
            return Err(DomainError::InvalidTransition(format!(
                "policy {} is deleted",
                self.id
            )));
        }
        if !ctx.is_admin() {
            return Err(DomainError::Forbidden(
                "only an admin changes policies".into(),
            ));
        }
        match c {
            PolicyCommand::Create { .. } => unreachable!("handled above"),
            PolicyCommand::Update(p) => {
                let mut d = self.definition.clone();
                if let Some(v) = &p.display_name {
                    d.display_name.clone_from(v);
                }
                if let Some(v) = &p.description {
                    d.description.clone_from(v);
                }
                if let Some(v) = p.allow_self_approval {
                    d.allow_self_approval = v;
                }
                if let Some(v) = p.auto_approve {
                    d.auto_approve = v;
                }
                if let Some(v) = &p.steps {
                    d.steps.clone_from(v);
                }
                validate(&d)?;
                if d == self.definition {
                    return Ok(vec![]);
                }
                Ok(vec![v1::PolicyUpdated {
                    policy_id: self.id.clone(),
                    definition: Some(d),
                }
                .into()])
            }
            PolicyCommand::Delete => Ok(vec![v1::PolicyDeleted {
                policy_id: self.id.clone(),
            }
            .into()]),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        let definition = match event {
            DomainEvent::PolicyCreated(e) => {
                self.id.clone_from(&e.policy_id);
                e.definition.clone()
            }
            DomainEvent::PolicyUpdated(e) => e.definition.clone(),
            DomainEvent::PolicyDeleted(_) => {
                self.deleted = true;
                self.version += 1;
                return self;
            }
            _ => return self,
        };
        self.version += 1;
        self.definition = definition.unwrap_or_default();
        self.versions.push((self.version, self.definition.clone()));
        self
    }
}

/// Checks a whole definition.
pub fn validate(d: &v1::PolicyDefinition) -> Result<(), DomainError> {
    crate::resource::validate_name(&d.display_name)?;
    if d.description.chars().count() > 4096 {
        return Err(DomainError::invalid(
            "description",
            "at most 4096 characters",
        ));
    }
    if d.steps.is_empty() && !d.auto_approve {
        return Err(DomainError::unsatisfiable(
            "steps",
            "at least one step, unless the policy auto-approves",
        ));
    }
    if d.steps.len() > MAX_STEPS {
        return Err(DomainError::invalid(
            "steps",
            format!("at most {MAX_STEPS} steps"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, step) in d.steps.iter().enumerate() {
        let field = |f: &str| format!("steps[{i}].{f}");
        if crate::text::is_blank(&step.name) || crate::text::chars(&step.name) > 200 {
            return Err(DomainError::invalid(&field("name"), "1 to 200 characters"));
        }
        // Approvers name the phase they act in; two steps of one name would
        // make "approve phase X" ambiguous.
        if !names.insert(step.name.trim().to_lowercase()) {
            return Err(DomainError::unsatisfiable(
                &field("name"),
                "step names are unique within a policy",
            ));
        }
        let Some(a) = &step.approvers else {
            return Err(DomainError::invalid(&field("approvers"), "required"));
        };
        if !APPROVER_TYPES.contains(&a.r#type.as_str()) {
            return Err(DomainError::invalid(
                &field("approvers.type"),
                format!("one of {}", APPROVER_TYPES.join(", ")),
            ));
        }
        if !(1..=MAX_QUORUM).contains(&step.quorum) {
            return Err(DomainError::invalid(
                &field("quorum"),
                format!("1 to {MAX_QUORUM}"),
            ));
        }
        match a.r#type.as_str() {
            "USERS" => {
                let distinct: std::collections::HashSet<_> = a.user_ids.iter().collect();
                if distinct.is_empty() || distinct.len() > 100 {
                    // USERS steps name their users: a rule across fields.
                    return Err(DomainError::unsatisfiable(
                        &field("approvers.userIds"),
                        "1 to 100 users",
                    ));
                }
                if step.quorum as usize > distinct.len() {
                    return Err(DomainError::unsatisfiable(
                        &field("quorum"),
                        "more than the number of users who can approve",
                    ));
                }
            }
            "ROLE" if !crate::user::ROLES.contains(&a.role.as_str()) => {
                // The schema says which roles there are; that a ROLE step
                // names one is a rule across fields.
                return Err(DomainError::unsatisfiable(
                    &field("approvers.role"),
                    format!("one of {}", crate::user::ROLES.join(", ")),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn definition() -> v1::PolicyDefinition {
        v1::PolicyDefinition {
            display_name: "Manager then security".into(),
            steps: vec![
                v1::PolicyStep {
                    name: "Manager".into(),
                    approvers: Some(v1::PolicyApprovers {
                        r#type: "MANAGER".into(),
                        ..Default::default()
                    }),
                    quorum: 1,
                    require_justification: false,
                },
                v1::PolicyStep {
                    name: "Security".into(),
                    approvers: Some(v1::PolicyApprovers {
                        r#type: "USERS".into(),
                        user_ids: vec!["s1".into(), "s2".into()],
                        role: String::new(),
                    }),
                    quorum: 2,
                    require_justification: true,
                },
            ],
            ..Default::default()
        }
    }

    fn created() -> DomainEvent {
        v1::PolicyCreated {
            policy_id: "p1".into(),
            definition: Some(definition()),
        }
        .into()
    }

    fn admin() -> Context {
        ctx("admin", &["admin"])
    }

    #[test]
    fn admins_create_policies_others_cannot() {
        let create = PolicyCommand::Create {
            policy_id: "p1".into(),
            definition: definition(),
        };
        given::<Policy>(&[])
            .when(&create, &admin())
            .then(&[created()]);
        given::<Policy>(&[])
            .when(&create, &ctx("u", &[]))
            .then_error(DomainError::Forbidden(
                "only an admin creates policies".into(),
            ));
    }

    #[test]
    fn steps_are_checked() {
        let bad = |f: fn(&mut v1::PolicyDefinition), field: &str| {
            let mut d = definition();
            f(&mut d);
            let err = validate(&d).unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid { field: got, .. }
                    | DomainError::Unsatisfiable { field: got, .. } if got == field),
                "{field}: {err:?}"
            );
        };
        bad(|d| d.steps.clear(), "steps");
        bad(|d| d.steps[1].name = " manager".into(), "steps[1].name");
        bad(|d| d.steps[1].quorum = 3, "steps[1].quorum");
        bad(|d| d.steps[0].quorum = 0, "steps[0].quorum");
        bad(
            |d| d.steps[0].approvers.as_mut().unwrap().r#type = "NOBODY".into(),
            "steps[0].approvers.type",
        );
        bad(
            |d| {
                let a = d.steps[0].approvers.as_mut().unwrap();
                a.r#type = "ROLE".into();
                a.role = "king".into();
            },
            "steps[0].approvers.role",
        );
        let mut auto = definition();
        auto.steps.clear();
        auto.auto_approve = true;
        assert!(validate(&auto).is_ok());
    }

    #[test]
    fn every_update_is_a_new_version_and_old_ones_stay_readable() {
        let patch = PolicyPatch {
            allow_self_approval: Some(true),
            ..Default::default()
        };
        let updated = v1::PolicyDefinition {
            allow_self_approval: true,
            ..definition()
        };
        let state = given::<Policy>(&[created()])
            .when(&PolicyCommand::Update(patch.clone()), &admin())
            .then(&[v1::PolicyUpdated {
                policy_id: "p1".into(),
                definition: Some(updated.clone()),
            }
            .into()]);
        assert_eq!(state.version, 2);
        assert_eq!(state.at_version(1), Some(&definition()));
        assert_eq!(state.at_version(2), Some(&updated));
        // The same patch again changes nothing.
        given::<Policy>(&[
            created(),
            v1::PolicyUpdated {
                policy_id: "p1".into(),
                definition: Some(updated),
            }
            .into(),
        ])
        .when(&PolicyCommand::Update(patch), &admin())
        .then(&[]);
    }

    #[test]
    fn deleted_policies_change_no_more() {
        let deleted: DomainEvent = v1::PolicyDeleted {
            policy_id: "p1".into(),
        }
        .into();
        given::<Policy>(&[created()])
            .when(&PolicyCommand::Delete, &admin())
            .then(std::slice::from_ref(&deleted));
        given::<Policy>(&[created(), deleted])
            .when(&PolicyCommand::Delete, &admin())
            .then_error(DomainError::InvalidTransition(
                "policy p1 is deleted".into(),
            ));
    }
}
