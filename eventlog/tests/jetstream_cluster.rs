//! The JetStream log on a three-node cluster with an R3 stream.

use iga_eventlog::contract::event;
use iga_eventlog::jetstream::{JetStreamConfig, JetStreamEventStore};
use iga_eventlog::nats_server::NatsCluster;
use iga_eventlog::{EventStore, ExpectedVersion, Limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_reads_on_a_replicated_stream() {
    let cluster = NatsCluster::start().expect("start cluster");
    let config =
        JetStreamConfig::from_url(&format!("nats://{}?replicas=3", cluster.urls())).unwrap();
    let store = JetStreamEventStore::connect(config, Limits::default())
        .await
        .unwrap_or_else(|e| panic!("connect to the cluster: {e}\n{}", cluster.servers[0].log()));
    let r = store
        .append(
            "t-1",
            ExpectedVersion::NoStream,
            vec![event("test.A", 8), event("test.B", 8)],
        )
        .await
        .unwrap();
    assert_eq!(r.last_version, 2);
    assert_eq!(store.read_stream("t-1", 1, 10).await.unwrap().len(), 2);
}
