//! Writes of access requests: create (for several users × items, with an
//! error per refused pair), validate (the same checks, nothing written), and
//! the actions approve, reject, comment, reassign, modify and cancel.
//!
//! Creating one request, for one pair that passed its checks:
//! 1. resolve the policy (the entitlement's, else the app's, else the
//!    built-in default: one "Approval" step by `APP_OWNERS`) into phases;
//! 2. open the request on the access pair (`access-<user>_<entitlement>`),
//!    which refuses a second open request of the same kind: `DUPLICATE`,
//!    even for identical requests sent at the same moment;
//! 3. write the request; an auto-approving policy approves it at once, and
//!    it is fulfilled before the answer.
//!
//! Where the log commits several streams atomically (the embedded log and
//! JetStream), 2 and 3 (and an auto-approval's grant) are one append, and so
//! is a deciding approval with its grant; on KurrentDB they are appended one
//! by one. The retry of a keyed command (`Idempotency-Key`) answers its first
//! outcome either way.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::RequestView;
use iga_domain::access::{pair_key, AccessCommand, AccessPair, PairRefusal};
use iga_domain::app::App;
use iga_domain::claim::{may_take_over, Holder};
use iga_domain::eligibility::{self, GrantWindow, PairAsk, PairFacts, RequestDates};
use iga_domain::entitlement::{builtin_access, Entitlement};
use iga_domain::policy::Policy;
use iga_domain::request::{AccessRequest, RequestCommand};
use iga_domain::routing::{self, Routing, RoutingFacts, UserFacts};
use iga_domain::user::User;
use iga_domain::{Aggregate, DomainError};
use iga_http::{ApiJson, Principal, Problem, CONSISTENCY_TOKEN};
use iga_schemas::v1;
use serde::{Deserialize, Serialize};

use crate::state::{meta, CommandState, RequestSettings};
use crate::{CommandError, CommandMeta};

/// Most users, items, and pairs in one create.
pub const MAX_USERS: usize = 100;
pub const MAX_ITEMS: usize = 100;
pub const MAX_PAIRS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Entitlement,
    Application,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogItemRef {
    #[serde(rename = "type")]
    pub kind: ItemType,
    #[schema(min_length = 1, max_length = 200)]
    pub id: String,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessModifier {
    Add,
    Remove,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequests {
    /// Beneficiaries; the caller when empty.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub users: Vec<String>,
    #[schema(min_items = 1, max_items = 100)]
    pub catalogs: Vec<CatalogItemRef>,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub justification: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// RFC 3339; the grant starts then (default: when approved).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_date: Option<String>,
    /// RFC 3339; capped by the entitlement's maximum duration.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub end_date: Option<String>,
    /// RFC 3339; the request is cancelled if not complete by then.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expiry_date: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub external_request_id: Option<String>,
    /// Letters, digits, `_` and `-`, at most 32: prepended to the ids.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{0,32}$")]
    pub request_id_prefix: Option<String>,
    /// `add` (default) or `remove`.
    #[serde(default)]
    pub access_modifier: Option<AccessModifier>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairError {
    /// `DUPLICATE`, `ALREADY_GRANTED`, `NOT_GRANTED`, `NOT_FOUND`, `NOT_REQUESTABLE`, `INVALID`.
    pub error: String,
    pub message: String,
    pub user: String,
    pub catalog_id: String,
    /// The open request, for `DUPLICATE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAnswer {
    /// The ids of the requests created (none for validate).
    pub result: Vec<String>,
    pub errors: Vec<PairError>,
}

/// An optional date field: absent or empty is 0 (none).
fn date(field: &str, text: Option<&str>) -> Result<i64, Problem> {
    match text.filter(|t| !t.is_empty()) {
        Some(t) => iga_http::parse_rfc3339_micros(field, t),
        None => Ok(0),
    }
}

/// Everything known about one pair once it passed its checks.
struct Checked {
    user: User,
    app: App,
    entitlement: Entitlement,
    item: CatalogItemRef,
    end_date_micros: i64,
}

/// Inside a command, loads at once what the checks and the create of one
/// pair look at first (the user, the item, the pair, the request's own
/// stream), so their loads find them read: one wait on a remote log
/// instead of one per aggregate. What depends on them (the item's app or
/// access entitlement, the policy, the approvers) is loaded after.
/// Only a head start: what fails here (an id no stream can have, the log
/// away) is met, and answered, by the loads that follow, as before.
async fn warm_pair(
    state: &CommandState,
    user_id: &str,
    item: &CatalogItemRef,
    request_id: Option<&String>,
) {
    if !crate::in_command() {
        return;
    }
    let h = &state.handler;
    let request = async {
        if let Some(id) = request_id {
            let _ = h.load::<AccessRequest>(id).await;
        }
    };
    match item.kind {
        ItemType::Entitlement => {
            let pair = pair_key(user_id, &item.id);
            let _ = tokio::join!(
                h.load::<User>(user_id),
                h.load::<Entitlement>(&item.id),
                h.load::<AccessPair>(&pair),
                request,
            );
        }
        ItemType::Application => {
            let _ = tokio::join!(h.load::<User>(user_id), h.load::<App>(&item.id), request);
        }
    }
}

/// Loads what the domain's pair checks ([`eligibility::check_pair`]) look
/// at, and asks them; `Err` is the pair's error.
async fn check_pair(
    state: &CommandState,
    settings: &RequestSettings,
    body: &CreateRequests,
    user_id: &str,
    item: &CatalogItemRef,
    dates: RequestDates,
) -> Result<Result<Checked, PairError>, Problem> {
    let remove = body.access_modifier == Some(AccessModifier::Remove);
    let (user, _) = state.handler.load::<User>(user_id).await?;
    // The item: an entitlement, or an app standing for its access entitlement.
    let (app, entitlement) = match item.kind {
        ItemType::Application => {
            let (app, _) = state.handler.load::<App>(&item.id).await?;
            let entitlement = if app.exists() {
                let (ent, _) = state
                    .handler
                    .load::<Entitlement>(&app.fields.access_entitlement_id)
                    .await?;
                Some(if ent.exists() {
                    ent
                } else {
                    Entitlement {
                        fields: builtin_access(&app.fields),
                        deleted: false,
                    }
                })
            } else {
                None
            };
            (app.exists().then_some(app), entitlement)
        }
        ItemType::Entitlement => {
            let (ent, _) = state.handler.load::<Entitlement>(&item.id).await?;
            if ent.exists() {
                let (app, _) = state.handler.load::<App>(&ent.fields.app_id).await?;
                (Some(app), Some(ent))
            } else {
                (None, None)
            }
        }
    };
    let entitlement_id = entitlement
        .as_ref()
        .map(|e| e.fields.entitlement_id.clone())
        .unwrap_or_default();
    let pair = if user.exists() && !entitlement_id.is_empty() {
        state
            .handler
            .load::<AccessPair>(&pair_key(user_id, &entitlement_id))
            .await?
            .0
    } else {
        AccessPair::default()
    };
    let facts = PairFacts {
        user: &user,
        app: app.as_ref(),
        entitlement: entitlement.as_ref(),
        pair: &pair,
        item_kind: match item.kind {
            ItemType::Application => "app",
            ItemType::Entitlement => "entitlement",
        },
        item_id: &item.id,
    };
    let ask = PairAsk {
        remove,
        justification: &body.justification,
        justification_risk_levels: &settings.justification_risk_levels,
    };
    if let Err(refused) = eligibility::check_pair(&facts, &ask) {
        let request_id = match &refused {
            eligibility::PairError::Pair(PairRefusal::Duplicate(id)) => Some(id.clone()),
            _ => None,
        };
        let message = match &refused {
            eligibility::PairError::NotFound(m) => m.clone(),
            eligibility::PairError::NotRequestable => format!("{} cannot be requested", item.id),
            eligibility::PairError::JustificationRequired { risk_level } => {
                format!("a justification is required for risk level {risk_level:?}")
            }
            eligibility::PairError::Pair(PairRefusal::Duplicate(id)) => {
                format!("request {id} is already open for this user and item")
            }
            eligibility::PairError::Pair(PairRefusal::AlreadyGranted) => {
                "the user already holds this access".into()
            }
            eligibility::PairError::Pair(PairRefusal::NotGranted) => {
                "the user does not hold this access".into()
            }
        };
        return Ok(Err(PairError {
            error: refused.code().into(),
            message,
            user: user_id.into(),
            catalog_id: item.id.clone(),
            request_id,
        }));
    }
    let (Some(app), Some(entitlement)) = (app, entitlement) else {
        unreachable!("check_pair refuses a missing app or entitlement");
    };
    // The grant window, capped by the maximum duration.
    let end_date_micros =
        GrantWindow::of(&entitlement, dates.start).capped_end(dates.end, crate::now_unix_micros());
    Ok(Ok(Checked {
        user,
        app,
        entitlement,
        item: item.clone(),
        end_date_micros,
    }))
}

/// A pair's policy, resolved into phases ([`iga_domain::routing`]).
struct Resolved {
    policy_id: String,
    policy_version: u64,
    allow_self_approval: bool,
    auto_approve: bool,
    routing: Routing,
}

/// Loads the pair's policy (the entitlement's, else the app's, else the
/// built-in default) and the users it names, and lets the domain resolve it.
async fn resolve_phases(
    state: &CommandState,
    checked: &Checked,
    requester: &str,
    remove: bool,
) -> Result<Resolved, Problem> {
    let f = &checked.entitlement.fields;
    let a = &checked.app.fields;
    let candidates = if remove {
        [&f.revoke_policy_id, &a.revoke_policy_id]
    } else {
        [&f.grant_policy_id, &a.grant_policy_id]
    };
    let mut found = None;
    for id in candidates.into_iter().filter(|id| !id.is_empty()) {
        let (policy, _) = state.handler.load::<Policy>(id).await?;
        if policy.exists() && !policy.deleted {
            found = Some(policy);
            break;
        }
    }
    let (policy_id, policy_version, definition) = match found {
        Some(p) => (p.id.clone(), p.version, p.definition.clone()),
        None => (String::new(), 0, routing::default_policy()),
    };
    let mut facts = RoutingFacts {
        requester_id: requester.to_string(),
        beneficiary_id: checked.user.id.clone(),
        beneficiary_manager_ids: checked.user.manager_ids.clone(),
        app_owner_ids: a.owner_ids.clone(),
        entitlement_owner_ids: f.owner_ids.clone(),
        users: Default::default(),
    };
    // The named users, then their delegates (one level: a delegate's own
    // delegate stands for nobody).
    let named = routing::users_to_load(&definition, &facts);
    load_user_facts(state, named, &mut facts).await?;
    let delegates = routing::delegates_to_load(&facts);
    load_user_facts(state, delegates, &mut facts).await?;
    Ok(Resolved {
        policy_id,
        policy_version,
        allow_self_approval: definition.allow_self_approval,
        auto_approve: definition.auto_approve,
        routing: routing::resolve(&definition, &facts),
    })
}

async fn load_user_facts(
    state: &CommandState,
    ids: std::collections::BTreeSet<String>,
    facts: &mut RoutingFacts,
) -> Result<(), Problem> {
    // At once: on a remote log each load is a round trip.
    let loaded =
        futures::future::try_join_all(ids.iter().map(|id| state.handler.load::<User>(id))).await?;
    for (id, (u, _)) in ids.into_iter().zip(loaded) {
        if u.exists() {
            facts.users.insert(
                id,
                UserFacts {
                    enabled: u.enabled,
                    delegated_user_id: u.delegated_user_id.clone(),
                },
            );
        }
    }
    Ok(())
}

/// The users a create is for (the caller by default) and its id prefix,
/// once the body is within its bounds.
fn bounded(principal: &Principal, body: &CreateRequests) -> Result<(Vec<String>, String), Problem> {
    let users = if body.users.is_empty() {
        vec![principal.user_id.clone()]
    } else {
        iga_domain::app::dedup(body.users.clone())
    };
    if users.len() > MAX_USERS
        || body.catalogs.len() > MAX_ITEMS
        || users.len() * body.catalogs.len() > MAX_PAIRS
    {
        return Err(Problem::bad_request(format!(
            "at most {MAX_USERS} users, {MAX_ITEMS} items and {MAX_PAIRS} pairs per request"
        ))
        .with_field("catalogs", "too many"));
    }
    if body
        .catalogs
        .iter()
        .any(|c| c.id.is_empty() || c.id.chars().count() > 200)
    {
        return Err(
            Problem::bad_request("a catalog item id is 1 to 200 characters")
                .with_field("catalogs", "id of 1 to 200 characters"),
        );
    }
    if body.catalogs.is_empty() {
        return Err(
            Problem::bad_request("name at least one catalog item").with_field("catalogs", "empty")
        );
    }
    if body.justification.chars().count() > 4096 {
        return Err(Problem::bad_request("justification is too long")
            .with_field("justification", "at most 4096 characters"));
    }
    let prefix = body.request_id_prefix.clone().unwrap_or_default();
    if prefix.len() > 32
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(
            Problem::bad_request("requestIdPrefix is not usable in an id")
                .with_field("requestIdPrefix", "at most 32 letters, digits, '_' or '-'"),
        );
    }
    Ok((users, prefix))
}

/// What a new request records, gathered.
struct Created<'a> {
    request_id: &'a str,
    /// Who asks (the authenticated caller), and what is known of them.
    requester_id: &'a str,
    requester: &'a User,
    checked: &'a Checked,
    body: &'a CreateRequests,
    dates: RequestDates,
    remove: bool,
}

impl Created<'_> {
    /// The `AccessRequestCreated` of one pair, routed by `resolved`.
    fn event(&self, resolved: Resolved) -> v1::AccessRequestCreated {
        let Created {
            request_id,
            requester_id,
            requester,
            checked,
            body,
            dates,
            remove,
        } = self;
        let f = &checked.entitlement.fields;
        let kind = match checked.item.kind {
            ItemType::Entitlement => "entitlement",
            ItemType::Application => "application",
        };
        v1::AccessRequestCreated {
            request_id: request_id.to_string(),
            requester_id: requester_id.to_string(),
            user_id: checked.user.id.clone(),
            app_id: checked.app.fields.app_id.clone(),
            entitlement_id: f.entitlement_id.clone(),
            catalog_type: kind.into(),
            request_type: format!("{kind}{}", if *remove { "Remove" } else { "Grant" }),
            priority: match body.priority.unwrap_or(Priority::Low) {
                Priority::Low => "low",
                Priority::Medium => "medium",
                Priority::High => "high",
            }
            .into(),
            justification: body.justification.clone(),
            start_date_micros: dates.start,
            end_date_micros: checked.end_date_micros,
            expiry_date_micros: dates.expiry,
            external_request_id: body.external_request_id.clone().unwrap_or_default(),
            policy_id: resolved.policy_id,
            policy_version: resolved.policy_version,
            allow_self_approval: resolved.allow_self_approval,
            phases: resolved.routing.phases,
            excluded_approver_ids: resolved.routing.excluded,
            requester_username: requester.username.clone(),
            requester_display_name: requester.display_name.clone(),
            user_username: checked.user.username.clone(),
            user_display_name: checked.user.display_name.clone(),
            catalog_display_name: match checked.item.kind {
                ItemType::Entitlement => f.display_name.clone(),
                ItemType::Application => checked.app.fields.display_name.clone(),
            },
            app_display_name: checked.app.fields.display_name.clone(),
        }
    }
}

async fn create_or_validate(
    state: CommandState,
    principal: Principal,
    headers: HeaderMap,
    body: CreateRequests,
    write: bool,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (users, prefix) = bounded(&principal, &body)?;
    let dates = RequestDates {
        start: date("startDate", body.start_date.as_deref())?,
        end: date("endDate", body.end_date.as_deref())?,
        expiry: date("expiryDate", body.expiry_date.as_deref())?,
    };
    eligibility::check_dates(dates, meta.ctx.now_unix_micros).map_err(CommandError::from)?;
    // Requesting for someone else takes an admin or one of their managers.
    for u in &users {
        if *u != principal.user_id {
            let (user, _) = state.handler.load::<User>(u).await?;
            eligibility::may_request_for(&meta.ctx, &user).map_err(CommandError::from)?;
        }
    }
    let settings = state.requests.clone();
    let remove = body.access_modifier == Some(AccessModifier::Remove);
    let request_id = |ui: usize, ci: usize| {
        format!(
            "{prefix}{}",
            match &meta.idempotency_key {
                Some(k) => crate::state::derived_id("request", &format!("{k}\0{ui}\0{ci}")),
                None => uuid::Uuid::now_v7().to_string(),
            }
        )
    };
    let first_id = request_id(0, 0);
    let (requester, ()) = tokio::join!(
        state.handler.load::<User>(&principal.user_id),
        warm_pair(
            &state,
            &users[0],
            &body.catalogs[0],
            write.then_some(&first_id)
        ),
    );
    let (requester, _) = requester?;
    let mut answer = CreateAnswer {
        result: vec![],
        errors: vec![],
    };
    let mut position = 0;
    for (ui, user_id) in users.iter().enumerate() {
        for (ci, item) in body.catalogs.iter().enumerate() {
            let request_id = if (ui, ci) == (0, 0) {
                first_id.clone()
            } else {
                let id = request_id(ui, ci);
                warm_pair(&state, user_id, item, write.then_some(&id)).await;
                id
            };
            if write && meta.idempotency_key.is_some() {
                // The retry of a keyed create finds its request written (the
                // id is derived from the key): answered as the first time,
                // before the pair's checks, which would now see it open.
                let (existing, at) = state.handler.snapshot::<AccessRequest>(&request_id).await?;
                if existing.exists() {
                    position = position.max(at.position);
                    answer.result.push(request_id);
                    continue;
                }
            }
            let checked = match check_pair(&state, &settings, &body, user_id, item, dates).await? {
                Ok(c) => c,
                Err(e) => {
                    answer.errors.push(e);
                    continue;
                }
            };
            if !write {
                continue;
            }
            let resolved = resolve_phases(&state, &checked, &principal.user_id, remove).await?;
            let auto_approve = resolved.auto_approve;
            let f = &checked.entitlement.fields;
            let created = Created {
                request_id: &request_id,
                requester_id: &principal.user_id,
                requester: &requester,
                checked: &checked,
                body: &body,
                dates,
                remove,
            }
            .event(resolved);
            let command = RequestCommand::Create {
                created: Box::new(created),
                auto_approve,
            };
            AccessRequest::default()
                .decide(&command, &meta.ctx)
                .map_err(CommandError::from)?;
            // Open it on the pair: of identical requests, one wins.
            let pair = pair_key(user_id, &f.entitlement_id);
            let opening = Opening {
                pair: &pair,
                user_id,
                entitlement_id: &f.entitlement_id,
                request_id: &request_id,
                remove,
            };
            match open_and_create(&state, &meta, &opening, &command).await? {
                Ok(at) => position = position.max(at),
                Err(e) => {
                    answer.errors.push(PairError {
                        user: user_id.clone(),
                        catalog_id: item.id.clone(),
                        ..e
                    });
                    continue;
                }
            }
            answer.result.push(request_id);
        }
    }
    if !write {
        return Ok(Json(answer).into_response());
    }
    if position == 0 {
        position = state
            .handler
            .store()
            .head()
            .await
            .map_err(CommandError::from)?;
    }
    let mut response = (StatusCode::CREATED, Json(answer)).into_response();
    response
        .headers_mut()
        .insert(CONSISTENCY_TOKEN, axum::http::HeaderValue::from(position));
    Ok(response)
}

/// A request to open on its access pair.
struct Opening<'a> {
    pair: &'a str,
    user_id: &'a str,
    entitlement_id: &'a str,
    request_id: &'a str,
    remove: bool,
}

/// The command opening the request on its pair. An open request of the same
/// kind whose stream was never written (its writer died between the two
/// appends of the step-by-step path) is replaced once it is old enough.
async fn open_command(
    state: &CommandState,
    meta: &CommandMeta,
    o: &Opening<'_>,
) -> Result<AccessCommand, CommandError> {
    let (current, at) = state.handler.snapshot::<AccessPair>(o.pair).await?;
    let open = if o.remove {
        &current.open_remove_request
    } else {
        &current.open_grant_request
    };
    // A request still open on the pair holds it; one never written (its
    // creator died between opening and writing it) is taken over after a while.
    let holder_gone = match open {
        Some(other) if other != o.request_id => {
            let (r, _) = state.handler.load::<AccessRequest>(other).await?;
            let found = if r.exists() {
                Holder::Live
            } else {
                Holder::Missing
            };
            may_take_over(found, at.updated_at_unix_micros, meta.ctx.now_unix_micros)
        }
        _ => false,
    };
    Ok(AccessCommand::Open {
        user_id: o.user_id.into(),
        entitlement_id: o.entitlement_id.into(),
        request_id: o.request_id.into(),
        remove: o.remove,
        holder_gone,
    })
}

/// The pair's refusal of an open (`what`: the domain's words), as the
/// per-pair error of a create.
async fn refused(
    state: &CommandState,
    o: &Opening<'_>,
    what: String,
) -> Result<PairError, CommandError> {
    let (now, _) = state.handler.load::<AccessPair>(o.pair).await?;
    let refusal = now.refusal(o.remove);
    let request = match &refusal {
        Some(PairRefusal::Duplicate(id)) => Some(id.clone()),
        _ => None,
    };
    Ok(PairError {
        error: refusal.as_ref().map_or("DUPLICATE", |r| r.code()).into(),
        message: format!("{what} for this user and item"),
        user: o.user_id.into(),
        catalog_id: o.entitlement_id.into(),
        request_id: request,
    })
}

/// Opens the request on its pair and writes it as one commit (and, for an
/// auto-approved request, its grant and fulfilment too): on a log that
/// commits atomically no crash can leave a pair held by a request that was
/// never written. Answers the position of the commit, or the pair's refusal.
async fn open_and_create(
    state: &CommandState,
    meta: &CommandMeta,
    o: &Opening<'_>,
    create: &RequestCommand,
) -> Result<Result<u64, PairError>, Problem> {
    let handler = &state.handler;
    let request_stream = AccessRequest::stream_id(o.request_id);
    let pair_stream = AccessPair::stream_id(o.pair);
    let _serialised = handler.lock_streams(&[&request_stream, &pair_stream]).await;
    let side = meta.for_side_stream();
    for attempt in 0..crate::MAX_ATTEMPTS {
        crate::back_off(attempt).await;
        let open = open_command(state, meta, o).await?;
        let opened = match handler.decide::<AccessPair>(o.pair, &open, &side).await {
            Ok(d) => d,
            Err(CommandError::Domain(DomainError::AlreadyExists(what))) => {
                return Ok(Err(refused(state, o, what).await?));
            }
            Err(e) => return Err(e.into()),
        };
        let request = handler
            .decide::<AccessRequest>(o.request_id, create, meta)
            .await?;
        if let Some(done) = &request.retried {
            // A retry of a keyed create whose request is written: finish
            // what it led to (idempotent) and answer as the first time.
            let position = done.position;
            drop(_serialised);
            let finished = crate::fulfilment::fulfil(handler, o.request_id).await?;
            return Ok(Ok(position.max(finished)));
        }
        let mut on_pair = opened.then();
        let mut fulfilment = request.then();
        crate::fulfilment::decide_follow_ups(
            handler,
            o.request_id,
            &opened.state,
            &mut on_pair,
            &mut fulfilment,
        )
        .await?;
        if request.is_new() {
            handler.start_view::<RequestView>(&request_stream);
        }
        let decided: [&dyn crate::Decided; 4] = [&opened, &request, &on_pair, &fulfilment];
        match handler.commit(&decided).await {
            Ok(committed) if committed.whole => return Ok(Ok(committed.position().unwrap_or(0))),
            Ok(committed) if committed.results[1].is_some() => {
                // Written one by one, and a later part was refused: the
                // request is open, finish what it leads to.
                drop(_serialised);
                let finished = crate::fulfilment::fulfil(handler, o.request_id).await?;
                return Ok(Ok(committed.position().unwrap_or(0).max(finished)));
            }
            Ok(_) => {
                return Err(Problem::internal(format!(
                    "request {} could not be written after its pair was opened",
                    o.request_id
                )))
            }
            Err(CommandError::EventLog(iga_eventlog::EventLogError::Conflict { .. })) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::TooMuchContention {
        stream: request_stream,
    }
    .into())
}

/// Creates access requests: one per user × item that passes its checks, an error for each other pair.
#[utoipa::path(post, path = "/requests", tag = "requests", request_body = CreateRequests,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first outcome")),
    responses((status = 201, description = "Created (some pairs may have errors)", body = CreateAnswer), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_requests(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateRequests>,
) -> Result<Response, Problem> {
    create_or_validate(state, principal, headers, body, true).await
}

/// Runs every check of a create and answers the same shape; creates nothing.
#[utoipa::path(post, path = "/requests/validate", tag = "requests", request_body = CreateRequests,
    responses((status = 200, description = "What a create would answer", body = CreateAnswer), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn validate_requests(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateRequests>,
) -> Result<Response, Problem> {
    create_or_validate(state, principal, headers, body, false).await
}

/// The request as the API shows it: the handler's [`crate::View`] of its
/// stream, advanced by the events the command just appended.
pub async fn request_view(state: &CommandState, id: &str) -> Result<RequestView, Problem> {
    Ok(state
        .handler
        .view::<RequestView>(&AccessRequest::stream_id(id))
        .await?)
}

impl crate::View for RequestView {
    fn apply(&mut self, event: &iga_schemas::DomainEvent, recorded_at: i64, version: u64) {
        RequestView::apply(self, event, recorded_at, version)
    }
}

/// Runs an action, then whatever the decision calls for, and answers the
/// request with a consistency token that covers it all.
async fn act(
    state: &CommandState,
    principal: &Principal,
    headers: &HeaderMap,
    id: &str,
    command: RequestCommand,
) -> Result<Response, Problem> {
    let meta = meta(principal, headers)?;
    let handler = &state.handler;
    // The decision and what it leads to (the grant, or the pair's closing)
    // are one commit.
    let (_, out) = crate::fulfilment::decide_and_fulfil(handler, id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("request", id))?;
    let position = out.position;
    let view = request_view(state, id).await?;
    Ok(iga_http::object_response(
        StatusCode::OK,
        view.version,
        Some(position),
        &view,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decide {
    /// The current phase's name (checked when given).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub phase_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub justification: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub comment: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentBody {
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub comment: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reassign {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub phase_name: Option<String>,
    #[schema(min_items = 1, max_items = 25)]
    pub to_user_ids: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub comment: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Modify {
    /// RFC 3339; earlier than the current end.
    #[schema(format = DateTime)]
    pub end_date: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cancel {
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub comment: String,
}

/// Approves the current phase (its active actors, admins).
#[utoipa::path(post, path = "/requests/{id}/approve", tag = "requests", request_body = Decide,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Decide>,
) -> Result<Response, Problem> {
    let command = RequestCommand::Approve {
        phase: body.phase_name,
        justification: body.justification,
        comment: body.comment,
    };
    act(&state, &principal, &headers, &id, command).await
}

/// Rejects the request (active actors of the current phase, admins).
#[utoipa::path(post, path = "/requests/{id}/reject", tag = "requests", request_body = Decide,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Decide>,
) -> Result<Response, Problem> {
    let command = RequestCommand::Reject {
        phase: body.phase_name,
        justification: body.justification,
        comment: body.comment,
    };
    act(&state, &principal, &headers, &id, command).await
}

/// Comments (requester, beneficiary, actors, admins).
#[utoipa::path(post, path = "/requests/{id}/comment", tag = "requests", request_body = CommentBody,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn comment(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CommentBody>,
) -> Result<Response, Problem> {
    act(
        &state,
        &principal,
        &headers,
        &id,
        RequestCommand::Comment {
            comment: body.comment,
        },
    )
    .await
}

/// Hands the caller's task in the current phase to other users (active actors, admins).
#[utoipa::path(post, path = "/requests/{id}/reassign", tag = "requests", request_body = Reassign,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn reassign(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Reassign>,
) -> Result<Response, Problem> {
    // Bounded before anything is loaded for it (the domain refuses it too).
    if body.to_user_ids.len() > iga_domain::request::MAX_REASSIGN {
        return Err(CommandError::from(iga_domain::DomainError::invalid(
            "toUserIds",
            format!("1 to {} users", iga_domain::request::MAX_REASSIGN),
        ))
        .into());
    }
    crate::refs::users_exist(&state, &body.to_user_ids, "toUserIds").await?;
    let command = RequestCommand::Reassign {
        phase: body.phase_name,
        to_user_ids: body.to_user_ids,
        comment: body.comment,
    };
    act(&state, &principal, &headers, &id, command).await
}

/// Shortens the grant window (active actors, admins); never lengthens it.
#[utoipa::path(post, path = "/requests/{id}/modify", tag = "requests", request_body = Modify,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn modify(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Modify>,
) -> Result<Response, Problem> {
    let end = date("endDate", Some(&body.end_date))?;
    let (req, _) = state.handler.load::<AccessRequest>(&id).await?;
    let (ent, _) = state
        .handler
        .load::<Entitlement>(&req.created.entitlement_id)
        .await?;
    let max_end = GrantWindow::of(&ent, req.created.start_date_micros)
        .latest_end(crate::now_unix_micros())
        .unwrap_or(0);
    let command = RequestCommand::Modify {
        end_date_micros: end,
        max_end_micros: max_end,
    };
    act(&state, &principal, &headers, &id, command).await
}

/// Cancels the request (requester, admins) while it is in progress.
#[utoipa::path(post, path = "/requests/{id}/cancel", tag = "requests", request_body = Cancel,
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // The body is optional here: an empty one cancels without a comment.
    let comment = iga_http::json::optional_json::<Cancel>(&body)?.comment;
    act(
        &state,
        &principal,
        &headers,
        &id,
        RequestCommand::Cancel { comment },
    )
    .await
}
