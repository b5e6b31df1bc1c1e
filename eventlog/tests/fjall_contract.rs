//! The shared contract suite, on the embedded log's fjall engine.

use std::sync::Arc;

use iga_eventlog::fjall_store::FjallEventStore;
use iga_eventlog::{EventStore, Limits};

iga_eventlog::event_store_contract!(async {
    let store = FjallEventStore::open_temporary(Limits::default()).expect("open fjall");
    Some(Arc::new(store) as Arc<dyn EventStore>)
});
