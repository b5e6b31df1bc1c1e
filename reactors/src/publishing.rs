//! The reactor that publishes every event downstream (NATS JetStream, see
//! `iga_eventlog::publish`), in log order, at least once: JetStream drops the
//! duplicates a restart republishes, by event id.

use iga_eventlog::publish::Downstream;
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;

use crate::Reactor;

pub struct Publishing {
    pub downstream: Downstream,
}

#[async_trait::async_trait]
impl Reactor for Publishing {
    fn name(&self) -> &'static str {
        "publishing"
    }

    async fn react(
        &self,
        event: &RecordedEvent,
        _decoded: &DomainEvent,
    ) -> std::result::Result<(), String> {
        self.downstream
            .publish(event)
            .await
            .map_err(|e| e.to_string())
    }
}
