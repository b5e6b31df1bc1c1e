//! The shared contract suite, on the KurrentDB backend, against the server
//! `IGA_KURRENTDB_URL` names (e.g. `esdb://127.0.0.1:2113?tls=false`). Each
//! case gets its own stream prefix, so it sees an empty log however many
//! cases ran on that server before.
//!
//! Without `IGA_KURRENTDB_URL` every case says loudly that it skipped: no
//! KurrentDB server can be installed on the machines this was written on
//! (it is not in the package registries they reach).

use std::sync::Arc;

use iga_eventlog::contract::ContractStore;
use iga_eventlog::kurrent::{KurrentConfig, KurrentEventStore};
use iga_eventlog::{EventStore, Limits};

async fn store_on_fresh_prefix() -> Option<ContractStore> {
    let Ok(url) = std::env::var("IGA_KURRENTDB_URL") else {
        eprintln!(
            "SKIPPED: IGA_KURRENTDB_URL is not set, so the KurrentDB contract suite did not run \
             (start a server, e.g. `docker run -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb \
             --insecure`, and set IGA_KURRENTDB_URL=esdb://127.0.0.1:2113?tls=false)"
        );
        return None;
    };
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let sep = if url.contains('?') { '&' } else { '?' };
    let config = KurrentConfig::from_url(&format!("{url}{sep}streamPrefix={prefix}"))
        .expect("IGA_KURRENTDB_URL is a valid KurrentDB URL");
    let store = KurrentEventStore::connect(config, Limits::default())
        .await
        .expect("connect to the KurrentDB server of IGA_KURRENTDB_URL");
    Some(ContractStore::from(Arc::new(store) as Arc<dyn EventStore>))
}

iga_eventlog::event_store_contract!(store_on_fresh_prefix());
