//! Every event type at every schema version this build might read: decoding
//! (with the upcasters) answers an event or an error, never a panic, and a
//! decoded event encodes to bytes that decode to the same event.
#![no_main]

use iga_schemas::DomainEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((&version, payload)) = rest.split_first() else {
        return;
    };
    let types = DomainEvent::ALL_TYPES;
    let (event_type, _) = types[selector as usize % types.len()];
    let version = u32::from(version % 4);
    let upcast = iga_schemas::upcast::upcast(event_type, version, payload);
    let _ = upcast.len();
    if let Ok(event) = DomainEvent::decode(event_type, version, payload) {
        let bytes = event.encode_payload();
        let again = DomainEvent::decode(event.event_type(), event.schema_version(), &bytes)
            .expect("an encoded event decodes");
        assert_eq!(again, event);
        let _ = event.to_json();
    }
});
