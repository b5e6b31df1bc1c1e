//! The audit log as OCSF (Open Cybersecurity Schema Framework, 1.3.0)
//! events, for SIEMs. Every event is one of three classes of the Identity &
//! Access Management category (3):
//!
//! | class | `class_uid` | events |
//! | --- | --- | --- |
//! | Account Change | 3001 | users and their API tokens (`UserCreated`: Create; `UserUpdated` to DISABLED: Disable, to ENABLED: Enable, else Other; token issued, revoked, used: Other) |
//! | User Access Management | 3005 | grants (`GrantIssued`: Assign Privileges; `GrantEnded`: Revoke Privileges), with the entitlement as the privilege and the app as the resource |
//! | Entity Management | 3004 | everything else (apps, entitlements, policies, requests and their decisions, reviews, webhooks, deliveries, provisioning tasks, checkpoints): Create, Update, Delete or Other, the entity being the event's aggregate |
//!
//! The event's own fields go under `unmapped` (`data`, without secrets, as
//! the audit API shows them), with its position and stream.

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde_json::{json, Value};

const CATEGORY: (u32, &str) = (3, "Identity & Access Management");
const ACCOUNT_CHANGE: (u32, &str) = (3001, "Account Change");
const USER_ACCESS: (u32, &str) = (3005, "User Access Management");
const ENTITY_MANAGEMENT: (u32, &str) = (3004, "Entity Management");

/// The OCSF class and activity an event maps to.
fn classify(event: &DomainEvent, event_type: &str) -> ((u32, &'static str), (u32, &'static str)) {
    use DomainEvent as E;
    match event {
        E::UserCreated(_) => (ACCOUNT_CHANGE, (1, "Create")),
        E::UserUpdated(u) => match u.status.as_deref() {
            Some("DISABLED") => (ACCOUNT_CHANGE, (5, "Disable")),
            Some("ENABLED") => (ACCOUNT_CHANGE, (2, "Enable")),
            _ => (ACCOUNT_CHANGE, (99, "Other")),
        },
        E::ApiTokenIssued(_) | E::ApiTokenRevoked(_) | E::ApiTokenUsed(_) => {
            (ACCOUNT_CHANGE, (99, "Other"))
        }
        E::GrantIssued(_) => (USER_ACCESS, (1, "Assign Privileges")),
        E::GrantEnded(_) => (USER_ACCESS, (2, "Revoke Privileges")),
        _ => {
            let name = event_type.rsplit('.').next().unwrap_or(event_type);
            let activity = if name.ends_with("Created")
                || name.ends_with("Registered")
                || name.ends_with("Opened")
            {
                (1, "Create")
            } else if name.ends_with("Deleted") {
                (4, "Delete")
            } else if name.ends_with("Updated")
                || name.ends_with("Set")
                || name.ends_with("Activated")
                || name.ends_with("Deactivated")
                || name.ends_with("Restored")
                || name.ends_with("Modified")
                || name.ends_with("Approved")
                || name.ends_with("Rejected")
                || name.ends_with("Cancelled")
                || name.ends_with("Decided")
                || name.ends_with("Closed")
                || name.ends_with("Launched")
            {
                (3, "Update")
            } else {
                (99, "Other")
            };
            (ENTITY_MANAGEMENT, activity)
        }
    }
}

/// One event as an OCSF event.
pub fn ocsf_event(r: &RecordedEvent) -> Value {
    let e = &r.envelope;
    let decoded = e.decode_event().ok();
    let data = decoded.as_ref().map(|d| d.to_json()).unwrap_or(Value::Null);
    let ((class_uid, class_name), (activity_id, activity_name)) = match &decoded {
        Some(d) => classify(d, &e.event_type),
        None => (ENTITY_MANAGEMENT, (99, "Other")),
    };
    let mut out = json!({
        "category_uid": CATEGORY.0,
        "category_name": CATEGORY.1,
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": format!("{class_name}: {activity_name}"),
        "time": e.occurred_at_unix_micros / 1000,
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1,
        "status": "Success",
        "message": e.event_type,
        "metadata": {
            "version": "1.3.0",
            "uid": e.event_id,
            "correlation_uid": e.correlation_id,
            "log_name": "iga audit log",
            "product": {"name": "iga", "vendor_name": "iga"},
        },
        "actor": {"user": {"uid": e.actor_id}},
        "unmapped": {
            "position": r.position,
            "stream_id": e.stream_id,
            "stream_version": e.stream_version,
            "event_type": e.event_type,
            "data": data,
        },
    });
    match &decoded {
        Some(DomainEvent::GrantIssued(g)) => {
            out["user"] = json!({"uid": g.user_id});
            out["privileges"] = json!([g.entitlement_id]);
            out["resource"] = json!({"uid": g.app_id, "type": "app"});
        }
        Some(DomainEvent::GrantEnded(g)) => {
            out["user"] = json!({"uid": g.user_id});
            out["privileges"] = json!([g.entitlement_id]);
            out["resource"] = json!({"uid": g.app_id, "type": "app"});
        }
        Some(DomainEvent::UserCreated(u)) => {
            out["user"] = json!({"uid": u.user_id, "name": u.username});
        }
        Some(DomainEvent::UserUpdated(u)) => out["user"] = json!({"uid": u.user_id}),
        _ if class_uid == ENTITY_MANAGEMENT.0 => {
            let (kind, id) = e.stream_id.split_once('-').unwrap_or((&e.stream_id, ""));
            out["entity"] = json!({"uid": id, "type": kind});
        }
        _ => {}
    }
    out
}
