//! The TokenUse aggregate: when an API token last authenticated a request,
//! recorded at most once per [`RECORD_EVERY`] (so `lastUsedAt` costs one
//! event an hour per busy token, not one per request), on a stream of its
//! own (`tokenuse-<tokenId>`) so that use never moves the user's version.

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// How coarse `lastUsedAt` is.
pub const RECORD_EVERY_MICROS: i64 = 3_600_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenUse {
    /// When a use was last recorded (0: never).
    pub last_recorded_micros: i64,
}

#[derive(Debug, Clone)]
pub struct RecordUse {
    pub user_id: String,
    pub token_id: String,
    pub at_micros: i64,
}

impl Aggregate for TokenUse {
    type Command = RecordUse;
    const TYPE: &'static str = "tokenuse";

    fn decide(&self, c: &RecordUse, _ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        if self.last_recorded_micros != 0
            && c.at_micros < self.last_recorded_micros + RECORD_EVERY_MICROS
        {
            return Ok(vec![]);
        }
        Ok(vec![v1::ApiTokenUsed {
            user_id: c.user_id.clone(),
            token_id: c.token_id.clone(),
            used_at_micros: c.at_micros,
        }
        .into()])
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::ApiTokenUsed(e) = event {
            self.last_recorded_micros = e.used_at_micros;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn used(at: i64) -> DomainEvent {
        v1::ApiTokenUsed {
            user_id: "u1".into(),
            token_id: "t1".into(),
            used_at_micros: at,
        }
        .into()
    }

    fn record(at: i64) -> RecordUse {
        RecordUse {
            user_id: "u1".into(),
            token_id: "t1".into(),
            at_micros: at,
        }
    }

    #[test]
    fn given_a_recent_use_when_used_again_then_nothing_is_recorded_until_the_hour_is_up() {
        let system = ctx("system", &[]);
        given::<TokenUse>(&[])
            .when(&record(10), &system)
            .then(&[used(10)]);
        given::<TokenUse>(&[used(10)])
            .when(&record(10 + RECORD_EVERY_MICROS - 1), &system)
            .then(&[]);
        given::<TokenUse>(&[used(10)])
            .when(&record(10 + RECORD_EVERY_MICROS), &system)
            .then(&[used(10 + RECORD_EVERY_MICROS)]);
    }
}
