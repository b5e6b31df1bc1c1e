//! Routing: a policy's steps resolved into the phases of one request, over
//! facts the service loads (who owns what, who manages the beneficiary,
//! which users are enabled and whom they delegate to).
//!
//! The rules (DOMAIN.md 3–6, and the trust fixes of issue 15):
//! - A step's approvers are its named people, each enabled, plus each one's
//!   delegate, who stands for them: a delegate and their principal are one
//!   person towards the quorum.
//! - Unless the policy allows self-approval, nobody in
//!   [`Routing::excluded`] acts on the request: the requester, the
//!   beneficiary, and the delegate of either (no self-approval by proxy).
//! - The quorum is never lowered. A step left with fewer eligible people
//!   than its quorum falls back to admins, and the phase says so
//!   (`admin_fallback`).
//! - Phases are identified by position; step names are unique per policy
//!   ([`crate::policy::validate`]).

use std::collections::{BTreeMap, BTreeSet};

use iga_schemas::v1;

/// What routing needs to know about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    pub enabled: bool,
    /// Empty: no delegate.
    pub delegated_user_id: String,
}

/// Everything a policy is resolved against; the service loads it.
#[derive(Debug, Clone, Default)]
pub struct RoutingFacts {
    pub requester_id: String,
    pub beneficiary_id: String,
    pub beneficiary_manager_ids: Vec<String>,
    pub app_owner_ids: Vec<String>,
    pub entitlement_owner_ids: Vec<String>,
    /// Every user named above or by a step, and their delegates; a user
    /// missing here does not exist.
    pub users: BTreeMap<String, UserFacts>,
}

impl RoutingFacts {
    fn delegate_of(&self, id: &str) -> Option<&str> {
        self.users
            .get(id)
            .map(|u| u.delegated_user_id.as_str())
            .filter(|d| !d.is_empty())
    }

    fn enabled(&self, id: &str) -> bool {
        self.users.get(id).is_some_and(|u| u.enabled)
    }
}

/// A request's phases and who may never act on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    pub phases: Vec<v1::RequestPhase>,
    /// Sorted; empty when the policy allows self-approval.
    pub excluded: Vec<String>,
}

/// The built-in policy of an entitlement and app that name none: one
/// "Approval" step by the app's owners.
pub fn default_policy() -> v1::PolicyDefinition {
    v1::PolicyDefinition {
        display_name: "Default".into(),
        steps: vec![v1::PolicyStep {
            name: "Approval".into(),
            approvers: Some(v1::PolicyApprovers {
                r#type: "APP_OWNERS".into(),
                ..Default::default()
            }),
            quorum: 1,
            require_justification: false,
        }],
        ..Default::default()
    }
}

/// The people a step names, before any filtering.
fn named(step: &v1::PolicyStep, facts: &RoutingFacts) -> Vec<String> {
    let Some(a) = &step.approvers else {
        return vec![];
    };
    match a.r#type.as_str() {
        "MANAGER" => facts.beneficiary_manager_ids.clone(),
        "APP_OWNERS" => facts.app_owner_ids.clone(),
        "ENTITLEMENT_OWNERS" => facts.entitlement_owner_ids.clone(),
        "USERS" => a.user_ids.clone(),
        _ => vec![],
    }
}

/// The users whose facts resolving `policy` needs (before delegates): the
/// parties and every person a step names. The service loads these, then
/// their delegates ([`delegates_to_load`]).
pub fn users_to_load(policy: &v1::PolicyDefinition, facts: &RoutingFacts) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = policy.steps.iter().flat_map(|s| named(s, facts)).collect();
    ids.insert(facts.requester_id.clone());
    ids.insert(facts.beneficiary_id.clone());
    ids
}

/// The delegates of users already loaded whose own facts are not loaded yet.
pub fn delegates_to_load(facts: &RoutingFacts) -> BTreeSet<String> {
    facts
        .users
        .values()
        .map(|u| u.delegated_user_id.clone())
        .filter(|d| !d.is_empty() && !facts.users.contains_key(d))
        .collect()
}

/// Resolves `policy` into phases for the request `facts` describe.
pub fn resolve(policy: &v1::PolicyDefinition, facts: &RoutingFacts) -> Routing {
    let mut excluded = BTreeSet::new();
    if !policy.allow_self_approval {
        for party in [&facts.requester_id, &facts.beneficiary_id] {
            excluded.insert(party.clone());
            if let Some(d) = facts.delegate_of(party) {
                excluded.insert(d.to_string());
            }
        }
    }
    let phases = policy
        .steps
        .iter()
        .map(|step| {
            let mut principals: Vec<String> = Vec::new();
            for id in named(step, facts) {
                if facts.enabled(&id) && !excluded.contains(&id) && !principals.contains(&id) {
                    principals.push(id);
                }
            }
            let mut approver_ids = principals.clone();
            let mut delegates = Vec::new();
            for p in &principals {
                let Some(d) = facts.delegate_of(p) else {
                    continue;
                };
                // A delegate who is an approver in their own right counts as
                // themselves; one who is disabled or excluded stands for nobody.
                if principals.iter().any(|x| x == d) || excluded.contains(d) || !facts.enabled(d) {
                    continue;
                }
                if !approver_ids.iter().any(|x| x == d) {
                    approver_ids.push(d.to_string());
                }
                delegates.push(v1::ApproverDelegate {
                    delegate_id: d.to_string(),
                    principal_id: p.clone(),
                });
            }
            let approvers = step.approvers.clone().unwrap_or_default();
            let quorum = step.quorum.max(1);
            let mut role = if approvers.r#type == "ROLE" {
                approvers.role.clone()
            } else {
                String::new()
            };
            // Never lower the quorum: too few eligible people, and the
            // admins make up the difference, visibly.
            let admin_fallback = role.is_empty() && principals.len() < quorum as usize;
            if admin_fallback {
                role = "admin".into();
            }
            v1::RequestPhase {
                name: step.name.clone(),
                quorum,
                require_justification: step.require_justification,
                approver_ids,
                role,
                admin_fallback,
                delegates,
            }
        })
        .collect();
    Routing {
        phases,
        excluded: excluded.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, kind: &str, users: &[&str], quorum: u32) -> v1::PolicyStep {
        v1::PolicyStep {
            name: name.into(),
            approvers: Some(v1::PolicyApprovers {
                r#type: kind.into(),
                user_ids: users.iter().map(|u| u.to_string()).collect(),
                role: String::new(),
            }),
            quorum,
            require_justification: false,
        }
    }

    fn facts(users: &[(&str, bool, &str)]) -> RoutingFacts {
        RoutingFacts {
            requester_id: "req".into(),
            beneficiary_id: "ben".into(),
            beneficiary_manager_ids: vec!["mgr".into()],
            app_owner_ids: vec!["o1".into(), "o2".into()],
            entitlement_owner_ids: vec![],
            users: users
                .iter()
                .map(|(id, enabled, delegate)| {
                    (
                        id.to_string(),
                        UserFacts {
                            enabled: *enabled,
                            delegated_user_id: delegate.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn policy(steps: Vec<v1::PolicyStep>) -> v1::PolicyDefinition {
        v1::PolicyDefinition {
            display_name: "p".into(),
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn given_a_requester_with_a_delegate_when_resolved_then_the_delegate_is_excluded_everywhere() {
        let f = facts(&[
            ("req", true, "d-req"),
            ("ben", true, "d-ben"),
            ("d-req", true, ""),
            ("d-ben", true, ""),
            ("o1", true, ""),
            ("o2", true, ""),
        ]);
        let p = policy(vec![step("S", "USERS", &["d-req", "d-ben", "o1"], 1)]);
        let r = resolve(&p, &f);
        assert_eq!(r.excluded, ["ben", "d-ben", "d-req", "req"]);
        assert_eq!(r.phases[0].approver_ids, ["o1"]);
    }

    #[test]
    fn given_an_approver_with_a_delegate_when_resolved_then_the_delegate_stands_for_them() {
        let f = facts(&[
            ("req", true, ""),
            ("ben", true, ""),
            ("o1", true, "d1"),
            ("o2", true, ""),
            ("d1", true, ""),
        ]);
        let r = resolve(&policy(vec![step("S", "APP_OWNERS", &[], 2)]), &f);
        let phase = &r.phases[0];
        assert_eq!(phase.approver_ids, ["o1", "o2", "d1"]);
        assert_eq!(
            phase.delegates,
            [v1::ApproverDelegate {
                delegate_id: "d1".into(),
                principal_id: "o1".into()
            }]
        );
        // Two people (o1 and o2) for a quorum of 2: no fallback.
        assert!(!phase.admin_fallback);
        assert_eq!(phase.quorum, 2);
    }

    #[test]
    fn given_too_few_people_when_resolved_then_the_quorum_stays_and_admins_fall_back_visibly() {
        // o1 and its delegate are one person; o2 is disabled.
        let f = facts(&[
            ("req", true, ""),
            ("ben", true, ""),
            ("o1", true, "d1"),
            ("o2", false, ""),
            ("d1", true, ""),
        ]);
        let r = resolve(&policy(vec![step("S", "APP_OWNERS", &[], 2)]), &f);
        let phase = &r.phases[0];
        assert_eq!(phase.quorum, 2, "never lowered");
        assert!(phase.admin_fallback);
        assert_eq!(phase.role, "admin");
    }

    #[test]
    fn given_a_delegate_of_the_requester_who_is_an_owners_delegate_when_resolved_then_it_stands_for_nobody(
    ) {
        let f = facts(&[
            ("req", true, "d"),
            ("ben", true, ""),
            ("o1", true, "d"),
            ("o2", true, ""),
            ("d", true, ""),
        ]);
        let r = resolve(&policy(vec![step("S", "APP_OWNERS", &[], 1)]), &f);
        assert_eq!(r.phases[0].approver_ids, ["o1", "o2"]);
        assert!(r.phases[0].delegates.is_empty());
    }

    #[test]
    fn given_self_approval_allowed_when_resolved_then_nobody_is_excluded() {
        let f = facts(&[("req", true, "d"), ("ben", true, ""), ("d", true, "")]);
        let mut p = policy(vec![step("S", "USERS", &["req"], 1)]);
        p.allow_self_approval = true;
        let r = resolve(&p, &f);
        assert!(r.excluded.is_empty());
        assert_eq!(r.phases[0].approver_ids, ["req", "d"]);
    }

    #[test]
    fn given_unknown_and_disabled_approvers_when_resolved_then_they_are_left_out() {
        let f = facts(&[("req", true, ""), ("ben", true, ""), ("o1", false, "")]);
        let r = resolve(&policy(vec![step("S", "USERS", &["o1", "ghost"], 1)]), &f);
        assert!(r.phases[0].approver_ids.is_empty());
        assert!(r.phases[0].admin_fallback);
    }

    #[test]
    fn loading_asks_for_every_named_user_then_their_delegates() {
        let mut f = facts(&[]);
        let p = policy(vec![
            step("A", "MANAGER", &[], 1),
            step("B", "USERS", &["u1"], 1),
        ]);
        let ids: Vec<_> = users_to_load(&p, &f).into_iter().collect();
        assert_eq!(ids, ["ben", "mgr", "req", "u1"]);
        f.users.insert(
            "u1".into(),
            UserFacts {
                enabled: true,
                delegated_user_id: "d".into(),
            },
        );
        assert_eq!(delegates_to_load(&f).into_iter().collect::<Vec<_>>(), ["d"]);
    }
}
