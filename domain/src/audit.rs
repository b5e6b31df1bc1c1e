//! The verifiable log's rules: when the notary signs a checkpoint (a signed
//! tree head) and who may sign or ask for one.
//!
//! Checkpoints live on one stream (`audit-checkpoints`), so two notaries
//! signing at once are ordered by the log: the second finds the tree size
//! already signed and does nothing. The cryptography (hashing the tree,
//! Ed25519) is not a rule and lives outside the domain; the domain checks
//! only what a checkpoint must carry.

use iga_schemas::v1;

use crate::provisioning::SYSTEM;
use crate::{Aggregate, Context, DomainError, DomainEvent};

/// The one stream of checkpoints: `audit-checkpoints`.
pub const STREAM_ID: &str = "checkpoints";
/// Longest reason a checkpoint request may give.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditCheckpoints {
    /// The largest tree size signed so far (0: none).
    pub signed_size: u64,
    pub signed_at_micros: i64,
}

#[derive(Debug, Clone)]
pub enum CheckpointCommand {
    /// The notary's signed tree head (system only).
    Sign(Box<v1::AuditCheckpointSigned>),
    /// An admin or auditor asks for a checkpoint now.
    Request { reason: String },
}

impl Aggregate for AuditCheckpoints {
    type Command = CheckpointCommand;
    const TYPE: &'static str = "audit";

    fn decide(
        &self,
        command: &CheckpointCommand,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        match command {
            CheckpointCommand::Sign(head) => {
                if ctx.actor_id != SYSTEM {
                    return Err(DomainError::Forbidden(
                        "only the service's notary signs checkpoints".into(),
                    ));
                }
                if head.root_hash.len() != 32 {
                    return Err(DomainError::invalid("rootHash", "must be 32 bytes"));
                }
                if head.public_key.len() != 32 {
                    return Err(DomainError::invalid("publicKey", "must be 32 bytes"));
                }
                if head.signature.len() != 64 {
                    return Err(DomainError::invalid("signature", "must be 64 bytes"));
                }
                if head.origin.trim().is_empty() || head.origin.contains('\n') {
                    return Err(DomainError::invalid("origin", "one non-blank line"));
                }
                // Signed already (another notary, or a retry): nothing to add.
                if head.tree_size <= self.signed_size {
                    return Ok(vec![]);
                }
                Ok(vec![DomainEvent::AuditCheckpointSigned((**head).clone())])
            }
            CheckpointCommand::Request { reason } => {
                if !(ctx.is_admin() || ctx.actor_roles.iter().any(|r| r == "auditor")) {
                    return Err(DomainError::Forbidden(
                        "only admins and auditors ask for checkpoints".into(),
                    ));
                }
                if reason.chars().count() > MAX_REASON_CHARS {
                    return Err(DomainError::unsatisfiable(
                        "reason",
                        format!("at most {MAX_REASON_CHARS} characters"),
                    ));
                }
                Ok(vec![v1::AuditCheckpointRequested {
                    reason: reason.trim().to_string(),
                }
                .into()])
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::AuditCheckpointSigned(e) = event {
            if e.tree_size > self.signed_size {
                self.signed_size = e.tree_size;
                self.signed_at_micros = e.signed_at_micros;
            }
        }
        self
    }
}

/// What the notary knows when it considers signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFacts {
    /// Leaves up to and including the last event that is not itself a
    /// checkpoint: a checkpoint covering this many covers everything said.
    pub content_size: u64,
    /// The largest tree size signed (0: none).
    pub signed_size: u64,
    /// When that was signed, or (before the first) when the notary started:
    /// the period runs from then.
    pub signed_at_micros: i64,
    /// Whether a checkpoint request is in the tree beyond `signed_size`.
    pub requested: bool,
    pub now_micros: i64,
    /// The period between checkpoints.
    pub interval_micros: i64,
}

/// Whether the notary signs a checkpoint now: only when something other
/// than checkpoints was logged since the last one (a checkpoint is a leaf
/// too, and signing for it alone would never stop), and then at once when
/// asked, else once the period has passed.
pub fn checkpoint_due(f: &TreeFacts) -> bool {
    f.content_size > f.signed_size
        && (f.requested || f.now_micros.saturating_sub(f.signed_at_micros) >= f.interval_micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn head(size: u64) -> v1::AuditCheckpointSigned {
        v1::AuditCheckpointSigned {
            tree_size: size,
            root_hash: vec![1; 32],
            signed_at_micros: 5,
            origin: "iga".into(),
            public_key: vec![2; 32],
            key_id: "abcd0123".into(),
            signature: vec![3; 64],
        }
    }

    fn sign(size: u64) -> CheckpointCommand {
        CheckpointCommand::Sign(Box::new(head(size)))
    }

    #[test]
    fn given_no_checkpoint_when_the_system_signs_then_it_is_recorded() {
        given::<AuditCheckpoints>(&[])
            .when(&sign(10), &ctx(SYSTEM, &[]))
            .then(&[head(10).into()]);
    }

    #[test]
    fn given_a_checkpoint_when_a_size_already_covered_is_signed_then_nothing_happens() {
        let signed: DomainEvent = head(10).into();
        for size in [1, 10] {
            given::<AuditCheckpoints>(std::slice::from_ref(&signed))
                .when(&sign(size), &ctx(SYSTEM, &[]))
                .then(&[]);
        }
        given::<AuditCheckpoints>(&[signed])
            .when(&sign(11), &ctx(SYSTEM, &[]))
            .then(&[head(11).into()]);
    }

    #[test]
    fn nobody_but_the_system_signs_not_even_an_admin() {
        for (who, roles) in [
            ("root", vec!["admin"]),
            ("eve", vec!["auditor"]),
            ("sam", vec![]),
        ] {
            given::<AuditCheckpoints>(&[])
                .when(&sign(3), &ctx(who, &roles))
                .then_error(DomainError::Forbidden(
                    "only the service's notary signs checkpoints".into(),
                ));
        }
    }

    #[test]
    fn a_checkpoint_must_carry_a_whole_hash_key_and_signature() {
        let mut h = head(3);
        h.signature.pop();
        given::<AuditCheckpoints>(&[])
            .when(&CheckpointCommand::Sign(Box::new(h)), &ctx(SYSTEM, &[]))
            .then_error(DomainError::invalid("signature", "must be 64 bytes"));
        let mut h = head(3);
        h.origin = "two\nlines".into();
        given::<AuditCheckpoints>(&[])
            .when(&CheckpointCommand::Sign(Box::new(h)), &ctx(SYSTEM, &[]))
            .then_error(DomainError::invalid("origin", "one non-blank line"));
    }

    #[test]
    fn admins_and_auditors_ask_for_a_checkpoint_others_may_not() {
        let ask = CheckpointCommand::Request {
            reason: " quarterly ".into(),
        };
        let asked: DomainEvent = v1::AuditCheckpointRequested {
            reason: "quarterly".into(),
        }
        .into();
        given::<AuditCheckpoints>(&[])
            .when(&ask, &ctx("root", &["admin"]))
            .then(std::slice::from_ref(&asked));
        given::<AuditCheckpoints>(&[])
            .when(&ask, &ctx("eve", &["auditor"]))
            .then(&[asked]);
        given::<AuditCheckpoints>(&[])
            .when(&ask, &ctx("sam", &[]))
            .then_error(DomainError::Forbidden(
                "only admins and auditors ask for checkpoints".into(),
            ));
        given::<AuditCheckpoints>(&[])
            .when(
                &CheckpointCommand::Request {
                    reason: "x".repeat(MAX_REASON_CHARS + 1),
                },
                &ctx("root", &["admin"]),
            )
            .then_error(DomainError::unsatisfiable(
                "reason",
                format!("at most {MAX_REASON_CHARS} characters"),
            ));
    }

    fn facts() -> TreeFacts {
        TreeFacts {
            content_size: 10,
            signed_size: 8,
            signed_at_micros: 1_000,
            requested: false,
            now_micros: 1_500,
            interval_micros: 1_000,
        }
    }

    #[test]
    fn a_checkpoint_is_due_after_the_period_or_at_once_when_asked() {
        assert!(!checkpoint_due(&facts()));
        assert!(checkpoint_due(&TreeFacts {
            now_micros: 2_000,
            ..facts()
        }));
        assert!(checkpoint_due(&TreeFacts {
            requested: true,
            ..facts()
        }));
        // The first one: a period after the notary started, not at once
        // (a restart does not sign).
        assert!(!checkpoint_due(&TreeFacts {
            signed_size: 0,
            ..facts()
        }));
    }

    #[test]
    fn nothing_new_but_checkpoints_means_no_checkpoint_however_long_or_asked() {
        let quiet = TreeFacts {
            content_size: 8,
            requested: true,
            now_micros: i64::MAX,
            ..facts()
        };
        assert!(!checkpoint_due(&quiet));
    }
}
