//! Airbyte scenarios through the `floe` binary: each asserts the exit code and the report
//! JSON, against the Airbyte test double (`tests/support/airbyte/`, which follows Airbyte's
//! published API; Airbyte itself cannot run here). SIGINT during polling is in runner.rs.

mod common;

#[path = "support/airbyte/mod.rs"]
mod double;

use std::time::Duration;

use common::Project;
use double::{Api, Canned, Double, JobPlan, Route, CONNECTION};
use serde_json::Value;

const TOKEN: &str = "airbyte-canary-token-7d1e";
const CLIENT: &str = "client-canary-id";
const CLIENT_SECRET: &str = "client-canary-secret-9f2c";

struct Scenario {
    api: Api,
    auth: &'static str,
    retry: &'static str,
    timeout: f64,
    connection: &'static str,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario { api: Api::Public, auth: "token", retry: "{max_attempts: 1}", timeout: 60.0, connection: CONNECTION }
    }
}

/// Run one entry against `double`; returns (exit code, the entry's result, whole stdout+stderr).
fn run(double: &Double, s: Scenario, secret: &str) -> (i32, Value, String) {
    let api = match s.api {
        Api::Public => "public",
        Api::Config => "config",
    };
    let manifest = format!(
        "plugins:\n  ingestion:\n    type: airbyte\n    config: {{workspace_url: \"{}\", connection_secret_ref: airbyte-secret, api: {api}, auth: {}, poll_interval_seconds: 0.05, timeout_seconds: {}}}\n    retry: {}\n",
        double.url(s.api),
        s.auth,
        s.timeout,
        s.retry
    );
    let spec = format!("ingestion:\n  - name: accounts\n    type: airbyte\n    destination: bronze.accounts\n    airbyte: {{connection_id: \"{}\"}}\n", s.connection);
    let mut p = Project::new(&manifest, &spec);
    p.env.push(("FLOE_SECRET_AIRBYTE_SECRET".into(), secret.into()));
    let r = p.run(&[]);
    let all = format!("{}\n{}", r.stdout, r.stderr);
    for canary in [TOKEN, CLIENT_SECRET] {
        assert!(!all.contains(canary), "a secret leaked:\n{all}");
    }
    (r.code, r.result("accounts"), all)
}

fn category(r: &Value) -> (&str, &str) {
    (r["error"]["category"].as_str().unwrap_or(""), r["error"]["code"].as_str().unwrap_or(""))
}

#[test]
fn success_after_queued_running() {
    for api in [Api::Public, Api::Config] {
        let d = Double::start(TOKEN);
        d.plan_next_job(JobPlan::new(&["pending", "queued", "running", "succeeded"]).rows(1234));
        let (code, r, all) = run(&d, Scenario { api, ..Scenario::default() }, TOKEN);
        assert_eq!(code, 0, "{all}");
        assert_eq!((r["success"].as_bool(), r["rows_loaded"].as_i64(), r["attempts"].as_i64()), (Some(true), Some(1234), Some(1)));
        assert_eq!(r["job"]["job_id"].as_i64(), d.job_ids().first().copied());
    }
}

#[test]
fn conflict_409_attaches_to_the_running_sync() {
    let d = Double::start(TOKEN);
    let running = d.seed_job(JobPlan::new(&["running", "running", "succeeded"]).rows(5), Duration::from_secs(60));
    let (code, r, all) = run(&d, Scenario::default(), TOKEN);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["rows_loaded"], 5);
    assert_eq!((r["job"]["job_id"].as_i64(), r["job"]["attached"].as_bool()), (Some(running), Some(true)));
    assert_eq!((d.answered(409), d.jobs_created()), (1, 0), "no second sync may start");
}

#[test]
fn incomplete_then_succeeded() {
    let d = Double::start(TOKEN);
    d.plan_next_job(JobPlan::new(&["running", "incomplete", "running", "succeeded"]).rows(77));
    let (code, r, all) = run(&d, Scenario::default(), TOKEN);
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["rows_loaded"], 77);
}

#[test]
fn failed_with_each_failure_type() {
    let cases: [(Option<&str>, Option<bool>, i32, &str, &str); 5] = [
        (Some("config_error"), Some(false), 78, "CONFIGURATION", "INVALID_CONFIG"),
        (Some("transient_error"), Some(true), 75, "TRANSIENT", "SOURCE_ERROR"),
        (Some("heartbeat_timeout"), None, 75, "TRANSIENT", "TIMEOUT"),
        (Some("system_error"), None, 69, "PERMANENT", "SOURCE_ERROR"),
        (Some("manual_cancellation"), None, 69, "PERMANENT", "SYNC_CANCELLED"),
    ];
    for (kind, retryable, exit, cat, code) in cases {
        let d = Double::start(TOKEN);
        d.plan_next_job(JobPlan::new(&["running", "failed"]).failing(kind, "source", "the connector said no", retryable));
        let (got, r, all) = run(&d, Scenario { api: Api::Config, ..Scenario::default() }, TOKEN);
        assert_eq!(got, exit, "{kind:?}: {all}");
        assert_eq!(category(&r), (cat, code), "{kind:?}: {r}");
        assert_eq!(r["error"]["details"]["failure_type"].as_str(), kind);
    }
}

#[test]
fn http_errors_map_to_exit_codes() {
    // 401: a token Airbyte does not accept.
    let d = Double::start("a-different-token");
    let (code, r, _) = run(&d, Scenario::default(), TOKEN);
    assert_eq!((code, category(&r)), (69, ("PERMANENT", "AUTH_FAILED")));

    // 404: an unknown connection.
    let d = Double::start(TOKEN);
    let (code, r, _) = run(&d, Scenario { connection: "00000000-0000-4000-8000-00000000dead", ..Scenario::default() }, TOKEN);
    assert_eq!((code, category(&r)), (69, ("PERMANENT", "SOURCE_NOT_FOUND")));

    // 429 without Retry-After.
    let d = Double::start(TOKEN);
    d.script(Route::Trigger, Canned::status(Api::Public, 429));
    let (code, r, _) = run(&d, Scenario::default(), TOKEN);
    assert_eq!((code, category(&r)), (75, ("TRANSIENT", "RATE_LIMITED")));
    assert!(r["error"]["retry_after_seconds"].is_null());
    assert_eq!(r["error"]["retryable"], true);

    // 500, then success on the runner's second attempt: exactly one sync started.
    let d = Double::start(TOKEN);
    d.script(Route::Trigger, Canned::status(Api::Public, 500));
    d.plan_next_job(JobPlan::new(&["running", "succeeded"]).rows(3));
    let (code, r, all) = run(&d, Scenario { retry: "{max_attempts: 2, initial_delay_seconds: 0.01, max_delay_seconds: 0.02}", ..Scenario::default() }, TOKEN);
    assert_eq!(code, 0, "{all}");
    assert_eq!((r["attempts"].as_i64(), r["rows_loaded"].as_i64()), (Some(2), Some(3)));
    assert_eq!(d.jobs_created(), 1);
}

#[test]
fn a_job_that_never_ends_is_cancelled_at_the_timeout() {
    let d = Double::start(TOKEN);
    d.plan_next_job(JobPlan::forever_running());
    let (code, r, all) = run(&d, Scenario { timeout: 0.6, ..Scenario::default() }, TOKEN);
    assert_eq!((code, category(&r)), (75, ("TRANSIENT", "TIMEOUT")), "{all}");
    assert_eq!(d.cancelled_jobs(), d.job_ids(), "the server saw the cancel request");
}

#[test]
fn an_expiring_token_is_refreshed_mid_run() {
    let d = Double::start_client_credentials(CLIENT, CLIENT_SECRET, 2, Duration::from_secs(2));
    let mut statuses = vec!["pending"];
    statuses.extend(std::iter::repeat_n("running", 60));
    statuses.push("succeeded");
    d.plan_next_job(JobPlan::new(&statuses).rows(11));
    let (code, r, all) = run(&d, Scenario { auth: "client_credentials", ..Scenario::default() }, &format!("{CLIENT}:{CLIENT_SECRET}"));
    assert_eq!(code, 0, "{all}");
    assert_eq!(r["rows_loaded"], 11);
    assert!(d.count(Route::Token) >= 2, "token requests: {}", d.count(Route::Token));
}
