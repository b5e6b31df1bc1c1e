//! Event subscriptions over HTTP: every live webhook with `eventTypes`
//! receives the events of those types as CloudEvents 1.0 JSON, signed per
//! Standard Webhooks ([`crate::webhooks`]), in log order, at least once.
//!
//! One follower per webhook reads the log from the webhook's own checkpoint
//! (read model `reactor.webhook.<id>`; a new webhook starts after its
//! registration), so a slow or failing receiver holds back only itself.
//! Each event it subscribes to is one delivery (stream `delivery-<id>`, the
//! id derived from the webhook and the event, so it is the same after a
//! restart and is the `webhook-id` header of every attempt): requested,
//! attempted until the domain's verdict (`iga_domain::delivery::judge`) says
//! delivered or failed, retrying with backoff meanwhile. Deliveries and
//! webhook changes themselves are never delivered (they would feed back).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command_service::fulfilment::system_meta;
use command_service::now_unix_micros;
use futures::StreamExt;
use iga_api::CloudEvent;
use iga_domain::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use iga_eventlog::{RecordedEvent, Sharing, WorkSharing};
use iga_schemas::v1;
use projection_service::webhooks::WebhookView;
use tokio::sync::watch;

pub use crate::delivery::{Deliverer, DeliverySettings};

/// The subscription engine: one follower per subscribing webhook.
pub struct Subscriptions {
    pub deliverer: Arc<Deliverer>,
    /// On JetStream: the instances share each webhook's events through its
    /// own ordered durable consumer (`webhook.<id>`), so each event is in
    /// flight on one instance at a time, in log order, and a killed
    /// instance's delivery is finished by another (same `webhook-id`).
    pub shared: Option<Arc<dyn WorkSharing>>,
}

/// Events that are never delivered: the engine's own bookkeeping.
fn bookkeeping(event_type: &str) -> bool {
    event_type.starts_with("iga.v1.Delivery") || event_type.starts_with("iga.v1.Webhook")
}

impl Subscriptions {
    /// Follows every subscribing webhook until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let engine = Arc::new(Engine { subs: self });
        let mut followers: HashMap<String, (watch::Sender<bool>, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        let mut positions = engine.subs.deliverer.models.watch_position();
        loop {
            let models = engine.subs.deliverer.models.clone();
            let wanted = tokio::task::spawn_blocking(move || models.webhooks()?.subscribed())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let ids: Vec<String> = wanted.iter().map(|w| w.id.clone()).collect();
            for hook in wanted {
                if !followers.contains_key(&hook.id) {
                    let (stop, stopped) = watch::channel(false);
                    let id = hook.id.clone();
                    let engine = engine.clone();
                    let task = tokio::spawn(async move { engine.follow(hook, stopped).await });
                    followers.insert(id, (stop, task));
                }
            }
            let gone: Vec<String> = followers
                .keys()
                .filter(|id| !ids.contains(id))
                .cloned()
                .collect();
            for id in gone {
                if let Some((stop, task)) = followers.remove(&id) {
                    let _ = stop.send(true);
                    let _ = task.await;
                }
            }
            tokio::select! {
                _ = positions.changed() => {},
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        for (_, (stop, task)) in followers {
            let _ = stop.send(true);
            let _ = task.await;
        }
        Ok(())
    }
}

/// What a webhook makes of one event.
enum Wanted {
    /// Deleted: its follower stops.
    Gone,
    /// Not of its types (or the engine's own bookkeeping).
    Skip,
    /// To deliver, to the webhook as it now stands.
    Deliver(WebhookView),
}

struct Engine {
    subs: Subscriptions,
}

impl Engine {
    /// Delivers the events `hook` subscribes to, from its checkpoint on.
    async fn follow(&self, hook: WebhookView, mut stop: watch::Receiver<bool>) {
        let id = hook.id.clone();
        if let Err(e) = self.follow_inner(hook, &mut stop).await {
            tracing::error!(webhook = %id, error = %e, "webhook follower stopped");
        }
    }

    async fn follow_inner(
        &self,
        hook: WebhookView,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let s = &self.subs;
        let d = &s.deliverer;
        if let Some(log) = s.shared.clone() {
            return self.follow_shared(hook, log, stop).await;
        }
        let checkpoint = d
            .models
            .reactor_checkpoint(&format!("webhook.{}", hook.id))
            .map_err(|e| e.to_string())?;
        let start = checkpoint
            .get()
            .map_err(|e| e.to_string())?
            .max(hook.registered_at_position);
        let mut log = d.store.subscribe(start).await.map_err(|e| e.to_string())?;
        tracing::info!(webhook = %hook.id, position = start, "delivering events to a webhook");
        loop {
            let next = tokio::select! {
                next = log.next() => next,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let Some(event) = next else { return Ok(()) };
            let event = event.map_err(|e| e.to_string())?;
            match self.wants(&hook.id, &event)? {
                Wanted::Gone => return Ok(()),
                Wanted::Skip => {}
                Wanted::Deliver(current) => {
                    if !self.deliver(&current, &event, stop).await? {
                        return Ok(()); // stopped
                    }
                }
            }
            checkpoint.set(event.position).map_err(|e| e.to_string())?;
        }
    }

    /// This instance's share of `hook`'s events, from the webhook's ordered
    /// durable consumer: one in flight across the instances, held (by
    /// heartbeats) while its delivery lasts, acknowledged once settled.
    async fn follow_shared(
        &self,
        hook: WebhookView,
        log: Arc<dyn WorkSharing>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let name = format!("webhook.{}", hook.id);
        let mut feed = tokio::select! {
            feed = log.join_feed(&name, Sharing::Ordered, hook.registered_at_position) => feed.map_err(|e| e.to_string())?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        tracing::info!(webhook = %hook.id, "sharing a webhook's deliveries through a durable consumer");
        loop {
            let item = tokio::select! {
                item = feed.next() => item.map_err(|e| e.to_string())?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let event = &item.event;
            match self.wants(&hook.id, event)? {
                Wanted::Gone => return Ok(()),
                Wanted::Skip => {}
                Wanted::Deliver(current) => {
                    let delivery = self.deliver(&current, event, stop);
                    let delivered =
                        iga_eventlog::work::with_heartbeat(item.handle.as_ref(), delivery).await?;
                    if !delivered {
                        return Ok(()); // stopped: another instance takes it
                    }
                }
            }
            if let Err(e) = item.ack().await {
                // It comes back after the ack wait; its delivery is settled,
                // so nothing is sent twice.
                tracing::warn!(webhook = %hook.id, error = %e, "acknowledgement failed");
            }
        }
    }

    /// What webhook `id`, as it stands now (its types may have changed),
    /// makes of `event`.
    fn wants(&self, id: &str, event: &RecordedEvent) -> Result<Wanted, String> {
        let event_type = event.envelope.event_type.as_str();
        if bookkeeping(event_type) {
            return Ok(Wanted::Skip);
        }
        let current = self
            .subs
            .deliverer
            .models
            .webhooks()
            .and_then(|w| w.get(id))
            .map_err(|e| e.to_string())?;
        Ok(match current.filter(|w| w.live()) {
            None => Wanted::Gone,
            Some(w) if iga_domain::webhook::subscribes(&w.event_types, event_type) => {
                Wanted::Deliver(w)
            }
            Some(_) => Wanted::Skip,
        })
    }

    /// Delivers `event` to `hook` until delivered or failed for good;
    /// answers false if stopped first.
    async fn deliver(
        &self,
        hook: &WebhookView,
        event: &RecordedEvent,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let d = &self.subs.deliverer;
        let delivery_id = command_service::state::derived_id(
            "delivery",
            &format!("{}\0{}", hook.id, event.envelope.event_id),
        );
        let meta = system_meta(None, &delivery_id);
        let request = DeliveryCommand::Request(v1::DeliveryRequested {
            delivery_id: delivery_id.clone(),
            webhook_id: hook.id.clone(),
            kind: "event".into(),
            subject_id: event.envelope.event_id.clone(),
            subject_position: event.position,
        });
        let (mut delivery, _) = d
            .handler
            .execute::<Delivery>(&delivery_id, &request, &meta)
            .await
            .map_err(|e| e.to_string())?;
        if delivery.status != DeliveryStatus::Pending {
            return Ok(true); // delivered (or failed) before a restart
        }
        let body = CloudEvent::of(&event.envelope, event.position, &d.settings.source)
            .map_err(|e| e.to_string())
            .and_then(|ce| serde_json::to_vec(&ce).map_err(|e| e.to_string()))?;
        // (The same body `Deliverer::event_body` makes for a retry.)
        let (webhook, secret) = d.secret_of(&hook.id).await?;
        loop {
            let wait = delivery.next_attempt_at - now_unix_micros();
            if wait > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_micros(wait as u64)) => {},
                    _ = stop.wait_for(|s| *s) => return Ok(false),
                }
            }
            let attempt = delivery.attempts + 1;
            let answer = tokio::select! {
                a = d.call(&webhook, &secret, &delivery_id, "application/cloudevents+json", &body) => a,
                _ = stop.wait_for(|s| *s) => return Ok(false),
            };
            let (after, _) = d.record(&delivery_id, attempt, answer).await?;
            delivery = after;
            if delivery.status != DeliveryStatus::Pending {
                return Ok(true);
            }
        }
    }
}
