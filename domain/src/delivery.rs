//! What becomes of an outbound delivery (a webhook call: a provisioning task,
//! or an event for a subscriber) after each attempt: the rule the delivery
//! engine follows, here so it is tested without a network.
//!
//! Following the Standard Webhooks recommendations: a 2xx delivers; 202
//! accepts (a provisioning task stays open until completed through the
//! API); 5xx, 408, 429, a timeout or a refused connection are retried with
//! exponential backoff and jitter until the policy's deadline; any other
//! answer (a 4xx, or a 1xx/3xx the client does not follow) fails at once.
//!
//! [`Delivery`] is the aggregate (stream `delivery-<id>`): requested once,
//! then one `DeliveryAttempted` per attempt and a final `DeliverySucceeded`
//! or `DeliveryFailed`; an admin may retry a failed one. Its id is the
//! `webhook-id` header of every attempt, so a receiver drops repeats.

/// What one attempt got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status.
    Status(u16),
    /// No answer within the outbound timeout.
    Timeout,
    /// No connection (refused, reset, unresolvable).
    Unreachable,
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered (2xx other than 202).
    Delivered,
    /// Accepted for later completion (202).
    Accepted,
    /// Try again at `at` (micros since the epoch).
    Retry { at: i64 },
    /// Given up, with why.
    Failed { reason: String },
}

/// How long and how often a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failed attempt.
    pub first_delay_micros: i64,
    /// The longest pause between two attempts.
    pub max_delay_micros: i64,
    /// No attempt starts later than this after the first one (default 24 h).
    pub give_up_after_micros: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay_micros: 5_000_000,
            max_delay_micros: 3_600_000_000,
            give_up_after_micros: 24 * 3_600_000_000,
        }
    }
}

/// Whether an answer is worth another attempt.
pub fn retryable(answer: Answer) -> bool {
    match answer {
        Answer::Timeout | Answer::Unreachable => true,
        Answer::Status(s) => s >= 500 || s == 408 || s == 429,
    }
}

/// The verdict on attempt number `attempt` (1 for the first) that got
/// `answer` at `now`; the delivery's first attempt was at `first_at`.
/// `jitter` in `[0, 1)` spreads retries of many deliveries apart: the pause
/// is the exponential delay scaled into `[delay / 2, delay)`.
pub fn judge(
    answer: Answer,
    attempt: u32,
    first_at: i64,
    now: i64,
    jitter: f64,
    policy: &RetryPolicy,
) -> Verdict {
    match answer {
        Answer::Status(202) => return Verdict::Accepted,
        Answer::Status(s) if (200..300).contains(&s) => return Verdict::Delivered,
        _ => {}
    }
    let why = match answer {
        Answer::Status(s) => format!("the receiver answered {s}"),
        Answer::Timeout => "no answer within the timeout".to_string(),
        Answer::Unreachable => "the receiver could not be reached".to_string(),
    };
    if !retryable(answer) {
        return Verdict::Failed { reason: why };
    }
    let exponent = attempt.saturating_sub(1).min(30);
    let delay = policy
        .first_delay_micros
        .saturating_mul(1i64 << exponent)
        .min(policy.max_delay_micros);
    let jitter = jitter.clamp(0.0, 0.999_999);
    let pause = delay / 2 + ((delay / 2) as f64 * jitter) as i64;
    let at = now.saturating_add(pause.max(1));
    if at > first_at.saturating_add(policy.give_up_after_micros) {
        return Verdict::Failed {
            reason: format!("{why}; gave up after {attempt} attempts"),
        };
    }
    Verdict::Retry { at }
}

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryStatus {
    #[default]
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub requested: v1::DeliveryRequested,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the first attempt (since the request or the last retry) was made.
    pub first_attempt_at: i64,
    /// When the next attempt is due (0: none).
    pub next_attempt_at: i64,
    pub last_error: String,
    /// Succeeded with a 202: a provisioning task stays open.
    pub accepted: bool,
}

#[derive(Debug, Clone)]
pub enum DeliveryCommand {
    Request(v1::DeliveryRequested),
    /// What attempt `attempt` got at `at`; `jitter` in `[0, 1)`.
    RecordAttempt {
        attempt: u32,
        answer: Answer,
        at: i64,
        jitter: f64,
        policy: RetryPolicy,
    },
    /// An admin tries a failed delivery again.
    Retry,
}

impl Delivery {
    pub fn exists(&self) -> bool {
        !self.requested.delivery_id.is_empty()
    }
}

impl Aggregate for Delivery {
    type Command = DeliveryCommand;
    const TYPE: &'static str = "delivery";

    fn decide(&self, c: &DeliveryCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        let id = self.requested.delivery_id.clone();
        match c {
            DeliveryCommand::Request(r) => Ok(if self.exists() {
                vec![] // requested already: a repeat of the same request
            } else {
                vec![r.clone().into()]
            }),
            _ if !self.exists() => Err(DomainError::NotFound("delivery".into())),
            DeliveryCommand::RecordAttempt {
                attempt,
                answer,
                at,
                jitter,
                policy,
            } => {
                // The report of an attempt already recorded (a redelivery of
                // the engine's own work), or one after the end, changes nothing.
                if self.status != DeliveryStatus::Pending || *attempt <= self.attempts {
                    return Ok(vec![]);
                }
                let first_at = if self.first_attempt_at > 0 {
                    self.first_attempt_at
                } else {
                    *at
                };
                let status = match answer {
                    Answer::Status(s) => u32::from(*s),
                    _ => 0,
                };
                let verdict = judge(*answer, *attempt, first_at, *at, *jitter, policy);
                let (error, next) = match &verdict {
                    Verdict::Retry { at } => (describe(*answer), *at),
                    Verdict::Failed { reason } => (reason.clone(), 0),
                    Verdict::Delivered | Verdict::Accepted => (String::new(), 0),
                };
                let mut events: Vec<DomainEvent> = vec![v1::DeliveryAttempted {
                    delivery_id: id.clone(),
                    attempt: *attempt,
                    status,
                    error,
                    next_attempt_at_micros: next,
                    attempted_at_micros: *at,
                }
                .into()];
                match verdict {
                    Verdict::Delivered | Verdict::Accepted => events.push(
                        v1::DeliverySucceeded {
                            delivery_id: id,
                            status,
                            accepted: verdict == Verdict::Accepted,
                        }
                        .into(),
                    ),
                    Verdict::Failed { reason } => events.push(
                        v1::DeliveryFailed {
                            delivery_id: id,
                            reason,
                        }
                        .into(),
                    ),
                    Verdict::Retry { .. } => {}
                }
                Ok(events)
            }
            DeliveryCommand::Retry => {
                if !ctx.is_admin() {
                    return Err(DomainError::Forbidden(
                        "only an admin retries a delivery".into(),
                    ));
                }
                if self.requested.kind == "provisioning" {
                    // A new delivery, so the task's record stays whole.
                    return Err(DomainError::InvalidTransition(format!(
                        "delivery {id} is a provisioning task's: retry the task (POST /provisioning/tasks/{}/retry)",
                        self.requested.subject_id
                    )));
                }
                match self.status {
                    DeliveryStatus::Failed => {
                        Ok(vec![v1::DeliveryRetried { delivery_id: id }.into()])
                    }
                    DeliveryStatus::Pending => Ok(vec![]),
                    DeliveryStatus::Succeeded => Err(DomainError::InvalidTransition(format!(
                        "delivery {id} succeeded; there is nothing to retry"
                    ))),
                }
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::DeliveryRequested(e) => self.requested = e.clone(),
            DomainEvent::DeliveryAttempted(e) => {
                if self.first_attempt_at == 0 {
                    self.first_attempt_at = e.attempted_at_micros;
                }
                self.attempts = e.attempt;
                self.next_attempt_at = e.next_attempt_at_micros;
                self.last_error = e.error.clone();
            }
            DomainEvent::DeliverySucceeded(e) => {
                self.status = DeliveryStatus::Succeeded;
                self.accepted = e.accepted;
                self.next_attempt_at = 0;
            }
            DomainEvent::DeliveryFailed(e) => {
                self.status = DeliveryStatus::Failed;
                self.next_attempt_at = 0;
                self.last_error = e.reason.clone();
            }
            DomainEvent::DeliveryRetried(_) => {
                self.status = DeliveryStatus::Pending;
                self.attempts = 0;
                self.first_attempt_at = 0;
            }
            _ => {}
        }
        self
    }
}

fn describe(answer: Answer) -> String {
    match answer {
        Answer::Status(s) => format!("the receiver answered {s}"),
        Answer::Timeout => "no answer within the timeout".into(),
        Answer::Unreachable => "the receiver could not be reached".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn two_hundreds_deliver_and_202_accepts() {
        let p = RetryPolicy::default();
        for s in [200, 201, 204, 299] {
            assert_eq!(
                judge(Answer::Status(s), 1, 0, 0, 0.5, &p),
                Verdict::Delivered
            );
        }
        assert_eq!(
            judge(Answer::Status(202), 1, 0, 0, 0.5, &p),
            Verdict::Accepted
        );
    }

    #[test]
    fn client_errors_fail_at_once_and_are_not_retried() {
        let p = RetryPolicy::default();
        for s in [400, 401, 403, 404, 410, 422, 301, 100] {
            assert!(
                matches!(
                    judge(Answer::Status(s), 1, 0, 0, 0.5, &p),
                    Verdict::Failed { .. }
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn server_errors_timeouts_and_refusals_are_retried_later_and_later() {
        let p = RetryPolicy::default();
        let now = 100 * S;
        for answer in [
            Answer::Status(500),
            Answer::Status(503),
            Answer::Status(408),
            Answer::Status(429),
            Answer::Timeout,
            Answer::Unreachable,
        ] {
            let mut last_pause = 0;
            for attempt in 1..=5 {
                let Verdict::Retry { at } = judge(answer, attempt, now, now, 0.0, &p) else {
                    panic!("{answer:?} attempt {attempt}");
                };
                let pause = at - now;
                assert!(pause > last_pause, "{answer:?}: backoff grows");
                last_pause = pause;
            }
        }
        // The first pause is half to all of the first delay, by the jitter.
        let at = |jitter| match judge(Answer::Timeout, 1, now, now, jitter, &p) {
            Verdict::Retry { at } => at - now,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(0.0), p.first_delay_micros / 2);
        assert!(at(0.99) < p.first_delay_micros && at(0.99) > at(0.5));
    }

    #[test]
    fn the_pause_stops_growing_at_the_maximum() {
        let p = RetryPolicy::default();
        match judge(Answer::Status(500), 40, 0, 0, 0.999, &p) {
            Verdict::Retry { at } => assert!(at <= p.max_delay_micros),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retries_end_at_the_deadline() {
        let p = RetryPolicy {
            give_up_after_micros: 60 * S,
            ..RetryPolicy::default()
        };
        // Given a first attempt at 0, when an attempt fails at 59 s, then no
        // retry may start after 60 s: it fails, saying how many were made.
        match judge(Answer::Status(503), 6, 0, 59 * S, 0.5, &p) {
            Verdict::Failed { reason } => assert!(reason.contains("6 attempts"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(Answer::Status(503), 1, 0, 0, 0.5, &p),
            Verdict::Retry { .. }
        ));
    }

    fn requested() -> v1::DeliveryRequested {
        v1::DeliveryRequested {
            delivery_id: "d1".into(),
            webhook_id: "w1".into(),
            kind: "provisioning".into(),
            subject_id: "t1".into(),
            subject_position: 0,
        }
    }

    fn attempt(n: u32, answer: Answer, at: i64) -> DeliveryCommand {
        DeliveryCommand::RecordAttempt {
            attempt: n,
            answer,
            at,
            jitter: 0.0,
            policy: RetryPolicy::default(),
        }
    }

    fn system() -> Context {
        crate::testing::ctx("system", &[])
    }

    #[test]
    fn a_receiver_that_fails_three_times_then_succeeds_is_delivered_once() {
        use crate::testing::given;
        let mut history: Vec<DomainEvent> = vec![requested().into()];
        let mut at = 10 * S;
        for n in 1..=3 {
            let d = history.iter().fold(Delivery::default(), |s, e| s.evolve(e));
            let events = d
                .decide(&attempt(n, Answer::Status(503), at), &system())
                .unwrap();
            assert_eq!(events.len(), 1, "attempt {n}: retried, not ended");
            match &events[0] {
                DomainEvent::DeliveryAttempted(e) => {
                    assert!(e.next_attempt_at_micros > at);
                    at = e.next_attempt_at_micros;
                }
                other => panic!("{other:?}"),
            }
            history.extend(events);
        }
        let d = given::<Delivery>(&history)
            .when(&attempt(4, Answer::Status(200), at), &system())
            .then(&[
                v1::DeliveryAttempted {
                    delivery_id: "d1".into(),
                    attempt: 4,
                    status: 200,
                    error: String::new(),
                    next_attempt_at_micros: 0,
                    attempted_at_micros: at,
                }
                .into(),
                v1::DeliverySucceeded {
                    delivery_id: "d1".into(),
                    status: 200,
                    accepted: false,
                }
                .into(),
            ]);
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Succeeded, 4));
        // A late report of an attempt, or one after the end, changes nothing.
        given::<Delivery>(&history)
            .when(&attempt(2, Answer::Status(200), at), &system())
            .then(&[]);
        assert!(d
            .decide(&attempt(5, Answer::Status(200), at), &system())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_400_fails_for_good_and_an_admin_may_retry_it() {
        use crate::testing::given;
        let event = v1::DeliveryRequested {
            kind: "event".into(),
            ..requested()
        };
        let failed = given::<Delivery>(&[event.into()])
            .when(&attempt(1, Answer::Status(400), S), &system())
            .then(&[
                v1::DeliveryAttempted {
                    delivery_id: "d1".into(),
                    attempt: 1,
                    status: 400,
                    error: "the receiver answered 400".into(),
                    next_attempt_at_micros: 0,
                    attempted_at_micros: S,
                }
                .into(),
                v1::DeliveryFailed {
                    delivery_id: "d1".into(),
                    reason: "the receiver answered 400".into(),
                }
                .into(),
            ]);
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert!(matches!(
            failed.decide(&DeliveryCommand::Retry, &crate::testing::ctx("sam", &[])),
            Err(DomainError::Forbidden(_))
        ));
        let retried = failed
            .decide(
                &DeliveryCommand::Retry,
                &crate::testing::ctx("root", &["admin"]),
            )
            .unwrap();
        let again = retried.iter().fold(failed.clone(), |s, e| s.evolve(e));
        assert_eq!((again.status, again.attempts), (DeliveryStatus::Pending, 0));
        // A task's delivery is retried through its task: a new delivery.
        let task_delivery = Delivery {
            requested: v1::DeliveryRequested {
                kind: "provisioning".into(),
                ..failed.requested.clone()
            },
            ..failed
        };
        assert!(matches!(
            task_delivery.decide(
                &DeliveryCommand::Retry,
                &crate::testing::ctx("root", &["admin"])
            ),
            Err(DomainError::InvalidTransition(_))
        ));
    }

    #[test]
    fn a_202_is_a_success_that_leaves_the_task_open() {
        use crate::testing::given;
        let d = given::<Delivery>(&[requested().into()])
            .when(&attempt(1, Answer::Status(202), S), &system())
            .then(&[
                v1::DeliveryAttempted {
                    delivery_id: "d1".into(),
                    attempt: 1,
                    status: 202,
                    error: String::new(),
                    next_attempt_at_micros: 0,
                    attempted_at_micros: S,
                }
                .into(),
                v1::DeliverySucceeded {
                    delivery_id: "d1".into(),
                    status: 202,
                    accepted: true,
                }
                .into(),
            ]);
        assert_eq!(d.status, DeliveryStatus::Succeeded);
    }
}
