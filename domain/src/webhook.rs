//! The Webhook aggregate: an HTTP endpoint the service delivers to
//! (provisioning tasks, and the events it subscribes to as CloudEvents),
//! registered by an admin. Its signing secret is sealed by the service
//! before it reaches the domain: the aggregate keeps the sealed bytes and
//! never sees the secret.
//!
//! Rules: only admins register, change or delete webhooks; a URL is an
//! absolute `https` URL (or `http`, for a receiver on the same network),
//! with a host, no credentials and no fragment, at most 2,048 characters;
//! event types are `*` or names of events this service writes, at most 64.

use iga_schemas::{v1, DomainEvent as Event};

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// Most characters of a webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Most event types one webhook subscribes to.
pub const MAX_EVENT_TYPES: usize = 64;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub secret_sealed: Vec<u8>,
    pub deleted: bool,
}

#[derive(Debug, Clone)]
pub enum WebhookCommand {
    Register(v1::WebhookRegistered),
    Update(v1::WebhookUpdated),
    Delete,
}

impl Webhook {
    pub fn exists(&self) -> bool {
        !self.id.is_empty()
    }

    /// Whether it subscribes to events of `event_type`.
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        !self.deleted && subscribes(&self.event_types, event_type)
    }
}

/// Whether a webhook subscribed to `event_types` receives events of
/// `event_type` (`*`: every type).
pub fn subscribes(event_types: &[String], event_type: &str) -> bool {
    event_types.iter().any(|t| t == "*" || t == event_type)
}

/// Folds update `e` into a webhook's settings, wherever they are kept (the
/// aggregate, the webhooks read model): each field it carries replaces the
/// old one.
pub fn apply_update(
    e: &v1::WebhookUpdated,
    url: &mut String,
    description: &mut String,
    event_types: &mut Vec<String>,
) {
    if let Some(v) = &e.url {
        v.clone_into(url);
    }
    if let Some(v) = &e.description {
        v.clone_into(description);
    }
    if let Some(v) = &e.event_types {
        v.values.clone_into(event_types);
    }
}

/// Whether `url` is one the service may call.
pub fn validate_url(url: &str) -> Result<(), DomainError> {
    // Well-formed text the schema cannot rule out: 422, not 400.
    let bad = |why: &str| Err(DomainError::unsatisfiable("url", why));
    if url.chars().count() > MAX_URL_CHARS {
        return bad("at most 2048 characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("an absolute http(s) URL");
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return bad("an http or https URL");
    }
    if url.contains('#') {
        return bad("no fragment");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no spaces or control characters");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("no credentials in the URL (the signature authenticates)");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() {
        return bad("a host");
    }
    Ok(())
}

/// Whether every one of `event_types` is `*` or an event this service writes.
pub fn validate_event_types(event_types: &[String]) -> Result<(), DomainError> {
    if event_types.len() > MAX_EVENT_TYPES {
        return Err(DomainError::invalid("eventTypes", "at most 64"));
    }
    for t in event_types {
        if t != "*" && !Event::ALL_TYPES.iter().any(|(name, _)| name == t) {
            return Err(DomainError::unsatisfiable(
                "eventTypes",
                format!(
                    "{t:?} is not an event type of this service (e.g. iga.v1.GrantIssued, or *)"
                ),
            ));
        }
    }
    Ok(())
}

fn admin_only(ctx: &Context) -> Result<(), DomainError> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only an admin manages webhooks".into(),
        ))
    }
}

impl Aggregate for Webhook {
    type Command = WebhookCommand;
    const TYPE: &'static str = "webhook";

    fn decide(&self, c: &WebhookCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        admin_only(ctx)?;
        match c {
            WebhookCommand::Register(r) => {
                if self.exists() {
                    return Err(DomainError::AlreadyExists(format!("webhook {}", self.id)));
                }
                validate_url(&r.url)?;
                validate_event_types(&r.event_types)?;
                if crate::text::chars(&r.description) > 1000 {
                    return Err(DomainError::invalid(
                        "description",
                        "at most 1000 characters",
                    ));
                }
                if r.secret_sealed.is_empty() {
                    return Err(DomainError::invalid("secret", "required"));
                }
                Ok(vec![r.clone().into()])
            }
            WebhookCommand::Update(u) => {
                if !self.exists() || self.deleted {
                    return Err(DomainError::NotFound("webhook".into()));
                }
                if let Some(url) = &u.url {
                    validate_url(url)?;
                }
                if let Some(types) = &u.event_types {
                    validate_event_types(&types.values)?;
                }
                if u.description
                    .as_deref()
                    .is_some_and(|d| crate::text::chars(d) > 1000)
                {
                    return Err(DomainError::invalid(
                        "description",
                        "at most 1000 characters",
                    ));
                }
                let changed = v1::WebhookUpdated {
                    webhook_id: self.id.clone(),
                    url: u.url.clone().filter(|v| *v != self.url),
                    description: u.description.clone().filter(|v| *v != self.description),
                    event_types: u
                        .event_types
                        .clone()
                        .filter(|v| v.values != self.event_types),
                };
                let nothing = v1::WebhookUpdated {
                    webhook_id: self.id.clone(),
                    ..Default::default()
                };
                Ok(if changed == nothing {
                    vec![]
                } else {
                    vec![changed.into()]
                })
            }
            WebhookCommand::Delete => {
                if !self.exists() {
                    return Err(DomainError::NotFound("webhook".into()));
                }
                Ok(if self.deleted {
                    vec![]
                } else {
                    vec![v1::WebhookDeleted {
                        webhook_id: self.id.clone(),
                    }
                    .into()]
                })
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::WebhookRegistered(e) => {
                self.id = e.webhook_id.clone();
                self.url = e.url.clone();
                self.description = e.description.clone();
                self.event_types = e.event_types.clone();
                self.secret_sealed = e.secret_sealed.clone();
            }
            DomainEvent::WebhookUpdated(e) => apply_update(
                e,
                &mut self.url,
                &mut self.description,
                &mut self.event_types,
            ),
            DomainEvent::WebhookDeleted(_) => self.deleted = true,
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn registered() -> v1::WebhookRegistered {
        v1::WebhookRegistered {
            webhook_id: "w1".into(),
            url: "https://hooks.example.com/iga".into(),
            description: "bridge".into(),
            event_types: vec!["iga.v1.GrantIssued".into()],
            secret_sealed: vec![9; 40],
        }
    }

    #[test]
    fn an_admin_registers_a_webhook_and_nobody_else_does() {
        let admin = ctx("root", &["admin"]);
        given::<Webhook>(&[])
            .when(&WebhookCommand::Register(registered()), &admin)
            .then(&[registered().into()]);
        for (who, roles) in [("eve", vec!["auditor"]), ("sam", vec![])] {
            given::<Webhook>(&[])
                .when(&WebhookCommand::Register(registered()), &ctx(who, &roles))
                .then_error(DomainError::Forbidden(
                    "only an admin manages webhooks".into(),
                ));
        }
    }

    #[test]
    fn urls_a_service_should_not_call_are_refused() {
        for ok in [
            "https://hooks.example.com/iga?x=1",
            "http://10.0.0.7:8080/hook",
            "https://[::1]:9000/h",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "hooks.example.com/iga",
            "ftp://example.com/x",
            "file:///etc/passwd",
            "https://user:pass@example.com/",
            "https://example.com/#frag",
            "https:///nohost",
            "https://exa mple.com/",
            &format!("https://example.com/{}", "a".repeat(2048)),
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_types_are_star_or_events_of_this_service() {
        assert!(validate_event_types(&["*".into(), "iga.v1.RequestApproved".into()]).is_ok());
        assert!(validate_event_types(&["iga.v1.NoSuchEvent".into()]).is_err());
        assert!(validate_event_types(&vec!["*".to_string(); 65]).is_err());
        let hook = given::<Webhook>(&[registered().into()])
            .when(&WebhookCommand::Delete, &ctx("root", &["admin"]))
            .then(&[v1::WebhookDeleted {
                webhook_id: "w1".into(),
            }
            .into()]);
        assert!(!hook.subscribes_to("iga.v1.GrantIssued"), "deleted");
        let live = Webhook::default().evolve(&registered().into());
        assert!(live.subscribes_to("iga.v1.GrantIssued"));
        assert!(!live.subscribes_to("iga.v1.GrantEnded"));
    }

    #[test]
    fn an_update_records_only_what_changes() {
        let admin = ctx("root", &["admin"]);
        let same = v1::WebhookUpdated {
            webhook_id: "w1".into(),
            url: Some("https://hooks.example.com/iga".into()),
            ..Default::default()
        };
        given::<Webhook>(&[registered().into()])
            .when(&WebhookCommand::Update(same), &admin)
            .then(&[]);
        let moved = v1::WebhookUpdated {
            webhook_id: "w1".into(),
            url: Some("https://hooks.example.com/v2".into()),
            description: Some("bridge".into()),
            ..Default::default()
        };
        given::<Webhook>(&[registered().into()])
            .when(&WebhookCommand::Update(moved), &admin)
            .then(&[v1::WebhookUpdated {
                webhook_id: "w1".into(),
                url: Some("https://hooks.example.com/v2".into()),
                ..Default::default()
            }
            .into()]);
        // A registration needs its sealed secret.
        given::<Webhook>(&[])
            .when(
                &WebhookCommand::Register(v1::WebhookRegistered {
                    secret_sealed: vec![],
                    ..registered()
                }),
                &admin,
            )
            .then_error(DomainError::invalid("secret", "required"));
    }
}
