//! Observability end to end: the `floe` binary's OpenLineage events (START, RUNNING on retry,
//! COMPLETE, FAIL, ABORT) over the http, file and console transports, each validated against
//! the official OpenLineage JSON Schema vendored in `fixtures/openlineage/`; Prometheus metrics
//! in a node_exporter textfile (checked by `promtool`) and on a real Pushgateway; secrets
//! never in events or metrics; and receivers that hang, refuse or fail changing neither the
//! exit code nor the data, nor delaying the run by more than a few seconds.

mod common;
#[path = "support/http/mod.rs"]
mod http;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Project, Run};
use serde_json::{json, Value};

const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PRODUCER: &str = concat!("https://github.com/floe-dev/floe/tree/", env!("CARGO_PKG_VERSION"));
const LINEAGE_PATH: &str = "/api/v1/lineage";
const API_KEY: &str = "canary-lineage-key-5b1f";
const DB_PASSWORD: &str = "canaryDbPassw0rd77";
/// Observer::finish waits at most this long (src/observe/mod.rs FINISH_BUDGET).
const FINISH_BUDGET: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

// ---------------------------------------------------------------------------------------------
// schema validation against the vendored official files

struct Schemas {
    registry: jsonschema::Registry<'static>,
    /// `$id` → the schema document.
    documents: HashMap<String, Value>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Schemas {
    fn load() -> Schemas {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openlineage");
        let mut files = Vec::new();
        for dir in [root.clone(), root.join("facets"), root.join("floe")] {
            for e in std::fs::read_dir(&dir).expect("fixtures/openlineage") {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "json") {
                    files.push(p);
                }
            }
        }
        let mut documents = HashMap::new();
        for p in files {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read schema")).expect("schema JSON");
            let id = v["$id"].as_str().unwrap_or_else(|| panic!("{} has no $id", p.display())).to_string();
            documents.insert(id, v);
        }
        assert!(documents.contains_key("https://openlineage.io/spec/2-0-2/OpenLineage.json"), "the official spec is vendored");
        let registry = jsonschema::Registry::new().extend(documents.clone()).expect("registry").prepare().expect("registry");
        Schemas { registry, documents, validators: Mutex::new(HashMap::new()) }
    }

    fn validator(&self, url: &str) -> Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().expect("cache");
        if let Some(v) = cache.get(url) {
            return v.clone();
        }
        let v = Arc::new(
            jsonschema::options()
                .with_registry(&self.registry)
                .should_validate_formats(true)
                .build(&json!({"$ref": url}))
                .unwrap_or_else(|e| panic!("cannot build a validator for {url}: {e}")),
        );
        cache.insert(url.to_string(), v.clone());
        v
    }

    fn errors(&self, url: &str, instance: &Value) -> Vec<String> {
        self.validator(url).iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
    }

    fn check(&self, url: &str, instance: &Value, what: &str) {
        let errors = self.errors(url, instance);
        assert!(errors.is_empty(), "{what} is not valid against {url}:\n{}\n{instance:#}", errors.join("\n"));
    }

    /// The event against RunEvent, and every facet against its own schema (found by its
    /// `_schemaURL`, which must name a vendored file declaring a facet of that key).
    fn validate(&self, event: &Value) {
        assert_eq!(event["schemaURL"], RUN_EVENT);
        self.check(RUN_EVENT, event, "event");
        let mut facet_maps: Vec<(String, &Value)> = vec![("run".into(), &event["run"]["facets"]), ("job".into(), &event["job"]["facets"])];
        for side in ["inputs", "outputs"] {
            for (i, d) in event[side].as_array().into_iter().flatten().enumerate() {
                for key in ["facets", "inputFacets", "outputFacets"] {
                    facet_maps.push((format!("{side}[{i}].{key}"), &d[key]));
                }
            }
        }
        for (where_, map) in facet_maps {
            let Some(map) = map.as_object() else { continue };
            for (name, facet) in map {
                let url = facet["_schemaURL"].as_str().unwrap_or_else(|| panic!("facet {where_}.{name} has no _schemaURL"));
                assert_eq!(facet["_producer"], PRODUCER, "facet {where_}.{name}");
                let base = url.split('#').next().unwrap_or(url);
                let doc = self.documents.get(base).unwrap_or_else(|| panic!("facet {where_}.{name}: _schemaURL {url} is not a vendored schema"));
                assert!(doc["properties"].get(name).is_some(), "facet {where_}.{name}: {base} declares facets {:?}", doc["properties"].as_object().map(|o| o.keys().collect::<Vec<_>>()));
                self.check(url, facet, &format!("facet {where_}.{name}"));
            }
        }
    }
}

#[test]
fn the_vendored_schemas_reject_malformed_events() {
    // The validation used by every test below is not vacuous: references resolve offline and
    // formats are checked.
    let s = Schemas::load();
    let p = Project::new(&manifest("  lineage: {transport: file, path: events.jsonl}\n"), &format!("ingestion:\n{}", fs_entry("gone", "data/gone")));
    assert_eq!(p.run(&[]).code, 69);
    let events: Vec<Value> = std::fs::read_to_string(p.path("events.jsonl")).expect("events").lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    let fail = events.iter().find(|e| e["eventType"] == "FAIL").expect("FAIL event").clone();
    s.validate(&fail);
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut e = fail.clone();
        f(&mut e);
        e
    };
    let bad_events = [
        ("no producer", broken(&|e| drop(e.as_object_mut().map(|o| o.remove("producer"))))),
        ("run id not a UUID", broken(&|e| e["run"]["runId"] = json!("run-1"))),
        ("unknown event type", broken(&|e| e["eventType"] = json!("DONE"))),
        ("event time not a date-time", broken(&|e| e["eventTime"] = json!("yesterday"))),
        ("facet without _producer", broken(&|e| drop(e["run"]["facets"]["errorMessage"].as_object_mut().map(|o| o.remove("_producer"))))),
    ];
    for (what, e) in &bad_events {
        assert!(!s.errors(RUN_EVENT, e).is_empty(), "accepted an event with {what}");
    }
    let facets = &fail["run"]["facets"];
    let error_message = facets["errorMessage"]["_schemaURL"].as_str().expect("url");
    let mut no_language = facets["errorMessage"].clone();
    no_language.as_object_mut().expect("facet").remove("programmingLanguage");
    assert!(!s.errors(error_message, &no_language).is_empty());
    let ingestion_error = facets["ingestionError"]["_schemaURL"].as_str().expect("url");
    let mut bad_category = facets["ingestionError"].clone();
    bad_category["category"] = json!("OOPS");
    assert!(!s.errors(ingestion_error, &bad_category).is_empty());
    assert!(s.errors(ingestion_error, &facets["ingestionError"]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// helpers

fn fs_entry(name: &str, folder: &str) -> String {
    format!("  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: filesystem\n      config: {{bucket_url: {folder}, file_glob: \"*.jsonl\"}}\n")
}

fn pg_down_entry() -> String {
    "  - name: pg_down\n    type: dlt\n    destination: raw.pg_down\n    dlt:\n      source: sql_database\n      config: {credentials: \"${secrets.db}\", schema: sales, table: orders}\n    secret_refs: {db: pg-down-url}\n".to_string()
}

const RETRY: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.05}}\n";

/// A manifest with the retry policy above and the given `observability:` lines.
fn manifest(observability: &str) -> String {
    format!("{RETRY}observability:\n{observability}")
}

fn events_of(server: &http::Server) -> Vec<Value> {
    server.requests_to(LINEAGE_PATH).iter().map(|r| serde_json::from_slice(&r.body).expect("event JSON")).collect()
}

fn of_job<'a>(events: &'a [Value], job: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["job"]["name"] == job).collect()
}

fn types(events: &[&Value]) -> Vec<String> {
    events.iter().map(|e| e["eventType"].as_str().unwrap_or("?").to_string()).collect()
}

fn is_uuid_v7(s: &str) -> bool {
    s.len() == 36 && s.as_bytes().get(14) == Some(&b'7') && uuid::Uuid::parse_str(s).is_ok()
}

/// Wait up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Samples of a Prometheus text exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label");
                    labels.insert(k.trim_start_matches(',').to_string(), v.trim_end_matches('"').to_string());
                }
                (n.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        out.push((name, labels, value.parse().expect("value")));
    }
    out
}

fn value(samples: &[(String, BTreeMap<String, String>, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))).map(|(_, _, v)| *v)
}

/// `promtool check metrics` on `text`: required with FLOE_TEST_REQUIRE_SERVICES=1, else
/// skipped (with a message) when promtool is not installed.
fn promtool_check(text: &str) {
    let child = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(!common::services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but promtool cannot run: {e}");
            eprintln!("skipping promtool check: {e} (install Debian's `prometheus` package)");
            return;
        }
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics rejected the exposition:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP port that refuses connections.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// A server that accepts connections and never answers. Lives until the test process ends.
fn hanging_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", l.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    base
}

fn assert_no_canary(text: &str, what: &str) {
    for canary in [API_KEY, DB_PASSWORD] {
        assert!(!text.contains(canary), "a secret leaked into {what}:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// lineage

#[test]
fn success_emits_start_and_complete_with_datasets_over_http() {
    let schemas = Schemas::load();
    let rt = runtime();
    // The first POST gets a 503: the transport retries it.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = rt.block_on(http::Server::start(move |_req: &http::Req| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 { http::Resp::text(503, "warming up") } else { http::Resp::json(json!({})).status(201) }
    }));
    let m = manifest(&format!(
        "  lineage: {{transport: http, endpoint: \"{}\", namespace: acme, api_key_secret_ref: lineage-key}}\n",
        server.base
    ));
    let mut p = Project::new(&m, &format!("ingestion:\n{}", fs_entry("good", "data/good")));
    p.write("data/good/a.jsonl", "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"name\": \"b\"}\n{\"id\": 3, \"name\": \"c\"}\n");
    p.env.push(("FLOE_SECRET_LINEAGE_KEY".into(), API_KEY.into()));
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.report();

    let reqs = server.requests_to(LINEAGE_PATH);
    assert_eq!(reqs.len(), 3, "START (503, then retried) and COMPLETE: {reqs:?}");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("authorization"), Some(format!("Bearer {API_KEY}").as_str()));
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
        assert_no_canary(&String::from_utf8_lossy(&r.body), "an event");
    }
    let events: Vec<Value> = events_of(&server).into_iter().skip(1).collect();
    assert_eq!(types(&events.iter().collect::<Vec<_>>()), ["START", "COMPLETE"]);
    for e in &events {
        schemas.validate(e);
    }
    let (start, done) = (&events[0], &events[1]);
    let run_id = start["run"]["runId"].as_str().expect("runId");
    assert!(is_uuid_v7(run_id), "{run_id}");
    assert_eq!(done["run"]["runId"], run_id, "one run id per entry run");
    assert_ne!(run_id, report["run_id"].as_str().expect("report run id"), "the entry's run is not floe's run");
    assert_eq!(start["run"]["facets"]["parent"]["run"]["runId"], report["run_id"], "floe's run is the parent");
    assert_eq!(start["job"], json!({"namespace": "acme", "name": "ingestion.good", "facets": start["job"]["facets"].clone()}));
    assert_eq!(start["producer"], PRODUCER);

    // The output: the Iceberg table, named within the embedded catalog's warehouse.
    let warehouse = format!("file://{}", p.path(".floe/warehouse").display());
    let out = &done["outputs"][0];
    assert_eq!((out["namespace"].as_str(), out["name"].as_str()), (Some(warehouse.as_str()), Some("raw.good")), "{out:#}");
    assert_eq!(start["outputs"][0]["namespace"], out["namespace"]);
    assert_eq!(out["outputFacets"]["outputStatistics"]["rowCount"], 3);
    let fields: Vec<&str> = out["facets"]["schema"]["fields"].as_array().expect("schema facet").iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(fields.contains(&"id") && fields.contains(&"name"), "{fields:?}");
    assert!(out["facets"]["version"]["datasetVersion"].as_str().is_some_and(|v| v.parse::<i64>().is_ok()), "snapshot id: {out:#}");
    assert_eq!(out["facets"]["catalog"]["framework"], "iceberg");
    assert_eq!(out["facets"]["storage"]["storageLayer"], "iceberg");
    // The input: a local folder.
    let input = &done["inputs"][0];
    assert_eq!((input["namespace"].as_str(), input["name"].as_str()), (Some("file"), Some(p.path("data/good").to_str().expect("path"))));
    assert!(done["run"]["facets"].get("errorMessage").is_none() && done["run"]["facets"].get("ingestionError").is_none());
}

#[test]
fn failure_emits_fail_with_error_facets_to_a_file_and_the_console() {
    let schemas = Schemas::load();
    // file transport (relative path: beside the manifest), one JSON line per event.
    let p = Project::new(
        &manifest("  lineage: {transport: file, path: lineage/events.jsonl}\n"),
        &format!("ingestion:\n{}{}{}", fs_entry("gone", "data/gone"), fs_entry("good", "data/good"), fs_entry("partial", "data/partial")),
    );
    p.write("data/good/a.jsonl", "{\"id\": 1}\n");
    p.write("data/partial/a.jsonl", "{\"id\": 1}\n{\"id\": \n");
    let run = p.run(&[]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    let text = std::fs::read_to_string(p.path("lineage/events.jsonl")).expect("events file");
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON event per line")).collect();
    assert_eq!(events.len(), 6, "{text}");
    for e in &events {
        schemas.validate(e);
    }
    let gone = of_job(&events, "ingestion.gone");
    assert_eq!(types(&gone), ["START", "FAIL"]);
    assert_eq!(types(&of_job(&events, "ingestion.good")), ["START", "COMPLETE"]);
    // PARTIAL: rows were committed, so the run COMPLETEs, with floe's error facet saying what
    // was rejected (and no errorMessage, which readers take for a failed run).
    let partial = of_job(&events, "ingestion.partial");
    assert_eq!(types(&partial), ["START", "COMPLETE"]);
    let ie = &partial[1]["run"]["facets"]["ingestionError"];
    assert_eq!((ie["category"].as_str(), ie["code"].as_str(), ie["failedRecords"].as_u64()), (Some("PARTIAL"), Some("PARTIAL_LOAD"), Some(1)), "{ie}");
    assert!(partial[1]["run"]["facets"].get("errorMessage").is_none());
    assert_eq!(partial[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"], 1);
    assert_eq!(of_job(&events, "ingestion.gone")[0]["job"]["namespace"], "floe", "default namespace");
    let fail = gone[1];
    let err = &run.result("gone")["error"];
    let facets = &fail["run"]["facets"];
    assert_eq!(facets["errorMessage"]["programmingLanguage"], "rust");
    assert!(facets["errorMessage"]["message"].as_str().is_some_and(|m| m.contains("SOURCE_NOT_FOUND")), "{facets:#}");
    let ie = &facets["ingestionError"];
    assert_eq!((ie["category"].as_str(), ie["code"].as_str()), (Some("PERMANENT"), Some("SOURCE_NOT_FOUND")));
    assert_eq!(ie["code"], err["code"]);
    assert!(ie.get("retryAfterSeconds").is_some_and(Value::is_null), "retryAfterSeconds is present, null: {ie}");
    assert!(fail["outputs"][0]["outputFacets"].get("outputStatistics").is_none(), "nothing was written");

    // A second run appends.
    let _ = p.run(&[]);
    assert_eq!(std::fs::read_to_string(p.path("lineage/events.jsonl")).expect("events").lines().count(), 12);

    // console: JSON lines on stderr, stdout stays the one report.
    let p = Project::new(&manifest("  lineage: {transport: console}\n"), &format!("ingestion:\n{}", fs_entry("gone", "data/gone")));
    let run = p.run(&[]);
    assert_eq!(run.code, 69);
    let _ = run.report();
    let events: Vec<Value> = run.stderr.lines().filter(|l| l.starts_with('{') && l.contains("\"eventType\"")).map(|l| serde_json::from_str(l).expect("event")).collect();
    assert_eq!(types(&events.iter().collect::<Vec<_>>()), ["START", "FAIL"], "{}", run.stderr);
    for e in &events {
        schemas.validate(e);
    }

    // enabled: false and noop emit nothing.
    for lineage in ["{enabled: false, transport: file, path: lineage/off.jsonl}", "{transport: noop, path: lineage/off.jsonl}"] {
        let p = Project::new(&manifest(&format!("  lineage: {lineage}\n")), &format!("ingestion:\n{}", fs_entry("gone", "data/gone")));
        assert_eq!(p.run(&[]).code, 69);
        assert!(!p.path("lineage/off.jsonl").exists(), "{lineage} wrote events");
    }
}

#[test]
fn retry_emits_running_then_fail_and_names_the_postgres_input_without_its_password() {
    let schemas = Schemas::load();
    let rt = runtime();
    let server = rt.block_on(http::Server::start(|_req: &http::Req| http::Resp::json(json!({})).status(201)));
    let m = manifest(&format!("  lineage: {{transport: http, endpoint: \"{}/\"}}\n  metrics: {{textfile: metrics/floe.prom}}\n", server.base));
    let mut p = Project::new(&m, &format!("ingestion:\n{}", pg_down_entry()));
    // A closed port: connection refused is TRANSIENT, so the policy retries it once.
    p.env.push(("FLOE_SECRET_PG_DOWN_URL".into(), format!("postgresql://loader:{DB_PASSWORD}@127.0.0.1:1/shop")));
    let run = p.run(&[]);
    assert_eq!(run.code, 75, "{}", run.stderr);
    let result = run.result("pg_down");
    assert_eq!((result["attempts"].as_i64(), result["error"]["category"].as_str()), (Some(2), Some("TRANSIENT")));

    let events = events_of(&server);
    for r in server.requests_to(LINEAGE_PATH) {
        assert_no_canary(&String::from_utf8_lossy(&r.body), "an event");
    }
    assert_eq!(types(&events.iter().collect::<Vec<_>>()), ["START", "RUNNING", "FAIL"]);
    for e in &events {
        schemas.validate(e);
    }
    let run_id = &events[0]["run"]["runId"];
    assert!(events.iter().all(|e| &e["run"]["runId"] == run_id), "retries stay in one run");
    let retry = &events[1]["run"]["facets"]["ingestionError"];
    assert_eq!((retry["category"].as_str(), retry["attempt"].as_i64()), (Some("TRANSIENT"), Some(1)), "{retry}");
    assert!(retry["retryAfterSeconds"].as_u64().is_some(), "the wait before the next attempt: {retry}");
    let fail = &events[2]["run"]["facets"];
    assert_eq!(fail["ingestionError"]["code"], result["error"]["code"]);
    assert_eq!((fail["ingestionError"]["category"].as_str(), fail["ingestionError"]["attempt"].as_i64()), (Some("TRANSIENT"), Some(2)));
    assert!(fail["errorMessage"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    for e in &events {
        assert_eq!(e["inputs"], json!([{"namespace": "postgres://127.0.0.1:1", "name": "shop.sales.orders", "facets": {}}]));
    }

    let text = std::fs::read_to_string(p.path("metrics/floe.prom")).expect("textfile");
    assert_no_canary(&text, "the metrics");
    let s = samples(&text);
    assert_eq!(value(&s, "floe_ingestion_retry_total", &[("source", "sql_database")]), Some(1.0), "{text}");
    let code = result["error"]["code"].as_str().expect("code");
    assert_eq!(value(&s, "floe_ingestion_errors_total", &[("source", "sql_database"), ("category", "TRANSIENT"), ("code", code)]), Some(1.0), "{text}");
    assert_eq!(value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "pg_down")]), None);
    promtool_check(&text);
}

#[test]
fn sigint_during_a_load_emits_abort() {
    let schemas = Schemas::load();
    let rt = runtime();
    let server = rt.block_on(http::Server::start(|_req: &http::Req| http::Resp::json(json!({})).status(201)));
    let m = manifest(&format!("  lineage: {{transport: http, endpoint: \"{}\"}}\n", server.base));
    let p = Project::new(&m, &format!("ingestion:\n{}", fs_entry("big", "data")));
    std::fs::create_dir_all(p.path("data")).expect("mkdir");
    let mut f = std::io::BufWriter::new(std::fs::File::create(p.path("data/big.jsonl")).expect("file"));
    for i in 0..1_000_000 {
        writeln!(f, "{{\"id\": {i}, \"name\": \"user-{i}\", \"amount\": {}.5}}", i % 1000).expect("write");
    }
    drop(f);

    let child = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(["ingest", "run", "--output", "json"])
        .current_dir(p.dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once the entry has started (its START event arrived).
    assert!(eventually(60, || !server.requests_to(LINEAGE_PATH).is_empty()), "no START event");
    std::thread::sleep(Duration::from_millis(200));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "the load ended before the signal? stderr: {stderr}");

    let events = events_of(&server);
    assert_eq!(types(&events.iter().collect::<Vec<_>>()), ["START", "ABORT"], "{stderr}");
    for e in &events {
        schemas.validate(e);
    }
    assert_eq!(events[0]["run"]["runId"], events[1]["run"]["runId"]);
    assert!(events[1]["run"]["facets"].get("errorMessage").is_none());
}

// ---------------------------------------------------------------------------------------------
// metrics

#[test]
fn textfile_metrics_pass_promtool_and_keep_the_last_success() {
    let m = manifest("  metrics: {textfile: metrics/floe.prom}\n");
    let p = Project::new(&m, &format!("ingestion:\n{}{}", fs_entry("good", "data/good"), fs_entry("gone", "data/gone")));
    p.write("data/good/a.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let run = p.run(&[]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    let path = p.path("metrics/floe.prom");
    let text = std::fs::read_to_string(&path).expect("textfile");
    let s = samples(&text);
    let fs = [("source", "filesystem")];
    assert_eq!(value(&s, "floe_ingestion_rows_loaded_total", &[("entry", "good"), ("source", "filesystem")]), Some(2.0), "{text}");
    assert_eq!(value(&s, "floe_ingestion_rows_loaded_total", &[("entry", "gone")]), Some(0.0), "{text}");
    assert_eq!(value(&s, "floe_ingestion_errors_total", &[("source", "filesystem"), ("category", "PERMANENT"), ("code", "SOURCE_NOT_FOUND")]), Some(1.0), "{text}");
    assert_eq!(value(&s, "floe_ingestion_retry_total", &fs), Some(0.0), "counters start at zero: {text}");
    assert_eq!(value(&s, "floe_ingestion_rows_failed_total", &fs), Some(0.0), "{text}");
    assert!(value(&s, "floe_ingestion_duration_seconds", &[("entry", "good")]).is_some_and(|d| d >= 0.0), "{text}");
    let last = value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "good"), ("source", "filesystem")]).expect("last success of good");
    assert!(last >= before.floor() && last < before + 600.0, "{last} vs {before}");
    assert_eq!(value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "gone")]), None, "gone never succeeded");
    assert!(!text.contains("run_id") && !text.lines().any(|l| l.starts_with('#') && l.contains("TIMESTAMP")));
    promtool_check(&text);
    // Written atomically: nothing else left in the folder.
    let names: Vec<String> = std::fs::read_dir(p.path("metrics")).expect("dir").map(|e| e.expect("e").file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["floe.prom"]);

    // A PARTIAL load counts its rejected rows.
    p.write("data/good/b.jsonl", "{\"id\": 3}\n{\"id\": \n");
    let run = p.run(&["--select", "good"]);
    assert_eq!(run.code, 65, "{}", run.stderr);
    let text = std::fs::read_to_string(&path).expect("textfile");
    let s = samples(&text);
    assert_eq!(value(&s, "floe_ingestion_rows_failed_total", &fs), Some(1.0), "{text}");
    assert_eq!(value(&s, "floe_ingestion_errors_total", &[("category", "PARTIAL")]), Some(1.0), "{text}");
    // good did not succeed this time: its last success is carried over unchanged.
    assert_eq!(value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "good")]), Some(last), "{text}");
    assert_eq!(value(&s, "floe_ingestion_errors_total", &[("code", "SOURCE_NOT_FOUND")]), None, "counters are the run's: {text}");
    promtool_check(&text);
}

#[test]
fn pushgateway_receives_one_group_per_product_and_the_last_success_per_entry() {
    let Some(pgw) = std::env::var("FLOE_TEST_PUSHGATEWAY").ok().filter(|v| !v.is_empty()) else {
        assert!(!common::services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_PUSHGATEWAY is not set");
        eprintln!("skipping: FLOE_TEST_PUSHGATEWAY is not set (run through `bash tests/support/services.sh test`)");
        return;
    };
    let rt = runtime();
    let client = reqwest12::Client::new();
    let get = |url: String| rt.block_on(async { client.get(&url).send().await.expect("GET").text().await.expect("body") });
    let delete = |url: String| rt.block_on(async { client.delete(&url).send().await.expect("DELETE").status() });

    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos();
    let product = format!("obs-test-{}-{nanos}", std::process::id());
    let m = format!(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {{name: {product}, version: \"1.0.0\", owner: data-team}}\n{}",
        manifest(&format!("  metrics: {{pushgateway: \"{pgw}\", textfile: metrics/floe.prom}}\n"))
    );
    let p = Project::new(&m, &format!("ingestion:\n{}{}", fs_entry("good", "data/good"), fs_entry("gone", "data/gone")));
    p.write("data/good/a.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    let run = p.run(&[]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    assert!(!run.stderr.contains("Pushgateway"), "push failed: {}", run.stderr);
    let run_id = run.report()["run_id"].as_str().expect("run id").to_string();

    let mine = |text: &str| -> Vec<(String, BTreeMap<String, String>, f64)> { samples(text).into_iter().filter(|(_, l, _)| l.get("instance") == Some(&product)).collect() };
    let s = mine(&get(format!("{pgw}/metrics")));
    assert!(!s.is_empty(), "nothing pushed for instance {product}");
    for (name, labels, _) in &s {
        assert_eq!(labels.get("job").map(String::as_str), Some("floe"), "{name}{labels:?}");
        assert!(labels.values().all(|v| v != &run_id), "a run id in the grouping key: {name}{labels:?}");
    }
    assert_eq!(value(&s, "floe_ingestion_rows_loaded_total", &[("entry", "good"), ("source", "filesystem")]), Some(2.0), "{s:?}");
    assert_eq!(value(&s, "floe_ingestion_errors_total", &[("source", "filesystem"), ("category", "PERMANENT"), ("code", "SOURCE_NOT_FOUND")]), Some(1.0));
    let last = value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "good"), ("source", "filesystem")]).expect("last success pushed");
    assert!(value(&s, "push_time_seconds", &[]).is_some());
    // The textfile holds the same run.
    let file = samples(&std::fs::read_to_string(p.path("metrics/floe.prom")).expect("textfile"));
    assert_eq!(value(&file, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "good")]), Some(last));

    // A run of `gone` alone replaces the group (good's rows go) but not good's last success.
    let run = p.run(&["--select", "gone"]);
    assert_eq!(run.code, 69);
    let s = mine(&get(format!("{pgw}/metrics")));
    assert_eq!(value(&s, "floe_ingestion_rows_loaded_total", &[("entry", "good")]), None, "PUT replaces the group: {s:?}");
    assert_eq!(value(&s, "floe_ingestion_rows_loaded_total", &[("entry", "gone")]), Some(0.0));
    assert_eq!(value(&s, "floe_ingestion_last_success_timestamp_seconds", &[("entry", "good")]), Some(last), "a failed run keeps the last success");

    let group = format!("{pgw}/metrics/job/floe/instance/{product}");
    assert!(delete(format!("{group}/entry/good")).is_success());
    assert!(delete(group).is_success());
}

// ---------------------------------------------------------------------------------------------
// best effort

fn timed_run(p: &Project) -> (Run, Duration) {
    let t = Instant::now();
    let run = p.run(&[]);
    (run, t.elapsed())
}

fn loaded_project(observability: &str) -> Project {
    let p = Project::new(&manifest(observability), &format!("ingestion:\n{}", fs_entry("good", "data/good")));
    p.write("data/good/a.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    p
}

#[test]
fn a_receiver_that_hangs_refuses_or_fails_changes_nothing() {
    let rt = runtime();
    let py = std::env::var("FLOE_TEST_PYTHON").ok().filter(|s| !s.is_empty());
    let check = |p: &Project, run: &Run, what: &str| {
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        assert_eq!(run.result("good")["rows_loaded"], 2, "{what}");
        if let Some(py) = &py {
            let table = p.read(py, "raw.good");
            assert_eq!(common::column(&table, "id"), [json!(1), json!(2)], "{what}");
        }
    };
    let p = loaded_project("  metrics: {}\n");
    let (run, baseline) = timed_run(&p);
    check(&p, &run, "baseline");

    // Hangs: accepts, never answers, with a long per-request timeout: the run still ends
    // within the finish budget.
    let hang = hanging_server();
    let p = loaded_project(&format!("  lineage: {{transport: http, endpoint: \"{hang}\", timeout_seconds: 60}}\n  metrics: {{pushgateway: \"{hang}\"}}\n"));
    let (run, took) = timed_run(&p);
    check(&p, &run, "hanging receiver");
    assert!(took < baseline + FINISH_BUDGET + Duration::from_secs(6), "hanging receiver delayed the run: {took:?} (baseline {baseline:?})");
    assert!(run.stderr.contains("lineage"), "the failure is logged: {}", run.stderr);

    // Refuses.
    let port = refused_port();
    let p = loaded_project(&format!("  lineage: {{transport: http, endpoint: \"http://127.0.0.1:{port}\"}}\n  metrics: {{pushgateway: \"http://127.0.0.1:{port}\"}}\n"));
    let (run, took) = timed_run(&p);
    check(&p, &run, "refusing receiver");
    assert!(took < baseline + Duration::from_secs(5), "refusing receiver delayed the run: {took:?} (baseline {baseline:?})");
    assert!(run.stderr.contains("lineage") && run.stderr.contains("metrics"), "{}", run.stderr);

    // Always 500: a bounded number of retries.
    let server = rt.block_on(http::Server::start(|_req: &http::Req| http::Resp::text(500, "boom")));
    let p = loaded_project(&format!("  lineage: {{transport: http, endpoint: \"{}\"}}\n  metrics: {{pushgateway: \"{}\"}}\n", server.base, server.base));
    let (run, took) = timed_run(&p);
    check(&p, &run, "failing receiver");
    let posts = server.requests_to(LINEAGE_PATH).len();
    assert!((3..=9).contains(&posts), "{posts} lineage requests: 5xx are retried, boundedly");
    assert!(took < baseline + FINISH_BUDGET + Duration::from_secs(4), "{took:?}");

    // A missing API key secret turns lineage off, with a warning; the run is unaffected.
    let p = loaded_project(&format!("  lineage: {{transport: http, endpoint: \"{}\", api_key_secret_ref: no-such-key}}\n", server.base));
    let before = server.requests_to(LINEAGE_PATH).len();
    let run = p.run(&["--secrets-dir", "/nonexistent"]);
    check(&p, &run, "missing API key");
    assert_eq!(server.requests_to(LINEAGE_PATH).len(), before);
    assert!(run.stderr.contains("no-such-key"), "{}", run.stderr);
}
