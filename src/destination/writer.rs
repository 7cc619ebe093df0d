//! Parquet data files: writing them (zstd, large row groups, unique names, every path
//! recorded so a failed load can delete what it wrote) and reading them back.

use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use arrow_select::filter::filter_record_batch;
use futures::TryStreamExt;
use futures::stream::{self, BoxStream};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::io::FileIO;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFile, DataFileFormat, PartitionKey, SchemaRef};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator, LocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::error::{DestinationError, ErrorContext};
use super::schema::conform;

/// Rows per row group at most; large groups read fast, the byte cap below bounds memory.
const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// Encoded bytes buffered per row group at most: the writer's memory bound. A finished row
/// group is handed to storage as one buffer that grew by doubling, so each writer's peak is
/// two to four times this, and a large load has one writer per core. 8 MiB groups (about
/// 200k rows of a wide event record) still read fast; measured on 1M and 10M JSON lines,
/// larger groups only raised peak memory.
const ROW_GROUP_BYTES: usize = 8 * 1024 * 1024;
/// Dictionary size per column chunk before it falls back to plain encoding. Every row group
/// starts a fresh dictionary, and with 8 MiB groups a high-cardinality string column (a JSON
/// payload) would hash its way to the default 1 MiB in every group before giving up: 7% of
/// a CSV load's CPU. 256 KiB still holds the dictionary of any column that benefits from one.
const DICTIONARY_PAGE_BYTES: usize = 256 * 1024;

/// Paths of every data file a load opened, committed or not, so that a failed load can delete them.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileTracker(Arc<Mutex<Vec<String>>>);

impl FileTracker {
    fn record(&self, path: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(path.to_string());
    }

    /// Forgets `paths` (they were committed or deleted) and returns what remains.
    pub(crate) fn remove(&self, paths: &[String]) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|p| !paths.contains(p));
    }

    /// Every recorded path, forgetting them.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The table's data location generator, recording each path it hands out.
#[derive(Clone, Debug)]
struct TrackingLocations {
    inner: DefaultLocationGenerator,
    tracker: FileTracker,
}

impl LocationGenerator for TrackingLocations {
    fn generate_location(&self, partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        let location = self.inner.generate_location(partition_key, file_name);
        self.tracker.record(&location);
        location
    }
}

/// A data file and the schema it was written with (its field ids).
#[derive(Clone, Debug)]
pub(crate) struct WrittenFile {
    pub(crate) data_file: DataFile,
    pub(crate) schema: SchemaRef,
}

type Inner = DataFileWriter<ParquetWriterBuilder, TrackingLocations, DefaultFileNameGenerator>;

/// Writes batches of one schema into rolling Parquet files named `floe-<uuidv7>-NNNNN.parquet`:
/// a fresh prefix per writer, so no two writers, loads or processes ever reuse a name.
pub(crate) struct ParquetSink {
    inner: Inner,
    schema: SchemaRef,
    arrow: ArrowSchemaRef,
}

impl ParquetSink {
    pub(crate) async fn new(table: &Table, schema: SchemaRef, tracker: &FileTracker) -> iceberg::Result<Self> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .build();
        let target_size = table.metadata().table_properties()?.write_target_file_size_bytes;
        let locations = TrackingLocations { inner: DefaultLocationGenerator::new(table.metadata())?, tracker: tracker.clone() };
        let names = DefaultFileNameGenerator::new(format!("floe-{}", uuid::Uuid::now_v7()), None, DataFileFormat::Parquet);
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(props, schema.clone()),
            target_size,
            table.file_io().clone(),
            locations,
            names,
        );
        let inner = DataFileWriterBuilder::new(rolling).build(None).await?;
        let arrow = Arc::new(schema_to_arrow_schema(&schema)?);
        Ok(ParquetSink { inner, schema, arrow })
    }

    /// The schema batches must have: the Iceberg schema as Arrow, with field ids.
    pub(crate) fn arrow_schema(&self) -> &ArrowSchemaRef {
        &self.arrow
    }

    pub(crate) async fn write(&mut self, batch: RecordBatch) -> iceberg::Result<()> {
        self.inner.write(batch).await
    }

    pub(crate) async fn close(mut self) -> iceberg::Result<Vec<WrittenFile>> {
        let files = self.inner.close().await?;
        Ok(files.into_iter().map(|data_file| WrittenFile { data_file, schema: self.schema.clone() }).collect())
    }
}

/// Rows a load writes to its first file before it spreads over more writers: a small load
/// stays one file, a large one is encoded on every core.
const SPREAD_AFTER_ROWS: usize = 64 * 1024;

type WriterTask = tokio::task::JoinHandle<iceberg::Result<Vec<WrittenFile>>>;

/// A load's Parquet writers: up to `max` [`ParquetSink`]s, each on its own task (so Parquet
/// encoding and compression run on every core), fed round-robin. Writer `k + 1` starts once
/// `k × 64k` rows were written. With `max` 1 (merge, whose "last row of a key wins" needs the
/// rows in load order) every batch goes to one file in order.
pub(crate) struct SinkPool {
    table: Table,
    schema: SchemaRef,
    arrow: ArrowSchemaRef,
    tracker: FileTracker,
    max: usize,
    writers: Vec<(tokio::sync::mpsc::Sender<RecordBatch>, WriterTask)>,
    rows: usize,
    next: usize,
}

impl SinkPool {
    pub(crate) fn new(table: &Table, schema: SchemaRef, tracker: &FileTracker, max: usize) -> iceberg::Result<Self> {
        let arrow = Arc::new(schema_to_arrow_schema(&schema)?);
        Ok(SinkPool { table: table.clone(), schema, arrow, tracker: tracker.clone(), max: max.max(1), writers: Vec::new(), rows: 0, next: 0 })
    }

    /// The schema batches must have (see [`ParquetSink::arrow_schema`]).
    pub(crate) fn arrow_schema(&self) -> &ArrowSchemaRef {
        &self.arrow
    }

    fn spawn_writer(&mut self) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let (table, schema, tracker) = (self.table.clone(), self.schema.clone(), self.tracker.clone());
        let task = tokio::spawn(async move {
            let mut sink = ParquetSink::new(&table, schema, &tracker).await?;
            while let Some(batch) = rx.recv().await {
                sink.write(batch).await?;
            }
            sink.close().await
        });
        self.writers.push((tx, task));
    }

    pub(crate) async fn write(&mut self, batch: RecordBatch) -> iceberg::Result<()> {
        if self.writers.is_empty() || (self.writers.len() < self.max && self.rows >= SPREAD_AFTER_ROWS * self.writers.len()) {
            self.spawn_writer();
        }
        self.rows += batch.num_rows();
        let i = self.next % self.writers.len();
        self.next = self.next.wrapping_add(1);
        if self.writers[i].0.send(batch).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: its task holds the reason.
        let (_, task) = self.writers.swap_remove(i);
        Err(match task.await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => iceberg::Error::new(iceberg::ErrorKind::Unexpected, "a Parquet writer stopped early"),
            Err(e) => iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("a Parquet writer failed: {e}")),
        })
    }

    /// Finishes every file; the first error wins (the files of the others are tracked, so a
    /// failed load still deletes them).
    pub(crate) async fn close(self) -> iceberg::Result<Vec<WrittenFile>> {
        let mut files = Vec::new();
        let mut first_error = None;
        for (tx, task) in self.writers {
            drop(tx);
            match task.await {
                Ok(Ok(written)) => files.extend(written),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("a Parquet writer failed: {e}")));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(files),
        }
    }
}

/// Reads one data file back with the schema it was written with (ids resolve exactly),
/// projected to `field_ids` (all top-level fields when None).
pub(crate) fn read_file(
    table: &Table,
    file: &WrittenFile,
    field_ids: Option<Vec<i32>>,
) -> iceberg::Result<BoxStream<'static, iceberg::Result<RecordBatch>>> {
    let data_file = &file.data_file;
    let project = field_ids.unwrap_or_else(|| file.schema.as_struct().fields().iter().map(|f| f.id).collect());
    let task = FileScanTask::builder()
        .with_file_size_in_bytes(data_file.file_size_in_bytes())
        .with_start(0)
        .with_length(data_file.file_size_in_bytes())
        .with_record_count(Some(data_file.record_count()))
        .with_data_file_path(data_file.file_path().to_string())
        .with_data_file_format(data_file.file_format())
        .with_schema(file.schema.clone())
        .with_project_field_ids(project)
        .with_case_sensitive(true)
        .build();
    let reader = table.reader_builder().with_data_file_concurrency_limit(1).build();
    Ok(reader.read(Box::pin(stream::iter([Ok(task)])))?.stream())
}

/// Copies the rows of `file` that `keep` selects into `sink`, converted by name to the sink's
/// schema. A copy never drops a row silently: a row that does not fit is an error.
pub(crate) async fn copy_rows(
    table: &Table,
    file: &WrittenFile,
    sink: &mut ParquetSink,
    keep: &mut (dyn FnMut(&RecordBatch) -> Result<BooleanArray, String> + Send),
    ctx: &ErrorContext,
) -> Result<(), DestinationError> {
    let path = file.data_file.file_path();
    let mut batches = read_file(table, file, None).map_err(|e| ctx.io("read data file", &e))?;
    while let Some(batch) = batches.try_next().await.map_err(|e| ctx.io("read data file", &e))? {
        let mask = keep(&batch).map_err(|e| ctx.schema(e))?;
        let kept = filter_record_batch(&batch, &mask).map_err(|e| ctx.schema(format!("{path}: {e}")))?;
        let conformed = conform(&kept, sink.arrow_schema()).map_err(|e| ctx.schema(format!("{path}: {e}")))?;
        if conformed.rejected_rows > 0 {
            return Err(ctx.schema(format!("{path}: {} existing rows do not fit the new table schema", conformed.rejected_rows)));
        }
        sink.write(conformed.batch).await.map_err(|e| ctx.io("write data file", &e))?;
    }
    Ok(())
}

/// Deletes files, best effort: a failure to clean up must not hide the error that caused it.
pub(crate) async fn delete_files(file_io: &FileIO, paths: &[String]) {
    for path in paths {
        if let Err(e) = file_io.delete(path).await {
            tracing::debug!(path = %path, error = %e, "could not delete an orphan data file");
        }
    }
}
