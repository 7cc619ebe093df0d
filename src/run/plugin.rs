//! The plugin interface every entry runs through, shaped after ADR-0020's `IngestionPlugin`:
//! the embedded engine (`dlt`) and the external Airbyte plugin implement it, and the runner
//! (retry, report, signals) never needs to know which one it is driving.

use std::sync::Arc;

use serde::Serialize;

use crate::artifact::CompiledEntry;
use crate::engine::EntryOutcome;
use crate::error::IngestionError;
use crate::sources::Progress;

/// One line of the `--dry-run` plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `filesystem`, `github`, … or `airbyte connection <id>`.
    pub source: String,
    pub destination: String,
    pub write_disposition: String,
    /// Secret reference → whether it resolves. Never values.
    pub secrets: std::collections::BTreeMap<String, bool>,
    /// The stored incremental state the run would resume from.
    pub resume_from: Option<serde_json::Value>,
    /// Problems found while planning (e.g. a missing secret).
    pub problems: Vec<String>,
}

/// What the runner needs from a plugin.
#[async_trait::async_trait]
pub trait IngestionPlugin: Send + Sync {
    /// `dlt` or `airbyte`.
    fn name(&self) -> &'static str;
    /// True when the data moves in an external system (Airbyte), false for the embedded engine.
    fn is_external(&self) -> bool;
    /// The plan for one entry: resolve what can be resolved, touch no source, table or job.
    async fn plan(&self, entry: &CompiledEntry) -> PlanItem;
    /// One attempt at loading one entry. The runner retries by the policy; a retry resumes
    /// from the last committed state, so it never re-commits rows that already committed.
    async fn run(&self, entry: &CompiledEntry, progress: Arc<Progress>) -> Result<EntryOutcome, IngestionError>;
    /// Called once when the run is interrupted (SIGINT/SIGTERM): cancel external work.
    async fn cancel_all(&self) {}
}
