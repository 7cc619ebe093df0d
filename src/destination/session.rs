//! One load, batch by batch: the table is found or created at the first batch with rows; each
//! batch is stamped with the load id, grows the (predicted) schema if it brings new columns,
//! is conformed (rows that cannot be stored are rejected) and written to Parquet at once;
//! merge also records the keys. `finish` commits one snapshot, `abort` deletes what was written.

use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::Schema as ArrowSchema;
use arrow_select::filter::filter_record_batch;
use iceberg::table::Table;
use iceberg::{Catalog, TableIdent};

use super::catalog::{load_or_create_table, load_table};
use super::commit::{self, Plan};
use super::error::{DestinationError, ErrorContext, FailureKind};
use super::merge::{self, KeyIndex, row_keys};
use super::schema::{Reasons, conform, missing_fields, new_table_schema, with_load_id};
use super::writer::{FileTracker, SinkPool, WrittenFile, delete_files};
use super::{LoadOutcome, LoadRequest, WriteDisposition, state};

/// The table a load writes to, once its first batch arrived.
struct OpenTable {
    /// The table as loaded (or created) at the first batch.
    base: Table,
    created: bool,
    /// `base` plus the columns this load added so far: the schema the files are written with.
    predicted: Table,
    sink: Option<SinkPool>,
    files: Vec<WrittenFile>,
    keys: Option<KeyIndex>,
}

impl OpenTable {
    async fn close_sink(&mut self, ctx: &ErrorContext) -> Result<(), DestinationError> {
        if let Some(sink) = self.sink.take() {
            self.files.extend(sink.close().await.map_err(|e| ctx.io("write data file", &e))?);
        }
        Ok(())
    }
}

pub(crate) struct Session {
    catalog: Arc<dyn Catalog>,
    ident: TableIdent,
    req: LoadRequest,
    ctx: ErrorContext,
    tracker: FileTracker,
    open: Option<OpenTable>,
    rows_written: u64,
    rows_rejected: u64,
    samples: Vec<String>,
}

impl Session {
    pub(crate) fn new(catalog: Arc<dyn Catalog>, ident: TableIdent, req: LoadRequest, ctx: ErrorContext) -> Self {
        Session {
            catalog,
            ident,
            req,
            ctx,
            tracker: FileTracker::default(),
            open: None,
            rows_written: 0,
            rows_rejected: 0,
            samples: Vec::new(),
        }
    }

    fn primary_key(&self) -> Option<&[String]> {
        match &self.req.disposition {
            WriteDisposition::Merge { primary_key } => Some(primary_key),
            _ => None,
        }
    }

    /// Writes one batch.
    pub(crate) async fn write(&mut self, batch: RecordBatch) -> Result<(), DestinationError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = with_load_id(&batch, &self.req.load_id).map_err(|e| self.ctx.schema(e))?;
        let mut open = match self.open.take() {
            Some(open) => open,
            None => self.open_table(&batch.schema()).await?,
        };
        let result = self.write_to(&mut open, &batch).await;
        self.open = Some(open);
        result
    }

    // `&mut self` (not `&self`) throughout: the session holds a Parquet writer, which is not
    // `Sync`, and the load future must stay `Send`.
    async fn open_table(&mut self, schema: &ArrowSchema) -> Result<OpenTable, DestinationError> {
        let ctx = &self.ctx;
        let primary_key = self.primary_key().unwrap_or_default();
        for key in primary_key {
            if schema.field_with_name(key).is_err() {
                return Err(ctx.schema(format!("primary key column `{key}` is missing from the data")));
            }
        }
        let new_schema = || new_table_schema(schema, primary_key).map_err(|e| ctx.schema(e));
        let (base, created) = load_or_create_table(self.catalog.as_ref(), &self.ident, &new_schema, ctx).await?;
        commit::check_writable(&base, ctx)?;
        let keys = self.primary_key().map(|pk| KeyIndex::new(pk.to_vec()));
        Ok(OpenTable { predicted: base.clone(), base, created, sink: None, files: Vec::new(), keys })
    }

    async fn write_to(&mut self, open: &mut OpenTable, batch: &RecordBatch) -> Result<(), DestinationError> {
        self.evolve(open, &batch.schema()).await?;
        let sink = match open.sink.as_mut() {
            Some(sink) => sink,
            None => {
                let schema = open.predicted.metadata().current_schema().clone();
                // Merge keeps one writer: its deduplication needs the rows in load order.
                let writers = if open.keys.is_some() { 1 } else { std::thread::available_parallelism().map_or(1, std::num::NonZero::get) };
                let sink = SinkPool::new(&open.base, schema, &self.tracker, writers).map_err(|e| self.ctx.io("write data file", &e))?;
                open.sink.insert(sink)
            }
        };
        let conformed = conform(batch, sink.arrow_schema()).map_err(|e| self.ctx.schema(e))?;
        self.count_rejected(conformed.rejected_rows, conformed.reasons);
        let mut rows = conformed.batch;
        if let Some(keys) = open.keys.as_mut() {
            rows = self.keep_keyed_rows(keys, rows)?;
        }
        self.rows_written += rows.num_rows() as u64;
        sink.write(rows).await.map_err(|e| self.ctx.io("write data file", &e))
    }

    /// Grows the predicted schema by the batch's new columns. The open Parquet file keeps the
    /// schema it was started with (valid: fewer columns); later rows go to a new file.
    async fn evolve(&mut self, open: &mut OpenTable, schema: &ArrowSchema) -> Result<(), DestinationError> {
        let additions = missing_fields(schema, open.predicted.metadata().current_schema()).map_err(|e| self.ctx.schema(e))?;
        if additions.is_empty() {
            return Ok(());
        }
        let predicted = commit::predict(&self.catalog, &open.predicted, &additions)
            .await
            .map_err(|e| self.ctx.schema(format!("cannot add columns: {e}")))?;
        open.close_sink(&self.ctx).await?;
        open.predicted = predicted;
        Ok(())
    }

    /// Drops (and counts as rejected) rows with a null key; records the keys of the others.
    fn keep_keyed_rows(&mut self, index: &mut KeyIndex, rows: RecordBatch) -> Result<RecordBatch, DestinationError> {
        let keys = row_keys(&rows, index.columns()).map_err(|e| self.ctx.schema(e))?;
        let null_keys = keys.iter().filter(|k| k.is_none()).count();
        let rows = if null_keys > 0 {
            let mask: BooleanArray = keys.iter().map(|k| Some(k.is_some())).collect();
            let mut reasons = Reasons::default();
            reasons.add(format!("null primary key ({})", index.columns().join(", ")));
            self.count_rejected(null_keys, reasons);
            filter_record_batch(&rows, &mask).map_err(|e| self.ctx.schema(e.to_string()))?
        } else {
            rows
        };
        index.record(keys.into_iter().flatten());
        Ok(rows)
    }

    fn count_rejected(&mut self, rows: usize, reasons: Reasons) {
        self.rows_rejected += rows as u64;
        reasons.merge_into(&mut self.samples);
    }

    /// Deletes every data file this load wrote (best effort). Used when the load fails before
    /// its commit, and after a failed commit whose outcome is known.
    pub(crate) async fn abort(&mut self) {
        // Writers still running would finish their files after the deletion: stop them first.
        if let Some(sink) = self.open.as_mut().and_then(|open| open.sink.take()) {
            let _ = sink.close().await;
        }
        let paths = self.tracker.take();
        if paths.is_empty() {
            return;
        }
        if let Some(open) = self.open.take() {
            delete_files(open.base.file_io(), &paths).await;
        }
    }

    /// Commits the load (see [`super::Destination::load`] for what an empty load does).
    pub(crate) async fn finish(mut self) -> Result<LoadOutcome, DestinationError> {
        match self.commit().await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // If the catalog cannot tell whether the commit landed, the files may be live.
                if e.failure_kind() != Some(FailureKind::CommitStateUnknown) {
                    self.abort().await;
                }
                Err(e)
            }
        }
    }

    async fn commit(&mut self) -> Result<LoadOutcome, DestinationError> {
        let mut outcome =
            LoadOutcome { rows_rejected: self.rows_rejected, rejected_samples: self.samples.clone(), ..LoadOutcome::default() };
        let (base, files, keys) = match self.open.as_mut() {
            Some(open) => {
                open.close_sink(&self.ctx).await?;
                outcome.table_created = open.created;
                (open.base.clone(), std::mem::take(&mut open.files), open.keys.take())
            }
            None => match load_table(self.catalog.as_ref(), &self.ident, &self.ctx).await? {
                Some(table) => (table, Vec::new(), None),
                None => return Ok(outcome),
            },
        };
        let replace = self.req.disposition == WriteDisposition::Replace;
        let state = self.req.current_state();
        if files.is_empty() && !replace && state.is_none() {
            return Ok(outcome);
        }
        let (files, disposition) = match &keys {
            Some(index) if !files.is_empty() => {
                (merge::deduplicate(&base, files, index, &self.tracker, &self.ctx).await?, self.req.disposition.clone())
            }
            // A merge without rows only records its state.
            _ if !replace => (files, WriteDisposition::Append),
            _ => (files, WriteDisposition::Replace),
        };
        outcome.rows_loaded = keys.as_ref().map_or(self.rows_written, KeyIndex::distinct);
        let schema = self
            .open
            .as_ref()
            .map_or_else(|| base.metadata().current_schema().clone(), |open| open.predicted.metadata().current_schema().clone());
        let plan = Plan {
            catalog: &self.catalog,
            ctx: &self.ctx,
            tracker: &self.tracker,
            disposition: &disposition,
            schema,
            keys: keys.as_ref(),
            snapshot_properties: state::snapshot_properties(&self.req.load_id, &self.req.state_key, state.as_deref()),
            table_properties: state.iter().map(|s| (state::property_name(&self.req.state_key), s.clone())).collect(),
        };
        let file_io = base.file_io().clone();
        let committed = commit::commit(&plan, base, files).await?;
        // Whatever this load wrote and the snapshot does not reference is an orphan.
        let orphans: Vec<String> = self.tracker.take().into_iter().filter(|p| !committed.data_files.contains(p)).collect();
        delete_files(&file_io, &orphans).await;
        outcome.snapshot_id = committed.snapshot_id;
        outcome.schema_changes = committed.schema_changes;
        Ok(outcome)
    }
}
