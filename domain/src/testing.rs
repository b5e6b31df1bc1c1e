//! Given/when/then for aggregates:
//!
//! ```ignore
//! given::<User>(&[created]).when(&cmd, &ctx).then(&[expected_event]);
//! given::<User>(&[]).when(&cmd, &ctx).then_error(DomainError::NotFound(..));
//! ```

use crate::{Aggregate, Context, DomainError, DomainEvent};

pub struct Given<A: Aggregate> {
    state: A,
}

pub struct When<A: Aggregate> {
    state: A,
    outcome: Result<Vec<DomainEvent>, DomainError>,
}

/// Starts a scenario from the state these events fold into.
pub fn given<A: Aggregate>(events: &[DomainEvent]) -> Given<A> {
    Given {
        state: events.iter().fold(A::default(), |s, e| s.evolve(e)),
    }
}

impl<A: Aggregate> Given<A> {
    pub fn when(self, command: &A::Command, ctx: &Context) -> When<A> {
        let outcome = self.state.decide(command, ctx);
        When {
            state: self.state,
            outcome,
        }
    }
}

impl<A: Aggregate> When<A> {
    /// Asserts the command produced exactly these events; returns the new state.
    #[track_caller]
    pub fn then(self, expected: &[DomainEvent]) -> A {
        match self.outcome {
            Ok(events) => {
                assert_eq!(events, expected, "events produced");
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    /// Asserts the command was accepted, whatever it produced.
    #[track_caller]
    pub fn state_for_test_ok(self) -> Vec<DomainEvent> {
        match self.outcome {
            Ok(events) => events,
            Err(e) => panic!("expected the command to be accepted, got {e:?}"),
        }
    }

    /// Asserts the command was refused with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.outcome {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }
}

/// A context for tests: actor `actor` with `roles`, at a fixed instant.
pub fn ctx(actor: &str, roles: &[&str]) -> Context {
    Context {
        actor_id: actor.to_string(),
        actor_roles: roles.iter().map(|r| r.to_string()).collect(),
        now_unix_micros: 1_700_000_000_000_000,
    }
}

impl<A: Aggregate> Given<A> {
    /// The folded state, for assertions that need more than equality.
    pub fn state_for_test(self) -> A {
        self.state
    }
}
