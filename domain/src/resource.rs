//! AppResourceType and AppResource: named things inside an app (a GitHub org,
//! a database) that entitlements can hang off. Both are created once, by an
//! admin or an owner of the app, and never change; a resource's parent is
//! another resource of the same app.

use iga_schemas::v1;

use crate::app::AppFacts;
use crate::{Aggregate, Context, DomainError, DomainEvent};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceType {
    pub fields: v1::AppResourceTypeCreated,
}

impl ResourceType {
    pub fn exists(&self) -> bool {
        !self.fields.resource_type_id.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct CreateResourceType {
    pub created: v1::AppResourceTypeCreated,
    pub app: AppFacts,
}

impl Aggregate for ResourceType {
    type Command = CreateResourceType;
    const TYPE: &'static str = "resource_type";

    fn decide(
        &self,
        c: &CreateResourceType,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        if self.exists() {
            return Err(DomainError::AlreadyExists(format!(
                "resource type {}",
                self.fields.resource_type_id
            )));
        }
        c.app.require_live()?;
        if !c.app.admin_or_owner(ctx) {
            return Err(DomainError::Forbidden(
                "only an admin or an owner of the app creates resource types".into(),
            ));
        }
        validate_name(&c.created.display_name)?;
        Ok(vec![c.created.clone().into()])
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::AppResourceTypeCreated(e) = event {
            self.fields = e.clone();
        }
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    pub fields: v1::AppResourceCreated,
}

impl Resource {
    pub fn exists(&self) -> bool {
        !self.fields.resource_id.is_empty()
    }
}

/// Creates a resource. `resource_type` is the type named in the path as it is
/// now; `parent`, the resource named by `parentAppResourceId` (if any).
#[derive(Debug, Clone)]
pub struct CreateResource {
    pub created: v1::AppResourceCreated,
    pub app: AppFacts,
    pub resource_type: ResourceType,
    pub parent: Option<Resource>,
}

impl Aggregate for Resource {
    type Command = CreateResource;
    const TYPE: &'static str = "resource";

    fn decide(&self, c: &CreateResource, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        if self.exists() {
            return Err(DomainError::AlreadyExists(format!(
                "resource {}",
                self.fields.resource_id
            )));
        }
        c.app.require_live()?;
        if !c.resource_type.exists() || c.resource_type.fields.app_id != c.app.app_id {
            return Err(DomainError::NotFound(format!(
                "resource type {} of app {}",
                c.created.resource_type_id, c.app.app_id
            )));
        }
        if !c.app.admin_or_owner(ctx) {
            return Err(DomainError::Forbidden(
                "only an admin or an owner of the app creates resources".into(),
            ));
        }
        validate_name(&c.created.display_name)?;
        if c.created.description.chars().count() > 4096 {
            return Err(DomainError::invalid(
                "description",
                "at most 4096 characters",
            ));
        }
        if !c.created.parent_app_resource_id.is_empty() {
            match &c.parent {
                Some(p) if p.exists() && p.fields.app_id == c.app.app_id => {}
                _ => {
                    return Err(DomainError::invalid(
                        "parentAppResourceId",
                        "no such resource in this app",
                    ))
                }
            }
        }
        Ok(vec![c.created.clone().into()])
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::AppResourceCreated(e) = event {
            self.fields = e.clone();
        }
        self
    }
}

/// A display name: 1 to 200 characters, not only blanks.
pub fn validate_name(name: &str) -> Result<(), DomainError> {
    if crate::text::is_blank(name) || crate::text::chars(name) > 200 {
        return Err(DomainError::invalid("displayName", "1 to 200 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn app() -> AppFacts {
        AppFacts {
            app_id: "a1".into(),
            exists: true,
            deleted: false,
            owner_ids: vec!["owner".into()],
        }
    }

    fn type_created() -> v1::AppResourceTypeCreated {
        v1::AppResourceTypeCreated {
            app_id: "a1".into(),
            resource_type_id: "rt1".into(),
            display_name: "Organization".into(),
        }
    }

    #[test]
    fn owners_create_resource_types_strangers_cannot() {
        let cmd = CreateResourceType {
            created: type_created(),
            app: app(),
        };
        given::<ResourceType>(&[])
            .when(&cmd, &ctx("owner", &[]))
            .then(&[type_created().into()]);
        given::<ResourceType>(&[])
            .when(&cmd, &ctx("stranger", &[]))
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app creates resource types".into(),
            ));
        let deleted = CreateResourceType {
            app: AppFacts {
                deleted: true,
                ..app()
            },
            ..cmd.clone()
        };
        given::<ResourceType>(&[])
            .when(&deleted, &ctx("admin", &["admin"]))
            .then_error(DomainError::InvalidTransition("app a1 is deleted".into()));
        given::<ResourceType>(&[type_created().into()])
            .when(&cmd, &ctx("admin", &["admin"]))
            .then_error(DomainError::AlreadyExists("resource type rt1".into()));
    }

    #[test]
    fn resources_need_their_type_and_parent_in_the_same_app() {
        let rtype = given::<ResourceType>(&[type_created().into()]).state_for_test();
        let created = v1::AppResourceCreated {
            app_id: "a1".into(),
            resource_type_id: "rt1".into(),
            resource_id: "r2".into(),
            display_name: "acme/web".into(),
            description: String::new(),
            parent_app_resource_id: "r1".into(),
        };
        let parent_in = |app_id: &str| Resource {
            fields: v1::AppResourceCreated {
                app_id: app_id.into(),
                resource_id: "r1".into(),
                ..Default::default()
            },
        };
        let cmd = CreateResource {
            created: created.clone(),
            app: app(),
            resource_type: rtype.clone(),
            parent: Some(parent_in("a1")),
        };
        given::<Resource>(&[])
            .when(&cmd, &ctx("owner", &[]))
            .then(&[created.clone().into()]);
        given::<Resource>(&[])
            .when(
                &CreateResource {
                    parent: Some(parent_in("other")),
                    ..cmd.clone()
                },
                &ctx("owner", &[]),
            )
            .then_error(DomainError::invalid(
                "parentAppResourceId",
                "no such resource in this app",
            ));
        given::<Resource>(&[])
            .when(
                &CreateResource {
                    resource_type: ResourceType::default(),
                    ..cmd
                },
                &ctx("owner", &[]),
            )
            .then_error(DomainError::NotFound("resource type rt1 of app a1".into()));
    }
}
