//! The embedded engine's sources: where rows enter floe.
//!
//! Each source lives in its own folder (`filesystem/`, `rest_api/`, `sql_database/`,
//! `github/`) with its settings (`config.rs`) beside its code, and registers one
//! [`SourceKind`] in [`REGISTRY`]. Adding a source is adding a folder and a registry line.
//! Names follow CONTRACT.md; `dlt.sources.<name>[.<function>]` names the same sources, so
//! dlt users can keep the import paths they know.

pub mod filesystem;
pub mod github;
pub mod rest_api;
pub mod sql_database;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::diagnostics::FileDiagnostics;
use crate::error::IngestionError;
use crate::secrets::Redactor;

/// What the compiler needs to know about a source.
pub struct SourceKind {
    /// The name used in `dlt.source`.
    pub name: &'static str,
    /// The key a merge may rely on when the entry gives no `primary_key` (github: `id`).
    pub natural_key: Option<&'static [&'static str]>,
    /// Check `dlt.config` against the source's settings; true when valid.
    pub check_config: fn(&Value, &str, &mut FileDiagnostics<'_>) -> bool,
    /// Report a missing `dlt.config` (most sources cannot run without one).
    pub missing_config: fn(&str, &mut FileDiagnostics<'_>),
    /// Check `dlt.resource` against the (valid) config.
    pub check_resource: fn(&Value, Option<&str>, &str, &mut FileDiagnostics<'_>),
    /// The primary key the config itself declares for the chosen resource, if any.
    pub resource_key: fn(&Value, Option<&str>) -> Option<Vec<String>>,
    /// Build the runnable source for one entry (config already validated and secrets
    /// substituted).
    pub open: fn(SourceContext) -> Result<Box<dyn Source>, IngestionError>,
}

/// Everything a source needs to run one entry. `Debug` leaves out `config`: it holds secrets.
#[derive(Clone)]
pub struct SourceContext {
    /// The entry's name (for messages).
    pub entry: String,
    /// `dlt.resource`.
    pub resource: Option<String>,
    /// `dlt.config`, with `${secrets.*}` already substituted. Never log it.
    pub config: Value,
    /// Folder that relative paths in the spec resolve against.
    pub base_dir: PathBuf,
    /// The incremental cursor column, if the entry is incremental.
    pub cursor_column: Option<String>,
    /// Only rows whose cursor is greater than this load (the stored cursor, or
    /// `initial_value` on the first run, minus any lag window). Sources push this down where
    /// they can (SQL `WHERE`, REST `{incremental.start_value}`); the engine filters again.
    pub cursor_start: Option<Value>,
    /// The source's own part of the stored state (e.g. the files already loaded).
    pub source_state: Option<Value>,
    /// Rows per Arrow batch.
    pub batch_size: usize,
    /// S3 settings from the manifest's storage plugin, for `s3://` URLs.
    pub s3: Option<S3Access>,
    /// Scrubs secret values out of messages.
    pub redactor: Redactor,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("entry", &self.entry)
            .field("resource", &self.resource)
            .field("cursor_column", &self.cursor_column)
            .field("cursor_start", &self.cursor_start)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// S3 access for sources reading `s3://` URLs.
#[derive(Clone)]
pub struct S3Access {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style_access: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access").field("endpoint", &self.endpoint).field("region", &self.region).finish_non_exhaustive()
    }
}

/// What a source reports when it has sent everything.
#[derive(Debug, Default, Clone)]
pub struct SourceOutcome {
    /// The source's own state to store with the data (None keeps nothing).
    pub state: Option<Value>,
    /// Records the source itself could not decode (counted, not loaded).
    pub rows_rejected: u64,
    /// A few reasons, for the report (no data values that could be secret).
    pub rejected_samples: Vec<String>,
}

/// A source: reads its data and sends it as Arrow record batches.
#[async_trait::async_trait]
pub trait Source: Send {
    /// Send every batch to `sink`, then report. Memory stays bounded: the sink applies
    /// backpressure, so a source never holds more than a batch or two.
    async fn run(self: Box<Self>, sink: BatchSink) -> Result<SourceOutcome, IngestionError>;
}

/// Where a source sends its batches: a bounded channel to the writer.
#[derive(Clone)]
pub struct BatchSink {
    tx: mpsc::Sender<RecordBatch>,
    progress: Arc<Progress>,
}

/// Counters a source updates as it goes, read by the progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows: AtomicU64,
    /// Pages, files or chunks read.
    pub units: AtomicU64,
}

impl BatchSink {
    /// A sink and the receiving end, holding at most `capacity` batches in flight.
    pub fn channel(capacity: usize, progress: Arc<Progress>) -> (BatchSink, mpsc::Receiver<RecordBatch>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (BatchSink { tx, progress }, rx)
    }

    /// Send one batch, waiting while the writer is busy. Fails when the load was aborted.
    pub async fn send(&self, batch: RecordBatch) -> Result<(), IngestionError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.progress.rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.tx.send(batch).await.map_err(|_| IngestionError::transient(crate::error::code::INTERRUPTED, "floe", "the load was aborted while the source was reading"))
    }

    /// Count one page, file or chunk read.
    pub fn unit_done(&self) {
        self.progress.units.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every source the embedded engine provides.
pub static REGISTRY: &[&SourceKind] = &[&rest_api::KIND, &sql_database::KIND, &filesystem::KIND, &github::KIND];

/// Find a source by `dlt.source`: `filesystem`, `dlt.sources.filesystem`,
/// `dlt.sources.github.github_reactions`, …
pub fn resolve(source: &str) -> Option<&'static SourceKind> {
    let name = match source.strip_prefix("dlt.sources.") {
        Some(rest) => rest.split('.').next().unwrap_or(rest),
        None => source,
    };
    REGISTRY.iter().copied().find(|k| k.name == name)
}

/// A `missing_config` for sources whose config has required keys: names them and shows where
/// they go.
pub(crate) fn missing_config_keys(keys: &str, example: &str, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    d.key_error(dlt_path, format!("missing key `config`: {keys} required"))
        .hint(format!("add under {dlt_path}:  config: {example}"));
}

/// A `check_resource` that accepts anything.
pub(crate) fn any_resource(_: &Value, _: Option<&str>, _: &str, _: &mut FileDiagnostics<'_>) {}

/// A `resource_key` for sources without declared keys.
pub(crate) fn no_resource_key(_: &Value, _: Option<&str>) -> Option<Vec<String>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_dlt_aliases() {
        assert_eq!(resolve("filesystem").map(|k| k.name), Some("filesystem"));
        assert_eq!(resolve("dlt.sources.github.github_reactions").map(|k| k.name), Some("github"));
        assert_eq!(resolve("dlt.sources.sql_database").map(|k| k.name), Some("sql_database"));
        assert!(resolve("dlt.sources.salesforce").is_none());
        assert!(resolve("github_reactions").is_none());
    }
}

