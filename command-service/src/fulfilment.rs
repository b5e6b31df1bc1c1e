//! Fulfilment and time: what happens after a decision, and when a date passes.
//!
//! [`fulfil`] turns an approved request into a grant (or a revocation) and
//! records the outcome on the request; for a rejected or cancelled request it
//! closes the request on its access pair. Every command it issues is
//! idempotent (system commands keyed by the request id), so it may run any
//! number of times: the HTTP handlers run it at once after a decision (so the
//! answer's consistency token covers the grant), and the `reactors` crate's
//! fulfilment reactor runs it again from the log, which finishes the work if
//! the process died between the decision and the grant.
//!
//! [`expire_grant`] and [`expire_request`] are what the `reactors` crate's
//! timer driver issues when a grant's `deprovisionAt` or a request's
//! `expiryDate` passes (an approved request's `startDate` is [`fulfil`]).

use iga_domain::access::{pair_key, AccessCommand, AccessPair, GrantFacts};
use iga_domain::eligibility::GrantWindow;
use iga_domain::entitlement::Entitlement;
use iga_domain::fulfilment::{self, Issuing, Next};
use iga_domain::request::{AccessRequest, RequestCommand};
use iga_domain::Context;
use iga_eventlog::Position;
use iga_schemas::v1;

use crate::{now_unix_micros, CommandError, CommandHandler, CommandMeta, Decision, Outcome};

/// The principal of commands the service issues itself.
pub use iga_domain::provisioning::SYSTEM;

/// Who the service is when it issues a command itself (fulfilment, timers,
/// deliveries): `key` keys the command's events, `correlation` ties its
/// events to what caused them.
pub fn system_meta(key: Option<String>, correlation: &str) -> CommandMeta {
    CommandMeta {
        ctx: Context {
            actor_id: SYSTEM.into(),
            actor_roles: vec![],
            now_unix_micros: now_unix_micros(),
        },
        correlation_id: correlation.to_string(),
        idempotency_key: key,
        expected_version: None,
    }
}

/// A stable grant id for the grant a request issues.
fn grant_id_for(request_id: &str) -> String {
    crate::state::derived_id("grant", request_id)
}

/// What holds now of the user, the entitlement and the app of a grant,
/// loaded for the domain's check ([`iga_domain::access::grantable`]), and
/// how a grant issued now reaches its system
/// ([`iga_domain::provisioning::plan`], stamped on the grant).
pub(crate) async fn grant_facts(
    handler: &CommandHandler,
    user_id: &str,
    entitlement_id: &str,
    app_id: &str,
) -> Result<(GrantFacts, Option<v1::Provisioning>), CommandError> {
    let (user, _) = handler.load::<iga_domain::user::User>(user_id).await?;
    let (app, _) = handler.load::<iga_domain::app::App>(app_id).await?;
    let (ent, _) = handler.load::<Entitlement>(entitlement_id).await?;
    // The built-in access entitlement lives as long as its app until first written.
    let builtin =
        !ent.exists() && app.exists() && app.fields.access_entitlement_id == entitlement_id;
    let facts = GrantFacts {
        user_enabled: user.exists() && user.enabled,
        entitlement_live: (ent.exists() && !ent.deleted) || builtin,
        app_active: app.exists() && !app.deleted && app.active,
    };
    let plan = iga_domain::provisioning::plan(
        app.fields.provisioning.as_ref(),
        ent.fields.provisioning.as_ref(),
        &app.fields.owner_ids,
    );
    Ok((facts, plan))
}

/// The command finishing decided request `req` takes on its access pair
/// ([`iga_domain::fulfilment::next`]), loading what issuing a grant needs;
/// `None` when there is nothing to do.
async fn pair_command(
    handler: &CommandHandler,
    request_id: &str,
    req: &AccessRequest,
    now: i64,
) -> Result<Option<AccessCommand>, CommandError> {
    let next = fulfilment::next(req, now);
    let issuing = match next {
        Next::Issue { .. } => {
            let c = &req.created;
            let (ent, _) = handler.load::<Entitlement>(&c.entitlement_id).await?;
            let (facts, plan) =
                grant_facts(handler, &c.user_id, &c.entitlement_id, &c.app_id).await?;
            Some(Issuing {
                window: GrantWindow::of(&ent, c.start_date_micros),
                facts,
                grant_id: grant_id_for(request_id),
                plan,
            })
        }
        _ => None,
    };
    Ok(fulfilment::pair_command(req, request_id, next, || {
        issuing.expect("loaded for an issue")
    }))
}

/// Finishes what a decided request calls for; answers the position of the
/// last event written (0 when there was nothing to do).
pub async fn fulfil(handler: &CommandHandler, request_id: &str) -> Result<Position, CommandError> {
    let (req, at) = handler.snapshot::<AccessRequest>(request_id).await?;
    if !req.exists() {
        return Ok(0);
    }
    if req.fulfilled {
        // Done already (by the reactor, or an earlier try): the request's
        // last event, written after the grant, is the position that covers it.
        return Ok(at.position);
    }
    let meta = system_meta(Some(format!("fulfil\0{request_id}")), request_id);
    let Some(command) = pair_command(handler, request_id, &req, meta.ctx.now_unix_micros).await?
    else {
        return Ok(0);
    };
    let pair = pair_key(&req.created.user_id, &req.created.entitlement_id);
    let (before, _) = handler.load::<AccessPair>(&pair).await?;
    let (after, out) = handler
        .execute::<AccessPair>(&pair, &command, &meta)
        .await?;
    if req.approved != Some(true) {
        return Ok(out.position);
    }
    let done = fulfilment::record(&req, &command, &before, &after);
    let (_, fulfilled) = handler
        .execute::<AccessRequest>(request_id, &done, &meta)
        .await?;
    Ok(out.position.max(fulfilled.position))
}

/// Decides what finishing the request `fulfilment` leads to takes (what
/// [`fulfil`] writes): the pair's change onto `on_pair` (`before` is the
/// pair before it), then, for an approved request, its fulfilment onto
/// `fulfilment`. Nothing for a request still in progress.
pub(crate) async fn decide_follow_ups(
    handler: &CommandHandler,
    request_id: &str,
    before: &AccessPair,
    on_pair: &mut Decision<AccessPair>,
    fulfilment: &mut Decision<AccessRequest>,
) -> Result<(), CommandError> {
    let req = &fulfilment.state;
    if !req.exists() {
        return Ok(());
    }
    let meta = system_meta(Some(format!("fulfil\0{request_id}")), request_id);
    let now = meta.ctx.now_unix_micros;
    let Some(command) = pair_command(handler, request_id, req, now).await? else {
        return Ok(());
    };
    handler.decide_more(on_pair, &command, &meta)?;
    if req.approved == Some(true) {
        let done = fulfilment::record(req, &command, before, &on_pair.state);
        handler.decide_more(fulfilment, &done, &meta)?;
    }
    Ok(())
}

/// Runs `command` on request `id` and, if it decides the request, what
/// [`fulfil`] would then write (the grant or its end, or the pair's closing,
/// and the request's fulfilment), as one commit: on a log that commits
/// atomically no crash can leave an approved request without its grant; on
/// one that appends one by one, what a refusal or a crash leaves undone is
/// finished here at once by [`fulfil`] (and else by the fulfilment
/// reactor). The events and their ids are the ones [`fulfil`] writes, so
/// either finds nothing left to do after the other. A retried keyed command
/// answers its first outcome.
pub async fn decide_and_fulfil(
    handler: &CommandHandler,
    id: &str,
    command: &RequestCommand,
    meta: &CommandMeta,
) -> Result<(AccessRequest, Outcome), CommandError> {
    let (current, _) = handler.load::<AccessRequest>(id).await?;
    let pair = pair_key(&current.created.user_id, &current.created.entitlement_id);
    if crate::in_command() && current.exists() {
        // What the decision and its grant look at, asked for at once: the
        // loads below find them read (one wait on a remote log, not four).
        // A head start only: what fails here fails there, and is answered.
        let c = &current.created;
        let _ = tokio::join!(
            handler.load::<AccessPair>(&pair),
            handler.load::<iga_domain::user::User>(&c.user_id),
            handler.load::<iga_domain::app::App>(&c.app_id),
            handler.load::<Entitlement>(&c.entitlement_id),
        );
    }
    let request_stream = <AccessRequest as iga_domain::Aggregate>::stream_id(id);
    let pair_stream = <AccessPair as iga_domain::Aggregate>::stream_id(&pair);
    let serialised = handler.lock_streams(&[&request_stream, &pair_stream]).await;
    for attempt in 0..crate::MAX_ATTEMPTS {
        crate::back_off(attempt).await;
        let request = handler.decide::<AccessRequest>(id, command, meta).await?;
        if let Some(done) = request.retried {
            // A retry of a keyed command: answer as the first time, after
            // finishing what it led to (idempotent; `fulfil` takes the locks).
            drop(serialised);
            let finished = fulfil(handler, id).await?;
            let position = done.position.max(finished);
            return Ok((request.state, Outcome { position, ..done }));
        }
        // In the order `fulfil` writes them: the decision, the pair's
        // change, then the request's fulfilment.
        let mut fulfilment = request.then();
        let mut decided: Vec<&dyn crate::Decided> = vec![&request];
        let on_pair;
        if !request.is_empty() {
            let mut d = handler.begin::<AccessPair>(&pair).await?;
            let before = d.state.clone();
            decide_follow_ups(handler, id, &before, &mut d, &mut fulfilment).await?;
            on_pair = d;
            decided.push(&on_pair);
        }
        decided.push(&fulfilment);
        match handler.commit(&decided).await {
            Ok(committed) => {
                let fulfilled = committed.results.last().and_then(Option::as_ref);
                let (last, result) = match fulfilled {
                    Some(r) if !fulfilment.is_empty() => (&fulfilment, Some(r)),
                    _ => (&request, committed.results[0].as_ref()),
                };
                let mut out = handler.outcome_of(last, result, &committed).await?;
                if let (Some(decided), Some(_)) = (committed.results[0].as_ref(), fulfilled) {
                    let mut appended = request.appended_as(decided);
                    appended.append(&mut out.appended);
                    out.appended = appended;
                }
                out.events_written = out.appended.len().max(request.events_len());
                if !committed.whole {
                    drop(serialised);
                    out.position = out.position.max(fulfil(handler, id).await?);
                    let (state, _) = handler.load::<AccessRequest>(id).await?;
                    return Ok((state, out));
                }
                return Ok((fulfilment.state, out));
            }
            Err(CommandError::EventLog(iga_eventlog::EventLogError::Conflict { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CommandError::TooMuchContention {
        stream: request_stream,
    })
}

/// Ends the grant `grant_id` of `user_id` on `entitlement_id` at its
/// `deprovisionAt`; answers the position written (0: nothing, it had ended).
pub async fn expire_grant(
    handler: &CommandHandler,
    grant_id: &str,
    user_id: &str,
    entitlement_id: &str,
) -> Result<Position, CommandError> {
    let meta = system_meta(None, grant_id);
    let command = AccessCommand::Expire {
        grant_id: grant_id.to_string(),
    };
    let (_, out) = handler
        .execute::<AccessPair>(&pair_key(user_id, entitlement_id), &command, &meta)
        .await?;
    Ok(if out.events_written > 0 {
        out.position
    } else {
        0
    })
}

/// Cancels the request `request_id` at its `expiryDate` if it is still open,
/// and closes it on its pair; answers the position written (0: nothing).
pub async fn expire_request(
    handler: &CommandHandler,
    request_id: &str,
) -> Result<Position, CommandError> {
    let meta = system_meta(None, request_id);
    let (_, out) = handler
        .execute::<AccessRequest>(request_id, &RequestCommand::Expire, &meta)
        .await?;
    let closed = fulfil(handler, request_id).await?;
    Ok(if out.events_written > 0 {
        out.position.max(closed)
    } else {
        closed
    })
}
