//! The Airbyte plugin against a test double of Airbyte's API (`tests/support/airbyte/`):
//! every classification row, 409 attach, lost-trigger reconciliation, timeout → cancel,
//! `cancel_all`, token refresh, both APIs, dry-run planning, and a secret canary.

#[path = "support/airbyte/mod.rs"]
mod double;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use double::{Api, Canned, Double, JobPlan, Route, CONNECTION, WORKSPACE};
use floe::airbyte::AirbytePlugin;
use floe::artifact::{AirbytePlugin as Settings, CompiledEntry};
use floe::config::manifest::{AirbyteApi, AirbyteAuth, IngestionType, RetryPolicy};
use floe::config::spec::{AirbyteBlock, WriteDisposition};
use floe::engine::EntryOutcome;
use floe::error::{Category, IngestionError};
use floe::run::plugin::IngestionPlugin;
use floe::secrets::SecretStore;
use floe::sources::Progress;
use serde_json::Value;

const SECRET_REF: &str = "airbyte-api-token";
// Canary values: none of them may ever appear in an error, a detail or a log line.
const TOKEN: &str = "canary-token-5b1e9d7c2f";
const CLIENT_ID: &str = "canary-client-id-8a3f";
const CLIENT_SECRET: &str = "canary-client-secret-c40e77";
const OTHER_CONNECTION: &str = "00000000-0000-4000-8000-00000000dead";

struct Harness {
    double: Double,
    plugin: Arc<AirbytePlugin>,

    _dir: tempfile::TempDir,
}

struct Options {
    auth: AirbyteAuth,
    /// The secret's value; `None`: the secret does not exist.
    secret: Option<String>,
    poll: f64,
    timeout: f64,
    request_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { auth: AirbyteAuth::Token, secret: Some(TOKEN.into()), poll: 0.02, timeout: 20.0, request_timeout: Duration::from_secs(3) }
    }
}

impl Harness {
    fn new(api: Api) -> Harness {
        Harness::with(Double::start(TOKEN), api, Options::default())
    }

    fn client_credentials(api: Api, expires_in: i64, lifetime: Duration, poll: f64) -> Harness {
        let d = Double::start_client_credentials(CLIENT_ID, CLIENT_SECRET, expires_in, lifetime);
        Harness::with(d, api, Options { auth: AirbyteAuth::ClientCredentials, secret: Some(format!("{CLIENT_ID}:{CLIENT_SECRET}")), poll, ..Options::default() })
    }

    fn with(double: Double, api: Api, o: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        if let Some(secret) = &o.secret {
            std::fs::write(dir.path().join(SECRET_REF), format!("{secret}\n")).unwrap_or_else(|e| panic!("write secret: {e}"));
        }
        let settings = Settings {
            workspace_url: double.url(api),
            connection_secret_ref: SECRET_REF.into(),
            api: match api {
                Api::Public => AirbyteApi::Public,
                Api::Config => AirbyteApi::Config,
            },
            auth: o.auth,
            poll_interval_seconds: o.poll,
            timeout_seconds: o.timeout,
            retry: RetryPolicy::default(),
        };
        let plugin = AirbytePlugin::new(&settings, SecretStore::new(Some(dir.path()))).with_request_timeout(o.request_timeout);
        Harness { double, plugin: Arc::new(plugin), _dir: dir }
    }

    async fn run(&self) -> Result<EntryOutcome, IngestionError> {
        self.run_on(CONNECTION).await.0
    }

    async fn run_on(&self, connection: &str) -> (Result<EntryOutcome, IngestionError>, Arc<Progress>) {
        let progress = Arc::new(Progress::default());
        let result = self.plugin.run(&entry(connection), progress.clone()).await;
        (result, progress)
    }

    fn details(&self) -> BTreeMap<String, Value> {
        self.plugin.job_details("salesforce_sync").unwrap_or_else(|| panic!("no job details"))
    }
}

fn entry(connection: &str) -> CompiledEntry {
    CompiledEntry {
        name: "salesforce_sync".into(),
        kind: IngestionType::Airbyte,
        destination: "bronze.salesforce_accounts".into(),
        namespace: "bronze".into(),
        table: "salesforce_accounts".into(),
        description: None,
        write_disposition: WriteDisposition::Append,
        primary_key: vec![],
        incremental: None,
        source: None,
        airbyte: Some(AirbyteBlock { connection_id: connection.into() }),
        secret_refs: BTreeMap::new(),
        retry: RetryPolicy::default(),
    }
}

#[track_caller]
fn err(r: Result<EntryOutcome, IngestionError>) -> IngestionError {
    match r {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn ok(r: Result<EntryOutcome, IngestionError>) -> EntryOutcome {
    match r {
        Ok(o) => o,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

#[track_caller]
fn assert_class(e: &IngestionError, category: Category, code: &str) {
    assert_eq!((e.category, e.code.as_str()), (category, code), "{e:?}");
    assert_eq!(e.source, "airbyte", "{e:?}");
    assert_eq!(e.retryable, category == Category::Transient, "{e:?}");
}

fn detail_i64(e: &IngestionError, key: &str) -> Option<i64> {
    e.details.get(key).and_then(Value::as_i64)
}

/// Runs `$body(api)` once per API as `$name::public` and `$name::config`.
macro_rules! both_apis {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn public() {
                super::$name(super::Api::Public).await
            }
            #[tokio::test]
            async fn config() {
                super::$name(super::Api::Config).await
            }
        }
    };
}

// ---------- success ----------

async fn success_after_queued_running(api: Api) {
    let h = Harness::new(api);
    h.double.plan_next_job(JobPlan::new(&["pending", "queued", "running", "running", "succeeded"]).rows(1234));
    let (result, progress) = h.run_on(CONNECTION).await;
    let outcome = ok(result);
    assert_eq!(outcome.rows_loaded, 1234);
    assert_eq!(progress.rows.load(Ordering::Relaxed), 1234);
    assert!(progress.units.load(Ordering::Relaxed) >= 4);
    assert_eq!(h.double.jobs_created(), 1);
    assert_eq!(h.double.count(Route::Trigger), 1);
    // The trigger carries exactly Airbyte's fields.
    let trigger = h.double.requests().into_iter().find(|r| r.route == Some(Route::Trigger)).unwrap_or_else(|| panic!("no trigger"));
    let mut body = trigger.body.clone();
    if let Value::Object(m) = &mut body {
        m.remove("_created");
    }
    match api {
        Api::Public => assert_eq!(body, serde_json::json!({"connectionId": CONNECTION, "jobType": "sync"})),
        Api::Config => assert_eq!(body, serde_json::json!({"connectionId": CONNECTION})),
    }
    assert_eq!(trigger.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    let d = h.details();
    let job_id = h.double.job_ids()[0];
    assert_eq!(d.get("job_id").and_then(Value::as_i64), Some(job_id));
    assert_eq!(d.get("job_status").and_then(Value::as_str), Some("succeeded"));
    assert_eq!(d.get("attached"), Some(&Value::Bool(false)));
    let url = d.get("job_url").and_then(Value::as_str).unwrap_or_default();
    assert!(url.ends_with(&format!("/workspaces/{WORKSPACE}/connections/{CONNECTION}/timeline?openLogs=true&jobId={job_id}")), "{url}");
    assert!(h.double.cancelled_jobs().is_empty());
}
both_apis!(success_after_queued_running);

async fn incomplete_then_succeeded(api: Api) {
    let h = Harness::new(api);
    h.double.plan_next_job(JobPlan::new(&["running", "incomplete", "running", "succeeded"]).rows(77));
    assert_eq!(ok(h.run().await).rows_loaded, 77);
    assert_eq!(h.double.jobs_created(), 1);
}
both_apis!(incomplete_then_succeeded);

// ---------- never blindly re-POST ----------

async fn conflict_409_attaches_to_running_sync(api: Api) {
    let h = Harness::new(api);
    let running = h.double.seed_job(JobPlan::new(&["running", "running", "succeeded"]).rows(5), Duration::from_secs(90));
    let outcome = ok(h.run().await);
    assert_eq!(outcome.rows_loaded, 5);
    assert_eq!(h.double.count(Route::Trigger), 1);
    assert_eq!(h.double.answered(409), 1);
    assert_eq!(h.double.jobs_created(), 0, "no second sync may be started");
    let d = h.details();
    assert_eq!(d.get("job_id").and_then(Value::as_i64), Some(running));
    assert_eq!(d.get("attached"), Some(&Value::Bool(true)));
}
both_apis!(conflict_409_attaches_to_running_sync);

async fn lost_trigger_response_is_reconciled(api: Api) {
    let h = Harness::new(api);
    h.double.plan_next_job(JobPlan::new(&["pending", "running", "succeeded"]).rows(3));
    h.double.script(Route::Trigger, Canned::DropAfterAction);
    assert_eq!(ok(h.run().await).rows_loaded, 3);
    assert_eq!(h.double.jobs_created(), 1, "exactly one job");
    assert_eq!(h.double.count(Route::Trigger), 1, "the trigger is not sent again");
    assert!(h.double.count(Route::ListJobs) >= 1);
}
both_apis!(lost_trigger_response_is_reconciled);

async fn trigger_dropped_before_creating_is_sent_again(api: Api) {
    let h = Harness::new(api);
    h.double.script(Route::Trigger, Canned::Drop);
    ok(h.run().await);
    assert_eq!(h.double.jobs_created(), 1);
    assert_eq!(h.double.count(Route::Trigger), 2);
}
both_apis!(trigger_dropped_before_creating_is_sent_again);

#[tokio::test]
async fn trigger_request_timeout_is_reconciled() {
    let o = Options { request_timeout: Duration::from_millis(400), ..Options::default() };
    let h = Harness::with(Double::start(TOKEN), Api::Public, o);
    h.double.script(Route::Trigger, Canned::HangAfterAction(Duration::from_millis(1500)));
    ok(h.run().await);
    assert_eq!(h.double.jobs_created(), 1);
    assert_eq!(h.double.count(Route::Trigger), 1);
}

#[tokio::test]
async fn reconciliation_uses_airbytes_clock() {
    for (api, offset) in [(Api::Public, -3600), (Api::Config, 3600), (Api::Public, 7200)] {
        let h = Harness::new(api);
        h.double.set_clock_offset(offset);
        // A job that is already over when floe lists: only its creation time says it is floe's.
        h.double.plan_next_job(JobPlan::new(&["succeeded"]).rows(3));
        h.double.script(Route::Trigger, Canned::DropAfterAction);
        assert_eq!(ok(h.run().await).rows_loaded, 3);
        assert_eq!((h.double.jobs_created(), h.double.count(Route::Trigger)), (1, 1), "api {api:?} offset {offset}");
        assert_eq!(h.details().get("attached"), Some(&Value::Bool(false)));
    }
}

#[tokio::test]
async fn reconciliation_ignores_older_finished_jobs() {
    let h = Harness::new(Api::Public);
    let old = h.double.seed_job(JobPlan::new(&["succeeded"]).rows(1), Duration::from_secs(600));
    h.double.script(Route::Trigger, Canned::Drop);
    ok(h.run().await);
    assert_eq!(h.double.jobs_created(), 1, "the sync is triggered again");
    assert_ne!(h.details().get("job_id").and_then(Value::as_i64), Some(old));
}

#[tokio::test]
async fn unreconciled_trigger_is_resolved_by_the_next_attempt() {
    let h = Harness::new(Api::Config);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "succeeded"]).rows(9));
    h.double.script(Route::Trigger, Canned::DropAfterAction);
    h.double.script(Route::ListJobs, Canned::status(Api::Config, 503));
    let first = err(h.run().await);
    assert_class(&first, Category::Transient, "UNAVAILABLE");
    assert!(first.details.contains_key("reconciliation"), "{first:?}");
    let outcome = ok(h.run().await);
    assert_eq!(outcome.rows_loaded, 9);
    assert_eq!((h.double.jobs_created(), h.double.count(Route::Trigger)), (1, 1));
}

// ---------- HTTP classification ----------

async fn unauthorized_401(api: Api) {
    let h = Harness::with(Double::start("a-different-token"), api, Options::default());
    let e = err(h.run().await);
    assert_class(&e, Category::Permanent, "AUTH_FAILED");
    assert_eq!(detail_i64(&e, "http_status"), Some(401));
    assert!(e.message.contains(SECRET_REF), "{}", e.message);
    assert_eq!(h.double.jobs_created(), 0);
}
both_apis!(unauthorized_401);

#[tokio::test]
async fn forbidden_403() {
    let h = Harness::new(Api::Public);
    h.double.script(Route::Trigger, Canned::status(Api::Public, 403));
    assert_class(&err(h.run().await), Category::Permanent, "AUTH_FAILED");
}

async fn unknown_connection_404(api: Api) {
    let h = Harness::new(api);
    let e = err(h.run_on(OTHER_CONNECTION).await.0);
    assert_class(&e, Category::Permanent, "SOURCE_NOT_FOUND");
    assert_eq!(e.details.get("connection_id").and_then(Value::as_str), Some(OTHER_CONNECTION));
    assert!(e.message.contains(OTHER_CONNECTION));
}
both_apis!(unknown_connection_404);

#[tokio::test]
async fn rate_limited_429_without_retry_after() {
    let h = Harness::new(Api::Public);
    h.double.script(Route::Trigger, Canned::status(Api::Public, 429));
    let e = err(h.run().await);
    assert_class(&e, Category::Transient, "RATE_LIMITED");
    assert_eq!(e.retry_after_seconds, None);
    assert_eq!(h.double.jobs_created(), 0);
}

#[tokio::test]
async fn rate_limited_429_with_retry_after() {
    let h = Harness::new(Api::Config);
    h.double.script(Route::Trigger, Canned::status(Api::Config, 429).with_retry_after("60"));
    let e = err(h.run().await);
    assert_class(&e, Category::Transient, "RATE_LIMITED");
    assert_eq!(e.retry_after_seconds, Some(60));
}

async fn server_error_500_then_success(api: Api) {
    let h = Harness::new(api);
    h.double.script(Route::Trigger, Canned::status(api, 500));
    let e = err(h.run().await);
    assert_class(&e, Category::Transient, "UNAVAILABLE");
    assert_eq!(h.double.jobs_created(), 0);
    // The runner's retry: the next attempt succeeds and starts exactly one sync.
    ok(h.run().await);
    assert_eq!(h.double.jobs_created(), 1);
}
both_apis!(server_error_500_then_success);

#[tokio::test]
async fn transient_polling_errors_are_tolerated() {
    let h = Harness::new(Api::Public);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "succeeded"]).rows(4));
    h.double.script(Route::GetJob, Canned::status(Api::Public, 500));
    h.double.script(Route::GetJob, Canned::status(Api::Public, 429));
    h.double.script(Route::GetJob, Canned::Drop);
    assert_eq!(ok(h.run().await).rows_loaded, 4);
}

#[tokio::test]
async fn job_left_running_is_resumed_by_the_next_attempt() {
    let h = Harness::new(Api::Public);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "succeeded"]).rows(8));
    for _ in 0..6 {
        h.double.script(Route::GetJob, Canned::status(Api::Public, 503));
    }
    let e = err(h.run().await);
    assert_class(&e, Category::Transient, "UNAVAILABLE");
    assert_eq!(e.details.get("job_left_running"), Some(&Value::Bool(true)));
    let job = detail_i64(&e, "job_id");
    assert!(job.is_some());
    assert_eq!(ok(h.run().await).rows_loaded, 8);
    assert_eq!((h.double.jobs_created(), h.double.count(Route::Trigger)), (1, 1));
    assert_eq!(h.details().get("job_id").and_then(Value::as_i64), job);
}

// ---------- job outcomes ----------

#[tokio::test]
async fn failure_types_through_the_config_api() {
    type Case = (Option<&'static str>, &'static str, Option<bool>, Category, &'static str);
    let cases: [Case; 10] = [
        (Some("config_error"), "source", Some(false), Category::Configuration, "INVALID_CONFIG"),
        (Some("config_error"), "destination", Some(false), Category::Configuration, "DESTINATION_CONFIG_ERROR"),
        (Some("refresh_schema"), "source", None, Category::Configuration, "INVALID_CONFIG"),
        (Some("transient_error"), "source", Some(true), Category::Transient, "SOURCE_ERROR"),
        (Some("heartbeat_timeout"), "replication", None, Category::Transient, "TIMEOUT"),
        (Some("destination_timeout"), "destination", None, Category::Transient, "TIMEOUT"),
        (Some("system_error"), "source", None, Category::Permanent, "SOURCE_ERROR"),
        (Some("system_error"), "destination", Some(true), Category::Transient, "DESTINATION_ERROR"),
        (Some("manual_cancellation"), "airbyte_platform", None, Category::Permanent, "SYNC_CANCELLED"),
        (None, "unknown", None, Category::Permanent, "SOURCE_ERROR"),
    ];
    for (kind, origin, retryable, category, code) in cases {
        let h = Harness::new(Api::Config);
        h.double.plan_next_job(JobPlan::new(&["running", "failed"]).failing(kind, origin, "the connector said no", retryable));
        let e = err(h.run().await);
        assert_class(&e, category, code);
        assert_eq!(detail_i64(&e, "job_id"), Some(h.double.job_ids()[0]), "{kind:?}");
        assert_eq!(e.details.get("failure_type").and_then(Value::as_str), kind, "{e:?}");
        assert!(e.message.contains("the connector said no"), "{}", e.message);
    }
}

#[tokio::test]
async fn transient_rate_limit_failure_is_rate_limited() {
    let h = Harness::new(Api::Config);
    h.double.plan_next_job(JobPlan::new(&["running", "failed"]).failing(Some("transient_error"), "source", "HTTP 429 Too Many Requests from Salesforce", Some(true)));
    assert_class(&err(h.run().await), Category::Transient, "RATE_LIMITED");
}

async fn failed_after_committing_rows_is_partial(api: Api) {
    let h = Harness::new(api);
    h.double.plan_next_job(JobPlan::new(&["running", "incomplete", "running", "failed"]).failing(Some("system_error"), "destination", "disk full", None).partial(40));
    let e = err(h.run().await);
    assert_class(&e, Category::Partial, "PARTIAL_SYNC");
    assert_eq!(detail_i64(&e, "rows_committed"), Some(40));
}
both_apis!(failed_after_committing_rows_is_partial);

#[tokio::test]
async fn failed_through_the_public_api_has_no_reason() {
    let h = Harness::new(Api::Public);
    h.double.plan_next_job(JobPlan::new(&["running", "failed"]).failing(Some("transient_error"), "source", "hidden", Some(true)));
    let e = err(h.run().await);
    assert_class(&e, Category::Permanent, "SOURCE_ERROR");
    assert!(e.details.get("job_url").and_then(Value::as_str).is_some_and(|u| u.contains("/workspaces/")));
}

async fn cancelled_by_someone_else(api: Api) {
    let h = Harness::new(api);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "cancelled"]));
    let e = err(h.run().await);
    assert_class(&e, Category::Permanent, "SYNC_CANCELLED");
    assert!(detail_i64(&e, "job_id").is_some());
    assert!(h.double.cancelled_jobs().is_empty(), "floe did not cancel it");
}
both_apis!(cancelled_by_someone_else);

// ---------- timeout and interruption ----------

async fn timeout_cancels_the_job(api: Api) {
    let o = Options { poll: 0.05, timeout: 0.6, ..Options::default() };
    let h = Harness::with(Double::start(TOKEN), api, o);
    h.double.plan_next_job(JobPlan::forever_running());
    let started = std::time::Instant::now();
    let e = err(h.run().await);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_class(&e, Category::Transient, "TIMEOUT");
    let job = h.double.job_ids()[0];
    assert_eq!(h.double.cancelled_jobs(), vec![job], "the server saw the cancel request");
    assert_eq!(detail_i64(&e, "job_id"), Some(job));
    assert_eq!(e.details.get("job_cancelled"), Some(&Value::Bool(true)));
    assert_eq!(h.double.count(Route::CancelJob), 1);
}
both_apis!(timeout_cancels_the_job);

#[tokio::test]
async fn timeout_leaves_an_attached_job_running() {
    let o = Options { poll: 0.05, timeout: 0.4, ..Options::default() };
    let h = Harness::with(Double::start(TOKEN), Api::Public, o);
    h.double.seed_job(JobPlan::forever_running(), Duration::from_secs(30));
    let e = err(h.run().await);
    assert_class(&e, Category::Transient, "TIMEOUT");
    assert_eq!(e.details.get("job_cancelled"), Some(&Value::Bool(false)));
    assert!(h.double.cancelled_jobs().is_empty(), "floe did not start it, so it does not cancel it");
}

#[tokio::test]
async fn timeout_when_the_job_just_finished_reports_the_result() {
    // The deadline passes during the first wait, so exactly one status read precedes the cancel.
    let o = Options { poll: 1.0, timeout: 0.2, ..Options::default() };
    let h = Harness::with(Double::start(TOKEN), Api::Public, o);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "succeeded"]).rows(2));
    // The cancel finds the job no longer running (409): floe reads it once more.
    h.double.script(Route::CancelJob, Canned::Status { status: 409, body: r#"{"status":409,"type":"https://reference.airbyte.com/reference/errors#409-state-conflict","title":"state-conflict","detail":"State conflict","data":{"message":"Job is not currently running"}}"#.into(), retry_after: None });
    assert_eq!(ok(h.run().await).rows_loaded, 2);
    assert_eq!(h.double.count(Route::CancelJob), 1, "the timeout was reached");
}

#[tokio::test]
async fn attach_finds_the_running_job_among_many() {
    // Airbyte lists the oldest jobs first unless asked otherwise; 25 old jobs push the running
    // one off the first page of an unordered listing.
    for api in [Api::Public, Api::Config] {
        let h = Harness::new(api);
        for age in 0..25 {
            h.double.seed_job(JobPlan::new(&["succeeded"]), Duration::from_secs(86_400 - age * 60));
        }
        let running = h.double.seed_job(JobPlan::new(&["running", "succeeded"]).rows(6), Duration::from_secs(10));
        assert_eq!(ok(h.run().await).rows_loaded, 6);
        assert_eq!(h.details().get("job_id").and_then(Value::as_i64), Some(running));
        assert_eq!(h.double.jobs_created(), 0);
    }
}

async fn cancel_all_cancels_running_jobs(api: Api) {
    let h = Harness::with(Double::start(TOKEN), api, Options { poll: 0.05, ..Options::default() });
    h.double.plan_next_job(JobPlan::forever_running());
    let plugin = h.plugin.clone();
    let task = tokio::spawn(async move { plugin.run(&entry(CONNECTION), Arc::new(Progress::default())).await });
    for _ in 0..100 {
        if h.double.count(Route::GetJob) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.plugin.cancel_all().await;
    let result = tokio::time::timeout(Duration::from_secs(5), task).await.unwrap_or_else(|_| panic!("the attempt did not stop")).unwrap_or_else(|e| panic!("{e}"));
    let e = err(result);
    assert_eq!(e.code, "INTERRUPTED");
    let job = h.double.job_ids()[0];
    assert_eq!(h.double.cancelled_jobs(), vec![job]);
    assert_eq!(h.double.count(Route::CancelJob), 1, "cancelled once");
}
both_apis!(cancel_all_cancels_running_jobs);

#[tokio::test]
async fn cancel_all_cancels_the_job_of_a_trigger_in_flight() {
    let h = Harness::new(Api::Public);
    h.double.plan_next_job(JobPlan::forever_running());
    h.double.script(Route::Trigger, Canned::HangAfterAction(Duration::from_millis(1200)));
    let plugin = h.plugin.clone();
    let task = tokio::spawn(async move { plugin.run(&entry(CONNECTION), Arc::new(Progress::default())).await });
    for _ in 0..100 {
        if h.double.job_ids().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.plugin.cancel_all().await;
    let result = tokio::time::timeout(Duration::from_secs(6), task).await.unwrap_or_else(|_| panic!("the attempt did not stop")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(err(result).code, "INTERRUPTED");
    let job = h.double.job_ids()[0];
    assert_eq!(h.double.cancelled_jobs(), vec![job], "the job the trigger created was cancelled");
    assert_eq!(h.double.jobs_created(), 1);
}

#[tokio::test]
async fn cancel_all_with_nothing_running_contacts_nobody() {
    let h = Harness::new(Api::Public);
    h.plugin.cancel_all().await;
    assert!(h.double.requests().is_empty());
}

// ---------- credentials ----------

async fn client_credentials_token_is_refreshed_before_expiry(api: Api) {
    let h = Harness::client_credentials(api, 2, Duration::from_secs(2), 0.1);
    let mut statuses = vec!["pending"];
    statuses.extend(std::iter::repeat_n("running", 40));
    statuses.push("succeeded");
    h.double.plan_next_job(JobPlan::new(&statuses).rows(11));
    assert_eq!(ok(h.run().await).rows_loaded, 11);
    let tokens = h.double.count(Route::Token);
    assert!(tokens >= 2, "token requests: {tokens}");
    if api == Api::Public {
        // Refreshed from `expires_in`, before Airbyte had to reject anything.
        assert_eq!(h.double.answered(401), 0);
        let req = h.double.requests().into_iter().find(|r| r.route == Some(Route::Token)).unwrap_or_else(|| panic!("no token request"));
        assert_eq!(req.body, serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant-type": "client_credentials"}));
        assert!(req.authorization.is_none());
    }
    // Every authenticated request used an issued token, never the client secret.
    for r in h.double.requests().iter().filter(|r| r.route != Some(Route::Token)) {
        let auth = r.authorization.clone().unwrap_or_default();
        assert!(auth.starts_with("Bearer eyJ"), "{auth}");
    }
}
both_apis!(client_credentials_token_is_refreshed_before_expiry);

#[tokio::test]
async fn token_rejected_early_is_refreshed_once() {
    // Airbyte says 900 s, but the token stops working after 0.3 s (revoked, clock drift).
    let h = Harness::client_credentials(Api::Public, 900, Duration::from_millis(300), 0.1);
    h.double.plan_next_job(JobPlan::new(&["running", "running", "running", "running", "running", "running", "running", "running", "succeeded"]).rows(1));
    ok(h.run().await);
    assert!(h.double.count(Route::Token) >= 2);
    assert!(h.double.answered(401) >= 1);
    assert_eq!(h.double.jobs_created(), 1);
}

#[tokio::test]
async fn wrong_client_secret_is_auth_failed() {
    let d = Double::start_client_credentials(CLIENT_ID, "the-real-secret", 900, Duration::from_secs(900));
    let h = Harness::with(d, Api::Public, Options { auth: AirbyteAuth::ClientCredentials, secret: Some(format!("{CLIENT_ID}:{CLIENT_SECRET}")), ..Options::default() });
    let e = err(h.run().await);
    assert_class(&e, Category::Permanent, "AUTH_FAILED");
    assert!(e.message.contains("client credentials"), "{}", e.message);
    assert_eq!(h.double.count(Route::Trigger), 0);
}

#[tokio::test]
async fn missing_secret_is_configuration() {
    let h = Harness::with(Double::start(TOKEN), Api::Public, Options { secret: None, ..Options::default() });
    let e = err(h.run().await);
    assert_eq!((e.category, e.code.as_str()), (Category::Configuration, "SECRET_NOT_FOUND"));
    assert!(h.double.requests().is_empty());
}

#[tokio::test]
async fn malformed_client_credentials_are_configuration() {
    let d = Double::start_client_credentials(CLIENT_ID, CLIENT_SECRET, 900, Duration::from_secs(900));
    let h = Harness::with(d, Api::Public, Options { auth: AirbyteAuth::ClientCredentials, secret: Some(CLIENT_SECRET.into()), ..Options::default() });
    let e = err(h.run().await);
    assert_class(&e, Category::Configuration, "INVALID_CONFIG");
    assert!(!format!("{e:?}").contains(CLIENT_SECRET));
    assert!(h.double.requests().is_empty());
}

// ---------- dry run ----------

#[tokio::test]
async fn plan_touches_no_endpoint() {
    let h = Harness::new(Api::Public);
    let item = h.plugin.plan(&entry(CONNECTION)).await;
    assert_eq!(item.kind, "airbyte");
    assert_eq!(item.secrets.get(SECRET_REF), Some(&true));
    assert!(item.problems.is_empty(), "{:?}", item.problems);
    assert!(item.source.contains(CONNECTION));

    let missing = Harness::with(Double::start(TOKEN), Api::Config, Options { secret: None, ..Options::default() });
    let item = missing.plugin.plan(&entry(CONNECTION)).await;
    assert_eq!(item.secrets.get(SECRET_REF), Some(&false));
    assert_eq!(item.problems.len(), 1, "{:?}", item.problems);
    assert!(h.double.requests().is_empty() && missing.double.requests().is_empty());
}

// ---------- secrets never leak ----------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn canary_no_secret_in_errors_details_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).finish();
    // Global, not scoped: a scoped subscriber misses events whose callsites other test threads
    // registered first; this way the logs of every test in this binary are checked too.
    tracing::subscriber::set_global_default(subscriber).unwrap_or_else(|e| panic!("{e}"));

    let mut shown: Vec<String> = Vec::new();
    let mut issued: Vec<String> = Vec::new();
    let mut record = |h: &Harness, r: Result<EntryOutcome, IngestionError>| {
        shown.push(format!("{r:?}"));
        if let Err(e) = &r {
            shown.push(serde_json::to_string(e).unwrap_or_default());
            shown.push(e.to_string());
        }
        shown.push(format!("{:?}", h.plugin.job_details("salesforce_sync")));
        issued.extend(h.double.issued_tokens());
    };

    for api in [Api::Public, Api::Config] {
        // Airbyte echoing a secret in a failure message is scrubbed.
        let h = Harness::new(api);
        h.double.plan_next_job(JobPlan::new(&["running", "failed"]).failing(Some("config_error"), "source", &format!("login failed with {TOKEN}"), Some(false)));
        let r = h.run().await;
        if api == Api::Config {
            assert!(r.as_ref().err().is_some_and(|e| e.message.contains("login failed with ***")), "{r:?}");
        }
        record(&h, r);

        let h = Harness::with(Double::start("another-token"), api, Options::default());
        let r = h.run().await;
        record(&h, r);

        let h = Harness::new(api);
        let r = h.run_on(OTHER_CONNECTION).await.0;
        record(&h, r);

        let h = Harness::new(api);
        h.double.script(Route::Trigger, Canned::DropAfterAction);
        let r = h.run().await;
        record(&h, r);

        let h = Harness::with(Double::start(TOKEN), api, Options { poll: 0.05, timeout: 0.3, ..Options::default() });
        h.double.plan_next_job(JobPlan::forever_running());
        let r = h.run().await;
        record(&h, r);

        let h = Harness::client_credentials(api, 1, Duration::from_millis(500), 0.1);
        h.double.plan_next_job(JobPlan::new(&["running", "running", "running", "running", "running", "running", "running", "running", "running", "running", "running", "running", "incomplete", "running", "succeeded"]).rows(1));
        let r = h.run().await;
        record(&h, r);

        let d = Double::start_client_credentials(CLIENT_ID, "not-it", 900, Duration::from_secs(900));
        let h = Harness::with(d, api, Options { auth: AirbyteAuth::ClientCredentials, secret: Some(format!("{CLIENT_ID}:{CLIENT_SECRET}")), ..Options::default() });
        let r = h.run().await;
        record(&h, r);
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().map(|v| v.clone()).unwrap_or_default()).into_owned();
    assert!(logs.contains("Airbyte"), "logs were captured: {logs}");
    assert!(!issued.is_empty());
    let mut canaries: Vec<String> = vec![TOKEN.into(), CLIENT_ID.into(), CLIENT_SECRET.into()];
    canaries.extend(issued);
    for text in shown.iter().chain(std::iter::once(&logs)) {
        for canary in &canaries {
            assert!(!text.contains(canary.as_str()), "secret {canary:?} leaked in: {text}");
        }
    }
}
