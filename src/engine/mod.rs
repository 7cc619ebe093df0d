//! The embedded engine: one ingestion entry → its source → Arrow batches → the Iceberg
//! destination, in one snapshot per load.
//!
//! The source runs as its own task and sends batches through a bounded channel (so memory
//! stays flat however big the input); the engine filters them by the incremental cursor on
//! the way and hands them to the destination, which writes Parquet as they arrive. The new
//! state (cursor and the source's own state) is committed in the same snapshot as the data,
//! so a crash at any point neither loses nor duplicates rows: the next run resumes from the
//! last committed state.

pub mod incremental;
pub mod target;

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use futures::StreamExt;
use serde_json::{json, Value};

use self::incremental::CursorTracker;
use crate::artifact::CompiledEntry;
use crate::commands::Loaded;
use crate::destination::{Destination, DestinationError, LoadRequest, WriteDisposition as DestDisposition};
use crate::error::{code, Category, IngestionError};
use crate::secrets::{Redactor, SecretStore};
use crate::sources::{self, BatchSink, Progress, SourceContext, SourceOutcome};

/// What one successful load did.
#[derive(Debug, Clone, Default)]
pub struct EntryOutcome {
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub rejected_samples: Vec<String>,
    pub table_created: bool,
    pub snapshot_id: Option<i64>,
    /// Columns of the loaded data (name, Arrow type), for lineage.
    pub schema: Vec<(String, String)>,
}

/// The stored state of an entry: `{"cursor": …, "source": …}`.
pub fn parse_state(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

/// The embedded engine for one run: the `dlt` plugin.
pub struct Engine {
    pub loaded: Arc<Loaded>,
    /// The opened destination, or why it could not be opened (every entry then fails with it).
    pub destination: Result<Destination, IngestionError>,
    pub secrets: SecretStore,
    pub full_refresh: bool,
    pub load_id: String,
    /// Every secret value resolved during the run, to scrub from the report.
    pub redactor: Mutex<Redactor>,
}

impl Engine {
    /// Open the destination of the artifact (once per run).
    /// With `inspect_only` (dry run, `ingest state`) an embedded catalog that does not exist
    /// yet is left uncreated.
    pub async fn new(loaded: Arc<Loaded>, secrets: SecretStore, full_refresh: bool, load_id: String, inspect_only: bool) -> Engine {
        let mut redactor = Redactor::default();
        let mut engine = Engine {
            loaded,
            destination: Err(IngestionError::configuration(code::DESTINATION_CONFIG_ERROR, "iceberg", "the catalog does not exist yet")),
            secrets,
            full_refresh,
            load_id,
            redactor: Mutex::new(Redactor::default()),
        };
        if !inspect_only || engine.catalog_exists() {
            engine.destination = match target::destination_config(&engine.loaded, &engine.secrets, &mut redactor) {
                Ok((catalog, storage)) => Destination::open(&catalog, &storage).await.map_err(|e| destination_error(e, &redactor)),
                Err(e) => Err(e),
            };
        }
        engine.redactor = Mutex::new(redactor);
        engine
    }

    fn destination(&self) -> Result<&Destination, IngestionError> {
        self.destination.as_ref().map_err(Clone::clone)
    }

    /// Load one entry; the caller retries by the policy.
    pub async fn run_entry(&self, entry: &CompiledEntry, progress: Arc<Progress>) -> Result<EntryOutcome, IngestionError> {
        let mut redactor = self.redactor.lock().map(|r| r.clone()).unwrap_or_default();
        let result = self.run_inner(entry, progress, &mut redactor).await;
        if let Ok(mut shared) = self.redactor.lock() {
            shared.merge(&redactor);
        }
        result.map_err(|mut e| {
            e.message = redactor.redact(&e.message);
            e
        })
    }

    /// The stored state of an entry (`{"cursor": …, "source": …}`), without creating anything.
    pub async fn stored_state(&self, entry: &CompiledEntry) -> Result<Value, IngestionError> {
        let redactor = self.redactor.lock().map(|r| r.clone()).unwrap_or_default();
        let text = self.destination()?.read_state(&entry.destination, &entry.name).await.map_err(|e| destination_error(e, &redactor))?;
        Ok(parse_state(text.as_deref()))
    }

    async fn run_inner(&self, entry: &CompiledEntry, progress: Arc<Progress>, redactor: &mut Redactor) -> Result<EntryOutcome, IngestionError> {
        let destination = self.destination()?;
        let Some(source) = &entry.source else {
            return Err(IngestionError::configuration(code::INVALID_CONFIG, "floe", format!("entry {} has no dlt block", entry.name)));
        };
        let kind = sources::resolve(&source.name).ok_or_else(|| {
            IngestionError::configuration(code::UNKNOWN_SOURCE, &source.name, format!("unknown source \"{}\"; supported: rest_api, sql_database, filesystem, github", source.name))
        })?;

        let config = self.resolve_config(entry, &source.config, redactor)?;
        // Replace reloads everything by definition: stored state would make it load nothing.
        let replace = entry.write_disposition == crate::config::spec::WriteDisposition::Replace;
        let stored = if self.full_refresh || replace {
            Value::Null
        } else {
            let text = destination.read_state(&entry.destination, &entry.name).await.map_err(|e| destination_error(e, redactor))?;
            parse_state(text.as_deref())
        };
        let incremental = entry.incremental.as_ref();
        let cursor_start = incremental.and_then(|inc| incremental::start_value(stored.get("cursor"), inc.initial_value.as_ref(), inc.lag_seconds));
        let ctx = SourceContext {
            entry: entry.name.clone(),
            resource: source.resource.clone(),
            config,
            base_dir: self.loaded.spec_path(""),
            cursor_column: incremental.map(|i| i.cursor_column.clone()),
            cursor_start: cursor_start.clone(),
            source_state: stored.get("source").cloned().filter(|v| !v.is_null()),
            batch_size: usize::try_from(self.loaded.artifact.plugins.dlt.batch_size).unwrap_or(65_536),
            s3: target::s3_access(&self.loaded, &self.secrets, redactor)?,
            redactor: redactor.clone(),
        };
        let runnable = (kind.open)(ctx)?;

        let (sink, rx) = BatchSink::channel(4, progress);
        let source_task = tokio::spawn(runnable.run(sink));
        let tracker = incremental.map(|inc| CursorTracker::new(&inc.cursor_column, cursor_start));
        let shared = Arc::new(Mutex::new(Shared { tracker, source: None, schema: None }));
        let stream = batches(rx, source_task, shared.clone());

        let state_cell: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let request = LoadRequest {
            table: entry.destination.clone(),
            disposition: match entry.write_disposition {
                crate::config::spec::WriteDisposition::Append => DestDisposition::Append,
                crate::config::spec::WriteDisposition::Replace => DestDisposition::Replace,
                crate::config::spec::WriteDisposition::Merge => DestDisposition::Merge { primary_key: entry.primary_key.clone() },
            },
            load_id: self.load_id.clone(),
            state_key: entry.name.clone(),
            state: state_cell.clone(),
        };
        // The state is only known once the source has finished; the destination reads it at
        // commit time, after the stream ends.
        let finalize = {
            let shared = shared.clone();
            let state_cell = state_cell.clone();
            let stored = stored.clone();
            move || {
                if let (Ok(s), Ok(mut cell)) = (shared.lock(), state_cell.lock()) {
                    let cursor = s.tracker.as_ref().and_then(CursorTracker::max_json);
                    let source_state = s.source.as_ref().and_then(|o| o.state.clone());
                    let new = json!({ "cursor": cursor, "source": source_state });
                    // Unchanged state and no rows: nothing to commit, no empty snapshot.
                    if new != stored {
                        *cell = Some(new.to_string());
                    }
                }
            }
        };
        let stream = stream.chain(futures::stream::once(async move {
            finalize();
            None
        }))
        .filter_map(|x| async move { x });
        let outcome = destination.load(request, Box::pin(stream)).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(DestinationError::Source(e)) => {
                return Err(match e.downcast::<IngestionError>() {
                    Ok(ie) => *ie,
                    Err(other) => IngestionError::permanent(code::SOURCE_ERROR, &source.name, redactor.redact(&other.to_string())),
                });
            }
            Err(e) => return Err(destination_error(e, redactor)),
        };
        let (source_outcome, schema) = shared.lock().map(|mut s| (s.source.take().unwrap_or_default(), s.schema.take())).unwrap_or_default();
        let schema = schema
            .map(|s| s.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect())
            .unwrap_or_default();
        let mut samples = source_outcome.rejected_samples;
        samples.extend(outcome.rejected_samples);
        Ok(EntryOutcome {
            rows_loaded: outcome.rows_loaded,
            rows_rejected: outcome.rows_rejected + source_outcome.rows_rejected,
            rejected_samples: samples.into_iter().map(|s| redactor.redact(&s)).collect(),
            table_created: outcome.table_created,
            snapshot_id: outcome.snapshot_id,
            schema,
        })
    }

    /// Substitute secrets into the source config; github also takes its token from the
    /// entry's `github_token` secret.
    fn resolve_config(&self, entry: &CompiledEntry, config: &Value, redactor: &mut Redactor) -> Result<Value, IngestionError> {
        let (mut config, used) = crate::secrets::substitute(config, &entry.secret_refs, &self.secrets).map_err(|e| missing_secret(&e))?;
        for s in &used {
            redactor.add(s);
        }
        let is_github = entry.source.as_ref().is_some_and(|s| s.name == "github");
        if is_github && config.get("access_token").is_none() {
            if let Some(reference) = entry.secret_refs.get("github_token") {
                let token = self.secrets.resolve(reference).map_err(|e| missing_secret(&e))?;
                redactor.add(&token);
                if let Value::Object(map) = &mut config {
                    map.insert("access_token".into(), Value::String(token.expose().to_string()));
                }
            }
        }
        Ok(config)
    }
}

/// A secret that does not resolve is a CONFIGURATION error naming the reference, never a value.
pub fn missing_secret(e: &crate::secrets::SecretNotFound) -> IngestionError {
    IngestionError::configuration(code::SECRET_NOT_FOUND, "floe", e.to_string()).with_detail("secret_ref", e.reference.clone())
}

/// What the batch stream shares with the commit: the cursor and the source's outcome.
struct Shared {
    tracker: Option<CursorTracker>,
    source: Option<SourceOutcome>,
    /// The schema of the last batch seen.
    schema: Option<arrow_schema::SchemaRef>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The source's batches, filtered by the cursor. When the channel closes, the source task's
/// result decides how the stream ends: cleanly, or with the source's error (so nothing is
/// committed after a failed read).
fn batches(
    rx: tokio::sync::mpsc::Receiver<RecordBatch>,
    task: tokio::task::JoinHandle<Result<SourceOutcome, IngestionError>>,
    shared: Arc<Mutex<Shared>>,
) -> impl futures::Stream<Item = Option<Result<RecordBatch, BoxError>>> + Send {
    futures::stream::unfold((rx, Some(task), shared), |(mut rx, task, shared)| async move {
        if let Some(batch) = rx.recv().await {
            let filtered = match shared.lock() {
                Ok(mut s) => {
                    s.schema = Some(batch.schema());
                    match s.tracker.as_mut() {
                        Some(t) => t.apply(batch),
                        None => Ok(batch),
                    }
                }
                Err(_) => Err(IngestionError::permanent(code::SOURCE_ERROR, "floe", "internal state poisoned")),
            };
            let item = match filtered {
                Ok(b) if b.num_rows() == 0 => None,
                Ok(b) => Some(Ok(b)),
                Err(e) => Some(Err(Box::new(e) as BoxError)),
            };
            return Some((item, (rx, task, shared)));
        }
        let task = task?;
        let end = match task.await {
            Ok(Ok(outcome)) => {
                if let Ok(mut s) = shared.lock() {
                    s.source = Some(outcome);
                }
                None
            }
            Ok(Err(e)) => Some(Err(Box::new(e) as BoxError)),
            Err(join) => Some(Err(Box::new(IngestionError::permanent(code::SOURCE_ERROR, "floe", format!("the source crashed: {join}"))) as BoxError)),
        };
        Some((end, (rx, None, shared)))
    })
}

/// Classify a destination failure.
pub fn destination_error(e: DestinationError, redactor: &Redactor) -> IngestionError {
    let message = redactor.redact(&e.to_string());
    let (category, c) = if e.is_auth() {
        (Category::Permanent, code::AUTH_FAILED)
    } else if e.is_transient() {
        (Category::Transient, code::UNAVAILABLE)
    } else {
        match &e {
            DestinationError::Config(_) | DestinationError::InvalidTable(_) => (Category::Configuration, code::DESTINATION_CONFIG_ERROR),
            DestinationError::Schema { .. } | DestinationError::Unsupported { .. } => (Category::Permanent, code::SCHEMA_CORRUPTION),
            _ => (Category::Permanent, code::DESTINATION_ERROR),
        }
    };
    IngestionError::new(category, c, "iceberg", message)
}

#[async_trait::async_trait]
impl crate::run::plugin::IngestionPlugin for Engine {
    fn name(&self) -> &'static str {
        "dlt"
    }

    fn is_external(&self) -> bool {
        false
    }

    async fn plan(&self, entry: &CompiledEntry) -> crate::run::plugin::PlanItem {
        let mut problems = Vec::new();
        let mut secrets = std::collections::BTreeMap::new();
        for reference in entry.secret_refs.values() {
            let ok = self.secrets.exists(reference);
            if !ok {
                problems.push(format!("secret `{reference}` does not resolve (env {} or file)", crate::secrets::env_var_name(reference)));
            }
            secrets.insert(reference.clone(), ok);
        }
        if let (Err(e), true) = (&self.destination, self.catalog_exists()) {
            problems.push(e.message.clone());
        }
        let resume_from = if self.full_refresh || !self.catalog_exists() {
            None
        } else {
            match self.stored_state(entry).await {
                Ok(v) if !v.is_null() => Some(v),
                Ok(_) => None,
                Err(e) => {
                    problems.push(e.message);
                    None
                }
            }
        };
        crate::run::plugin::PlanItem {
            name: entry.name.clone(),
            kind: "dlt".into(),
            source: entry.source.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            destination: entry.destination.clone(),
            write_disposition: entry.write_disposition.as_str().into(),
            secrets,
            resume_from,
            problems,
        }
    }

    async fn run(&self, entry: &CompiledEntry, progress: Arc<Progress>) -> Result<EntryOutcome, IngestionError> {
        self.run_entry(entry, progress).await
    }
}

impl Engine {
    /// False when the embedded catalog has never been created (so planning must not create it).
    pub fn catalog_exists(&self) -> bool {
        let c = &self.loaded.artifact.plugins.catalog;
        match c.kind {
            crate::config::manifest::CatalogType::Rest => true,
            crate::config::manifest::CatalogType::Sql => {
                let path = c.uri.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p).to_string()).unwrap_or_else(|| c.uri.clone());
                self.loaded.manifest_path(&path).exists()
            }
        }
    }
}
