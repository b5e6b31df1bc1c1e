//! The review reactor: does what an access review's events call for.
//!
//! - `ReviewLaunched`: once the read models include the launch, lists the
//!   grants in the campaign's scope held at its `asOf` (the same answer as
//!   `GET /grants?at=`), chooses each one's reviewers (the domain's
//!   `reviewers_for`: never the grant's own user) and opens one item per
//!   grant, then says the items are listed;
//! - `ReviewClosed`: applies the campaign's `onDue` to its undecided items;
//! - `ReviewItemDecided` `revoke`: ends the grant (reason `review`), which
//!   opens its deprovisioning task where the grant's plan has one.
//!
//! Every step is command-service's with derived ids, so an event seen twice
//! (a crash, another instance) does its work once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command_service::reviews::{
    apply_on_due, end_revoked_grant, finish_listing, item_id_for, open_item,
};
use command_service::CommandHandler;
use futures::StreamExt;
use iga_domain::review::{reviewers_for, GrantPeople, Review};
use iga_eventlog::RecordedEvent;
use iga_schemas::{v1, DomainEvent};
use projection_service::grants::GrantScope;
use projection_service::queries::Window;
use projection_service::reviews::ItemScope;
use projection_service::ReadModels;

use crate::Reactor;

/// How many items are opened (or decided at closing) at once.
const CONCURRENCY: usize = 64;
/// How many grants or items are read from the read models at a time.
const PAGE: usize = 1000;

pub struct ReviewReactor {
    pub handler: CommandHandler,
    pub models: Arc<ReadModels>,
}

#[async_trait::async_trait]
impl Reactor for ReviewReactor {
    fn name(&self) -> &'static str {
        "reviews"
    }

    /// Decisions on different items are independent; a launch or a closing
    /// does its own fan-out.
    fn concurrency(&self) -> usize {
        16
    }

    async fn react(&self, event: &RecordedEvent, decoded: &DomainEvent) -> Result<(), String> {
        match decoded {
            DomainEvent::ReviewLaunched(e) => {
                self.caught_up(event.position).await?;
                self.list(&e.review_id, e.as_of_micros).await
            }
            DomainEvent::ReviewClosed(e) => {
                self.caught_up(event.position).await?;
                self.apply_on_due(&e.review_id).await
            }
            DomainEvent::ReviewItemDecided(e) if e.decision == "revoke" => {
                end_revoked_grant(&self.handler, &e.item_id)
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }
}

/// One grant of a launch, with the people who may review it.
struct Candidate {
    opened: v1::ReviewItemOpened,
}

impl ReviewReactor {
    /// Waits until the read models include `position` (an error, retried,
    /// if they do not within a while).
    async fn caught_up(&self, position: u64) -> Result<(), String> {
        if self
            .models
            .wait_for(position, Duration::from_secs(30))
            .await
        {
            Ok(())
        } else {
            Err(format!(
                "the read models have not reached position {position} yet"
            ))
        }
    }

    /// Opens the items of campaign `review_id`'s launch at `as_of`.
    async fn list(&self, review_id: &str, as_of: i64) -> Result<(), String> {
        let (review, _) = self
            .handler
            .load::<Review>(review_id)
            .await
            .map_err(|e| e.to_string())?;
        if review.listed {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let models = self.models.clone();
        let created = review.created.clone();
        let id = review_id.to_string();
        let candidates =
            tokio::task::spawn_blocking(move || candidates(&models, &id, &created, as_of))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let count = candidates.len() as u64;
        let handler = &self.handler;
        let mut opened = futures::stream::iter(candidates)
            .map(|c| open_item(handler, c.opened))
            .buffer_unordered(CONCURRENCY);
        while let Some(done) = opened.next().await {
            done.map_err(|e| e.to_string())?;
        }
        finish_listing(handler, review_id, count)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(review = %review_id, items = count, took = ?started.elapsed(), "access review items opened");
        Ok(())
    }

    /// Decides the undecided items of closed campaign `review_id` as its
    /// `onDue` says.
    async fn apply_on_due(&self, review_id: &str) -> Result<(), String> {
        let (review, _) = self
            .handler
            .load::<Review>(review_id)
            .await
            .map_err(|e| e.to_string())?;
        let on_due = review.created.on_due.clone();
        if on_due == "nothing" || on_due.is_empty() {
            return Ok(());
        }
        let scope = ItemScope::Decision {
            review_id: review_id.to_string(),
            decision: "pending".into(),
        };
        let mut after: Option<Vec<u8>> = None;
        loop {
            let models = self.models.clone();
            let (scope, cursor) = (scope.clone(), after.take());
            let page = tokio::task::spawn_blocking(move || {
                models.reviews()?.items(
                    &scope,
                    Window {
                        after: cursor.as_deref(),
                        size: PAGE,
                    },
                    |_| true,
                )
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let handler = &self.handler;
            let mut decided = futures::stream::iter(page.items)
                .map(|item| {
                    let on_due = on_due.clone();
                    async move { apply_on_due(handler, &item.id, &on_due).await }
                })
                .buffer_unordered(CONCURRENCY);
            while let Some(done) = decided.next().await {
                done.map_err(|e| e.to_string())?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// The grants campaign `created` looks at, held at `as_of`, each with its
/// item: the grant, its user, and who reviews it.
fn candidates(
    models: &ReadModels,
    review_id: &str,
    created: &v1::ReviewCreated,
    as_of: i64,
) -> Result<Vec<Candidate>, projection_service::ProjectionError> {
    let scope = created.scope.clone().unwrap_or_default();
    let rule = created.reviewers.clone().unwrap_or_default();
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(as_of as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let grants = models.grants()?;
    let users = models.users()?;
    let apps = models.apps()?;
    let entitlements = models.entitlements()?;
    // The admins: reviewers of last resort.
    let mut admins = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = users.page(
            Window {
                after: after.as_deref(),
                size: PAGE,
            },
            |u| u.status == "ENABLED" && u.roles.iter().any(|r| r == "admin"),
        )?;
        admins.extend(page.items.into_iter().map(|u| u.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let sources: Vec<GrantScope> = if !scope.app_ids.is_empty() {
        scope.app_ids.iter().cloned().map(GrantScope::App).collect()
    } else if !scope.entitlement_ids.is_empty() {
        scope
            .entitlement_ids
            .iter()
            .cloned()
            .map(GrantScope::Entitlement)
            .collect()
    } else if !scope.user_ids.is_empty() {
        scope
            .user_ids
            .iter()
            .map(|u| GrantScope::User {
                user_id: u.clone(),
                entitlement_id: None,
            })
            .collect()
    } else {
        vec![GrantScope::All]
    };
    let within = |list: &[String], id: &str| list.is_empty() || list.iter().any(|x| x == id);
    // Per user: their managers and their delegate.
    let mut managers: HashMap<String, (Vec<String>, String)> = HashMap::new();
    let mut app_owners: HashMap<String, Vec<String>> = HashMap::new();
    // Per entitlement: its owners and risk level.
    let mut ents: HashMap<String, (Vec<String>, String)> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for source in sources {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = grants.page(
                &source,
                Window {
                    after: after.as_deref(),
                    size: PAGE,
                },
                |g| {
                    g.active_at(at)
                        && within(&scope.app_ids, &g.app_id)
                        && within(&scope.entitlement_ids, &g.app_entitlement_id)
                        && within(&scope.user_ids, &g.user_id)
                },
            )?;
            for g in page.items {
                if !seen.insert(g.id.clone()) {
                    continue;
                }
                if !ents.contains_key(&g.app_entitlement_id) {
                    let e = entitlements.entitlement(&g.app_id, &g.app_entitlement_id)?;
                    let facts = e
                        .map(|e| (e.fields.owner_ids, e.fields.risk_level_value_id))
                        .unwrap_or_default();
                    ents.insert(g.app_entitlement_id.clone(), facts);
                }
                let (ent_owners, risk) = &ents[&g.app_entitlement_id];
                if !within(&scope.risk_level_value_ids, risk) {
                    continue;
                }
                if !managers.contains_key(&g.user_id) {
                    let m = users
                        .get(&g.user_id)?
                        .map(|u| (u.manager_ids, u.delegated_user_id.unwrap_or_default()))
                        .unwrap_or_default();
                    managers.insert(g.user_id.clone(), m);
                }
                if !app_owners.contains_key(&g.app_id) {
                    let o = apps
                        .get(&g.app_id)?
                        .map(|a| a.fields.owner_ids)
                        .unwrap_or_default();
                    app_owners.insert(g.app_id.clone(), o);
                }
                let (manager_ids, user_delegate) = &managers[&g.user_id];
                let people = GrantPeople {
                    user_id: &g.user_id,
                    user_delegate,
                    manager_ids,
                    app_owner_ids: &app_owners[&g.app_id],
                    entitlement_owner_ids: ent_owners,
                };
                let (reviewer_ids, fallback) =
                    reviewers_for(&rule, &people, &created.fallback_reviewer_ids, &admins);
                out.push(Candidate {
                    opened: v1::ReviewItemOpened {
                        item_id: item_id_for(review_id, &g.id),
                        review_id: review_id.to_string(),
                        grant_id: g.id.clone(),
                        user_id: g.user_id.clone(),
                        app_id: g.app_id.clone(),
                        entitlement_id: g.app_entitlement_id.clone(),
                        reviewer_ids,
                        fallback,
                    },
                });
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(out)
}
