//! The shared contract suite, on the sled backend.

use std::sync::Arc;

use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, Limits};

iga_eventlog::event_store_contract!(async {
    let store = SledEventStore::open_temporary(Limits::default()).expect("open sled");
    Some(Arc::new(store) as Arc<dyn EventStore>)
});
