//! The shared contract suite, on the JetStream backend: each case gets its own
//! `nats-server` process on a free port, killed when the case ends.

use std::sync::Arc;

use iga_eventlog::contract::ContractStore;
use iga_eventlog::jetstream::{JetStreamConfig, JetStreamEventStore};
use iga_eventlog::nats_server::NatsServer;
use iga_eventlog::{EventStore, Limits};

async fn store_on_fresh_server() -> Option<ContractStore> {
    let server = NatsServer::start().expect("start nats-server");
    let store =
        JetStreamEventStore::connect(JetStreamConfig::new(server.url.clone()), Limits::default())
            .await
            .expect("connect to nats-server");
    Some(ContractStore {
        store: Arc::new(store) as Arc<dyn EventStore>,
        guard: Box::new(server),
    })
}

iga_eventlog::event_store_contract!(store_on_fresh_server());
