//! Access reviews: the write routes (create, launch, close a campaign;
//! decide, bulk decide, reassign, comment on its items) and the steps the
//! `reactors` crate's review reactor and timer take (open the items of a
//! launch, say they are listed, close at the due date, apply `onDue`, end
//! a revoked grant). The rules are the domain's (`iga_domain::review`).
//!
//! Item ids derive from the campaign and the grant, so listing a launch
//! again opens nothing twice; a revoke's grant ending is idempotent on the
//! pair, so a decision seen twice ends the grant once.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use iga_api::{Review as ReviewObject, ReviewItem as ItemObject};
use iga_domain::access::{pair_key, AccessCommand, AccessPair};
use iga_domain::app::App;
use iga_domain::review::{ItemCommand, Review, ReviewCommand, ReviewItem};
use iga_domain::user::User;
use iga_domain::{Aggregate, DomainError};
use iga_eventlog::Position;
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::{Deserialize, Serialize};

use crate::fulfilment::system_meta;
use crate::refs::{names_nothing, users_exist};
use crate::state::{derived_id, meta, new_id, CommandState};
use crate::{CommandError, CommandHandler};

/// Most items one bulk decision names.
pub const MAX_BULK_ITEMS: usize = 1000;

/// The item of campaign `review_id` for grant `grant_id`: one per pair.
pub fn item_id_for(review_id: &str, grant_id: &str) -> String {
    derived_id("review_item", &format!("{review_id}\0{grant_id}"))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeBody {
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub app_ids: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub entitlement_ids: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub risk_level_value_ids: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub user_ids: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewerRuleBody {
    #[serde(rename = "type")]
    #[schema(pattern = "^(MANAGER|APP_OWNERS|ENTITLEMENT_OWNERS|USERS)$")]
    pub kind: String,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub user_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequireJustificationBody {
    #[serde(default)]
    pub certify: bool,
    #[serde(default)]
    pub revoke: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateReview {
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    #[serde(default)]
    pub scope: ScopeBody,
    pub reviewers: ReviewerRuleBody,
    /// Who reviews an item its rule leaves to nobody but the user.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub fallback_reviewer_ids: Vec<String>,
    /// RFC 3339; the campaign closes by itself then.
    #[schema(format = DateTime)]
    pub due_date: String,
    /// What undecided items become at closing (default `nothing`).
    #[serde(default)]
    #[schema(pattern = "^(nothing|certify|revoke)$")]
    pub on_due: Option<String>,
    #[serde(default)]
    pub require_justification: RequireJustificationBody,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideItem {
    #[schema(pattern = "^(certify|revoke)$")]
    pub decision: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub justification: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideItems {
    #[schema(min_items = 1, max_items = 1000)]
    pub item_ids: Vec<String>,
    #[schema(pattern = "^(certify|revoke)$")]
    pub decision: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub justification: String,
}

/// What a bulk decision did to one item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkOutcome {
    pub item_id: String,
    /// The HTTP status deciding this item alone would have answered.
    pub status: u16,
    /// Why it was not decided (status not 200).
    pub error: Option<String>,
}

/// The answer to a bulk decision: one outcome per item, in the order asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkDecided {
    pub decided: u64,
    pub refused: u64,
    pub results: Vec<BulkOutcome>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReassignItem {
    #[schema(min_items = 1, max_items = 100)]
    pub to_user_ids: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentOnItem {
    #[schema(min_length = 1, max_length = 4096)]
    pub comment: String,
}

impl crate::View for ReviewObject {
    fn apply(&mut self, event: &iga_schemas::DomainEvent, recorded_at: i64, version: u64) {
        ReviewObject::apply(self, event, recorded_at, version)
    }
}

impl crate::View for ItemObject {
    fn apply(&mut self, event: &iga_schemas::DomainEvent, recorded_at: i64, version: u64) {
        ItemObject::apply(self, event, recorded_at, version)
    }
}

async fn review_answer(
    state: &CommandState,
    id: &str,
    status: StatusCode,
    outcome: &crate::Outcome,
) -> Result<Response, Problem> {
    let review = state
        .handler
        .view::<ReviewObject>(&Review::stream_id(id))
        .await?;
    Ok(object_response(
        status,
        outcome.version,
        Some(outcome.position),
        &review,
    ))
}

async fn item_answer(
    state: &CommandState,
    id: &str,
    outcome: &crate::Outcome,
) -> Result<Response, Problem> {
    let item = state
        .handler
        .view::<ItemObject>(&ReviewItem::stream_id(id))
        .await?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &item,
    ))
}

/// Refuses scope and reviewer ids that name nothing.
async fn refs_exist(state: &CommandState, body: &CreateReview) -> Result<(), Problem> {
    users_exist(state, &body.reviewers.user_ids, "reviewers.userIds").await?;
    users_exist(state, &body.fallback_reviewer_ids, "fallbackReviewerIds").await?;
    for id in &body.scope.user_ids {
        let (user, _) = state.handler.load::<User>(id).await?;
        if !user.exists() {
            return Err(names_nothing(
                format!("user {id} does not exist"),
                "scope.userIds",
                format!("unknown user {id}"),
            ));
        }
    }
    for id in &body.scope.app_ids {
        let (app, _) = state.handler.load::<App>(id).await?;
        if !app.exists() {
            return Err(names_nothing(
                format!("app {id} does not exist"),
                "scope.appIds",
                format!("unknown app {id}"),
            ));
        }
    }
    Ok(())
}

/// Creates a campaign as a draft (admin).
#[utoipa::path(post, path = "/reviews", tag = "reviews", request_body = CreateReview,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first outcome")),
    responses((status = 201, description = "Created as a draft", body = ReviewObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, description = "A campaign that cannot run, or ids that name nothing", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_review(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateReview>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    if !meta.ctx.is_admin() {
        // Before any id is looked up: a stranger learns nothing from this.
        return Err(Problem::from(CommandError::Domain(DomainError::Forbidden(
            "only an admin creates a review".into(),
        ))));
    }
    let due = iga_http::parse_rfc3339_micros("dueDate", &body.due_date)?;
    refs_exist(&state, &body).await?;
    let id = new_id(&meta, "review");
    let created = v1::ReviewCreated {
        review_id: id.clone(),
        display_name: body.display_name,
        description: body.description,
        scope: Some(v1::ReviewScope {
            app_ids: body.scope.app_ids,
            entitlement_ids: body.scope.entitlement_ids,
            risk_level_value_ids: body.scope.risk_level_value_ids,
            user_ids: body.scope.user_ids,
        }),
        reviewers: Some(v1::ReviewerRule {
            r#type: body.reviewers.kind,
            user_ids: body.reviewers.user_ids,
        }),
        fallback_reviewer_ids: body.fallback_reviewer_ids,
        due_at_micros: due,
        on_due: body.on_due.unwrap_or_else(|| "nothing".into()),
        require_justification_certify: body.require_justification.certify,
        require_justification_revoke: body.require_justification.revoke,
    };
    let (_, outcome) = state
        .handler
        .execute::<Review>(&id, &ReviewCommand::Create(Box::new(created)), &meta)
        .await?;
    review_answer(&state, &id, StatusCode::CREATED, &outcome).await
}

/// Launches a draft (admin): its items are the grants in scope held now,
/// opened by the service right after; `itemsListed` turns true when every
/// one is open.
#[utoipa::path(post, path = "/reviews/{reviewId}/launch", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id")),
    responses((status = 200, description = "Active; its items are being opened", body = ReviewObject), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Not a draft", body = Problem)),
    security(("bearer" = [])))]
pub async fn launch_review(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let command = ReviewCommand::Launch {
        as_of: meta.ctx.now_unix_micros,
    };
    let (_, outcome) = state
        .handler
        .execute::<Review>(&id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("review", &id))?;
    review_answer(&state, &id, StatusCode::OK, &outcome).await
}

/// Closes an active campaign (admin): its undecided items become what its
/// `onDue` says, by the service, right after.
#[utoipa::path(post, path = "/reviews/{reviewId}/close", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id")),
    responses((status = 200, description = "Closed", body = ReviewObject), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "A draft, or its items are still being opened", body = Problem)),
    security(("bearer" = [])))]
pub async fn close_review(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (_, outcome) = state
        .handler
        .execute::<Review>(&id, &ReviewCommand::Close { due: false }, &meta)
        .await
        .map_err(|e| e.for_aggregate("review", &id))?;
    review_answer(&state, &id, StatusCode::OK, &outcome).await
}

/// The item `item_id` of campaign `review_id`, and that campaign; 404 when
/// the item is not that campaign's.
async fn item_of(
    handler: &CommandHandler,
    review_id: &str,
    item_id: &str,
) -> Result<(ReviewItem, Review), Problem> {
    let (item, _) = handler.load::<ReviewItem>(item_id).await?;
    if !item.exists() || item.opened.review_id != review_id {
        return Err(Problem::not_found(format!(
            "review item {item_id} not found in review {review_id}"
        )));
    }
    let (review, _) = handler.load::<Review>(review_id).await?;
    Ok((item, review))
}

/// The reviewers of `item` whose delegate is `actor` (none when the actor
/// is a reviewer or an admin: they act for themselves).
async fn stands_in_for(
    handler: &CommandHandler,
    item: &ReviewItem,
    ctx: &iga_domain::Context,
) -> Result<Vec<String>, CommandError> {
    if ctx.is_admin() || item.reviewer_ids.contains(&ctx.actor_id) {
        return Ok(vec![]);
    }
    let mut people = Vec::new();
    for reviewer in &item.reviewer_ids {
        let (user, _) = handler.load::<User>(reviewer).await?;
        if user.enabled && user.delegated_user_id == ctx.actor_id {
            people.push(reviewer.clone());
        }
    }
    Ok(people)
}

/// The delegate of the user whose access `item` is ("" for none).
async fn user_delegate(
    handler: &CommandHandler,
    item: &ReviewItem,
) -> Result<String, CommandError> {
    let (user, _) = handler.load::<User>(&item.opened.user_id).await?;
    Ok(user.delegated_user_id)
}

/// Decides one item as `meta`'s actor; answers the write's outcome.
async fn decide_one(
    handler: &CommandHandler,
    meta: &crate::CommandMeta,
    review_id: &str,
    item_id: &str,
    decision: &str,
    justification: &str,
) -> Result<crate::Outcome, Problem> {
    let (item, review) = item_of(handler, review_id, item_id).await?;
    let command = ItemCommand::Decide {
        decision: decision.to_string(),
        justification: justification.to_string(),
        review: review.facts(),
        stands_in_for: stands_in_for(handler, &item, &meta.ctx).await?,
        user_delegate: user_delegate(handler, &item).await?,
    };
    let (_, outcome) = handler
        .execute::<ReviewItem>(item_id, &command, meta)
        .await?;
    Ok(outcome)
}

/// Certifies or revokes one item (its reviewers, their delegates, admins;
/// never the user whose access it is). A revoke ends the grant.
#[utoipa::path(post, path = "/reviews/{reviewId}/items/{itemId}/decide", tag = "reviews", request_body = DecideItem,
    params(("reviewId" = String, Path, description = "Review id"), ("itemId" = String, Path, description = "Item id")),
    responses((status = 200, description = "Decided", body = ItemObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "The review is not active, or the item was revoked", body = Problem)),
    security(("bearer" = [])))]
pub async fn decide_item(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((review_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<DecideItem>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let outcome = decide_one(
        &state.handler,
        &meta,
        &review_id,
        &item_id,
        &body.decision,
        &body.justification,
    )
    .await?;
    item_answer(&state, &item_id, &outcome).await
}

/// Decides many items of one campaign alike: each is decided (or refused)
/// as it would be alone; the answer says what happened to each (403 when
/// every item was refused as not the caller's to decide).
#[utoipa::path(post, path = "/reviews/{reviewId}/decide", tag = "reviews", request_body = DecideItems,
    params(("reviewId" = String, Path, description = "Review id"), ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first outcome")),
    responses((status = 200, description = "What happened to each item", body = BulkDecided), (status = 400, body = Problem), (status = 403, description = "None of the items is the caller's to decide", body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn decide_items(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(review_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<DecideItems>,
) -> Result<Response, Problem> {
    use futures::StreamExt;
    let meta = meta(&principal, &headers)?;
    if !["certify", "revoke"].contains(&body.decision.as_str()) {
        return Err(Problem::bad_request("decision is certify or revoke")
            .with_field("decision", "certify or revoke"));
    }
    if body.item_ids.len() > MAX_BULK_ITEMS {
        return Err(
            Problem::bad_request(format!("itemIds names at most {MAX_BULK_ITEMS} items"))
                .with_field("itemIds", "too many"),
        );
    }
    let (review, _) = state.handler.load::<Review>(&review_id).await?;
    if !review.exists() {
        return Err(Problem::not_found(format!("review {review_id} not found")));
    }
    let mut last = 0;
    // Each item is its own stream: many at once share the log's group commits.
    let results: Vec<(String, Result<crate::Outcome, Problem>)> =
        futures::stream::iter(body.item_ids.iter().cloned().enumerate())
            .map(|(n, item_id)| {
                let handler = state.handler.clone();
                let (review_id, body) = (&review_id, &body);
                // One key per item, so a retried bulk decides each once.
                let meta = crate::CommandMeta {
                    idempotency_key: meta.idempotency_key.as_ref().map(|k| format!("{k}\0{n}")),
                    ..meta.clone()
                };
                async move {
                    let outcome = decide_one(
                        &handler,
                        &meta,
                        review_id,
                        &item_id,
                        &body.decision,
                        &body.justification,
                    )
                    .await;
                    (item_id, outcome)
                }
            })
            .buffered(32)
            .collect()
            .await;
    let mut answer = BulkDecided {
        decided: 0,
        refused: 0,
        results: Vec::with_capacity(results.len()),
    };
    for (item_id, outcome) in results {
        let (status, error) = match outcome {
            Ok(o) => {
                last = last.max(o.position);
                answer.decided += 1;
                (200, None)
            }
            Err(p) => {
                answer.refused += 1;
                (p.status, Some(p.detail.clone()))
            }
        };
        answer.results.push(BulkOutcome {
            item_id,
            status,
            error,
        });
    }
    // Refused every item as not theirs: the caller reviews none of them.
    if answer.decided == 0 && answer.results.iter().all(|r| r.status == 403) {
        return Err(Problem::forbidden(format!(
            "you decide none of these items: {}",
            answer.results[0].error.clone().unwrap_or_default()
        )));
    }
    let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
    if last > 0 {
        response.headers_mut().insert(
            iga_http::CONSISTENCY_TOKEN,
            axum::http::HeaderValue::from(last),
        );
    }
    Ok(response)
}

/// Gives an item to other reviewers (its reviewers, their delegates,
/// admins); never to the user whose access it is.
#[utoipa::path(post, path = "/reviews/{reviewId}/items/{itemId}/reassign", tag = "reviews", request_body = ReassignItem,
    params(("reviewId" = String, Path, description = "Review id"), ("itemId" = String, Path, description = "Item id")),
    responses((status = 200, description = "Reassigned", body = ItemObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "The review is not active", body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reassign_item(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((review_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<ReassignItem>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (item, review) = item_of(&state.handler, &review_id, &item_id).await?;
    let stands_in_for = stands_in_for(&state.handler, &item, &meta.ctx).await?;
    // Who may reassign is checked before the new reviewers are looked up.
    let command = ItemCommand::Reassign {
        to: body.to_user_ids.clone(),
        review: review.facts(),
        stands_in_for,
        user_delegate: user_delegate(&state.handler, &item).await?,
    };
    if let Err(e) = item.decide(&command, &meta.ctx) {
        return Err(CommandError::Domain(e).into());
    }
    users_exist(&state, &body.to_user_ids, "toUserIds").await?;
    let (_, outcome) = state
        .handler
        .execute::<ReviewItem>(&item_id, &command, &meta)
        .await?;
    item_answer(&state, &item_id, &outcome).await
}

/// Adds a note to an item (its reviewers, their delegates, admins, and the
/// user whose access it is).
#[utoipa::path(post, path = "/reviews/{reviewId}/items/{itemId}/comment", tag = "reviews", request_body = CommentOnItem,
    params(("reviewId" = String, Path, description = "Review id"), ("itemId" = String, Path, description = "Item id")),
    responses((status = 200, description = "Commented", body = ItemObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn comment_item(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((review_id, item_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CommentOnItem>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (item, _) = item_of(&state.handler, &review_id, &item_id).await?;
    let command = ItemCommand::Comment {
        comment: body.comment,
        stands_in_for: stands_in_for(&state.handler, &item, &meta.ctx).await?,
    };
    let (_, outcome) = state
        .handler
        .execute::<ReviewItem>(&item_id, &command, &meta)
        .await?;
    item_answer(&state, &item_id, &outcome).await
}

// What the service does by itself (the review reactor and the timers).

/// Opens one item of a launch (nothing if it is open already).
pub async fn open_item(
    handler: &CommandHandler,
    opened: v1::ReviewItemOpened,
) -> Result<Position, CommandError> {
    let id = opened.item_id.clone();
    let meta = system_meta(None, &opened.review_id);
    let (_, out) = handler
        .execute::<ReviewItem>(&id, &ItemCommand::Open(Box::new(opened)), &meta)
        .await?;
    Ok(out.position)
}

/// Says every item of campaign `review_id`'s launch is open.
pub async fn finish_listing(
    handler: &CommandHandler,
    review_id: &str,
    item_count: u64,
) -> Result<Position, CommandError> {
    let (_, out) = handler
        .execute::<Review>(
            review_id,
            &ReviewCommand::Listed { item_count },
            &system_meta(None, review_id),
        )
        .await?;
    Ok(out.position)
}

/// Closes campaign `review_id` at its due date; answers the position
/// written (0: nothing, it was closed already or is not due).
pub async fn close_due(
    handler: &CommandHandler,
    review_id: &str,
) -> Result<Position, CommandError> {
    let (_, out) = handler
        .execute::<Review>(
            review_id,
            &ReviewCommand::Close { due: true },
            &system_meta(None, review_id),
        )
        .await?;
    Ok(if out.events_written > 0 {
        out.position
    } else {
        0
    })
}

/// Applies a closed campaign's `onDue` to item `item_id` if it is undecided.
pub async fn apply_on_due(
    handler: &CommandHandler,
    item_id: &str,
    decision: &str,
) -> Result<Position, CommandError> {
    let command = ItemCommand::ApplyOnDue {
        decision: decision.to_string(),
    };
    let (_, out) = handler
        .execute::<ReviewItem>(item_id, &command, &system_meta(None, item_id))
        .await?;
    Ok(out.position)
}

/// Ends the grant a `revoke` decision on item `item_id` was about (reason
/// `review`; deprovisioned where its plan says so). Nothing if it ended.
pub async fn end_revoked_grant(
    handler: &CommandHandler,
    item_id: &str,
) -> Result<(), CommandError> {
    let (item, _) = handler.load::<ReviewItem>(item_id).await?;
    if !item.revoked() {
        return Ok(());
    }
    let o = &item.opened;
    let command = AccessCommand::EndForReview {
        grant_id: o.grant_id.clone(),
        item_id: item_id.to_string(),
    };
    handler
        .execute::<AccessPair>(
            &pair_key(&o.user_id, &o.entitlement_id),
            &command,
            &system_meta(None, item_id),
        )
        .await?;
    Ok(())
}
