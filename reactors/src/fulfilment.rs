//! The fulfilment reactor: runs command-service's `fulfil` for every decided
//! request in the log. The HTTP handlers fulfil at once after a decision;
//! this finishes the work if the process died between the decision and the
//! grant (or, on KurrentDB, between the appends of one decision).

use command_service::fulfilment::fulfil;
use command_service::CommandHandler;
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;

use crate::Reactor;

/// Runs `fulfil` for every approved, rejected or cancelled request.
pub struct FulfilmentReactor {
    pub handler: CommandHandler,
}

#[async_trait::async_trait]
impl Reactor for FulfilmentReactor {
    fn name(&self) -> &'static str {
        "fulfilment"
    }

    async fn react(&self, _event: &RecordedEvent, decoded: &DomainEvent) -> Result<(), String> {
        let id = match decoded {
            DomainEvent::RequestApproved(e) => &e.request_id,
            DomainEvent::RequestRejected(e) => &e.request_id,
            DomainEvent::RequestCancelled(e) => &e.request_id,
            _ => return Ok(()),
        };
        fulfil(&self.handler, id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
