//! The write side: handlers load the facts a rule needs, ask the domain,
//! and commit what it decided. A command's path, top to bottom:
//!
//! 1. [`CommandHandler::decide`]: load the aggregate (the cache of folded
//!    streams plus whatever the log holds past it) and run `decide` on it
//!    (pure, in `iga-domain`);
//! 2. [`CommandHandler::commit`], the one commit path: append every
//!    decision with the stream version it was decided on as the expected
//!    version, as one atomic append where the log can (sled, fjall,
//!    JetStream), one by one elsewhere (KurrentDB; the fulfil step and its
//!    reactor finish the rest);
//! 3. on a concurrency conflict, go back to 1 (a bounded number of times),
//!    so a lost race is re-decided on fresh state rather than failed.
//!
//! The [`Outcome`] carries the events appended and the global position of
//! the last one: the consistency token a client sends to the read side.
//! Answers are rendered from the decided state and those events ([`View`]),
//! never read back.

pub mod apps;
pub mod audit;
pub mod bootstrap;
pub mod entitlements;
mod error;
pub mod fulfilment;
pub mod grants;
pub mod http;
pub mod policies;
pub mod provisioning;
mod refs;
pub mod requests;
pub mod resources;
pub mod reviews;
pub mod secrets;
pub mod state;
pub mod users;
pub mod webhooks;

pub use error::CommandError;

use std::sync::Arc;

use iga_domain::{Aggregate, Context};
use iga_eventlog::{
    AppendResult, EventEnvelope, EventLogError, EventStore, ExpectedVersion, Position,
    RecordedEvent, StreamAppend,
};
use iga_schemas::DomainEvent;
use sha2::{Digest, Sha256};

/// How many times a command is re-decided after losing a race to another
/// process (within one process, commands on a stream queue on a lock instead).
const MAX_ATTEMPTS: u32 = 10;
/// Lock stripes: commands on streams hashing to one stripe run one at a time.
const STRIPES: usize = 1024;

/// Who is asking, and how to recognise a retry of the same command.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub ctx: Context,
    pub correlation_id: String,
    /// From the `Idempotency-Key` header: event ids are derived from it, so a
    /// retried command appends nothing new on any backend.
    pub idempotency_key: Option<String>,
    /// From `If-Match`: the command applies only if the aggregate is at this version.
    pub expected_version: Option<u64>,
}

impl CommandMeta {
    /// The same caller and request, for a command on another stream than the
    /// one the request names (a claim, a pair, the built-in entitlement):
    /// `If-Match` is about the named one only.
    pub fn for_side_stream(&self) -> CommandMeta {
        CommandMeta {
            expected_version: None,
            ..self.clone()
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The aggregate's version after the command.
    pub version: u64,
    /// The position of the last event written, or the log head when the
    /// command was a no-op (so a read with it still sees the current state).
    pub position: Position,
    pub events_written: usize,
    /// When the aggregate's first event was recorded (its creation).
    pub created_at_unix_micros: i64,
    /// When its last event was recorded (the command's, unless it was a no-op).
    pub updated_at_unix_micros: i64,
    /// The events this command appended to the aggregate, with their stream
    /// versions (none for a no-op or a retry's answer): what an answer is
    /// rendered from.
    pub appended: Vec<EventEnvelope>,
}

/// Loads aggregates and runs commands against them.
#[derive(Clone)]
pub struct CommandHandler {
    store: Arc<dyn EventStore>,
    /// Serialises commands on the same stream inside this process, so a hot
    /// aggregate (fifty approvers at once) queues instead of thrashing on conflicts.
    stripes: Arc<Vec<tokio::sync::Mutex<()>>>,
    /// Folded streams, by stream id: a command reads only what is new.
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, Folded>>>,
    /// Answers' views of streams ([`View`]), by stream id, advanced by the
    /// events commands append.
    views: Arc<std::sync::Mutex<std::collections::HashMap<String, CachedView>>>,
}

/// A fold of one stream's events into what an answer shows (a request as
/// the API answers it), kept beside the aggregate's state and advanced with
/// the events each command appends: an answer is rendered from them, and
/// the log is read only for what other processes appended meanwhile.
pub trait View: Default + Clone + Send + Sync + 'static {
    /// Folds one event, recorded at `recorded_at` micros as stream version `version`.
    fn apply(&mut self, event: &DomainEvent, recorded_at: i64, version: u64);
}

/// A cached [`View`] of any type, with the stream version it is folded to.
struct CachedView {
    version: u64,
    view: Box<dyn std::any::Any + Send + Sync>,
    apply: fn(&mut (dyn std::any::Any + Send + Sync), &DomainEvent, i64, u64),
}

/// Most streams the cache holds before it starts over.
const CACHED_STREAMS: usize = 100_000;

/// Caches `view` of `stream` at `version`, starting the cache over when full.
fn insert_view<V: View>(
    views: &mut std::collections::HashMap<String, CachedView>,
    stream: &str,
    version: u64,
    view: V,
) {
    if views.len() >= CACHED_STREAMS && !views.contains_key(stream) {
        views.clear(); // bounded, like the state cache
    }
    views.insert(
        stream.to_string(),
        CachedView {
            version,
            view: Box::new(view),
            apply: |any, event, at, version| {
                if let Some(v) = any.downcast_mut::<V>() {
                    v.apply(event, at, version)
                }
            },
        },
    );
}

tokio::task_local! {
    /// The streams this command (one API call, see [`CommandHandler::scoped`])
    /// has read to the log's head (or appended to: the log took the append at
    /// the version it named), with the version each was at then. A
    /// handler loads one aggregate several times (the pair while checking,
    /// opening and committing; the user as requester, subject and approver):
    /// only the first load asks the log whether anything is new, which on
    /// JetStream is a round trip. A later load still reads when the cache
    /// moved otherwise (another command of this process appended), and a
    /// conflict at commit forgets them all, so a re-decision reads
    /// everything afresh.
    static READ_TO_HEAD: std::cell::RefCell<std::collections::HashMap<String, u64>>;
}

/// Most streams one command remembers reading to the head; loads beyond
/// them ask the log as usual.
const READ_TO_HEAD_PER_COMMAND: usize = 10_000;

/// The version `stream` was at when this command last read it to the head.
fn read_to_head(stream: &str) -> Option<u64> {
    READ_TO_HEAD
        .try_with(|m| m.borrow().get(stream).copied())
        .ok()
        .flatten()
}

/// Whether this runs inside a command's scope ([`CommandHandler::scoped`]).
pub fn in_command() -> bool {
    READ_TO_HEAD.try_with(|_| ()).is_ok()
}

/// Records that this command read `stream` to the head at `version`.
fn mark_read_to_head(stream: &str, version: u64) {
    let _ = READ_TO_HEAD.try_with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < READ_TO_HEAD_PER_COMMAND || m.contains_key(stream) {
            m.insert(stream.to_string(), version);
        }
    });
}

/// Forgets what this command read: after a conflict, everything is re-read.
fn forget_read_to_head() {
    let _ = READ_TO_HEAD.try_with(|m| m.borrow_mut().clear());
}

/// A stream folded up to `version`.
#[derive(Clone)]
struct Folded {
    state: Arc<dyn std::any::Any + Send + Sync>,
    version: u64,
    first_at: i64,
    last_at: i64,
    last_position: Position,
}

impl Folded {
    fn empty() -> Self {
        Folded {
            state: Arc::new(()),
            version: 0,
            first_at: 0,
            last_at: 0,
            last_position: 0,
        }
    }
}

impl CommandHandler {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let stripes = (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        CommandHandler {
            store,
            stripes: Arc::new(stripes),
            cache: Default::default(),
            views: Default::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Runs `command`, one API call, so that it asks the log at most once
    /// whether a stream it loads has moved (until a commit conflicts); see
    /// `READ_TO_HEAD`. Outside such a scope (reactors, timers), every load asks.
    pub async fn scoped<F: std::future::Future>(command: F) -> F::Output {
        READ_TO_HEAD
            .scope(std::cell::RefCell::default(), command)
            .await
    }

    /// The current state of aggregate `id` and its stream version.
    pub async fn load<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<(A, u64), CommandError> {
        let (state, folded) = self.folded::<A>(id).await?;
        Ok((state, folded.version))
    }

    /// The current state of aggregate `id` with its version, position and times.
    pub async fn snapshot<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<(A, Outcome), CommandError> {
        let (state, f) = self.folded::<A>(id).await?;
        let outcome = Outcome {
            version: f.version,
            position: f.last_position,
            events_written: 0,
            created_at_unix_micros: f.first_at,
            updated_at_unix_micros: f.last_at,
            appended: Vec::new(),
        };
        Ok((state, outcome))
    }

    /// The state of `id` at the end of its stream, reading only the events
    /// past what the cache holds (the cache may be behind, never ahead: it is
    /// filled only from the log and from appends the log acknowledged).
    async fn folded<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<(A, Folded), CommandError> {
        let stream = A::stream_id(id);
        let cached = self.cache.lock().expect("cache lock").get(&stream).cloned();
        let (mut state, mut f) =
            match cached.and_then(|c| c.state.downcast_ref::<A>().cloned().map(|s| (s, c))) {
                Some(hit) => hit,
                None => (A::default(), Folded::empty()),
            };
        if read_to_head(&stream) == Some(f.version) {
            return Ok((state, f)); // read to the head earlier in this command
        }
        let mut read = false;
        loop {
            let page = self.store.read_stream(&stream, f.version + 1, 1000).await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break;
            };
            if f.version == 0 {
                f.first_at = first.envelope.occurred_at_unix_micros;
            }
            f.version = last.envelope.stream_version;
            f.last_at = last.envelope.occurred_at_unix_micros;
            f.last_position = last.position;
            for rec in &page {
                let event = rec
                    .envelope
                    .decode_event()
                    .map_err(|e| CommandError::Decode(e.to_string()))?;
                state = state.evolve(&event);
            }
            read = true;
        }
        mark_read_to_head(&stream, f.version);
        if read {
            self.remember(stream, &state, f.clone());
        }
        Ok((state, f))
    }

    fn remember<A: Aggregate + Send + Sync + 'static>(
        &self,
        stream: String,
        state: &A,
        mut f: Folded,
    ) {
        f.state = Arc::new(state.clone());
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHED_STREAMS && !cache.contains_key(&stream) {
            cache.clear(); // crude but bounded; the cache refills from the log
        }
        cache.insert(stream, f);
    }

    /// The view `V` of stream `stream` as it stands: the cached fold
    /// (advanced by this process's appends), and whatever else the log
    /// holds past it.
    pub async fn view<V: View>(&self, stream: &str) -> Result<V, CommandError> {
        let cached = {
            let views = self.views.lock().expect("views lock");
            views
                .get(stream)
                .and_then(|c| c.view.downcast_ref::<V>().map(|v| (v.clone(), c.version)))
        };
        let (mut view, mut version) = cached.unwrap_or_default();
        if read_to_head(stream) == Some(version) {
            return Ok(view); // read to the head earlier in this command
        }
        loop {
            let page = self.store.read_stream(stream, version + 1, 1000).await?;
            let Some(last) = page.last() else { break };
            version = last.envelope.stream_version;
            for rec in &page {
                let event = rec
                    .envelope
                    .decode_event()
                    .map_err(|e| CommandError::Decode(e.to_string()))?;
                view.apply(
                    &event,
                    rec.envelope.occurred_at_unix_micros,
                    rec.envelope.stream_version,
                );
            }
        }
        mark_read_to_head(stream, version);
        self.cache_view(stream, version, view.clone());
        Ok(view)
    }

    /// Starts the cached view `V` of a stream a command is about to create:
    /// the fold of no events, which the commit's events then advance, so
    /// the stream's first answers need not read it back. Keeps a view
    /// already cached; wrong only never (an empty fold at version 0 is
    /// what any stream's view starts from).
    pub fn start_view<V: View>(&self, stream: &str) {
        // Looked up and inserted under one lock: a view another command
        // advanced meanwhile is kept, not replaced by the empty one.
        let mut views = self.views.lock().expect("views lock");
        if !views.contains_key(stream) {
            insert_view(&mut views, stream, 0, V::default());
        }
    }

    fn cache_view<V: View>(&self, stream: &str, version: u64, view: V) {
        insert_view(
            &mut self.views.lock().expect("views lock"),
            stream,
            version,
            view,
        );
    }

    /// Advances the cached view of `stream` (if any) by events this process
    /// appended as `r`; one that is not right before them is dropped.
    fn advance_view(&self, stream: &str, r: &AppendResult, events: &[(DomainEvent, i64)]) {
        let mut views = self.views.lock().expect("views lock");
        let Some(cached) = views.get_mut(stream) else {
            return;
        };
        if cached.version + 1 != r.first_version {
            views.remove(stream);
            return;
        }
        for (i, (event, at)) in events.iter().enumerate() {
            (cached.apply)(cached.view.as_mut(), event, *at, r.first_version + i as u64);
        }
        cached.version = r.last_version;
    }

    /// The state, its version, and the recorded events it was folded from.
    pub async fn load_recorded<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<(A, u64, Vec<RecordedEvent>), CommandError> {
        let stream = A::stream_id(id);
        let mut state = A::default();
        let mut version = 0;
        let mut recorded = Vec::new();
        loop {
            let page = self.store.read_stream(&stream, version + 1, 1000).await?;
            let Some(last) = page.last() else { break };
            version = last.envelope.stream_version;
            for rec in &page {
                let event = rec
                    .envelope
                    .decode_event()
                    .map_err(|e| CommandError::Decode(e.to_string()))?;
                state = state.evolve(&event);
            }
            recorded.extend(page);
        }
        Ok((state, version, recorded))
    }

    /// Runs `command` against aggregate `id`; answers the aggregate's new state.
    pub async fn execute<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<(A, Outcome), CommandError> {
        let stream = A::stream_id(id);
        let _serialised = self.stripes[stripe_of(&stream)].lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            back_off(attempt).await;
            let mut decision = self.decide::<A>(id, command, meta).await?;
            if let Some(done) = decision.retried.take() {
                return Ok((decision.state, done)); // a retry of a command that was applied: answer as the first time
            }
            if decision.is_empty() {
                let nothing = Committed {
                    results: vec![None],
                    whole: true,
                };
                let outcome = self.outcome_of(&decision, None, &nothing).await?;
                return Ok((decision.state, outcome));
            }
            match self.commit(&[&decision]).await {
                Ok(committed) => {
                    let r = committed.results[0]
                        .as_ref()
                        .expect("one part, stored whole");
                    let outcome = decision.outcome(r, r.position);
                    return Ok((decision.state, outcome));
                }
                Err(CommandError::EventLog(EventLogError::Conflict { .. })) => continue, // lost a race: re-decide
                Err(e) => return Err(e),
            }
        }
        Err(CommandError::TooMuchContention { stream })
    }
}

/// Commands decided on one aggregate and not yet appended: their events, in
/// order, and the state they lead to. Appended by [`CommandHandler::commit`],
/// alone or with decisions on other aggregates, all or nothing.
pub struct Decision<A> {
    stream: String,
    /// The stream version the commands were decided on.
    version: u64,
    /// When the aggregate's first and last events were recorded (0: none).
    first_at: i64,
    last_at: i64,
    /// The aggregate with the decided events applied.
    pub state: A,
    events: Vec<EventEnvelope>,
    /// The decided events, as the domain decided them (for the views).
    decided: Vec<DomainEvent>,
    /// What the earlier run of this keyed command did, when its events are
    /// in the stream already (a retry): then nothing is decided again.
    pub retried: Option<Outcome>,
}

impl<A> Decision<A> {
    /// Whether it was decided on a stream with no events yet.
    pub fn is_new(&self) -> bool {
        self.version == 0
    }

    /// Whether the commands decided anything (none may be a no-op).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many events the commands decided.
    pub fn events_len(&self) -> usize {
        self.events.len()
    }

    /// An empty decision on the same aggregate, continuing where this one
    /// ends: for events that must follow another stream's in one commit.
    pub fn then(&self) -> Decision<A>
    where
        A: Clone,
    {
        Decision {
            stream: self.stream.clone(),
            version: self.version + self.events.len() as u64,
            first_at: self.created_at(),
            last_at: self.events.last().map_or(self.last_at, recorded_at),
            state: self.state.clone(),
            events: Vec::new(),
            decided: Vec::new(),
            retried: None,
        }
    }

    /// When the aggregate's first event is (or, decided here, will be)
    /// recorded; 0 for none.
    fn created_at(&self) -> i64 {
        match self.events.first() {
            Some(first) if self.first_at == 0 => recorded_at(first),
            _ => self.first_at,
        }
    }

    fn part(&self) -> StreamAppend {
        StreamAppend {
            stream: self.stream.clone(),
            expected: if self.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(self.version)
            },
            events: self.events.clone(),
        }
    }

    /// What the append did for this aggregate (`position`: the whole
    /// append's); the times are the ones its events are recorded with.
    fn outcome(&self, r: &AppendResult, position: Position) -> Outcome {
        Outcome {
            version: r.last_version,
            position,
            events_written: self.events.len(),
            created_at_unix_micros: self.created_at(),
            updated_at_unix_micros: self.events.last().map_or(self.last_at, recorded_at),
            appended: self.appended_as(r),
        }
    }

    /// The decided events as `r` stored them (with their stream versions).
    pub(crate) fn appended_as(&self, r: &AppendResult) -> Vec<EventEnvelope> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| EventEnvelope {
                stream_id: self.stream.clone(),
                stream_version: r.first_version + i as u64,
                ..e.clone()
            })
            .collect()
    }
}

fn recorded_at(e: &EventEnvelope) -> i64 {
    e.occurred_at_unix_micros
}

/// What [`CommandHandler::commit`] stored.
#[derive(Debug, Clone)]
pub struct Committed {
    /// One result per decision: `None` for an empty one, or for one a log
    /// that appends one by one did not store after an earlier part's refusal.
    pub results: Vec<Option<AppendResult>>,
    /// Whether every non-empty decision was stored.
    pub whole: bool,
}

impl Committed {
    /// The position of the last event stored, if any was.
    pub fn position(&self) -> Option<Position> {
        self.results.iter().flatten().map(|r| r.position).max()
    }
}

/// A [`Decision`] of any aggregate type, so one commit can hold several.
pub trait Decided: Send + Sync {
    fn part(&self) -> StreamAppend;
    /// Puts the decided state in the handler's cache, once appended as `r`.
    fn appended(&self, handler: &CommandHandler, r: &AppendResult);
}

impl<A: Aggregate + Send + Sync + 'static> Decided for Decision<A> {
    fn part(&self) -> StreamAppend {
        Decision::part(self)
    }

    fn appended(&self, handler: &CommandHandler, r: &AppendResult) {
        // A retried append may answer an earlier success's versions; only a
        // fresh one extends the cache.
        if r.last_version == self.version + self.events.len() as u64 {
            let outcome = self.outcome(r, r.position);
            let f = Folded {
                state: Arc::new(()),
                version: r.last_version,
                first_at: outcome.created_at_unix_micros,
                last_at: outcome.updated_at_unix_micros,
                last_position: r.position,
            };
            handler.remember(self.stream.clone(), &self.state, f);
            // The log took it at the version decided on: that was the head.
            mark_read_to_head(&self.stream, r.last_version);
            let decided: Vec<(DomainEvent, i64)> = self
                .decided
                .iter()
                .cloned()
                .zip(self.events.iter().map(recorded_at))
                .collect();
            handler.advance_view(&self.stream, r, &decided);
        }
    }
}

impl CommandHandler {
    /// Whether decisions on several aggregates can be committed as one append.
    pub fn commits_atomically(&self) -> bool {
        self.store.appends_streams_atomically()
    }

    /// Takes the in-process locks of `streams` (in stripe order, so two
    /// callers never wait on each other in a cycle). Held while deciding
    /// and committing, they make commands on those streams in this process
    /// queue instead of conflicting.
    pub async fn lock_streams(&self, streams: &[&str]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = streams.iter().map(|s| stripe_of(s)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }

    /// Loads aggregate `id` and decides `command` on it, appending nothing.
    /// Honours `If-Match` (`meta.expected_version`). A command with an
    /// idempotency key whose events are in the stream already answers a
    /// decision with nothing in it and `retried` set, as `execute` does.
    pub async fn decide<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<Decision<A>, CommandError> {
        let mut decision = match meta.idempotency_key.as_deref() {
            None => self.begin::<A>(id).await?,
            Some(key) => {
                // A keyed command needs the stream's event ids (to spot a retry).
                let (state, version, recorded) = self.load_recorded::<A>(id).await?;
                let stream = A::stream_id(id);
                let retried = already_applied(Some(key), &stream, &recorded);
                let at = |r: Option<&RecordedEvent>| {
                    r.map(|r| r.envelope.occurred_at_unix_micros).unwrap_or(0)
                };
                let decision = Decision {
                    stream,
                    version,
                    first_at: at(recorded.first()),
                    last_at: at(recorded.last()),
                    state,
                    events: Vec::new(),
                    decided: Vec::new(),
                    retried,
                };
                if decision.retried.is_some() {
                    return Ok(decision);
                }
                decision
            }
        };
        // The command's own checks first: a malformed change is 400 whatever
        // version it names; a well-formed one on another version is 412.
        self.decide_more(&mut decision, command, meta)?;
        if let Some(expected) = meta.expected_version {
            if expected != decision.version {
                return Err(CommandError::PreconditionFailed {
                    expected,
                    actual: decision.version,
                });
            }
        }
        Ok(decision)
    }

    /// Loads aggregate `id` into a decision with no commands yet.
    pub async fn begin<A: Aggregate + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<Decision<A>, CommandError> {
        let (state, f) = self.folded::<A>(id).await?;
        Ok(Decision {
            stream: A::stream_id(id),
            version: f.version,
            first_at: f.first_at,
            last_at: f.last_at,
            state,
            events: Vec::new(),
            decided: Vec::new(),
            retried: None,
        })
    }

    /// Decides one more command on the state `decision` leads to; its events
    /// follow the earlier ones in the same append.
    pub fn decide_more<A: Aggregate>(
        &self,
        decision: &mut Decision<A>,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<(), CommandError> {
        let events = decision.state.decide(command, &meta.ctx)?;
        let envelopes = envelopes(&decision.stream, &events, meta);
        let state = std::mem::take(&mut decision.state);
        decision.state = events.iter().fold(state, |s, e| s.evolve(e));
        decision.events.extend(envelopes);
        decision.decided.extend(events);
        Ok(())
    }

    /// The one way decisions reach the log. Appends every non-empty
    /// decision, in order: as one atomic append where the log can
    /// ([`CommandHandler::commits_atomically`]: all are stored or none is);
    /// elsewhere one by one, each with its expected version, stopping at the
    /// first refusal, and what a stored decision leads to is finished by the
    /// fulfilment step and its reactor. `Conflict` means nothing was stored:
    /// re-decide.
    pub async fn commit(&self, decisions: &[&dyn Decided]) -> Result<Committed, CommandError> {
        let parts: Vec<(usize, StreamAppend)> = decisions
            .iter()
            .map(|d| d.part())
            .enumerate()
            .filter(|(_, p)| !p.events.is_empty())
            .collect();
        let mut committed = Committed {
            results: vec![None; decisions.len()],
            whole: true,
        };
        if parts.is_empty() {
            return Ok(committed);
        }
        if parts.len() == 1 || !self.commits_atomically() {
            for (n, (slot, part)) in parts.into_iter().enumerate() {
                match self
                    .store
                    .append(&part.stream, part.expected, part.events)
                    .await
                {
                    Ok(r) => {
                        decisions[slot].appended(self, &r);
                        committed.results[slot] = Some(r);
                    }
                    Err(e) if n == 0 => {
                        forget_on_conflict(&e);
                        return Err(e.into());
                    }
                    Err(e) => {
                        tracing::warn!(stream = %part.stream, error = %e,
                            "a later part of a commit was refused; what it leads to is finished later");
                        committed.whole = false;
                        break;
                    }
                }
            }
            return Ok(committed);
        }
        let (slots, parts): (Vec<usize>, Vec<StreamAppend>) = parts.into_iter().unzip();
        let appended = self
            .store
            .append_streams(parts)
            .await
            .inspect_err(forget_on_conflict)?;
        for (slot, r) in slots.into_iter().zip(appended) {
            decisions[slot].appended(self, &r);
            committed.results[slot] = Some(r);
        }
        Ok(committed)
    }

    /// The outcome for `decision` after [`CommandHandler::commit`] answered
    /// `results` (the position is the whole commit's last, so a read with it
    /// sees every part).
    pub async fn outcome_of<A>(
        &self,
        decision: &Decision<A>,
        result: Option<&AppendResult>,
        committed: &Committed,
    ) -> Result<Outcome, CommandError> {
        let last = committed.position();
        Ok(match (result, last) {
            (Some(r), Some(position)) => decision.outcome(r, position),
            _ => Outcome {
                version: decision.version,
                position: match last {
                    Some(p) => p,
                    None => self.store.head().await?,
                },
                events_written: 0,
                created_at_unix_micros: decision.first_at,
                updated_at_unix_micros: decision.last_at,
                appended: Vec::new(),
            },
        })
    }
}

/// A refused append means this command decided on stale state: what it
/// read to the head is read again when it re-decides.
fn forget_on_conflict(e: &EventLogError) {
    if matches!(e, EventLogError::Conflict { .. }) {
        forget_read_to_head();
    }
}

/// Before attempt `attempt` (from 0) at a command that lost a race to
/// another process: nothing at first, then a little, with jitter.
pub(crate) async fn back_off(attempt: u32) {
    if attempt > 0 {
        let max_ms = 1u64 << attempt.min(6);
        let ms = rand::random_range(0..=max_ms);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// The lock stripe of `stream`.
fn stripe_of(stream: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let h =
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(stream);
    (h % STRIPES as u64) as usize
}

/// The envelopes of `events`, decided on `stream` under `meta`.
fn envelopes(stream: &str, events: &[DomainEvent], meta: &CommandMeta) -> Vec<EventEnvelope> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| EventEnvelope {
            event_id: event_id(meta.idempotency_key.as_deref(), stream, i),
            occurred_at_unix_micros: meta.ctx.now_unix_micros,
            actor_id: meta.ctx.actor_id.clone(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.correlation_id.clone(),
            event_type: e.event_type().to_string(),
            schema_version: e.schema_version(),
            payload: e.encode_payload(),
            ..Default::default()
        })
        .collect()
}

/// The outcome of the earlier run of this keyed command, if its events are in the stream.
fn already_applied(key: Option<&str>, stream: &str, recorded: &[RecordedEvent]) -> Option<Outcome> {
    let first_id = event_id(Some(key?), stream, 0);
    let start = recorded
        .iter()
        .position(|r| r.envelope.event_id == first_id)?;
    let written = recorded[start..]
        .iter()
        .enumerate()
        .take_while(|(i, r)| r.envelope.event_id == event_id(key, stream, *i))
        .count();
    let last = &recorded[start + written - 1];
    Some(Outcome {
        version: last.envelope.stream_version,
        position: last.position,
        events_written: written,
        created_at_unix_micros: recorded[0].envelope.occurred_at_unix_micros,
        updated_at_unix_micros: last.envelope.occurred_at_unix_micros,
        appended: Vec::new(),
    })
}

/// A fresh UUID v7, or, for a command with an idempotency key, a UUID v8
/// derived from the key, the stream and the event's index, so that the retry
/// of a command produces the same ids and the log stores nothing new.
fn event_id(idempotency_key: Option<&str>, stream: &str, index: usize) -> String {
    match idempotency_key {
        None => uuid::Uuid::now_v7().to_string(),
        Some(key) => {
            let digest = Sha256::digest(format!("{key}\0{stream}\0{index}").as_bytes());
            let bytes: [u8; 16] = digest[..16].try_into().expect("16 bytes");
            uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .to_string()
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
