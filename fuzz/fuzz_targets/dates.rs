//! Dates and durations as callers send them: RFC 3339 timestamps and
//! protobuf-JSON durations parse or are refused, never panic; what parses
//! renders back to a timestamp that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(micros) = iga_http::parse_rfc3339_micros("at", text) {
        let rendered = iga_http::rfc3339(micros);
        let again = iga_http::parse_rfc3339_micros("at", &rendered).expect("a rendered time parses");
        assert_eq!(again, micros, "{text} -> {rendered}");
    }
    if let Some(seconds) = iga_api::parse_duration_seconds(text) {
        assert!(seconds >= 0);
        let rendered = format!("{seconds}s");
        assert_eq!(iga_api::parse_duration_seconds(&rendered), Some(seconds));
    }
});
