//! The business rules, as pure functions and nothing else: no async runtime,
//! no IO, no storage, no HTTP.
//!
//! Every aggregate implements [`Aggregate`]: `decide(&state, command, &ctx)`
//! answers the events a command produces (or why it is refused), and
//! `evolve(state, &event)` folds an event into the state. The services load
//! events, call these two functions and store what they return. Tests are
//! given/when/then over events ([`testing`]).

pub mod access;
pub mod app;
pub mod audit;
pub mod claim;
pub mod delivery;
pub mod eligibility;
pub mod entitlement;
pub mod fulfilment;
pub mod idempotency;
pub mod policy;
pub mod provisioning;
pub mod request;
pub mod resource;
pub mod review;
pub mod roster;
pub mod routing;
pub mod testing;
pub mod text;
pub mod token_use;
pub mod user;
pub mod username;
pub mod webhook;

pub use iga_schemas::DomainEvent;

/// Who issued a command, and when. Everything a rule may need that is not in
/// the aggregate's own events is passed in here, so `decide` stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub now_unix_micros: i64,
}

impl Context {
    pub fn is_admin(&self) -> bool {
        self.actor_roles.iter().any(|r| r == "admin")
    }
}

/// Why a command was refused. Services map each kind to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The aggregate does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The aggregate exists already (409).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The command is malformed or breaks a field rule (400).
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// The current state does not allow this transition (409).
    #[error("{0}")]
    InvalidTransition(String),
    /// The actor may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Well-formed, but cannot be processed as sent (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Every field is well-formed, but together, or at this moment, they
    /// make no sense: a date already past, a policy without steps that does
    /// not auto-approve, a quorum larger than its approvers (422, naming the
    /// field). Unlike `Invalid`, no schema of the request can rule it out.
    #[error("invalid {field}: {message}")]
    Unsatisfiable { field: String, message: String },
}

impl DomainError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn unsatisfiable(field: &str, message: impl Into<String>) -> Self {
        DomainError::Unsatisfiable {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// An event-sourced aggregate: its state is the fold of its events.
pub trait Aggregate: Default + Clone + std::fmt::Debug {
    type Command: std::fmt::Debug;
    /// Stream prefix: the stream of aggregate `id` is `"{TYPE}-{id}"`.
    const TYPE: &'static str;

    /// The events `command` produces on this state, or why it is refused.
    /// Returning no events means "already done" (an idempotent no-op).
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError>;

    /// This state with `event` applied. Events not of this aggregate leave it unchanged.
    fn evolve(self, event: &DomainEvent) -> Self;

    /// The stream holding aggregate `id`.
    fn stream_id(id: &str) -> String {
        format!("{}-{}", Self::TYPE, id)
    }
}
