//! `EntitlementCatalog`: what is inside each app: resource types, resources
//! and entitlements (the built-in "access" one included from the moment its
//! app is created), as the API shows them.
//!
//! Keys: `rt/<appId>/<typeId>` -> [`ResourceTypeView`];
//! `r/<appId>/<typeId>/<resourceId>` -> [`ResourceView`];
//! `e/<appId>/<entitlementId>` -> [`EntitlementView`];
//! `ei/<entitlementId>` -> app id (to find an entitlement by its id alone).

use crate::ObjectMeta;
use iga_domain::entitlement::{apply_update, builtin_access};
use iga_eventlog::RecordedEvent;
use iga_schemas::{v1, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "entitlements";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceTypeView {
    pub fields: v1::AppResourceTypeCreated,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceView {
    pub fields: v1::AppResourceCreated,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitlementView {
    pub fields: v1::AppEntitlementCreated,
    pub meta: ObjectMeta,
    pub grant_count: u64,
}

impl EntitlementView {
    /// The entitlement as the API shows it.
    pub fn render(&self) -> iga_api::Entitlement {
        iga_api::Entitlement::render(&self.fields, self.meta, self.grant_count)
    }
}

pub(crate) fn resource_type_key(app_id: &str, id: &str) -> Vec<u8> {
    format!("rt/{app_id}/{id}").into_bytes()
}

pub(crate) fn resource_type_prefix(app_id: &str) -> Vec<u8> {
    format!("rt/{app_id}/").into_bytes()
}

pub(crate) fn resource_key(app_id: &str, type_id: &str, id: &str) -> Vec<u8> {
    format!("r/{app_id}/{type_id}/{id}").into_bytes()
}

pub(crate) fn resource_prefix(app_id: &str, type_id: &str) -> Vec<u8> {
    format!("r/{app_id}/{type_id}/").into_bytes()
}

pub(crate) fn entitlement_key(app_id: &str, id: &str) -> Vec<u8> {
    format!("e/{app_id}/{id}").into_bytes()
}

pub(crate) fn entitlement_prefix(app_id: &str) -> Vec<u8> {
    format!("e/{app_id}/").into_bytes()
}

fn app_of_key(id: &str) -> Vec<u8> {
    format!("ei/{id}").into_bytes()
}

pub struct EntitlementCatalog;

fn created(at: i64, version: u64) -> ObjectMeta {
    ObjectMeta {
        created_at_micros: at,
        updated_at_micros: at,
        deleted_at_micros: None,
        version,
    }
}

impl Projection for EntitlementCatalog {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let env = &event.envelope;
        let at = env.occurred_at_unix_micros;
        let version = env.stream_version;
        match decoded {
            DomainEvent::AppCreated(e) => {
                // The built-in entitlement exists from now on, at version 1.
                let fields = builtin_access(e);
                tx.put(app_of_key(&fields.entitlement_id), e.app_id.as_bytes());
                let view = EntitlementView {
                    meta: created(at, 1),
                    fields,
                    grant_count: 0,
                };
                tx.put_value(
                    entitlement_key(&e.app_id, &view.fields.entitlement_id),
                    &view,
                );
            }
            DomainEvent::AppResourceTypeCreated(e) => {
                let view = ResourceTypeView {
                    fields: e.clone(),
                    meta: created(at, version),
                };
                tx.put_value(resource_type_key(&e.app_id, &e.resource_type_id), &view);
            }
            DomainEvent::AppResourceCreated(e) => {
                let view = ResourceView {
                    fields: e.clone(),
                    meta: created(at, version),
                };
                tx.put_value(
                    resource_key(&e.app_id, &e.resource_type_id, &e.resource_id),
                    &view,
                );
            }
            DomainEvent::AppEntitlementCreated(e) => {
                let key = entitlement_key(&e.app_id, &e.entitlement_id);
                // The built-in one is already here (from AppCreated): keep its creation time.
                let meta = match tx.get_value::<EntitlementView>(&key)? {
                    Some(existing) => ObjectMeta {
                        updated_at_micros: at,
                        version,
                        ..existing.meta
                    },
                    None => created(at, version),
                };
                tx.put(app_of_key(&e.entitlement_id), e.app_id.as_bytes());
                let grant_count = tx
                    .get_value::<EntitlementView>(&key)?
                    .map_or(0, |v| v.grant_count);
                let view = EntitlementView {
                    fields: e.clone(),
                    meta,
                    grant_count,
                };
                tx.put_value(key, &view);
            }
            DomainEvent::AppEntitlementUpdated(e) => {
                change(tx, &e.app_id, &e.entitlement_id, at, version, |v| {
                    v.fields = apply_update(&v.fields, e)
                })?
            }
            DomainEvent::AppEntitlementDeleted(e) => {
                change(tx, &e.app_id, &e.entitlement_id, at, version, |v| {
                    v.meta.deleted_at_micros = Some(at)
                })?
            }
            DomainEvent::AppEntitlementOwnersSet(e) => {
                change(tx, &e.app_id, &e.entitlement_id, at, version, |v| {
                    v.fields.owner_ids = e
                        .owner_ids
                        .as_ref()
                        .map(|l| l.values.clone())
                        .unwrap_or_default()
                })?
            }
            DomainEvent::GrantIssued(e) => count_grant(tx, &e.entitlement_id, 1)?,
            DomainEvent::GrantEnded(e) => count_grant(tx, &e.entitlement_id, -1)?,
            _ => {}
        }
        Ok(())
    }
}

/// Keeps `grantCount` (users holding the entitlement now); not a change of
/// the entitlement, so neither its version nor `updatedAt` move.
fn count_grant(tx: &mut Staged<'_>, entitlement_id: &str, delta: i64) -> Result<()> {
    let Some(app) = tx.get(&app_of_key(entitlement_id))? else {
        return Ok(());
    };
    let key = entitlement_key(&String::from_utf8_lossy(&app), entitlement_id);
    if let Some(mut view) = tx.get_value::<EntitlementView>(&key)? {
        view.grant_count = (view.grant_count as i64 + delta).max(0) as u64;
        tx.put_value(key, &view);
    }
    Ok(())
}

fn change(
    tx: &mut Staged<'_>,
    app_id: &str,
    id: &str,
    at: i64,
    version: u64,
    f: impl FnOnce(&mut EntitlementView),
) -> Result<()> {
    let key = entitlement_key(app_id, id);
    if let Some(mut view) = tx.get_value::<EntitlementView>(&key)? {
        f(&mut view);
        view.meta.updated_at_micros = at;
        view.meta.version = version;
        tx.put_value(key, &view);
    }
    Ok(())
}

impl EntitlementCatalog {
    pub(crate) fn entitlement(
        tree: &crate::store::Tree,
        app_id: &str,
        id: &str,
    ) -> Result<Option<EntitlementView>> {
        Staged::new(tree).get_value(&entitlement_key(app_id, id))
    }

    /// The app an entitlement belongs to.
    pub(crate) fn app_of(tree: &crate::store::Tree, id: &str) -> Result<Option<String>> {
        Ok(tree
            .get(app_of_key(id))?
            .map(|a| String::from_utf8_lossy(&a).into_owned()))
    }

    pub(crate) fn resource_type(
        tree: &crate::store::Tree,
        app_id: &str,
        id: &str,
    ) -> Result<Option<ResourceTypeView>> {
        Staged::new(tree).get_value(&resource_type_key(app_id, id))
    }

    pub(crate) fn resource(
        tree: &crate::store::Tree,
        app_id: &str,
        type_id: &str,
        id: &str,
    ) -> Result<Option<ResourceView>> {
        Staged::new(tree).get_value(&resource_key(app_id, type_id, id))
    }
}
