//! Table maintenance: removing orphan data files.
//!
//! A load that is killed (SIGKILL, OOM, power loss) after writing Parquet files but before
//! its commit leaves those files in the table's `data/` folder; a merge or replace drops
//! replaced files from the manifests rather than marking them deleted (see `commit`), so they
//! stay referenced only by older snapshots. No snapshot ever reads an orphan, so they cost
//! storage only. [`Destination::remove_orphan_files`] lists `<table location>/data/`, keeps
//! every file referenced by any snapshot's manifests (all snapshots, not only the current
//! one, so time travel keeps working) and deletes the rest that are older than a threshold:
//! a load still running writes files that no snapshot references *yet*, and the threshold
//! (default one day in the CLI) keeps them safe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use opendal::Operator;

use super::catalog;
use super::error::{DestinationError, ErrorContext};
use super::{Destination, StorageConfig};

/// What an orphan scan found (and removed, unless it was a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrphanReport {
    pub table: String,
    /// Whether the table exists (a missing table has nothing to clean).
    pub exists: bool,
    /// Data files referenced by at least one snapshot.
    pub referenced_data_files: usize,
    /// Orphans old enough to remove (removed unless `dry_run`).
    pub orphan_files: Vec<String>,
    /// Orphans left alone because they are younger than the threshold (a load may be running).
    pub young_orphans: usize,
    pub removed_data_files: usize,
    pub removed_bytes: u64,
    pub dry_run: bool,
}

impl Destination {
    /// Delete the files under `table`'s `data/` folder that no snapshot references and that
    /// were last modified more than `older_than` ago. With `dry_run` nothing is deleted.
    pub async fn remove_orphan_files(&self, table: &str, older_than: Duration, dry_run: bool) -> Result<OrphanReport, DestinationError> {
        let ident = catalog::parse_table_name(table)?;
        let ctx = ErrorContext::new(table, &self.redactor);
        let mut report = OrphanReport { table: table.to_string(), dry_run, ..OrphanReport::default() };
        let Some(t) = catalog::load_table(self.catalog.as_ref(), &ident, &ctx).await? else {
            return Ok(report);
        };
        report.exists = true;

        // Every data file any snapshot references (live or deleted entries alike).
        let mut referenced: HashSet<String> = HashSet::new();
        for snapshot in t.metadata().snapshots() {
            let list = t.manifest_list_reader(snapshot).load().await.map_err(|e| ctx.io("read manifest list", &e))?;
            for manifest_file in list.entries() {
                let manifest = manifest_file.load_manifest(t.file_io()).await.map_err(|e| ctx.io("read manifest", &e))?;
                referenced.extend(manifest.entries().iter().map(|e| e.file_path().to_string()));
            }
        }
        report.referenced_data_files = referenced.len();

        let location = t.metadata().location().trim_end_matches('/').to_string();
        let data_prefix = format!("{location}/data/");
        let (op, root_url) = operator(&data_prefix, &self.storage).map_err(|m| ctx.catalog_kind("list data files", super::FailureKind::Other, m))?;
        let io_err = |op_name: &'static str, e: opendal::Error| {
            let kind = if e.kind() == opendal::ErrorKind::PermissionDenied {
                super::FailureKind::Auth
            } else if e.is_temporary() {
                super::FailureKind::Unavailable
            } else {
                super::FailureKind::Other
            };
            DestinationError::Io { table: table.to_string(), operation: op_name, kind, message: self.redactor.redact(&e.to_string()) }
        };
        let entries = match op.lister_with("").recursive(true).await {
            Ok(lister) => lister.try_collect::<Vec<_>>().await.map_err(|e| io_err("list data files", e))?,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("list data files", e)),
        };
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        for entry in entries {
            if entry.path().ends_with('/') {
                continue;
            }
            let full = format!("{root_url}{}", entry.path().trim_start_matches('/'));
            // Referenced paths are URLs (`file:///…`, `s3://…`); compare both spellings of a local path.
            if referenced.contains(&full) || referenced.contains(full.trim_start_matches("file://")) {
                continue;
            }
            let meta = match entry.metadata().last_modified() {
                Some(_) => entry.metadata().clone(),
                None => op.stat(entry.path()).await.map_err(|e| io_err("stat data file", e))?,
            };
            let modified = meta.last_modified().map(SystemTime::from).unwrap_or(SystemTime::UNIX_EPOCH);
            if modified > cutoff {
                report.young_orphans += 1;
                continue;
            }
            if !dry_run {
                match op.delete(entry.path()).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("delete orphan file", e)),
                }
                report.removed_data_files += 1;
                report.removed_bytes += meta.content_length();
            }
            report.orphan_files.push(full);
        }
        report.orphan_files.sort();
        Ok(report)
    }
}

/// An operator rooted at `url` (a `file://` or `s3://` folder URL, ending in `/`), and the
/// URL prefix its paths are relative to.
fn operator(url: &str, storage: &StorageConfig) -> Result<(Operator, String), String> {
    if let Some(rest) = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://")) {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let mut b = opendal::services::S3::default().bucket(bucket).root(&format!("/{}", prefix.trim_matches('/')));
        if let Some(s3) = &storage.s3 {
            if let Some(e) = &s3.endpoint {
                b = b.endpoint(e);
            }
            b = b.region(s3.region.as_deref().unwrap_or("us-east-1"));
            if let (Some(k), Some(s)) = (&s3.access_key_id, &s3.secret_access_key) {
                b = b.access_key_id(k.expose()).secret_access_key(s.expose());
            }
            if !s3.path_style_access {
                b = b.enable_virtual_host_style();
            }
        }
        let op = Operator::new(b).map_err(|e| format!("cannot open {url}: {}", e.kind()))?.finish();
        return Ok((op, url.to_string()));
    }
    let path = url.strip_prefix("file://").or_else(|| url.strip_prefix("file:")).unwrap_or(url);
    if !path.starts_with('/') {
        return Err(format!("unsupported table location {url}"));
    }
    let op = Operator::new(opendal::services::Fs::default().root(path)).map_err(|e| format!("cannot open {url}: {}", e.kind()))?.finish();
    Ok((op, url.to_string()))
}
