//! [`CloudEvent`]: an event as an HTTP subscriber receives it, in the
//! CloudEvents 1.0 JSON format (structured mode, `application/cloudevents+json`).
//! `id` is the event id (what a subscriber deduplicates on: delivery is at
//! least once), `type` the event type, `subject` the aggregate stream,
//! `time` when it was recorded, `data` the event's JSON view without secrets.

use iga_schemas::{DecodeError, EventEnvelope};
use serde::Serialize;

/// One event, as CloudEvents 1.0 JSON.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: &'static str,
    /// The event id.
    pub id: String,
    /// Where events come from: this service (`--public-url`, else `urn:iga`).
    pub source: String,
    /// The event type, e.g. `iga.v1.GrantIssued`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate stream the event belongs to, e.g. `request-<id>`.
    pub subject: String,
    /// RFC 3339, when the event was recorded.
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: &'static str,
    /// The event's position in the log (an extension attribute).
    pub igaposition: u64,
    /// The event's fields, without secrets.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl CloudEvent {
    /// The CloudEvent of the event stored at `position` in `envelope`.
    pub fn of(envelope: &EventEnvelope, position: u64, source: &str) -> Result<Self, DecodeError> {
        let event = envelope.decode_event()?;
        Ok(CloudEvent {
            specversion: "1.0",
            id: envelope.event_id.clone(),
            source: source.to_string(),
            event_type: envelope.event_type.clone(),
            subject: envelope.stream_id.clone(),
            time: crate::rfc3339(envelope.occurred_at_unix_micros),
            datacontenttype: "application/json",
            igaposition: position,
            data: event.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_schemas::{v1, DomainEvent};

    #[test]
    fn an_event_becomes_a_cloud_event_without_its_secrets() {
        let event: DomainEvent = v1::ApiTokenIssued {
            user_id: "u1".into(),
            token_id: "t1".into(),
            token_sha256_hex: "ab".repeat(32),
            ..Default::default()
        }
        .into();
        let envelope = EventEnvelope {
            event_id: "e1".into(),
            stream_id: "user-u1".into(),
            stream_version: 3,
            occurred_at_unix_micros: 1_700_000_000_000_000,
            event_type: event.event_type().into(),
            schema_version: event.schema_version(),
            payload: event.encode_payload(),
            ..Default::default()
        };
        let ce = CloudEvent::of(&envelope, 42, "urn:iga").unwrap();
        let json = serde_json::to_value(&ce).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], "e1");
        assert_eq!(json["type"], "iga.v1.ApiTokenIssued");
        assert_eq!(json["subject"], "user-u1");
        assert_eq!(json["time"], "2023-11-14T22:13:20Z");
        assert_eq!(json["igaposition"], 42);
        assert_eq!(json["data"]["tokenId"], "t1");
        assert!(
            !json.to_string().contains(&"ab".repeat(32)),
            "the token's hash stays in the service"
        );
    }
}
