//! The IdempotencyKey aggregate: remembers which request first used a key,
//! so that a repeat of the same request is answered as the first one, and a
//! different request under the same key is refused (422) instead of being
//! silently treated as a retry.

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub request_sha256_hex: Option<String>,
}

#[derive(Debug, Clone)]
pub struct UseKey {
    pub request_sha256_hex: String,
}

impl Aggregate for IdempotencyKey {
    type Command = UseKey;
    const TYPE: &'static str = "idempotency";

    fn decide(&self, c: &UseKey, _ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        match &self.request_sha256_hex {
            None => Ok(vec![v1::IdempotencyKeyUsed {
                request_sha256_hex: c.request_sha256_hex.clone(),
            }
            .into()]),
            Some(first) if first == &c.request_sha256_hex => Ok(vec![]),
            Some(_) => Err(DomainError::Unprocessable(
                "this Idempotency-Key was used for a different request".into(),
            )),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::IdempotencyKeyUsed(e) = event {
            self.request_sha256_hex = Some(e.request_sha256_hex.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    #[test]
    fn same_request_repeats_other_request_is_refused() {
        let used: DomainEvent = v1::IdempotencyKeyUsed {
            request_sha256_hex: "a".into(),
        }
        .into();
        let c = ctx("u", &[]);
        given::<IdempotencyKey>(&[])
            .when(
                &UseKey {
                    request_sha256_hex: "a".into(),
                },
                &c,
            )
            .then(std::slice::from_ref(&used));
        given::<IdempotencyKey>(std::slice::from_ref(&used))
            .when(
                &UseKey {
                    request_sha256_hex: "a".into(),
                },
                &c,
            )
            .then(&[]);
        given::<IdempotencyKey>(&[used])
            .when(
                &UseKey {
                    request_sha256_hex: "b".into(),
                },
                &c,
            )
            .then_error(DomainError::Unprocessable(
                "this Idempotency-Key was used for a different request".into(),
            ));
    }
}
