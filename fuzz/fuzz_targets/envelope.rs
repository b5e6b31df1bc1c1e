//! Stored and published bytes: an envelope from the log or from NATS is
//! decoded, its event decoded (through the upcasters), rendered for the
//! audit API and stripped of secrets, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = iga_schemas::EventEnvelope::decode(data) else {
        return;
    };
    let _ = envelope.aggregate_type();
    let stripped = envelope.without_secrets();
    if let Ok(event) = envelope.decode_event() {
        let json = event.to_json();
        // Whatever the payload, no token hash reaches the JSON.
        if let iga_schemas::DomainEvent::ApiTokenIssued(e) = &event {
            if !e.token_sha256_hex.is_empty() {
                assert!(!json.to_string().contains(&e.token_sha256_hex));
            }
        }
        // Stripping is stable: a stripped envelope has nothing left to strip.
        if let Ok(again) = stripped.decode_event() {
            assert!(!again.has_secrets());
        }
    }
});
