//! Publishing every event to downstream subscribers on NATS JetStream, on
//! subjects by aggregate type and event type, whichever log the service runs
//! on. `schemas/README.md` is the consumer's documentation.
//!
//! Subject: `<prefix>.<aggregate type>.<event name>`, e.g.
//! `iga.events.request.RequestApproved` (prefix `iga.events`; the event name
//! is the event type without its `iga.v1.` package). Body: the protobuf
//! `EventEnvelope` (with `stream_id` and `stream_version`), without secrets
//! (`EventEnvelope::without_secrets`: no token hashes). Headers:
//! `Nats-Msg-Id` (the event id: JetStream drops a republished duplicate, and
//! consumers deduplicate on it), `Iga-Position`, `Iga-Stream`,
//! `Iga-Stream-Version`, `Iga-Event-Type`, `Iga-Schema-Version`.
//!
//! The events are stored in their own stream (default `IGA_PUBLISHED`), in
//! log order, so a consumer can replay from any point and sees each
//! aggregate's events in order.

use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream;
use prost::Message;

use crate::jetstream::JetStreamConfig;
use crate::{EventLogError, RecordedEvent, Result};

/// Where published events go.
#[derive(Debug, Clone)]
pub struct DownstreamConfig {
    /// The NATS servers (and stream replicas) to publish to.
    pub nats: JetStreamConfig,
    /// The stream the published events are kept in.
    pub stream: String,
    /// The subject prefix.
    pub subject_prefix: String,
}

impl DownstreamConfig {
    /// From a URL like the event log's: `nats://host:4222[?replicas=3&stream=..&prefix=..]`;
    /// `stream` defaults to `IGA_PUBLISHED`, `prefix` to `iga.events`.
    pub fn from_url(url: &str) -> Result<Self> {
        let mut nats = JetStreamConfig::from_url(url)?;
        let has = |key: &str| {
            url.split_once('?')
                .map(|(_, q)| q.split('&').any(|p| p.starts_with(&format!("{key}="))))
                .unwrap_or(false)
        };
        let stream = if has("stream") {
            nats.stream.clone()
        } else {
            "IGA_PUBLISHED".to_string()
        };
        let subject_prefix = if has("prefix") {
            nats.subject_prefix.clone()
        } else {
            "iga.events".to_string()
        };
        nats.stream = stream.clone();
        nats.subject_prefix = subject_prefix.clone();
        Ok(DownstreamConfig {
            nats,
            stream,
            subject_prefix,
        })
    }
}

/// The subject an event is published on.
pub fn subject_for(prefix: &str, event: &RecordedEvent) -> String {
    let env = &event.envelope;
    let name = env.event_type.rsplit('.').next().unwrap_or("");
    format!("{prefix}.{}.{name}", env.aggregate_type())
}

/// A connection publishing events downstream.
pub struct Downstream {
    js: jetstream::Context,
    config: DownstreamConfig,
}

impl Downstream {
    /// Connects and makes sure the stream exists.
    pub async fn connect(config: DownstreamConfig) -> Result<Self> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            EventLogError::Unavailable(format!(
                "downstream {}: {what}: {e}",
                config.nats.describe()
            ))
        };
        let client = config.nats.connect_client().await.map_err(|e| match e {
            EventLogError::Unavailable(m) => {
                EventLogError::Unavailable(format!("downstream {}: {m}", config.nats.describe()))
            }
            other => other,
        })?;
        let js = jetstream::new(client);
        let wanted = jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            num_replicas: config.nats.replicas,
            duplicate_window: config.nats.duplicate_window,
            allow_direct: true,
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + config.nats.timeout;
        loop {
            let attempt_ends = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
            match tokio::time::timeout_at(attempt_ends, js.get_or_create_stream(wanted.clone()))
                .await
            {
                Ok(Ok(_)) => break,
                Ok(Err(_)) | Err(_) if attempt_ends < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(Err(e)) => return Err(unavailable("cannot open the stream", &e)),
                Err(e) => return Err(unavailable("JetStream did not answer", &e)),
            }
        }
        Ok(Downstream { js, config })
    }

    /// Publishes `event` and waits until JetStream stored it (or knew it).
    pub async fn publish(&self, event: &RecordedEvent) -> Result<()> {
        let env = &event.envelope;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", env.event_id.as_str());
        headers.insert("Iga-Position", event.position.to_string().as_str());
        headers.insert("Iga-Stream", env.stream_id.as_str());
        headers.insert(
            "Iga-Stream-Version",
            env.stream_version.to_string().as_str(),
        );
        headers.insert("Iga-Event-Type", env.event_type.as_str());
        headers.insert(
            "Iga-Schema-Version",
            env.schema_version.to_string().as_str(),
        );
        let subject = subject_for(&self.config.subject_prefix, event);
        let failed = |e: &dyn std::fmt::Display| {
            EventLogError::Unavailable(format!(
                "downstream {}: publish: {e}",
                self.config.nats.describe()
            ))
        };
        self.js
            // Subscribers get no secrets (a token's hash) whatever the log holds.
            .publish_with_headers(
                subject,
                headers,
                env.without_secrets().encode_to_vec().into(),
            )
            .await
            .map_err(|e| failed(&e))?
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
    }

    /// The configuration this publishes with.
    pub fn config(&self) -> &DownstreamConfig {
        &self.config
    }
}
