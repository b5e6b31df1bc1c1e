//! Objects as they were at an instant (`?at=`): the object's own events, up
//! to that instant, folded by the very projection that keeps the read model,
//! into a scratch [`Staged`] that is never written. What it answers is what
//! the read model held after those events, so it agrees with a rebuild
//! stopped there.
//!
//! The caller reads the events from the log (the object's stream, and for
//! an entitlement its app's, for the built-in `access` entitlement); an
//! entitlement's `grantCount` is the only thing not of its own streams and
//! is left to the caller (the grant ledger answers it at any instant).

use iga_eventlog::RecordedEvent;

use crate::apps::{AppCatalog, AppView};
use crate::entitlements::{EntitlementCatalog, EntitlementView};
use crate::policies::{PolicyDirectory, PolicyView};
use crate::users::{UserDirectory, UserView};
use crate::{Projection, ProjectionError, ReadModels, Result, Staged};

/// The events that happened at or before `at_micros`, in log order.
pub fn until(mut events: Vec<RecordedEvent>, at_micros: i64) -> Vec<RecordedEvent> {
    events.sort_by_key(|e| e.position);
    events.retain(|e| e.envelope.occurred_at_unix_micros <= at_micros);
    events
}

impl ReadModels {
    /// `projection` folded over `events` alone, then `read` from it.
    fn fold<T>(
        &self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        read: impl FnOnce(&mut Staged<'_>) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        // An empty tree under the staged writes: nothing is read from the
        // live read model and nothing is written anywhere.
        let empty = self.scratch()?;
        let mut staged = Staged::new(&empty);
        for event in events {
            let decoded =
                event
                    .envelope
                    .decode_event()
                    .map_err(|source| ProjectionError::Decode {
                        position: event.position,
                        source,
                    })?;
            projection.apply(event, &decoded, &mut staged)?;
        }
        read(&mut staged)
    }

    /// User `id` after `events` (its stream's, up to the instant).
    pub fn user_after(&self, id: &str, events: &[RecordedEvent]) -> Result<Option<UserView>> {
        self.fold(&UserDirectory, events, |s| {
            s.get_value(&crate::users::user_key(id))
        })
    }

    /// App `id` after `events`.
    pub fn app_after(&self, id: &str, events: &[RecordedEvent]) -> Result<Option<AppView>> {
        self.fold(&AppCatalog, events, |s| {
            s.get_value(&crate::apps::app_key(id))
        })
    }

    /// Entitlement `id` of app `app_id` after `events` (the app's and the
    /// entitlement's), with `grantCount` 0.
    pub fn entitlement_after(
        &self,
        app_id: &str,
        id: &str,
        events: &[RecordedEvent],
    ) -> Result<Option<EntitlementView>> {
        self.fold(&EntitlementCatalog, events, |s| {
            s.get_value(&crate::entitlements::entitlement_key(app_id, id))
        })
    }

    /// Policy `id` after `events`.
    pub fn policy_after(&self, id: &str, events: &[RecordedEvent]) -> Result<Option<PolicyView>> {
        self.fold(&PolicyDirectory, events, |s| {
            s.get_value(&crate::policies::policy_key(id))
        })
    }
}
