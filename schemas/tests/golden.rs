//! Schema evolution: the bytes of the first version of every event are kept in
//! `tests/fixtures/` and must keep decoding to the same event forever.
//!
//! A new event type needs a sample here and its fixture: run once with
//! `IGA_BLESS_FIXTURES=1` to write missing fixtures (existing ones are never
//! overwritten), and commit them.

use iga_schemas::v1::*;
use iga_schemas::DomainEvent;
use std::path::PathBuf;

fn samples() -> Vec<DomainEvent> {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        UserCreated {
            user_id: "0190f1c2-0000-7000-8000-000000000001".into(),
            username: "ada@example.com".into(),
            display_name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            manager_ids: ids(&["m1"]),
            delegated_user_id: "d1".into(),
            roles: ids(&["auditor"]),
        }
        .into(),
        UserUpdated {
            user_id: "u1".into(),
            display_name: Some("Ada".into()),
            email: None,
            manager_ids: Some(StringList {
                values: ids(&["m2"]),
            }),
            delegated_user_id: Some(String::new()),
            roles: None,
            status: Some("DISABLED".into()),
        }
        .into(),
        ApiTokenIssued {
            user_id: "u1".into(),
            token_id: "t1".into(),
            token_sha256_hex: "ab".repeat(32),
            ..Default::default()
        }
        .into(),
        ApiTokenRevoked {
            user_id: "u1".into(),
            token_id: "t1".into(),
            ..Default::default()
        }
        .into(),
        AdminRosterChanged {
            admin_ids: ids(&["admin", "u1"]),
        }
        .into(),
        WebhookRegistered {
            webhook_id: "w1".into(),
            url: "https://hooks.example.com/iga".into(),
            description: "provisioning bridge".into(),
            event_types: ids(&["iga.v1.GrantIssued", "*"]),
            secret_sealed: vec![1, 2, 3, 4],
        }
        .into(),
        WebhookUpdated {
            webhook_id: "w1".into(),
            url: Some("https://hooks.example.com/v2".into()),
            description: None,
            event_types: Some(StringList {
                values: ids(&["*"]),
            }),
        }
        .into(),
        WebhookDeleted {
            webhook_id: "w1".into(),
        }
        .into(),
        DeliveryRequested {
            delivery_id: "d1".into(),
            webhook_id: "w1".into(),
            kind: "provisioning".into(),
            subject_id: "t1".into(),
            subject_position: 0,
        }
        .into(),
        DeliveryAttempted {
            delivery_id: "d1".into(),
            attempt: 2,
            status: 503,
            error: "the receiver answered 503".into(),
            next_attempt_at_micros: 1_700_000_010_000_000,
            attempted_at_micros: 1_700_000_000_000_000,
        }
        .into(),
        DeliverySucceeded {
            delivery_id: "d1".into(),
            status: 202,
            accepted: true,
        }
        .into(),
        DeliveryFailed {
            delivery_id: "d1".into(),
            reason: "the receiver answered 400".into(),
        }
        .into(),
        DeliveryRetried {
            delivery_id: "d1".into(),
        }
        .into(),
        ProvisioningTaskOpened {
            task_id: "t1".into(),
            action: "provision".into(),
            mode: "manual".into(),
            grant_id: "g1".into(),
            request_id: "r1".into(),
            user_id: "u1".into(),
            app_id: "a1".into(),
            entitlement_id: "e1".into(),
            assignee_ids: ids(&["o1"]),
            webhook_id: String::new(),
        }
        .into(),
        ProvisioningTaskCompleted {
            task_id: "t1".into(),
            outcome: "done".into(),
            message: "account created".into(),
            completed_by: "o1".into(),
            grant_id: String::new(),
            request_id: String::new(),
            action: String::new(),
        }
        .into(),
        ProvisioningTaskRetried {
            task_id: "t1".into(),
        }
        .into(),
        ReviewCreated {
            review_id: "rv1".into(),
            display_name: "Q4 payroll access".into(),
            description: "SOX quarterly".into(),
            scope: Some(ReviewScope {
                app_ids: ids(&["a1"]),
                entitlement_ids: ids(&["e1"]),
                risk_level_value_ids: ids(&["high"]),
                user_ids: ids(&["u1"]),
            }),
            reviewers: Some(ReviewerRule {
                r#type: "USERS".into(),
                user_ids: ids(&["o1"]),
            }),
            fallback_reviewer_ids: ids(&["cfo"]),
            due_at_micros: 1_800_000_000_000_000,
            on_due: "revoke".into(),
            require_justification_certify: false,
            require_justification_revoke: true,
        }
        .into(),
        ReviewLaunched {
            review_id: "rv1".into(),
            as_of_micros: 1_790_000_000_000_000,
        }
        .into(),
        ReviewItemsListed {
            review_id: "rv1".into(),
            item_count: 3,
        }
        .into(),
        ReviewItemCommented {
            item_id: "i1".into(),
            comment: "needed for payroll runs".into(),
            author_id: "u1".into(),
        }
        .into(),
        ReviewClosed {
            review_id: "rv1".into(),
            reason: "due".into(),
        }
        .into(),
        AuditCheckpointSigned {
            tree_size: 42,
            root_hash: vec![7; 32],
            signed_at_micros: 1_790_000_000_000_000,
            origin: "iga".into(),
            public_key: vec![9; 32],
            key_id: "0a0b0c0d".into(),
            signature: vec![5; 64],
        }
        .into(),
        AuditCheckpointRequested {
            reason: "quarterly audit".into(),
        }
        .into(),
        ReviewItemOpened {
            item_id: "i1".into(),
            review_id: "rv1".into(),
            grant_id: "g1".into(),
            user_id: "u1".into(),
            app_id: "a1".into(),
            entitlement_id: "e1".into(),
            reviewer_ids: ids(&["o1"]),
            fallback: false,
        }
        .into(),
        ReviewItemDecided {
            item_id: "i1".into(),
            decision: "revoke".into(),
            justification: "left the team".into(),
            decided_by: "d1".into(),
            on_behalf_of: "o1".into(),
        }
        .into(),
        ReviewItemReassigned {
            item_id: "i1".into(),
            reviewer_ids: ids(&["o2"]),
            reassigned_by: "o1".into(),
        }
        .into(),
        ApiTokenUsed {
            user_id: "u1".into(),
            token_id: "t1".into(),
            used_at_micros: 1_700_000_000_000_000,
        }
        .into(),
        UsernameClaimed {
            username: "ada@example.com".into(),
            user_id: "u1".into(),
        }
        .into(),
        IdempotencyKeyUsed {
            request_sha256_hex: "cd".repeat(32),
        }
        .into(),
        app_created().into(),
        AppUpdated {
            app_id: "a1".into(),
            display_name: Some("GitHub Enterprise".into()),
            monthly_cost_usd: Some(0),
            configuration_json: Some("{}".into()),
            ..Default::default()
        }
        .into(),
        AppActivated {
            app_id: "a1".into(),
        }
        .into(),
        AppDeactivated {
            app_id: "a1".into(),
        }
        .into(),
        AppDeleted {
            app_id: "a1".into(),
        }
        .into(),
        AppRestored {
            app_id: "a1".into(),
            restored_version: 2,
            state: Some(app_created()),
        }
        .into(),
        AppOwnersSet {
            app_id: "a1".into(),
            owner_ids: Some(StringList {
                values: ids(&["u1", "u2"]),
            }),
        }
        .into(),
        AppResourceTypeCreated {
            app_id: "a1".into(),
            resource_type_id: "rt1".into(),
            display_name: "Organization".into(),
        }
        .into(),
        AppResourceCreated {
            app_id: "a1".into(),
            resource_type_id: "rt1".into(),
            resource_id: "r1".into(),
            display_name: "acme".into(),
            description: "The acme org".into(),
            parent_app_resource_id: "r0".into(),
        }
        .into(),
        entitlement_created().into(),
        AppEntitlementUpdated {
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
            display_name: Some("Maintainer".into()),
            compliance_framework_value_ids: Some(StringList {
                values: ids(&["sox"]),
            }),
            duration_grant_seconds: Some(0),
            requestable: Some(false),
            ..Default::default()
        }
        .into(),
        AppEntitlementDeleted {
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
        }
        .into(),
        AppEntitlementOwnersSet {
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
            owner_ids: Some(StringList {
                values: ids(&["u3"]),
            }),
        }
        .into(),
        EntitlementAliasClaimed {
            app_id: "a1".into(),
            alias: "admin".into(),
            entitlement_id: "e2".into(),
        }
        .into(),
        EntitlementAliasReleased {
            app_id: "a1".into(),
            alias: "admin".into(),
            entitlement_id: "e2".into(),
        }
        .into(),
        PolicyCreated {
            policy_id: "p1".into(),
            definition: Some(policy_definition()),
        }
        .into(),
        PolicyUpdated {
            policy_id: "p1".into(),
            definition: Some(PolicyDefinition {
                auto_approve: true,
                steps: vec![],
                ..policy_definition()
            }),
        }
        .into(),
        PolicyDeleted {
            policy_id: "p1".into(),
        }
        .into(),
        AccessRequestCreated {
            request_id: "r1".into(),
            requester_id: "u1".into(),
            user_id: "u2".into(),
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
            catalog_type: "entitlement".into(),
            request_type: "entitlementGrant".into(),
            priority: "high".into(),
            justification: "on call".into(),
            start_date_micros: 1,
            end_date_micros: 2,
            expiry_date_micros: 3,
            external_request_id: "INC-1".into(),
            policy_id: "p1".into(),
            policy_version: 2,
            allow_self_approval: false,
            phases: vec![RequestPhase {
                name: "Owners".into(),
                quorum: 2,
                require_justification: true,
                approver_ids: ids(&["u3", "u4"]),
                role: "admin".into(),
                ..Default::default()
            }],
            requester_username: "ada".into(),
            requester_display_name: "Ada".into(),
            user_username: "bob".into(),
            user_display_name: "Bob".into(),
            catalog_display_name: "Admin".into(),
            app_display_name: "GitHub".into(),
            ..Default::default()
        }
        .into(),
        RequestApprovalRecorded {
            request_id: "r1".into(),
            phase: "Owners".into(),
            user_id: "u3".into(),
            justification: "ok".into(),
            comment: "fine".into(),
            ..Default::default()
        }
        .into(),
        RequestPhaseCompleted {
            request_id: "r1".into(),
            phase: "Owners".into(),
            ..Default::default()
        }
        .into(),
        RequestApproved {
            request_id: "r1".into(),
        }
        .into(),
        RequestRejected {
            request_id: "r1".into(),
            phase: "Owners".into(),
            user_id: "u3".into(),
            justification: "no".into(),
            comment: "not needed".into(),
            ..Default::default()
        }
        .into(),
        RequestCommented {
            request_id: "r1".into(),
            phase: "Owners".into(),
            user_id: "u2".into(),
            comment: "please".into(),
            ..Default::default()
        }
        .into(),
        RequestReassigned {
            request_id: "r1".into(),
            phase: "Owners".into(),
            from_user_id: "u3".into(),
            to_user_ids: ids(&["u5"]),
            comment: "on leave".into(),
            ..Default::default()
        }
        .into(),
        RequestModified {
            request_id: "r1".into(),
            user_id: "u3".into(),
            end_date_micros: 5,
        }
        .into(),
        RequestCancelled {
            request_id: "r1".into(),
            user_id: "u1".into(),
            comment: "never mind".into(),
            outcome: "cancelled".into(),
        }
        .into(),
        RequestFulfilled {
            request_id: "r1".into(),
            grant_id: "g1".into(),
            outcome: "provisioned".into(),
            message: String::new(),
        }
        .into(),
        AccessRequestOpened {
            user_id: "u2".into(),
            entitlement_id: "e2".into(),
            request_id: "r1".into(),
            kind: "grant".into(),
        }
        .into(),
        AccessRequestClosed {
            user_id: "u2".into(),
            entitlement_id: "e2".into(),
            request_id: "r1".into(),
        }
        .into(),
        GrantIssued {
            grant_id: "g1".into(),
            user_id: "u2".into(),
            app_id: "a1".into(),
            entitlement_id: "e2".into(),
            grant_type: "request".into(),
            request_id: "r1".into(),
            starts_at_micros: 10,
            deprovision_at_micros: 20,
            provisioning: None,
        }
        .into(),
        GrantDurationChanged {
            grant_id: "g1".into(),
            user_id: "u2".into(),
            entitlement_id: "e2".into(),
            deprovision_at_micros: 30,
        }
        .into(),
        GrantEnded {
            grant_id: "g1".into(),
            user_id: "u2".into(),
            entitlement_id: "e2".into(),
            ended_at_micros: 30,
            reason: "expired".into(),
            request_id: String::new(),
            comment: String::new(),
            provisioning: None,
            app_id: String::new(),
        }
        .into(),
    ]
}

fn entitlement_created() -> AppEntitlementCreated {
    AppEntitlementCreated {
        app_id: "a1".into(),
        entitlement_id: "e2".into(),
        display_name: "Admin".into(),
        description: "Full control".into(),
        alias: "admin".into(),
        slug: "admin".into(),
        purpose: "APP_ENTITLEMENT_PURPOSE_VALUE_PERMISSION".into(),
        risk_level_value_id: "high".into(),
        compliance_framework_value_ids: vec!["sox".into(), "soc2".into()],
        duration_grant_seconds: 86_400,
        requestable: true,
        emergency_grant_enabled: true,
        grant_policy_id: "p1".into(),
        revoke_policy_id: "p2".into(),
        app_resource_type_id: "rt1".into(),
        app_resource_id: "r1".into(),
        owner_ids: vec!["u2".into()],
        system_builtin: false,
        provisioning: None,
    }
}

fn policy_definition() -> PolicyDefinition {
    PolicyDefinition {
        display_name: "Manager then owners".into(),
        description: "Two steps".into(),
        allow_self_approval: false,
        auto_approve: false,
        steps: vec![
            PolicyStep {
                name: "Manager".into(),
                approvers: Some(PolicyApprovers {
                    r#type: "MANAGER".into(),
                    ..Default::default()
                }),
                quorum: 1,
                require_justification: true,
            },
            PolicyStep {
                name: "Security".into(),
                approvers: Some(PolicyApprovers {
                    r#type: "USERS".into(),
                    user_ids: vec!["u7".into(), "u8".into()],
                    role: String::new(),
                }),
                quorum: 2,
                require_justification: false,
            },
        ],
    }
}

fn app_created() -> AppCreated {
    AppCreated {
        app_id: "a1".into(),
        display_name: "GitHub".into(),
        description: "Source code".into(),
        icon_url: "https://example.com/gh.png".into(),
        monthly_cost_usd: 21,
        instructions: "Ask in #it".into(),
        identity_matching: "email".into(),
        sign_on_mode: "SAML_2_0".into(),
        configuration_json: r#"{"org":"acme"}"#.into(),
        grant_policy_id: "p1".into(),
        revoke_policy_id: "p2".into(),
        owner_ids: vec!["u1".into()],
        access_entitlement_id: "e1".into(),
        provisioning: None,
    }
}

fn fixture(event_type: &str, version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{event_type}.v{version}.bin"))
}

#[test]
fn first_versions_of_every_event_still_decode() {
    let bless = std::env::var("IGA_BLESS_FIXTURES").is_ok();
    let samples = samples();
    for (event_type, _) in DomainEvent::ALL_TYPES {
        assert!(
            samples.iter().any(|s| s.event_type() == *event_type),
            "{event_type} has no sample in tests/golden.rs"
        );
    }
    for sample in samples {
        let path = fixture(sample.event_type(), 1);
        if bless && !path.exists() {
            std::fs::write(&path, sample.encode_payload()).unwrap();
        }
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|_| panic!("missing fixture {}; see this file's docs", path.display()));
        let decoded = DomainEvent::decode(sample.event_type(), 1, &bytes).unwrap();
        if sample.schema_version() == 1 {
            assert_eq!(
                decoded,
                sample,
                "{} v1 bytes decode to the same event",
                sample.event_type()
            );
        }
    }
}

#[test]
fn unknown_and_future_events_are_clear_errors() {
    let err = DomainEvent::decode("iga.v1.Nope", 1, &[]).unwrap_err();
    assert!(err.to_string().contains("unknown event type"));
    let err = DomainEvent::decode("iga.v1.UserCreated", 99, &[]).unwrap_err();
    assert!(err.to_string().contains("newer than this build"));
    let err = DomainEvent::decode("iga.v1.UserCreated", 1, &[0xff, 0xff]).unwrap_err();
    assert!(err.to_string().contains("malformed"));
}

#[test]
fn json_view_is_camel_case() {
    let json = samples()[0].to_json();
    assert_eq!(json["displayName"], "Ada Lovelace");
    assert_eq!(json["managerIds"][0], "m1");
}

#[test]
fn a_webhook_secret_leaves_neither_sealed_nor_otherwise() {
    let registered: DomainEvent = WebhookRegistered {
        webhook_id: "w1".into(),
        url: "https://hooks.example.com".into(),
        secret_sealed: vec![7; 48],
        ..Default::default()
    }
    .into();
    assert!(registered.has_secrets());
    match registered.without_secrets().as_ref() {
        DomainEvent::WebhookRegistered(e) => {
            assert!(e.secret_sealed.is_empty());
            assert_eq!(e.url, "https://hooks.example.com");
        }
        other => panic!("{other:?}"),
    }
    let json = registered.to_json();
    assert!(
        json["secretSealed"].as_array().is_none_or(|a| a.is_empty()),
        "{json}"
    );
}

#[test]
fn no_secret_leaves_in_json_or_in_an_envelope() {
    let issued: DomainEvent = ApiTokenIssued {
        user_id: "u1".into(),
        token_id: "t1".into(),
        token_sha256_hex: "ab".repeat(32),
        description: "ci".into(),
        ..Default::default()
    }
    .into();
    let json = issued.to_json().to_string();
    assert!(!json.contains(&"ab".repeat(32)), "{json}");
    assert!(json.contains("\"tokenId\":\"t1\""), "{json}");
    let envelope = iga_schemas::EventEnvelope {
        event_type: issued.event_type().into(),
        schema_version: 1,
        payload: issued.encode_payload(),
        ..Default::default()
    };
    let out = envelope.without_secrets();
    match out.decode_event().unwrap() {
        DomainEvent::ApiTokenIssued(e) => {
            assert!(e.token_sha256_hex.is_empty());
            assert_eq!(e.description, "ci");
        }
        other => panic!("{other:?}"),
    }
    // Other events leave as they are, unchanged and uncopied.
    let other = iga_schemas::EventEnvelope {
        event_type: samples()[0].event_type().into(),
        schema_version: 1,
        payload: samples()[0].encode_payload(),
        ..Default::default()
    };
    assert!(matches!(
        other.without_secrets(),
        std::borrow::Cow::Borrowed(_)
    ));
}
