//! Who may ask for what, and for how long: the rules a new access request
//! meets before any approver sees it. Pure functions over what the handler
//! loads (the beneficiary, the app, the entitlement, the pair), so each rule
//! is tested here, given/when/then, and the handler only loads and asks.
//!
//! - [`may_request_for`]: asking for someone else takes an admin or one of
//!   their managers;
//! - [`check_dates`]: the dates a request names make sense now;
//! - [`check_pair`]: one user × item may be requested (exists, not deleted,
//!   requestable, justified when its risk asks for it, and the pair itself
//!   not refusing: [`crate::access::AccessPair::refusal`]);
//! - [`GrantWindow`]: how an entitlement's maximum duration (`durationGrant`)
//!   caps a grant, in the three places it matters: the request's end when it
//!   is made, the latest end a modification may shorten from, and the
//!   grant's `deprovisionAt` when it is issued.

use crate::access::{AccessPair, PairRefusal};
use crate::app::App;
use crate::entitlement::Entitlement;
use crate::user::User;
use crate::{Context, DomainError};

/// Whether `actor` may request access for `beneficiary`: themselves, or
/// anyone if an admin, or someone they manage.
pub fn may_request_for(actor: &Context, beneficiary: &User) -> Result<(), DomainError> {
    let admin = actor.actor_roles.iter().any(|r| r == "admin");
    if beneficiary.id == actor.actor_id
        || admin
        || beneficiary.manager_ids.contains(&actor.actor_id)
    {
        return Ok(());
    }
    Err(DomainError::Forbidden(format!(
        "only an admin or a manager of user {} requests access for them",
        beneficiary.id
    )))
}

/// A request's dates, as micros since the epoch (0: not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestDates {
    pub start: i64,
    pub end: i64,
    pub expiry: i64,
}

/// The dates must make sense at `now`: an end after the start (and in the
/// future), an expiry in the future.
pub fn check_dates(dates: RequestDates, now: i64) -> Result<(), DomainError> {
    if dates.end > 0 && dates.end <= dates.start.max(now) {
        return Err(DomainError::unsatisfiable(
            "endDate",
            "endDate must be in the future and after startDate",
        ));
    }
    if dates.expiry > 0 && dates.expiry <= now {
        return Err(DomainError::unsatisfiable(
            "expiryDate",
            "expiryDate must be in the future",
        ));
    }
    Ok(())
}

/// An entitlement's maximum grant duration applied to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantWindow {
    /// The requested start (0: at once).
    pub start: i64,
    /// `durationGrant` in seconds (0: no maximum).
    pub max_seconds: i64,
}

impl GrantWindow {
    pub fn of(entitlement: &Entitlement, start: i64) -> Self {
        GrantWindow {
            start,
            max_seconds: entitlement.fields.duration_grant_seconds,
        }
    }

    /// The latest end the maximum allows, counted from the start or `now`,
    /// whichever is later; `None` without a maximum.
    pub fn latest_end(&self, now: i64) -> Option<i64> {
        (self.max_seconds > 0).then(|| {
            self.start
                .max(now)
                .saturating_add(self.max_seconds * 1_000_000)
        })
    }

    /// The end a request records for a requested `end` (0: none): capped by
    /// the maximum when one is asked for; none stays none (the grant's end is
    /// then set when it is issued, [`GrantWindow::deprovision_at`]).
    pub fn capped_end(&self, end: i64, now: i64) -> i64 {
        match self.latest_end(now) {
            Some(latest) if end > 0 => end.min(latest),
            _ => end,
        }
    }

    /// When a grant issued at `starts` ends: the request's recorded end,
    /// else the maximum counted from `starts`, else never (0).
    pub fn deprovision_at(&self, recorded_end: i64, starts: i64) -> i64 {
        if recorded_end > 0 {
            recorded_end
        } else if self.max_seconds > 0 {
            starts.saturating_add(self.max_seconds * 1_000_000)
        } else {
            0
        }
    }
}

/// Why one user × item of a request is refused: the API's per-pair errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairError {
    /// The user, app or entitlement does not exist, or is deleted (or the
    /// user is disabled).
    NotFound(String),
    NotRequestable,
    /// Its risk level asks for a justification and there is none.
    JustificationRequired {
        risk_level: String,
    },
    /// The pair refuses: a duplicate, or nothing to grant or remove.
    Pair(PairRefusal),
}

impl PairError {
    pub fn code(&self) -> &'static str {
        match self {
            PairError::NotFound(_) => "NOT_FOUND",
            PairError::NotRequestable => "NOT_REQUESTABLE",
            PairError::JustificationRequired { .. } => "INVALID",
            PairError::Pair(r) => r.code(),
        }
    }
}

/// What a handler loaded for one user × item.
pub struct PairFacts<'a> {
    pub user: &'a User,
    /// The app and the entitlement the item stands for (an app's access
    /// entitlement for an app), if they exist.
    pub app: Option<&'a App>,
    pub entitlement: Option<&'a Entitlement>,
    pub pair: &'a AccessPair,
    /// The item as the request named it (`app` or `entitlement`, and its
    /// id), for messages.
    pub item_kind: &'a str,
    pub item_id: &'a str,
}

/// What the request asks of every pair.
pub struct PairAsk<'a> {
    pub remove: bool,
    pub justification: &'a str,
    /// Risk levels whose entitlements need a justification.
    pub justification_risk_levels: &'a [String],
}

/// Whether one user × item may be requested as `ask` asks.
pub fn check_pair(facts: &PairFacts<'_>, ask: &PairAsk<'_>) -> Result<(), PairError> {
    let user = facts.user;
    if !user.exists() || !user.enabled {
        return Err(PairError::NotFound(format!("user {} not found", user.id)));
    }
    let (Some(app), Some(entitlement)) = (facts.app, facts.entitlement) else {
        return Err(PairError::NotFound(format!(
            "{} {} not found",
            facts.item_kind, facts.item_id
        )));
    };
    if app.deleted || entitlement.deleted {
        return Err(PairError::NotFound(format!("{} is deleted", facts.item_id)));
    }
    let f = &entitlement.fields;
    let requestable = f.requestable && app.active;
    if !ask.remove && !requestable {
        return Err(PairError::NotRequestable);
    }
    if !ask.remove
        && ask.justification.trim().is_empty()
        && ask
            .justification_risk_levels
            .contains(&f.risk_level_value_id)
    {
        return Err(PairError::JustificationRequired {
            risk_level: f.risk_level_value_id.clone(),
        });
    }
    match facts.pair.refusal(ask.remove) {
        Some(refusal) => Err(PairError::Pair(refusal)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_schemas::v1;

    const HOUR: i64 = 3_600_000_000;

    fn ctx(actor: &str, roles: &[&str]) -> Context {
        Context {
            actor_id: actor.into(),
            actor_roles: roles.iter().map(|r| r.to_string()).collect(),
            now_unix_micros: 0,
        }
    }

    fn user(id: &str, managers: &[&str]) -> User {
        User {
            id: id.into(),
            username: id.into(),
            manager_ids: managers.iter().map(|m| m.to_string()).collect(),
            enabled: true,
            ..Default::default()
        }
    }

    fn app() -> App {
        App {
            fields: v1::AppCreated {
                app_id: "a1".into(),
                ..Default::default()
            },
            active: true,
            ..Default::default()
        }
    }

    fn entitlement(requestable: bool, risk: &str, max_seconds: i64) -> Entitlement {
        Entitlement {
            fields: v1::AppEntitlementCreated {
                entitlement_id: "e1".into(),
                app_id: "a1".into(),
                requestable,
                risk_level_value_id: risk.into(),
                duration_grant_seconds: max_seconds,
                ..Default::default()
            },
            deleted: false,
        }
    }

    fn ask(remove: bool, justification: &str) -> PairAsk<'static> {
        static HIGH: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        PairAsk {
            remove,
            justification: Box::leak(justification.to_string().into_boxed_str()),
            justification_risk_levels: HIGH.get_or_init(|| vec!["high".to_string()]),
        }
    }

    #[test]
    fn only_the_beneficiary_an_admin_or_a_manager_asks_for_someone() {
        let ben = user("ben", &["mia"]);
        assert!(may_request_for(&ctx("ben", &[]), &ben).is_ok());
        assert!(may_request_for(&ctx("mia", &[]), &ben).is_ok());
        assert!(may_request_for(&ctx("root", &["admin"]), &ben).is_ok());
        // An auditor, a stranger, or the beneficiary's own report: no.
        for (actor, roles) in [("eve", vec!["auditor"]), ("sam", vec![])] {
            assert!(matches!(
                may_request_for(&ctx(actor, &roles), &ben),
                Err(DomainError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn dates_must_lie_ahead_and_in_order() {
        let now = 10 * HOUR;
        let ok = RequestDates {
            start: 11 * HOUR,
            end: 12 * HOUR,
            expiry: 11 * HOUR,
        };
        assert!(check_dates(ok, now).is_ok());
        assert!(check_dates(RequestDates::default(), now).is_ok());
        for bad in [
            RequestDates { end: now, ..ok },
            RequestDates {
                end: 11 * HOUR,
                ..ok
            },
            RequestDates {
                start: 0,
                end: 9 * HOUR,
                expiry: 0,
            },
        ] {
            assert!(matches!(
                check_dates(bad, now),
                Err(DomainError::Unsatisfiable { ref field, .. }) if field == "endDate"
            ));
        }
        assert!(matches!(
            check_dates(RequestDates { expiry: now, ..ok }, now),
            Err(DomainError::Unsatisfiable { ref field, .. }) if field == "expiryDate"
        ));
    }

    #[test]
    fn the_maximum_duration_caps_the_end_from_the_later_of_start_and_now() {
        let now = 10 * HOUR;
        let window = GrantWindow {
            start: 0,
            max_seconds: 3600,
        };
        // Given a one-hour maximum, when asked for three hours, then one.
        assert_eq!(window.capped_end(13 * HOUR, now), 11 * HOUR);
        // A shorter end stands; no end stays none.
        assert_eq!(window.capped_end(10 * HOUR + 5, now), 10 * HOUR + 5);
        assert_eq!(window.capped_end(0, now), 0);
        // Counted from a future start.
        let later = GrantWindow {
            start: 20 * HOUR,
            ..window
        };
        assert_eq!(later.capped_end(30 * HOUR, now), 21 * HOUR);
        assert_eq!(later.latest_end(now), Some(21 * HOUR));
        // Without a maximum nothing is capped.
        let open = GrantWindow {
            start: 0,
            max_seconds: 0,
        };
        assert_eq!(open.capped_end(99 * HOUR, now), 99 * HOUR);
        assert_eq!(open.latest_end(now), None);
    }

    #[test]
    fn a_grant_ends_at_the_recorded_end_else_after_the_maximum_else_never() {
        let window = GrantWindow {
            start: 0,
            max_seconds: 3600,
        };
        assert_eq!(window.deprovision_at(5 * HOUR, 2 * HOUR), 5 * HOUR);
        assert_eq!(window.deprovision_at(0, 2 * HOUR), 3 * HOUR);
        let open = GrantWindow {
            start: 0,
            max_seconds: 0,
        };
        assert_eq!(open.deprovision_at(0, 2 * HOUR), 0);
    }

    #[test]
    fn a_pair_is_refused_for_each_reason_in_turn() {
        let (ben, app, pair) = (user("ben", &[]), app(), AccessPair::default());
        let ent = entitlement(true, "high", 0);
        let facts = |user, app, ent| PairFacts {
            user,
            app,
            entitlement: ent,
            pair: &pair,
            item_kind: "entitlement",
            item_id: "e1",
        };
        assert!(check_pair(&facts(&ben, Some(&app), Some(&ent)), &ask(false, "need it")).is_ok());

        let disabled = User {
            enabled: false,
            ..user("ben", &[])
        };
        let nobody = User::default();
        for u in [&disabled, &nobody] {
            assert_eq!(
                check_pair(&facts(u, Some(&app), Some(&ent)), &ask(false, "x"))
                    .map_err(|e| e.code()),
                Err("NOT_FOUND")
            );
        }
        assert_eq!(
            check_pair(&facts(&ben, Some(&app), None), &ask(false, "x")).map_err(|e| e.code()),
            Err("NOT_FOUND")
        );
        let deleted = Entitlement {
            deleted: true,
            ..ent.clone()
        };
        assert_eq!(
            check_pair(&facts(&ben, Some(&app), Some(&deleted)), &ask(false, "x"))
                .map_err(|e| e.code()),
            Err("NOT_FOUND")
        );
        // Not requestable, or its app inactive: refused for a grant.
        let closed = entitlement(false, "low", 0);
        let inactive = App {
            active: false,
            ..app.clone()
        };
        for (a, e) in [(&app, &closed), (&inactive, &ent)] {
            assert_eq!(
                check_pair(&facts(&ben, Some(a), Some(e)), &ask(false, "x")).map_err(|e| e.code()),
                Err("NOT_REQUESTABLE")
            );
        }
        // High risk wants a justification; blank is none.
        assert_eq!(
            check_pair(&facts(&ben, Some(&app), Some(&ent)), &ask(false, "  ")),
            Err(PairError::JustificationRequired {
                risk_level: "high".into()
            })
        );
        let low = entitlement(true, "low", 0);
        assert!(check_pair(&facts(&ben, Some(&app), Some(&low)), &ask(false, "")).is_ok());
        // Removing what the user does not hold: the pair refuses.
        assert_eq!(
            check_pair(&facts(&ben, Some(&app), Some(&ent)), &ask(true, "")),
            Err(PairError::Pair(PairRefusal::NotGranted))
        );
    }
}
