//! Typed queries: the only way in to the read models from outside this
//! crate. `models.requests()?.page(scope, window, keep)`, `models.users()?
//! .get(id)` and the like answer views; key layouts, encodings and the store stay
//! here.
//!
//! Lists are paged by a [`Window`]: at most `size` items after an opaque
//! cursor (the `next` of the page before; the query service turns it into a
//! page token). A cursor of another list starts this one at its beginning
//! or answers an empty page, never an error.

use std::ops::Bound;

use iga_api::{GrantView, RequestView};
use serde::de::DeserializeOwned;

use crate::apps::{version_prefix, AppCatalog, AppVersionView, AppView};
use crate::entitlements::{
    entitlement_prefix, resource_prefix, resource_type_prefix, EntitlementCatalog, EntitlementView,
    ResourceTypeView, ResourceView,
};
use crate::grants::{GrantLedger, GrantScope};
use crate::policies::{PolicyDirectory, PolicyView};
use crate::provisioning::{TaskQueue, TaskScope};
use crate::requests::{task_prefix, Party, RequestDirectory};
use crate::reviews::{ItemScope, ReviewBoard};
use crate::users::{TokenHolder, TokenView, UserDirectory, UserView};
use crate::webhooks::{delivery_prefix, WebhookDirectory, WebhookView};
use crate::{ProjectionError, ReadModels, Result};

fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    crate::staged::decode_value(bytes).map_err(|e| ProjectionError::Corrupt(e.to_string()))
}

/// Which part of a list to answer: at most `size` items after `after`.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub after: Option<&'a [u8]>,
    pub size: usize,
}

/// One page of a list, and the cursor of the next one (if there is more).
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<Vec<u8>>,
}

impl ReadModels {
    fn model(&self, name: &'static str) -> Result<&crate::store::Tree> {
        self.tree(name)
            .ok_or_else(|| ProjectionError::Corrupt(format!("the {name} read model is not open")))
    }

    pub fn users(&self) -> Result<Users<'_>> {
        self.model(crate::users::NAME).map(Users)
    }

    pub fn apps(&self) -> Result<Apps<'_>> {
        self.model(crate::apps::NAME).map(Apps)
    }

    pub fn entitlements(&self) -> Result<Entitlements<'_>> {
        self.model(crate::entitlements::NAME).map(Entitlements)
    }

    pub fn policies(&self) -> Result<Policies<'_>> {
        self.model(crate::policies::NAME).map(Policies)
    }

    pub fn grants(&self) -> Result<Grants<'_>> {
        self.model(crate::grants::NAME).map(Grants)
    }

    pub fn requests(&self) -> Result<Requests<'_>> {
        self.model(crate::requests::NAME).map(Requests)
    }

    pub fn webhooks(&self) -> Result<Webhooks<'_>> {
        self.model(crate::webhooks::NAME).map(Webhooks)
    }

    pub fn provisioning_tasks(&self) -> Result<Tasks<'_>> {
        self.model(crate::provisioning::NAME).map(Tasks)
    }

    pub fn reviews(&self) -> Result<Reviews<'_>> {
        self.model(crate::reviews::NAME).map(Reviews)
    }
}

/// Values found by id from the index under `prefix` (keys
/// `<prefix><seq: 8 bytes>/<id>`: the provisioning tasks' and the reviews'
/// indexes), in key order, in `window`; `found` answers `None` to skip one.
fn by_index<V>(
    tree: &crate::store::Tree,
    prefix: &[u8],
    window: Window<'_>,
    mut found: impl FnMut(&str) -> Result<Option<V>>,
) -> Result<Paged<V>> {
    let mut end = prefix.to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    let start = match window.after {
        Some(after) if after >= end.as_slice() => {
            return Ok(Paged {
                items: Vec::new(),
                next: None,
            })
        }
        Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    let mut items = Vec::with_capacity(window.size.min(1024));
    let mut last_key = None;
    for kv in tree.range((start, Bound::Excluded(end))) {
        let (k, _) = kv?;
        let Some(id) = k.get(prefix.len() + 9..) else {
            continue;
        };
        let Some(value) = found(&String::from_utf8_lossy(id))? else {
            continue;
        };
        if items.len() == window.size {
            return Ok(Paged {
                items,
                next: last_key,
            });
        }
        last_key = Some(k.to_vec());
        items.push(value);
    }
    Ok(Paged { items, next: None })
}

/// The values under `prefix` that pass `keep`, in key order, in `window`.
fn page_under<V: DeserializeOwned>(
    tree: &crate::store::Tree,
    prefix: &[u8],
    window: Window<'_>,
    keep: impl Fn(&V) -> bool,
) -> Result<Paged<V>> {
    let mut end = prefix.to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    let start = match window.after {
        Some(after) if after >= end.as_slice() => {
            return Ok(Paged {
                items: Vec::new(),
                next: None,
            })
        }
        Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    let mut items = Vec::with_capacity(window.size.min(1024));
    let mut last_key = None;
    for kv in tree.range((start, Bound::Excluded(end))) {
        let (k, v) = kv?;
        let value: V = decode(&v)?;
        if !keep(&value) {
            continue;
        }
        if items.len() == window.size {
            return Ok(Paged {
                items,
                next: last_key,
            });
        }
        last_key = Some(k.to_vec());
        items.push(value);
    }
    Ok(Paged { items, next: None })
}

/// Users and their API tokens.
pub struct Users<'a>(&'a crate::store::Tree);

impl Users<'_> {
    pub fn get(&self, id: &str) -> Result<Option<UserView>> {
        UserDirectory::get(self.0, id)
    }

    /// Users in id order.
    pub fn page(
        &self,
        window: Window<'_>,
        keep: impl Fn(&UserView) -> bool,
    ) -> Result<Paged<UserView>> {
        page_under(self.0, b"u/", window, keep)
    }

    /// The live tokens of `user_id`, oldest first.
    pub fn tokens(&self, user_id: &str) -> Result<Vec<TokenView>> {
        UserDirectory::tokens(self.0, user_id)
    }

    /// The live token with this SHA-256 (at `now_micros`) and its holder.
    pub fn token_holder(
        &self,
        sha256_hex: &str,
        now_micros: i64,
    ) -> Result<Option<(TokenHolder, UserView)>> {
        UserDirectory::token_holder(self.0, sha256_hex, now_micros)
    }
}

/// Apps and every version of each.
pub struct Apps<'a>(&'a crate::store::Tree);

impl Apps<'_> {
    pub fn get(&self, id: &str) -> Result<Option<AppView>> {
        AppCatalog::get(self.0, id)
    }

    /// Apps in id order.
    pub fn page(
        &self,
        window: Window<'_>,
        keep: impl Fn(&AppView) -> bool,
    ) -> Result<Paged<AppView>> {
        page_under(self.0, b"a/", window, keep)
    }

    /// Every version of app `id`, oldest first.
    pub fn versions(&self, id: &str, window: Window<'_>) -> Result<Paged<AppVersionView>> {
        page_under(self.0, &version_prefix(id), window, |_| true)
    }
}

/// Resource types, resources and entitlements, by app.
pub struct Entitlements<'a>(&'a crate::store::Tree);

impl Entitlements<'_> {
    pub fn entitlement(&self, app_id: &str, id: &str) -> Result<Option<EntitlementView>> {
        EntitlementCatalog::entitlement(self.0, app_id, id)
    }

    /// The app an entitlement belongs to.
    pub fn app_of(&self, entitlement_id: &str) -> Result<Option<String>> {
        EntitlementCatalog::app_of(self.0, entitlement_id)
    }

    /// An app's entitlements in id order.
    pub fn page(
        &self,
        app_id: &str,
        window: Window<'_>,
        keep: impl Fn(&EntitlementView) -> bool,
    ) -> Result<Paged<EntitlementView>> {
        page_under(self.0, &entitlement_prefix(app_id), window, keep)
    }

    pub fn resource_type(&self, app_id: &str, id: &str) -> Result<Option<ResourceTypeView>> {
        EntitlementCatalog::resource_type(self.0, app_id, id)
    }

    /// An app's resource types in id order.
    pub fn resource_types(
        &self,
        app_id: &str,
        window: Window<'_>,
        keep: impl Fn(&ResourceTypeView) -> bool,
    ) -> Result<Paged<ResourceTypeView>> {
        page_under(self.0, &resource_type_prefix(app_id), window, keep)
    }

    pub fn resource(&self, app_id: &str, type_id: &str, id: &str) -> Result<Option<ResourceView>> {
        EntitlementCatalog::resource(self.0, app_id, type_id, id)
    }

    /// A resource type's resources in id order.
    pub fn resources(
        &self,
        app_id: &str,
        type_id: &str,
        window: Window<'_>,
        keep: impl Fn(&ResourceView) -> bool,
    ) -> Result<Paged<ResourceView>> {
        page_under(self.0, &resource_prefix(app_id, type_id), window, keep)
    }
}

/// Approval policies and every version of each.
pub struct Policies<'a>(&'a crate::store::Tree);

impl Policies<'_> {
    pub fn get(&self, id: &str) -> Result<Option<PolicyView>> {
        PolicyDirectory::get(self.0, id)
    }

    pub fn at_version(&self, id: &str, version: u64) -> Result<Option<PolicyView>> {
        PolicyDirectory::at_version(self.0, id, version)
    }

    /// Policies (their current versions) in id order.
    pub fn page(
        &self,
        window: Window<'_>,
        keep: impl Fn(&PolicyView) -> bool,
    ) -> Result<Paged<PolicyView>> {
        page_under(self.0, b"p/", window, keep)
    }
}

/// Grants: what is held now, and every interval anyone held anything.
pub struct Grants<'a>(&'a crate::store::Tree);

impl Grants<'_> {
    pub fn get(&self, id: &str) -> Result<Option<GrantView>> {
        GrantLedger::get(self.0, id)
    }

    /// The grants under `scope` that pass `keep`, in the scope's order
    /// (issue order; what a user holds now: by entitlement).
    pub fn page(
        &self,
        scope: &GrantScope,
        window: Window<'_>,
        keep: impl FnMut(&GrantView) -> bool,
    ) -> Result<Paged<GrantView>> {
        let found = GrantLedger::page(self.0, scope, window.after, window.size, keep)?;
        Ok(Paged {
            items: found.grants,
            next: found.next,
        })
    }
}

/// Which requests a query looks at.
#[derive(Debug, Clone, Copy)]
pub enum RequestScope<'a> {
    /// Every request (admins and auditors), in id order.
    All,
    /// The requests a user takes part in (made, is the beneficiary of, acts
    /// or acted on), oldest first.
    Involving(&'a str),
    /// The requests a user made, oldest first.
    MadeBy(&'a str),
    /// The requests made for a user, oldest first.
    MadeFor(&'a str),
}

/// Requests one by one, each with its cursor.
pub type Selected<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, RequestView)>> + 'a>;

/// Access requests as the API shows them, and the task inboxes.
pub struct Requests<'a>(&'a crate::store::Tree);

/// A page of requests and how many in all passed the filter.
#[derive(Debug)]
pub struct Counted<T> {
    pub page: Paged<T>,
    pub total: u64,
}

impl<'a> Requests<'a> {
    pub fn get(&self, id: &str) -> Result<Option<RequestView>> {
        RequestDirectory::get(self.0, id)
    }

    /// Every request in `scope`, each with its cursor, in the scope's order.
    pub fn select(&self, scope: RequestScope<'_>) -> Result<Selected<'a>> {
        let tree = self.0;
        let ids = match scope {
            RequestScope::All => {
                return Ok(Box::new(tree.scan_prefix(b"r/").map(|kv| {
                    let (k, v) = kv?;
                    Ok((k.to_vec(), decode(&v)?))
                })))
            }
            RequestScope::Involving(u) => RequestDirectory::involving(tree, u)?,
            RequestScope::MadeBy(u) => RequestDirectory::of_party(tree, Party::Requester, u)?,
            RequestScope::MadeFor(u) => RequestDirectory::of_party(tree, Party::Beneficiary, u)?,
        };
        // Ordered by creation: the cursor is the creation time and the id.
        Ok(Box::new(ids.into_iter().filter_map(
            move |(created, id)| {
                let mut k = created.to_be_bytes().to_vec();
                k.extend_from_slice(id.as_bytes());
                RequestDirectory::get(tree, &id)
                    .map(|found| found.map(|view| (k, view)))
                    .transpose()
            },
        )))
    }

    /// The requests in `scope` that pass `keep`, in `window`, and how many
    /// pass in all.
    pub fn page(
        &self,
        scope: RequestScope<'_>,
        window: Window<'_>,
        keep: impl Fn(&RequestView) -> bool,
    ) -> Result<Counted<RequestView>> {
        let mut items = Vec::new();
        let mut total = 0u64;
        let mut last_key = None;
        let mut more = false;
        for found in self.select(scope)? {
            let (k, view) = found?;
            if !keep(&view) {
                continue;
            }
            total += 1;
            if window.after.is_some_and(|a| k.as_slice() <= a) {
                continue;
            }
            if items.len() == window.size {
                more = true;
                continue;
            }
            last_key = Some(k);
            items.push(view);
        }
        Ok(Counted {
            page: Paged {
                items,
                next: if more { last_key } else { None },
            },
            total,
        })
    }

    /// A user's active (`active`) or inactive tasks, newest first, and how
    /// many there are.
    pub fn tasks(
        &self,
        user_id: &str,
        active: bool,
        window: Window<'_>,
    ) -> Result<Counted<RequestView>> {
        let prefix = task_prefix(user_id, active);
        let mut items = Vec::new();
        let mut total = 0u64;
        let mut last = None;
        let mut more = false;
        for kv in self.0.scan_prefix(&prefix) {
            let (k, _) = kv?;
            total += 1;
            if window.after.is_some_and(|a| k.as_ref() <= a) || more {
                continue;
            }
            if items.len() == window.size {
                more = true;
                continue;
            }
            let Some(id) = k.get(prefix.len() + 8..) else {
                continue;
            };
            if let Some(v) = RequestDirectory::get(self.0, &String::from_utf8_lossy(id))? {
                items.push(v);
                last = Some(k.to_vec());
            }
        }
        Ok(Counted {
            page: Paged {
                items,
                next: if more { last } else { None },
            },
            total,
        })
    }
}

/// Webhooks and their deliveries.
pub struct Webhooks<'a>(&'a crate::store::Tree);

impl Webhooks<'_> {
    pub fn get(&self, id: &str) -> Result<Option<WebhookView>> {
        WebhookDirectory::get(self.0, id)
    }

    /// Webhooks in id order.
    pub fn page(
        &self,
        window: Window<'_>,
        keep: impl Fn(&WebhookView) -> bool,
    ) -> Result<Paged<WebhookView>> {
        page_under(self.0, b"w/", window, keep)
    }

    /// Every live webhook that subscribes to events.
    pub fn subscribed(&self) -> Result<Vec<WebhookView>> {
        let mut out = Vec::new();
        for kv in self.0.scan_prefix(b"w/") {
            let (_, v) = kv?;
            let view: WebhookView = decode(&v)?;
            if view.live() && !view.event_types.is_empty() {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// A webhook's deliveries, in id order (ids are derived, not ordered in time).
    pub fn deliveries(
        &self,
        webhook_id: &str,
        window: Window<'_>,
        keep: impl Fn(&iga_api::Delivery) -> bool,
    ) -> Result<Paged<iga_api::Delivery>> {
        page_under(self.0, &delivery_prefix(webhook_id), window, keep)
    }
}

/// Provisioning tasks, oldest first.
pub struct Tasks<'a>(&'a crate::store::Tree);

impl Tasks<'_> {
    pub fn get(&self, id: &str) -> Result<Option<iga_api::ProvisioningTask>> {
        Ok(TaskQueue::get(self.0, id)?.map(|r| r.task))
    }

    /// The tasks under `scope` that pass `keep`, oldest first.
    pub fn page(
        &self,
        scope: &TaskScope,
        window: Window<'_>,
        keep: impl Fn(&iga_api::ProvisioningTask) -> bool,
    ) -> Result<Paged<iga_api::ProvisioningTask>> {
        let prefix = scope.prefix().into_bytes();
        by_index(self.0, &prefix, window, |id| {
            Ok(TaskQueue::get(self.0, id)?
                .map(|r| r.task)
                .filter(|t| keep(t)))
        })
    }
}

/// Access review campaigns and their items.
pub struct Reviews<'a>(&'a crate::store::Tree);

impl Reviews<'_> {
    /// A campaign, with its progress.
    pub fn get(&self, id: &str) -> Result<Option<iga_api::Review>> {
        Ok(ReviewBoard::review(self.0, id)?.map(|r| r.render()))
    }

    /// The campaigns that pass `keep`, oldest first.
    pub fn page(
        &self,
        window: Window<'_>,
        keep: impl Fn(&iga_api::Review) -> bool,
    ) -> Result<Paged<iga_api::Review>> {
        by_index(self.0, b"o/", window, |id| {
            Ok(ReviewBoard::review(self.0, id)?
                .map(|r| r.render())
                .filter(|r| keep(r)))
        })
    }

    /// An item (without its grant: the caller joins it from the grants).
    pub fn item(&self, id: &str) -> Result<Option<iga_api::ReviewItem>> {
        Ok(ReviewBoard::item(self.0, id)?.map(|r| r.item))
    }

    /// The items under `scope` that pass `keep`, in opening order.
    pub fn items(
        &self,
        scope: &ItemScope,
        window: Window<'_>,
        keep: impl Fn(&iga_api::ReviewItem) -> bool,
    ) -> Result<Paged<iga_api::ReviewItem>> {
        let prefix = scope.prefix().into_bytes();
        by_index(self.0, &prefix, window, |id| {
            Ok(ReviewBoard::item(self.0, id)?
                .map(|r| r.item)
                .filter(|i| keep(i)))
        })
    }

    /// Each reviewer's share of campaign `review_id`, by reviewer id.
    pub fn progress_by_reviewer(
        &self,
        review_id: &str,
    ) -> Result<Vec<(String, iga_api::ReviewProgress)>> {
        let prefix = crate::reviews::progress_prefix(review_id);
        let mut out = Vec::new();
        for kv in self.0.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let reviewer = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((reviewer, decode(&v)?));
        }
        Ok(out)
    }
}
