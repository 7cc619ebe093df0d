//! Committing a load: ONE snapshot per load, carrying its data files, the schema changes the
//! files need and the incremental state, in one transaction; re-done on conflict.
//!
//! iceberg-rust 0.10.1 has a single snapshot-producing action, FastAppend, whose manifest list
//! is always "the base table's current manifests + the new files"; overwrite, delete and
//! row-delta actions are missing and cannot be added from outside the crate. Replace and merge
//! therefore use the *staged base* technique: write the manifest list the new snapshot should
//! start from (`metadata/staged-<uuid>.avro`: nothing for replace; the current manifests minus
//! the replaced files for merge), build a copy of the table whose current snapshot points at
//! it, and run FastAppend on that copy through [`ShimCatalog`], whose `load_table` returns the
//! copy while `update_table` goes to the real catalog. The real catalog checks the requirements
//! (table UUID, `main` still at the same snapshot, schema id) against the real table, so a
//! concurrent writer causes a conflict, never a lost update. The snapshot's operation reads
//! `append`; its `deleted-*` summary counts make the totals right. Replaced files are dropped
//! from the manifests rather than marked DELETED, so their physical cleanup needs orphan-file
//! removal.
//!
//! DELETE WHEN UPSTREAM LANDS overwrite / row-delta / rewrite-files (apache/iceberg-rust#2269;
//! PRs #2185 OverwriteAction, #2203 RowDelta, #3046 MergingSnapshotProducer +
//! RewriteFilesAction): `staged_base`, `write_manifest_list`, `surviving_manifests`,
//! `removed_summary`, `replaced_summary` and the `load_table` substitution in `ShimCatalog`
//! go; replace becomes an overwrite of every file and merge a rewrite of
//! `CopyOnWrite::removed` into `CopyOnWrite::added`, on the real table. Schema prediction
//! (`predict`), the retry loop and `merge.rs` stay.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::BooleanArray;
use async_trait::async_trait;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{
    DataFile, FormatVersion, ManifestContentType, ManifestFile, ManifestListWriter, ManifestWriterBuilder, SchemaRef, Summary,
    TableMetadata,
};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, Error, ErrorKind, Namespace, NamespaceIdent, Runtime, TableCommit, TableCreation, TableIdent};

use super::WriteDisposition;
use super::catalog::reload_table;
use super::error::{DestinationError, ErrorContext, FailureKind};
use super::merge::{KeyIndex, rewrite_affected};
use super::schema::{Addition, ids_compatible, missing_fields};
use super::writer::{FileTracker, ParquetSink, WrittenFile, copy_rows, delete_files};

/// Commit attempts per load (the first plus re-commits after conflicts).
const MAX_ATTEMPTS: u32 = 10;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a load commits, independent of the table version it lands on.
pub(crate) struct Plan<'a> {
    pub(crate) catalog: &'a Arc<dyn Catalog>,
    pub(crate) ctx: &'a ErrorContext,
    pub(crate) tracker: &'a FileTracker,
    pub(crate) disposition: &'a WriteDisposition,
    /// The schema the load's files need: the table's plus the columns the load added.
    pub(crate) schema: SchemaRef,
    /// Merge only: the load's keys.
    pub(crate) keys: Option<&'a KeyIndex>,
    pub(crate) snapshot_properties: HashMap<String, String>,
    pub(crate) table_properties: HashMap<String, String>,
}

/// A successful commit.
#[derive(Debug)]
pub(crate) struct Committed {
    pub(crate) snapshot_id: Option<i64>,
    pub(crate) schema_changes: Vec<String>,
    /// Every data file the new snapshot added.
    pub(crate) data_files: Vec<String>,
}

/// Commits `files` on `base`; on conflict reloads the table and redoes the whole commit
/// (schema, staged base, merge rewrite), a bounded number of times with jittered backoff.
pub(crate) async fn commit(plan: &Plan<'_>, mut base: Table, mut files: Vec<WrittenFile>) -> Result<Committed, DestinationError> {
    let mut attempt = 1;
    loop {
        match attempt_commit(plan, &base, &mut files).await {
            Err(e) if e.failure_kind() == Some(FailureKind::Conflict) && attempt < MAX_ATTEMPTS => {
                tracing::debug!(table = %plan.ctx.table, attempt, "commit conflict, retrying on the new table version");
                tokio::time::sleep(backoff(attempt)).await;
                base = reload_table(plan.catalog.as_ref(), base.identifier(), plan.ctx).await?;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Exponential backoff with ±50 % jitter, so that competing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1 << attempt.min(16)).min(BACKOFF_MAX);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0 + 0.5;
    exp.mul_f64(jitter)
}

/// Files written during one attempt that only that attempt's commit would reference.
#[derive(Default)]
struct Artifacts {
    staged: Vec<String>,
    metadata: Vec<String>,
    data: Vec<String>,
}

async fn attempt_commit(plan: &Plan<'_>, base: &Table, files: &mut Vec<WrittenFile>) -> Result<Committed, DestinationError> {
    let ctx = plan.ctx;
    check_writable(base, ctx)?;
    let arrow = schema_to_arrow_schema(&plan.schema).map_err(|e| ctx.schema(e.to_string()))?;
    let additions = missing_fields(&arrow, base.metadata().current_schema()).map_err(|e| ctx.schema(e))?;
    let target = if additions.is_empty() {
        base.metadata().current_schema().clone()
    } else {
        let predicted = predict(plan.catalog, base, &additions).await.map_err(|e| ctx.schema(e.to_string()))?;
        predicted.metadata().current_schema().clone()
    };
    align_files(base, files, &target, plan.tracker, ctx).await?;

    let mut artifacts = Artifacts::default();
    let result = commit_once(plan, base, &additions, &target, files, &mut artifacts).await;
    let file_io = base.file_io();
    delete_files(file_io, &artifacts.staged).await;
    if let Err(e) = &result
        && e.failure_kind() != Some(FailureKind::CommitStateUnknown)
    {
        delete_files(file_io, &artifacts.metadata).await;
        delete_files(file_io, &artifacts.data).await;
        plan.tracker.remove(&artifacts.data);
    }
    let (snapshot_id, data_files) = result?;
    Ok(Committed { snapshot_id, schema_changes: additions.iter().map(Addition::describe).collect(), data_files })
}

/// Refuses tables this destination cannot write correctly.
pub(crate) fn check_writable(table: &Table, ctx: &ErrorContext) -> Result<(), DestinationError> {
    if !table.metadata().default_partition_spec().is_unpartitioned() {
        return Err(ctx.unsupported("partitioned tables are not supported"));
    }
    Ok(())
}

/// Rewrites into `target` the files whose field ids `target` gives another meaning (a
/// concurrent schema change numbered its columns first); the originals are deleted.
async fn align_files(
    base: &Table,
    files: &mut Vec<WrittenFile>,
    target: &SchemaRef,
    tracker: &FileTracker,
    ctx: &ErrorContext,
) -> Result<(), DestinationError> {
    if files.iter().all(|f| ids_compatible(&f.schema, target)) {
        return Ok(());
    }
    let mut sink = ParquetSink::new(base, target.clone(), tracker).await.map_err(|e| ctx.io("write data file", &e))?;
    let mut kept = Vec::with_capacity(files.len());
    let mut replaced = Vec::new();
    for file in files.drain(..) {
        if ids_compatible(&file.schema, target) {
            kept.push(file);
            continue;
        }
        let mut all = |batch: &arrow_array::RecordBatch| Ok(BooleanArray::from(vec![true; batch.num_rows()]));
        copy_rows(base, &file, &mut sink, &mut all, ctx).await?;
        replaced.push(file.data_file.file_path().to_string());
    }
    kept.extend(sink.close().await.map_err(|e| ctx.io("write data file", &e))?);
    delete_files(base.file_io(), &replaced).await;
    tracker.remove(&replaced);
    *files = kept;
    Ok(())
}

/// One commit on `base`. Returns the new snapshot id and the data files it added.
async fn commit_once(
    plan: &Plan<'_>,
    base: &Table,
    additions: &[Addition],
    target: &SchemaRef,
    files: &[WrittenFile],
    artifacts: &mut Artifacts,
) -> Result<(Option<i64>, Vec<String>), DestinationError> {
    let ctx = plan.ctx;
    let staging = |e: Error| ctx.io("stage manifests", &e);
    let mut summary = HashMap::new();
    let mut data_files: Vec<DataFile> = files.iter().map(|f| f.data_file.clone()).collect();
    let tx_base = match (plan.disposition, base.metadata().current_snapshot()) {
        (WriteDisposition::Append, _) | (_, None) => base.clone(),
        (WriteDisposition::Replace, Some(snapshot)) => {
            check_stageable(base, ctx)?;
            summary = replaced_summary(snapshot.summary());
            staged_base(base, Vec::new(), artifacts).await.map_err(staging)?
        }
        (WriteDisposition::Merge { .. }, Some(_)) => {
            let keys = plan.keys.ok_or_else(|| ctx.schema("merge without primary key index"))?;
            let cow = rewrite_affected(base, target, keys, plan.tracker, ctx).await?;
            artifacts.data.extend(cow.added.iter().map(|f| f.data_file.file_path().to_string()));
            data_files.extend(cow.added.iter().map(|f| f.data_file.clone()));
            if cow.removed.is_empty() {
                base.clone()
            } else {
                check_stageable(base, ctx)?;
                summary = removed_summary(&cow.removed);
                let removed: HashSet<&str> = cow.removed.iter().map(|f| f.file_path()).collect();
                let manifests = surviving_manifests(base, &removed, artifacts).await.map_err(staging)?;
                staged_base(base, manifests, artifacts).await.map_err(staging)?
            }
        }
    };
    summary.extend(plan.snapshot_properties.clone());
    let added: Vec<String> = data_files.iter().map(|f| f.file_path().to_string()).collect();
    let tx = transaction(&tx_base, additions, &plan.table_properties, data_files, summary).map_err(|e| ctx.catalog("commit", &e))?;
    let shim = ShimCatalog { real: plan.catalog.clone(), base: tx_base, mode: ShimMode::Commit };
    let table = tx.commit(&shim).await.map_err(|e| ctx.catalog("commit", &e))?;
    Ok((table.metadata().current_snapshot_id(), added))
}

/// The load's transaction: schema additions, then table properties, then the snapshot.
fn transaction(
    base: &Table,
    additions: &[Addition],
    table_properties: &HashMap<String, String>,
    data_files: Vec<DataFile>,
    summary: HashMap<String, String>,
) -> iceberg::Result<Transaction> {
    let mut tx = Transaction::new(base);
    if !additions.is_empty() {
        let action = additions.iter().fold(tx.update_schema(), |a, add| a.add_column(add.to_add_column()));
        tx = action.apply(tx)?;
    }
    if !table_properties.is_empty() {
        let action = table_properties.iter().fold(tx.update_table_properties(), |a, (k, v)| a.set(k.clone(), v.clone()));
        tx = action.apply(tx)?;
    }
    // File names are unique per load, so the (manifest-reading) duplicate check is skipped.
    tx.fast_append().with_check_duplicate(false).add_data_files(data_files).set_snapshot_properties(summary).apply(tx)
}

/// The table as it will be after adding `additions` (ids and all), computed by running the
/// real schema update on a copy: data files can then be written with the final field ids
/// before the commit that adds the columns.
pub(crate) async fn predict(catalog: &Arc<dyn Catalog>, base: &Table, additions: &[Addition]) -> iceberg::Result<Table> {
    let tx = Transaction::new(base);
    let action = additions.iter().fold(tx.update_schema(), |a, add| a.add_column(add.to_add_column()));
    let tx = action.apply(tx)?;
    tx.commit(&ShimCatalog { real: catalog.clone(), base: base.clone(), mode: ShimMode::DryRun }).await
}

fn check_stageable(base: &Table, ctx: &ErrorContext) -> Result<(), DestinationError> {
    if base.metadata().format_version() != FormatVersion::V2 {
        return Err(ctx.unsupported("replace and merge need an Iceberg format v2 table"));
    }
    Ok(())
}

/// `deleted-*` counts for a snapshot that drops everything `previous` held.
fn replaced_summary(previous: &Summary) -> HashMap<String, String> {
    const TOTAL_TO_REMOVED: [(&str, &str); 6] = [
        ("total-data-files", "deleted-data-files"),
        ("total-records", "deleted-records"),
        ("total-files-size", "removed-files-size"),
        ("total-delete-files", "removed-delete-files"),
        ("total-position-deletes", "removed-position-deletes"),
        ("total-equality-deletes", "removed-equality-deletes"),
    ];
    TOTAL_TO_REMOVED
        .iter()
        .filter_map(|(total, removed)| {
            let value = previous.additional_properties.get(*total)?;
            (value.parse::<u64>().ok()? > 0).then(|| (removed.to_string(), value.clone()))
        })
        .collect()
}

/// `deleted-*` counts for the files a merge replaced.
fn removed_summary(removed: &[DataFile]) -> HashMap<String, String> {
    HashMap::from([
        ("deleted-data-files".to_string(), removed.len().to_string()),
        ("deleted-records".to_string(), removed.iter().map(DataFile::record_count).sum::<u64>().to_string()),
        ("removed-files-size".to_string(), removed.iter().map(DataFile::file_size_in_bytes).sum::<u64>().to_string()),
    ])
}

/// The current snapshot's manifests without the `removed` files: manifests holding one are
/// rewritten with their other live entries (keeping snapshot ids and sequence numbers).
async fn surviving_manifests(base: &Table, removed: &HashSet<&str>, artifacts: &mut Artifacts) -> iceberg::Result<Vec<ManifestFile>> {
    let metadata = base.metadata();
    let snapshot = metadata.current_snapshot().ok_or_else(|| Error::new(ErrorKind::Unexpected, "no current snapshot"))?;
    let list = base.manifest_list_reader(snapshot).load().await?;
    let mut manifests = Vec::with_capacity(list.entries().len());
    for manifest_file in list.entries() {
        if manifest_file.content != ManifestContentType::Data {
            manifests.push(manifest_file.clone());
            continue;
        }
        let manifest = manifest_file.load_manifest(base.file_io()).await?;
        if !manifest.entries().iter().any(|e| e.is_alive() && removed.contains(e.file_path())) {
            manifests.push(manifest_file.clone());
            continue;
        }
        let survivors: Vec<_> = manifest.entries().iter().filter(|e| e.is_alive() && !removed.contains(e.file_path())).collect();
        if survivors.is_empty() {
            continue;
        }
        let path = format!("{}/metadata/floe-{}-m0.avro", metadata.location(), uuid::Uuid::now_v7());
        artifacts.metadata.push(path.clone());
        let mut writer = ManifestWriterBuilder::new(
            base.file_io().new_output(&path)?,
            Some(snapshot.snapshot_id()),
            manifest.metadata().schema().clone(),
            manifest.metadata().partition_spec().clone(),
        )
        .build_v2_data();
        for entry in survivors {
            let sequence = entry.sequence_number().unwrap_or(snapshot.sequence_number());
            writer.add_existing_file(
                entry.data_file().clone(),
                entry.snapshot_id().unwrap_or(snapshot.snapshot_id()),
                sequence,
                entry.file_sequence_number.or(Some(sequence)),
            )?;
        }
        manifests.push(writer.write_manifest_file().await?);
    }
    Ok(manifests)
}

/// A copy of `base` whose current snapshot lists `manifests` (written to a staged manifest
/// list stamped with that snapshot's id, parent and sequence number).
async fn staged_base(base: &Table, manifests: Vec<ManifestFile>, artifacts: &mut Artifacts) -> iceberg::Result<Table> {
    let metadata = base.metadata();
    let snapshot = metadata.current_snapshot().ok_or_else(|| Error::new(ErrorKind::Unexpected, "no current snapshot"))?;
    let path = format!("{}/metadata/staged-{}.avro", metadata.location(), uuid::Uuid::now_v7());
    artifacts.staged.push(path.clone());
    write_manifest_list(base, &path, snapshot.snapshot_id(), snapshot.parent_snapshot_id(), snapshot.sequence_number(), manifests).await?;

    let mut json = serde_json::to_value(metadata).map_err(json_error)?;
    let current = snapshot.snapshot_id();
    let snapshots = json.get_mut("snapshots").and_then(|s| s.as_array_mut());
    let entry = snapshots
        .into_iter()
        .flatten()
        .find(|s| s.get("snapshot-id").and_then(|id| id.as_i64()) == Some(current))
        .ok_or_else(|| Error::new(ErrorKind::Unexpected, "current snapshot missing from metadata JSON"))?;
    entry["manifest-list"] = serde_json::Value::String(path);
    let staged: TableMetadata = serde_json::from_value(json).map_err(json_error)?;

    let mut builder = Table::builder()
        .metadata(staged)
        .identifier(base.identifier().clone())
        .file_io(base.file_io().clone())
        .runtime(Runtime::try_current()?);
    if let Some(location) = base.metadata_location() {
        builder = builder.metadata_location(location);
    }
    builder.build()
}

async fn write_manifest_list(
    base: &Table,
    path: &str,
    snapshot_id: i64,
    parent_id: Option<i64>,
    sequence_number: i64,
    manifests: Vec<ManifestFile>,
) -> iceberg::Result<()> {
    let writer = base.file_io().new_output(path)?.writer().await?;
    let mut list = ManifestListWriter::v2(writer, snapshot_id, parent_id, sequence_number);
    list.add_manifests(manifests.into_iter())?;
    list.close().await
}

fn json_error(e: serde_json::Error) -> Error {
    Error::new(ErrorKind::DataInvalid, "table metadata JSON round trip failed").with_source(e)
}

/// How [`ShimCatalog`] handles `update_table`.
#[derive(Debug, Clone, Copy)]
enum ShimMode {
    /// Send the commit to the real catalog; its errors are made non-retryable so that
    /// `Transaction::commit` does not retry on the stale base: our loop rebuilds everything.
    Commit,
    /// Apply the commit to the base in memory only (schema prediction).
    DryRun,
}

/// A catalog whose `load_table` returns a fixed base table (the staged base, or the table the
/// load's files were written against); everything else goes to the real catalog.
struct ShimCatalog {
    real: Arc<dyn Catalog>,
    base: Table,
    mode: ShimMode,
}

/// Shows neither catalog nor table: their `Debug` output includes properties (secrets).
impl std::fmt::Debug for ShimCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShimCatalog").field("table", self.base.identifier()).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl ShimCatalog {
    fn dry_run(&self, mut commit: TableCommit) -> iceberg::Result<Table> {
        for requirement in commit.take_requirements() {
            requirement.check(Some(self.base.metadata()))?;
        }
        let mut builder = self.base.metadata().clone().into_builder(self.base.metadata_location().map(str::to_string));
        for update in commit.take_updates() {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let mut table = Table::builder()
            .metadata(metadata)
            .identifier(self.base.identifier().clone())
            .file_io(self.base.file_io().clone())
            .runtime(Runtime::try_current()?);
        if let Some(location) = self.base.metadata_location() {
            table = table.metadata_location(location);
        }
        table.build()
    }
}

#[async_trait]
impl Catalog for ShimCatalog {
    async fn list_namespaces(&self, parent: Option<&NamespaceIdent>) -> iceberg::Result<Vec<NamespaceIdent>> {
        self.real.list_namespaces(parent).await
    }

    async fn create_namespace(&self, namespace: &NamespaceIdent, properties: HashMap<String, String>) -> iceberg::Result<Namespace> {
        self.real.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        self.real.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.real.namespace_exists(namespace).await
    }

    async fn update_namespace(&self, namespace: &NamespaceIdent, properties: HashMap<String, String>) -> iceberg::Result<()> {
        self.real.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.real.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.real.list_tables(namespace).await
    }

    async fn create_table(&self, namespace: &NamespaceIdent, creation: TableCreation) -> iceberg::Result<Table> {
        self.real.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        if table == self.base.identifier() { Ok(self.base.clone()) } else { self.real.load_table(table).await }
    }

    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.real.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.real.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.real.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> iceberg::Result<()> {
        self.real.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> iceberg::Result<Table> {
        self.real.register_table(table, metadata_location).await
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        match self.mode {
            ShimMode::DryRun => self.dry_run(commit),
            ShimMode::Commit => self.real.update_table(commit).await.map_err(|e| e.with_retryable(false)),
        }
    }
}
