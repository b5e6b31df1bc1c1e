//! The API's object shapes that both services answer (a write answers the
//! object it wrote; a read answers it from the read models).

use serde::Serialize;

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub manager_ids: Vec<String>,
    pub delegated_user_id: Option<String>,
    /// `admin`, `auditor`.
    pub roles: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

/// How grants reach the system they grant: set on an app, overridden by an
/// entitlement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisioningSetting {
    /// `none` (only recorded), `manual` (a task for people) or `webhook` (a
    /// signed delivery); on an entitlement, empty means as its app.
    #[schema(pattern = "^(|none|manual|webhook)$")]
    pub mode: String,
    /// The webhook that receives the tasks (mode `webhook`).
    #[serde(default)]
    pub webhook_id: Option<String>,
    /// Who does manual tasks; empty: the app's owners.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub assignee_ids: Vec<String>,
}

impl ProvisioningSetting {
    /// The setting as the API shows it; `None` when never set.
    pub fn render(p: Option<&iga_schemas::v1::Provisioning>) -> Option<Self> {
        p.map(|p| ProvisioningSetting {
            mode: p.mode.clone(),
            webhook_id: non_empty(&p.webhook_id),
            assignee_ids: p.assignee_ids.clone(),
        })
    }

    /// The setting as the events hold it.
    pub fn to_event(&self) -> iga_schemas::v1::Provisioning {
        iga_schemas::v1::Provisioning {
            mode: self.mode.clone(),
            webhook_id: self.webhook_id.clone().unwrap_or_default(),
            assignee_ids: self.assignee_ids.clone(),
        }
    }
}

/// An app in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub icon_url: String,
    pub monthly_cost_usd: i64,
    pub instructions: String,
    pub identity_matching: String,
    pub sign_on_mode: String,
    /// Free-form configuration.
    #[schema(value_type = Object)]
    pub configuration: serde_json::Value,
    pub grant_policy_id: Option<String>,
    pub revoke_policy_id: Option<String>,
    pub owner_ids: Vec<String>,
    /// The app's built-in "access" entitlement.
    pub access_entitlement_id: String,
    /// How its grants reach it; null: only recorded.
    pub provisioning: Option<ProvisioningSetting>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub version: u64,
}

impl App {
    /// The one rendering of an app, used by the write answer and the reads alike.
    pub fn render(f: &iga_schemas::v1::AppCreated, active: bool, m: ObjectMeta) -> App {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        App {
            id: f.app_id.clone(),
            display_name: f.display_name.clone(),
            description: f.description.clone(),
            icon_url: f.icon_url.clone(),
            monthly_cost_usd: f.monthly_cost_usd,
            instructions: f.instructions.clone(),
            identity_matching: f.identity_matching.clone(),
            sign_on_mode: f.sign_on_mode.clone(),
            configuration: serde_json::from_str(&f.configuration_json)
                .unwrap_or(serde_json::json!({})),
            grant_policy_id: some(&f.grant_policy_id),
            revoke_policy_id: some(&f.revoke_policy_id),
            owner_ids: f.owner_ids.clone(),
            access_entitlement_id: f.access_entitlement_id.clone(),
            provisioning: ProvisioningSetting::render(f.provisioning.as_ref()),
            status: if active { "ACTIVE" } else { "INACTIVE" }.into(),
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            deleted_at: m.deleted_at_micros.map(crate::rfc3339),
            version: m.version,
        }
    }
}

/// One earlier version of an app.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppVersion {
    pub version: u64,
    pub changed_at: String,
    pub actor_id: String,
    pub app: App,
}

/// When an object was created, last changed and deleted, and its version
/// (its stream version): the one metadata type, kept with every stored view
/// and rendered the same way by every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub created_at_micros: i64,
    pub updated_at_micros: i64,
    pub deleted_at_micros: Option<i64>,
    pub version: u64,
}

/// A kind of thing inside an app that entitlements hang off.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl ResourceType {
    pub fn render(f: &iga_schemas::v1::AppResourceTypeCreated, m: ObjectMeta) -> Self {
        ResourceType {
            id: f.resource_type_id.clone(),
            app_id: f.app_id.clone(),
            display_name: f.display_name.clone(),
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            version: m.version,
        }
    }
}

/// A named thing inside an app (a GitHub org, a database).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub app_id: String,
    pub app_resource_type_id: String,
    pub display_name: String,
    pub description: String,
    pub parent_app_resource_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl Resource {
    pub fn render(f: &iga_schemas::v1::AppResourceCreated, m: ObjectMeta) -> Self {
        Resource {
            id: f.resource_id.clone(),
            app_id: f.app_id.clone(),
            app_resource_type_id: f.resource_type_id.clone(),
            display_name: f.display_name.clone(),
            description: f.description.clone(),
            parent_app_resource_id: non_empty(&f.parent_app_resource_id),
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            version: m.version,
        }
    }
}

/// An entitlement of an app.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entitlement {
    pub id: String,
    pub app_id: String,
    pub app_resource_type_id: Option<String>,
    pub app_resource_id: Option<String>,
    pub display_name: String,
    pub description: String,
    pub alias: String,
    pub slug: String,
    /// `APP_ENTITLEMENT_PURPOSE_VALUE_ASSIGNMENT` or `..._PERMISSION`.
    pub purpose: String,
    pub risk_level_value_id: Option<String>,
    pub compliance_framework_value_ids: Vec<String>,
    /// Maximum grant duration, e.g. `"3600s"`; null when there is none.
    pub duration_grant: Option<String>,
    pub requestable: bool,
    pub emergency_grant_enabled: bool,
    pub grant_policy_id: Option<String>,
    pub revoke_policy_id: Option<String>,
    pub owner_ids: Vec<String>,
    /// True for the app's built-in "access" entitlement.
    pub system_builtin: bool,
    /// Overrides its app's setting; null: as its app.
    pub provisioning: Option<ProvisioningSetting>,
    /// Users holding it now.
    pub grant_count: u64,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub version: u64,
}

impl Entitlement {
    pub fn render(
        f: &iga_schemas::v1::AppEntitlementCreated,
        m: ObjectMeta,
        grant_count: u64,
    ) -> Self {
        Entitlement {
            id: f.entitlement_id.clone(),
            app_id: f.app_id.clone(),
            app_resource_type_id: non_empty(&f.app_resource_type_id),
            app_resource_id: non_empty(&f.app_resource_id),
            display_name: f.display_name.clone(),
            description: f.description.clone(),
            alias: f.alias.clone(),
            slug: f.slug.clone(),
            purpose: f.purpose.clone(),
            risk_level_value_id: non_empty(&f.risk_level_value_id),
            compliance_framework_value_ids: f.compliance_framework_value_ids.clone(),
            duration_grant: (f.duration_grant_seconds > 0)
                .then(|| format!("{}s", f.duration_grant_seconds)),
            requestable: f.requestable,
            emergency_grant_enabled: f.emergency_grant_enabled,
            grant_policy_id: non_empty(&f.grant_policy_id),
            revoke_policy_id: non_empty(&f.revoke_policy_id),
            owner_ids: f.owner_ids.clone(),
            system_builtin: f.system_builtin,
            provisioning: ProvisioningSetting::render(f.provisioning.as_ref()),
            grant_count,
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            deleted_at: m.deleted_at_micros.map(crate::rfc3339),
            version: m.version,
        }
    }
}

/// Who approves a policy step.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approvers {
    /// `MANAGER`, `APP_OWNERS`, `ENTITLEMENT_OWNERS`, `USERS` or `ROLE`.
    #[serde(rename = "type")]
    pub kind: ApproverType,
    /// For `USERS`.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub user_ids: Vec<String>,
    /// For `ROLE`: `admin` or `auditor`.
    #[serde(default)]
    #[schema(value_type = Option<RoleName>)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApproverType {
    Manager,
    AppOwners,
    EntitlementOwners,
    Users,
    Role,
}

impl ApproverType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApproverType::Manager => "MANAGER",
            ApproverType::AppOwners => "APP_OWNERS",
            ApproverType::EntitlementOwners => "ENTITLEMENT_OWNERS",
            ApproverType::Users => "USERS",
            ApproverType::Role => "ROLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ApproverType::Manager,
            ApproverType::AppOwners,
            ApproverType::EntitlementOwners,
            ApproverType::Users,
            ApproverType::Role,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A role a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Auditor,
}

/// An id or value from a list kept elsewhere (a compliance framework, a
/// risk level): 1 to 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(pattern = "^[\\s\\S]{1,128}$")]
pub struct ValueId(pub String);

/// One step of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyStep {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub name: String,
    pub approvers: Approvers,
    /// Distinct approvers needed; 1 when absent.
    #[serde(default = "one", deserialize_with = "crate::json::whole")]
    #[schema(minimum = 1, maximum = 100)]
    pub quorum: u32,
    #[serde(default)]
    pub require_justification: bool,
}

fn one() -> u32 {
    1
}

impl PolicyStep {
    pub fn to_proto(&self) -> iga_schemas::v1::PolicyStep {
        iga_schemas::v1::PolicyStep {
            name: self.name.clone(),
            approvers: Some(iga_schemas::v1::PolicyApprovers {
                r#type: self.approvers.kind.as_str().into(),
                user_ids: self.approvers.user_ids.clone(),
                role: self.approvers.role.clone().unwrap_or_default(),
            }),
            quorum: self.quorum,
            require_justification: self.require_justification,
        }
    }

    pub fn from_proto(s: &iga_schemas::v1::PolicyStep) -> Self {
        let a = s.approvers.clone().unwrap_or_default();
        PolicyStep {
            name: s.name.clone(),
            approvers: Approvers {
                kind: ApproverType::parse(&a.r#type).unwrap_or(ApproverType::AppOwners),
                user_ids: a.user_ids,
                role: non_empty(&a.role),
            },
            quorum: s.quorum,
            require_justification: s.require_justification,
        }
    }
}

/// An approval policy, at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub allow_self_approval: bool,
    pub auto_approve: bool,
    pub steps: Vec<PolicyStep>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub version: u64,
}

impl Policy {
    pub fn render(id: &str, d: &iga_schemas::v1::PolicyDefinition, m: ObjectMeta) -> Self {
        Policy {
            id: id.to_string(),
            display_name: d.display_name.clone(),
            description: d.description.clone(),
            allow_self_approval: d.allow_self_approval,
            auto_approve: d.auto_approve,
            steps: d.steps.iter().map(PolicyStep::from_proto).collect(),
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            deleted_at: m.deleted_at_micros.map(crate::rfc3339),
            version: m.version,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// Parses a protobuf-JSON duration of whole seconds (`"3600s"`).
pub fn parse_duration_seconds(s: &str) -> Option<i64> {
    s.strip_suffix('s')?.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// An HTTP endpoint the service delivers to: the provisioning tasks sent to
/// it, and the events it subscribes to, as CloudEvents, signed per Standard
/// Webhooks. Its secret is never shown again after registration.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event types delivered as CloudEvents (`*`: all); empty: none.
    pub event_types: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub version: u64,
}

impl Webhook {
    pub fn render(
        id: &str,
        url: &str,
        description: &str,
        event_types: &[String],
        m: ObjectMeta,
    ) -> Self {
        Webhook {
            id: id.to_string(),
            url: url.to_string(),
            description: description.to_string(),
            event_types: event_types.to_vec(),
            created_at: crate::rfc3339(m.created_at_micros),
            updated_at: crate::rfc3339(m.updated_at_micros),
            deleted_at: m.deleted_at_micros.map(crate::rfc3339),
            version: m.version,
        }
    }
}

/// A webhook just registered, with its signing secret: shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_<base64>`: verify every delivery's `webhook-signature` with it.
    pub secret: String,
}

/// One delivery to a webhook and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Also the `webhook-id` header of every attempt.
    pub id: String,
    pub webhook_id: String,
    /// `event` (a subscribed event) or `provisioning` (a task).
    pub kind: String,
    /// The event's id, or the task's.
    pub subject_id: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: u32,
    /// The last answer's status (0: none).
    pub last_status: u32,
    pub last_error: String,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}
