//! The Username aggregate: a claim on a username, so that two users can never
//! share one. Its stream is keyed by a digest of the username (usernames may
//! hold characters stream ids may not); claiming appends with "no stream"
//! expected, so of two concurrent claims exactly one wins.

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Username {
    pub owner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClaimUsername {
    pub username: String,
    pub user_id: String,
    /// The current owner may be replaced ([`crate::claim::may_take_over`]):
    /// it was never written (a crash after the claim).
    pub holder_gone: bool,
}

impl Aggregate for Username {
    type Command = ClaimUsername;
    const TYPE: &'static str = "username";

    fn decide(&self, c: &ClaimUsername, _ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        crate::user::validate_username(&c.username)?;
        match &self.owner {
            Some(owner) if owner == &c.user_id => Ok(vec![]), // already ours: a retry
            Some(_) if !c.holder_gone => Err(DomainError::AlreadyExists(format!(
                "username {:?}",
                c.username
            ))),
            _ => Ok(vec![v1::UsernameClaimed {
                username: c.username.clone(),
                user_id: c.user_id.clone(),
            }
            .into()]),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::UsernameClaimed(e) = event {
            self.owner = Some(e.user_id.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn claim(user: &str) -> ClaimUsername {
        ClaimUsername {
            username: "ada".into(),
            user_id: user.into(),
            holder_gone: false,
        }
    }

    #[test]
    fn first_claim_wins_and_a_retry_is_a_no_op() {
        let claimed: DomainEvent = v1::UsernameClaimed {
            username: "ada".into(),
            user_id: "u1".into(),
        }
        .into();
        given::<Username>(&[])
            .when(&claim("u1"), &ctx("admin", &["admin"]))
            .then(std::slice::from_ref(&claimed));
        given::<Username>(std::slice::from_ref(&claimed))
            .when(&claim("u1"), &ctx("admin", &["admin"]))
            .then(&[]);
        given::<Username>(&[claimed])
            .when(&claim("u2"), &ctx("admin", &["admin"]))
            .then_error(DomainError::AlreadyExists("username \"ada\"".into()));
    }

    #[test]
    fn a_claim_whose_user_was_never_written_is_taken_over() {
        let claimed: DomainEvent = v1::UsernameClaimed {
            username: "ada".into(),
            user_id: "u1".into(),
        }
        .into();
        let taken: DomainEvent = v1::UsernameClaimed {
            username: "ada".into(),
            user_id: "u2".into(),
        }
        .into();
        given::<Username>(&[claimed])
            .when(
                &ClaimUsername {
                    holder_gone: true,
                    ..claim("u2")
                },
                &ctx("admin", &["admin"]),
            )
            .then(&[taken]);
    }
}
