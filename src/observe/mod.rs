//! Observability: OpenLineage run events and Prometheus metrics for each entry.
//!
//! Best-effort by design: a lineage receiver or Pushgateway that is down, slow or refusing is
//! logged and never changes the exit code or delays the run more than a few seconds. Events
//! are queued and sent by a background task while entries run; metrics are kept in memory and
//! delivered by [`Observer::finish`], which waits at most [`FINISH_BUDGET`] for both.
//!
//! - `lineage.rs`: events, dataset naming, transports (http, file, console);
//! - `metrics.rs`: the Prometheus metrics, Pushgateway push and textfile.
//!
//! No secret value reaches an event or a metric: error messages pass through a redactor that
//! knows every secret the entry references (and URL passwords), and dataset names are built
//! from host, port and database only.

pub mod lineage;
pub mod metrics;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::artifact::CompiledEntry;
use crate::commands::Loaded;
use crate::config::manifest::LineageTransport;
use crate::error::IngestionError;
use crate::run::report::EntryResult;
use crate::secrets::{Redactor, SecretStore};

use self::lineage::{Context, Dataset, Emitter, RunInfo, Transport};
use self::metrics::{Collector, Targets};

/// The longest [`Observer::finish`] waits for lineage and metrics delivery together.
pub const FINISH_BUDGET: Duration = Duration::from_secs(5);

/// One entry's run, between START and its end.
struct EntryRun {
    run_id: String,
    input: Option<Dataset>,
    redactor: Redactor,
    attempts_failed: u32,
}

struct LineageState {
    emitter: Emitter,
    ctx: Context,
}

/// What the runner tells observability about a run.
pub struct Observer {
    lineage: Option<LineageState>,
    metrics: Option<Collector>,
    /// A copy of the artifact, for naming input datasets (only when lineage is on).
    loaded: Option<Loaded>,
    secrets: SecretStore,
    /// Redacts secrets every entry shares (the lineage API key).
    base_redactor: Redactor,
    runs: Mutex<HashMap<String, EntryRun>>,
}

/// The `source` label of an entry: its source name, or `airbyte`.
fn source_label(entry: &CompiledEntry) -> &str {
    entry.source.as_ref().map_or("airbyte", |s| s.name.as_str())
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

impl Observer {
    /// Set up from the artifact's `observability` block (lineage and metrics may be absent).
    pub fn new(loaded: &Loaded, secrets: &SecretStore, run_id: &str) -> Observer {
        let obs = &loaded.artifact.observability;
        let mut base_redactor = Redactor::default();
        let lineage = obs.lineage.as_ref().filter(|l| l.enabled != Some(false)).filter(|_| !env_flag("OPENLINEAGE_DISABLED")).and_then(|l| {
            let transport = match l.transport {
                LineageTransport::Noop => return None,
                LineageTransport::Console => Transport::Console,
                LineageTransport::File => match l.path.as_deref() {
                    Some(p) => Transport::File(loaded.manifest_path(p)),
                    None => {
                        tracing::warn!("lineage: transport `file` has no `path`; lineage events are off");
                        return None;
                    }
                },
                LineageTransport::Http => {
                    let Some(endpoint) = l.endpoint.as_deref() else {
                        tracing::warn!("lineage: transport `http` has no `endpoint`; lineage events are off");
                        return None;
                    };
                    let api_key = match l.api_key_secret_ref.as_deref().map(|r| secrets.resolve(r)) {
                        None => None,
                        Some(Ok(k)) => {
                            base_redactor.add(&k);
                            Some(k)
                        }
                        Some(Err(e)) => {
                            tracing::warn!("lineage: {e}; lineage events are off");
                            return None;
                        }
                    };
                    Transport::http(endpoint, api_key, l.timeout_seconds)
                }
            };
            let namespace = l.namespace.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| lineage::DEFAULT_NAMESPACE.to_string());
            Some(LineageState { emitter: Emitter::start(transport)?, ctx: Context::new(loaded, namespace, run_id) })
        });
        let metrics = obs.metrics.as_ref().filter(|m| m.pushgateway.is_some() || m.textfile.is_some()).map(|m| {
            Collector::new(Targets {
                pushgateway: m.pushgateway.clone(),
                instance: loaded.artifact.metadata.product_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()),
                textfile: m.textfile.as_deref().map(|p| loaded.manifest_path(p)),
                entries: loaded.artifact.ingestion.iter().map(|e| e.name.clone()).collect(),
            })
        });
        let loaded = lineage.as_ref().map(|_| loaded.clone());
        Observer { lineage, metrics, loaded, secrets: secrets.clone(), base_redactor, runs: Mutex::new(HashMap::new()) }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, EntryRun>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn new_run(&self, entry: &CompiledEntry) -> EntryRun {
        let mut redactor = self.base_redactor.clone();
        for reference in entry.secret_refs.values() {
            if let Ok(s) = self.secrets.resolve(reference) {
                redactor.add(&s);
            }
        }
        let input = self.loaded.as_ref().and_then(|l| lineage::input_dataset(l, &self.secrets, entry, &mut redactor));
        EntryRun { run_id: uuid::Uuid::now_v7().to_string(), input, redactor, attempts_failed: 0 }
    }

    /// An entry is about to start its first attempt (lineage START).
    pub async fn entry_started(&self, entry: &CompiledEntry) {
        if self.lineage.is_none() && self.metrics.is_none() {
            return;
        }
        let run = self.new_run(entry);
        if let Some(l) = &self.lineage {
            l.emitter.emit(lineage::start_event(&l.ctx, &RunInfo { run_id: &run.run_id, entry, input: run.input.as_ref() }));
        }
        if let Some(m) = &self.metrics {
            m.started(source_label(entry));
        }
        self.runs().insert(entry.name.clone(), run);
    }

    /// An attempt failed and will be retried after `delay_seconds`.
    pub async fn attempt_retried(&self, entry: &CompiledEntry, error: &IngestionError, delay_seconds: f64) {
        if let Some(m) = &self.metrics {
            m.retried(source_label(entry));
        }
        let Some(l) = &self.lineage else { return };
        let mut runs = self.runs();
        if let Some(run) = runs.get_mut(&entry.name) {
            run.attempts_failed += 1;
            let info = RunInfo { run_id: &run.run_id, entry, input: run.input.as_ref() };
            l.emitter.emit(lineage::retry_event(&l.ctx, &info, error, run.attempts_failed, delay_seconds));
        }
    }

    /// An entry ended (lineage COMPLETE or FAIL; metrics).
    pub async fn entry_finished(&self, entry: &CompiledEntry, result: &EntryResult) {
        if self.lineage.is_none() && self.metrics.is_none() {
            return;
        }
        if let Some(m) = &self.metrics {
            m.finished(&entry.name, source_label(entry), result);
        }
        if let Some(l) = &self.lineage {
            let removed = self.runs().remove(&entry.name);
            let run = match removed {
                Some(r) => r,
                None => {
                    // Never announced (should not happen): give it its START now.
                    let r = self.new_run(entry);
                    l.emitter.emit(lineage::start_event(&l.ctx, &RunInfo { run_id: &r.run_id, entry, input: r.input.as_ref() }));
                    r
                }
            };
            let info = RunInfo { run_id: &run.run_id, entry, input: run.input.as_ref() };
            l.emitter.emit(lineage::end_event(&l.ctx, &info, result, &run.redactor));
        }
    }

    /// An entry was interrupted by a signal (lineage ABORT). Entries that never started get
    /// no event: there was no run to abort.
    pub async fn entry_aborted(&self, entry: &CompiledEntry, result: &EntryResult) {
        let Some(run) = self.runs().remove(&entry.name) else { return };
        if let (Some(m), Some(e)) = (&self.metrics, &result.error) {
            m.error(source_label(entry), e);
        }
        if let Some(l) = &self.lineage {
            l.emitter.emit(lineage::abort_event(&l.ctx, &RunInfo { run_id: &run.run_id, entry, input: run.input.as_ref() }));
        }
    }

    /// The run is over: deliver metrics (Pushgateway PUT, textfile), flush lineage.
    pub async fn finish(&self) {
        let deadline = tokio::time::Instant::now() + FINISH_BUDGET;
        let lineage = async {
            if let Some(l) = &self.lineage {
                l.emitter.close(deadline).await;
            }
        };
        let metrics = async {
            if let Some(m) = &self.metrics {
                m.deliver(deadline).await;
            }
        };
        tokio::join!(lineage, metrics);
    }
}
