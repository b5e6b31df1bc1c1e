//! `targetFilter` as callers send it: any JSON parses into a bounded filter
//! or a clear error, and a parsed filter matches any document without a panic.
#![no_main]

use iga_http::target_filter::TargetFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(node) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(filter) = TargetFilter::parse_value(&node) {
        let doc = serde_json::json!({
            "id": "r1", "user": {"username": "ada", "id": "u1"},
            "decision": {"status": "in-progress", "phases": [{"name": "Owners", "quorum": 2,
                "approvals": [{"userId": "o1"}]}]},
            "metadata": {"createdDate": "2026-11-01T00:00:00Z"}
        });
        let _ = filter.matches(&doc);
        let _ = filter.matches(&node);
    }
});
