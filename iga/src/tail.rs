//! `iga events tail`: prints the events published downstream as they arrive,
//! one JSON object per line, through an ordered consumer (nothing durable is
//! left on the server).

use std::io::Write;

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use futures::StreamExt;
use iga_eventlog::publish::DownstreamConfig;
use iga_eventlog::EventEnvelope;
use prost::Message;

use crate::cli::anyhow_like::Result;
use crate::cli::TailArgs;

pub async fn tail(args: TailArgs) -> Result<()> {
    let config = DownstreamConfig::from_url(&args.publish)?;
    let name = config.nats.describe();
    let client = config
        .nats
        .connect_client()
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&config.stream).await.map_err(|e| {
        format!(
            "{name}: stream {}: {e} (is anything publishing to it?)",
            config.stream
        )
    })?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: args
                .subject
                .clone()
                .unwrap_or_else(|| format!("{}.>", config.subject_prefix)),
            // Published sequences are not log positions: read from the start
            // and skip up to `--after`.
            deliver_policy: match args.after {
                Some(_) => DeliverPolicy::All,
                None => DeliverPolicy::New,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| format!("{name}: cannot consume: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("{name}: cannot consume: {e}"))?;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    while let Some(m) = messages.next().await {
        let m = m.map_err(|e| format!("{name}: {e}"))?;
        let header = |k: &str| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().to_string())
        };
        let position: u64 = header("Iga-Position")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if args.after.is_some_and(|after| position <= after) {
            continue;
        }
        let env = EventEnvelope::decode(m.payload.as_ref())
            .map_err(|e| format!("published event at {position} does not decode: {e}"))?;
        let event = env.decode_event().map(|d| d.to_json()).unwrap_or_default();
        let line = serde_json::json!({
            "position": position,
            "subject": m.subject.as_str(),
            "eventId": env.event_id,
            "stream": env.stream_id,
            "version": env.stream_version,
            "eventType": env.event_type,
            "schemaVersion": env.schema_version,
            "occurredAtUnixMicros": env.occurred_at_unix_micros,
            "actorId": env.actor_id,
            "event": event,
        });
        let mut out = stdout.lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            break;
        }
    }
    Ok(())
}
