//! The `filesystem` source: CSV, JSON lines and Parquet files from a local folder or an
//! `s3://` prefix, each file loaded once.

pub mod config;
pub mod chunks;
pub mod decode;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use self::config::{FileFormat, FilesystemConfig};
use self::decode::{CsvOptions, DecodeError, ParquetInput};
use self::store::{FileInfo, Store};
use super::{BatchSink, Source, SourceContext, SourceKind, SourceOutcome};
use crate::config::diagnostics::FileDiagnostics;
use crate::config::schema_check::check;
use crate::error::{code, IngestionError};

pub static KIND: SourceKind = SourceKind {
    name: "filesystem",
    natural_key: None,
    check_config,
    missing_config: |p, d| super::missing_config_keys("bucket_url", "{bucket_url: data/, file_glob: \"*.jsonl\"}", p, d),
    check_resource: super::any_resource,
    resource_key: super::no_resource_key,
    open,
};

fn check_config(v: &Value, p: &str, d: &mut FileDiagnostics<'_>) -> bool {
    if !check::<config::FilesystemConfig>(v, p, d) {
        return false;
    }
    if let Some(delim) = v.get("delimiter").and_then(Value::as_str) {
        if delim.chars().count() != 1 {
            d.error(&format!("{p}.delimiter"), format!("delimiter \"{delim}\" must be one character"));
            return false;
        }
    }
    if let Some(glob) = v.get("file_glob").and_then(Value::as_str) {
        if let Some(why) = store::glob_outside(glob) {
            d.error(&format!("{p}.file_glob"), format!("file_glob \"{glob}\" reaches outside bucket_url: {why}"))
                .expected("a pattern relative to bucket_url, such as `*.csv` or `2024/**/*.jsonl`")
                .hint("to read another folder, point bucket_url at it");
            return false;
        }
    }
    true
}

fn open(ctx: SourceContext) -> Result<Box<dyn Source>, IngestionError> {
    let config: FilesystemConfig = serde_json::from_value(ctx.config.clone())
        .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, "filesystem", format!("entry {}: dlt.config: {e}", ctx.entry)))?;
    let store = Store::open(&config.bucket_url, &ctx.base_dir, ctx.s3.as_ref())?;
    Ok(Box::new(Filesystem { config, store: Arc::new(store), ctx }))
}

/// The files already loaded: path → modification time (ms). Stored with the data, so a file
/// is loaded once even across crashes; a file whose modification time changes loads again.
type Loaded = BTreeMap<String, i64>;

struct Filesystem {
    config: FilesystemConfig,
    store: Arc<Store>,
    ctx: SourceContext,
}

fn format_of(config: &FilesystemConfig, path: &str) -> Option<FileFormat> {
    config.format.or_else(|| {
        let lower = path.to_ascii_lowercase();
        let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
        if lower.ends_with(".csv") || lower.ends_with(".tsv") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
            Some(FileFormat::Jsonl)
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Some(FileFormat::Parquet)
        } else {
            None
        }
    })
}

#[async_trait::async_trait]
impl Source for Filesystem {
    async fn run(self: Box<Self>, sink: BatchSink) -> Result<SourceOutcome, IngestionError> {
        let mut loaded: Loaded = self
            .ctx
            .source_state
            .as_ref()
            .and_then(|s| s.get("files"))
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        let glob = self.config.file_glob.clone().unwrap_or_else(|| "*".into());
        let files = self.store.list(&glob).await?;
        let todo: Vec<FileInfo> = files.into_iter().filter(|f| loaded.get(&f.path) != Some(&f.mtime_ms)).collect();
        tracing::debug!(entry = %self.ctx.entry, files = todo.len(), "filesystem: files to load");

        let mut outcome = SourceOutcome::default();
        let mut json_schema = None;
        let handle = tokio::runtime::Handle::current();
        for file in todo {
            let Some(format) = format_of(&self.config, &file.path) else {
                outcome.rejected_samples.push(format!("{}: unknown format (set dlt.config.format)", file.path));
                continue;
            };
            let store = self.store.clone();
            let task_sink = sink.clone();
            let batch_size = self.ctx.batch_size;
            let opts = CsvOptions {
                delimiter: self.config.delimiter.as_deref().and_then(|d| d.bytes().next()).unwrap_or(b','),
                has_header: self.config.has_header.unwrap_or(true),
            };
            let path = file.path.clone();
            let h = handle.clone();
            let mut schema = json_schema.take();
            // Decoding is CPU work on a blocking thread; batches cross back through the sink.
            let result = tokio::task::spawn_blocking(move || {
                let mut emit = |b| h.block_on(task_sink.send(b));
                let r = match format {
                    FileFormat::Jsonl => store.reader(&path, &h).map_err(|e| DecodeError::Corrupt(format!("{path}: {e}"))).and_then(|r| decode::jsonl(r, &mut schema, batch_size, &path, &mut emit)),
                    FileFormat::Csv => store.reader(&path, &h).map_err(|e| DecodeError::Corrupt(format!("{path}: {e}"))).and_then(|r| decode::csv(r, opts, batch_size, &path, &mut emit)),
                    FileFormat::Parquet => {
                        let input = match store.local_file(&path) {
                            Some(f) => f.map(ParquetInput::File),
                            None => store.read_all(&path, &h).map(ParquetInput::Bytes),
                        };
                        input.map_err(|e| DecodeError::Corrupt(format!("{path}: {e}"))).and_then(|i| decode::parquet(i, batch_size, &path, &mut emit))
                    }
                };
                (r, schema)
            })
            .await
            .map_err(|e| IngestionError::permanent(code::SOURCE_ERROR, "filesystem", format!("decoder crashed: {e}")))?;
            json_schema = result.1;
            match result.0 {
                Ok(d) => {
                    outcome.rows_rejected += d.rejected;
                    for s in d.samples {
                        if outcome.rejected_samples.len() < 10 {
                            outcome.rejected_samples.push(s);
                        }
                    }
                    loaded.insert(file.path.clone(), file.mtime_ms);
                    sink.unit_done();
                }
                Err(DecodeError::Aborted(e)) => return Err(e),
                // A corrupt file is skipped and not remembered, so a later run retries it;
                // the entry ends PARTIAL naming the file.
                Err(DecodeError::Corrupt(msg)) => {
                    tracing::warn!(entry = %self.ctx.entry, "{msg}");
                    outcome.rejected_samples.push(format!("corrupt file skipped: {msg}"));
                }
            }
        }
        outcome.state = Some(serde_json::json!({ "files": loaded }));
        Ok(outcome)
    }
}
