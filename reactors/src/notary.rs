//! The notary: signs checkpoints (tree heads) of the log's Merkle tree,
//! which [`projection_service::audit_tree::LogTree`] keeps, and records them
//! in the log through command-service. It signs when the domain says one is
//! due (`iga_domain::audit::checkpoint_due`): every period if anything was
//! logged since the last, and at once when an admin or auditor asked.
//!
//! Every instance running reactors may run one; the checkpoints stream
//! orders them, so a size already signed is not signed again. Instances
//! meant to sign as one log share one key (`--audit-key`).

use std::sync::Arc;
use std::time::Duration;

use command_service::CommandHandler;
use ed25519_dalek::SigningKey;
use iga_domain::audit::{checkpoint_due, TreeFacts};
use projection_service::audit_tree::LogTree;
use tokio::sync::watch;

pub struct Notary {
    pub handler: CommandHandler,
    pub tree: Arc<LogTree>,
    pub key: SigningKey,
    /// The checkpoints' origin line (names the log and its key).
    pub origin: String,
    /// The period between checkpoints.
    pub interval: Duration,
}

impl Notary {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let mut changes = self.tree.watch();
        // What this notary signed, ahead of the tree seeing its event; the
        // first period runs from its start.
        let (mut signed_size, mut signed_at) = (0u64, command_service::now_unix_micros());
        let interval = self.interval.as_micros() as i64;
        let mut delay = Duration::from_millis(50);
        loop {
            let status = self.tree.status();
            if status.signed_size >= signed_size {
                signed_size = status.signed_size;
                signed_at = signed_at.max(status.signed_at_micros);
            }
            let now = command_service::now_unix_micros();
            let facts = TreeFacts {
                content_size: status.content_size,
                signed_size,
                signed_at_micros: signed_at,
                requested: status.requested_size > signed_size,
                now_micros: now,
                interval_micros: interval,
            };
            let mut wait = Duration::from_micros(
                (signed_at.saturating_add(interval) - now).clamp(1_000, interval.max(1_000)) as u64,
            );
            if checkpoint_due(&facts) {
                match self.sign(status.size, now).await {
                    Ok(()) => {
                        signed_size = status.size;
                        signed_at = now;
                        delay = Duration::from_millis(50);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, tree_size = status.size, "signing a checkpoint failed; retrying");
                        wait = delay;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            tokio::select! {
                _ = changes.changed() => {},
                _ = tokio::time::sleep(wait) => {},
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    async fn sign(&self, size: u64, now: i64) -> Result<(), String> {
        let root = self
            .tree
            .root(size)
            .map_err(|e| e.to_string())?
            .ok_or("the tree shrank")?;
        let head = projection_service::tree_head::sign(&self.key, &self.origin, size, &root, now);
        command_service::audit::record_checkpoint(&self.handler, head)
            .await
            .map_err(|e| e.to_string())?;
        metrics::counter!("iga_audit_checkpoints_signed_total").increment(1);
        tracing::info!(tree_size = size, "audit checkpoint signed");
        Ok(())
    }
}
