//! Integration tests of `floe::destination` against real catalogs: the embedded SQLite catalog
//! (always) and SeaweedFS's S3 + Iceberg REST catalog (`FLOE_TEST_S3=1`). Tables are read back
//! with PyIceberg (`FLOE_TEST_PYTHON`, `tests/support/read_table.py`), a reader independent of
//! iceberg-rust. Without the services these tests print why and skip, unless
//! `FLOE_TEST_REQUIRE_SERVICES=1`, which turns a missing service into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields};
use floe::destination::{
    BoxError, CatalogConfig, Destination, DestinationError, LoadOutcome, LoadRequest, S3Config, SecretString, StorageConfig,
    WriteDisposition, state_cell,
};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Environment: services, catalogs, PyIceberg read-back

fn services_required() -> bool {
    std::env::var("FLOE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The PyIceberg interpreter, or None (test skipped) when it is not configured.
fn python() -> Option<String> {
    match std::env::var("FLOE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if services_required() => panic!("FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_PYTHON is not set"),
        _ => {
            eprintln!("skipping: FLOE_TEST_PYTHON is not set (PyIceberg read-back unavailable)");
            None
        }
    }
}

fn s3_available() -> bool {
    if std::env::var("FLOE_TEST_S3").is_ok_and(|v| v == "1") {
        return true;
    }
    assert!(!services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_S3 is not 1 (SeaweedFS missing)");
    eprintln!("skipping: FLOE_TEST_S3 is not 1 (SeaweedFS S3 + REST catalog unavailable)");
    false
}

fn read_table_script() -> PathBuf {
    std::env::var("FLOE_TEST_READ_TABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_table.py"))
}

/// A catalog to test against, with the arguments that let PyIceberg open it.
struct Env {
    catalog: CatalogConfig,
    storage: StorageConfig,
    reader_args: Vec<String>,
    /// Namespace unique to the test (REST catalogs are shared between tests).
    namespace: String,
    python: String,
    /// SQLite only: the temporary directory holding the catalog (and the local warehouse).
    dir: Option<TempDir>,
    /// True when the warehouse is under `dir`.
    local_warehouse: bool,
}

const S3_ENDPOINT: &str = "http://127.0.0.1:8333";
const REST_URI: &str = "http://127.0.0.1:8181";

fn sqlite_env() -> Option<Env> {
    let python = python()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("catalog").join("catalog.db");
    let warehouse = dir.path().join("warehouse");
    Some(Env {
        catalog: CatalogConfig::Sql {
            name: "floe".into(),
            uri: format!("sqlite://{}", db.display()),
            warehouse: warehouse.display().to_string(),
        },
        storage: StorageConfig::default(),
        reader_args: vec![
            "--catalog".into(),
            "sql".into(),
            "--uri".into(),
            format!("sqlite:///{}", db.display()),
            "--warehouse".into(),
            format!("file://{}", warehouse.display()),
        ],
        namespace: "raw".into(),
        python,
        dir: Some(dir),
        local_warehouse: true,
    })
}

fn rest_env() -> Option<Env> {
    if !s3_available() {
        return None;
    }
    let python = python()?;
    let endpoint = std::env::var("FLOE_TEST_S3_ENDPOINT").unwrap_or_else(|_| S3_ENDPOINT.into());
    let uri = std::env::var("FLOE_TEST_REST_URI").unwrap_or_else(|_| REST_URI.into());
    Some(Env {
        catalog: CatalogConfig::Rest {
            name: "floe".into(),
            uri: uri.clone(),
            warehouse: "warehouse".into(),
            credential: Some(SecretString::new("minioadmin:minioadmin")),
            token: None,
        },
        storage: StorageConfig { s3: Some(s3_config(&endpoint, "minioadmin")) },
        reader_args: [
            "--catalog",
            "rest",
            "--uri",
            &uri,
            "--warehouse",
            "warehouse",
            "--credential",
            "minioadmin:minioadmin",
            "--s3-endpoint",
            &endpoint,
            "--s3-access-key",
            "minioadmin",
            "--s3-secret-key",
            "minioadmin",
            "--s3-region",
            "us-east-1",
        ]
        .map(String::from)
        .to_vec(),
        namespace: format!("t{}", uuid::Uuid::now_v7().simple()),
        python,
        dir: None,
        local_warehouse: false,
    })
}

/// The embedded SQLite catalog with its warehouse on S3 (bucket `test-bucket`).
fn sqlite_on_s3_env() -> Option<Env> {
    if !s3_available() {
        return None;
    }
    let mut env = sqlite_env()?;
    let endpoint = std::env::var("FLOE_TEST_S3_ENDPOINT").unwrap_or_else(|_| S3_ENDPOINT.into());
    let warehouse = format!("s3://test-bucket/floe-{}", uuid::Uuid::now_v7().simple());
    let CatalogConfig::Sql { uri, .. } = &env.catalog else { return None };
    env.catalog = CatalogConfig::Sql { name: "floe".into(), uri: uri.clone(), warehouse: warehouse.clone() };
    env.storage = StorageConfig { s3: Some(s3_config(&endpoint, "minioadmin")) };
    let at = env.reader_args.iter().position(|a| a == "--warehouse").expect("--warehouse") + 1;
    env.reader_args[at] = warehouse;
    env.reader_args.extend(
        ["--s3-endpoint", &endpoint, "--s3-access-key", "minioadmin", "--s3-secret-key", "minioadmin", "--s3-region", "us-east-1"]
            .map(String::from),
    );
    // Parquet files are on S3, not under the temporary directory.
    env.local_warehouse = false;
    Some(env)
}

fn s3_config(endpoint: &str, secret: &str) -> S3Config {
    S3Config {
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        path_style_access: true,
        access_key_id: Some(SecretString::new("minioadmin")),
        secret_access_key: Some(SecretString::new(secret)),
    }
}

impl Env {
    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }

    async fn open(&self) -> Destination {
        Destination::open(&self.catalog, &self.storage).await.expect("open destination")
    }

    /// The table as PyIceberg sees it.
    fn read(&self, table: &str) -> Value {
        self.read_with(table, &[])
    }

    /// The table at an older snapshot, as PyIceberg sees it.
    fn read_snapshot(&self, table: &str, snapshot_id: i64) -> Value {
        self.read_with(table, &["--snapshot-id".to_string(), snapshot_id.to_string()])
    }

    fn read_with(&self, table: &str, extra: &[String]) -> Value {
        let output = Command::new(&self.python)
            .arg(read_table_script())
            .args(&self.reader_args)
            .args(["--table", table])
            .args(extra)
            .output()
            .expect("run read_table.py");
        assert!(output.status.success(), "read_table.py failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("read_table.py prints JSON")
    }

    /// Parquet files under the (local) warehouse.
    fn parquet_files(&self) -> Vec<PathBuf> {
        self.warehouse_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect()
    }

    /// Data files are named `floe-<uuid>-NNNNN.parquet` (unique per write) and zstd-compressed.
    fn assert_parquet_files_are_floe_zstd(&self) {
        let files = self.parquet_files();
        assert!(!files.is_empty());
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            assert!(name.starts_with("floe-") && name.len() > "floe-".len() + 36, "{name}");
            let output = Command::new(&self.python)
                .args([
                    "-c",
                    "import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.row_group(0).column(0).compression)",
                ])
                .arg(&file)
                .output()
                .expect("run python");
            assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ZSTD", "{name}");
        }
    }

    /// The staged manifest lists of replace and merge are deleted after the commit.
    fn assert_no_staged_files(&self) {
        if self.local_warehouse {
            let staged: Vec<PathBuf> = self
                .warehouse_files()
                .into_iter()
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("staged-")))
                .collect();
            assert!(staged.is_empty(), "{staged:?}");
        }
    }

    /// Every file under the (local) warehouse, sorted.
    fn warehouse_files(&self) -> Vec<PathBuf> {
        let dir = self.dir.as_ref().expect("local warehouse").path().join("warehouse");
        let mut files = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }
}

// ---------------------------------------------------------------------------------------------
// Batches and loads

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("batch")
}

fn people(ids: &[i64], names: &[&str]) -> RecordBatch {
    batch(vec![
        ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
        ("name", Arc::new(StringArray::from(names.to_vec())) as ArrayRef),
    ])
}

type Batches = BoxStream<'static, Result<RecordBatch, BoxError>>;

fn batches(list: Vec<RecordBatch>) -> Batches {
    stream::iter(list.into_iter().map(Ok)).boxed()
}

fn request(table: &str, disposition: WriteDisposition, load_id: &str) -> LoadRequest {
    LoadRequest { table: table.into(), disposition, load_id: load_id.into(), state_key: "entry".into(), state: state_cell(None) }
}

fn merge_on_id() -> WriteDisposition {
    WriteDisposition::Merge { primary_key: vec!["id".into()] }
}

async fn load(dest: &Destination, req: LoadRequest, list: Vec<RecordBatch>) -> LoadOutcome {
    dest.load(req, batches(list)).await.expect("load")
}

/// (id, name) pairs of the rows PyIceberg reads, sorted.
fn id_names(read: &Value) -> Vec<(i64, String)> {
    let mut rows: Vec<(i64, String)> = read["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["id"].as_i64().expect("id"), r["name"].as_str().unwrap_or("<null>").to_string()))
        .collect();
    rows.sort();
    rows
}

fn pairs(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(i, n)| (*i, n.to_string())).collect()
}

/// name → (type, required) of the table schema as PyIceberg reports it.
fn column_types(read: &Value) -> Vec<(String, String, bool)> {
    read["schema"]
        .as_array()
        .expect("schema")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().expect("name").to_string(),
                f["type"].as_str().expect("type").to_string(),
                f["required"].as_bool().expect("required"),
            )
        })
        .collect()
}

fn column(name: &str, ty: &str, required: bool) -> (String, String, bool) {
    (name.into(), ty.into(), required)
}

fn snapshots(read: &Value) -> u64 {
    read["snapshots"].as_u64().expect("snapshots")
}

fn summary<'a>(read: &'a Value, key: &str) -> &'a Value {
    &read["current_snapshot_summary"][key]
}

// ---------------------------------------------------------------------------------------------
// Dispositions, on both catalogs

async fn check_append(env: Env) {
    let dest = env.open().await;
    assert!(!format!("{dest:?}").contains("minioadmin"), "no secret in Debug: {dest:?}");
    let table = env.table("people");
    let first = load(&dest, request(&table, WriteDisposition::Append, "load-1"), vec![people(&[1, 2], &["ann", "bob"])]).await;
    assert!(first.table_created);
    assert_eq!(first.rows_loaded, 2);
    assert!(first.snapshot_id.is_some());
    // Reload through a fresh destination, as a second run would.
    let dest = env.open().await;
    let second =
        load(&dest, request(&table, WriteDisposition::Append, "load-2"), vec![people(&[3], &["cy"]), people(&[4], &["dee"])]).await;
    assert!(!second.table_created);
    assert_eq!(second.rows_loaded, 2);

    let read = env.read(&table);
    assert_eq!(id_names(&read), pairs(&[(1, "ann"), (2, "bob"), (3, "cy"), (4, "dee")]));
    assert_eq!(
        column_types(&read),
        [column("id", "long", false), column("name", "string", false), column("_floe_load_id", "string", false)]
    );
    assert_eq!(snapshots(&read), 2);
    assert_eq!(summary(&read, "floe.load-id"), "load-2");
    assert_eq!(read["current_snapshot_id"].as_i64(), second.snapshot_id);
    let load_ids: Vec<&str> = read["rows"].as_array().expect("rows").iter().map(|r| r["_floe_load_id"].as_str().expect("id")).collect();
    assert_eq!(load_ids, ["load-1", "load-1", "load-2", "load-2"]);
    if env.local_warehouse {
        env.assert_parquet_files_are_floe_zstd();
    }
}

async fn check_replace(env: Env) {
    let dest = env.open().await;
    let table = env.table("people");
    load(&dest, request(&table, WriteDisposition::Replace, "l1"), vec![people(&[1, 2, 3], &["a", "b", "c"])]).await;
    let dest = env.open().await;
    let out = load(&dest, request(&table, WriteDisposition::Replace, "l2"), vec![people(&[7], &["g"]), people(&[8], &["h"])]).await;
    assert_eq!(out.rows_loaded, 2);

    let read = env.read(&table);
    assert_eq!(id_names(&read), pairs(&[(7, "g"), (8, "h")]));
    assert_eq!(snapshots(&read), 2);
    assert_eq!(summary(&read, "total-records"), "2");
    assert_eq!(summary(&read, "deleted-records"), "3");
    assert_eq!(column_types(&read)[0], column("id", "long", false));
    // History is kept: the first snapshot still reads the first load. (Snapshots are listed
    // in no particular order: iceberg-rust keeps them in a map.)
    let current = read["current_snapshot_id"].as_i64();
    let first = read["snapshot_ids"].as_array().expect("ids").iter().filter_map(Value::as_i64).find(|id| Some(*id) != current);
    let first = first.expect("an older snapshot");
    let old = env.read_snapshot(&table, first);
    assert_eq!(id_names(&old), pairs(&[(1, "a"), (2, "b"), (3, "c")]));
    env.assert_no_staged_files();
}

async fn check_merge(env: Env) {
    let dest = env.open().await;
    let table = env.table("people");
    load(&dest, request(&table, merge_on_id(), "l1"), vec![people(&[1, 2, 3], &["a", "b", "c"])]).await;
    let dest = env.open().await;
    // Key 2 is updated, 4 is new and appears twice in the load: its last row wins. A row
    // without a key is rejected.
    let no_key = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![None::<i64>])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["nobody"])) as ArrayRef),
    ]);
    let out = load(&dest, request(&table, merge_on_id(), "l2"), vec![people(&[2, 4], &["B", "d"]), no_key, people(&[4], &["D"])]).await;
    assert_eq!(out.rows_loaded, 2);
    assert_eq!(out.rows_rejected, 1);
    assert_eq!(out.rejected_samples, ["column `id`: null in a required column"]);

    let read = env.read(&table);
    assert_eq!(id_names(&read), pairs(&[(1, "a"), (2, "B"), (3, "c"), (4, "D")]));
    assert_eq!(snapshots(&read), 2);
    assert_eq!(summary(&read, "total-records"), "4");
    // Copy-on-write: the one file holding key 2 was replaced by its survivors.
    assert_eq!(summary(&read, "deleted-data-files"), "1");
    assert_eq!(summary(&read, "deleted-records"), "3");
    assert_eq!(column_types(&read)[0], column("id", "long", true));
    assert_eq!(read["identifier_field_names"], json!(["id"]));

    // A third merge touching nothing existing is a plain append.
    load(&dest, request(&table, merge_on_id(), "l3"), vec![people(&[5], &["e"])]).await;
    let read = env.read(&table);
    assert_eq!(id_names(&read).len(), 5);
    assert_eq!(snapshots(&read), 3);
    assert_eq!(summary(&read, "deleted-data-files"), &Value::Null, "no file rewritten");
    env.assert_no_staged_files();
}

#[tokio::test]
async fn append_sqlite() {
    if let Some(env) = sqlite_env() {
        check_append(env).await;
    }
}

#[tokio::test]
async fn append_rest() {
    if let Some(env) = rest_env() {
        check_append(env).await;
    }
}

#[tokio::test]
async fn append_sqlite_catalog_s3_warehouse() {
    if let Some(env) = sqlite_on_s3_env() {
        check_append(env).await;
    }
}

#[tokio::test]
async fn replace_sqlite() {
    if let Some(env) = sqlite_env() {
        check_replace(env).await;
    }
}

#[tokio::test]
async fn replace_rest() {
    if let Some(env) = rest_env() {
        check_replace(env).await;
    }
}

#[tokio::test]
async fn merge_sqlite() {
    if let Some(env) = sqlite_env() {
        check_merge(env).await;
    }
}

#[tokio::test]
async fn merge_rest() {
    if let Some(env) = rest_env() {
        check_merge(env).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Schema: types, evolution, coercion

async fn check_evolution(env: Env) {
    let dest = env.open().await;
    let table = env.table("evolving");
    let first = batch(vec![
        ("id", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
    ]);
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![first]).await;
    // Second load: id widened to Int64 (beyond i32), columns reordered, an extra column.
    let second = batch(vec![
        ("email", Arc::new(StringArray::from(vec!["c@x"])) as ArrayRef),
        ("id", Arc::new(Int64Array::from(vec![5_000_000_000])) as ArrayRef),
        ("name", Arc::new(StringArray::from(vec!["c"])) as ArrayRef),
    ]);
    let out = load(&dest, request(&table, WriteDisposition::Append, "l2"), vec![second]).await;
    assert_eq!(out.schema_changes, ["added column `email` (string)"]);

    let read = env.read(&table);
    assert_eq!(
        column_types(&read),
        [
            column("id", "long", false),
            column("name", "string", false),
            column("_floe_load_id", "string", false),
            column("email", "string", false)
        ]
    );
    let rows: Vec<(i64, Value)> =
        read["rows"].as_array().expect("rows").iter().map(|r| (r["id"].as_i64().expect("id"), r["email"].clone())).collect();
    assert!(rows.contains(&(1, Value::Null)));
    assert!(rows.contains(&(2, Value::Null)));
    assert!(rows.contains(&(5_000_000_000, json!("c@x"))));
    assert_eq!(snapshots(&read), 2);
}

#[tokio::test]
async fn schema_evolution_sqlite() {
    if let Some(env) = sqlite_env() {
        check_evolution(env).await;
    }
}

#[tokio::test]
async fn schema_evolution_rest() {
    if let Some(env) = rest_env() {
        check_evolution(env).await;
    }
}

#[tokio::test]
async fn types_round_trip_and_schema_grows_mid_stream() {
    let Some(env) = sqlite_env() else { return };
    let dest = env.open().await;
    let table = env.table("typed");
    let first = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("score", Arc::new(Float32Array::from(vec![1.5])) as ArrayRef),
        ("at", Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_000_000]).with_timezone("UTC")) as ArrayRef),
        ("local", Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_000_000])) as ArrayRef),
        ("ok", Arc::new(BooleanArray::from(vec![true])) as ArrayRef),
        ("day", Arc::new(Date32Array::from(vec![19_753])) as ArrayRef),
        ("price", Arc::new(Decimal128Array::from(vec![1234]).with_precision_and_scale(10, 2).expect("decimal")) as ArrayRef),
        ("raw", Arc::new(BinaryArray::from(vec![b"\x01\xff".as_slice()])) as ArrayRef),
    ]);
    // The second batch brings a struct and a list: the table grows within the same load.
    let address = Fields::from(vec![Field::new("city", DataType::Utf8, true), Field::new("zip", DataType::Int32, true)]);
    let tags = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>([Some(vec![Some(1), Some(2)])]);
    let second = batch(vec![
        ("id", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
        (
            "address",
            Arc::new(StructArray::new(
                address,
                vec![Arc::new(StringArray::from(vec!["Oslo"])), Arc::new(Int32Array::from(vec![150]))],
                None,
            )) as ArrayRef,
        ),
        ("tags", Arc::new(tags) as ArrayRef),
    ]);
    let out = load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![first, second]).await;
    assert_eq!(out.rows_loaded, 2);
    assert!(out.table_created);
    // The table was created from the first batch; the second batch's columns are changes.
    assert_eq!(out.schema_changes, ["added column `address` (struct<city: string, zip: long>)", "added column `tags` (list<long>)"]);

    let read = env.read(&table);
    assert_eq!(snapshots(&read), 1);
    let types: Vec<(String, String)> = column_types(&read).into_iter().map(|(n, t, _)| (n, t)).collect();
    let expected = [
        ("id", "long"),
        ("score", "double"),
        ("at", "timestamptz"),
        ("local", "timestamp"),
        ("ok", "boolean"),
        ("day", "date"),
        ("price", "decimal(10, 2)"),
        ("raw", "binary"),
        ("_floe_load_id", "string"),
    ];
    assert_eq!(types[..expected.len()], expected.map(|(n, t)| (n.to_string(), t.to_string())));
    let type_of = |n: &str| types.iter().find(|c| c.0 == n).map(|c| c.1.clone()).unwrap_or_default();
    assert!(type_of("address").starts_with("struct<") && type_of("address").contains("zip: optional long"), "{}", type_of("address"));
    assert!(type_of("tags").starts_with("list<long>"), "{}", type_of("tags"));

    let rows = read["rows"].as_array().expect("rows");
    let row1 = rows.iter().find(|r| r["id"] == 1).expect("row 1");
    assert_eq!(row1["score"], 1.5);
    assert_eq!(row1["at"], "2023-11-14T22:13:20+00:00");
    assert_eq!(row1["local"], "2023-11-14T22:13:20");
    assert_eq!(row1["ok"], true);
    assert_eq!(row1["day"], "2024-01-31");
    assert_eq!(row1["price"], "12.34");
    assert_eq!(row1["raw"], "01ff");
    assert_eq!(row1["address"], Value::Null);
    let row2 = rows.iter().find(|r| r["id"] == 2).expect("row 2");
    assert_eq!(row2["address"], json!({"city": "Oslo", "zip": 150}));
    assert_eq!(row2["tags"], json!([1, 2]));
    assert_eq!(row2["score"], Value::Null);
}

#[tokio::test]
async fn uncoercible_values_are_rejected_and_counted() {
    let Some(env) = sqlite_env() else { return };
    let dest = env.open().await;
    let table = env.table("counts");
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![batch(vec![("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])])
        .await;
    let text = batch(vec![("n", Arc::new(StringArray::from(vec![Some("2"), Some("abc"), None, Some("4")])) as ArrayRef)]);
    let out = load(&dest, request(&table, WriteDisposition::Append, "l2"), vec![text]).await;
    assert_eq!(out.rows_loaded, 3);
    assert_eq!(out.rows_rejected, 1);
    assert_eq!(out.rejected_samples.len(), 1);
    assert!(out.rejected_samples[0].contains("`n`"), "{:?}", out.rejected_samples);
    assert!(!out.rejected_samples[0].contains("abc"), "samples carry no data values");

    let read = env.read(&table);
    let mut values: Vec<Value> = read["rows"].as_array().expect("rows").iter().map(|r| r["n"].clone()).collect();
    values.sort_by_key(|v| v.as_i64());
    assert_eq!(values, [Value::Null, json!(1), json!(2), json!(4)]);
}

// ---------------------------------------------------------------------------------------------
// Failures leave no trace

#[tokio::test]
async fn failed_commit_changes_nothing_and_leaves_no_files() {
    let Some(env) = sqlite_env() else { return };
    let table = env.table("people");
    let dest = env.open().await;
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![people(&[1], &["a"])]).await;
    let before = env.read(&table);
    let files_before = env.parquet_files();

    // A read-only connection to the same catalog: everything works until the commit.
    let CatalogConfig::Sql { name, uri, warehouse } = env.catalog.clone() else { unreachable!() };
    let read_only = CatalogConfig::Sql { name, uri: format!("{uri}?mode=ro"), warehouse };
    let ro = Destination::open(&read_only, &env.storage).await.expect("open read-only");
    let err =
        ro.load(request(&table, WriteDisposition::Append, "l2"), batches(vec![people(&[2], &["b"])])).await.expect_err("commit must fail");
    assert!(matches!(err, DestinationError::Catalog { .. }), "{err}");
    assert!(!err.is_transient());

    let after = env.read(&table);
    assert_eq!(after["current_snapshot_id"], before["current_snapshot_id"]);
    assert_eq!(id_names(&after), pairs(&[(1, "a")]));
    assert_eq!(env.parquet_files(), files_before, "the failed load's data files are deleted");

    // The same load through a writable catalog lands once.
    load(&dest, request(&table, WriteDisposition::Append, "l2"), vec![people(&[2], &["b"])]).await;
    assert_eq!(id_names(&env.read(&table)), pairs(&[(1, "a"), (2, "b")]));
}

#[derive(Debug)]
struct SourceFailure;

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the API went away")
    }
}

impl std::error::Error for SourceFailure {}

#[tokio::test]
async fn source_error_aborts_without_commit() {
    let Some(env) = sqlite_env() else { return };
    let table = env.table("people");
    let dest = env.open().await;
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![people(&[1], &["a"])]).await;
    let files_before = env.parquet_files();

    let failing: Batches = stream::iter([Ok(people(&[2], &["b"])), Err(Box::new(SourceFailure) as BoxError)]).boxed();
    let err = dest.load(request(&table, WriteDisposition::Replace, "l2"), failing).await.expect_err("source fails");
    let DestinationError::Source(source) = &err else { panic!("expected a source error, got {err}") };
    assert!(source.downcast_ref::<SourceFailure>().is_some(), "the stream's error is passed through untouched");

    let read = env.read(&table);
    assert_eq!(snapshots(&read), 1);
    assert_eq!(id_names(&read), pairs(&[(1, "a")]));
    assert_eq!(env.parquet_files(), files_before);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// A stream that, after its batches, lets another writer commit to the table: the load's
/// first commit then conflicts and must be redone on the new table version.
fn interleaved(env: &Env, table: &str, list: Vec<RecordBatch>, competitor: RecordBatch) -> Batches {
    let catalog = env.catalog.clone();
    let storage = env.storage.clone();
    let table = table.to_string();
    let competing = stream::once(async move {
        let other = Destination::open(&catalog, &storage).await.expect("open competitor");
        other.load(request(&table, WriteDisposition::Append, "competitor"), batches(vec![competitor])).await.expect("competitor load");
        None
    });
    stream::iter(list.into_iter().map(|b| Some(Ok(b)))).chain(competing).filter_map(|x| async move { x }).boxed()
}

async fn check_conflicts_are_retried(env: Env) {
    let table = env.table("people");
    let dest = env.open().await;
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![people(&[1, 2, 3], &["a", "b", "c"])]).await;

    let stream = interleaved(&env, &table, vec![people(&[10], &["x"])], people(&[4], &["d"]));
    dest.load(request(&table, WriteDisposition::Append, "l2"), stream).await.expect("append after conflict");
    assert_eq!(id_names(&env.read(&table)), pairs(&[(1, "a"), (2, "b"), (3, "c"), (4, "d"), (10, "x")]));

    let stream = interleaved(&env, &table, vec![people(&[2], &["B"])], people(&[5], &["e"]));
    dest.load(request(&table, merge_on_id(), "l3"), stream).await.expect("merge after conflict");
    assert_eq!(id_names(&env.read(&table)), pairs(&[(1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e"), (10, "x")]));

    let stream = interleaved(&env, &table, vec![people(&[9], &["z"])], people(&[6], &["f"]));
    dest.load(request(&table, WriteDisposition::Replace, "l4"), stream).await.expect("replace after conflict");
    let read = env.read(&table);
    assert_eq!(id_names(&read), pairs(&[(9, "z")]));
    // l1, competitor, l2, competitor, l3, competitor, l4
    assert_eq!(snapshots(&read), 7);
}

#[tokio::test]
async fn conflicts_are_retried_sqlite() {
    if let Some(env) = sqlite_env() {
        check_conflicts_are_retried(env).await;
    }
}

#[tokio::test]
async fn conflicts_are_retried_rest() {
    if let Some(env) = rest_env() {
        check_conflicts_are_retried(env).await;
    }
}

/// Another writer adds a column while this load (which adds another) is streaming: the column
/// ids this load predicted are taken, so its files are rewritten with the final ids.
async fn check_concurrent_schema_changes(env: Env) {
    let table = env.table("people");
    let dest = env.open().await;
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![people(&[1], &["a"])]).await;
    let with = |id: i64, name: &str, column: &str, value: &str| {
        batch(vec![
            ("id", Arc::new(Int64Array::from(vec![id])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec![name])) as ArrayRef),
            (column, Arc::new(StringArray::from(vec![value])) as ArrayRef),
        ])
    };
    let stream = interleaved(&env, &table, vec![with(2, "b", "ours", "x")], with(3, "c", "theirs", "y"));
    let out = dest.load(request(&table, WriteDisposition::Append, "l2"), stream).await.expect("load");
    assert_eq!(out.schema_changes, ["added column `ours` (string)"]);

    let read = env.read(&table);
    let mut rows: Vec<(i64, Value, Value)> = read["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["id"].as_i64().expect("id"), r["ours"].clone(), r["theirs"].clone()))
        .collect();
    rows.sort_by_key(|r| r.0);
    assert_eq!(rows, [(1, Value::Null, Value::Null), (2, json!("x"), Value::Null), (3, Value::Null, json!("y"))]);
}

#[tokio::test]
async fn concurrent_schema_changes_sqlite() {
    if let Some(env) = sqlite_env() {
        check_concurrent_schema_changes(env).await;
    }
}

#[tokio::test]
async fn concurrent_schema_changes_rest() {
    if let Some(env) = rest_env() {
        check_concurrent_schema_changes(env).await;
    }
}

async fn check_concurrent_appends(env: Env) {
    let table = env.table("events");
    let writers = (0..2i64).map(|w| {
        let (catalog, storage, table) = (env.catalog.clone(), env.storage.clone(), table.clone());
        tokio::spawn(async move {
            let dest = Destination::open(&catalog, &storage).await.expect("open");
            let list: Vec<RecordBatch> = (0..3).map(|b| people(&[w * 100 + b * 2, w * 100 + b * 2 + 1], &["p", "q"])).collect();
            dest.load(request(&table, WriteDisposition::Append, &format!("writer-{w}")), batches(list)).await
        })
    });
    for handle in writers.collect::<Vec<_>>() {
        let outcome = handle.await.expect("task").expect("concurrent load");
        assert_eq!(outcome.rows_loaded, 6);
    }
    let read = env.read(&table);
    let ids: Vec<i64> = id_names(&read).into_iter().map(|(id, _)| id).collect();
    let expected: Vec<i64> = (0..6).chain(100..106).collect();
    assert_eq!(ids, expected, "every row exactly once");
    assert_eq!(snapshots(&read), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_sqlite() {
    if let Some(env) = sqlite_env() {
        check_concurrent_appends(env).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_rest() {
    if let Some(env) = rest_env() {
        check_concurrent_appends(env).await;
    }
}

/// Set in the environment of the writer processes `concurrent_appends_from_two_processes_sqlite`
/// starts: `uri|warehouse|table|writer number`. Without it `child_writer` does nothing.
const CHILD_WRITER_ENV: &str = "FLOE_TEST_CHILD_WRITER";
const CHILD_ROUNDS: i64 = 5;

/// One writer process: appends `CHILD_ROUNDS` times to the table.
#[tokio::test]
async fn child_writer() {
    let Ok(spec) = std::env::var(CHILD_WRITER_ENV) else { return };
    let parts: Vec<&str> = spec.split('|').collect();
    let [uri, warehouse, table, writer] = parts[..] else { panic!("bad {CHILD_WRITER_ENV}: {spec}") };
    let writer: i64 = writer.parse().expect("writer number");
    let catalog = CatalogConfig::Sql { name: "floe".into(), uri: uri.into(), warehouse: warehouse.into() };
    let dest = Destination::open(&catalog, &StorageConfig::default()).await.expect("open");
    for round in 0..CHILD_ROUNDS {
        let id = writer * 1000 + round * 2;
        load(&dest, request(table, WriteDisposition::Append, &format!("w{writer}-{round}")), vec![people(&[id, id + 1], &["p", "q"])])
            .await;
    }
}

#[test]
fn concurrent_appends_from_two_processes_sqlite() {
    let Some(env) = sqlite_env() else { return };
    let CatalogConfig::Sql { uri, warehouse, .. } = &env.catalog else { unreachable!() };
    let table = env.table("events");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|writer| {
            Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(CHILD_WRITER_ENV, format!("{uri}|{warehouse}|{table}|{writer}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start writer process")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("writer process");
        assert!(output.status.success(), "writer failed: {}", String::from_utf8_lossy(&output.stdout));
    }
    let read = env.read(&table);
    let ids: Vec<i64> = id_names(&read).into_iter().map(|(id, _)| id).collect();
    let expected: Vec<i64> = (0..2 * CHILD_ROUNDS).chain(1000..1000 + 2 * CHILD_ROUNDS).collect();
    assert_eq!(ids, expected, "every row exactly once");
    assert_eq!(snapshots(&read), 2 * CHILD_ROUNDS as u64);
}

// ---------------------------------------------------------------------------------------------
// State and empty loads

async fn check_state(env: Env) {
    let table = env.table("people");
    let dest = env.open().await;
    assert_eq!(dest.read_state(&table, "entry").await.expect("read state"), None);

    let mut req = request(&table, WriteDisposition::Append, "l1");
    req.state = state_cell(Some(r#"{"cursor":"2024-01-01"}"#.into()));
    load(&dest, req, vec![people(&[1], &["a"])]).await;
    assert_eq!(dest.read_state(&table, "entry").await.expect("state").as_deref(), Some(r#"{"cursor":"2024-01-01"}"#));
    assert_eq!(dest.read_state(&table, "other").await.expect("state"), None);
    let read = env.read(&table);
    assert_eq!(summary(&read, "floe.state.entry"), r#"{"cursor":"2024-01-01"}"#);
    assert_eq!(read["properties"]["floe.state.entry"], r#"{"cursor":"2024-01-01"}"#);

    // No rows but a new state, known only when the stream ends: the state is committed alone.
    let req = request(&table, WriteDisposition::Append, "l2");
    let cell = req.state.clone();
    let late = stream::once(async move {
        *cell.lock().expect("state cell") = Some(r#"{"cursor":"2024-02-01"}"#.into());
        None
    })
    .filter_map(|x: Option<Result<RecordBatch, BoxError>>| async move { x })
    .boxed();
    let out = dest.load(req, late).await.expect("empty load");
    assert_eq!(out.rows_loaded, 0);
    assert!(out.snapshot_id.is_some());
    assert_eq!(dest.read_state(&table, "entry").await.expect("state").as_deref(), Some(r#"{"cursor":"2024-02-01"}"#));

    // A load without state keeps the last one.
    load(&dest, request(&table, WriteDisposition::Append, "l3"), vec![people(&[2], &["b"])]).await;
    assert_eq!(dest.read_state(&table, "entry").await.expect("state").as_deref(), Some(r#"{"cursor":"2024-02-01"}"#));
    let read = env.read(&table);
    assert_eq!(id_names(&read), pairs(&[(1, "a"), (2, "b")]));
    assert_eq!(snapshots(&read), 3);
}

#[tokio::test]
async fn state_round_trips_sqlite() {
    if let Some(env) = sqlite_env() {
        check_state(env).await;
    }
}

#[tokio::test]
async fn merge_sqlite_catalog_s3_warehouse() {
    if let Some(env) = sqlite_on_s3_env() {
        check_merge(env).await;
    }
}

#[tokio::test]
async fn state_round_trips_rest() {
    if let Some(env) = rest_env() {
        check_state(env).await;
    }
}

#[tokio::test]
async fn empty_loads() {
    let Some(env) = sqlite_env() else { return };
    let dest = env.open().await;
    let missing = env.table("missing");
    for disposition in [WriteDisposition::Append, WriteDisposition::Replace, merge_on_id()] {
        let out = dest.load(request(&missing, disposition, "l0"), batches(vec![])).await.expect("empty load");
        assert_eq!(out, LoadOutcome::default(), "nothing happens to a missing table");
    }
    assert_eq!(env.read(&missing)["exists"], false);

    let table = env.table("people");
    load(&dest, request(&table, WriteDisposition::Append, "l1"), vec![people(&[1], &["a"])]).await;
    let out = dest.load(request(&table, WriteDisposition::Append, "l2"), batches(vec![])).await.expect("empty append");
    assert_eq!(out.snapshot_id, None, "an empty append without state commits nothing");
    let out = dest.load(request(&table, WriteDisposition::Replace, "l3"), batches(vec![])).await.expect("empty replace");
    assert!(out.snapshot_id.is_some());
    let read = env.read(&table);
    assert_eq!(read["rows"], json!([]));
    assert_eq!(snapshots(&read), 2);
}

// ---------------------------------------------------------------------------------------------
// Configuration and errors

#[test]
fn secrets_never_show_in_debug() {
    let catalog = CatalogConfig::Rest {
        name: "floe".into(),
        uri: REST_URI.into(),
        warehouse: "warehouse".into(),
        credential: Some(SecretString::new("client:very-secret-credential")),
        token: Some(SecretString::new("very-secret-token")),
    };
    let storage = StorageConfig { s3: Some(s3_config(S3_ENDPOINT, "very-secret-key")) };
    let text = format!("{catalog:?} {storage:?}");
    assert!(!text.contains("very-secret"), "{text}");
}

#[tokio::test]
async fn wrong_credentials_are_auth_errors_without_secrets() {
    if !s3_available() {
        return;
    }
    let catalog = CatalogConfig::Rest {
        name: "floe".into(),
        uri: std::env::var("FLOE_TEST_REST_URI").unwrap_or_else(|_| REST_URI.into()),
        warehouse: "warehouse".into(),
        credential: Some(SecretString::new("minioadmin:wrong-secret-value")),
        token: None,
    };
    let err = Destination::open(&catalog, &StorageConfig::default()).await.expect_err("wrong credential");
    assert!(err.is_auth(), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-secret-value"));
}

#[tokio::test]
async fn unreachable_catalog_is_transient() {
    let catalog = CatalogConfig::Rest {
        name: "floe".into(),
        uri: "http://127.0.0.1:9".into(),
        warehouse: "warehouse".into(),
        credential: None,
        token: Some(SecretString::new("token-value")),
    };
    let err = Destination::open(&catalog, &StorageConfig::default()).await.expect_err("nothing listens on port 9");
    assert!(err.is_transient(), "{err}");
    assert!(!format!("{err:?}").contains("token-value"));
}

#[tokio::test]
async fn invalid_table_names_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = CatalogConfig::Sql {
        name: "floe".into(),
        uri: format!("sqlite://{}", dir.path().join("catalog.db").display()),
        warehouse: dir.path().join("warehouse").display().to_string(),
    };
    let dest = Destination::open(&catalog, &StorageConfig::default()).await.expect("open");
    let err = dest.load(request("no_namespace", WriteDisposition::Append, "l"), batches(vec![])).await.expect_err("invalid");
    assert!(matches!(err, DestinationError::InvalidTable(_)), "{err}");
}
