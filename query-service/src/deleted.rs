//! What a deletion hides: the middleware that answers 404 for what is under
//! a deleted app or entitlement, as for the app or entitlement itself.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use iga_http::Problem;

use crate::QueryState;

/// Middleware: what is under an app (`/apps/{appId}/...`: its entitlements,
/// their grants and owners, resource types, resources, versions, owners), and
/// what is under an entitlement (`.../entitlements/{id}/...`), answers 404
/// once the app or entitlement is deleted, as they do, unless the read asks
/// for deleted things (`includeDeleted=true`); and 404 for one that never
/// existed.
pub async fn hide_what_is_under_deleted_apps(
    State(state): State<QueryState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let path = req.uri().path().to_string();
    let mut segments = path.split('/').skip_while(|s| *s != "apps").skip(1);
    let (Some(app_id), Some(under)) = (segments.next(), segments.next()) else {
        return next.run(req).await;
    };
    let app_id = decode(app_id);
    let show = iga_http::page::ShowDeleted {
        include_deleted: req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "includeDeleted=true")),
    };
    if let Err(p) = crate::apps::live(&state, &app_id, &show) {
        return p.into_response();
    }
    if under == "entitlements" {
        if let (Some(id), Some(_)) = (segments.next(), segments.next()) {
            let id = decode(id);
            match crate::entitlements::entitlement(&state, &app_id, &id) {
                Ok(e) if e.meta.deleted_at_micros.is_none() || show.include_deleted => {}
                Ok(_) => {
                    return Problem::not_found(format!(
                    "entitlement {id} of app {app_id} is deleted (?includeDeleted=true shows it)"
                ))
                    .into_response()
                }
                Err(p) => return p.into_response(),
            }
        }
    }
    next.run(req).await
}
