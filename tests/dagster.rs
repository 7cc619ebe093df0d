//! `floe compile --dagster-definitions`: the generated module loaded and run by Dagster itself
//! (from PyPI, `FLOE_TEST_DAGSTER_PYTHON`), tables read back with PyIceberg, and the
//! rendering's determinism and string escaping.

mod common;
#[path = "support/airbyte/mod.rs"]
mod airbyte_double;
#[path = "support/http/mod.rs"]
mod http;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{column, Project};
use http::{Req, Resp, Server};
use serde_json::{json, Value};

/// The venv python with `dagster`, or None (skip) when the services are not required.
fn dagster_python() -> Option<String> {
    match std::env::var("FLOE_TEST_DAGSTER_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(!common::services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_DAGSTER_PYTHON is not set");
            eprintln!("skipping: FLOE_TEST_DAGSTER_PYTHON is not set (run through `bash tests/support/services.sh test`)");
            None
        }
    }
}

const MODULE: &str = "defs/definitions.py";

const JSONL: &str = "{\"id\": 1, \"name\": \"ada\"}\n{\"id\": 2, \"name\": \"grace\"}\n{\"id\": 3, \"name\": \"linus\"}\n";

/// Dagster, run on a project folder with its own `DAGSTER_HOME` (telemetry off) and `FLOE_BIN`.
struct Dagster<'a> {
    python: String,
    project: &'a Project,
    home: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl<'a> Dagster<'a> {
    fn new(python: String, project: &'a Project) -> Dagster<'a> {
        let home = project.path("dagster-home");
        std::fs::create_dir_all(&home).expect("dagster home");
        std::fs::write(home.join("dagster.yaml"), "telemetry:\n  enabled: false\n").expect("dagster.yaml");
        Dagster { python, project, home }
    }

    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(&self.python)
            .args(args)
            .current_dir(self.project.dir.path())
            .envs(self.project.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FLOE_BIN", env!("CARGO_BIN_EXE_floe"))
            .env("DAGSTER_HOME", &self.home)
            .env_remove("RUST_LOG")
            .output()
            .expect("run dagster python");
        Out { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }

    fn check(&self, args: &[&str]) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dagster/dagster_check.py");
        let mut all = vec![script.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.code, 0, "dagster_check.py {args:?} failed:\n{}\n{}", out.stdout, tail(&out.stderr));
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("dagster_check.py printed no JSON ({e}):\n{}\n{}", out.stdout, tail(&out.stderr)))
    }

    /// `dagster definitions validate -f MODULE`.
    fn validate(&self) {
        let out = self.run(&["-m", "dagster", "definitions", "validate", "-f", MODULE]);
        assert_eq!(out.code, 0, "dagster definitions validate failed:\n{}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.contains("Validation successful") || out.stdout.contains("Validation successful"), "{}\n{}", out.stdout, out.stderr);
    }

    fn describe(&self) -> Vec<Value> {
        self.check(&["describe", MODULE]).as_array().cloned().expect("asset list")
    }

    fn materialize(&self, key: &str) -> Value {
        self.check(&["materialize", MODULE, key])
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn compile(p: &Project) {
    let run = p.floe(&["compile", "--dagster-definitions", MODULE]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn asset<'v>(assets: &'v [Value], key: &[&str]) -> &'v Value {
    assets.iter().find(|a| a["key"] == json!(key)).unwrap_or_else(|| panic!("no asset {key:?} in {assets:?}"))
}

#[test]
fn dagster_materialises_floe_assets_and_fails_with_the_category() {
    let Some(dagster_py) = dagster_python() else { return };
    let Some(py) = common::python() else { return };
    let double = airbyte_double::Double::start("airbyte-canary-token");
    double.plan_next_job(airbyte_double::JobPlan::new(&["pending", "running", "succeeded"]).rows(42));
    let manifest = format!(
        "plugins:\n  ingestion:\n    - type: dlt\n      retry: {{max_attempts: 1}}\n    - type: airbyte\n      config: {{workspace_url: \"{}\", connection_secret_ref: airbyte-token, poll_interval_seconds: 0.05, timeout_seconds: 60}}\n      retry: {{max_attempts: 1}}\n",
        double.public_url()
    );
    let spec = format!(
        "ingestion:\n\
         \x20 - name: events\n    type: dlt\n    description: Events from the \"landing\" folder\n    destination: bronze.events\n    dlt:\n      source: filesystem\n      config: {{bucket_url: data, file_glob: \"*.jsonl\"}}\n\
         \x20 - name: lost\n    type: dlt\n    destination: bronze.lost\n    dlt:\n      source: filesystem\n      config: {{bucket_url: missing_folder, file_glob: \"*.jsonl\"}}\n\
         \x20 - name: accounts\n    type: airbyte\n    destination: bronze.accounts\n    airbyte: {{connection_id: \"{}\"}}\n",
        airbyte_double::CONNECTION
    );
    let mut p = Project::new(&manifest, &spec);
    p.env.push(("FLOE_SECRET_AIRBYTE_TOKEN".into(), "airbyte-canary-token".into()));
    p.write("data/a.jsonl", JSONL);
    compile(&p);
    let module = std::fs::read_to_string(p.path(MODULE)).expect("module");
    assert!(module.starts_with("# Generated by `floe compile --dagster-definitions`. DO NOT EDIT"), "{module}");
    assert!(module.contains("ARTIFACT = \"../target/compiled_artifacts.json\""), "the artifact path must be relative to the module");

    let dagster = Dagster::new(dagster_py, &p);
    dagster.validate();

    // The asset graph: every entry, Airbyte included, keyed by its destination.
    let assets = dagster.describe();
    assert_eq!(assets.len(), 3, "{assets:?}");
    let events = asset(&assets, &["bronze", "events"]);
    assert_eq!(events["group"], "ingestion");
    assert_eq!(events["kinds"], json!(["dlt", "iceberg"]));
    assert_eq!(events["description"], "Events from the \"landing\" folder");
    assert_eq!(events["metadata"]["floe/entry"], "events");
    let accounts = asset(&assets, &["bronze", "accounts"]);
    assert_eq!((&accounts["group"], &accounts["kinds"]), (&json!("ingestion"), &json!(["airbyte", "iceberg"])));
    assert!(accounts["description"].as_str().expect("description").contains(airbyte_double::CONNECTION), "{accounts}");
    let lost = asset(&assets, &["bronze", "lost"]);
    assert!(lost["description"].as_str().expect("description").contains("bronze.lost"), "{lost}");

    // The embedded engine: a materialisation with floe's report as metadata.
    let run = dagster.materialize("bronze/events");
    assert_eq!(run["success"], true, "{run}");
    let m = &run["materializations"].as_array().expect("materializations")[..];
    assert_eq!(m.len(), 1, "{run}");
    assert_eq!(m[0]["asset_key"], json!(["bronze", "events"]));
    let meta = &m[0]["metadata"];
    assert_eq!(meta["rows_loaded"], 3, "{meta}");
    assert_eq!(meta["attempts"], 1, "{meta}");
    assert!(meta["duration_seconds"].as_f64().is_some_and(|d| d >= 0.0), "{meta}");
    assert_eq!(meta["tables_created"], json!(["bronze.events"]), "{meta}");
    let snapshot = meta["snapshot_id"].as_i64().unwrap_or_else(|| panic!("no snapshot_id in {meta}"));
    assert_eq!(m[0]["data_version"], snapshot.to_string());

    // The table, read by PyIceberg: the rows, committed in the snapshot Dagster recorded.
    let table = p.read(&py, "bronze.events");
    assert_eq!(table["exists"], true, "{table}");
    let mut names: Vec<String> = column(&table, "name").iter().map(|v| v.as_str().unwrap_or("").to_string()).collect();
    names.sort();
    assert_eq!(names, ["ada", "grace", "linus"]);
    assert_eq!(table["current_snapshot_id"].as_i64(), Some(snapshot));
    assert_eq!(column(&table, "_floe_load_id")[0], meta["floe_run_id"]);

    // A PERMANENT failure: a failed step whose message and metadata carry the category.
    let run = dagster.materialize("bronze/lost");
    assert_eq!(run["success"], false, "{run}");
    assert!(run["materializations"].as_array().expect("materializations").is_empty(), "{run}");
    assert!(run["retries"].as_array().expect("retries").is_empty(), "PERMANENT must not be retried: {run}");
    let failures = run["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{run}");
    let f = &failures[0];
    assert_eq!(f["step_key"], "bronze__lost");
    let message = f["message"].as_str().expect("message");
    assert!(message.contains("PERMANENT") && message.contains("SOURCE_NOT_FOUND") && message.contains("missing_folder"), "{message}");
    assert_eq!((&f["metadata"]["category"], &f["metadata"]["code"], &f["metadata"]["exit_code"]), (&json!("PERMANENT"), &json!("SOURCE_NOT_FOUND"), &json!(69)), "{f}");
    assert_eq!(p.read(&py, "bronze.lost")["exists"], false);

    // Airbyte entries run the same way; the job is attached.
    let run = dagster.materialize("bronze/accounts");
    assert_eq!(run["success"], true, "{run}");
    let meta = &run["materializations"][0]["metadata"];
    assert_eq!(meta["rows_loaded"], 42, "{meta}");
    assert_eq!(meta["airbyte_job"]["job_id"].as_i64(), double.job_ids().first().copied(), "{meta}");
    assert!(!run.to_string().contains("airbyte-canary-token"));
}

/// A rate limit that outlasts floe's own retries becomes a Dagster retry that waits the
/// `retry_after_seconds` floe reports; the entry then loads.
#[test]
fn transient_failures_become_dagster_retries_that_honour_retry_after() {
    let Some(dagster_py) = dagster_python() else { return };
    let Some(py) = common::python() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let count = AtomicUsize::new(0);
    let server = rt.block_on(Server::start(move |_: &Req| {
        if count.fetch_add(1, Ordering::SeqCst) < 2 {
            Resp::text(429, "slow down").header("Retry-After", "1")
        } else {
            Resp::json(json!([{"id": 1}, {"id": 2}]))
        }
    }));
    let manifest = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1, initial_delay_seconds: 30}}\n";
    let spec = format!(
        "ingestion:\n  - name: items\n    type: dlt\n    destination: bronze.items\n    dlt:\n      source: rest_api\n      config:\n        client: {{base_url: \"{}\", request_max_attempts: 1}}\n        resources: [{{name: items, endpoint: {{path: items, paginator: single_page}}}}]\n",
        server.base
    );
    let p = Project::new(manifest, &spec);
    compile(&p);
    let dagster = Dagster::new(dagster_py, &p);
    let run = dagster.materialize("bronze/items");
    assert_eq!(run["success"], true, "{run}");
    let retries = run["retries"].as_array().expect("retries");
    assert_eq!(retries.len(), 2, "{run}");
    for r in retries {
        // retry_after_seconds (1), not the policy's 30 s backoff.
        assert_eq!(r["seconds_to_wait"].as_f64(), Some(1.0), "{r}");
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    for pair in reqs.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(950), "Dagster did not wait retry_after_seconds");
    }
    assert_eq!(run["materializations"][0]["metadata"]["rows_loaded"], 2, "{run}");
    assert_eq!(p.read(&py, "bronze.items")["rows"].as_array().map(Vec::len), Some(2));
    drop(server);
}

/// A failure with no report (an artifact that cannot be read) fails with floe's stderr.
#[test]
fn a_run_without_a_report_fails_with_the_stderr_tail() {
    let Some(dagster_py) = dagster_python() else { return };
    let p = Project::new("plugins:\n  ingestion: {type: dlt}\n", "ingestion:\n  - name: events\n    type: dlt\n    destination: bronze.events\n    dlt:\n      source: filesystem\n      config: {bucket_url: data}\n");
    compile(&p);
    std::fs::write(p.path("target/compiled_artifacts.json"), "{not json").expect("break the artifact");
    let run = Dagster::new(dagster_py, &p).materialize("bronze/events");
    assert_eq!(run["success"], false, "{run}");
    let f = &run["failures"][0];
    let message = f["message"].as_str().expect("message");
    assert!(message.contains("exited with 78 (CONFIGURATION)") && message.contains("not valid JSON"), "{message}");
    assert_eq!(f["metadata"]["category"], "CONFIGURATION", "{f}");
    assert!(run["retries"].as_array().expect("retries").is_empty(), "{run}");
}

// ------------------------------------------------------------------------------------------
// Rendering, without Dagster

const TRICKY: &str = "say \"hi\" \\ it's\nline two \u{e9}\u{1f600} \u{2028}end";

fn tricky_project() -> (tempfile::TempDir, floe::artifact::Artifact) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("manifest.yaml"), "plugins:\n  ingestion: {type: dlt}\n").expect("manifest");
    let spec = json!({"ingestion": [
        {"name": "events", "type": "dlt", "description": TRICKY, "destination": "bronze.events",
         "dlt": {"source": "filesystem", "config": {"bucket_url": "data"}}},
        {"name": "plain", "type": "dlt", "destination": "bronze.plain",
         "dlt": {"source": "filesystem", "config": {"bucket_url": "data"}}}]});
    // JSON is YAML: every string arrives exactly as written.
    std::fs::write(dir.path().join("floe.yaml"), spec.to_string()).expect("spec");
    let project = floe::config::load(&dir.path().join("manifest.yaml"), &dir.path().join("floe.yaml")).unwrap_or_else(|e| panic!("{}", e.render()));
    let artifact = floe::artifact::compile(&project, &dir.path().join("target"));
    (dir, artifact)
}

#[test]
fn render_is_deterministic_and_escapes_strings() {
    let (dir, artifact) = tricky_project();
    let a = dir.path().join("target/compiled_artifacts.json");
    let m = dir.path().join("orchestration/defs.py");
    let first = floe::dagster::render(&artifact, &a, &m);
    assert_eq!(first, floe::dagster::render(&artifact, &a, &m), "same artifact, same module");
    assert_eq!(first, floe::dagster::render(&artifact.clone(), Path::new("target/compiled_artifacts.json"), Path::new("orchestration/defs.py")), "no absolute path in the module");
    assert!(first.contains(r#""description": "say \"hi\" \\ it's\nline two \xe9\U0001f600 \u2028end","#), "{first}");
    assert!(first.contains("ARTIFACT = \"../target/compiled_artifacts.json\""), "{first}");
    assert!(first.contains("defs = dg.Definitions(assets=assets)"), "{first}");
    assert!(first.is_ascii(), "the module is ASCII whatever the spec holds");
    assert!(!first.contains(&dir.path().display().to_string()), "no absolute path in the module");

    // Python reads the literals back exactly (any python 3; no dagster needed for `ast`).
    let python = std::env::var("FLOE_TEST_DAGSTER_PYTHON").ok().or_else(|| std::env::var("FLOE_TEST_PYTHON").ok()).filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    std::fs::create_dir_all(m.parent().expect("parent")).expect("mkdir");
    std::fs::write(&m, &first).expect("module");
    let script = "import ast, json, sys\n\
                  tree = ast.parse(open(sys.argv[1], encoding='utf-8').read())\n\
                  values = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets\n\
                            if isinstance(t, ast.Name) and t.id in ('ENTRIES', 'ARTIFACT')}\n\
                  json.dump(values, sys.stdout)\n";
    match Command::new(&python).args(["-c", script]).arg(&m).output() {
        Ok(out) if out.status.success() => {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(v["ENTRIES"][0]["description"], TRICKY);
            assert_eq!(v["ENTRIES"][0]["key"], json!(["bronze", "events"]));
            assert_eq!(v["ENTRIES"][0]["kinds"], json!(["dlt", "iceberg"]));
            assert!(v["ENTRIES"][1]["description"].as_str().is_some_and(|d| d.contains("bronze.plain")), "{v}");
            assert_eq!(v["ARTIFACT"], "../target/compiled_artifacts.json");
        }
        Ok(out) => panic!("python could not read the module back:\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            assert!(!common::services_required(), "no python to check the module with: {e}");
            eprintln!("skipping the Python read-back: {python}: {e}");
        }
    }
}

#[test]
fn compiling_twice_writes_the_same_module() {
    let p = Project::new("plugins:\n  ingestion: {type: dlt}\n", "ingestion:\n  - name: events\n    type: dlt\n    destination: bronze.events\n    description: \"it's \\\"quoted\\\"\"\n    dlt:\n      source: filesystem\n      config: {bucket_url: data}\n");
    compile(&p);
    let first = std::fs::read(p.path(MODULE)).expect("module");
    compile(&p);
    assert_eq!(first, std::fs::read(p.path(MODULE)).expect("module"));
    assert!(String::from_utf8_lossy(&first).contains(r#""description": "it's \"quoted\"","#));
}
