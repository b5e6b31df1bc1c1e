//! What becomes of an outbound delivery (a webhook call: a provisioning task,
//! or an event for a subscriber) after each attempt: the rule the delivery
//! engine follows, here so it is tested without a network.
//!
//! Following the Standard Webhooks recommendations: a 2xx delivers; 202
//! accepts (a provisioning task stays open until completed through the
//! API); 5xx, 408, 429, a timeout or a refused connection are retried with
//! exponential backoff and jitter until the policy's deadline; any other
//! answer (a 4xx, or a 1xx/3xx the client does not follow) fails at once.

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
}
