//! `GET /catalog`: search over requestable apps and entitlements, answered
//! from the in-memory [`SearchIndex`] that follows the `catalog` read model.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use iga_http::page::{page_token, PageParams};
use iga_http::Problem;
use projection_service::catalog::{CatalogItem, CatalogQuery, MAX_QUERY_BYTES, MAX_QUERY_WORDS};
use serde::{Deserialize, Serialize};

use crate::QueryState;

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Entitlement,
    Application,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CatalogParams {
    /// Words or word prefixes, matched case-insensitively against names,
    /// the app's name, alias, slug and description; every word must match.
    pub query: Option<String>,
    #[serde(rename = "type")]
    #[param(inline)]
    pub kind: Option<ItemType>,
    pub app_id: Option<String>,
    pub risk_level_value_id: Option<String>,
    /// `true` (default): requestable items only; `false`: only those that are not.
    pub requestable: Option<bool>,
    /// Include deleted items (default false).
    #[serde(default)]
    pub include_deleted: bool,
}

/// One catalog entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    /// `application` or `entitlement`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub app_id: String,
    pub app_display_name: String,
    pub display_name: String,
    pub description: String,
    pub alias: String,
    pub slug: String,
    pub risk_level_value_id: Option<String>,
    pub requestable: bool,
}

impl From<CatalogItem> for CatalogEntry {
    fn from(i: CatalogItem) -> Self {
        CatalogEntry {
            kind: i.kind,
            id: i.id,
            app_id: i.app_id,
            app_display_name: i.app_display_name,
            display_name: i.display_name,
            description: i.description,
            alias: i.alias,
            slug: i.slug,
            risk_level_value_id: i.risk_level_value_id,
            requestable: i.requestable,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogPage {
    pub list: Vec<CatalogEntry>,
    pub next_page_token: Option<String>,
    /// Matches across all pages.
    pub total_count: u64,
}

/// Searches the catalog: best matches first (exact alias, name prefix, whole
/// word, then description and word prefixes), then by name.
#[utoipa::path(get, path = "/catalog", tag = "catalog", params(CatalogParams, PageParams),
    responses((status = 200, description = "A page of matches", body = CatalogPage), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn search_catalog(
    State(state): State<QueryState>,
    Query(params): Query<CatalogParams>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let text = params.query.unwrap_or_default();
    if text.len() > MAX_QUERY_BYTES {
        return Err(
            Problem::bad_request(format!("query is longer than {MAX_QUERY_BYTES} bytes"))
                .with_field("query", "too long"),
        );
    }
    if projection_service::catalog::words(&text).count() > MAX_QUERY_WORDS {
        return Err(
            Problem::bad_request(format!("query has more than {MAX_QUERY_WORDS} words"))
                .with_field("query", "too many words"),
        );
    }
    // A token is where the last page ended, in the ranking's order; any
    // token is a place in that order.
    let after = page
        .after()?
        .map(|k| String::from_utf8_lossy(&k).into_owned());
    let query = CatalogQuery {
        text,
        kind: params.kind.map(|k| match k {
            ItemType::Entitlement => "entitlement".into(),
            ItemType::Application => "application".into(),
        }),
        app_id: params.app_id,
        risk_level_value_id: params.risk_level_value_id,
        requestable: Some(params.requestable.unwrap_or(true)),
        include_deleted: params.include_deleted,
        after,
        page_size: page.size()?,
    };
    let index = state.search.clone();
    // Large result sets take a few milliseconds of CPU; keep them off the async workers.
    let found = tokio::task::spawn_blocking(move || index.search(&query))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(Json(CatalogPage {
        list: found.items.into_iter().map(Into::into).collect(),
        next_page_token: found.next.as_deref().map(|k| page_token(k.as_bytes())),
        total_count: found.total_count,
    })
    .into_response())
}
