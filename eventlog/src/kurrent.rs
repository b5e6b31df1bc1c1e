//! The KurrentDB (EventStoreDB) backend of [`EventStore`], through the
//! official `kurrentdb` gRPC client.
//!
//! - Each aggregate stream `s` is the KurrentDB stream `<prefix>.<s>` (the
//!   prefix, `iga` by default, keeps the service's streams apart from others
//!   in the same database, and makes `$ce-iga.user` the category of users).
//! - An event is one KurrentDB event: its id is the envelope's event id, its
//!   type the envelope's event type, its data the protobuf envelope.
//! - A stream version is the KurrentDB revision + 1; the expected version of
//!   an append is the expected revision (`Any` is turned into the revision
//!   read just before, so a retry can be recognised first, see below).
//! - A position is the event's `$all` commit position. Since KurrentDB 20,
//!   every event of an append is its own committed record, so commit
//!   positions are unique per event and increase in `$all` order; reading
//!   `$all` from `(p, p)` starts at the event at `p`.
//! - A retried append (all its ids already in the stream) answers the
//!   original result: KurrentDB itself recognises a retry made with the
//!   original expected revision; for any other refusal, the stream is read
//!   and searched for the append's ids, as on JetStream. Unlike the other
//!   backends, ids are not checked across streams (KurrentDB keeps no global
//!   index of event ids); the service never reuses an id across streams.
//! - `read_all` and `subscribe` read `$all` filtered, on the server, to
//!   stream names starting with the prefix.
//!
//! No KurrentDB server could be run where this was written: the contract suite
//! runs against one when `IGA_KURRENTDB_URL` names it, and says loudly that it
//! skipped otherwise.

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions,
    ReadStreamOptions, ResolvedEvent, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscriptionFilter,
};
use prost::Message;

use crate::{
    validate_append, AppendResult, EventEnvelope, EventLogError, EventStore, ExpectedVersion,
    Limits, Position, RecordedEvent, Result, Subscription,
};

/// Where the log is, from `kurrentdb://`, `esdb://` or `kdb://` URLs (and
/// their `+discover` forms). Everything KurrentDB's connection string knows
/// (hosts, `user:password@`, `tls`, `tlsVerifyCert`, `tlsCAFile`,
/// `userCertFile`/`userKeyFile`, `nodePreference`, `defaultDeadline`, ...)
/// is passed to the client; two options are the service's own:
///
/// - `streamPrefix` (default `iga`): prefix of the service's stream names;
/// - `timeoutSecs` (default 15): how long to wait for the database at start
///   and for any one operation before answering "unavailable".
#[derive(Debug, Clone)]
pub struct KurrentConfig {
    /// The connection string without the service's own options.
    pub connection: String,
    pub stream_prefix: String,
    pub timeout: Duration,
}

fn bad_url(url: &str, why: impl std::fmt::Display) -> EventLogError {
    EventLogError::Unavailable(format!("invalid KurrentDB URL {}: {why}", redact(url)))
}

/// `url` with any password replaced by `***`, for logs and errors. (By hand:
/// `url::Url` refuses the several `host:port`s of a cluster's URL.)
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let user = authority[..at].split(':').next().unwrap_or_default();
    format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..])
}

impl KurrentConfig {
    pub fn from_url(url: &str) -> Result<Self> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut stream_prefix = "iga".to_string();
        let mut timeout = Duration::from_secs(15);
        let mut kept = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.to_ascii_lowercase().as_str() {
                "streamprefix" => stream_prefix = v.to_string(),
                "timeoutsecs" => {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (1..=600).contains(s))
                        .ok_or_else(|| bad_url(url, "timeoutSecs must be 1 to 600"))?;
                    timeout = Duration::from_secs(secs);
                }
                _ => kept.push((k.to_string(), v.to_string())),
            }
        }
        let prefix_ok = !stream_prefix.is_empty()
            && stream_prefix.len() <= 50
            && stream_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !prefix_ok {
            return Err(bad_url(
                url,
                "streamPrefix must be 1 to 50 letters, digits, '_' or '-'",
            ));
        }
        let connection = if kept.is_empty() {
            base.to_string()
        } else {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(kept)
                .finish();
            format!("{base}?{query}")
        };
        ClientSettings::from_str(&connection).map_err(|e| bad_url(url, e))?;
        Ok(KurrentConfig {
            connection,
            stream_prefix,
            timeout,
        })
    }

    /// The log's name in messages (no password).
    pub fn describe(&self) -> String {
        format!(
            "{} (streams {}.*)",
            redact(&self.connection),
            self.stream_prefix
        )
    }
}

/// The KurrentDB-backed [`EventStore`].
#[derive(Clone)]
pub struct KurrentEventStore {
    client: Client,
    config: KurrentConfig,
    limits: Limits,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> EventLogError {
    EventLogError::Unavailable(format!("{what}: {e}"))
}

fn client_error(what: &str, e: kurrentdb::Error) -> EventLogError {
    match e {
        kurrentdb::Error::AccessDenied => EventLogError::Unavailable(format!(
            "{what}: access denied (check the user and password in the URL)"
        )),
        other => unavailable(what, other),
    }
}

impl KurrentEventStore {
    /// Connects and reads the head of the log, so that an unreachable or
    /// misconfigured database fails here, within the configured timeout.
    pub async fn connect(config: KurrentConfig, limits: Limits) -> Result<Self> {
        let settings = ClientSettings::from_str(&config.connection)
            .map_err(|e| unavailable("invalid connection string", e))?;
        let client =
            Client::new(settings).map_err(|e| unavailable("cannot create the client", e))?;
        let store = KurrentEventStore {
            client,
            config,
            limits,
        };
        // A database starting beside the service (compose, Kubernetes) may
        // take a moment: keep asking until the timeout.
        let deadline = tokio::time::Instant::now() + store.config.timeout;
        let mut delay = Duration::from_millis(200);
        loop {
            match store.head().await {
                Ok(_) => return Ok(store),
                Err(EventLogError::Unavailable(m))
                    if !m.contains("access denied")
                        && tokio::time::Instant::now() + delay < deadline =>
                {
                    tracing::debug!(error = %m, "KurrentDB not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(EventLogError::Unavailable(m)) => {
                    return Err(EventLogError::Unavailable(format!(
                        "cannot reach the database (tried for {:?}): {m}",
                        store.config.timeout
                    )))
                }
                Err(other) => return Err(other),
            }
        }
    }

    fn stream_name(&self, stream: &str) -> String {
        format!("{}.{stream}", self.config.stream_prefix)
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::on_stream_name().add_prefix(format!("{}.", self.config.stream_prefix))
    }

    /// Runs `op` within the configured timeout.
    async fn timed<T>(
        &self,
        what: &str,
        op: impl std::future::Future<Output = kurrentdb::Result<T>>,
    ) -> Result<T, KurrentFailure> {
        match tokio::time::timeout(self.config.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(KurrentFailure::Client(e)),
            Err(_) => Err(KurrentFailure::Log(unavailable(
                what,
                format!("no answer within {:?}", self.config.timeout),
            ))),
        }
    }

    /// Our record of a KurrentDB event, or `None` for a stream that is not
    /// the service's.
    fn recorded(&self, resolved: &ResolvedEvent) -> Result<Option<RecordedEvent>> {
        let event = resolved.get_original_event();
        let Some(stream) = event
            .stream_id()
            .strip_prefix(&self.config.stream_prefix)
            .and_then(|s| s.strip_prefix('.'))
        else {
            return Ok(None);
        };
        let position = event.position.commit;
        let mut envelope = EventEnvelope::decode(event.data.as_ref()).map_err(|e| {
            EventLogError::Corrupt(format!(
                "event {} of {} at position {position}: {e}",
                event.revision,
                event.stream_id()
            ))
        })?;
        envelope.stream_id = stream.to_string();
        envelope.stream_version = event.revision + 1;
        Ok(Some(RecordedEvent { position, envelope }))
    }

    /// Up to `max` events of `stream` from `from_version`, from KurrentDB.
    async fn read_versions(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from_version.saturating_sub(1)))
            .max_count(max);
        self.read_events(stream, &options).await
    }

    /// The stream's version (0: no stream).
    async fn version(&self, stream: &str) -> Result<u64> {
        let options = ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1);
        let last = self.read_events(stream, &options).await?;
        Ok(last.first().map_or(0, |e| e.envelope.stream_version))
    }

    /// The events of `stream` that `options` select; none if it does not exist.
    async fn read_events(
        &self,
        stream: &str,
        options: &ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>> {
        let what = "read stream";
        let not_found = |e: &KurrentFailure| {
            matches!(
                e,
                KurrentFailure::Client(kurrentdb::Error::ResourceNotFound)
            )
        };
        let mut reader = match self
            .timed(
                what,
                self.client.read_stream(self.stream_name(stream), options),
            )
            .await
        {
            Ok(r) => r,
            Err(e) if not_found(&e) => return Ok(vec![]),
            Err(e) => return Err(e.into_log(what)),
        };
        let mut out = Vec::new();
        loop {
            match self.timed(what, reader.next()).await {
                Ok(Some(resolved)) => {
                    if let Some(r) = self.recorded(&resolved)? {
                        out.push(r);
                    }
                }
                Ok(None) => return Ok(out),
                Err(e) if not_found(&e) => return Ok(vec![]),
                Err(e) => return Err(e.into_log(what)),
            }
        }
    }

    /// If `events` are already stored in `stream` (a retry), the original
    /// result; an error if only some are, or in another order.
    async fn find_retry(
        &self,
        stream: &str,
        events: &[EventEnvelope],
    ) -> Result<Option<AppendResult>> {
        let recorded = self.read_versions(stream, 1, usize::MAX).await?;
        crate::retry_of(&recorded, events)
    }
}

/// A failure of one client call: the client's own error (to match on), or
/// already ours (a timeout).
enum KurrentFailure {
    Client(kurrentdb::Error),
    Log(EventLogError),
}

impl KurrentFailure {
    fn into_log(self, what: &str) -> EventLogError {
        match self {
            KurrentFailure::Client(e) => client_error(what, e),
            KurrentFailure::Log(e) => e,
        }
    }
}

/// Where a read of `$all` starts to see the events after `after`: at the
/// event at `after` itself (each event's commit and prepare positions are
/// equal), which the caller skips.
fn start_after(after: Position) -> StreamPosition<kurrentdb::Position> {
    if after == 0 {
        StreamPosition::Start
    } else {
        StreamPosition::Position(kurrentdb::Position {
            commit: after,
            prepare: after,
        })
    }
}

fn event_data(envelope: &EventEnvelope) -> Result<EventData> {
    let id = uuid::Uuid::parse_str(&envelope.event_id)
        .map_err(|_| EventLogError::InvalidAppend(format!("event id {:?}", envelope.event_id)))?;
    Ok(EventData::binary(
        envelope.event_type.clone(),
        Bytes::from(envelope.encode_to_vec()),
    )
    .id(id))
}

#[async_trait::async_trait]
impl EventStore for KurrentEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendResult> {
        validate_append(stream, &events, &self.limits)?;
        let what = "append";
        // A few rounds only for `Any`, which races other writers.
        for _ in 0..10 {
            let version = match expected {
                ExpectedVersion::Exact(v) => v,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Any => {
                    // A retry must not be stored again: KurrentDB only
                    // recognises one made at the original revision.
                    if let Some(original) = self.find_retry(stream, &events).await? {
                        return Ok(original);
                    }
                    self.version(stream).await?
                }
            };
            let state = match version {
                0 => StreamState::NoStream,
                v => StreamState::StreamRevision(v - 1),
            };
            let mut data = Vec::with_capacity(events.len());
            for (i, e) in events.iter().enumerate() {
                let mut e = e.clone();
                e.stream_id = stream.to_string();
                e.stream_version = version + 1 + i as u64;
                data.push(event_data(&e)?);
            }
            let options = AppendToStreamOptions::default().stream_state(state);
            match self
                .timed(
                    what,
                    self.client
                        .append_to_stream(self.stream_name(stream), &options, data),
                )
                .await
            {
                Ok(written) => {
                    let last_version = written.next_expected_version + 1;
                    let first_version = last_version + 1 - events.len() as u64;
                    // The write's position is its last event's for a single
                    // event; for several (and for a retry KurrentDB
                    // recognised), read the last event's own position.
                    let position = if events.len() == 1
                        && written.position.commit != u64::MAX
                        && written.position.commit > 0
                        && first_version == version + 1
                    {
                        written.position.commit
                    } else {
                        let last = self.read_versions(stream, last_version, 1).await?;
                        last.first().map(|e| e.position).ok_or_else(|| {
                            EventLogError::Corrupt(format!(
                                "stream {stream} has no version {last_version} after an append"
                            ))
                        })?
                    };
                    return Ok(AppendResult {
                        first_version,
                        last_version,
                        position,
                    });
                }
                Err(KurrentFailure::Client(kurrentdb::Error::WrongExpectedVersion {
                    current,
                    ..
                })) => {
                    if let Some(original) = self.find_retry(stream, &events).await? {
                        return Ok(original);
                    }
                    if expected == ExpectedVersion::Any {
                        continue;
                    }
                    let actual = match current {
                        CurrentRevision::Current(r) => r + 1,
                        CurrentRevision::NoStream => 0,
                    };
                    return Err(EventLogError::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual,
                    });
                }
                Err(e) => return Err(e.into_log(what)),
            }
        }
        Err(EventLogError::Unavailable(format!(
            "append to {stream}: other writers kept moving the stream"
        )))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        crate::validate_stream_id(stream)?;
        if max == 0 {
            return Ok(vec![]);
        }
        self.read_versions(stream, from_version.max(1), max).await
    }

    async fn read_all(&self, after: Position, max: usize) -> Result<Vec<RecordedEvent>> {
        if max == 0 {
            return Ok(vec![]);
        }
        let what = "read $all";
        let from = start_after(after);
        // One more than asked: the event at `after` itself comes first.
        let options = ReadAllOptions::default()
            .forwards()
            .position(from)
            .filter(self.filter())
            .max_count(max.saturating_add(1));
        let mut reader = self
            .timed(what, self.client.read_all(&options))
            .await
            .map_err(|e| e.into_log(what))?;
        let mut out = Vec::new();
        while out.len() < max {
            match self.timed(what, reader.next()).await {
                Ok(Some(resolved)) => {
                    if let Some(r) = self.recorded(&resolved)? {
                        if r.position > after {
                            out.push(r);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(e.into_log(what)),
            }
        }
        Ok(out)
    }

    async fn subscribe(&self, after: Position) -> Result<Subscription> {
        let from = start_after(after);
        let options = SubscribeToAllOptions::default()
            .position(from)
            .filter(self.filter());
        let subscription = self.client.subscribe_to_all(&options).await;
        // The client resubscribes by itself after a lost connection, from the
        // last event it delivered; positions are still checked here so that
        // nothing at or before one already passed on is passed on again. The
        // first error ends the subscription (after being passed on).
        let state = Some((subscription, self.clone(), after));
        let stream = futures::stream::unfold(state, |state| async move {
            let (mut subscription, store, mut last) = state?;
            loop {
                let failed = match subscription.next().await {
                    Ok(resolved) => match store.recorded(&resolved) {
                        Ok(Some(r)) if r.position > last => {
                            last = r.position;
                            return Some((Ok(r), Some((subscription, store, last))));
                        }
                        Ok(_) => continue,
                        Err(e) => e,
                    },
                    Err(e) => client_error("subscription to $all", e),
                };
                return Some((Err(failed), None));
            }
        });
        Ok(stream.boxed())
    }

    async fn head(&self) -> Result<Position> {
        let what = "read the head of $all";
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .filter(self.filter())
            .max_count(1);
        let mut reader = self
            .timed(what, self.client.read_all(&options))
            .await
            .map_err(|e| e.into_log(what))?;
        loop {
            match self.timed(what, reader.next()).await {
                Ok(Some(resolved)) => {
                    if let Some(r) = self.recorded(&resolved)? {
                        return Ok(r.position);
                    }
                }
                Ok(None) => return Ok(0),
                Err(e) => return Err(e.into_log(what)),
            }
        }
    }

    fn describe(&self) -> String {
        self.config.describe()
    }

    fn checks_ids_across_streams(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_options_are_taken_out_and_the_rest_passed_on() {
        let c = KurrentConfig::from_url(
            "kurrentdb://admin:changeit@db1:2113,db2:2113?tls=true&streamPrefix=acme&timeoutSecs=5&nodePreference=leader",
        )
        .unwrap();
        assert_eq!(c.stream_prefix, "acme");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.connection.contains("tls=true"), "{}", c.connection);
        assert!(c.connection.contains("nodePreference=leader"));
        assert!(!c.connection.contains("streamPrefix"));
        let described = c.describe();
        assert!(!described.contains("changeit"), "{described}");
        assert!(described.contains("acme.*"), "{described}");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, why) in [
            ("esdb://db:2113?timeoutSecs=0", "timeoutSecs"),
            ("esdb://db:2113?streamPrefix=a.b", "streamPrefix"),
            ("esdb://", "host"),
        ] {
            let err = KurrentConfig::from_url(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn password_is_never_shown() {
        let err = KurrentConfig::from_url("esdb://admin:s3cret@db:2113?timeoutSecs=x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
