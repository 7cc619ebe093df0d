//! `floe ingest run` end to end: the report, exit codes and their precedence, dry runs,
//! signals, and the README's scripting example.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use serde_json::Value;

const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.05}}\n";

fn fs_entry(name: &str, folder: &str, extra: &str) -> String {
    format!("  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: filesystem\n      config: {{bucket_url: {folder}, file_glob: \"*.jsonl\"}}\n{extra}")
}

#[test]
fn report_fields_and_precedence_of_mixed_outcomes() {
    // ok, PARTIAL (a broken record), PERMANENT (missing folder), CONFIGURATION (missing secret).
    let spec = format!(
        "ingestion:\n{}{}{}  - name: needs_secret\n    type: dlt\n    destination: raw.needs_secret\n    dlt:\n      source: sql_database\n      config: {{credentials: \"${{secrets.db}}\", table: t}}\n    secret_refs: {{db: missing-db-url}}\n",
        fs_entry("good", "data/good", ""),
        fs_entry("partial", "data/partial", ""),
        fs_entry("gone", "data/gone", ""),
    );
    let p = Project::new(MANIFEST, &spec);
    p.write("data/good/a.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
    p.write("data/partial/a.jsonl", "{\"id\": 1}\n{\"id\": \n");

    let run = p.run(&["--secrets-dir", "/nonexistent"]);
    let report = run.report();
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert_eq!(report["exit_code"], 78);
    assert_eq!(report["success"], false);
    assert!(report["run_id"].as_str().is_some_and(|s| s.len() == 36));
    assert_eq!(report["floe_version"], env!("CARGO_PKG_VERSION"));
    assert!(report["duration_seconds"].as_f64().is_some());
    let good = run.result("good");
    for key in ["name", "type", "destination", "success", "rows_loaded", "tables_created", "duration_seconds", "attempts", "error"] {
        assert!(good.get(key).is_some(), "result lacks {key}: {good}");
    }
    assert_eq!((good["success"].as_bool(), good["rows_loaded"].as_i64(), good["attempts"].as_i64()), (Some(true), Some(2), Some(1)));
    assert!(good["error"].is_null());
    assert_eq!(run.result("partial")["error"]["category"], "PARTIAL");
    let gone = run.result("gone");
    assert_eq!((gone["error"]["category"].as_str(), gone["attempts"].as_i64()), (Some("PERMANENT"), Some(1)), "PERMANENT is not retried");
    let secret = run.result("needs_secret");
    assert_eq!((secret["error"]["category"].as_str(), secret["error"]["code"].as_str()), (Some("CONFIGURATION"), Some("SECRET_NOT_FOUND")));
    assert!(secret["error"]["message"].as_str().is_some_and(|m| m.contains("FLOE_SECRET_MISSING_DB_URL")));

    // Without the CONFIGURATION entry, PERMANENT wins over PARTIAL; then PARTIAL alone.
    assert_eq!(p.run(&["--select", "good", "--select", "partial", "--select", "gone"]).code, 69);
    // (a rerun would skip the already-loaded file, so reload it)
    assert_eq!(p.run(&["--select", "par*", "--select", "good", "--full-refresh"]).code, 65);
    assert_eq!(p.run(&["--select", "good"]).code, 0);
}

#[test]
fn dry_run_reports_the_plan_and_touches_nothing() {
    let spec = format!("ingestion:\n{}", fs_entry("good", "data", "    secret_refs: {token: api-token}\n"));
    let p = Project::new(MANIFEST, &spec);
    p.write("data/a.jsonl", "{\"id\": 1}\n");
    let mut p = p;
    p.env.push(("FLOE_SECRET_API_TOKEN".into(), "canary-secret-value-123".into()));
    let run = p.run(&["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.report();
    assert_eq!(plan["plan"][0]["secrets"]["api-token"], true);
    assert_eq!(plan["plan"][0]["source"], "filesystem");
    assert!(!run.stdout.contains("canary-secret-value-123"));
    assert!(!p.path(".floe").exists(), "dry run created the catalog");

    // After a real run, the plan shows the state it would resume from.
    assert_eq!(p.run(&[]).code, 0);
    let plan = p.run(&["--dry-run"]).report();
    assert!(plan["plan"][0]["resume_from"]["source"]["files"]["a.jsonl"].is_number(), "{plan}");
    p.env.clear();
    let run = p.run(&["--dry-run", "--secrets-dir", "/nonexistent"]);
    assert_eq!(run.code, 78);
    assert_eq!(run.report()["plan"][0]["secrets"]["api-token"], false);
}

#[test]
fn sigint_during_a_load_commits_nothing_and_a_rerun_completes() {
    let Some(py) = common::python() else { return };
    let p = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("big", "data", "")));
    // Enough rows that a debug build is still loading when the signal arrives.
    let mut f = std::io::BufWriter::new(std::fs::File::create({
        std::fs::create_dir_all(p.path("data")).expect("mkdir");
        p.path("data/big.jsonl")
    }).expect("file"));
    let rows = 1_500_000;
    for i in 0..rows {
        writeln!(f, "{{\"id\": {i}, \"name\": \"user-{i}\", \"amount\": {}.5, \"nested\": {{\"a\": {i}}}}}", i % 1000).expect("write");
    }
    drop(f);

    let child = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(["ingest", "run", "--output", "json"])
        .current_dir(p.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    // SAFETY-free: kill(1) with SIGINT through the shell's kill command.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(started.elapsed() < Duration::from_secs(20), "floe took too long to stop");
    assert_eq!(out.status.code(), Some(130), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report after SIGINT");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["results"][0]["error"]["code"], "INTERRUPTED");
    // Nothing was committed: no table, or a table without rows.
    let table = p.read(&py, "raw.big");
    assert!(table["exists"] == false || table["rows"].as_array().is_some_and(|r| r.is_empty()), "partial commit after SIGINT");

    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.result("big")["rows_loaded"], rows);
}

#[test]
fn the_readme_scripting_example_runs() {
    // The README's example, extracted verbatim, run against a failing and a passing project.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme.find("floe ingest run --output json > report.json").expect("example in README");
    let block = &readme[start..];
    let script = &block[..block.find("```").expect("end of block")];
    let floe_dir = std::path::Path::new(env!("CARGO_BIN_EXE_floe")).parent().expect("bin dir").display().to_string();

    let p = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("gone", "data/gone", "")));
    let out = Command::new("bash").arg("-c").arg(script).current_dir(p.dir.path()).env("PATH", format!("{floe_dir}:{}", std::env::var("PATH").unwrap_or_default())).output().expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if Command::new("jq").arg("--version").output().is_ok() {
        assert!(stdout.contains("gone: SOURCE_NOT_FOUND"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(out.status.code(), Some(1), "the script pages on PERMANENT: {stdout}");

    p.write("data/gone/a.jsonl", "{\"id\": 1}\n");
    let out = Command::new("bash").arg("-c").arg(script).current_dir(p.dir.path()).env("PATH", format!("{floe_dir}:{}", std::env::var("PATH").unwrap_or_default())).output().expect("bash");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all loaded"));
}

#[path = "support/http/mod.rs"]
mod http;

/// A REST entry against the local server; `request_max_attempts: 1` so every HTTP failure is
/// one floe attempt (the runner's retry policy is what is tested here).
fn rest_entry(name: &str, base: &str, path: &str) -> String {
    format!(
        "  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: rest_api\n      config:\n        client: {{base_url: \"{base}\", request_max_attempts: 1, paginator: single_page}}\n        resources: [{{name: items, endpoint: {{path: {path}, data_selector: items}}}}]\n"
    )
}

#[test]
fn retries_follow_the_policy() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let calls = flaky_calls.clone();
    let server = rt.block_on(http::Server::start(move |req: &http::Req| match req.path.as_str() {
        "/flaky" => {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                http::Resp::text(503, "warming up")
            } else {
                http::Resp::json(serde_json::json!({"items": [{"id": 1}, {"id": 2}]}))
            }
        }
        "/down" => http::Resp::text(503, "down"),
        "/denied" => http::Resp::text(401, "who are you"),
        _ => http::Resp::text(404, "no"),
    }));
    let manifest = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 3, initial_delay_seconds: 0.2, max_delay_seconds: 0.3, backoff_multiplier: 2.0}}\n";
    let spec = format!("ingestion:\n{}{}{}", rest_entry("flaky", &server.base, "flaky"), rest_entry("down", &server.base, "down"), rest_entry("denied", &server.base, "denied"));
    let p = Project::new(manifest, &spec);

    // Recovers on the second attempt.
    let run = p.run(&["--select", "flaky"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.result("flaky");
    assert_eq!((r["attempts"].as_i64(), r["rows_loaded"].as_i64(), r["success"].as_bool()), (Some(2), Some(2), Some(true)));

    // Never recovers: exactly max_attempts requests, delays within the policy's bounds.
    let run = p.run(&["--select", "down"]);
    assert_eq!(run.code, 75, "{}", run.stderr);
    let r = run.result("down");
    assert_eq!((r["attempts"].as_i64(), r["error"]["category"].as_str(), r["error"]["retryable"].as_bool()), (Some(3), Some("TRANSIENT"), Some(true)));
    let times: Vec<_> = server.requests().iter().filter(|q| q.path == "/down").map(|q| q.at).collect();
    assert_eq!(times.len(), 3, "one request per attempt");
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap <= Duration::from_millis(300 + 700), "delay {gap:?} beyond max_delay_seconds (+ process overhead)");
    }

    // PERMANENT: not retried.
    let run = p.run(&["--select", "denied"]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    let r = run.result("denied");
    assert_eq!((r["attempts"].as_i64(), r["error"]["code"].as_str()), (Some(1), Some("AUTH_FAILED")));
    assert_eq!(server.requests().iter().filter(|q| q.path == "/denied").count(), 1);

    // All three together: PERMANENT (69) wins over TRANSIENT (75).
    assert_eq!(p.run(&["--full-refresh"]).code, 69);
    drop(server);
}

#[path = "support/airbyte/mod.rs"]
mod airbyte_double;

fn airbyte_project(double: &airbyte_double::Double) -> Project {
    let manifest = format!(
        "plugins:\n  ingestion:\n    - type: dlt\n    - type: airbyte\n      config: {{workspace_url: \"{}\", connection_secret_ref: airbyte-token, poll_interval_seconds: 0.05, timeout_seconds: 60}}\n      retry: {{max_attempts: 1}}\n",
        double.public_url()
    );
    let spec = "ingestion:\n  - name: accounts\n    type: airbyte\n    destination: bronze.accounts\n    airbyte: {connection_id: \"9924bcd0-99be-453d-ba47-c2c9766f7da5\"}\n";
    let mut p = Project::new(&manifest, spec);
    p.env.push(("FLOE_SECRET_AIRBYTE_TOKEN".into(), "airbyte-canary-token".into()));
    p
}

#[test]
fn an_airbyte_sync_runs_through_the_binary() {
    let double = airbyte_double::Double::start("airbyte-canary-token");
    double.plan_next_job(airbyte_double::JobPlan::new(&["pending", "running", "succeeded"]).rows(42));
    let p = airbyte_project(&double);
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.result("accounts");
    assert_eq!((r["type"].as_str(), r["rows_loaded"].as_i64(), r["success"].as_bool()), (Some("airbyte"), Some(42), Some(true)));
    assert_eq!(r["job"]["job_id"].as_i64(), double.job_ids().first().copied());
    assert!(!run.stdout.contains("airbyte-canary-token") && !run.stderr.contains("airbyte-canary-token"));
    assert_eq!(double.jobs_created(), 1);
}

#[test]
fn sigint_cancels_the_running_airbyte_job() {
    let double = airbyte_double::Double::start("airbyte-canary-token");
    double.plan_next_job(airbyte_double::JobPlan::forever_running());
    let p = airbyte_project(&double);
    let child = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(["ingest", "run", "--output", "json"])
        .current_dir(p.dir.path())
        .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while double.jobs_created() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["results"][0]["error"]["code"], "INTERRUPTED");
    assert_eq!(double.cancelled_jobs(), double.job_ids(), "the running job was not cancelled");
}
