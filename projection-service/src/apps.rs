//! `AppCatalog`: apps as the API shows them, and every version of each.
//!
//! Keys: `a/<appId>` -> [`AppView`]; `v/<appId>/<version BE>` -> [`AppVersionView`].

use iga_domain::app::apply_update;
use iga_eventlog::RecordedEvent;
use iga_schemas::{v1, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "apps";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    pub fields: v1::AppCreated,
    pub active: bool,
    pub created_at_micros: i64,
    pub updated_at_micros: i64,
    pub deleted_at_micros: Option<i64>,
    pub version: u64,
}

impl AppView {
    /// The app as the API shows it.
    pub fn render(&self) -> iga_api::App {
        iga_api::App::render(
            &self.fields,
            self.active,
            iga_api::ObjectMeta {
                created_at_micros: self.created_at_micros,
                updated_at_micros: self.updated_at_micros,
                deleted_at_micros: self.deleted_at_micros,
                version: self.version,
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppVersionView {
    pub version: u64,
    pub changed_at_micros: i64,
    pub actor_id: String,
    pub app: AppView,
}

pub struct AppCatalog;

pub(crate) fn app_key(id: &str) -> Vec<u8> {
    format!("a/{id}").into_bytes()
}

pub(crate) fn version_prefix(id: &str) -> Vec<u8> {
    format!("v/{id}/").into_bytes()
}

impl Projection for AppCatalog {
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
        let id = match decoded {
            DomainEvent::AppCreated(e) => {
                let view = AppView {
                    fields: e.clone(),
                    active: true,
                    created_at_micros: at,
                    updated_at_micros: at,
                    deleted_at_micros: None,
                    version: env.stream_version,
                };
                tx.put_value(app_key(&e.app_id), &view);
                e.app_id.clone()
            }
            DomainEvent::AppUpdated(e) => {
                self.change(tx, &e.app_id, |v| v.fields = apply_update(&v.fields, e))?
            }
            DomainEvent::AppActivated(e) => self.change(tx, &e.app_id, |v| v.active = true)?,
            DomainEvent::AppDeactivated(e) => self.change(tx, &e.app_id, |v| v.active = false)?,
            DomainEvent::AppDeleted(e) => {
                self.change(tx, &e.app_id, |v| v.deleted_at_micros = Some(at))?
            }
            DomainEvent::AppRestored(e) => self.change(tx, &e.app_id, |v| {
                if let Some(state) = &e.state {
                    v.fields = state.clone();
                }
            })?,
            DomainEvent::AppOwnersSet(e) => self.change(tx, &e.app_id, |v| {
                v.fields.owner_ids = e
                    .owner_ids
                    .as_ref()
                    .map(|l| l.values.clone())
                    .unwrap_or_default()
            })?,
            _ => return Ok(()),
        };
        // Every app event is a version; keep the app as it stood after it.
        if let Some(mut view) = tx.get_value::<AppView>(&app_key(&id))? {
            view.version = env.stream_version;
            view.updated_at_micros = at;
            tx.put_value(app_key(&id), &view);
            let mut key = version_prefix(&id);
            key.extend_from_slice(&env.stream_version.to_be_bytes());
            let record = AppVersionView {
                version: env.stream_version,
                changed_at_micros: at,
                actor_id: env.actor_id.clone(),
                app: view,
            };
            tx.put_value(key, &record);
        }
        Ok(())
    }
}

impl AppCatalog {
    fn change(
        &self,
        tx: &mut Staged<'_>,
        id: &str,
        f: impl FnOnce(&mut AppView),
    ) -> Result<String> {
        if let Some(mut view) = tx.get_value::<AppView>(&app_key(id))? {
            f(&mut view);
            tx.put_value(app_key(id), &view);
        }
        Ok(id.to_string())
    }

    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<AppView>> {
        Staged::new(tree).get_value(&app_key(id))
    }
}
