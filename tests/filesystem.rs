//! The filesystem source end to end: files → `floe ingest run` → Iceberg → PyIceberg.

mod common;

use std::sync::Arc;

use arrow_array::{BooleanArray, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::{column, types, Project};
use serde_json::{json, Value};

const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n";

fn spec(entries: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("ingestion:\n");
    for (name, folder, glob) in entries {
        s.push_str(&format!(
            "  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: filesystem\n      config: {{bucket_url: {folder}, file_glob: \"{glob}\"}}\n"
        ));
    }
    s
}

fn parquet_bytes() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("score", DataType::Float32, true),
        Field::new("ok", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            Arc::new(Float32Array::from(vec![Some(0.5), Some(1.25), None])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ],
    )
    .expect("batch");
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

const JSONL: &str = r#"{"id": 1, "name": "ada", "price": 1.5, "ts": "2024-01-01T00:00:00Z", "tags": ["a", "b"], "meta": {"k": 1, "v": "x"}}
{"id": 2, "name": "grace", "price": 2, "ts": "2024-01-02T12:30:00Z", "tags": [], "meta": {"k": 2, "v": null}}
"#;

const CSV: &str = "id,name,amount,day\n1,ada,1.5,2024-01-02\n2,grace,,2024-01-03\n";

fn sorted_by_id(table: &Value) -> Vec<Value> {
    let mut rows = table["rows"].as_array().expect("rows").clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows.iter().map(|r| {
        let mut r = r.clone();
        r.as_object_mut().map(|o| o.remove("_floe_load_id"));
        r
    }).collect()
}

#[test]
fn every_format_loads_exactly_and_only_new_files_load_again() {
    let Some(py) = common::python() else { return };
    let p = Project::new(MANIFEST, &spec(&[("events", "data/json", "*.jsonl"), ("orders", "data/csv", "*.csv"), ("scores", "data/pq", "*.parquet")]));
    p.write("data/json/a.jsonl", JSONL);
    p.write("data/csv/a.csv", CSV);
    p.write("data/pq/a.parquet", parquet_bytes());

    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    assert_eq!(report["success"], true);
    assert_eq!(run.result("events")["rows_loaded"], 2);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
    assert_eq!(run.result("scores")["rows_loaded"], 3);
    assert_eq!(run.result("events")["tables_created"], json!(["raw.events"]));
    let load_id = report["run_id"].as_str().expect("run id").to_string();

    let events = p.read(&py, "raw.events");
    let t = types(&events);
    assert_eq!(t["id"], "long");
    assert_eq!(t["price"], "double");
    assert_eq!(t["ts"], "timestamptz");
    assert_eq!(t["tags"], "list<string>");
    assert!(t["meta"].starts_with("struct<"), "{}", t["meta"]);
    assert_eq!(t["_floe_load_id"], "string");
    assert_eq!(column(&events, "_floe_load_id"), vec![json!(load_id), json!(load_id)]);
    assert_eq!(
        sorted_by_id(&events),
        vec![
            json!({"id": 1, "name": "ada", "price": 1.5, "ts": "2024-01-01T00:00:00+00:00", "tags": ["a", "b"], "meta": {"k": 1, "v": "x"}}),
            json!({"id": 2, "name": "grace", "price": 2.0, "ts": "2024-01-02T12:30:00+00:00", "tags": [], "meta": {"k": 2, "v": null}}),
        ]
    );

    let orders = p.read(&py, "raw.orders");
    let t = types(&orders);
    assert_eq!((t["id"].as_str(), t["amount"].as_str(), t["day"].as_str(), t["name"].as_str()), ("long", "double", "date", "string"));
    assert_eq!(
        sorted_by_id(&orders),
        vec![json!({"id": 1, "name": "ada", "amount": 1.5, "day": "2024-01-02"}), json!({"id": 2, "name": "grace", "amount": null, "day": "2024-01-03"})]
    );

    let scores = p.read(&py, "raw.scores");
    let t = types(&scores);
    assert_eq!((t["id"].as_str(), t["score"].as_str(), t["ok"].as_str()), ("long", "double", "boolean"));
    assert_eq!(
        sorted_by_id(&scores),
        vec![
            json!({"id": 1, "label": "x", "score": 0.5, "ok": true}),
            json!({"id": 2, "label": null, "score": 1.25, "ok": false}),
            json!({"id": 3, "label": "z", "score": null, "ok": null}),
        ]
    );

    // A second run loads only the new file.
    p.write("data/json/b.jsonl", "{\"id\": 3, \"name\": \"linus\", \"extra\": true}\n");
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.result("events")["rows_loaded"], 1);
    assert_eq!(run.result("orders")["rows_loaded"], 0);
    assert_eq!(run.result("scores")["rows_loaded"], 0);
    let events = p.read(&py, "raw.events");
    assert_eq!(events["rows"].as_array().expect("rows").len(), 3);
    // The new field is a new column; old rows read null in it.
    let extra: Vec<Value> = sorted_by_id(&events).iter().map(|r| r["extra"].clone()).collect();
    assert_eq!(extra, vec![Value::Null, Value::Null, json!(true)]);
    // `ingest state` shows the remembered files.
    let state = p.floe(&["ingest", "state", "events", "--output", "json"]);
    assert_eq!(state.code, 0, "{}", state.stderr);
    let files = serde_json::from_str::<Value>(&state.stdout).expect("json")["events"]["source"]["files"].clone();
    assert!(files.get("a.jsonl").is_some() && files.get("b.jsonl").is_some(), "{files}");
    // --full-refresh forgets them.
    let run = p.run(&["--full-refresh", "--select", "orders"]);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
}

#[test]
fn a_corrupt_file_is_named_and_the_rest_loads() {
    let Some(py) = common::python() else { return };
    let p = Project::new(MANIFEST, &spec(&[("scores", "data", "*.parquet")]));
    p.write("data/good.parquet", parquet_bytes());
    p.write("data/broken.parquet", b"PAR1 this is not parquet");
    let run = p.run(&[]);
    assert_eq!(run.code, 65, "{}\n{}", run.stdout, run.stderr);
    let r = run.result("scores");
    assert_eq!(r["rows_loaded"], 3);
    assert_eq!(r["error"]["category"], "PARTIAL");
    assert_eq!(r["error"]["code"], "PARTIAL_LOAD");
    assert!(r["error"]["details"]["samples"].to_string().contains("broken.parquet"), "{r}");
    assert_eq!(p.read(&py, "raw.scores")["rows"].as_array().expect("rows").len(), 3);

    // The broken file was not remembered: once fixed, the next run loads it.
    p.write("data/broken.parquet", parquet_bytes());
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.result("scores")["rows_loaded"], 3);
}

#[test]
fn rejected_records_are_counted_not_nulled() {
    let Some(py) = common::python() else { return };
    let p = Project::new(MANIFEST, &spec(&[("events", "data", "*.jsonl")]));
    p.write("data/a.jsonl", "{\"id\": 1}\n{\"id\": 2,\n{\"id\": 3}\n");
    let run = p.run(&[]);
    assert_eq!(run.code, 65, "{}", run.stderr);
    let r = run.result("events");
    assert_eq!((r["rows_loaded"].as_i64(), r["error"]["failed_records"].as_i64()), (Some(2), Some(1)));
    assert!(r["error"]["details"]["samples"].to_string().contains("a.jsonl:2"), "{r}");
    assert_eq!(column(&p.read(&py, "raw.events"), "id").len(), 2);
}

#[test]
fn a_missing_folder_is_permanent_source_not_found() {
    let p = Project::new(MANIFEST, &spec(&[("events", "no/such/folder", "*.jsonl")]));
    let run = p.run(&[]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    let r = run.result("events");
    assert_eq!(r["error"]["code"], "SOURCE_NOT_FOUND");
    assert_eq!(r["attempts"], 1);
}

#[test]
fn files_load_from_s3() {
    let Some(py) = common::python() else { return };
    if !common::s3_available() {
        return;
    }
    let prefix = format!("floe-fs-{}", uuid::Uuid::now_v7());
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let b = opendal::services::S3::default().bucket("test-bucket").endpoint(common::S3_ENDPOINT).region("us-east-1").access_key_id("minioadmin").secret_access_key("minioadmin");
        let op = opendal::Operator::new(b).expect("op").finish();
        op.write(&format!("{prefix}/json/a.jsonl"), JSONL.as_bytes().to_vec()).await.expect("put");
        op.write(&format!("{prefix}/csv/a.csv"), CSV.as_bytes().to_vec()).await.expect("put");
        op.write(&format!("{prefix}/pq/sub/a.parquet"), parquet_bytes()).await.expect("put");
    });
    let manifest = format!(
        "{MANIFEST}  storage:\n    type: s3\n    config: {{endpoint: \"{}\", region: us-east-1, path_style_access: true}}\n    connection_secret_ref: s3-credentials\n",
        common::S3_ENDPOINT
    )
    .replace("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n  storage", "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n  storage");
    let spec = spec(&[
        ("events", &format!("s3://test-bucket/{prefix}/json"), "*.jsonl"),
        ("orders", &format!("s3://test-bucket/{prefix}/csv"), "*.csv"),
        ("scores", &format!("s3://test-bucket/{prefix}/pq"), "**/*.parquet"),
    ]);
    let mut p = Project::new(&manifest, &spec);
    p.env.push(("FLOE_SECRET_S3_CREDENTIALS".into(), "minioadmin:minioadmin".into()));
    // The embedded catalog keeps its warehouse local; only the source is on S3.
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("minioadmin") && !run.stderr.contains("minioadmin"));
    assert_eq!(sorted_by_id(&p.read(&py, "raw.events")).len(), 2);
    assert_eq!(sorted_by_id(&p.read(&py, "raw.orders"))[1]["name"], "grace");
    assert_eq!(sorted_by_id(&p.read(&py, "raw.scores")).len(), 3);
    let run = p.run(&[]);
    assert_eq!(run.result("events")["rows_loaded"], 0, "second run reloaded S3 files");
}
