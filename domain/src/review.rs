//! Access reviews (certification campaigns): the rules of a campaign
//! ([`Review`], stream `review-<id>`) and of its items ([`ReviewItem`],
//! stream `review_item-<id>`, one per grant in scope at launch).
//!
//! - a campaign is created by an admin as a draft, launched once (its items
//!   are the grants in scope held at that instant), and closed once: by an
//!   admin, or by itself at its due date;
//! - [`reviewers_for`]: who reviews one grant: the rule's people, never the
//!   grant's own user; if that leaves nobody, the fallback reviewers, else
//!   the admins;
//! - an item is decided (certify or revoke; a change of mind is a new
//!   decision, so every one is kept) by one of its reviewers, a delegate
//!   standing in for one (they count as one: there is one decision), or an
//!   admin, never by the user whose access it is; while the campaign is
//!   active; with a justification where the campaign asks for one;
//! - at closing, an undecided item becomes what the campaign's `onDue` says.

use iga_schemas::v1;

use crate::provisioning::SYSTEM;
use crate::{Aggregate, Context, DomainError, DomainEvent};

/// Who reviews, by rule.
pub const REVIEWER_TYPES: [&str; 4] = ["MANAGER", "APP_OWNERS", "ENTITLEMENT_OWNERS", "USERS"];
/// What undecided items become at closing.
pub const ON_DUE: [&str; 3] = ["nothing", "certify", "revoke"];
/// Most ids one list of a campaign names.
pub const MAX_IDS: usize = 1000;
/// Most reviewers one rule, fallback or reassignment names.
pub const MAX_REVIEWERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReviewStatus {
    #[default]
    Draft,
    Active,
    Closed,
}

impl ReviewStatus {
    pub fn name(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::Active => "active",
            ReviewStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    pub created: v1::ReviewCreated,
    pub status: ReviewStatus,
    /// The instant whose grants became items.
    pub as_of: i64,
    /// Every item is open (the launch listed the grants): until then the
    /// campaign is not closed, so no item opens after its closing.
    pub listed: bool,
    pub item_count: u64,
}

impl Review {
    pub fn exists(&self) -> bool {
        !self.created.review_id.is_empty()
    }

    /// What an item's decision needs to know of its campaign.
    pub fn facts(&self) -> ReviewFacts {
        ReviewFacts {
            active: self.status == ReviewStatus::Active,
            require_certify: self.created.require_justification_certify,
            require_revoke: self.created.require_justification_revoke,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ReviewCommand {
    Create(Box<v1::ReviewCreated>),
    /// Its items are the grants held at `as_of` (listed by the service).
    Launch {
        as_of: i64,
    },
    /// The service opened the `item_count` items of the launch.
    Listed {
        item_count: u64,
    },
    /// By an admin, or (`due`) by the campaign's own timer.
    Close {
        due: bool,
    },
}

fn admin_only(ctx: &Context, what: &str) -> Result<(), DomainError> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!("only an admin {what}")))
    }
}

/// Whether `c` is a campaign that can run: named, a known reviewer rule
/// (USERS naming someone), a known `onDue`, a due date ahead, bounded lists.
pub fn validate(c: &v1::ReviewCreated, now: i64) -> Result<(), DomainError> {
    if crate::text::is_blank(&c.display_name) || crate::text::chars(&c.display_name) > 200 {
        return Err(DomainError::unsatisfiable(
            "displayName",
            "1 to 200 characters, not only spaces",
        ));
    }
    if crate::text::chars(&c.description) > 4096 {
        return Err(DomainError::invalid(
            "description",
            "at most 4096 characters",
        ));
    }
    let rule = c.reviewers.clone().unwrap_or_default();
    if !REVIEWER_TYPES.contains(&rule.r#type.as_str()) {
        return Err(DomainError::unsatisfiable(
            "reviewers.type",
            "MANAGER, APP_OWNERS, ENTITLEMENT_OWNERS or USERS",
        ));
    }
    if rule.r#type == "USERS" && rule.user_ids.is_empty() {
        return Err(DomainError::unsatisfiable(
            "reviewers.userIds",
            "USERS names at least one user",
        ));
    }
    if rule.user_ids.len() > MAX_REVIEWERS || c.fallback_reviewer_ids.len() > MAX_REVIEWERS {
        return Err(DomainError::unsatisfiable(
            "reviewers.userIds",
            format!("at most {MAX_REVIEWERS} reviewers"),
        ));
    }
    let scope = c.scope.clone().unwrap_or_default();
    for (field, ids) in [
        ("scope.appIds", &scope.app_ids),
        ("scope.entitlementIds", &scope.entitlement_ids),
        ("scope.riskLevelValueIds", &scope.risk_level_value_ids),
        ("scope.userIds", &scope.user_ids),
    ] {
        if ids.len() > MAX_IDS {
            return Err(DomainError::unsatisfiable(
                field,
                format!("at most {MAX_IDS}"),
            ));
        }
    }
    if !ON_DUE.contains(&c.on_due.as_str()) {
        return Err(DomainError::unsatisfiable(
            "onDue",
            "nothing, certify or revoke",
        ));
    }
    if c.due_at_micros <= now {
        return Err(DomainError::unsatisfiable("dueDate", "must lie ahead"));
    }
    Ok(())
}

impl Aggregate for Review {
    type Command = ReviewCommand;
    const TYPE: &'static str = "review";

    fn decide(&self, c: &ReviewCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        let id = self.created.review_id.clone();
        match c {
            ReviewCommand::Create(created) => {
                admin_only(ctx, "creates a review")?;
                if self.exists() {
                    return Err(DomainError::AlreadyExists("review".into()));
                }
                validate(created, ctx.now_unix_micros)?;
                Ok(vec![(**created).clone().into()])
            }
            _ if !self.exists() => Err(DomainError::NotFound("review".into())),
            ReviewCommand::Launch { as_of } => {
                admin_only(ctx, "launches a review")?;
                match self.status {
                    ReviewStatus::Draft => Ok(vec![v1::ReviewLaunched {
                        review_id: id,
                        as_of_micros: *as_of,
                    }
                    .into()]),
                    other => Err(DomainError::InvalidTransition(format!(
                        "review {id} is {}; only a draft is launched",
                        other.name()
                    ))),
                }
            }
            ReviewCommand::Listed { item_count } => {
                if ctx.actor_id != SYSTEM {
                    return Err(DomainError::Forbidden(
                        "only the service lists a review's items".into(),
                    ));
                }
                if self.status == ReviewStatus::Draft {
                    return Err(DomainError::InvalidTransition(format!(
                        "review {id} was never launched"
                    )));
                }
                Ok(if self.listed {
                    vec![] // the listing ran again
                } else {
                    vec![v1::ReviewItemsListed {
                        review_id: id,
                        item_count: *item_count,
                    }
                    .into()]
                })
            }
            ReviewCommand::Close { due } => {
                if *due {
                    if ctx.actor_id != SYSTEM {
                        return Err(DomainError::Forbidden(
                            "only the service closes a review at its due date".into(),
                        ));
                    }
                    if ctx.now_unix_micros < self.created.due_at_micros {
                        return Err(DomainError::InvalidTransition(format!(
                            "review {id} is not due yet"
                        )));
                    }
                } else {
                    admin_only(ctx, "closes a review")?;
                }
                match self.status {
                    ReviewStatus::Active if !self.listed => {
                        Err(DomainError::InvalidTransition(format!(
                            "review {id} is still opening its items; close it once they are open"
                        )))
                    }
                    ReviewStatus::Active => Ok(vec![v1::ReviewClosed {
                        review_id: id,
                        reason: if *due { "due" } else { "closed" }.into(),
                    }
                    .into()]),
                    // The timer and an admin may both get there: once is enough.
                    ReviewStatus::Closed => Ok(vec![]),
                    ReviewStatus::Draft => Err(DomainError::InvalidTransition(format!(
                        "review {id} was never launched"
                    ))),
                }
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::ReviewCreated(e) => self.created = e.clone(),
            DomainEvent::ReviewLaunched(e) => {
                self.status = ReviewStatus::Active;
                self.as_of = e.as_of_micros;
            }
            DomainEvent::ReviewItemsListed(e) => {
                self.listed = true;
                self.item_count = e.item_count;
            }
            DomainEvent::ReviewClosed(_) => self.status = ReviewStatus::Closed,
            _ => {}
        }
        self
    }
}

/// What holds of one grant for choosing its reviewers.
#[derive(Debug, Clone, Default)]
pub struct GrantPeople<'a> {
    pub user_id: &'a str,
    /// The user's delegate ("" for none): they do not review it either.
    pub user_delegate: &'a str,
    pub manager_ids: &'a [String],
    pub app_owner_ids: &'a [String],
    pub entitlement_owner_ids: &'a [String],
}

/// Who reviews a grant under `rule`, and whether they came from the
/// fallback: the rule's people but the grant's own user (and their
/// delegate); if nobody is left, the `fallback` reviewers (but them), else
/// the `admins` (but them).
pub fn reviewers_for(
    rule: &v1::ReviewerRule,
    people: &GrantPeople<'_>,
    fallback: &[String],
    admins: &[String],
) -> (Vec<String>, bool) {
    let named: &[String] = match rule.r#type.as_str() {
        "MANAGER" => people.manager_ids,
        "APP_OWNERS" => people.app_owner_ids,
        "ENTITLEMENT_OWNERS" => people.entitlement_owner_ids,
        _ => &rule.user_ids,
    };
    let others = |ids: &[String]| -> Vec<String> {
        crate::app::dedup(
            ids.iter()
                .filter(|id| *id != people.user_id && *id != people.user_delegate)
                .cloned()
                .collect(),
        )
    };
    let chosen = others(named);
    if !chosen.is_empty() {
        return (chosen, false);
    }
    let fallback = others(fallback);
    if !fallback.is_empty() {
        return (fallback, true);
    }
    (others(admins), true)
}

/// What an item's decision needs to know of its campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReviewFacts {
    pub active: bool,
    pub require_certify: bool,
    pub require_revoke: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewItem {
    pub opened: v1::ReviewItemOpened,
    pub reviewer_ids: Vec<String>,
    /// The standing decision, with who made it and why.
    pub decision: Option<v1::ReviewItemDecided>,
}

#[derive(Debug, Clone)]
pub enum ItemCommand {
    Open(Box<v1::ReviewItemOpened>),
    /// Certify or revoke; `stands_in_for`: the people the actor is the
    /// delegate of; `user_delegate`: the delegate of the user whose access
    /// it is (who, standing for them, does not review it either).
    Decide {
        decision: String,
        justification: String,
        review: ReviewFacts,
        stands_in_for: Vec<String>,
        user_delegate: String,
    },
    /// At closing: an undecided item becomes `decision`.
    ApplyOnDue {
        decision: String,
    },
    Reassign {
        to: Vec<String>,
        review: ReviewFacts,
        stands_in_for: Vec<String>,
        user_delegate: String,
    },
    /// A note on the item: by its reviewers (or their delegates), an admin,
    /// or the user whose access it is (who may say why they need it).
    Comment {
        comment: String,
        stands_in_for: Vec<String>,
    },
}

impl ReviewItem {
    pub fn exists(&self) -> bool {
        !self.opened.item_id.is_empty()
    }

    /// Whether the standing decision is a revoke.
    pub fn revoked(&self) -> bool {
        self.decision
            .as_ref()
            .is_some_and(|d| d.decision == "revoke")
    }

    /// Whom `ctx` acts for on this item: themself (a reviewer or an
    /// admin: `""`), or the reviewer they stand in for; `None`: nobody.
    fn acts_for(&self, ctx: &Context, stands_in_for: &[String]) -> Option<String> {
        if self.reviewer_ids.contains(&ctx.actor_id) || ctx.is_admin() {
            return Some(String::new());
        }
        stands_in_for
            .iter()
            .find(|p| self.reviewer_ids.contains(p))
            .cloned()
    }

    /// Nobody reviews their own access, nor that of whom they stand in for.
    fn not_own(&self, ctx: &Context, user_delegate: &str) -> Result<(), DomainError> {
        if ctx.actor_id == self.opened.user_id {
            Err(DomainError::Forbidden(
                "nobody reviews their own access".into(),
            ))
        } else if !user_delegate.is_empty() && ctx.actor_id == user_delegate {
            Err(DomainError::Forbidden(
                "a user's delegate does not review the user's access".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl Aggregate for ReviewItem {
    type Command = ItemCommand;
    const TYPE: &'static str = "review_item";

    fn decide(&self, c: &ItemCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        let id = self.opened.item_id.clone();
        let active = |review: &ReviewFacts| {
            if review.active {
                Ok(())
            } else {
                Err(DomainError::InvalidTransition(
                    "the review is not active".into(),
                ))
            }
        };
        match c {
            ItemCommand::Open(o) => Ok(if self.exists() {
                vec![] // the launch ran again
            } else {
                vec![(**o).clone().into()]
            }),
            _ if !self.exists() => Err(DomainError::NotFound("review item".into())),
            ItemCommand::Decide {
                decision,
                justification,
                review,
                stands_in_for,
                user_delegate,
            } => {
                self.not_own(ctx, user_delegate)?;
                let Some(on_behalf_of) = self.acts_for(ctx, stands_in_for) else {
                    return Err(DomainError::Forbidden(
                        "only a reviewer of the item, their delegate or an admin decides it".into(),
                    ));
                };
                active(review)?;
                let required = match decision.as_str() {
                    "certify" => review.require_certify,
                    "revoke" => review.require_revoke,
                    _ => return Err(DomainError::invalid("decision", "certify or revoke")),
                };
                if required && crate::text::is_blank(justification) {
                    return Err(DomainError::unsatisfiable(
                        "justification",
                        format!("this review asks why for every {decision}"),
                    ));
                }
                if crate::text::chars(justification) > 4096 {
                    return Err(DomainError::invalid(
                        "justification",
                        "at most 4096 characters",
                    ));
                }
                let same = self
                    .decision
                    .as_ref()
                    .is_some_and(|d| d.decision == *decision && d.justification == *justification);
                if same {
                    return Ok(vec![]); // said already: nothing changes
                }
                // A revoke ends the grant when it is made: taking it back
                // would leave a record of access kept that is gone.
                if self.revoked() {
                    return Err(DomainError::InvalidTransition(
                        "the item was revoked and its grant ended; a revoke is final".into(),
                    ));
                }
                Ok(vec![v1::ReviewItemDecided {
                    item_id: id,
                    decision: decision.clone(),
                    justification: justification.clone(),
                    decided_by: ctx.actor_id.clone(),
                    on_behalf_of,
                }
                .into()])
            }
            ItemCommand::ApplyOnDue { decision } => {
                if ctx.actor_id != SYSTEM {
                    return Err(DomainError::Forbidden(
                        "only the service applies a review's onDue".into(),
                    ));
                }
                if self.decision.is_some() || decision == "nothing" {
                    return Ok(vec![]);
                }
                Ok(vec![v1::ReviewItemDecided {
                    item_id: id,
                    decision: decision.clone(),
                    justification: "undecided when the review closed".into(),
                    decided_by: SYSTEM.into(),
                    on_behalf_of: String::new(),
                }
                .into()])
            }
            ItemCommand::Comment {
                comment,
                stands_in_for,
            } => {
                let own = ctx.actor_id == self.opened.user_id;
                if !own && self.acts_for(ctx, stands_in_for).is_none() {
                    return Err(DomainError::Forbidden(
                        "only the item's reviewers, their delegates, its user or an admin comment on it"
                            .into(),
                    ));
                }
                if crate::text::is_blank(comment) || crate::text::chars(comment) > 4096 {
                    return Err(DomainError::unsatisfiable(
                        "comment",
                        "1 to 4096 characters, not only spaces",
                    ));
                }
                Ok(vec![v1::ReviewItemCommented {
                    item_id: id,
                    comment: comment.clone(),
                    author_id: ctx.actor_id.clone(),
                }
                .into()])
            }
            ItemCommand::Reassign {
                to,
                review,
                stands_in_for,
                user_delegate,
            } => {
                self.not_own(ctx, user_delegate)?;
                if self.acts_for(ctx, stands_in_for).is_none() {
                    return Err(DomainError::Forbidden(
                        "only a reviewer of the item, their delegate or an admin reassigns it"
                            .into(),
                    ));
                }
                active(review)?;
                let to = crate::app::dedup(to.clone());
                if to.is_empty() || to.len() > MAX_REVIEWERS {
                    return Err(DomainError::invalid(
                        "toUserIds",
                        format!("1 to {MAX_REVIEWERS} users"),
                    ));
                }
                if to.contains(&self.opened.user_id)
                    || (!user_delegate.is_empty() && to.contains(user_delegate))
                {
                    return Err(DomainError::unsatisfiable(
                        "toUserIds",
                        "nobody reviews their own access, nor their delegate",
                    ));
                }
                if to == self.reviewer_ids {
                    return Ok(vec![]);
                }
                Ok(vec![v1::ReviewItemReassigned {
                    item_id: id,
                    reviewer_ids: to,
                    reassigned_by: ctx.actor_id.clone(),
                }
                .into()])
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::ReviewItemOpened(e) => {
                self.reviewer_ids = e.reviewer_ids.clone();
                self.opened = e.clone();
            }
            DomainEvent::ReviewItemDecided(e) => self.decision = Some(e.clone()),
            DomainEvent::ReviewItemReassigned(e) => self.reviewer_ids = e.reviewer_ids.clone(),
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    const NOW: i64 = 1_000_000;

    fn created() -> v1::ReviewCreated {
        v1::ReviewCreated {
            review_id: "rv1".into(),
            display_name: "Q4 payroll".into(),
            description: String::new(),
            scope: Some(v1::ReviewScope {
                app_ids: vec!["a1".into()],
                ..Default::default()
            }),
            reviewers: Some(v1::ReviewerRule {
                r#type: "APP_OWNERS".into(),
                user_ids: vec![],
            }),
            fallback_reviewer_ids: vec!["cfo".into()],
            due_at_micros: NOW + 1_000,
            on_due: "revoke".into(),
            require_justification_certify: false,
            require_justification_revoke: true,
        }
    }

    fn at(mut c: Context, now: i64) -> Context {
        c.now_unix_micros = now;
        c
    }

    fn admin() -> Context {
        at(ctx("root", &["admin"]), NOW)
    }

    fn system(now: i64) -> Context {
        at(ctx(SYSTEM, &[]), now)
    }

    #[test]
    fn an_admin_creates_launches_and_closes_a_campaign_once() {
        given::<Review>(&[])
            .when(
                &ReviewCommand::Create(Box::new(created())),
                &at(ctx("o1", &[]), NOW),
            )
            .then_error(DomainError::Forbidden(
                "only an admin creates a review".into(),
            ));
        let draft = given::<Review>(&[])
            .when(&ReviewCommand::Create(Box::new(created())), &admin())
            .then(&[created().into()]);
        assert_eq!(draft.status, ReviewStatus::Draft);
        // A draft is not closed; it is launched once.
        assert!(matches!(
            draft.decide(&ReviewCommand::Close { due: false }, &admin()),
            Err(DomainError::InvalidTransition(_))
        ));
        let launch = ReviewCommand::Launch { as_of: NOW };
        let launched: DomainEvent = v1::ReviewLaunched {
            review_id: "rv1".into(),
            as_of_micros: NOW,
        }
        .into();
        let listing = given::<Review>(&[created().into()])
            .when(&launch, &admin())
            .then(std::slice::from_ref(&launched));
        assert_eq!(listing.status, ReviewStatus::Active);
        assert!(matches!(
            listing.decide(&launch, &admin()),
            Err(DomainError::InvalidTransition(_))
        ));
        // Not closed while its items are being opened; only the service
        // says they are.
        assert!(matches!(
            listing.decide(&ReviewCommand::Close { due: false }, &admin()),
            Err(DomainError::InvalidTransition(_))
        ));
        let listed = ReviewCommand::Listed { item_count: 3 };
        assert!(matches!(
            listing.decide(&listed, &admin()),
            Err(DomainError::Forbidden(_))
        ));
        let listed_event: DomainEvent = v1::ReviewItemsListed {
            review_id: "rv1".into(),
            item_count: 3,
        }
        .into();
        let active = given::<Review>(&[created().into(), launched.clone()])
            .when(&listed, &system(NOW))
            .then(std::slice::from_ref(&listed_event));
        assert_eq!(active.decide(&listed, &system(NOW)), Ok(vec![]));
        assert_eq!(active.item_count, 3);
        // The timer closes it at its due date, not before, and nobody
        // else closes it "as due".
        let due = ReviewCommand::Close { due: true };
        assert!(matches!(
            active.decide(&due, &system(NOW + 999)),
            Err(DomainError::InvalidTransition(_))
        ));
        assert!(matches!(
            active.decide(&due, &at(admin(), NOW + 5_000)),
            Err(DomainError::Forbidden(_))
        ));
        let closed: Vec<DomainEvent> = active.decide(&due, &system(NOW + 1_000)).unwrap();
        assert_eq!(
            closed,
            vec![v1::ReviewClosed {
                review_id: "rv1".into(),
                reason: "due".into()
            }
            .into()]
        );
        let closed = closed.iter().fold(active, |s, e| s.evolve(e));
        // An admin's close after the timer's is nothing more.
        assert_eq!(
            closed.decide(&ReviewCommand::Close { due: false }, &admin()),
            Ok(vec![])
        );
    }

    #[test]
    fn a_campaign_that_cannot_run_is_refused() {
        let refused = |c: v1::ReviewCreated| match validate(&c, NOW) {
            Err(DomainError::Invalid { field, .. } | DomainError::Unsatisfiable { field, .. }) => {
                field
            }
            other => panic!("{other:?}"),
        };
        assert!(validate(&created(), NOW).is_ok());
        assert_eq!(
            refused(v1::ReviewCreated {
                display_name: " ".into(),
                ..created()
            }),
            "displayName"
        );
        assert_eq!(
            refused(v1::ReviewCreated {
                reviewers: Some(v1::ReviewerRule {
                    r#type: "USERS".into(),
                    user_ids: vec![]
                }),
                ..created()
            }),
            "reviewers.userIds"
        );
        assert_eq!(
            refused(v1::ReviewCreated {
                reviewers: None,
                ..created()
            }),
            "reviewers.type"
        );
        assert_eq!(
            refused(v1::ReviewCreated {
                on_due: "archive".into(),
                ..created()
            }),
            "onDue"
        );
        assert_eq!(
            refused(v1::ReviewCreated {
                due_at_micros: NOW,
                ..created()
            }),
            "dueDate"
        );
    }

    fn people<'a>(user: &'a str, owners: &'a [String]) -> GrantPeople<'a> {
        GrantPeople {
            user_id: user,
            user_delegate: "",
            manager_ids: &[],
            app_owner_ids: owners,
            entitlement_owner_ids: &[],
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nobody_reviews_their_own_access_the_fallback_then_admins_do() {
        let rule = created().reviewers.unwrap();
        let owners = ids(&["o1", "o2"]);
        let admins = ids(&["root"]);
        assert_eq!(
            reviewers_for(&rule, &people("ben", &owners), &ids(&["cfo"]), &admins),
            (owners.clone(), false)
        );
        // The owner's own grant: the other owner reviews it.
        assert_eq!(
            reviewers_for(&rule, &people("o1", &owners), &ids(&["cfo"]), &admins),
            (ids(&["o2"]), false)
        );
        // The only owner's own grant: the fallback.
        let solo = ids(&["o1"]);
        assert_eq!(
            reviewers_for(&rule, &people("o1", &solo), &ids(&["cfo"]), &admins),
            (ids(&["cfo"]), true)
        );
        // No fallback (or only the user): the admins, but never the user.
        assert_eq!(
            reviewers_for(&rule, &people("o1", &solo), &ids(&["o1"]), &admins),
            (admins.clone(), true)
        );
        assert_eq!(
            reviewers_for(&rule, &people("root", &[]), &[], &ids(&["root", "r2"])),
            (ids(&["r2"]), true)
        );
        // Nor the user's delegate, standing for them.
        let deputised = GrantPeople {
            user_delegate: "o2",
            ..people("ben", &owners)
        };
        assert_eq!(
            reviewers_for(&rule, &deputised, &ids(&["cfo"]), &admins),
            (ids(&["o1"]), false)
        );
    }

    fn item() -> v1::ReviewItemOpened {
        v1::ReviewItemOpened {
            item_id: "i1".into(),
            review_id: "rv1".into(),
            grant_id: "g1".into(),
            user_id: "ben".into(),
            app_id: "a1".into(),
            entitlement_id: "e1".into(),
            reviewer_ids: ids(&["o1"]),
            fallback: false,
        }
    }

    const ACTIVE: ReviewFacts = ReviewFacts {
        active: true,
        require_certify: false,
        require_revoke: true,
    };

    fn decide(decision: &str, why: &str, stands_in_for: &[&str]) -> ItemCommand {
        ItemCommand::Decide {
            decision: decision.into(),
            justification: why.into(),
            review: ACTIVE,
            stands_in_for: ids(stands_in_for),
            user_delegate: "bens-deputy".into(),
        }
    }

    fn decided(decision: &str, why: &str, by: &str, for_: &str) -> DomainEvent {
        v1::ReviewItemDecided {
            item_id: "i1".into(),
            decision: decision.into(),
            justification: why.into(),
            decided_by: by.into(),
            on_behalf_of: for_.into(),
        }
        .into()
    }

    #[test]
    fn a_reviewer_decides_changes_their_mind_and_every_decision_is_kept() {
        let opened: &[DomainEvent] = &[item().into()];
        let first = given::<ReviewItem>(opened)
            .when(&decide("certify", "", &[]), &ctx("o1", &[]))
            .then(&[decided("certify", "", "o1", "")]);
        // Saying it again changes nothing; a change of mind is a new event.
        assert_eq!(
            first.decide(&decide("certify", "", &[]), &ctx("o1", &[])),
            Ok(vec![])
        );
        given::<ReviewItem>(&[item().into(), decided("certify", "", "o1", "")])
            .when(&decide("revoke", "left the team", &[]), &ctx("o1", &[]))
            .then(&[decided("revoke", "left the team", "o1", "")]);
        // This review asks why for a revoke.
        given::<ReviewItem>(opened)
            .when(&decide("revoke", "  ", &[]), &ctx("o1", &[]))
            .then_error(DomainError::unsatisfiable(
                "justification",
                "this review asks why for every revoke",
            ));
    }

    #[test]
    fn a_revoke_is_final_and_a_repeat_of_it_changes_nothing() {
        let revoked = given::<ReviewItem>(&[item().into(), decided("revoke", "gone", "o1", "")])
            .when(&decide("revoke", "gone", &[]), &ctx("o1", &[]))
            .then(&[]);
        assert!(revoked.revoked());
        for who in [ctx("o1", &[]), ctx("root", &["admin"])] {
            assert!(matches!(
                revoked.decide(&decide("certify", "", &[]), &who),
                Err(DomainError::InvalidTransition(_))
            ));
        }
    }

    #[test]
    fn the_user_reviewers_and_admins_comment_strangers_do_not() {
        let opened: &[DomainEvent] = &[item().into()];
        let comment = |who: &[&str]| ItemCommand::Comment {
            comment: "needed for payroll runs".into(),
            stands_in_for: ids(who),
        };
        for (actor, roles, stands) in [
            ("ben", vec![], vec![]),
            ("o1", vec![], vec![]),
            ("dana", vec![], vec!["o1"]),
            ("root", vec!["admin"], vec![]),
        ] {
            given::<ReviewItem>(opened)
                .when(&comment(&stands), &ctx(actor, &roles))
                .then(&[v1::ReviewItemCommented {
                    item_id: "i1".into(),
                    comment: "needed for payroll runs".into(),
                    author_id: actor.into(),
                }
                .into()]);
        }
        given::<ReviewItem>(opened)
            .when(&comment(&[]), &ctx("eve", &["auditor"]))
            .then_error(DomainError::Forbidden(
                "only the item's reviewers, their delegates, its user or an admin comment on it"
                    .into(),
            ));
        given::<ReviewItem>(opened)
            .when(
                &ItemCommand::Comment {
                    comment: " ".into(),
                    stands_in_for: vec![],
                },
                &ctx("o1", &[]),
            )
            .then_error(DomainError::unsatisfiable(
                "comment",
                "1 to 4096 characters, not only spaces",
            ));
    }

    #[test]
    fn strangers_the_user_and_closed_reviews_decide_nothing_delegates_and_admins_do() {
        let opened: &[DomainEvent] = &[item().into()];
        given::<ReviewItem>(opened)
            .when(&decide("certify", "", &[]), &ctx("eve", &["auditor"]))
            .then_error(DomainError::Forbidden(
                "only a reviewer of the item, their delegate or an admin decides it".into(),
            ));
        // The user, even as an admin, even as a reviewer's delegate.
        for (roles, stands_in) in [(vec![], vec!["o1"]), (vec!["admin"], vec![])] {
            given::<ReviewItem>(opened)
                .when(&decide("certify", "", &stands_in), &ctx("ben", &roles))
                .then_error(DomainError::Forbidden(
                    "nobody reviews their own access".into(),
                ));
        }
        // Nor the user's own delegate, even as a reviewer or an admin.
        for roles in [vec![], vec!["admin"]] {
            given::<ReviewItem>(opened)
                .when(&decide("certify", "", &[]), &ctx("bens-deputy", &roles))
                .then_error(DomainError::Forbidden(
                    "a user's delegate does not review the user's access".into(),
                ));
        }
        // A delegate decides for the reviewer: one decision, theirs on record.
        given::<ReviewItem>(opened)
            .when(&decide("certify", "", &["o1"]), &ctx("dana", &[]))
            .then(&[decided("certify", "", "dana", "o1")]);
        given::<ReviewItem>(opened)
            .when(&decide("certify", "", &[]), &ctx("root", &["admin"]))
            .then(&[decided("certify", "", "root", "")]);
        let closed = ItemCommand::Decide {
            decision: "certify".into(),
            justification: String::new(),
            review: ReviewFacts {
                active: false,
                ..ACTIVE
            },
            stands_in_for: vec![],
            user_delegate: String::new(),
        };
        given::<ReviewItem>(opened)
            .when(&closed, &ctx("o1", &[]))
            .then_error(DomainError::InvalidTransition(
                "the review is not active".into(),
            ));
    }

    #[test]
    fn closing_decides_only_the_undecided_and_reassigning_never_reaches_the_user() {
        let on_due = ItemCommand::ApplyOnDue {
            decision: "revoke".into(),
        };
        given::<ReviewItem>(&[item().into()])
            .when(&on_due, &system(NOW))
            .then(&[decided(
                "revoke",
                "undecided when the review closed",
                SYSTEM,
                "",
            )]);
        given::<ReviewItem>(&[item().into(), decided("certify", "", "o1", "")])
            .when(&on_due, &system(NOW))
            .then(&[]);
        given::<ReviewItem>(&[item().into()])
            .when(&on_due, &ctx("root", &["admin"]))
            .then_error(DomainError::Forbidden(
                "only the service applies a review's onDue".into(),
            ));
        let reassign = |to: &[&str]| ItemCommand::Reassign {
            to: ids(to),
            review: ACTIVE,
            stands_in_for: vec![],
            user_delegate: String::new(),
        };
        let moved = given::<ReviewItem>(&[item().into()])
            .when(&reassign(&["o2"]), &ctx("o1", &[]))
            .then(&[v1::ReviewItemReassigned {
                item_id: "i1".into(),
                reviewer_ids: ids(&["o2"]),
                reassigned_by: "o1".into(),
            }
            .into()]);
        // The old reviewer decides no more; the new one does.
        assert!(matches!(
            moved.decide(&decide("certify", "", &[]), &ctx("o1", &[])),
            Err(DomainError::Forbidden(_))
        ));
        assert!(moved
            .decide(&decide("certify", "", &[]), &ctx("o2", &[]))
            .is_ok());
        given::<ReviewItem>(&[item().into()])
            .when(&reassign(&["ben"]), &ctx("o1", &[]))
            .then_error(DomainError::unsatisfiable(
                "toUserIds",
                "nobody reviews their own access, nor their delegate",
            ));
        given::<ReviewItem>(&[item().into()])
            .when(
                &ItemCommand::Reassign {
                    to: ids(&["o2", "bens-deputy"]),
                    review: ACTIVE,
                    stands_in_for: vec![],
                    user_delegate: "bens-deputy".into(),
                },
                &ctx("o1", &[]),
            )
            .then_error(DomainError::unsatisfiable(
                "toUserIds",
                "nobody reviews their own access, nor their delegate",
            ));
    }
}
