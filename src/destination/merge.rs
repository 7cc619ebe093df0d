//! Merge (upsert by primary key) as copy-on-write, at the data level: the keys of the load,
//! deduplication within the load (the last row of a key wins), and rewriting the existing
//! files that hold replaced keys without those rows. Which manifests then carry which files is
//! the commit's business (`commit.rs`).

use std::collections::{HashMap, HashSet};

use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use iceberg::spec::{DataContentType, DataFile, SchemaRef};
use iceberg::table::Table;

use super::error::{DestinationError, ErrorContext};
use super::writer::{FileTracker, ParquetSink, WrittenFile, copy_rows, delete_files, read_file};

/// The keys a load wrote, in order: for each key, the ordinal of its last row.
#[derive(Debug)]
pub(crate) struct KeyIndex {
    columns: Vec<String>,
    last: HashMap<String, u64>,
    rows: u64,
}

impl KeyIndex {
    pub(crate) fn new(columns: Vec<String>) -> Self {
        KeyIndex { columns, last: HashMap::new(), rows: 0 }
    }

    pub(crate) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Records the keys of rows written, in write order.
    pub(crate) fn record(&mut self, keys: impl IntoIterator<Item = String>) {
        for key in keys {
            self.last.insert(key, self.rows);
            self.rows += 1;
        }
    }

    /// Rows that will remain after deduplication.
    pub(crate) fn distinct(&self) -> u64 {
        self.last.len() as u64
    }

    fn contains(&self, key: &str) -> bool {
        self.last.contains_key(key)
    }

    fn is_last(&self, key: &str, ordinal: u64) -> bool {
        self.last.get(key) == Some(&ordinal)
    }
}

/// The key of each row (None when a key column is null): the key columns' display values,
/// length-prefixed so that no two different keys collide.
pub(crate) fn row_keys(batch: &RecordBatch, columns: &[String]) -> Result<Vec<Option<String>>, String> {
    let options = FormatOptions::default();
    let arrays = columns
        .iter()
        .map(|c| batch.column_by_name(c).ok_or_else(|| format!("primary key column `{c}` is missing")))
        .collect::<Result<Vec<_>, _>>()?;
    let formatters =
        arrays.iter().map(|a| ArrayFormatter::try_new(a.as_ref(), &options)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let mut keys = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut key = Some(String::new());
        for (array, formatter) in arrays.iter().zip(&formatters) {
            if array.is_null(row) {
                key = None;
                break;
            }
            if let Some(k) = key.as_mut() {
                let value = formatter.value(row).to_string();
                k.push_str(&format!("{}:{value}", value.len()));
            }
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The load's files with duplicate keys removed (last row wins). Files with a duplicate are
/// rewritten (and the originals deleted); without duplicates nothing is read.
pub(crate) async fn deduplicate(
    table: &Table,
    files: Vec<WrittenFile>,
    index: &KeyIndex,
    tracker: &FileTracker,
    ctx: &ErrorContext,
) -> Result<Vec<WrittenFile>, DestinationError> {
    if index.distinct() == index.rows {
        return Ok(files);
    }
    let mut out = Vec::with_capacity(files.len());
    let mut ordinal = 0u64;
    for file in files {
        let mut sink = ParquetSink::new(table, file.schema.clone(), tracker).await.map_err(|e| ctx.io("write data file", &e))?;
        let mut keep = |batch: &RecordBatch| -> Result<BooleanArray, String> {
            let keys = row_keys(batch, index.columns())?;
            Ok(keys
                .iter()
                .map(|key| {
                    let keep = key.as_deref().is_some_and(|k| index.is_last(k, ordinal));
                    ordinal += 1;
                    keep
                })
                .collect::<Vec<bool>>()
                .into())
        };
        copy_rows(table, &file, &mut sink, &mut keep, ctx).await?;
        out.extend(sink.close().await.map_err(|e| ctx.io("write data file", &e))?);
        let old = vec![file.data_file.file_path().to_string()];
        delete_files(table.file_io(), &old).await;
        tracker.remove(&old);
    }
    Ok(out)
}

/// Existing files that held keys of the load, and their rewritten survivors.
#[derive(Debug, Default)]
pub(crate) struct CopyOnWrite {
    pub(crate) removed: Vec<DataFile>,
    pub(crate) added: Vec<WrittenFile>,
}

/// Rewrites, into `target`, every live data file of `base`'s current snapshot that holds a key
/// of the load, without those rows. Files without such keys are only read (key columns).
pub(crate) async fn rewrite_affected(
    base: &Table,
    target: &SchemaRef,
    index: &KeyIndex,
    tracker: &FileTracker,
    ctx: &ErrorContext,
) -> Result<CopyOnWrite, DestinationError> {
    let schema = base.metadata().current_schema().clone();
    let mut result = CopyOnWrite::default();
    // A key column the table does not have yet (this load adds it) is null in every
    // existing row, so no existing row can match a key of the load.
    let Some(key_ids) = index.columns().iter().map(|c| schema.field_id_by_name(c)).collect::<Option<Vec<i32>>>() else {
        return Ok(result);
    };
    let mut sink: Option<ParquetSink> = None;
    for data_file in live_data_files(base, ctx).await? {
        let file = WrittenFile { data_file, schema: schema.clone() };
        if !holds_keys(base, &file, &key_ids, index, ctx).await? {
            continue;
        }
        let sink = match sink.as_mut() {
            Some(sink) => sink,
            None => sink.insert(ParquetSink::new(base, target.clone(), tracker).await.map_err(|e| ctx.io("write data file", &e))?),
        };
        let mut keep = |batch: &RecordBatch| -> Result<BooleanArray, String> {
            let keys = row_keys(batch, index.columns())?;
            Ok(keys.iter().map(|k| !k.as_deref().is_some_and(|k| index.contains(k))).collect::<Vec<bool>>().into())
        };
        copy_rows(base, &file, sink, &mut keep, ctx).await?;
        result.removed.push(file.data_file);
    }
    if let Some(sink) = sink {
        result.added = sink.close().await.map_err(|e| ctx.io("write data file", &e))?;
    }
    Ok(result)
}

/// Live data files of the current snapshot. Row-level delete files are refused: rewriting
/// would have to apply them, and copy-on-write tables do not have them.
async fn live_data_files(base: &Table, ctx: &ErrorContext) -> Result<Vec<DataFile>, DestinationError> {
    let Some(snapshot) = base.metadata().current_snapshot() else { return Ok(Vec::new()) };
    let list = base.manifest_list_reader(snapshot).load().await.map_err(|e| ctx.io("read manifest list", &e))?;
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for manifest_file in list.entries() {
        let manifest = manifest_file.load_manifest(base.file_io()).await.map_err(|e| ctx.io("read manifest", &e))?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            if entry.content_type() != DataContentType::Data {
                return Err(ctx.unsupported("the table has row-level delete files; merge rewrites only tables without them"));
            }
            if seen.insert(entry.file_path().to_string()) {
                files.push(entry.data_file().clone());
            }
        }
    }
    Ok(files)
}

/// True when the file holds at least one key of the load (reads only the key columns).
async fn holds_keys(
    base: &Table,
    file: &WrittenFile,
    key_ids: &[i32],
    index: &KeyIndex,
    ctx: &ErrorContext,
) -> Result<bool, DestinationError> {
    let mut batches = read_file(base, file, Some(key_ids.to_vec())).map_err(|e| ctx.io("read data file", &e))?;
    while let Some(batch) = batches.try_next().await.map_err(|e| ctx.io("read data file", &e))? {
        let keys = row_keys(&batch, index.columns()).map_err(|e| ctx.schema(e))?;
        if keys.iter().flatten().any(|k| index.contains(k)) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    #[test]
    fn keys_are_unambiguous_and_null_aware() {
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(StringArray::from(vec![Some("1:2"), Some("1"), None])) as ArrayRef),
            ("b", Arc::new(Int64Array::from(vec![3, 23, 1])) as ArrayRef),
        ])
        .expect("batch");
        let keys = row_keys(&batch, &["a".to_string(), "b".to_string()]).expect("keys");
        assert_eq!(keys[0].as_deref(), Some("3:1:21:3"));
        assert_eq!(keys[1].as_deref(), Some("1:12:23"));
        assert_ne!(keys[0], keys[1]);
        assert_eq!(keys[2], None);
    }

    #[test]
    fn the_last_row_of_a_key_wins() {
        let mut index = KeyIndex::new(vec!["id".into()]);
        index.record(["a".to_string(), "b".to_string(), "a".to_string()]);
        assert_eq!(index.distinct(), 2);
        assert!(!index.is_last("a", 0));
        assert!(index.is_last("a", 2));
        assert!(index.is_last("b", 1));
    }
}
