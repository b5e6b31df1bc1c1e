//! The contract every [`EventStore`] backend passes, written once.
//!
//! Each case is an `async fn(Arc<dyn EventStore>)` that panics on a broken
//! promise. A backend's test file instantiates all of them with
//! [`event_store_contract!`](crate::event_store_contract), giving each case a
//! fresh, empty store:
//!
//! ```ignore
//! iga_eventlog::event_store_contract!(async { make_empty_store().await });
//! ```
//!
//! The cases assume only what the trait promises: positions increase but need
//! not be contiguous (KurrentDB's are not).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::{
    AppendResult, EventEnvelope, EventLogError, EventStore, ExpectedVersion, RecordedEvent, Result,
    StreamAppend,
};

/// A test event with a fresh UUID v7 id and a payload of `payload_len` bytes.
pub fn event(event_type: &str, payload_len: usize) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: event_type.to_string(),
        schema_version: 1,
        occurred_at_unix_micros: 1_700_000_000_000_000,
        actor_id: "contract".into(),
        payload: vec![7u8; payload_len],
        ..Default::default()
    }
}

fn events(n: usize) -> Vec<EventEnvelope> {
    (0..n).map(|i| event(&format!("test.E{i}"), 16)).collect()
}

fn unique_stream(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.read_all(after, 500).await.expect("read_all");
        if batch.is_empty() {
            return out;
        }
        after = batch.last().unwrap().position;
        out.extend(batch);
    }
}

pub async fn append_to_new_stream(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    let sent = events(3);
    let r = store
        .append(&stream, ExpectedVersion::NoStream, sent.clone())
        .await
        .expect("append");
    assert_eq!((r.first_version, r.last_version), (1, 3));
    let read = store.read_stream(&stream, 1, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (rec, sent)) in read.iter().zip(&sent).enumerate() {
        assert_eq!(rec.envelope.event_id, sent.event_id);
        assert_eq!(rec.envelope.stream_id, stream);
        assert_eq!(rec.envelope.stream_version, i as u64 + 1);
        assert_eq!(rec.envelope.payload, sent.payload);
    }
    assert_eq!(read.last().unwrap().position, r.position);
    assert_eq!(store.head().await.unwrap(), r.position);
}

pub async fn no_stream_conflicts_when_stream_exists(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let err = store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::Conflict { actual: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.read_stream(&stream, 1, 10).await.unwrap().len(), 1);
}

pub async fn exact_version_conflicts_and_succeeds(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    store
        .append(&stream, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let err = store
        .append(&stream, ExpectedVersion::Exact(1), events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::Conflict { actual: 2, .. }),
        "{err:?}"
    );
    let err = store
        .append(&unique_stream("t"), ExpectedVersion::Exact(1), events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::Conflict { actual: 0, .. }),
        "{err:?}"
    );
    let r = store
        .append(&stream, ExpectedVersion::Exact(2), events(2))
        .await
        .unwrap();
    assert_eq!((r.first_version, r.last_version), (3, 4));
    let r = store
        .append(&stream, ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    assert_eq!(r.last_version, 5);
}

pub async fn concurrent_appends_at_same_version_one_wins(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    store
        .append(&stream, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(&stream, ExpectedVersion::Exact(1), events(2))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                wins += 1;
                assert_eq!((r.first_version, r.last_version), (2, 3));
            }
            Err(EventLogError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream(&stream, 1, 100).await.unwrap().len(), 3);
}

pub async fn idempotent_retry_stores_nothing(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    let batch = events(3);
    let first = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append(&stream, ExpectedVersion::Exact(3), events(1))
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    // A retry answers the original result even though its expected version is stale.
    let again = store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(again, first);
    let again = store
        .append(&stream, ExpectedVersion::Any, batch.clone())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.read_stream(&stream, 1, 100).await.unwrap().len(), 4);
    // Concurrent retries of one new append store it once.
    let fresh = events(2);
    let stream2 = unique_stream("t");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, s, f) = (store.clone(), stream2.clone(), fresh.clone());
        tasks.push(tokio::spawn(async move {
            store.append(&s, ExpectedVersion::NoStream, f).await
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks).await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    assert_eq!(store.read_stream(&stream2, 1, 100).await.unwrap().len(), 2);
}

pub async fn mismatched_retry_is_refused(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    let batch = events(2);
    store
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    // Same first id, but an extra new event: neither a retry nor a new append.
    let mut mixed = batch.clone();
    mixed.push(event("test.Extra", 4));
    let err = store
        .append(&stream, ExpectedVersion::Any, mixed)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::IdempotencyMismatch { .. }),
        "{err:?}"
    );
    // Same ids in another stream (where the backend can tell).
    if !store.checks_ids_across_streams() {
        eprintln!(
            "{}: event ids are checked within a stream only",
            store.describe()
        );
        return;
    }
    let err = store
        .append(&unique_stream("t"), ExpectedVersion::Any, batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::IdempotencyMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(store.read_stream(&stream, 1, 100).await.unwrap().len(), 2);
}

pub async fn read_all_is_ordered_and_reads_from_the_middle(store: Arc<dyn EventStore>) {
    let start = store.head().await.unwrap();
    let streams: Vec<String> = (0..5).map(|_| unique_stream("t")).collect();
    let mut sent = Vec::new();
    for round in 0..4 {
        for s in &streams {
            let batch = events(1 + round % 2);
            sent.extend(batch.iter().map(|e| e.event_id.clone()));
            store.append(s, ExpectedVersion::Any, batch).await.unwrap();
        }
    }
    let all: Vec<_> = read_everything(&*store)
        .await
        .into_iter()
        .filter(|r| r.position > start)
        .collect();
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let ids: Vec<_> = all.iter().map(|r| r.envelope.event_id.clone()).collect();
    assert_eq!(ids, sent, "read_all returns events in append order");
    // From the middle.
    let mid = all[all.len() / 2].position;
    let rest = store.read_all(mid, 10_000).await.unwrap();
    assert_eq!(
        rest.first().unwrap().envelope.event_id,
        ids[all.len() / 2 + 1]
    );
    assert_eq!(rest.len(), all.len() - all.len() / 2 - 1);
    let two = store.read_all(mid, 2).await.unwrap();
    assert_eq!(two.len(), 2);
    // A stream from the middle, by version.
    let s0 = store.read_stream(&streams[0], 3, 100).await.unwrap();
    assert_eq!(
        s0.iter()
            .map(|r| r.envelope.stream_version)
            .collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    let s0 = store.read_stream(&streams[0], 2, 2).await.unwrap();
    assert_eq!(
        s0.iter()
            .map(|r| r.envelope.stream_version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store
        .read_stream(&unique_stream("absent"), 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_all(store.head().await.unwrap(), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn subscription_switches_to_live_without_gap_or_duplicate(store: Arc<dyn EventStore>) {
    // Backlog before the subscription starts.
    for _ in 0..50 {
        store
            .append(&unique_stream("t"), ExpectedVersion::Any, events(2))
            .await
            .unwrap();
    }
    let from = store
        .read_all(0, 30)
        .await
        .unwrap()
        .last()
        .unwrap()
        .position;
    let mut sub = store.subscribe(from).await.unwrap();
    // Concurrent writers while the subscriber is catching up and going live.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = unique_stream("w");
                for _ in 0..40 {
                    store
                        .append(&stream, ExpectedVersion::Any, events(2))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let head = store.head().await.unwrap();
    let mut got = Vec::new();
    while got.last().map(|r: &RecordedEvent| r.position) != Some(head) {
        let next = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended")
            .expect("subscription error");
        got.push(next);
    }
    let expected: Vec<_> = store.read_all(from, 100_000).await.unwrap();
    assert_eq!(got.len(), expected.len(), "no gap, no duplicate");
    assert!(got
        .iter()
        .zip(&expected)
        .all(|(a, b)| a.position == b.position && a.envelope.event_id == b.envelope.event_id));
    // And it stays live.
    let r = store
        .append(&unique_stream("t"), ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("live event not delivered")
        .unwrap()
        .unwrap();
    assert_eq!(live.position, r.position);
}

pub async fn thousands_of_streams(store: Arc<dyn EventStore>) {
    let streams: Vec<String> = (0..2000)
        .map(|i| format!("many-{i}-{}", uuid::Uuid::now_v7().simple()))
        .collect();
    let mut tasks = Vec::new();
    for chunk in streams.chunks(250) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for s in &chunk {
                store
                    .append(s, ExpectedVersion::NoStream, events(1))
                    .await
                    .unwrap();
                store
                    .append(s, ExpectedVersion::Exact(1), events(1))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for s in streams.iter().step_by(7) {
        let read = store.read_stream(s, 1, 10).await.unwrap();
        assert_eq!(read.len(), 2, "stream {s}");
        assert!(read.iter().all(|r| &r.envelope.stream_id == s));
    }
    let all = read_everything(&*store).await;
    let ids: HashSet<_> = all.iter().map(|r| r.envelope.event_id.clone()).collect();
    assert_eq!(ids.len(), all.len());
    let touched: BTreeSet<_> = all.iter().map(|r| r.envelope.stream_id.clone()).collect();
    assert!(streams.iter().all(|s| touched.contains(s)));
}

pub async fn oversize_and_invalid_appends_store_nothing(store: Arc<dyn EventStore>) {
    let stream = unique_stream("t");
    let head = store.head().await.unwrap();
    let mut batch = events(1);
    batch.push(event("test.Big", 2 * 1024 * 1024));
    let err = store
        .append(&stream, ExpectedVersion::Any, batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::EventTooLarge { limit, .. } if limit == 1024 * 1024),
        "{err:?}"
    );
    let err = store
        .append("bad stream.id", ExpectedVersion::Any, events(1))
        .await
        .unwrap_err();
    assert!(matches!(err, EventLogError::InvalidAppend(_)), "{err:?}");
    let err = store
        .append(&stream, ExpectedVersion::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, EventLogError::InvalidAppend(_)), "{err:?}");
    let mut bad_id = event("test.E", 1);
    bad_id.event_id = "not-a-uuid".into();
    let err = store
        .append(&stream, ExpectedVersion::Any, vec![bad_id])
        .await
        .unwrap_err();
    assert!(matches!(err, EventLogError::InvalidAppend(_)), "{err:?}");
    let e = event("test.E", 1);
    let err = store
        .append(&stream, ExpectedVersion::Any, vec![e.clone(), e])
        .await
        .unwrap_err();
    assert!(matches!(err, EventLogError::InvalidAppend(_)), "{err:?}");
    assert_eq!(store.head().await.unwrap(), head);
    assert!(store.read_stream(&stream, 1, 10).await.unwrap().is_empty());
}

fn part(stream: &str, expected: ExpectedVersion, events: Vec<EventEnvelope>) -> StreamAppend {
    StreamAppend {
        stream: stream.to_string(),
        expected,
        events,
    }
}

/// An append to several streams stores every part, in order, or nothing; a
/// retry answers the original results; of racing appends, one wins.
pub async fn append_streams_is_all_or_nothing(store: Arc<dyn EventStore>) {
    let (a, b) = (unique_stream("t"), unique_stream("t"));
    if !store.appends_streams_atomically() {
        let err = store
            .append_streams(vec![part(&a, ExpectedVersion::Any, events(1))])
            .await
            .unwrap_err();
        assert!(matches!(err, EventLogError::InvalidAppend(_)), "{err:?}");
        eprintln!(
            "{}: no multi-stream append; callers append part by part",
            store.describe()
        );
        return;
    }
    let head = store.head().await.unwrap();
    let first = vec![
        part(&a, ExpectedVersion::NoStream, events(2)),
        part(&b, ExpectedVersion::NoStream, events(1)),
    ];
    let results = store.append_streams(first.clone()).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!((results[0].first_version, results[0].last_version), (1, 2));
    assert_eq!((results[1].first_version, results[1].last_version), (1, 1));
    assert!(results[0].position < results[1].position);
    let written: Vec<_> = store.read_all(head, 10).await.unwrap();
    let order: Vec<_> = written
        .iter()
        .map(|r| (r.envelope.stream_id.as_str(), r.envelope.stream_version))
        .collect();
    assert_eq!(order, [(a.as_str(), 1), (a.as_str(), 2), (b.as_str(), 1)]);
    let head = store.head().await.unwrap();

    // One stale part refuses the whole, with that part's conflict.
    let err = store
        .append_streams(vec![
            part(&a, ExpectedVersion::Exact(2), events(1)),
            part(&b, ExpectedVersion::NoStream, events(1)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EventLogError::Conflict { stream, actual: 1, .. } if *stream == b),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.read_stream(&a, 1, 10).await.unwrap().len(), 2);

    // A retry answers the original results and stores nothing; half a retry
    // (one part stored, one new) is refused.
    assert_eq!(store.append_streams(first.clone()).await.unwrap(), results);
    let err = store
        .append_streams(vec![
            first[0].clone(),
            part(&unique_stream("t"), ExpectedVersion::NoStream, events(1)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventLogError::IdempotencyMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap(), head);

    // A stream may come back in a later part, whose expected version counts
    // the earlier part's events: a then b then a again, in that order.
    let err = store
        .append_streams(vec![
            part(&a, ExpectedVersion::Exact(2), events(1)),
            part(&a, ExpectedVersion::Exact(2), events(1)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EventLogError::Conflict { actual: 3, .. }),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap(), head);
    let results = store
        .append_streams(vec![
            part(&a, ExpectedVersion::Exact(2), events(1)),
            part(&b, ExpectedVersion::Exact(1), events(1)),
            part(&a, ExpectedVersion::Exact(3), events(1)),
        ])
        .await
        .unwrap();
    let versions: Vec<_> = results.iter().map(|r| r.last_version).collect();
    assert_eq!(versions, [3, 2, 4]);
    let order: Vec<_> = store
        .read_all(head, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.envelope.stream_id.clone(), r.envelope.stream_version))
        .collect();
    assert_eq!(order, [(a.clone(), 3), (b.clone(), 2), (a.clone(), 4)]);

    // Eight different appends race for the same two new streams: one wins.
    let (c, d) = (unique_stream("t"), unique_stream("t"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, c, d) = (store.clone(), c.clone(), d.clone());
            tokio::spawn(async move {
                store
                    .append_streams(vec![
                        part(&c, ExpectedVersion::NoStream, events(1)),
                        part(&d, ExpectedVersion::NoStream, events(2)),
                    ])
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in futures::future::join_all(tasks).await {
        match t.unwrap() {
            Ok(_) => wins += 1,
            Err(EventLogError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream(&c, 1, 10).await.unwrap().len(), 1);
    assert_eq!(store.read_stream(&d, 1, 10).await.unwrap().len(), 2);
}

/// Many appends to several streams at once, as concurrent commands make
/// them (a log may send them to its server together): each is answered on
/// its own merits. The ones whose versions hold are stored whole, where
/// they say; a stale one is refused with its conflict and stores nothing,
/// whatever else is in flight; of two racing for one stream, one wins; a
/// retry among them answers its original result.
pub async fn concurrent_multi_stream_appends_keep_their_own_outcomes(store: Arc<dyn EventStore>) {
    if !store.appends_streams_atomically() {
        eprintln!("{}: no multi-stream append", store.describe());
        return;
    }
    let new = || unique_stream("g");
    // Streams at version 1 to build on.
    let mut at_one = Vec::new();
    for _ in 0..16 {
        let s = new();
        store
            .append(&s, ExpectedVersion::NoStream, events(1))
            .await
            .unwrap();
        at_one.push(s);
    }
    let retried = vec![
        part(&new(), ExpectedVersion::NoStream, events(1)),
        part(&new(), ExpectedVersion::NoStream, events(2)),
    ];
    let original = store.append_streams(retried.clone()).await.unwrap();
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        Good,
        Stale,
        Rival,
        Retry,
    }
    let mut commits: Vec<(Kind, Vec<StreamAppend>)> = Vec::new();
    for s in &at_one[0..8] {
        commits.push((
            Kind::Good,
            vec![
                part(s, ExpectedVersion::Exact(1), events(2)),
                part(&new(), ExpectedVersion::NoStream, events(1)),
            ],
        ));
    }
    for s in &at_one[8..12] {
        commits.push((
            Kind::Stale,
            vec![
                part(&new(), ExpectedVersion::NoStream, events(1)),
                part(s, ExpectedVersion::Exact(3), events(1)),
            ],
        ));
    }
    for s in &at_one[12..16] {
        for _ in 0..2 {
            commits.push((
                Kind::Rival,
                vec![
                    part(&new(), ExpectedVersion::NoStream, events(1)),
                    part(s, ExpectedVersion::Exact(1), events(1)),
                ],
            ));
        }
    }
    commits.push((Kind::Retry, retried));
    let outcomes = append_streams_at_once(&store, commits.iter().map(|(_, p)| p.clone())).await;
    let mut rival_wins = std::collections::HashMap::new();
    for ((kind, parts), outcome) in commits.iter().zip(&outcomes) {
        match (kind, outcome) {
            (Kind::Retry, Ok(results)) => assert_eq!(results, &original),
            (Kind::Good | Kind::Rival, Ok(results)) => {
                if *kind == Kind::Rival {
                    *rival_wins.entry(parts[1].stream.clone()).or_insert(0) += 1;
                }
                // Stored whole, at the positions and versions answered.
                for (p, r) in parts.iter().zip(results) {
                    let recorded = store
                        .read_stream(&p.stream, r.first_version, 10)
                        .await
                        .unwrap();
                    let ids: Vec<_> = recorded.iter().map(|e| &e.envelope.event_id).collect();
                    let sent: Vec<_> = p.events.iter().map(|e| &e.event_id).collect();
                    assert_eq!(ids, sent, "{kind:?} part {}", p.stream);
                    assert_eq!(recorded.last().unwrap().position, r.position);
                    assert_eq!(
                        recorded.last().unwrap().envelope.stream_version,
                        r.last_version
                    );
                }
            }
            (Kind::Stale | Kind::Rival, Err(EventLogError::Conflict { stream, .. })) => {
                assert_eq!(stream, &parts[1].stream, "{kind:?}");
                // Nothing of it stored, not even its new stream.
                assert!(store
                    .read_stream(&parts[0].stream, 1, 10)
                    .await
                    .unwrap()
                    .is_empty());
            }
            (kind, outcome) => panic!("{kind:?} answered {outcome:?}"),
        }
    }
    assert_eq!(rival_wins.len(), 4, "each contested stream has one winner");
    assert!(rival_wins.values().all(|&n| n == 1), "{rival_wins:?}");
    for s in &at_one[8..12] {
        assert_eq!(store.read_stream(s, 1, 10).await.unwrap().len(), 1);
    }
    for s in &at_one[12..16] {
        assert_eq!(store.read_stream(s, 1, 10).await.unwrap().len(), 2);
    }
    // Every stored commit is contiguous in the log.
    let all = store.read_all(0, 10_000).await.unwrap();
    for ((kind, parts), outcome) in commits.iter().zip(&outcomes) {
        if let (Kind::Good | Kind::Rival, Ok(_)) = (kind, outcome) {
            let ids: Vec<&str> = parts
                .iter()
                .flat_map(|p| p.events.iter().map(|e| e.event_id.as_str()))
                .collect();
            let start = all
                .iter()
                .position(|r| r.envelope.event_id == ids[0])
                .unwrap();
            let stored: Vec<&str> = all[start..start + ids.len()]
                .iter()
                .map(|r| r.envelope.event_id.as_str())
                .collect();
            assert_eq!(stored, ids, "{kind:?} commit interleaved with another");
        }
    }
}

/// Sends every multi-stream append of `commits` at once, each from its own
/// task (as concurrent commands do), and answers their outcomes in order.
pub async fn append_streams_at_once(
    store: &Arc<dyn EventStore>,
    commits: impl Iterator<Item = Vec<StreamAppend>>,
) -> Vec<Result<Vec<AppendResult>>> {
    let tasks: Vec<_> = commits
        .map(|parts| {
            let store = store.clone();
            tokio::spawn(async move { store.append_streams(parts).await })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("an append task panicked"))
        .collect()
}

/// A store under test, and whatever must live as long as it (a server process).
pub struct ContractStore {
    pub store: Arc<dyn EventStore>,
    pub guard: Box<dyn std::any::Any + Send>,
}

impl From<Arc<dyn EventStore>> for ContractStore {
    fn from(store: Arc<dyn EventStore>) -> Self {
        ContractStore {
            store,
            guard: Box::new(()),
        }
    }
}

/// Instantiates every contract case as a `#[tokio::test]`. `$make` is an
/// expression producing a future that yields a fresh `Arc<dyn EventStore>`
/// (or a [`ContractStore`] holding what it needs alive), or `None` to skip
/// (the case then prints why it skipped).
#[macro_export]
macro_rules! event_store_contract {
    ($make:expr) => {
        $crate::event_store_contract!(@cases $make;
            append_to_new_stream,
            no_stream_conflicts_when_stream_exists,
            exact_version_conflicts_and_succeeds,
            concurrent_appends_at_same_version_one_wins,
            idempotent_retry_stores_nothing,
            mismatched_retry_is_refused,
            read_all_is_ordered_and_reads_from_the_middle,
            subscription_switches_to_live_without_gap_or_duplicate,
            thousands_of_streams,
            oversize_and_invalid_appends_store_nothing,
            append_streams_is_all_or_nothing,
            concurrent_multi_stream_appends_keep_their_own_outcomes,
        );
    };
    (@cases $make:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let made: Option<$crate::contract::ContractStore> = $make.await.map(Into::into);
                match made {
                    Some(made) => {
                        $crate::contract::$case(made.store).await;
                        drop(made.guard);
                    }
                    None => eprintln!("SKIPPED contract case {}: backend not available", stringify!($case)),
                }
            }
        )*
    };
}
