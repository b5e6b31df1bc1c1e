use super::*;
use crate::testing::{ctx, given};
use proptest::prelude::*;

fn phase(name: &str, quorum: u32, approvers: &[&str]) -> v1::RequestPhase {
    v1::RequestPhase {
        name: name.into(),
        quorum,
        require_justification: false,
        approver_ids: approvers.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn created(phases: Vec<v1::RequestPhase>) -> v1::AccessRequestCreated {
    v1::AccessRequestCreated {
        request_id: "r1".into(),
        requester_id: "req".into(),
        user_id: "ben".into(),
        app_id: "a1".into(),
        entitlement_id: "e1".into(),
        catalog_type: "entitlement".into(),
        request_type: "entitlementGrant".into(),
        priority: "low".into(),
        phases,
        ..Default::default()
    }
}

fn two_phases() -> DomainEvent {
    created(vec![
        phase("Manager", 1, &["m1"]),
        phase("Owners", 2, &["o1", "o2", "o3"]),
    ])
    .into()
}

fn approve() -> RequestCommand {
    RequestCommand::Approve {
        phase: None,
        justification: String::new(),
        comment: String::new(),
    }
}

/// The position the test requests give each phase name.
fn index_of(phase: &str) -> u32 {
    match phase {
        "Owners" | "Second" => 2,
        _ => 1,
    }
}

fn recorded(phase: &str, user: &str) -> DomainEvent {
    v1::RequestApprovalRecorded {
        request_id: "r1".into(),
        phase: phase.into(),
        user_id: user.into(),
        phase_index: index_of(phase),
        ..Default::default()
    }
    .into()
}

fn completed(phase: &str) -> DomainEvent {
    v1::RequestPhaseCompleted {
        request_id: "r1".into(),
        phase: phase.into(),
        phase_index: index_of(phase),
    }
    .into()
}

fn approved() -> DomainEvent {
    v1::RequestApproved {
        request_id: "r1".into(),
    }
    .into()
}

#[test]
fn phases_complete_at_quorum_and_the_last_one_approves() {
    given::<AccessRequest>(&[two_phases()])
        .when(&approve(), &ctx("m1", &[]))
        .then(&[recorded("Manager", "m1"), completed("Manager")]);
    let after_manager = [
        two_phases(),
        recorded("Manager", "m1"),
        completed("Manager"),
    ];
    given::<AccessRequest>(&after_manager)
        .when(&approve(), &ctx("o1", &[]))
        .then(&[recorded("Owners", "o1")]);
    let mut one_owner = after_manager.to_vec();
    one_owner.push(recorded("Owners", "o1"));
    given::<AccessRequest>(&one_owner)
        .when(&approve(), &ctx("o2", &[]))
        .then(&[recorded("Owners", "o2"), completed("Owners"), approved()]);
    // The same owner twice does not make a quorum.
    given::<AccessRequest>(&one_owner)
        .when(&approve(), &ctx("o1", &[]))
        .then_error(DomainError::InvalidTransition(
            "o1 already approved this request (phase \"Owners\"); one person counts once".into(),
        ));
}

#[test]
fn only_actors_of_the_current_phase_or_admins_act_and_never_the_parties() {
    given::<AccessRequest>(&[two_phases()])
        .when(&approve(), &ctx("o1", &[]))
        .then_error(DomainError::Forbidden(
            "only an actor of phase \"Manager\" or an admin acts on it".into(),
        ));
    given::<AccessRequest>(&[two_phases()])
        .when(&approve(), &ctx("ben", &["admin"]))
        .then_error(DomainError::Forbidden(
            "the requester, the beneficiary and their delegates cannot act on this request".into(),
        ));
    given::<AccessRequest>(&[two_phases()])
        .when(&approve(), &ctx("boss", &["admin"]))
        .then(&[recorded("Manager", "boss"), completed("Manager")]);
    given::<AccessRequest>(&[two_phases()])
        .when(
            &RequestCommand::Approve {
                phase: Some("Owners".into()),
                justification: String::new(),
                comment: String::new(),
            },
            &ctx("m1", &[]),
        )
        .then_error(DomainError::InvalidTransition(
            "phase \"Owners\" is not the current phase (\"Manager\")".into(),
        ));
    // Role phases: anyone holding the role.
    let role_phase = v1::RequestPhase {
        role: "auditor".into(),
        ..phase("Audit", 1, &[])
    };
    given::<AccessRequest>(&[created(vec![role_phase]).into()])
        .when(&approve(), &ctx("aud", &["auditor"]))
        .then(&[recorded("Audit", "aud"), completed("Audit"), approved()]);
}

#[test]
fn justification_when_the_step_requires_it() {
    let strict = v1::RequestPhase {
        require_justification: true,
        ..phase("Manager", 1, &["m1"])
    };
    given::<AccessRequest>(&[created(vec![strict]).into()])
        .when(&approve(), &ctx("m1", &[]))
        .then_error(DomainError::invalid(
            "justification",
            "required by this phase",
        ));
}

#[test]
fn reject_ends_it_and_nothing_else_happens() {
    let rejected: DomainEvent = v1::RequestRejected {
        request_id: "r1".into(),
        phase: "Manager".into(),
        user_id: "m1".into(),
        phase_index: 1,
        ..Default::default()
    }
    .into();
    let state = given::<AccessRequest>(&[two_phases()])
        .when(
            &RequestCommand::Reject {
                phase: None,
                justification: String::new(),
                comment: String::new(),
            },
            &ctx("m1", &[]),
        )
        .then(std::slice::from_ref(&rejected));
    assert_eq!(state.outcome.as_deref(), Some("denied"));
    given::<AccessRequest>(&[two_phases(), rejected.clone()])
        .when(&approve(), &ctx("m1", &[]))
        .then_error(DomainError::InvalidTransition(
            "request r1 is no longer in progress".into(),
        ));
    given::<AccessRequest>(&[two_phases(), rejected])
        .when(
            &RequestCommand::Cancel {
                comment: String::new(),
            },
            &ctx("req", &[]),
        )
        .then_error(DomainError::InvalidTransition(
            "request r1 is no longer in progress".into(),
        ));
}

#[test]
fn reassign_moves_the_task() {
    let moved: DomainEvent = v1::RequestReassigned {
        request_id: "r1".into(),
        phase: "Manager".into(),
        from_user_id: "m1".into(),
        to_user_ids: vec!["m2".into()],
        comment: String::new(),
        phase_index: 1,
    }
    .into();
    given::<AccessRequest>(&[two_phases()])
        .when(
            &RequestCommand::Reassign {
                phase: None,
                to_user_ids: vec!["m2".into()],
                comment: String::new(),
            },
            &ctx("m1", &[]),
        )
        .then(std::slice::from_ref(&moved));
    given::<AccessRequest>(&[two_phases(), moved.clone()])
        .when(&approve(), &ctx("m1", &[]))
        .then_error(DomainError::Forbidden(
            "only an actor of phase \"Manager\" or an admin acts on it".into(),
        ));
    given::<AccessRequest>(&[two_phases(), moved])
        .when(&approve(), &ctx("m2", &[]))
        .then(&[recorded("Manager", "m2"), completed("Manager")]);
}

#[test]
fn modify_only_shortens() {
    let mut c = created(vec![phase("Manager", 1, &["m1"])]);
    c.end_date_micros = 2_000_000_000_000_000;
    let now = ctx("m1", &[]).now_unix_micros;
    let modify = |end: i64| RequestCommand::Modify {
        end_date_micros: end,
        max_end_micros: 0,
    };
    given::<AccessRequest>(&[c.clone().into()])
        .when(&modify(now + 1_000_000), &ctx("m1", &[]))
        .then(&[v1::RequestModified {
            request_id: "r1".into(),
            user_id: "m1".into(),
            end_date_micros: now + 1_000_000,
        }
        .into()]);
    given::<AccessRequest>(&[c.into()])
        .when(&modify(2_100_000_000_000_000), &ctx("m1", &[]))
        .then_error(DomainError::invalid(
            "endDate",
            "may only shorten the grant window",
        ));
}

#[test]
fn cancel_by_the_requester_expire_by_time_fulfil_once() {
    given::<AccessRequest>(&[two_phases()])
        .when(
            &RequestCommand::Cancel {
                comment: String::new(),
            },
            &ctx("m1", &[]),
        )
        .then_error(DomainError::Forbidden(
            "only the requester or an admin cancels".into(),
        ));
    let state = given::<AccessRequest>(&[two_phases()])
        .when(&RequestCommand::Expire, &ctx("system", &[]))
        .then(&[v1::RequestCancelled {
            request_id: "r1".into(),
            user_id: "system".into(),
            comment: "the request expired".into(),
            outcome: "expired".into(),
        }
        .into()]);
    assert_eq!(state.status, Status::Cancelled);
    let fulfil = RequestCommand::Fulfil {
        grant_id: "g1".into(),
        outcome: "provisioned".into(),
        message: String::new(),
    };
    let auto = created(vec![]);
    let fulfilled: DomainEvent = v1::RequestFulfilled {
        request_id: "r1".into(),
        grant_id: "g1".into(),
        outcome: "provisioned".into(),
        message: String::new(),
    }
    .into();
    given::<AccessRequest>(&[auto.clone().into(), approved()])
        .when(&fulfil, &ctx("system", &[]))
        .then(std::slice::from_ref(&fulfilled));
    given::<AccessRequest>(&[auto.into(), approved(), fulfilled])
        .when(&fulfil, &ctx("system", &[]))
        .then(&[]);
    given::<AccessRequest>(&[two_phases()])
        .when(&fulfil, &ctx("system", &[]))
        .then(&[]);
}

#[test]
fn given_two_phases_of_one_name_when_the_first_completes_then_the_second_still_decides() {
    // A policy stored before step names had to be unique.
    let twins: DomainEvent =
        created(vec![phase("Same", 1, &["a1"]), phase("Same", 1, &["b1"])]).into();
    let first = |e: DomainEvent| match e {
        DomainEvent::RequestApprovalRecorded(mut r) => {
            r.phase = "Same".into();
            r.phase_index = 1;
            r.into()
        }
        DomainEvent::RequestPhaseCompleted(mut r) => {
            r.phase = "Same".into();
            r.phase_index = 1;
            r.into()
        }
        e => e,
    };
    given::<AccessRequest>(std::slice::from_ref(&twins))
        .when(&approve(), &ctx("a1", &[]))
        .then(&[first(recorded("Same", "a1")), first(completed("Same"))]);
    let state = given::<AccessRequest>(&[
        twins.clone(),
        first(recorded("Same", "a1")),
        first(completed("Same")),
    ])
    .state_for_test();
    assert_eq!(state.approved, None, "the second phase is still open");
    assert_eq!(state.current_phase_index(), Some(1));
    // Events written before phases had a position fold into the first
    // incomplete phase of their name.
    let legacy = |e: DomainEvent| match e {
        DomainEvent::RequestApprovalRecorded(mut r) => {
            r.phase_index = 0;
            r.into()
        }
        DomainEvent::RequestPhaseCompleted(mut r) => {
            r.phase_index = 0;
            r.into()
        }
        e => e,
    };
    let state = given::<AccessRequest>(&[
        twins,
        legacy(first(recorded("Same", "a1"))),
        legacy(first(completed("Same"))),
    ])
    .state_for_test();
    assert_eq!(state.current_phase_index(), Some(1));
    assert!(state.phases[0].complete && !state.phases[1].complete);
}

fn with_delegate() -> DomainEvent {
    let mut c = created(vec![v1::RequestPhase {
        delegates: vec![v1::ApproverDelegate {
            delegate_id: "d1".into(),
            principal_id: "o1".into(),
        }],
        ..phase("Owners", 2, &["o1", "o2", "d1"])
    }]);
    c.excluded_approver_ids = vec!["req".into(), "ben".into(), "d-req".into()];
    c.into()
}

#[test]
fn given_a_delegate_and_their_principal_when_both_approve_then_they_count_once() {
    let after_delegate = [with_delegate(), {
        let mut r = recorded("Owners", "d1");
        if let DomainEvent::RequestApprovalRecorded(r) = &mut r {
            r.phase_index = 1;
        }
        r
    }];
    given::<AccessRequest>(&after_delegate)
        .when(&approve(), &ctx("o1", &[]))
        .then_error(DomainError::InvalidTransition(
            "o1 already approved this request (phase \"Owners\"); one person counts once".into(),
        ));
}

#[test]
fn given_the_requesters_delegate_when_they_act_then_they_are_refused_even_as_admin() {
    // Not an actor: the request does not exist for them.
    given::<AccessRequest>(&[with_delegate()])
        .when(&approve(), &ctx("d-req", &[]))
        .then_error(DomainError::NotFound("request".into()));
    // An admin sees it, and still may not act on it.
    given::<AccessRequest>(&[with_delegate()])
        .when(&approve(), &ctx("d-req", &["admin"]))
        .then_error(DomainError::Forbidden(
            "the requester, the beneficiary and their delegates cannot act on this request".into(),
        ));
    // Nor can a task be handed to them.
    given::<AccessRequest>(&[with_delegate()])
        .when(
            &RequestCommand::Reassign {
                phase: None,
                to_user_ids: vec!["d-req".into()],
                comment: String::new(),
            },
            &ctx("o1", &[]),
        )
        .then_error(DomainError::invalid(
            "toUserIds",
            "the requester, the beneficiary and their delegates cannot approve this request",
        ));
}

#[test]
fn given_a_reassignment_to_too_many_users_then_it_is_refused() {
    let many: Vec<String> = (0..=MAX_REASSIGN).map(|i| format!("u{i}")).collect();
    given::<AccessRequest>(&[two_phases()])
        .when(
            &RequestCommand::Reassign {
                phase: None,
                to_user_ids: many,
                comment: String::new(),
            },
            &ctx("m1", &[]),
        )
        .then_error(DomainError::invalid(
            "toUserIds",
            format!("1 to {MAX_REASSIGN} users"),
        ));
}

#[test]
fn given_a_stranger_when_they_act_then_the_request_does_not_exist_for_them() {
    for command in [
        approve(),
        RequestCommand::Reject {
            phase: None,
            justification: String::new(),
            comment: String::new(),
        },
        RequestCommand::Comment {
            comment: "hi".into(),
        },
        RequestCommand::Cancel {
            comment: String::new(),
        },
    ] {
        given::<AccessRequest>(&[two_phases()])
            .when(&command, &ctx("stranger", &[]))
            .then_error(DomainError::NotFound("request".into()));
    }
    // An actor of a later phase sees it (and is told it is not their turn).
    given::<AccessRequest>(&[two_phases()])
        .when(&approve(), &ctx("o1", &[]))
        .then_error(DomainError::Forbidden(
            "only an actor of phase \"Manager\" or an admin acts on it".into(),
        ));
}

/// A command from someone, for the property test.
fn any_step() -> impl Strategy<Value = (u8, u8)> {
    (0u8..7, 0u8..8)
}

const PEOPLE: &[&str] = &["req", "ben", "m1", "o1", "o2", "o3", "boss", "x"];

proptest! {
    /// Random sequences of commands by random people keep the invariants.
    #[test]
    fn random_sequences_keep_the_invariants(steps in proptest::collection::vec(any_step(), 0..40)) {
        let mut state = given::<AccessRequest>(&[two_phases()]).state_for_test();
        let mut fulfilled = 0;
        let mut was_terminal = false;
        for (kind, who) in steps {
            let actor = PEOPLE[who as usize];
            let roles: &[&str] = if actor == "boss" { &["admin"] } else { &[] };
            let command = match kind {
                0 | 1 => approve(),
                2 => RequestCommand::Reject { phase: None, justification: String::new(), comment: String::new() },
                3 => RequestCommand::Cancel { comment: String::new() },
                4 => RequestCommand::Comment { comment: "c".into() },
                5 => RequestCommand::Reassign { phase: None, to_user_ids: vec!["x".into()], comment: String::new() },
                _ => RequestCommand::Fulfil { grant_id: "g".into(), outcome: "provisioned".into(), message: String::new() },
            };
            let Ok(events) = state.decide(&command, &ctx(actor, roles)) else { continue };
            for e in &events {
                if matches!(e, DomainEvent::RequestFulfilled(_)) { fulfilled += 1; }
                if was_terminal {
                    prop_assert!(matches!(e, DomainEvent::RequestCommented(_) | DomainEvent::RequestFulfilled(_)),
                        "{e:?} after the request was decided");
                }
                if let DomainEvent::RequestApprovalRecorded(a) = e {
                    prop_assert!(a.user_id != "req" && a.user_id != "ben", "self-approval");
                }
            }
            state = events.iter().fold(state, |s, e| s.evolve(e));
            was_terminal = state.status != Status::InProgress || state.approved.is_some();
        }
        // One approval per person across phases; complete phases met their quorum.
        let mut everyone: Vec<&String> = state.phases.iter().flat_map(|p| &p.approvals).collect();
        let n = everyone.len();
        everyone.sort();
        everyone.dedup();
        prop_assert_eq!(everyone.len(), n);
        for p in &state.phases {
            prop_assert_eq!(p.complete, p.approvals.len() >= p.def.quorum as usize);
        }
        prop_assert_eq!(state.approved == Some(true), state.phases.iter().all(|p| p.complete));
        prop_assert!(fulfilled <= 1);
        prop_assert!(fulfilled == 0 || state.approved == Some(true));
    }
}

#[test]
fn who_may_see_a_request_is_one_rule() {
    let see = |actor: &str, roles: &[&str]| {
        may_see(
            &ctx(actor, roles),
            "req",
            "ben",
            ["ann", "bob"],
            ["", "finance"],
        )
    };
    // Admins, auditors, the parties, the people involved, a phase's role.
    for (actor, roles) in [
        ("root", vec!["admin"]),
        ("eve", vec!["auditor"]),
        ("req", vec![]),
        ("ben", vec![]),
        ("ann", vec![]),
        ("bob", vec![]),
        ("fay", vec!["finance"]),
    ] {
        assert!(see(actor, &roles), "{actor} sees it");
    }
    // A stranger does not, nor does an empty role name match a stranger.
    assert!(!see("sam", &[]));
    assert!(!see("sam", &[""]));
}
