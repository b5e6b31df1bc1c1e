//! The command path against a real sled log: conflicts are re-decided,
//! idempotency keys make retries append nothing, bootstrap is idempotent, a
//! deciding approval and its grant are one append.

use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};

use command_service::{bootstrap, fulfilment, CommandError, CommandHandler, CommandMeta};
use iga_domain::access::{pair_key, AccessCommand, AccessPair};
use iga_domain::request::{AccessRequest, RequestCommand};
use iga_domain::user::{User, UserCommand};
use iga_domain::{Context, DomainError};
use iga_eventlog::{
    AppendResult, EventEnvelope, EventStore, ExpectedVersion, Limits, Position, RecordedEvent,
    StreamAppend, Subscription,
};
use iga_schemas::v1;

fn meta(key: Option<&str>) -> CommandMeta {
    CommandMeta {
        ctx: Context {
            actor_id: "admin".into(),
            actor_roles: vec!["admin".into()],
            now_unix_micros: 1,
        },
        correlation_id: "c1".into(),
        idempotency_key: key.map(String::from),
        expected_version: None,
    }
}

fn store() -> Arc<dyn EventStore> {
    iga_eventlog::temporary_log(Limits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_is_idempotent() {
    let handler = CommandHandler::new(store());
    let sha = "ab".repeat(32);
    let first = bootstrap::ensure_admin(&handler, &sha).await.unwrap();
    assert_eq!(first.version, 2);
    let again = bootstrap::ensure_admin(&handler, &sha).await.unwrap();
    assert_eq!((again.events_written, again.version), (0, 2));
    // A new bootstrap token revokes the one before it.
    let rotated = bootstrap::ensure_admin(&handler, &"cd".repeat(32))
        .await
        .unwrap();
    assert_eq!((rotated.events_written, rotated.version), (2, 4));
    let (admin, _) = handler.load::<User>("admin").await.unwrap();
    assert_eq!(admin.tokens.len(), 1);
    assert_eq!(admin.tokens[0].sha256_hex, "cd".repeat(32));
    assert_eq!(admin.roles, vec!["admin"]);
    // The username is claimed and the roster holds the built-in admin.
    let (name, _) = handler
        .load::<iga_domain::username::Username>(&command_service::users::username_key("admin"))
        .await
        .unwrap();
    assert_eq!(name.owner.as_deref(), Some("admin"));
    let (roster, _) = handler
        .load::<iga_domain::roster::AdminRoster>(iga_domain::roster::ROSTER_ID)
        .await
        .unwrap();
    assert_eq!(roster.admins.iter().collect::<Vec<_>>(), ["admin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_issues_are_redecided_not_lost() {
    let handler = CommandHandler::new(store());
    bootstrap::ensure_admin(&handler, &"ab".repeat(32))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let h = handler.clone();
            tokio::spawn(async move {
                let cmd = UserCommand::IssueToken {
                    token_id: format!("t{i}"),
                    token_sha256_hex: format!("{i:064x}"),
                    description: String::new(),
                    expires_at_micros: 0,
                    bootstrap: false,
                };
                h.execute::<User>("admin", &cmd, &meta(None))
                    .await
                    .map(|(_, o)| o)
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (admin, version) = handler.load::<User>("admin").await.unwrap();
    assert_eq!(admin.tokens.len(), 17);
    assert_eq!(version, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_retry_appends_nothing() {
    let handler = CommandHandler::new(store());
    let create = || {
        UserCommand::Create(iga_schemas::v1::UserCreated {
            user_id: "u1".into(),
            username: "ada".into(),
            ..Default::default()
        })
    };
    // Retries with one key answer the original outcome and store one event,
    // even when they race: the log dedups the ids derived from the key.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let h = handler.clone();
            let cmd = create();
            tokio::spawn(async move {
                h.execute::<User>("u1", &cmd, &meta(Some("key-1")))
                    .await
                    .map(|(_, o)| o)
            })
        })
        .collect();
    let outcomes: Vec<_> = futures_join(tasks).await;
    assert!(
        outcomes.iter().all(|o| o.position == 1 && o.version == 1),
        "{outcomes:?}"
    );
    assert_eq!(handler.store().head().await.unwrap(), 1);
    // A sequential retry too.
    let (_, again) = handler
        .execute::<User>("u1", &create(), &meta(Some("key-1")))
        .await
        .unwrap();
    assert_eq!(again.position, 1);
    // Without the key, the same command is a new one and is refused.
    let err = handler
        .execute::<User>("u1", &create(), &meta(None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Domain(DomainError::AlreadyExists(_))),
        "{err:?}"
    );
    assert_eq!(handler.store().head().await.unwrap(), 1);
}

async fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<command_service::Outcome, CommandError>>>,
) -> Vec<command_service::Outcome> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn domain_errors_surface() {
    let handler = CommandHandler::new(store());
    let cmd = UserCommand::RevokeToken {
        token_id: "x".into(),
    };
    let err = handler
        .execute::<User>("nobody", &cmd, &meta(None))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CommandError::Domain(DomainError::NotFound(_))
    ));
}

/// The sled log, counting the appends the handler asks of it. `one_by_one`
/// makes it say it cannot append to several streams at once (as KurrentDB
/// does), and `refuse_pair_appends` refuses that many appends to a pair's
/// stream first (a lost race), so the commit path for such logs is tried
/// on a real log.
struct Counted {
    log: Arc<dyn EventStore>,
    single: AtomicUsize,
    multi: AtomicUsize,
    /// `read_stream` calls: what the handler asks the log while loading.
    reads: AtomicUsize,
    one_by_one: bool,
    refuse_pair_appends: AtomicUsize,
}

#[async_trait::async_trait]
impl EventStore for Counted {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> iga_eventlog::Result<AppendResult> {
        self.single.fetch_add(1, Ordering::SeqCst);
        if stream.starts_with("access-")
            && self
                .refuse_pair_appends
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(iga_eventlog::EventLogError::Conflict {
                stream: stream.into(),
                expected,
                actual: 0,
            });
        }
        self.log.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        max: usize,
    ) -> iga_eventlog::Result<Vec<RecordedEvent>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.log.read_stream(stream, from, max).await
    }
    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> iga_eventlog::Result<Vec<RecordedEvent>> {
        self.log.read_all(after, max).await
    }
    async fn subscribe(&self, after: Position) -> iga_eventlog::Result<Subscription> {
        self.log.subscribe(after).await
    }
    async fn head(&self) -> iga_eventlog::Result<Position> {
        self.log.head().await
    }
    fn describe(&self) -> String {
        self.log.describe()
    }
    fn appends_streams_atomically(&self) -> bool {
        !self.one_by_one && self.log.appends_streams_atomically()
    }
    async fn append_streams(
        &self,
        parts: Vec<StreamAppend>,
    ) -> iga_eventlog::Result<Vec<AppendResult>> {
        self.multi.fetch_add(1, Ordering::SeqCst);
        self.log.append_streams(parts).await
    }
}

fn as_user(user: &str) -> CommandMeta {
    CommandMeta {
        ctx: Context {
            actor_id: user.into(),
            actor_roles: vec![],
            now_unix_micros: command_service::now_unix_micros(),
        },
        ..meta(None)
    }
}

fn counted_sled() -> Arc<Counted> {
    Arc::new(Counted {
        log: iga_eventlog::temporary_log(Limits::default()).unwrap(),
        single: AtomicUsize::new(0),
        multi: AtomicUsize::new(0),
        reads: AtomicUsize::new(0),
        one_by_one: false,
        refuse_pair_appends: AtomicUsize::new(0),
    })
}

fn one_by_one_sled(refuse_pair_appends: usize) -> Arc<Counted> {
    Arc::new(Counted {
        log: iga_eventlog::temporary_log(Limits::default()).unwrap(),
        single: AtomicUsize::new(0),
        multi: AtomicUsize::new(0),
        reads: AtomicUsize::new(0),
        one_by_one: true,
        refuse_pair_appends: AtomicUsize::new(refuse_pair_appends),
    })
}

/// On a log that appends one by one, the same commit writes the same
/// events in the same order, stream by stream; and when a later part is
/// refused (the pair moved meanwhile), the decision stands and the grant
/// is finished at once, so the answer still covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_appends_one_by_one_gets_the_same_events_and_the_rest_is_finished() {
    let approve = RequestCommand::Approve {
        phase: None,
        justification: String::new(),
        comment: String::new(),
    };
    for refusals in [0, 1] {
        let store = one_by_one_sled(0);
        let handler = CommandHandler::new(store.clone());
        assert!(!handler.commits_atomically());
        let pair = request_awaiting(&handler, 1).await;
        store.refuse_pair_appends.store(refusals, Ordering::SeqCst);
        let before = store.head().await.unwrap();
        let (req, out) = fulfilment::decide_and_fulfil(&handler, "r1", &approve, &as_user("o1"))
            .await
            .unwrap();
        assert!(req.fulfilled && req.approved == Some(true), "{refusals}");
        assert_eq!(store.multi.load(Ordering::SeqCst), 0);
        assert_eq!(
            event_types(&store.log, before).await,
            [
                "RequestApprovalRecorded",
                "RequestPhaseCompleted",
                "RequestApproved",
                "GrantIssued",
                "AccessRequestClosed",
                "RequestFulfilled"
            ],
            "{refusals} refusals"
        );
        assert_eq!(out.position, store.head().await.unwrap());
        let (pair_state, _) = handler.load::<AccessPair>(&pair).await.unwrap();
        assert!(pair_state.grant.is_some());
        assert_eq!(store.refuse_pair_appends.load(Ordering::SeqCst), 0);
    }
}

/// Request `r1` of user `ben` for `e1` (app `a1`'s access entitlement),
/// opened on its pair and written, awaiting `quorum` approvals of `o1`,
/// `o2`; answers the pair's id. The user and the app exist, so the grant is
/// allowed when the request is decided.
async fn request_awaiting(handler: &CommandHandler, quorum: u32) -> String {
    let ben = UserCommand::Create(v1::UserCreated {
        user_id: "ben".into(),
        username: "ben".into(),
        ..Default::default()
    });
    handler
        .execute::<User>("ben", &ben, &meta(None))
        .await
        .unwrap();
    let app = iga_domain::app::AppCommand::Create(v1::AppCreated {
        app_id: "a1".into(),
        display_name: "A".into(),
        access_entitlement_id: "e1".into(),
        ..Default::default()
    });
    handler
        .execute::<iga_domain::app::App>("a1", &app, &meta(None))
        .await
        .unwrap();
    let open = AccessCommand::Open {
        user_id: "ben".into(),
        entitlement_id: "e1".into(),
        request_id: "r1".into(),
        remove: false,
        holder_gone: false,
    };
    let pair = pair_key("ben", "e1");
    handler
        .execute::<AccessPair>(&pair, &open, &as_user("ben"))
        .await
        .unwrap();
    let created = v1::AccessRequestCreated {
        request_id: "r1".into(),
        requester_id: "ben".into(),
        user_id: "ben".into(),
        app_id: "a1".into(),
        entitlement_id: "e1".into(),
        catalog_type: "entitlement".into(),
        request_type: "entitlementGrant".into(),
        priority: "low".into(),
        phases: vec![v1::RequestPhase {
            name: "Owners".into(),
            quorum,
            approver_ids: vec!["o1".into(), "o2".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let create = RequestCommand::Create {
        created: Box::new(created),
        auto_approve: false,
    };
    handler
        .execute::<AccessRequest>("r1", &create, &as_user("ben"))
        .await
        .unwrap();
    pair
}

/// The approval that decides a request, the grant it leads to and the
/// request's fulfilment are one append, in the order the two-step path
/// writes them, with its ids: the fulfilment reactor then finds nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deciding_approval_and_its_grant_are_one_append() {
    let store = counted_sled();
    let handler = CommandHandler::new(store.clone());
    assert!(handler.commits_atomically());
    let pair = request_awaiting(&handler, 2).await;
    let approve = RequestCommand::Approve {
        phase: None,
        justification: String::new(),
        comment: String::new(),
    };
    let singles = store.single.load(Ordering::SeqCst);

    // The first of a quorum of two decides nothing: only the request moves.
    let before = store.head().await.unwrap();
    let (req, out) = fulfilment::decide_and_fulfil(&handler, "r1", &approve, &as_user("o1"))
        .await
        .unwrap();
    assert_eq!((req.approved, out.events_written), (None, 1));
    assert_eq!(
        event_types(&store.log, before).await,
        ["RequestApprovalRecorded"]
    );

    // The second decides it: approval, grant and fulfilment in one append.
    let before = store.head().await.unwrap();
    let (req, out) = fulfilment::decide_and_fulfil(&handler, "r1", &approve, &as_user("o2"))
        .await
        .unwrap();
    assert!(req.fulfilled && req.approved == Some(true));
    // (The first approval touched one stream: a plain append.)
    assert_eq!(store.multi.load(Ordering::SeqCst), 1);
    assert_eq!(store.single.load(Ordering::SeqCst), singles + 1);
    let written = event_types(&store.log, before).await;
    assert_eq!(
        written,
        [
            "RequestApprovalRecorded",
            "RequestPhaseCompleted",
            "RequestApproved",
            "GrantIssued",
            "AccessRequestClosed",
            "RequestFulfilled"
        ]
    );
    assert_eq!(out.position, store.head().await.unwrap());
    let (pair_state, _) = handler.load::<AccessPair>(&pair).await.unwrap();
    assert!(pair_state.grant.is_some());

    // What the reactor runs after the approval finds it done and writes nothing.
    let head = store.head().await.unwrap();
    assert_eq!(fulfilment::fulfil(&handler, "r1").await.unwrap(), head);
    // Even from a cold cache (another process): the keyed ids match.
    let cold = CommandHandler::new(store.clone());
    assert_eq!(fulfilment::fulfil(&cold, "r1").await.unwrap(), head);
    assert_eq!(store.head().await.unwrap(), head);
}

/// The event types after `after`, in log order.
async fn event_types(log: &Arc<dyn EventStore>, after: Position) -> Vec<String> {
    log.read_all(after, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            r.envelope
                .event_type
                .trim_start_matches("iga.v1.")
                .to_string()
        })
        .collect()
}

/// The step-by-step path (what a log without `append_streams` takes: the
/// decision, then `fulfil` as the handler and the reactor run it) writes the
/// same events, with the same ids, in the same order, as the one-append path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_paths_write_the_same_events() {
    let approve = RequestCommand::Approve {
        phase: None,
        justification: String::new(),
        comment: String::new(),
    };
    // Keyed, so the decision's event ids are the same in both runs.
    let keyed = CommandMeta {
        idempotency_key: Some("approve-1".into()),
        ..as_user("o1")
    };
    let mut written = Vec::new();
    for one_append in [true, false] {
        let store = counted_sled();
        let handler = CommandHandler::new(store.clone());
        request_awaiting(&handler, 1).await;
        let before = store.head().await.unwrap();
        if one_append {
            fulfilment::decide_and_fulfil(&handler, "r1", &approve, &keyed)
                .await
                .unwrap();
        } else {
            handler
                .execute::<AccessRequest>("r1", &approve, &keyed)
                .await
                .unwrap();
            fulfilment::fulfil(&handler, "r1").await.unwrap();
        }
        let (req, _) = handler.load::<AccessRequest>("r1").await.unwrap();
        assert!(req.fulfilled, "one append: {one_append}");
        let events: Vec<_> = store
            .log
            .read_all(before, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let e = r.envelope;
                (e.stream_id, e.stream_version, e.event_type, e.event_id)
            })
            .collect();
        written.push(events);
    }
    assert_eq!(written[0].len(), 6, "{:?}", written[0]);
    assert_eq!(written[0], written[1]);
}

fn issue_token(id: &str) -> UserCommand {
    UserCommand::IssueToken {
        token_id: id.into(),
        token_sha256_hex: format!("{:064x}", id.bytes().fold(7u64, |h, b| h * 31 + b as u64)),
        description: String::new(),
        expires_at_micros: 0,
        bootstrap: false,
    }
}

/// Within one command (an API call), a stream loaded again is not asked
/// after again, unless this process appended to it meanwhile; outside one,
/// every load asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_asks_the_log_once_per_stream_it_loads() {
    let store = counted_sled();
    let handler = CommandHandler::new(store.clone());
    bootstrap::ensure_admin(&handler, &"ab".repeat(32))
        .await
        .unwrap();
    let reads = || store.reads.load(Ordering::SeqCst);
    let before = reads();
    for _ in 0..3 {
        handler.load::<User>("admin").await.unwrap();
    }
    assert_eq!(reads() - before, 3, "outside a command every load asks");

    // Another command of this process appends meanwhile: the cache moved
    // past what this command read, so it asks again.
    let (h, other) = (handler.clone(), handler.clone());
    let (versions, asked) = CommandHandler::scoped(async move {
        let first = h.load::<User>("admin").await.unwrap().1;
        CommandHandler::scoped(async move {
            other
                .execute::<User>("admin", &issue_token("t0"), &meta(None))
                .await
                .unwrap();
        })
        .await;
        let before = reads();
        let second = h.load::<User>("admin").await.unwrap().1;
        ((first, second), reads() - before)
    })
    .await;
    assert_eq!((versions, asked), ((2, 3), 1));

    let h = handler.clone();
    let (versions, asked) = CommandHandler::scoped(async move {
        let before = reads();
        let mut versions = Vec::new();
        for _ in 0..3 {
            versions.push(h.load::<User>("admin").await.unwrap().1);
        }
        let once = reads() - before;
        // The command's own append moves the cache, and the log taking it
        // at the version decided on tells where the head is: the next loads
        // see it without asking.
        h.execute::<User>("admin", &issue_token("t1"), &meta(None))
            .await
            .unwrap();
        let before = reads();
        versions.push(h.load::<User>("admin").await.unwrap().1);
        versions.push(h.load::<User>("admin").await.unwrap().1);
        (versions, (once, reads() - before))
    })
    .await;
    assert_eq!(versions, [3, 3, 3, 4, 4]);
    assert_eq!(asked, (1, 0));
}

/// The attack on that saving: another process moves a stream after this
/// command read it to the head. The commit names the version it decided
/// on, the log refuses it, and the re-decision reads the stream afresh:
/// nothing of the other process's is lost and the command is not starved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_moved_by_another_process_is_read_again_after_the_conflict() {
    let log = store();
    let here = CommandHandler::new(log.clone());
    let elsewhere = CommandHandler::new(log.clone());
    bootstrap::ensure_admin(&here, &"ab".repeat(32))
        .await
        .unwrap();
    let (h, e) = (here.clone(), elsewhere.clone());
    let (seen, outcome) = CommandHandler::scoped(async move {
        let (_, seen) = h.load::<User>("admin").await.unwrap();
        e.execute::<User>("admin", &issue_token("elsewhere"), &meta(None))
            .await
            .unwrap();
        let done = h
            .execute::<User>("admin", &issue_token("here"), &meta(None))
            .await;
        (seen, done)
    })
    .await;
    assert_eq!(seen, 2);
    let (admin, outcome) = outcome.expect("re-decided on the fresh stream, not starved");
    assert_eq!(outcome.version, 4);
    let tokens: Vec<_> = admin.tokens.iter().map(|t| t.id.as_str()).collect();
    for id in ["elsewhere", "here"] {
        assert!(tokens.contains(&id), "{id} missing from {tokens:?}");
    }
}

/// The types and versions of the events a stream's view folded.
#[derive(Default, Clone, Debug, PartialEq)]
struct Folded(Vec<(String, u64)>);

impl command_service::View for Folded {
    fn apply(&mut self, event: &iga_schemas::DomainEvent, _at: i64, version: u64) {
        self.0.push((event.event_type().to_string(), version));
    }
}

/// A view started before the command that creates its stream is advanced
/// by that command's events and answered without reading the stream back;
/// it is the same as the view a process that never saw them reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_started_with_its_stream_is_answered_without_reading_it_back() {
    let store = counted_sled();
    let handler = CommandHandler::new(store.clone());
    let stream = <User as iga_domain::Aggregate>::stream_id("admin");
    let h = handler.clone();
    let s = stream.clone();
    let reads = || store.reads.load(Ordering::SeqCst);
    let (here, asked) = CommandHandler::scoped(async move {
        h.start_view::<Folded>(&s);
        bootstrap::ensure_admin(&h, &"ab".repeat(32)).await.unwrap();
        let before = reads();
        let view = h.view::<Folded>(&s).await.unwrap();
        (view, reads() - before)
    })
    .await;
    assert_eq!(asked, 0);
    let cold = CommandHandler::new(store.clone());
    let read_back = cold.view::<Folded>(&stream).await.unwrap();
    assert_eq!(here, read_back);
    assert_eq!(here.0.len(), 2, "{here:?}");
}
