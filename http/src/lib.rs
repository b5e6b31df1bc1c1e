//! HTTP plumbing shared by the command and query services, so neither copies
//! the other: bearer-token authentication ([`auth`]), RFC 9457 problem
//! details ([`problem`]), the consistency-token header, and time formatting.

pub mod auth;
pub mod problem;

pub use auth::{Authenticator, Principal};
pub use problem::Problem;

/// Answered on every write: the log position of the write's last event.
/// Sent back on a read, it makes the read wait until the read models include it.
pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

/// RFC 3339 UTC text of a microsecond Unix timestamp.
pub fn rfc3339(unix_micros: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(unix_micros as i128 * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(
            super::rfc3339(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }
}
