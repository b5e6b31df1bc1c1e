//! The approval invariant, over random policies and random actions:
//! nothing is approved unless every phase got its quorum of distinct
//! eligible people, none of them the requester, the beneficiary or a
//! delegate of either.
//!
//! Random policies repeat step names (as policies stored before names had to
//! be unique may), overlap approver sets, give approvers delegates (and
//! delegates delegates), and disable some; random actions come from anyone,
//! admins included, and reassign tasks.

use std::collections::{BTreeMap, BTreeSet};

use iga_domain::request::{AccessRequest, RequestCommand};
use iga_domain::routing::{self, RoutingFacts, UserFacts};
use iga_domain::{Aggregate, Context};
use iga_schemas::v1;
use proptest::prelude::*;

const PEOPLE: usize = 8;

fn person(i: usize) -> String {
    format!("p{i}")
}

#[derive(Debug, Clone)]
struct Step {
    name: &'static str,
    kind: u8,
    users: Vec<usize>,
    quorum: u32,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::sample::select(vec!["Review", "Review", "Security"]),
        0u8..4,
        prop::collection::vec(0..PEOPLE, 1..5),
        1u32..4,
    )
        .prop_map(|(name, kind, users, quorum)| Step {
            name,
            kind,
            users,
            quorum,
        })
}

#[derive(Debug, Clone)]
struct World {
    requester: usize,
    beneficiary: usize,
    /// (enabled, delegate)
    users: Vec<(bool, Option<usize>)>,
    managers: Vec<usize>,
    owners: Vec<usize>,
    steps: Vec<Step>,
}

fn world() -> impl Strategy<Value = World> {
    (
        0..PEOPLE,
        0..PEOPLE,
        prop::collection::vec(
            (prop::bool::weighted(0.85), prop::option::of(0..PEOPLE)),
            PEOPLE,
        ),
        prop::collection::vec(0..PEOPLE, 0..3),
        prop::collection::vec(0..PEOPLE, 0..4),
        prop::collection::vec(step(), 1..4),
    )
        .prop_map(
            |(requester, beneficiary, mut users, managers, owners, steps)| {
                // Nobody is their own delegate (the User aggregate refuses it).
                for (i, u) in users.iter_mut().enumerate() {
                    if u.1 == Some(i) {
                        u.1 = None;
                    }
                }
                World {
                    requester,
                    beneficiary,
                    users,
                    managers,
                    owners,
                    steps,
                }
            },
        )
}

/// (actor, is admin, what: 0-2 approve, 3 reject, 4 reassign to `to`)
fn action() -> impl Strategy<Value = (usize, bool, u8, usize)> {
    (0..PEOPLE, prop::bool::weighted(0.2), 0u8..5, 0..PEOPLE)
}

fn policy(w: &World) -> v1::PolicyDefinition {
    v1::PolicyDefinition {
        display_name: "random".into(),
        steps: w
            .steps
            .iter()
            .map(|s| v1::PolicyStep {
                name: s.name.into(),
                approvers: Some(v1::PolicyApprovers {
                    r#type: ["USERS", "MANAGER", "APP_OWNERS", "ROLE"][s.kind as usize].into(),
                    user_ids: s.users.iter().map(|u| person(*u)).collect(),
                    role: if s.kind == 3 {
                        "auditor".into()
                    } else {
                        String::new()
                    },
                }),
                quorum: s.quorum,
                require_justification: false,
            })
            .collect(),
        ..Default::default()
    }
}

fn facts(w: &World) -> RoutingFacts {
    RoutingFacts {
        requester_id: person(w.requester),
        beneficiary_id: person(w.beneficiary),
        beneficiary_manager_ids: w.managers.iter().map(|m| person(*m)).collect(),
        app_owner_ids: w.owners.iter().map(|o| person(*o)).collect(),
        entitlement_owner_ids: vec![],
        users: w
            .users
            .iter()
            .enumerate()
            .map(|(i, (enabled, delegate))| {
                (
                    person(i),
                    UserFacts {
                        enabled: *enabled,
                        delegated_user_id: delegate.map(person).unwrap_or_default(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn ctx(actor: usize, admin: bool) -> Context {
    Context {
        actor_id: person(actor),
        actor_roles: if admin {
            vec!["admin".into()]
        } else if actor.is_multiple_of(3) {
            vec!["auditor".into()]
        } else {
            vec![]
        },
        now_unix_micros: 1_700_000_000_000_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn nothing_is_approved_without_every_quorum_of_distinct_eligible_people(
        w in world(),
        actions in prop::collection::vec(action(), 0..30),
    ) {
        let f = facts(&w);
        let routed = routing::resolve(&policy(&w), &f);
        // Who may never approve: the parties and their delegates.
        let mut forbidden: BTreeSet<String> = BTreeSet::new();
        for party in [w.requester, w.beneficiary] {
            forbidden.insert(person(party));
            if let Some(d) = w.users[party].1 {
                forbidden.insert(person(d));
            }
        }
        prop_assert_eq!(&routed.excluded, &forbidden.iter().cloned().collect::<Vec<_>>());
        let created = v1::AccessRequestCreated {
            request_id: "r".into(),
            requester_id: person(w.requester),
            user_id: person(w.beneficiary),
            priority: "low".into(),
            request_type: "entitlementGrant".into(),
            phases: routed.phases.clone(),
            excluded_approver_ids: routed.excluded.clone(),
            ..Default::default()
        };
        let system = ctx(0, true);
        let mut state = AccessRequest::default();
        for e in state
            .decide(&RequestCommand::Create { created: Box::new(created), auto_approve: false }, &system)
            .unwrap()
        {
            state = state.evolve(&e);
        }
        for (actor, admin, what, to) in actions {
            let c = ctx(actor, admin);
            let command = match what {
                0..=2 => RequestCommand::Approve { phase: None, justification: String::new(), comment: String::new() },
                3 => RequestCommand::Reject { phase: None, justification: String::new(), comment: String::new() },
                _ => RequestCommand::Reassign { phase: None, to_user_ids: vec![person(to)], comment: String::new() },
            };
            if let Ok(events) = state.decide(&command, &c) {
                for e in &events {
                    if let iga_schemas::DomainEvent::RequestApprovalRecorded(a) = e {
                        // Eligible when they approved: assigned to the phase,
                        // holding its role, or an admin.
                        let phase = state.current_phase().expect("an open phase");
                        let assigned = phase.assigned().contains(&a.user_id);
                        let by_role = !phase.def.role.is_empty() && c.actor_roles.contains(&phase.def.role);
                        prop_assert!(assigned || by_role || admin, "{} was not eligible", a.user_id);
                    }
                    state = state.clone().evolve(e);
                }
            }
        }
        if state.approved != Some(true) {
            return Ok(());
        }
        let mut counted: BTreeSet<String> = BTreeSet::new();
        for phase in &state.phases {
            prop_assert!(phase.complete);
            let mut people = BTreeSet::new();
            for a in &phase.approvals {
                prop_assert!(!forbidden.contains(a), "{a} is a party or a party's delegate");
                let who = phase.person_of(a).to_string();
                prop_assert!(people.insert(who.clone()), "{who} counted twice in a phase");
                prop_assert!(counted.insert(who.clone()), "{who} counted in two phases");
            }
            prop_assert!(people.len() >= phase.def.quorum as usize, "quorum {} met by {:?}", phase.def.quorum, people);
            // The quorum is the step's own, never lowered.
        }
        for (phase, s) in state.phases.iter().zip(&w.steps) {
            prop_assert_eq!(phase.def.quorum, s.quorum);
        }
    }
}
