//! The delivery engine's one HTTP path, used by event subscriptions
//! ([`crate::subscriptions`]) and by provisioning tasks alike: open the
//! webhook's sealed secret, make one signed POST ([`crate::webhooks::sign`])
//! within the outbound timeout and the webhook's concurrency limit, read at
//! most a little of the answer, and record the attempt on the delivery,
//! whose domain verdict (`iga_domain::delivery::judge`) says what is next.
//!
//! A provisioning delivery (and an event delivery an admin retried) is
//! made one attempt at a time by the timer
//! driver (`Timer::Delivery`, due when requested and again at each retry's
//! time), so it survives restarts and, on JetStream, is in flight on one
//! instance at a time; what its last attempt decided then closes its task
//! (the provisioning reactor, from `DeliverySucceeded` / `DeliveryFailed`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_service::fulfilment::system_meta;
use command_service::secrets::SecretsKey;
use command_service::{now_unix_micros, CommandHandler};
use iga_api::CloudEvent;
use iga_domain::delivery::{Answer, Delivery, DeliveryCommand, DeliveryStatus, RetryPolicy};
use iga_domain::webhook::Webhook;
use iga_eventlog::{EventStore, Position};
use projection_service::ReadModels;
use tokio::sync::Semaphore;

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// How long one attempt may take.
    pub timeout: Duration,
    pub policy: RetryPolicy,
    /// The CloudEvents `source`.
    pub source: String,
    /// Most calls in flight to one webhook at a time.
    pub per_webhook: usize,
}

/// Most bytes of a receiver's answer that are read (and thrown away).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Makes deliveries: shared by every delivery of this instance.
pub struct Deliverer {
    pub handler: CommandHandler,
    pub models: Arc<ReadModels>,
    /// Where a retried event delivery finds its event.
    pub store: Arc<dyn EventStore>,
    pub secrets: SecretsKey,
    pub settings: DeliverySettings,
    client: reqwest::Client,
    /// One semaphore per webhook: its concurrency limit.
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Deliverer {
    pub fn new(
        handler: CommandHandler,
        models: Arc<ReadModels>,
        store: Arc<dyn EventStore>,
        secrets: SecretsKey,
        settings: DeliverySettings,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Deliverer {
            handler,
            models,
            store,
            secrets,
            settings,
            client,
            limits: Mutex::new(HashMap::new()),
        })
    }

    /// The signing secret of webhook `id`, opened with this instance's key.
    pub(crate) async fn secret_of(&self, id: &str) -> Result<(Webhook, String), String> {
        let (webhook, _) = self
            .handler
            .load::<Webhook>(id)
            .await
            .map_err(|e| e.to_string())?;
        let secret = self
            .secrets
            .open(&webhook.secret_sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                format!(
                    "the secret of webhook {id} cannot be opened with this instance's secrets key"
                )
            })?;
        Ok((webhook, secret))
    }

    fn limit(&self, webhook_id: &str) -> Arc<Semaphore> {
        self.limits
            .lock()
            .expect("limits lock")
            .entry(webhook_id.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_webhook.max(1))))
            .clone()
    }

    /// One signed POST of `body` to `webhook` as delivery `id`; what it got.
    pub(crate) async fn call(
        &self,
        webhook: &Webhook,
        secret: &str,
        id: &str,
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        let limit = self.limit(&webhook.id);
        let Ok(_permit) = limit.acquire().await else {
            return Answer::Unreachable;
        };
        let timestamp = now_unix_micros() / 1_000_000;
        let Ok(signed) = crate::webhooks::sign(secret, id, timestamp, body) else {
            return Answer::Status(0);
        };
        let mut request = self
            .client
            .post(&webhook.url)
            .header("content-type", content_type)
            .body(body.to_vec());
        for (name, value) in signed.headers() {
            request = request.header(name, value);
        }
        metrics::counter!("iga_webhook_attempts_total").increment(1);
        match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read a little of the answer (so the connection can be
                // reused), never all of it.
                let mut read = 0;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Answer::Status(status)
            }
            Err(e) if e.is_timeout() => Answer::Timeout,
            Err(_) => Answer::Unreachable,
        }
    }

    /// Records what attempt `attempt` of delivery `id` got; answers the
    /// delivery after it, and the position written.
    pub(crate) async fn record(
        &self,
        id: &str,
        attempt: u32,
        answer: Answer,
    ) -> Result<(Delivery, Position), String> {
        let record = DeliveryCommand::RecordAttempt {
            attempt,
            answer,
            at: now_unix_micros(),
            jitter: rand::random::<f64>(),
            policy: self.settings.policy,
        };
        let (after, out) = self
            .handler
            .execute::<Delivery>(id, &record, &system_meta(None, id))
            .await
            .map_err(|e| e.to_string())?;
        match after.status {
            DeliveryStatus::Pending => {}
            DeliveryStatus::Succeeded => {
                metrics::counter!("iga_webhook_deliveries_total", "outcome" => "succeeded")
                    .increment(1)
            }
            DeliveryStatus::Failed => {
                tracing::warn!(webhook = %after.requested.webhook_id, delivery = %id, error = %after.last_error, "delivery failed");
                metrics::counter!("iga_webhook_deliveries_total", "outcome" => "failed")
                    .increment(1)
            }
        }
        Ok((after, out.position))
    }

    /// Makes the next attempt of delivery `id` if it is due (fired by the
    /// timer driver: a provisioning task's, or an event's an admin retried);
    /// answers the position written (0: nothing was due, it was made or
    /// settled already).
    pub async fn attempt(&self, id: &str) -> Result<Position, String> {
        let (delivery, _) = self
            .handler
            .load::<Delivery>(id)
            .await
            .map_err(|e| e.to_string())?;
        if delivery.status != DeliveryStatus::Pending
            || delivery.next_attempt_at > now_unix_micros()
        {
            return Ok(0);
        }
        let (webhook, secret) = self.secret_of(&delivery.requested.webhook_id).await?;
        let r = &delivery.requested;
        let (content_type, body) = match r.kind.as_str() {
            "provisioning" => ("application/json", self.task_body(&r.subject_id).await?),
            _ => (
                "application/cloudevents+json",
                self.event_body(r.subject_position, &r.subject_id).await?,
            ),
        };
        let answer = if webhook.deleted {
            // Gone: a permanent refusal, so the delivery (and its task)
            // fails loudly rather than waiting for a receiver that is no more.
            Answer::Status(410)
        } else {
            self.call(&webhook, &secret, id, content_type, &body).await
        };
        let (_, position) = self.record(id, delivery.attempts + 1, answer).await?;
        Ok(position)
    }

    /// The CloudEvent of event `event_id`, at log position `position`.
    pub(crate) async fn event_body(
        &self,
        position: u64,
        event_id: &str,
    ) -> Result<Vec<u8>, String> {
        let found = self
            .store
            .read_all(position.saturating_sub(1), 1)
            .await
            .map_err(|e| e.to_string())?;
        let event = found
            .into_iter()
            .find(|e| e.position == position && e.envelope.event_id == event_id)
            .ok_or_else(|| format!("event {event_id} is not at position {position}"))?;
        CloudEvent::of(&event.envelope, event.position, &self.settings.source)
            .map_err(|e| e.to_string())
            .and_then(|ce| serde_json::to_vec(&ce).map_err(|e| e.to_string()))
    }

    /// What a provisioning task's delivery says: `{"type": "iga.provision" |
    /// "iga.deprovision", "task", "user", "app", "entitlement"}`.
    async fn task_body(&self, task_id: &str) -> Result<Vec<u8>, String> {
        let stream = format!("provisioning-{task_id}");
        let task = self
            .handler
            .view::<iga_api::ProvisioningTask>(&stream)
            .await
            .map_err(|e| e.to_string())?;
        let models = &self.models;
        let user = models
            .users()
            .and_then(|u| u.get(&task.user_id))
            .map_err(|e| e.to_string())?
            .map(|u| u.render());
        let app = models
            .apps()
            .and_then(|a| a.get(&task.app_id))
            .map_err(|e| e.to_string())?
            .map(|a| a.render());
        let entitlement = models
            .entitlements()
            .and_then(|e| e.entitlement(&task.app_id, &task.app_entitlement_id))
            .map_err(|e| e.to_string())?
            .map(|e| e.render());
        let body = serde_json::json!({
            "type": format!("iga.{}", task.action),
            "task": task,
            "user": user,
            "app": app,
            "entitlement": entitlement,
        });
        serde_json::to_vec(&body).map_err(|e| e.to_string())
    }
}
