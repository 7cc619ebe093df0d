//! Running entries: selection, dispatch to a plugin, retry, progress, signals, the report and
//! the exit code.

pub mod plugin;
pub mod progress;
pub mod report;
pub mod retry;
pub mod select;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use self::plugin::IngestionPlugin;
use self::report::{secs, EntryResult, RunReport};
use crate::artifact::CompiledEntry;
use crate::cli::{GlobalArgs, OutputFormat, RunArgs, StateArgs};
use crate::commands::{print_stdout, Loaded};
use crate::config::manifest::IngestionType;
use crate::airbyte::AirbytePlugin;
use crate::engine::Engine;
use crate::observe::Observer;
use crate::error::{code, exit, exit_code_for, Category, IngestionError};
use crate::secrets::SecretStore;
use crate::sources::Progress;

/// The plugins of a run, by entry type, and the run's observer.
struct Plugins {
    dlt: Arc<Engine>,
    airbyte: Option<Arc<AirbytePlugin>>,
    observer: Observer,
}

impl Plugins {
    fn for_entry(&self, entry: &CompiledEntry) -> Result<Arc<dyn IngestionPlugin>, IngestionError> {
        match entry.kind {
            IngestionType::Dlt => Ok(self.dlt.clone()),
            IngestionType::Airbyte => self.airbyte.clone().map(|a| a as Arc<dyn IngestionPlugin>).ok_or_else(|| {
                IngestionError::configuration(code::DESTINATION_CONFIG_ERROR, "airbyte", "the airbyte plugin is not configured: add a `type: airbyte` block under plugins.ingestion in the manifest")
            }),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::INTERNAL
    })
}

/// `floe ingest run`.
pub fn run_command(loaded: Loaded, args: &RunArgs, global: &GlobalArgs) -> u8 {
    let selected: Vec<CompiledEntry> = match select::select(&loaded.artifact.ingestion, &args.select) {
        Ok(s) => s.into_iter().cloned().collect(),
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::CONFIGURATION;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let secrets = SecretStore::new(Some(&args.secrets_dir.secrets_dir));
    let run_id = uuid::Uuid::now_v7().to_string();
    let loaded = Arc::new(loaded);
    let show_progress = std::io::stderr().is_terminal() && !global.quiet && args.output == OutputFormat::Text;

    rt.block_on(async move {
        let started = Instant::now();
        let plugins = Plugins {
            dlt: Arc::new(Engine::new(loaded.clone(), secrets.clone(), args.full_refresh, run_id.clone(), args.dry_run).await),
            airbyte: airbyte_plugin(&loaded, &secrets),
            observer: Observer::new(&loaded, &secrets, &run_id),
        };
        if args.dry_run {
            return dry_run(&plugins, &selected, args.output, &run_id).await;
        }
        let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).min(4)).max(1);
        let bars = progress::Bars::new(show_progress);
        let done = std::sync::Mutex::new(BTreeMap::new());
        let run = run_entries(&plugins, &selected, jobs, &bars, &done);
        let signal = tokio::select! {
            () = run => None,
            sig = signals() => Some(sig),
        };
        bars.clear();
        let mut done = done.into_inner().unwrap_or_default();
        if let Some(sig) = signal {
            // A second Ctrl-C means "now": skip the clean-up.
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(exit::SIGINT));
                }
            });
            if let Some(a) = &plugins.airbyte {
                a.cancel_all().await;
            }
            tracing::warn!("interrupted by {}: running loads were aborted before commit", sig.name());
            for (i, e) in selected.iter().enumerate() {
                if let std::collections::btree_map::Entry::Vacant(slot) = done.entry(i) {
                    let result = interrupted_result(e, sig);
                    plugins.observer.entry_aborted(e, &result).await;
                    slot.insert(result);
                }
            }
        }
        plugins.observer.finish().await;
        let mut results: Vec<EntryResult> = done.into_values().collect();
        let failures: Vec<Category> = results.iter().filter_map(|r| r.error.as_ref().map(|e| e.category)).collect();
        let exit_code = match signal {
            Some(sig) => sig.exit_code(),
            None => exit_code_for(failures),
        };
        let mut redactor = plugins.dlt.redactor.lock().map(|r| r.clone()).unwrap_or_default();
        if let Some(a) = &plugins.airbyte {
            redactor.merge(&a.redactor());
        }
        for r in &mut results {
            if let Some(e) = &mut r.error {
                e.message = redactor.redact(&e.message);
            }
        }
        let report = RunReport {
            run_id,
            floe_version: env!("CARGO_PKG_VERSION").to_string(),
            success: exit_code == exit::SUCCESS,
            exit_code,
            duration_seconds: secs(started.elapsed()),
            interrupted: signal.is_some(),
            results,
        };
        let text = match args.output {
            OutputFormat::Json => format!("{}\n", serde_json::to_string(&report).unwrap_or_default()),
            OutputFormat::Text if global.quiet => String::new(),
            OutputFormat::Text => report.table(),
        };
        match print_stdout(&text) {
            Ok(()) | Err(0) => exit_code,
            Err(code) => code,
        }
    })
}

/// Run the selected entries, `jobs` at a time, each with its retries. Finished results land
/// in `done` (by spec position) as they complete, so an interrupted run still reports them.
async fn run_entries(plugins: &Plugins, entries: &[CompiledEntry], jobs: usize, bars: &progress::Bars, done: &std::sync::Mutex<BTreeMap<usize, EntryResult>>) {
    futures::stream::iter(entries.iter().enumerate())
        .map(|(i, entry)| async move { (i, run_with_retries(plugins, entry, bars).await) })
        .buffer_unordered(jobs)
        .for_each(|(i, r)| async move {
            if let Ok(mut d) = done.lock() {
                d.insert(i, r);
            }
        })
        .await;
}

/// The Airbyte plugin of the artifact, when one is configured.
fn airbyte_plugin(loaded: &Loaded, secrets: &SecretStore) -> Option<Arc<AirbytePlugin>> {
    loaded.artifact.plugins.airbyte.as_ref().map(|settings| Arc::new(AirbytePlugin::new(settings, secrets.clone())))
}

async fn run_with_retries(plugins: &Plugins, entry: &CompiledEntry, bars: &progress::Bars) -> EntryResult {
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let bar = bars.add(&entry.name, progress.clone());
    plugins.observer.entry_started(entry).await;
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let attempt = match plugins.for_entry(entry) {
            Ok(p) => p.run(entry, progress.clone()).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(o) => break Ok(o),
            Err(e) if retry::should_retry(&entry.retry, &e, attempts) => {
                let wait = retry::delay(&entry.retry, &e, attempts, retry::jitter());
                tracing::warn!(entry = %entry.name, attempt = attempts, "{e}; retrying in {:.1}s", wait.as_secs_f64());
                bar.set_message(format!("retry {} in {:.0}s: {}", attempts + 1, wait.as_secs_f64(), e.code));
                plugins.observer.attempt_retried(entry, &e, wait.as_secs_f64()).await;
                tokio::time::sleep(wait).await;
            }
            Err(e) => break Err(e),
        }
    };
    bar.finish();
    let mut result = EntryResult {
        name: entry.name.clone(),
        kind: entry.kind.as_str().into(),
        destination: entry.destination.clone(),
        success: false,
        rows_loaded: 0,
        tables_created: Vec::new(),
        duration_seconds: secs(started.elapsed()),
        attempts,
        error: None,
        write_disposition: entry.write_disposition.as_str().into(),
        rows_rejected: 0,
        snapshot_id: None,
        schema: Vec::new(),
        job: None,
    };
    match outcome {
        Ok(o) => {
            result.schema = o.schema.clone();
            result.rows_loaded = o.rows_loaded;
            result.rows_rejected = o.rows_rejected;
            result.snapshot_id = o.snapshot_id;
            if o.table_created {
                result.tables_created.push(entry.destination.clone());
            }
            if o.rows_rejected > 0 || !o.rejected_samples.is_empty() {
                let source = entry.source.as_ref().map_or("airbyte", |s| s.name.as_str());
                let message = format!("{} record(s) rejected, {} loaded", o.rows_rejected, o.rows_loaded);
                result.error = Some(
                    IngestionError::new(Category::Partial, code::PARTIAL_LOAD, source, message)
                        .with_failed_records(o.rows_rejected)
                        .with_detail("samples", o.rejected_samples),
                );
            } else {
                result.success = true;
            }
        }
        Err(e) => {
            // A sync that failed after committing some rows reports them.
            if let Some(rows) = e.details.get("rows_committed").and_then(serde_json::Value::as_u64) {
                result.rows_loaded = rows;
            }
            result.error = Some(e);
        }
    }
    if let (IngestionType::Airbyte, Some(a)) = (entry.kind, &plugins.airbyte) {
        result.job = a.job_details(&entry.name).map(|d| serde_json::Value::Object(d.into_iter().collect()));
    }
    plugins.observer.entry_finished(entry, &result).await;
    result
}

async fn dry_run(plugins: &Plugins, entries: &[CompiledEntry], output: OutputFormat, run_id: &str) -> u8 {
    let mut items = Vec::new();
    for e in entries {
        match plugins.for_entry(e) {
            Ok(p) => items.push(p.plan(e).await),
            Err(err) => items.push(plugin::PlanItem {
                name: e.name.clone(),
                kind: e.kind.as_str().into(),
                source: String::new(),
                destination: e.destination.clone(),
                write_disposition: e.write_disposition.as_str().into(),
                secrets: BTreeMap::new(),
                resume_from: None,
                problems: vec![err.message],
            }),
        }
    }
    let ok = items.iter().all(|i| i.problems.is_empty());
    let code = if ok { exit::SUCCESS } else { exit::CONFIGURATION };
    let text = match output {
        OutputFormat::Json => format!("{}\n", serde_json::json!({"run_id": run_id, "dry_run": true, "success": ok, "exit_code": code, "plan": items})),
        OutputFormat::Text => {
            let rows: Vec<[String; 6]> = items
                .iter()
                .map(|i| {
                    let secrets = if i.secrets.is_empty() {
                        "-".to_string()
                    } else {
                        i.secrets.iter().map(|(k, v)| format!("{k}:{}", if *v { "yes" } else { "MISSING" })).collect::<Vec<_>>().join(" ")
                    };
                    let resume = i.resume_from.as_ref().and_then(|s| s.get("cursor")).filter(|c| !c.is_null()).map_or("start".to_string(), |c| c.to_string());
                    [i.name.clone(), i.kind.clone(), i.source.clone(), i.destination.clone(), secrets, resume]
                })
                .collect();
            let mut out = crate::commands::ingest::table(&["ENTRY", "TYPE", "SOURCE", "DESTINATION", "SECRETS", "RESUME_FROM"], &rows);
            for i in &items {
                for p in &i.problems {
                    out.push_str(&format!("{}: {p}\n", i.name));
                }
            }
            out.push_str("dry run: nothing was read or written\n");
            out
        }
    };
    match print_stdout(&text) {
        Ok(()) | Err(0) => code,
        Err(c) => c,
    }
}

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Int,
    Term,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Signal::Int => exit::SIGINT,
            Signal::Term => exit::SIGTERM,
        }
    }
}

async fn signals() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Signal::Int,
            _ = term.recv() => Signal::Term,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Int
    }
}

fn interrupted_result(e: &CompiledEntry, sig: Signal) -> EntryResult {
    EntryResult {
        name: e.name.clone(),
        kind: e.kind.as_str().into(),
        destination: e.destination.clone(),
        success: false,
        rows_loaded: 0,
        tables_created: Vec::new(),
        duration_seconds: 0.0,
        attempts: 0,
        error: Some(IngestionError::transient(code::INTERRUPTED, "floe", format!("interrupted by {}: nothing was committed for this entry in the interrupted attempt", sig.name()))),
        write_disposition: e.write_disposition.as_str().into(),
        rows_rejected: 0,
        snapshot_id: None,
        schema: Vec::new(),
        job: None,
    }
}

/// `floe ingest state [NAME]`.
pub fn state_command(loaded: Loaded, args: &StateArgs) -> u8 {
    let entries: Vec<CompiledEntry> = match &args.name {
        Some(n) => match loaded.artifact.entry(n) {
            Some(e) => vec![e.clone()],
            None => {
                eprintln!("error: no entry named `{n}`");
                return exit::CONFIGURATION;
            }
        },
        None => loaded.artifact.ingestion.iter().filter(|e| e.kind == IngestionType::Dlt).cloned().collect(),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let secrets = SecretStore::new(Some(&args.secrets_dir.secrets_dir));
    rt.block_on(async move {
        let engine = Engine::new(Arc::new(loaded), secrets, false, String::new(), true).await;
        let mut states = serde_json::Map::new();
        for e in &entries {
            let state = if engine.catalog_exists() {
                match engine.stored_state(e).await {
                    Ok(s) => s,
                    Err(err) => {
                        eprintln!("error: {}: {err}", e.name);
                        return err.category.exit_code();
                    }
                }
            } else {
                serde_json::Value::Null
            };
            states.insert(e.name.clone(), state);
        }
        let text = match args.output {
            OutputFormat::Json => format!("{}\n", serde_json::Value::Object(states)),
            OutputFormat::Text => {
                let rows: Vec<[String; 3]> = states
                    .iter()
                    .map(|(name, s)| {
                        let cursor = s.get("cursor").filter(|c| !c.is_null()).map_or("-".into(), |c| c.to_string());
                        let source = s.get("source").filter(|c| !c.is_null()).map_or("-".into(), |c| {
                            let t = c.to_string();
                            if t.len() > 80 { format!("{}…", &t[..t.char_indices().nth(80).map_or(t.len(), |(i, _)| i)]) } else { t }
                        });
                        [name.clone(), cursor, source]
                    })
                    .collect();
                crate::commands::ingest::table(&["ENTRY", "CURSOR", "SOURCE_STATE"], &rows)
            }
        };
        match print_stdout(&text) {
            Ok(()) | Err(0) => exit::SUCCESS,
            Err(c) => c,
        }
    })
}
