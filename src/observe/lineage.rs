//! OpenLineage: the RunEvents floe emits for each entry, how datasets are named, and the
//! transports (`http`, `file`, `console`) that carry them.
//!
//! Events follow the OpenLineage spec 2-0-2 (`fixtures/openlineage/OpenLineage.json`); every
//! facet carries `_producer` and a `_schemaURL` whose schema is vendored under
//! `fixtures/openlineage/` (the official ones, and floe's own `ingestionError`).
//!
//! Naming (OpenLineage naming conventions, `website/docs/spec/naming.md`):
//! - job: `ingestion.<entry>` in the configured namespace (default `floe`); its parent job is
//!   `ingestion`, whose run id is floe's run id (the report's `run_id`, `_floe_load_id`);
//! - output: the Iceberg table, named `<namespace>.<table>` within the catalog's identity, as
//!   Spark's OpenLineage integration names the `TABLE` symlink of an Iceberg table: the REST
//!   catalog's URI (`http://host:8181`), or, for the SQL catalog, the warehouse location
//!   (`file:///abs/warehouse`, `s3://bucket/prefix`), since a file-based catalog is identified
//!   by where its tables live; the `catalog` facet tells which catalog it is;
//! - inputs, where the source has a standard name: PostgreSQL `postgres://host:port` +
//!   `db.schema.table`, MySQL `mysql://host:port` + `db.table`, S3 `s3://bucket` + key prefix,
//!   a local folder `file` + absolute path. The database URL is parsed without its password.
//!
//! Delivery never blocks the run: events go to a queue drained by one background task (so they
//! stay in order), and [`Emitter::close`] waits for it only until the given deadline.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::artifact::CompiledEntry;
use crate::commands::Loaded;
use crate::config::manifest::CatalogType;
use crate::error::{Category, IngestionError};
use crate::run::report::EntryResult;
use crate::secrets::{redact_url_passwords, Redactor, Secret, SecretStore};

/// The `producer` of every event and facet.
pub const PRODUCER: &str = concat!("https://github.com/floe-dev/floe/tree/", env!("CARGO_PKG_VERSION"));
/// `schemaURL` of a RunEvent of the spec version floe implements.
pub const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

const FACETS: &str = "https://openlineage.io/spec/facets/";
const ERROR_MESSAGE: &str = "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const SCHEMA: &str = "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const OUTPUT_STATISTICS: &str = "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const DATASET_VERSION: &str = "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
const CATALOG: &str = "1-1-0/CatalogDatasetFacet.json#/$defs/CatalogDatasetFacet";
const STORAGE: &str = "1-0-1/StorageDatasetFacet.json#/$defs/StorageDatasetFacet";
const PROCESSING_ENGINE: &str = "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const JOB_TYPE: &str = "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const PARENT: &str = "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
/// floe's own facet. The version in the path is the release that last changed its schema.
pub const INGESTION_ERROR_SCHEMA: &str =
    "https://raw.githubusercontent.com/floe-dev/floe/0.1.0/fixtures/openlineage/floe/IngestionErrorRunFacet.json#/$defs/IngestionErrorRunFacet";

/// Default job namespace.
pub const DEFAULT_NAMESPACE: &str = "floe";
/// Name of the parent job of every entry's job.
const PARENT_JOB: &str = "ingestion";
/// Default HTTP timeout per request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of one HTTP POST answered with 5xx.
const HTTP_ATTEMPTS: u32 = 3;
/// After this many failed deliveries in a row, the rest of the run's events are dropped.
const GIVE_UP_AFTER: u32 = 3;

/// A dataset's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
}

/// What every event of a run shares.
pub struct Context {
    /// Job namespace.
    pub namespace: String,
    /// floe's run id: the parent run of every entry's run.
    pub parent_run_id: String,
    /// The catalog's identity (the output datasets' namespace).
    pub output_namespace: String,
    /// The `catalog` dataset facet of output datasets.
    pub catalog_facet: Value,
}

impl Context {
    pub fn new(loaded: &Loaded, namespace: String, parent_run_id: &str) -> Context {
        let (output_namespace, catalog_facet) = catalog_identity(loaded);
        Context { namespace, parent_run_id: parent_run_id.to_string(), output_namespace, catalog_facet }
    }
}

/// One entry's run, as lineage sees it.
pub struct RunInfo<'a> {
    pub run_id: &'a str,
    pub entry: &'a CompiledEntry,
    pub input: Option<&'a Dataset>,
}

fn facet(schema_url: &str, fields: Value) -> Value {
    let mut m = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("_producer".into(), PRODUCER.into());
    let url = if schema_url.starts_with("https://") { schema_url.to_string() } else { format!("{FACETS}{schema_url}") };
    m.insert("_schemaURL".into(), url.into());
    Value::Object(m)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn event(ctx: &Context, event_type: &str, run: &RunInfo<'_>, extra_run_facets: Map<String, Value>, outputs: Vec<Value>) -> Value {
    let mut run_facets = Map::new();
    run_facets.insert("processing_engine".into(), facet(PROCESSING_ENGINE, json!({"version": env!("CARGO_PKG_VERSION"), "name": "floe", "openlineageAdapterVersion": env!("CARGO_PKG_VERSION")})));
    run_facets.insert(
        "parent".into(),
        facet(PARENT, json!({"run": {"runId": ctx.parent_run_id}, "job": {"namespace": ctx.namespace, "name": PARENT_JOB}})),
    );
    run_facets.extend(extra_run_facets);
    let inputs: Vec<Value> = run.input.map(|d| json!({"namespace": d.namespace, "name": d.name, "facets": {}})).into_iter().collect();
    json!({
        "eventType": event_type,
        "eventTime": now_rfc3339(),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": {"runId": run.run_id, "facets": run_facets},
        "job": {
            "namespace": ctx.namespace,
            "name": job_name(run.entry),
            "facets": {"jobType": facet(JOB_TYPE, json!({"processingType": "BATCH", "integration": "FLOE", "jobType": "JOB"}))},
        },
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// `ingestion.<entry>`.
pub fn job_name(entry: &CompiledEntry) -> String {
    format!("ingestion.{}", entry.name)
}

fn output(ctx: &Context, entry: &CompiledEntry, mut facets: Map<String, Value>, output_facets: Map<String, Value>) -> Value {
    facets.insert("catalog".into(), ctx.catalog_facet.clone());
    facets.insert("storage".into(), facet(STORAGE, json!({"storageLayer": "iceberg", "fileFormat": "parquet"})));
    let mut o = json!({"namespace": ctx.output_namespace, "name": entry.destination, "facets": facets});
    if !output_facets.is_empty()
        && let Some(m) = o.as_object_mut()
    {
        m.insert("outputFacets".into(), Value::Object(output_facets));
    }
    o
}

/// START.
pub fn start_event(ctx: &Context, run: &RunInfo<'_>) -> Value {
    let outputs = vec![output(ctx, run.entry, Map::new(), Map::new())];
    event(ctx, "START", run, Map::new(), outputs)
}

/// RUNNING: an attempt failed and will be retried after `delay_seconds`.
pub fn retry_event(ctx: &Context, run: &RunInfo<'_>, error: &IngestionError, attempt: u32, delay_seconds: f64) -> Value {
    let mut facets = Map::new();
    let delay = if delay_seconds.is_finite() && delay_seconds > 0.0 { delay_seconds.ceil() as u64 } else { 0 };
    facets.insert("ingestionError".into(), ingestion_error(error, attempt, Some(delay)));
    let outputs = vec![output(ctx, run.entry, Map::new(), Map::new())];
    event(ctx, "RUNNING", run, facets, outputs)
}

/// COMPLETE (loaded, possibly with rejected records) or FAIL.
pub fn end_event(ctx: &Context, run: &RunInfo<'_>, result: &EntryResult, redactor: &Redactor) -> Value {
    let failed = result.error.as_ref().is_some_and(|e| e.category != Category::Partial);
    let mut run_facets = Map::new();
    if let Some(e) = &result.error {
        if failed {
            run_facets.insert(
                "errorMessage".into(),
                facet(ERROR_MESSAGE, json!({"message": redactor.redact(&format!("{} {}: {}", e.category, e.code, e.message)), "programmingLanguage": "rust"})),
            );
        }
        run_facets.insert("ingestionError".into(), ingestion_error(e, result.attempts.max(1), e.retry_after_seconds));
    }
    let mut facets = Map::new();
    if !result.schema.is_empty() {
        let fields: Vec<Value> = result.schema.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect();
        facets.insert("schema".into(), facet(SCHEMA, json!({"fields": fields})));
    }
    if let Some(id) = result.snapshot_id {
        facets.insert("version".into(), facet(DATASET_VERSION, json!({"datasetVersion": id.to_string()})));
    }
    let mut output_facets = Map::new();
    if !failed || result.rows_loaded > 0 {
        output_facets.insert("outputStatistics".into(), facet(OUTPUT_STATISTICS, json!({"rowCount": result.rows_loaded})));
    }
    let outputs = vec![output(ctx, run.entry, facets, output_facets)];
    event(ctx, if failed { "FAIL" } else { "COMPLETE" }, run, run_facets, outputs)
}

/// ABORT: interrupted by a signal; nothing of the interrupted attempt was committed.
pub fn abort_event(ctx: &Context, run: &RunInfo<'_>) -> Value {
    let outputs = vec![output(ctx, run.entry, Map::new(), Map::new())];
    event(ctx, "ABORT", run, Map::new(), outputs)
}

fn ingestion_error(e: &IngestionError, attempt: u32, retry_after: Option<u64>) -> Value {
    facet(
        INGESTION_ERROR_SCHEMA,
        json!({
            "category": e.category.as_str(),
            "code": e.code,
            "retryAfterSeconds": retry_after,
            "retryable": e.retryable,
            "source": e.source,
            "attempt": attempt,
            "failedRecords": e.failed_records,
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// naming

/// `scheme://host[:port][/path]` without user, password, query or fragment; None if not a URL.
fn clean_url(raw: &str) -> Option<String> {
    let mut u = reqwest12::Url::parse(raw).ok()?;
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    Some(u.as_str().trim_end_matches('/').to_string())
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The output namespace and the `catalog` facet of the artifact's catalog.
fn catalog_identity(loaded: &Loaded) -> (String, Value) {
    let c = &loaded.artifact.plugins.catalog;
    match c.kind {
        CatalogType::Rest => {
            let uri = clean_url(&c.uri).unwrap_or_else(|| redact_url_passwords(c.uri.trim_end_matches('/')));
            let f = facet(
                CATALOG,
                json!({"framework": "iceberg", "type": "rest", "name": c.name, "metadataUri": uri, "source": "floe", "catalogProperties": {"warehouse": c.warehouse}}),
            );
            (uri, f)
        }
        CatalogType::Sql => {
            let warehouse = if c.warehouse.contains("://") {
                clean_url(&c.warehouse).unwrap_or_else(|| c.warehouse.trim_end_matches('/').to_string())
            } else {
                let local = c.warehouse.strip_prefix("file:").unwrap_or(&c.warehouse);
                format!("file://{}", absolute(&loaded.manifest_path(local)).display()).trim_end_matches('/').to_string()
            };
            let metadata = if c.uri.starts_with("sqlite:") { c.uri.clone() } else { format!("sqlite://{}", absolute(&loaded.manifest_path(&c.uri)).display()) };
            let f = facet(
                CATALOG,
                json!({"framework": "iceberg", "type": "sql", "name": c.name, "metadataUri": metadata, "warehouseUri": warehouse, "source": "floe"}),
            );
            (warehouse, f)
        }
    }
}

/// The entry's source as an OpenLineage dataset, when it has a standard name. Secrets in the
/// source settings are resolved only to read host, port and database; the password is never
/// read out of the URL.
pub fn input_dataset(loaded: &Loaded, secrets: &SecretStore, entry: &CompiledEntry, redactor: &mut Redactor) -> Option<Dataset> {
    let source = entry.source.as_ref()?;
    let config = match crate::secrets::substitute(&source.config, &entry.secret_refs, secrets) {
        Ok((config, used)) => {
            for s in &used {
                redactor.add(s);
            }
            config
        }
        Err(_) => return None,
    };
    match source.name.as_str() {
        "sql_database" => {
            let table = config.get("table").and_then(Value::as_str).map(str::to_string).or_else(|| source.resource.clone())?;
            let schema = config.get("schema").and_then(Value::as_str);
            sql_dataset(config.get("credentials").and_then(Value::as_str)?, schema, &table)
        }
        "filesystem" => {
            let bucket_url = config.get("bucket_url").and_then(Value::as_str)?;
            filesystem_dataset(loaded, bucket_url)
        }
        _ => None,
    }
}

/// PostgreSQL `postgres://host:port` + `db.schema.table`; MySQL `mysql://host:port` + `db.table`.
pub fn sql_dataset(credentials: &str, schema: Option<&str>, table: &str) -> Option<Dataset> {
    let u = reqwest12::Url::parse(credentials.trim()).ok()?;
    let host = u.host_str().filter(|h| !h.is_empty())?;
    let db = percent_decode(u.path().trim_start_matches('/'));
    match u.scheme().to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => {
            let db = if db.is_empty() { "postgres".to_string() } else { db };
            let port = u.port().unwrap_or(5432);
            Some(Dataset { namespace: format!("postgres://{host}:{port}"), name: format!("{db}.{}.{table}", schema.unwrap_or("public")) })
        }
        "mysql" | "mariadb" => {
            let db = schema.map(str::to_string).filter(|s| !s.is_empty()).unwrap_or(db);
            if db.is_empty() {
                return None;
            }
            let port = u.port().unwrap_or(3306);
            Some(Dataset { namespace: format!("mysql://{host}:{port}"), name: format!("{db}.{table}") })
        }
        _ => None,
    }
}

/// S3 `s3://bucket` + prefix; a local folder `file` + absolute path.
fn filesystem_dataset(loaded: &Loaded, bucket_url: &str) -> Option<Dataset> {
    if let Some(rest) = bucket_url.strip_prefix("s3://").or_else(|| bucket_url.strip_prefix("s3a://")) {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        let key = key.trim_matches('/');
        return Some(Dataset { namespace: format!("s3://{bucket}"), name: if key.is_empty() { "/".into() } else { key.to_string() } });
    }
    if bucket_url.contains("://") && !bucket_url.starts_with("file://") {
        return None;
    }
    let local = bucket_url.strip_prefix("file://").unwrap_or(bucket_url);
    let path = absolute(&loaded.spec_path(local));
    Some(Dataset { namespace: "file".into(), name: path.display().to_string() })
}

use crate::sources::sql_database::percent_decode;

// ---------------------------------------------------------------------------------------------
// transports

/// Where events go.
pub enum Transport {
    /// POST to `url` (`<endpoint>/api/v1/lineage`).
    Http { url: String, api_key: Option<Secret>, timeout: Duration },
    /// Append one JSON line per event.
    File(PathBuf),
    /// One JSON line per event on stderr.
    Console,
}

impl Transport {
    /// `http` with its URL, bearer key and timeout.
    pub fn http(endpoint: &str, api_key: Option<Secret>, timeout_seconds: Option<f64>) -> Transport {
        let timeout = timeout_seconds.filter(|t| t.is_finite() && *t > 0.0).map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs_f64(t.min(3600.0)));
        Transport::Http { url: format!("{}/api/v1/lineage", endpoint.trim_end_matches('/')), api_key, timeout }
    }

    fn describe(&self) -> String {
        match self {
            Transport::Http { url, .. } => redact_url_passwords(url),
            Transport::File(p) => p.display().to_string(),
            Transport::Console => "stderr".into(),
        }
    }
}

/// The queue of events and the task that delivers them.
pub struct Emitter {
    tx: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    pending: Arc<AtomicUsize>,
    target: String,
}

impl Emitter {
    /// Start the delivery task; None (with a warning) outside a Tokio runtime or when the
    /// HTTP client cannot be built.
    pub fn start(transport: Transport) -> Option<Emitter> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| tracing::warn!("lineage: no async runtime; lineage events are off")).ok()?;
        let target = transport.describe();
        let sender = Sender::new(transport)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let worker = handle.spawn(deliver(rx, sender, pending.clone()));
        Some(Emitter { tx: Mutex::new(Some(tx)), worker: Mutex::new(Some(worker)), pending, target })
    }

    /// Queue an event (never waits).
    pub fn emit(&self, event: Value) {
        let guard = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = guard.as_ref() {
            self.pending.fetch_add(1, Ordering::SeqCst);
            if tx.send(event).is_err() {
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Deliver what is queued, waiting at most until `deadline`; what is left is dropped.
    pub async fn close(&self, deadline: tokio::time::Instant) {
        drop(self.tx.lock().unwrap_or_else(PoisonError::into_inner).take());
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut worker) = worker else { return };
        if tokio::time::timeout_at(deadline, &mut worker).await.is_err() {
            worker.abort();
            let left = self.pending.load(Ordering::SeqCst);
            tracing::warn!("lineage: {left} event(s) not delivered to {} before the run ended; dropped", self.target);
        }
    }
}

enum Sender {
    Http { client: reqwest12::Client, url: String, api_key: Option<Secret> },
    File(PathBuf),
    Console,
}

impl Sender {
    fn new(transport: Transport) -> Option<Sender> {
        Some(match transport {
            Transport::Http { url, api_key, timeout } => {
                let client = reqwest12::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .user_agent(concat!("floe/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| tracing::warn!("lineage: cannot build the HTTP client ({e}); lineage events are off"))
                    .ok()?;
                Sender::Http { client, url, api_key }
            }
            Transport::File(p) => Sender::File(p),
            Transport::Console => Sender::Console,
        })
    }

    async fn send(&self, body: &[u8]) -> Result<(), String> {
        match self {
            Sender::Http { client, url, api_key } => post(client, url, api_key.as_ref(), body).await,
            Sender::File(path) => {
                let mut line = body.to_vec();
                line.push(b'\n');
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                f.write_all(&line).map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            Sender::Console => {
                let mut line = body.to_vec();
                line.push(b'\n');
                std::io::stderr().lock().write_all(&line).map_err(|e| format!("cannot write to stderr: {e}"))
            }
        }
    }
}

async fn post(client: &reqwest12::Client, url: &str, api_key: Option<&Secret>, body: &[u8]) -> Result<(), String> {
    let shown = redact_url_passwords(url);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = client.post(url).header("content-type", "application/json").body(body.to_vec());
        if let Some(k) = api_key {
            req = req.bearer_auth(k.expose());
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() && attempt < HTTP_ATTEMPTS => {
                tracing::debug!("lineage: {shown} answered {}; retrying", r.status());
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Ok(r) => return Err(format!("{shown} answered HTTP {}", r.status())),
            Err(e) if e.is_timeout() => return Err(format!("{shown}: no answer in time")),
            Err(e) => return Err(format!("{shown}: {}", redact_url_passwords(&e.without_url().to_string()))),
        }
    }
}

async fn deliver(mut rx: mpsc::UnboundedReceiver<Value>, sender: Sender, pending: Arc<AtomicUsize>) {
    let mut failures = 0u32;
    let mut dropped = 0usize;
    while let Some(event) = rx.recv().await {
        if failures < GIVE_UP_AFTER {
            match serde_json::to_vec(&event) {
                Ok(body) => match sender.send(&body).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!("lineage: event not delivered: {e}");
                        if failures == GIVE_UP_AFTER {
                            tracing::warn!("lineage: {GIVE_UP_AFTER} deliveries failed in a row; no more lineage events this run");
                        }
                    }
                },
                Err(e) => tracing::warn!("lineage: cannot serialise an event: {e}"),
            }
        } else {
            dropped += 1;
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
    if dropped > 0 {
        tracing::warn!("lineage: {dropped} event(s) dropped after repeated delivery failures");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_follow_openlineage() {
        let d = sql_dataset("postgresql://bob:s3cret@db.example:6543/shop?sslmode=require", Some("sales"), "orders").expect("pg");
        assert_eq!(d, Dataset { namespace: "postgres://db.example:6543".into(), name: "shop.sales.orders".into() });
        let d = sql_dataset("postgres://u@127.0.0.1/app", None, "t").expect("pg");
        assert_eq!((d.namespace.as_str(), d.name.as_str()), ("postgres://127.0.0.1:5432", "app.public.t"));
        let d = sql_dataset("mysql://root:pw@127.0.0.1:33306/floe_test", None, "t").expect("mysql");
        assert_eq!((d.namespace.as_str(), d.name.as_str()), ("mysql://127.0.0.1:33306", "floe_test.t"));
        assert!(sql_dataset("sqlite:///tmp/x.db", None, "t").is_none());
        assert!(sql_dataset("not a url", None, "t").is_none());
    }

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(clean_url("http://user:pw@cat:8181/?x=1").as_deref(), Some("http://cat:8181"));
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }
}
