//! The provisioning reactor: opens the task a grant's start or end calls
//! for (from `GrantIssued` / `GrantEnded`, so every path that grants or ends
//! access opens one, reviews included), asks for each webhook task to be
//! delivered (when opened, and again when an admin reopens it), and closes
//! a task when its delivery settled. Every step is command-service's, with
//! derived ids, so seeing an event twice does its work once.

use command_service::provisioning::{close_from_delivery, open_for, request_delivery};
use command_service::CommandHandler;
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;

use crate::Reactor;

pub struct ProvisioningReactor {
    pub handler: CommandHandler,
}

#[async_trait::async_trait]
impl Reactor for ProvisioningReactor {
    fn name(&self) -> &'static str {
        "provisioning"
    }

    /// Each action is on its own task or delivery and waits for its own
    /// append: many at once keep a busy log from queueing them one by one.
    fn concurrency(&self) -> usize {
        32
    }

    async fn react(&self, event: &RecordedEvent, decoded: &DomainEvent) -> Result<(), String> {
        let h = &self.handler;
        let cause = &event.envelope.event_id;
        let done = match decoded {
            DomainEvent::GrantIssued(_) | DomainEvent::GrantEnded(_) => {
                open_for(h, decoded).await.map(|_| ())
            }
            DomainEvent::ProvisioningTaskOpened(e) if e.mode == "webhook" => {
                request_delivery(h, &e.task_id, cause).await.map(|_| ())
            }
            DomainEvent::ProvisioningTaskRetried(e) => {
                request_delivery(h, &e.task_id, cause).await.map(|_| ())
            }
            DomainEvent::DeliverySucceeded(e) => close_from_delivery(h, &e.delivery_id).await,
            DomainEvent::DeliveryFailed(e) => close_from_delivery(h, &e.delivery_id).await,
            DomainEvent::ProvisioningTaskCompleted(e) if e.outcome != "done" => {
                // Loud: a grant whose system may not match what was decided.
                if e.action == "deprovision" {
                    tracing::error!(task = %e.task_id, grant = %e.grant_id, message = %e.message, "deprovisioning failed: the access may still be there");
                } else {
                    tracing::warn!(task = %e.task_id, grant = %e.grant_id, message = %e.message, "provisioning failed");
                }
                metrics::counter!("iga_provisioning_failed_total", "action" => e.action.clone())
                    .increment(1);
                Ok(())
            }
            _ => Ok(()),
        };
        done.map_err(|e| e.to_string())
    }
}
