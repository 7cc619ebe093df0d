//! Fault injection for the REST source: a raw TCP server that resets connections, truncates
//! bodies, sends invalid JSON, answers too slowly, storms 5xx, changes its page size mid-run
//! and sends huge pages. Each case must end in the right category, within the retry policy
//! (counted requests), never panic (exit 1), and never commit half a load (PyIceberg check).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Project, Run};
use serde_json::{json, Value};

/// What the server does with one request.
#[derive(Clone)]
enum Act {
    /// Status, body.
    Send(u16, String),
    /// Status, body, delay before answering.
    Slow(u16, String, Duration),
    /// Close the connection with a TCP reset, no response.
    Reset,
    /// A 200 whose `content-length` promises more than is sent, then close.
    Truncated(String),
}

type Handler = dyn Fn(&str, &HashMap<String, String>, usize) -> Act + Send + Sync;

/// A raw server: the handler sees the path, the query and how many requests that path has had.
struct Raw {
    base: String,
    hits: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: Arc<AtomicBool>,
}

impl Raw {
    fn start(handler: impl Fn(&str, &HashMap<String, String>, usize) -> Act + Send + Sync + 'static) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (h, handler) = (h.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &*handler, &h));
            }
        });
        Raw { base, hits, stop }
    }

    fn count(&self, path: &str) -> usize {
        self.hits.lock().expect("hits").iter().filter(|(p, _)| p == path).count()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, hits: &Mutex<Vec<(String, Instant)>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let url = reqwest12::Url::parse(&format!("http://x{target}")).expect("target");
    let path = url.path().to_string();
    let query: HashMap<String, String> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let n = {
        let mut h = hits.lock().expect("hits");
        let n = h.iter().filter(|(p, _)| *p == path).count();
        h.push((path.clone(), Instant::now()));
        n
    };
    let respond = |stream: &mut TcpStream, status: u16, body: &str| {
        let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    };
    match handler(&path, &query, n) {
        Act::Send(status, body) => respond(&mut stream, status, &body),
        Act::Slow(status, body, delay) => {
            std::thread::sleep(delay);
            respond(&mut stream, status, &body);
        }
        Act::Reset => {
            // SO_LINGER 0: close sends RST instead of FIN.
            let _ = socket_linger_zero(&stream);
            drop(stream);
        }
        Act::Truncated(body) => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len() * 2);
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
            let _ = socket_linger_zero(&stream);
        }
    }
}

/// Set SO_LINGER {on, 0} through the standard library (no libc crate): `set_linger` is
/// unstable, so fall back to shutting the write side, which ends the response early.
fn socket_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    stream.shutdown(std::net::Shutdown::Both)
}

const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n";

/// A REST entry: json_link pagination on `next`, 3 request attempts, fast backoff.
fn entry(name: &str, base: &str, path: &str, client_extra: &str) -> String {
    format!(
        "  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: rest_api\n      config:\n        client: {{base_url: \"{base}\", request_max_attempts: 3, request_backoff_factor: 0.05, timeout_seconds: 2, paginator: {{type: json_link, next_url_path: next}}{client_extra}}}\n        resources: [{{name: items, endpoint: {{path: {path}, data_selector: items}}}}]\n"
    )
}

fn rows(from: u64, to: u64) -> Vec<Value> {
    (from..to).map(|i| json!({"id": i, "name": format!("n{i}")})).collect()
}

/// A page of `items`, linking to `next` (a path on the same server) or to nothing.
fn page(base: &str, items: Vec<Value>, next: Option<String>) -> String {
    json!({"items": items, "next": next.map(|n| format!("{base}{n}"))}).to_string()
}

fn check_no_panic(name: &str, run: &Run) {
    assert_ne!(run.code, 1, "{name}: internal error\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{name}: panic\n{}", run.stderr);
}

/// After a failed load: no table, or a table without rows.
fn check_nothing_committed(p: &Project, py: &Option<String>, table: &str) {
    if let Some(py) = py {
        let t = p.read(py, table);
        assert!(t["exists"] == false || t["rows"].as_array().is_some_and(Vec::is_empty), "{table}: half committed: {t}");
    }
}

/// Ids of a table: each source id exactly once.
fn check_exactly(p: &Project, py: &Option<String>, table: &str, n: u64) {
    if let Some(py) = py {
        let t = p.read(py, table);
        let mut ids: Vec<i64> = common::column(&t, "id").iter().filter_map(Value::as_i64).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..n as i64).collect::<Vec<_>>(), "{table}: rows lost or doubled");
    }
}

#[test]
fn rest_faults_end_in_the_right_category_and_commit_nothing_half() {
    let py = common::python();
    let base_cell: Arc<Mutex<String>> = Arc::default();
    let b = base_cell.clone();
    let server = Raw::start(move |path, q, n| {
        let base = b.lock().expect("base").clone();
        let pg: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let paged = |last: u64, size: u64, p: String| {
            let next = (pg < last).then(|| format!("{p}?page={}", pg + 1));
            page(&base, rows(pg * size, pg * size + size), next)
        };
        match path {
            "/reset" => Act::Reset,
            "/reset_once" => if n == 0 { Act::Reset } else { Act::Send(200, page(&base, rows(0, 5), None)) },
            "/truncated" => Act::Truncated(page(&base, rows(0, 50), None)),
            "/invalid" => Act::Send(200, "{\"items\": [{\"id\": 1}, {\"id\": ".into()),
            "/slow" => Act::Slow(200, page(&base, rows(0, 1), None), Duration::from_secs(4)),
            "/storm" => Act::Send(503, "overloaded".into()),
            "/storm_then_ok" => if n < 2 { Act::Send(502, "bad gateway".into()) } else { Act::Send(200, page(&base, rows(0, 7), None)) },
            // Pages 0..2 fine, page 3 fails: nothing of pages 0..2 may be committed.
            "/fails_late" => if pg < 3 { Act::Send(200, paged(5, 100, "/fails_late".into())) } else { Act::Send(200, "{not json".into()) },
            "/fails_late_5xx" => if pg < 3 { Act::Send(200, paged(5, 100, "/fails_late_5xx".into())) } else { Act::Send(500, "boom".into()) },
            "/resets_late" => if pg < 2 { Act::Send(200, paged(5, 100, "/resets_late".into())) } else { Act::Reset },
            // The page size changes at every page: 10, 3, 250, 1, 0 (an empty page in the middle), 40.
            "/sizes" => {
                let sizes = [10u64, 3, 250, 1, 0, 40];
                let start: u64 = sizes[..pg as usize].iter().sum();
                let next = ((pg as usize) < sizes.len() - 1).then(|| format!("/sizes?page={}", pg + 1));
                Act::Send(200, page(&base, rows(start, start + sizes[pg as usize]), next))
            }
            // One huge page: 150,000 records (~5 MB of JSON).
            "/huge" => Act::Send(200, page(&base, rows(0, 150_000), None)),
            _ => Act::Send(404, "no".into()),
        }
    });
    *base_cell.lock().expect("base") = server.base.clone();
    let b = &server.base;
    let names = [
        ("reset", "TRANSIENT", 3),
        ("reset_once", "ok", 2),
        ("truncated", "TRANSIENT", 3),
        ("invalid", "PERMANENT", 1),
        ("slow", "TRANSIENT", 3),
        ("storm", "TRANSIENT", 3),
        ("storm_then_ok", "ok", 3),
        ("fails_late", "PERMANENT", 4),
        ("fails_late_5xx", "TRANSIENT", 3 + 3),
        ("resets_late", "TRANSIENT", 2 + 3),
        ("sizes", "ok", 6),
        ("huge", "ok", 1),
    ];
    let spec = format!("ingestion:\n{}", names.iter().map(|(n, _, _)| entry(n, b, n, "")).collect::<String>());
    let p = Project::new(MANIFEST, &spec);
    let started = Instant::now();
    let run = p.run(&["--jobs", "4"]);
    let elapsed = started.elapsed();
    check_no_panic("faults", &run);
    for (name, expect, requests) in names {
        let r = run.result(name);
        match expect {
            "ok" => assert_eq!(r["success"], true, "{name}: {r}"),
            category => assert_eq!(r["error"]["category"], category, "{name}: {r}"),
        }
        assert_eq!(server.count(&format!("/{name}")), requests, "{name}: requests outside the retry policy: {r}");
        if expect != "ok" {
            check_nothing_committed(&p, &py, &format!("raw.{name}"));
            assert_eq!(r["error"]["source"], "rest_api", "{name}: {r}");
        }
    }
    assert_eq!(run.result("invalid")["error"]["code"], "SOURCE_ERROR");
    assert_eq!(run.result("slow")["error"]["code"], "TIMEOUT");
    check_exactly(&p, &py, "raw.reset_once", 5);
    check_exactly(&p, &py, "raw.storm_then_ok", 7);
    check_exactly(&p, &py, "raw.sizes", 304);
    check_exactly(&p, &py, "raw.huge", 150_000);
    // Retries stay within the policy's time too: 3 attempts of a 2 s timeout plus backoff.
    assert!(elapsed < Duration::from_secs(60), "the faulty run took {elapsed:?}");
    eprintln!("[faults] {} entries in {elapsed:?}, exit {}", names.len(), run.code);
}

#[test]
fn a_failed_multi_page_load_commits_nothing_and_a_rerun_loads_each_row_once() {
    let py = common::python();
    let failing = Arc::new(AtomicBool::new(true));
    let base_cell: Arc<Mutex<String>> = Arc::default();
    let (f, b) = (failing.clone(), base_cell.clone());
    let server = Raw::start(move |_path, q, _n| {
        let base = b.lock().expect("base").clone();
        let pg: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        if pg == 4 && f.load(Ordering::SeqCst) {
            return Act::Reset;
        }
        let next = (pg < 6).then(|| format!("/items?page={}", pg + 1));
        Act::Send(200, page(&base, rows(pg * 100, pg * 100 + 100), next))
    });
    *base_cell.lock().expect("base") = server.base.clone();
    let spec = format!(
        "ingestion:\n  - name: items\n    type: dlt\n    destination: raw.items\n    dlt:\n      source: rest_api\n      incremental: {{cursor_column: id, initial_value: -1}}\n      config:\n        client: {{base_url: \"{}\", request_max_attempts: 2, request_backoff_factor: 0.01, paginator: {{type: json_link, next_url_path: next}}}}\n        resources: [{{name: items, endpoint: {{path: items, data_selector: items}}}}]\n",
        server.base
    );
    let p = Project::new("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.02}}\n", &spec);
    let run = p.run(&[]);
    check_no_panic("late reset", &run);
    assert_eq!(run.code, 75, "{}", run.stdout);
    assert_eq!(run.result("items")["attempts"], 2);
    check_nothing_committed(&p, &py, "raw.items");
    let state = p.floe(&["ingest", "state", "--output", "json"]);
    assert!(state.report()["items"].is_null(), "state committed without data: {}", state.stdout);
    failing.store(false, Ordering::SeqCst);
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.result("items")["rows_loaded"], 700);
    check_exactly(&p, &py, "raw.items", 700);
    // Nothing new: a rerun loads nothing (the cursor was committed with the rows).
    let run = p.run(&[]);
    assert_eq!(run.result("items")["rows_loaded"], 0);
    check_exactly(&p, &py, "raw.items", 700);
}

// ---------------------------------------------------------------------------------------------
// The Airbyte client: 5xx storms, dropped connections and invalid JSON from the API.

#[path = "support/airbyte/mod.rs"]
mod airbyte_double;

use airbyte_double::{Api, Canned, Double, JobPlan, Route};

fn airbyte_run(double: &Double) -> Run {
    let manifest = format!(
        "plugins:\n  ingestion:\n    - type: dlt\n    - type: airbyte\n      config: {{workspace_url: \"{}\", connection_secret_ref: airbyte-token, poll_interval_seconds: 0.02, timeout_seconds: 30}}\n      retry: {{max_attempts: 1}}\n",
        double.public_url()
    );
    let spec = "ingestion:\n  - name: accounts\n    type: airbyte\n    destination: bronze.accounts\n    airbyte: {connection_id: \"9924bcd0-99be-453d-ba47-c2c9766f7da5\"}\n";
    let mut p = Project::new(&manifest, spec);
    p.env.push(("FLOE_SECRET_AIRBYTE_TOKEN".into(), "tok-airbyte".into()));
    p.run(&[])
}

#[test]
fn airbyte_faults_end_cleanly_and_never_trigger_twice() {
    // A 5xx storm on the trigger: TRANSIENT, a bounded number of tries, no job.
    let double = Double::start("tok-airbyte");
    for _ in 0..100 {
        double.script(Route::Trigger, Canned::status(Api::Public, 503));
    }
    let started = Instant::now();
    let run = airbyte_run(&double);
    check_no_panic("airbyte storm", &run);
    let r = run.result("accounts");
    assert_eq!(r["error"]["category"], "TRANSIENT", "{r}");
    assert_eq!(run.code, 75);
    let tries = double.count(Route::Trigger);
    assert!((1..=10).contains(&tries), "{tries} trigger requests: outside any retry policy");
    assert_eq!(double.jobs_created(), 0);
    eprintln!("[faults] airbyte 503 storm: {tries} trigger requests, {:?}", started.elapsed());

    // Polls that drop the connection, then answer: the sync completes, one job only.
    let double = Double::start("tok-airbyte");
    double.plan_next_job(JobPlan::new(&["pending", "running", "succeeded"]).rows(42));
    double.script(Route::GetJob, Canned::Drop);
    double.script(Route::GetJob, Canned::status(Api::Public, 502));
    double.script(Route::GetJob, Canned::Drop);
    let run = airbyte_run(&double);
    check_no_panic("airbyte drops", &run);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("accounts")["rows_loaded"], 42);
    assert_eq!(double.jobs_created(), 1, "a dropped poll re-triggered the sync");

    // A poll answered with invalid JSON, every time: a clean failure, the job not re-triggered.
    let double = Double::start("tok-airbyte");
    double.plan_next_job(JobPlan::forever_running());
    for _ in 0..100 {
        double.script(Route::GetJob, Canned::Status { status: 200, body: "{\"jobId\": 1, \"status\": ".into(), retry_after: None });
    }
    let run = airbyte_run(&double);
    check_no_panic("airbyte invalid JSON", &run);
    let r = run.result("accounts");
    // The documented class of "an answer that is not Airbyte's API" (src/airbyte/classify.rs):
    // most often a workspace_url that points at something else.
    assert_eq!((r["error"]["category"].as_str(), r["error"]["code"].as_str()), (Some("CONFIGURATION"), Some("INVALID_CONFIG")), "{r}");
    assert_eq!(double.jobs_created(), 1);
    eprintln!("[faults] airbyte invalid JSON: {} {} ; polls {}", r["error"]["category"], r["error"]["code"], double.count(Route::GetJob));
}

// ---------------------------------------------------------------------------------------------
// Hostile input files (regressions found by fuzzing).

#[test]
fn a_multibyte_character_in_a_timestamp_like_string_does_not_crash_the_run() {
    // Byte 19 of the first value falls inside "é": the timestamp sniffer used to slice the
    // string there and panic (exit 1) — found by the jsonl fuzz target.
    let spec = "ingestion:\n  - name: t\n    type: dlt\n    destination: raw.t\n    dlt:\n      source: filesystem\n      config: {bucket_url: data, file_glob: \"*.jsonl\"}\n";
    let p = Project::new(MANIFEST, spec);
    p.write("data/a.jsonl", "{\"t\": \"2024-01-01T00:00:0\u{e9}0+05:00\"}\n{\"t\": \"1970-01-01T00:00:00Z\"}\n");
    let run = p.run(&[]);
    check_no_panic("multibyte timestamp", &run);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("t")["rows_loaded"], 2);
}
