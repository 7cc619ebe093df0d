//! Crash safety: incremental loads killed with SIGKILL at random moments.
//!
//! For each source kind (files, a paginated REST API, PostgreSQL) the harness adds new source
//! rows, starts `floe ingest run`, kills it after a random delay between 0 and the typical run
//! time (so kills land during start-up, fetch, encode, upload and commit), and after every kill
//! reads the table with PyIceberg: it must open at a consistent snapshot (every row a source
//! row, no row twice). After the last kill a clean run must leave every source row present
//! exactly once. Then the Parquet files the killed runs left behind (not referenced by any
//! snapshot) are counted, removed with `floe maintenance remove-orphans`, and counted again.
//!
//! `FLOE_CRASH_RUNS` (default 50) sets the kills per source kind, `FLOE_CRASH_SEED` the seed
//! (printed, so a failure can be replayed).

mod common;
#[path = "support/http/mod.rs"]
mod http;

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Project;
use serde_json::{json, Value};

const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n";

fn runs() -> usize {
    std::env::var("FLOE_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

fn seed(kind: &str) -> u64 {
    let s = std::env::var("FLOE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(42)
    });
    eprintln!("[crash:{kind}] seed {s} (replay with FLOE_CRASH_SEED={s})");
    s
}

/// splitmix64: small, seeded, good enough for choosing delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// One long-lived PyIceberg process answering one JSON request per line, so each check after
/// a kill costs a table scan, not an interpreter start.
const READER: &str = r#"
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError, NoSuchNamespaceError
for line in sys.stdin:
    req = json.loads(line)
    try:
        cat = SqlCatalog("floe", uri=req["uri"], warehouse=req["warehouse"], init_catalog_tables="false")
        try:
            t = cat.load_table(req["table"])
        except (NoSuchTableError, NoSuchNamespaceError):
            print(json.dumps({"exists": False}), flush=True)
            continue
        arrow = t.scan().to_arrow()
        ids = arrow.column("id").to_pylist() if "id" in arrow.column_names else []
        files = set()
        for snap in t.snapshots():
            for m in snap.manifests(t.io):
                for e in m.fetch_manifest_entry(t.io, discard_deleted=False):
                    files.add(e.data_file.file_path)
        snap = t.current_snapshot()
        print(json.dumps({"exists": True, "ids": ids, "rows": arrow.num_rows, "files": sorted(files),
                          "snapshot_id": snap.snapshot_id if snap else None,
                          "snapshots": len(t.snapshots())}), flush=True)
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
"#;

struct Reader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reader {
    fn start(python: &str) -> Reader {
        let mut child = Command::new(python).arg("-c").arg(READER).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start PyIceberg reader");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Reader { child, stdin, stdout }
    }

    /// The table of the project's embedded catalog.
    fn read(&mut self, p: &Project, table: &str) -> Value {
        let root = p.path(".floe");
        let req = json!({"uri": format!("sqlite:///{}", root.join("catalog.db").display()), "warehouse": format!("file://{}", root.join("warehouse").display()), "table": table});
        writeln!(self.stdin, "{req}").expect("reader stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reader stdout");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("reader answered {line:?}: {e}"));
        assert!(v.get("error").is_none(), "PyIceberg could not read {table}: {}", v["error"]);
        v
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_floe(p: &Project) -> Child {
    Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(["ingest", "run", "--output", "json"])
        .current_dir(p.dir.path())
        .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn floe")
}

/// Ids of a read-back table, checked: all distinct, all source ids.
fn check_consistent(kind: &str, i: usize, table: &Value, source: &BTreeSet<i64>) -> usize {
    if table["exists"] == false {
        return 0;
    }
    let ids: Vec<i64> = table["ids"].as_array().expect("ids").iter().map(|v| v.as_i64().expect("id is a long")).collect();
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "[crash:{kind}] kill {i}: {} duplicated rows", ids.len() - distinct.len());
    let unknown: Vec<_> = distinct.iter().filter(|id| !source.contains(id)).take(5).collect();
    assert!(unknown.is_empty(), "[crash:{kind}] kill {i}: rows that are not source rows: {unknown:?}");
    assert_eq!(table["rows"].as_u64(), Some(ids.len() as u64));
    ids.len()
}

/// Parquet files under `dir`.
fn parquet_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.insert(path.display().to_string());
            }
        }
    }
    out
}

/// Parquet files of the warehouse that no snapshot of `table` references.
fn orphans(p: &Project, table: &Value) -> BTreeSet<String> {
    let referenced: HashSet<String> =
        table["files"].as_array().into_iter().flatten().filter_map(|f| f.as_str()).map(|f| f.trim_start_matches("file://").to_string()).collect();
    parquet_files(&p.path(".floe/warehouse")).into_iter().filter(|f| !referenced.contains(f)).collect()
}

/// How a source kind grows between kills.
trait Source {
    /// Add `n` rows (ids continue where the previous call stopped).
    fn add(&mut self, n: usize);
    /// Every id the source holds.
    fn ids(&self) -> BTreeSet<i64>;
}

struct Stats {
    killed: usize,
    finished_before_kill: usize,
    rows_checked: usize,
}

/// The harness: kill `runs()` loads at random moments, check after each, then a clean run.
fn crash_loop(kind: &str, p: &Project, table: &str, source: &mut dyn Source, rows_per_round: usize) {
    let Some(py) = common::python() else { return };
    let mut reader = Reader::start(&py);
    let mut rng = Rng(seed(kind));
    let started = Instant::now();

    // A clean first run measures the typical run time (floe start-up, fetch, write, commit).
    source.add(rows_per_round);
    let t0 = Instant::now();
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "[crash:{kind}] first run: {}\n{}", run.stdout, run.stderr);
    let typical = t0.elapsed();
    eprintln!("[crash:{kind}] typical run {typical:?}");

    let mut stats = Stats { killed: 0, finished_before_kill: 0, rows_checked: 0 };
    let mut typical = typical;
    for i in 0..runs() {
        source.add(rows_per_round);
        // Every tenth round runs to completion: the table moves on between kills, and the kill
        // window follows the run time (which grows while killed runs leave rows pending).
        if i % 10 == 9 {
            let t0 = Instant::now();
            let run = p.run(&[]);
            assert_eq!(run.code, 0, "[crash:{kind}] clean round {i}: {}\n{}", run.stdout, run.stderr);
            typical = t0.elapsed();
            let t = reader.read(p, table);
            assert_eq!(check_consistent(kind, i, &t, &source.ids()), source.ids().len(), "[crash:{kind}] clean round {i} lost rows");
            source.add(rows_per_round);
        }
        let delay = Duration::from_micros(rng.below(typical.as_micros() as u64 + 1));
        let mut child = spawn_floe(p);
        std::thread::sleep(delay);
        match child.try_wait().expect("try_wait") {
            Some(_) => stats.finished_before_kill += 1,
            None => {
                child.kill().expect("SIGKILL floe");
                stats.killed += 1;
            }
        }
        child.wait().expect("wait");
        let t = reader.read(p, table);
        stats.rows_checked += check_consistent(kind, i, &t, &source.ids());
    }

    // A clean run completes: every source row exactly once.
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "[crash:{kind}] final run: {}\n{}", run.stdout, run.stderr);
    let t = reader.read(p, table);
    let expected = source.ids();
    let n = check_consistent(kind, usize::MAX, &t, &expected);
    let got: BTreeSet<i64> = t["ids"].as_array().expect("ids").iter().filter_map(Value::as_i64).collect();
    let missing: Vec<_> = expected.difference(&got).take(10).collect();
    assert!(missing.is_empty(), "[crash:{kind}] rows lost: {missing:?} …");
    assert_eq!(n, expected.len(), "[crash:{kind}] row count");
    stats.rows_checked += n;

    // Orphans: files written by killed runs that no snapshot references; the maintenance
    // command removes them (and nothing a snapshot references).
    let before = orphans(p, &t);
    let run = p.floe(&["maintenance", "remove-orphans", "--older-than", "0", "--output", "json"]);
    assert_eq!(run.code, 0, "[crash:{kind}] maintenance: {}\n{}", run.stdout, run.stderr);
    let report = run.report();
    let after_table = reader.read(p, table);
    let after = orphans(p, &after_table);
    assert!(after.is_empty(), "[crash:{kind}] orphans left after maintenance: {after:?}");
    assert_eq!(after_table["rows"], t["rows"], "maintenance changed the table");
    let removed = report["tables"][0]["removed_data_files"].as_u64().unwrap_or(0);
    assert_eq!(removed as usize, before.len(), "[crash:{kind}] the command's count: {report}");
    // And the table still loads incrementally afterwards.
    source.add(3);
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = reader.read(p, table);
    assert_eq!(check_consistent(kind, usize::MAX, &t, &source.ids()), source.ids().len());

    eprintln!(
        "[crash:{kind}] runs {} killed {} finished-before-kill {} rows checked {} source rows {} mismatches 0 orphan files {} → {} in {:?}",
        runs(),
        stats.killed,
        stats.finished_before_kill,
        stats.rows_checked,
        expected.len(),
        before.len(),
        after.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Files

struct Files<'a> {
    p: &'a Project,
    next: i64,
    file: usize,
}

impl Source for Files<'_> {
    fn add(&mut self, n: usize) {
        let mut text = String::new();
        for _ in 0..n {
            let id = self.next;
            self.next += 1;
            text.push_str(&format!("{{\"id\": {id}, \"name\": \"row-{id}\", \"amount\": {}.25, \"tags\": [\"a\", \"b{}\"]}}\n", id % 97, id % 7));
        }
        self.p.write(&format!("data/part-{:05}.jsonl", self.file), text);
        self.file += 1;
    }

    fn ids(&self) -> BTreeSet<i64> {
        (1..self.next).collect()
    }
}

#[test]
fn files_survive_sigkill_at_random_moments() {
    let spec = "ingestion:\n  - name: files\n    type: dlt\n    destination: raw.files\n    dlt:\n      source: filesystem\n      config: {bucket_url: data, file_glob: \"*.jsonl\"}\n";
    let p = Project::new(MANIFEST, spec);
    let mut src = Files { p: &p, next: 1, file: 0 };
    crash_loop("files", &p, "raw.files", &mut src, 3000);
}

// ---------------------------------------------------------------------------------------------
// REST: a paginated API serving rows with id > since, 50 per page, a json_link to the next page.

struct Rest {
    max: Arc<AtomicU64>,
}

impl Source for Rest {
    fn add(&mut self, n: usize) {
        self.max.fetch_add(n as u64, Ordering::SeqCst);
    }

    fn ids(&self) -> BTreeSet<i64> {
        (1..=self.max.load(Ordering::SeqCst) as i64).collect()
    }
}

#[test]
fn rest_api_survives_sigkill_at_random_moments() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let max = Arc::new(AtomicU64::new(0));
    let m = max.clone();
    let server = rt.block_on(http::Server::start(move |req: &http::Req| {
        let since: u64 = req.param("since").and_then(|s| s.parse().ok()).unwrap_or(0);
        let after: u64 = req.param("after").and_then(|s| s.parse().ok()).unwrap_or(since);
        let top = m.load(Ordering::SeqCst);
        let end = (after + 50).min(top);
        let items: Vec<Value> = ((after + 1)..=end).map(|id| json!({"id": id, "name": format!("item-{id}"), "score": id as f64 / 3.0})).collect();
        let next = if end < top { Value::String(format!("{}/items?since={since}&after={end}", req.base)) } else { Value::Null };
        http::Resp::json(json!({"items": items, "next": next})).delay(Duration::from_millis(2))
    }));
    let spec = format!(
        "ingestion:\n  - name: api\n    type: dlt\n    destination: raw.api\n    dlt:\n      source: rest_api\n      incremental: {{cursor_column: id, initial_value: 0}}\n      config:\n        client: {{base_url: \"{}\", paginator: {{type: json_link, next_url_path: next}}}}\n        resources: [{{name: items, endpoint: {{path: items, data_selector: items, params: {{since: \"{{incremental.start_value}}\"}}}}}}]\n",
        server.base
    );
    let p = Project::new(MANIFEST, &spec);
    let mut src = Rest { max };
    crash_loop("rest", &p, "raw.api", &mut src, 1000);
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a table that grows between kills; cursor `id`, pushed down.

struct Pg {
    url: String,
    table: String,
    rt: tokio::runtime::Runtime,
    next: i64,
}

impl Source for Pg {
    fn add(&mut self, n: usize) {
        let (from, to) = (self.next, self.next + n as i64 - 1);
        self.next = to + 1;
        let sql = format!(
            "INSERT INTO {} SELECT g, 'name-' || g, g * 1.5, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series({from}, {to}) g",
            self.table
        );
        self.rt.block_on(pg_exec(&self.url, &sql));
    }

    fn ids(&self) -> BTreeSet<i64> {
        (1..self.next).collect()
    }
}

async fn pg_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn pg_url() -> Option<String> {
    match std::env::var("FLOE_TEST_PG_URL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(!common::services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_PG_URL is not set");
            eprintln!("skipping: FLOE_TEST_PG_URL is not set");
            None
        }
    }
}

#[test]
fn postgres_survives_sigkill_at_random_moments() {
    let Some(url) = pg_url() else { return };
    let table = format!("crash_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(pg_exec(&url, &format!("CREATE TABLE {table} (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz)")));
    let spec = format!(
        "ingestion:\n  - name: pg\n    type: dlt\n    destination: raw.pg\n    dlt:\n      source: sql_database\n      incremental: {{cursor_column: id, initial_value: 0}}\n      config: {{credentials: \"{url}\", table: {table}, chunk_size: 500}}\n"
    );
    let p = Project::new(MANIFEST, &spec);
    let mut src = Pg { url: url.clone(), table: table.clone(), rt, next: 1 };
    crash_loop("postgres", &p, "raw.pg", &mut src, 3000);
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(pg_exec(&url, &format!("DROP TABLE {table}")));
}

// ---------------------------------------------------------------------------------------------
// The maintenance command on its own: an unreferenced file is kept while young, listed by a
// dry run, removed when old enough; referenced files and the rows stay.

#[test]
fn remove_orphans_deletes_only_old_unreferenced_files() {
    let Some(py) = common::python() else { return };
    let mut reader = Reader::start(&py);
    let spec = "ingestion:\n  - name: files\n    type: dlt\n    destination: raw.files\n    dlt:\n      source: filesystem\n      config: {bucket_url: data, file_glob: \"*.jsonl\"}\n";
    let p = Project::new(MANIFEST, spec);
    // Before any load: no catalog, nothing to do, nothing created.
    let run = p.floe(&["maintenance", "remove-orphans", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.report()["tables"], json!([]));
    assert!(!p.path(".floe").exists());

    p.write("data/a.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    assert_eq!(p.run(&[]).code, 0);
    let t = reader.read(&p, "raw.files");
    let referenced = parquet_files(&p.path(".floe/warehouse"));
    assert_eq!(referenced.len(), 1);
    let data_dir = Path::new(referenced.iter().next().expect("one file")).parent().expect("data dir").to_path_buf();
    let orphan = data_dir.join("floe-killed-00000.parquet");
    std::fs::write(&orphan, b"PAR1 half written").expect("orphan");

    // Young: kept.
    let run = p.floe(&["maintenance", "remove-orphans", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = &run.report()["tables"][0];
    assert_eq!((r["referenced_data_files"].as_u64(), r["young_orphans"].as_u64(), r["removed_data_files"].as_u64()), (Some(1), Some(1), Some(0)), "{r}");
    assert!(orphan.exists());
    // Dry run: listed, kept.
    let run = p.floe(&["maintenance", "remove-orphans", "--older-than", "0", "--dry-run", "--output", "json"]);
    let r = &run.report()["tables"][0];
    assert_eq!(r["orphan_files"].as_array().map(Vec::len), Some(1), "{r}");
    assert!(r["orphan_files"][0].as_str().is_some_and(|f| f.ends_with("floe-killed-00000.parquet")));
    assert!(orphan.exists());
    // Old enough: removed; the table reads the same.
    let run = p.floe(&["maintenance", "remove-orphans", "--older-than", "0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("raw.files"), "{}", run.stdout);
    assert!(!orphan.exists());
    assert_eq!(orphans(&p, &reader.read(&p, "raw.files")), BTreeSet::new());
    assert_eq!(reader.read(&p, "raw.files")["rows"], t["rows"]);
    assert_eq!(parquet_files(&p.path(".floe/warehouse")), referenced);
    // Bad threshold: usage error.
    assert_eq!(p.floe(&["maintenance", "remove-orphans", "--older-than", "-1"]).code, 2);
}
