//! `PolicyDirectory`: approval policies at their current version, and every
//! earlier version (requests refer to the version they were created under).
//!
//! Keys: `p/<policyId>` -> [`PolicyView`]; `v/<policyId>/<version BE>` -> [`PolicyView`].

use crate::ObjectMeta;
use iga_eventlog::RecordedEvent;
use iga_schemas::{v1, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "policies";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyView {
    pub id: String,
    pub definition: v1::PolicyDefinition,
    pub meta: ObjectMeta,
}

pub(crate) fn policy_key(id: &str) -> Vec<u8> {
    format!("p/{id}").into_bytes()
}

pub(crate) fn version_key(id: &str, version: u64) -> Vec<u8> {
    let mut k = format!("v/{id}/").into_bytes();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub struct PolicyDirectory;

impl Projection for PolicyDirectory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let env = &event.envelope;
        let at = env.occurred_at_unix_micros;
        let (id, definition) = match decoded {
            DomainEvent::PolicyCreated(e) => (&e.policy_id, e.definition.clone()),
            DomainEvent::PolicyUpdated(e) => (&e.policy_id, e.definition.clone()),
            DomainEvent::PolicyDeleted(e) => (&e.policy_id, None),
            _ => return Ok(()),
        };
        let existing = tx.get_value::<PolicyView>(&policy_key(id))?;
        let mut view = match existing {
            Some(v) => v,
            None => PolicyView {
                id: id.clone(),
                definition: Default::default(),
                meta: ObjectMeta {
                    created_at_micros: at,
                    ..Default::default()
                },
            },
        };
        match definition {
            Some(d) => view.definition = d,
            None => view.meta.deleted_at_micros = Some(at),
        }
        view.meta.updated_at_micros = at;
        view.meta.version = env.stream_version;
        tx.put_value(version_key(id, env.stream_version), &view);
        tx.put_value(policy_key(id), &view);
        Ok(())
    }
}

impl PolicyDirectory {
    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<PolicyView>> {
        Staged::new(tree).get_value(&policy_key(id))
    }

    /// The policy as it stood at `version`.
    pub(crate) fn at_version(
        tree: &crate::store::Tree,
        id: &str,
        version: u64,
    ) -> Result<Option<PolicyView>> {
        Staged::new(tree).get_value(&version_key(id, version))
    }
}
