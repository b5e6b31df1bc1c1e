//! `WebhookDirectory`: the webhooks (without their secrets), where each
//! starts receiving events, and every delivery with where it stands.
//!
//! Keys: `w/<webhookId>` -> [`WebhookView`]; `d/<webhookId>/<deliveryId>`
//! -> [`iga_api::Delivery`]; `dw/<deliveryId>` -> the webhook id.

use iga_api::{rfc3339, Delivery};
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{ObjectMeta, Projection, Result, Staged};

pub const NAME: &str = "webhooks";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    /// The log position of its registration: it receives the events after it.
    pub registered_at_position: u64,
    pub meta: ObjectMeta,
}

impl WebhookView {
    pub fn live(&self) -> bool {
        self.meta.deleted_at_micros.is_none()
    }
}

pub(crate) fn webhook_key(id: &str) -> Vec<u8> {
    format!("w/{id}").into_bytes()
}

pub(crate) fn delivery_prefix(webhook_id: &str) -> Vec<u8> {
    format!("d/{webhook_id}/").into_bytes()
}

fn delivery_key(webhook_id: &str, delivery_id: &str) -> Vec<u8> {
    format!("d/{webhook_id}/{delivery_id}").into_bytes()
}

fn owner_key(delivery_id: &str) -> Vec<u8> {
    format!("dw/{delivery_id}").into_bytes()
}

pub struct WebhookDirectory;

impl Projection for WebhookDirectory {
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
        match decoded {
            DomainEvent::WebhookRegistered(e) => tx.put_value(
                webhook_key(&e.webhook_id),
                &WebhookView {
                    id: e.webhook_id.clone(),
                    url: e.url.clone(),
                    description: e.description.clone(),
                    event_types: e.event_types.clone(),
                    registered_at_position: event.position,
                    meta: ObjectMeta {
                        created_at_micros: at,
                        updated_at_micros: at,
                        deleted_at_micros: None,
                        version: env.stream_version,
                    },
                },
            ),
            DomainEvent::WebhookUpdated(e) => {
                if let Some(mut view) = tx.get_value::<WebhookView>(&webhook_key(&e.webhook_id))? {
                    iga_domain::webhook::apply_update(
                        e,
                        &mut view.url,
                        &mut view.description,
                        &mut view.event_types,
                    );
                    view.meta.updated_at_micros = at;
                    view.meta.version = env.stream_version;
                    tx.put_value(webhook_key(&e.webhook_id), &view);
                }
            }
            DomainEvent::WebhookDeleted(e) => {
                if let Some(mut view) = tx.get_value::<WebhookView>(&webhook_key(&e.webhook_id))? {
                    view.meta.deleted_at_micros = Some(at);
                    view.meta.updated_at_micros = at;
                    view.meta.version = env.stream_version;
                    tx.put_value(webhook_key(&e.webhook_id), &view);
                }
            }
            DomainEvent::DeliveryRequested(e) => {
                tx.put_value(owner_key(&e.delivery_id), &e.webhook_id);
                tx.put_value(
                    delivery_key(&e.webhook_id, &e.delivery_id),
                    &Delivery {
                        id: e.delivery_id.clone(),
                        webhook_id: e.webhook_id.clone(),
                        kind: e.kind.clone(),
                        subject_id: e.subject_id.clone(),
                        status: "pending".into(),
                        attempts: 0,
                        last_status: 0,
                        last_error: String::new(),
                        next_attempt_at: None,
                        created_at: rfc3339(at),
                        updated_at: rfc3339(at),
                    },
                );
            }
            DomainEvent::DeliveryAttempted(e) => change(tx, &e.delivery_id, at, |d| {
                d.attempts = e.attempt;
                d.last_status = e.status;
                d.last_error = e.error.clone();
                d.next_attempt_at =
                    (e.next_attempt_at_micros > 0).then(|| rfc3339(e.next_attempt_at_micros));
            })?,
            DomainEvent::DeliverySucceeded(e) => change(tx, &e.delivery_id, at, |d| {
                d.status = "succeeded".into();
                d.next_attempt_at = None;
            })?,
            DomainEvent::DeliveryFailed(e) => change(tx, &e.delivery_id, at, |d| {
                d.status = "failed".into();
                d.last_error = e.reason.clone();
                d.next_attempt_at = None;
            })?,
            DomainEvent::DeliveryRetried(e) => change(tx, &e.delivery_id, at, |d| {
                d.status = "pending".into();
                d.attempts = 0;
            })?,
            _ => {}
        }
        Ok(())
    }
}

fn change(
    tx: &mut Staged<'_>,
    delivery_id: &str,
    at: i64,
    f: impl FnOnce(&mut Delivery),
) -> Result<()> {
    let Some(webhook_id) = tx.get_value::<String>(&owner_key(delivery_id))? else {
        return Ok(());
    };
    let key = delivery_key(&webhook_id, delivery_id);
    if let Some(mut d) = tx.get_value::<Delivery>(&key)? {
        f(&mut d);
        d.updated_at = rfc3339(at);
        tx.put_value(key, &d);
    }
    Ok(())
}

impl WebhookDirectory {
    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<WebhookView>> {
        Staged::new(tree).get_value(&webhook_key(id))
    }
}
