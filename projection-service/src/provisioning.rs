//! `TaskQueue`: provisioning tasks as the API shows them (folded by
//! [`iga_api::ProvisioningTask::apply`]), with what their deliveries say,
//! listed oldest first, by status, by assignee (the manual-task inbox) or
//! by grant.
//!
//! Keys: `t/<taskId>` -> [`TaskRecord`]; `o/<seq>/<taskId>`,
//! `s/<status>/<seq>/<taskId>`, `a/<assigneeId>/<seq>/<taskId>`,
//! `g/<grantId>/<seq>/<taskId>` -> `""` (`seq`: the log position of the
//! task's opening, big-endian, so key order is opening order);
//! `d/<deliveryId>` -> the task id of a provisioning delivery.

use iga_api::ProvisioningTask;
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "provisioning";

/// A task and where it sits in the indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: ProvisioningTask,
    /// The log position of its opening.
    pub seq: u64,
}

fn task_key(id: &str) -> Vec<u8> {
    format!("t/{id}").into_bytes()
}

fn indexed(prefix: &str, seq: u64, id: &str) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k.push(b'/');
    k.extend_from_slice(id.as_bytes());
    k
}

fn delivery_key(id: &str) -> Vec<u8> {
    format!("d/{id}").into_bytes()
}

/// Which index a task list reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskScope {
    All,
    Status(String),
    AssignedTo(String),
    Grant(String),
}

impl TaskScope {
    pub(crate) fn prefix(&self) -> String {
        match self {
            TaskScope::All => "o/".into(),
            TaskScope::Status(s) => format!("s/{s}/"),
            TaskScope::AssignedTo(a) => format!("a/{a}/"),
            TaskScope::Grant(g) => format!("g/{g}/"),
        }
    }
}

pub struct TaskQueue;

impl TaskQueue {
    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<TaskRecord>> {
        Staged::new(tree).get_value(&task_key(id))
    }
}

/// Changes the task `id` with `change`, moving its status index.
fn change(tx: &mut Staged<'_>, id: &str, change: impl FnOnce(&mut ProvisioningTask)) -> Result<()> {
    let Some(mut record) = tx.get_value::<TaskRecord>(&task_key(id))? else {
        return Ok(());
    };
    let before = record.task.status.clone();
    change(&mut record.task);
    if record.task.status != before {
        tx.delete(indexed(&format!("s/{before}/"), record.seq, id));
        tx.put(
            indexed(&format!("s/{}/", record.task.status), record.seq, id),
            Vec::new(),
        );
    }
    tx.put_value(task_key(id), &record);
    Ok(())
}

impl Projection for TaskQueue {
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
        let (at, version) = (env.occurred_at_unix_micros, env.stream_version);
        match decoded {
            DomainEvent::ProvisioningTaskOpened(e) => {
                let mut task = ProvisioningTask::default();
                task.apply(decoded, at, version);
                let seq = event.position;
                let id = &e.task_id;
                tx.put(indexed("o/", seq, id), Vec::new());
                tx.put(indexed(&format!("s/{}/", task.status), seq, id), Vec::new());
                tx.put(indexed(&format!("g/{}/", e.grant_id), seq, id), Vec::new());
                for a in &e.assignee_ids {
                    tx.put(indexed(&format!("a/{a}/"), seq, id), Vec::new());
                }
                tx.put_value(task_key(id), &TaskRecord { task, seq });
            }
            DomainEvent::ProvisioningTaskCompleted(e) => {
                change(tx, &e.task_id, |t| t.apply(decoded, at, version))?
            }
            DomainEvent::ProvisioningTaskRetried(e) => {
                change(tx, &e.task_id, |t| t.apply(decoded, at, version))?
            }
            DomainEvent::DeliveryRequested(e) if e.kind == "provisioning" => {
                tx.put(
                    delivery_key(&e.delivery_id),
                    e.subject_id.as_bytes().to_vec(),
                );
            }
            DomainEvent::DeliveryAttempted(e) => {
                if let Some(task_id) = tx.get(&delivery_key(&e.delivery_id))? {
                    let task_id = String::from_utf8_lossy(&task_id).into_owned();
                    change(tx, &task_id, |t| {
                        t.attempts += 1;
                        t.last_error = Some(e.error.clone()).filter(|e| !e.is_empty());
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
