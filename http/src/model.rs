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
