//! Upcasters: rewrite the bytes of an older schema version of an event into
//! the current version before decoding.
//!
//! Every event is at version 1 today, so there is nothing to rewrite yet. When
//! a payload changes incompatibly, bump its version in `lib.rs`, keep its old
//! bytes in `tests/fixtures/`, and add a case here that maps
//! `(event_type, old_version)` to the new encoding.

use std::borrow::Cow;

/// Returns the payload in the current schema version of `event_type`.
// A single arm today; the match is where each rewrite will go.
#[allow(clippy::match_single_binding)]
pub fn upcast<'a>(event_type: &str, schema_version: u32, payload: &'a [u8]) -> Cow<'a, [u8]> {
    match (event_type, schema_version) {
        // Example of the shape a rewrite takes:
        // ("iga.v1.UserCreated", 1) => Cow::Owned(v1_to_v2(payload)),
        _ => Cow::Borrowed(payload),
    }
}
