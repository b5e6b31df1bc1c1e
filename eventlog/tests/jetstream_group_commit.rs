//! The JetStream log's group commit, against a real `nats-server`: appends
//! sent together in one atomic batch must still fail only on their own
//! account. (That each is answered on its own merits when versions are
//! stale, streams contested or a retry is among them is a contract case,
//! `concurrent_multi_stream_appends_keep_their_own_outcomes`, run on every
//! log.)

use std::sync::Arc;

use iga_eventlog::contract::{append_streams_at_once, event};
use iga_eventlog::jetstream::{JetStreamConfig, JetStreamEventStore};
use iga_eventlog::nats_server::NatsServer;
use iga_eventlog::{EventLogError, EventStore, ExpectedVersion, Limits, StreamAppend};

fn two_streams(tag: &str, n: usize, payload: usize) -> Vec<StreamAppend> {
    (0..2)
        .map(|s| StreamAppend {
            stream: format!("{tag}-{n}-{s}"),
            expected: ExpectedVersion::NoStream,
            events: vec![event("test.Grouped", payload)],
        })
        .collect()
}

/// An event the log's limits allow but the connection's payload limit
/// (nats-server's default `max_payload`, 1 MB) does not: the client refuses
/// to send it. Sent among many small appends, it must fail alone, not take
/// the batch it could have shared down with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_client_cannot_send_fails_alone() {
    let server = NatsServer::start().expect("start nats-server");
    let limits = Limits {
        max_event_bytes: 4 * 1024 * 1024,
        ..Limits::default()
    };
    let store: Arc<dyn EventStore> = Arc::new(
        JetStreamEventStore::connect(JetStreamConfig::new(server.url.clone()), limits)
            .await
            .expect("connect"),
    );
    for round in 0..5 {
        let tag = format!("r{round}");
        let mut commits: Vec<(bool, Vec<StreamAppend>)> = (0..12)
            .map(|n| (false, two_streams(&tag, n, 100)))
            .collect();
        commits.insert(6, (true, two_streams(&tag, 99, 2 * 1024 * 1024)));
        let outcomes = append_streams_at_once(&store, commits.iter().map(|(_, p)| p.clone())).await;
        for ((large, parts), outcome) in commits.iter().zip(outcomes) {
            match (large, outcome) {
                (false, Ok(results)) => assert_eq!(results.len(), 2),
                (true, Err(EventLogError::Unavailable(why))) => {
                    assert!(!why.is_empty());
                    for p in parts {
                        assert!(store
                            .read_stream(&p.stream, 1, 10)
                            .await
                            .unwrap()
                            .is_empty());
                    }
                }
                (large, outcome) => panic!("large: {large}, answered {outcome:?}"),
            }
        }
    }
}
