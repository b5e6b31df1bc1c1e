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
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
    pub version: u64,
}

/// Where an app's lifecycle and times stand; the fields are in `AppCreated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppMeta {
    pub active: bool,
    pub created_at_micros: i64,
    pub updated_at_micros: i64,
    pub deleted_at_micros: Option<i64>,
    pub version: u64,
}

impl App {
    /// The one rendering of an app, used by the write answer and the reads alike.
    pub fn render(f: &iga_schemas::v1::AppCreated, m: AppMeta) -> App {
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
            status: if m.active { "ACTIVE" } else { "INACTIVE" }.into(),
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
