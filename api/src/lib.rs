//! The API's object shapes, in one place: what the services answer (a write
//! answers the object it wrote, a read answers it from the read models), with
//! their OpenAPI schemas, and the folds that render a request and a grant
//! from their events. No storage, no HTTP: the read models store these
//! shapes, and both services serialize them.

mod cloud_event;
mod grant;
pub mod json;
mod objects;
mod request;
mod review;
mod task;

pub use cloud_event::CloudEvent;
pub use grant::{Grant, GrantApproval, GrantView};
pub use objects::*;
pub use request::*;
pub use review::{
    RequireJustification, Review, ReviewComment, ReviewDecision, ReviewItem, ReviewProgress,
    ReviewScope, ReviewerRule,
};
pub use task::ProvisioningTask;

use time as time_crate;

/// RFC 3339 UTC text of a microsecond timestamp.
pub fn rfc3339(micros: i64) -> String {
    let t = time_crate::OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .unwrap_or(time_crate::OffsetDateTime::UNIX_EPOCH);
    t.format(&time_crate::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The instant an RFC 3339 timestamp stands for, if it is one.
pub fn parse_rfc3339(timestamp: &str) -> Option<time_crate::OffsetDateTime> {
    time_crate::OffsetDateTime::parse(
        timestamp,
        &time_crate::format_description::well_known::Rfc3339,
    )
    .ok()
}
