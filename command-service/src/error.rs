//! Why a command failed, and the HTTP problem each kind becomes.

use iga_domain::DomainError;
use iga_eventlog::EventLogError;
use iga_http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("stream {stream} kept changing under concurrent commands; try again")]
    TooMuchContention { stream: String },
    #[error(transparent)]
    EventLog(#[from] EventLogError),
    #[error("If-Match names version {expected}, but the current version is {actual}")]
    PreconditionFailed { expected: u64, actual: u64 },
    #[error("stored event cannot be decoded: {0}")]
    Decode(String),
}

impl CommandError {
    /// As a problem, naming the aggregate when it is the aggregate itself
    /// that is missing ("app 0190… not found" rather than "app not found").
    pub fn for_aggregate(self, kind: &str, id: &str) -> Problem {
        match self {
            CommandError::Domain(DomainError::NotFound(what)) if what == kind => {
                Problem::not_found(format!("{kind} {id} not found"))
            }
            other => other.into(),
        }
    }
}

impl From<CommandError> for Problem {
    fn from(e: CommandError) -> Problem {
        match e {
            CommandError::Domain(d) => match d {
                DomainError::NotFound(_) => Problem::not_found(d.to_string()),
                DomainError::AlreadyExists(_) | DomainError::InvalidTransition(_) => {
                    Problem::conflict(d.to_string())
                }
                DomainError::Invalid {
                    ref field,
                    ref message,
                } => Problem::bad_request(d.to_string()).with_field(field.clone(), message.clone()),
                DomainError::Unsatisfiable {
                    ref field,
                    ref message,
                } => Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, d.to_string())
                    .with_field(field.clone(), message.clone()),
                DomainError::Forbidden(_) => Problem::forbidden(d.to_string()),
                DomainError::Unprocessable(_) => {
                    Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, d.to_string())
                        .with_field("Idempotency-Key", d.to_string())
                }
            },
            CommandError::TooMuchContention { .. } => Problem::conflict(e.to_string()),
            CommandError::PreconditionFailed { .. } => {
                Problem::new(axum::http::StatusCode::PRECONDITION_FAILED, e.to_string())
            }
            CommandError::EventLog(EventLogError::IdempotencyMismatch { .. }) => {
                Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            CommandError::EventLog(EventLogError::EventTooLarge { .. }) => {
                Problem::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            CommandError::EventLog(EventLogError::Unavailable(_)) => {
                Problem::unavailable(e.to_string(), 1)
            }
            CommandError::EventLog(_) | CommandError::Decode(_) => Problem::internal(e.to_string()),
        }
    }
}
