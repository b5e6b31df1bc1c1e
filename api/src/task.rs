//! [`ProvisioningTask`]: a provisioning task as the API shows it, folded
//! from its stream (`provisioning-<taskId>`); the read model adds what its
//! deliveries say (`attempts`, `lastError`).

use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::rfc3339;

/// Access to give or take away in the system a grant is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningTask {
    pub id: String,
    /// `provision` or `deprovision`.
    pub action: String,
    /// `manual` or `webhook`.
    pub mode: String,
    pub grant_id: String,
    pub request_id: Option<String>,
    pub user_id: String,
    pub app_id: String,
    pub app_entitlement_id: String,
    /// The webhook it is delivered to (mode `webhook`).
    pub webhook_id: Option<String>,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// Deliveries made for it (mode `webhook`; filled on reads).
    pub attempts: u32,
    /// What the last delivery attempt got wrong (filled on reads).
    pub last_error: Option<String>,
    /// Who closes it (mode `manual`): an admin closes any.
    pub assignee_ids: Vec<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Who closed it (`system`: its webhook's answer).
    pub completed_by: Option<String>,
    /// What the closer said.
    pub message: Option<String>,
    pub version: u64,
}

impl ProvisioningTask {
    /// Folds one event of the task's stream, recorded at `at` micros as
    /// stream version `version`.
    pub fn apply(&mut self, event: &DomainEvent, at: i64, version: u64) {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        match event {
            DomainEvent::ProvisioningTaskOpened(e) => {
                *self = ProvisioningTask {
                    id: e.task_id.clone(),
                    action: e.action.clone(),
                    mode: e.mode.clone(),
                    grant_id: e.grant_id.clone(),
                    request_id: some(&e.request_id),
                    user_id: e.user_id.clone(),
                    app_id: e.app_id.clone(),
                    app_entitlement_id: e.entitlement_id.clone(),
                    webhook_id: some(&e.webhook_id),
                    status: "pending".into(),
                    assignee_ids: e.assignee_ids.clone(),
                    created_at: rfc3339(at),
                    ..Default::default()
                };
            }
            DomainEvent::ProvisioningTaskCompleted(e) => {
                self.status = e.outcome.clone();
                self.completed_at = Some(rfc3339(at));
                self.completed_by = some(&e.completed_by);
                self.message = some(&e.message);
            }
            DomainEvent::ProvisioningTaskRetried(_) => {
                self.status = "pending".into();
                self.completed_at = None;
                self.completed_by = None;
                self.message = None;
                self.last_error = None;
            }
            _ => return,
        }
        self.version = version;
    }
}
