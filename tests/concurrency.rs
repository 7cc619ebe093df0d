//! Concurrency: N floe processes at once, loading into the same table and into different
//! tables of one catalog (the embedded SQLite catalog, and the REST catalog on SeaweedFS).
//! Every run succeeds or fails cleanly (a category, never a panic or exit 1); a failed entry
//! rerun afterwards completes; no row is lost or doubled.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};

use common::Project;
use serde_json::Value;

const PROCS: usize = 6;
const ROWS: usize = 500;

/// Entries `e0..eN`: even ones load `ns.shared`, odd ones their own `ns.own_<i>`; each reads
/// its own folder of files with globally unique ids.
fn spec(ns: &str) -> String {
    let mut s = String::from("ingestion:\n");
    for i in 0..PROCS {
        let dest = if i % 2 == 0 { format!("{ns}.shared") } else { format!("{ns}.own_{i}") };
        s.push_str(&format!(
            "  - name: e{i}\n    type: dlt\n    destination: {dest}\n    dlt:\n      source: filesystem\n      config: {{bucket_url: data/e{i}, file_glob: \"*.jsonl\"}}\n"
        ));
    }
    s
}

fn write_data(p: &Project, round: usize) {
    for i in 0..PROCS {
        let mut text = String::new();
        for r in 0..ROWS {
            let id = (round * PROCS + i) * ROWS + r;
            text.push_str(&format!("{{\"id\": {id}, \"entry\": \"e{i}\", \"round\": {round}}}\n"));
        }
        p.write(&format!("data/e{i}/round-{round}.jsonl"), text);
    }
}

/// Start every entry in its own process at once; returns (entry, exit code, stdout, stderr).
fn run_all_at_once(p: &Project) -> Vec<(usize, i32, String, String)> {
    let children: Vec<_> = (0..PROCS)
        .map(|i| {
            let child = Command::new(env!("CARGO_BIN_EXE_floe"))
                .args(["ingest", "run", "--output", "json", "--select", &format!("e{i}")])
                .current_dir(p.dir.path())
                .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn floe");
            (i, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(i, c)| {
            let out = c.wait_with_output().expect("wait");
            (i, out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// Two rounds of N concurrent processes; failures must be clean and a rerun completes them.
fn hammer(p: &Project, read: &dyn Fn(&str) -> Value, ns: &str) {
    let mut failures = 0;
    for round in 0..2 {
        write_data(p, round);
        for (i, code, stdout, stderr) in run_all_at_once(p) {
            assert!(code != 1 && !stderr.contains("panicked"), "e{i}: internal error\n{stderr}");
            let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("e{i}: no JSON report ({e}): {stdout}\n{stderr}"));
            if code != 0 {
                failures += 1;
                let r = &report["results"][0];
                assert!(r["error"]["category"].is_string() && r["error"]["message"].is_string(), "e{i}: unclean failure {r}");
                eprintln!("[concurrency] e{i} failed cleanly ({code}): {} {}", r["error"]["code"], r["error"]["message"]);
                let rerun = p.run(&["--select", &format!("e{i}")]);
                assert_eq!(rerun.code, 0, "e{i}: rerun: {}\n{}", rerun.stdout, rerun.stderr);
            }
        }
    }
    // A last sequential run finds nothing new.
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for i in 0..PROCS {
        assert_eq!(run.result(&format!("e{i}"))["rows_loaded"], 0, "e{i} reloaded files");
    }
    let mut tables: Vec<(String, Vec<usize>)> = vec![(format!("{ns}.shared"), (0..PROCS).step_by(2).collect())];
    tables.extend((1..PROCS).step_by(2).map(|i| (format!("{ns}.own_{i}"), vec![i])));
    let mut total = 0;
    for (table, entries) in tables {
        let t = read(&table);
        let ids: Vec<i64> = common::column(&t, "id").iter().filter_map(Value::as_i64).collect();
        let distinct: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "{table}: doubled rows");
        let expected: HashSet<i64> =
            (0..2).flat_map(|round| entries.iter().flat_map(move |i| (0..ROWS).map(move |r| ((round * PROCS + i) * ROWS + r) as i64))).collect();
        assert_eq!(distinct, expected, "{table}: rows lost or foreign");
        total += ids.len();
    }
    // No load was killed, so no file is an orphan: the maintenance command (dry run) must see
    // every data file as referenced, on local storage and on S3 alike.
    let run = p.floe(&["maintenance", "remove-orphans", "--older-than", "0", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.report();
    let tables = report["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), PROCS / 2 + 1, "{report}");
    for t in tables {
        assert_eq!(t["orphan_files"], serde_json::json!([]), "{report}");
        assert!(t["referenced_data_files"].as_u64().is_some_and(|n| n >= 2), "{report}");
    }
    eprintln!("[concurrency] {PROCS} processes × 2 rounds: {total} rows checked, {failures} clean failures rerun, 0 mismatches");
}

#[test]
fn processes_share_the_embedded_sqlite_catalog() {
    let Some(py) = common::python() else { return };
    let p = Project::new("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 3, initial_delay_seconds: 0.05, max_delay_seconds: 0.2}}\n", &spec("raw"));
    hammer(&p, &|table| p.read(&py, table), "raw");
}

#[test]
fn processes_share_the_rest_catalog() {
    let Some(py) = common::python() else { return };
    if !common::s3_available() {
        return;
    }
    let uri = std::env::var("FLOE_TEST_REST_URI").unwrap_or_else(|_| "http://127.0.0.1:8181".into());
    let ns = format!("conc_{}", uuid::Uuid::now_v7().simple());
    let manifest = format!(
        "plugins:\n  ingestion: {{type: dlt, retry: {{max_attempts: 3, initial_delay_seconds: 0.05, max_delay_seconds: 0.2}}}}\n  catalog:\n    type: rest\n    config: {{name: floe, uri: \"{uri}\", warehouse: warehouse, credential_secret_ref: catalog-credentials}}\n  storage:\n    type: s3\n    config: {{endpoint: \"{}\", region: us-east-1, path_style_access: true}}\n    connection_secret_ref: s3-credentials\n",
        common::S3_ENDPOINT
    );
    let mut p = Project::new(&manifest, &spec(&ns));
    p.env.push(("FLOE_SECRET_CATALOG_CREDENTIALS".into(), "minioadmin:minioadmin".into()));
    p.env.push(("FLOE_SECRET_S3_CREDENTIALS".into(), "minioadmin:minioadmin".into()));
    let read = |table: &str| {
        common::read_table(&py, &[
            "--catalog", "rest", "--uri", &uri, "--warehouse", "warehouse", "--credential", "minioadmin:minioadmin",
            "--s3-endpoint", common::S3_ENDPOINT, "--s3-access-key", "minioadmin", "--s3-secret-key", "minioadmin", "--s3-region", "us-east-1",
            "--table", table,
        ])
    };
    hammer(&p, &read, &ns);
}
