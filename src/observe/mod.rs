//! Observability: OpenLineage run events and Prometheus metrics for each entry.
//!
//! Best-effort by design: a lineage receiver or Pushgateway that is down, slow or refusing is
//! logged and never changes the exit code or delays the run more than a few seconds.

use crate::artifact::CompiledEntry;
use crate::commands::Loaded;
use crate::error::IngestionError;
use crate::run::report::EntryResult;
use crate::secrets::SecretStore;

/// What the runner tells observability about a run.
pub struct Observer {}

impl Observer {
    /// Set up from the artifact's `observability` block (lineage and metrics may be absent).
    pub fn new(_loaded: &Loaded, _secrets: &SecretStore, _run_id: &str) -> Observer {
        Observer {}
    }

    /// An entry is about to start its first attempt (lineage START).
    pub async fn entry_started(&self, _entry: &CompiledEntry) {}

    /// An attempt failed and will be retried after `delay_seconds`.
    pub async fn attempt_retried(&self, _entry: &CompiledEntry, _error: &IngestionError, _delay_seconds: f64) {}

    /// An entry ended (lineage COMPLETE or FAIL; metrics).
    pub async fn entry_finished(&self, _entry: &CompiledEntry, _result: &EntryResult) {}

    /// An entry was interrupted by a signal (lineage ABORT).
    pub async fn entry_aborted(&self, _entry: &CompiledEntry, _result: &EntryResult) {}

    /// The run is over: deliver metrics (Pushgateway PUT, textfile), flush lineage.
    pub async fn finish(&self) {}
}
