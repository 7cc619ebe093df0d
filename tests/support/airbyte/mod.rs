//! A test double of Airbyte's HTTP API, for floe's Airbyte plugin tests (`tests/airbyte.rs`).
//!
//! It follows Airbyte's published API exactly — paths, request and response field names,
//! status words and HTTP status codes — as documented at:
//! - public API: https://reference.airbyte.com/reference/createjob (`POST /v1/jobs`),
//!   https://reference.airbyte.com/reference/getjob (`GET /v1/jobs/{jobId}`),
//!   https://reference.airbyte.com/reference/canceljob (`DELETE /v1/jobs/{jobId}`),
//!   https://reference.airbyte.com/reference/listjobs (`GET /v1/jobs`),
//!   https://reference.airbyte.com/reference/getconnection (`GET /v1/connections/{connectionId}`),
//!   https://reference.airbyte.com/reference/createaccesstoken (`POST /v1/applications/token`),
//!   https://reference.airbyte.com/reference/errors (RFC 7807 problem bodies);
//!   OpenAPI source: airbytehq/airbyte-platform `airbyte-api/server-api/src/main/openapi/
//!   api_documentation_jobs.yaml`, `api_documentation_applications.yaml`, `api-problems.yaml`;
//! - config API: airbytehq/airbyte-platform `airbyte-api/server-api/src/main/openapi/config.yaml`
//!   (`/v1/connections/sync`, `/v1/jobs/get`, `/v1/jobs/cancel`, `/v1/jobs/list`,
//!   `/v1/connections/get`, `/v1/applications/token`; `JobInfoRead`, `JobRead`, `AttemptRead`,
//!   `AttemptFailureSummary`, `FailureReason`, `JobReadList`, `KnownExceptionInfo`).
//!
//! Served as a self-managed deployment is: the public API under `/api/public/v1/…`, the config
//! API under `/api/v1/…`. Behaviour taken from the server's source where the spec is silent
//! (airbyte-platform 310e6cb6ac0e): a running sync makes a new trigger answer 409 ("A sync is
//! already running for: <id>", `TryAgainLaterConflictProblem` / `ValueConflictKnownException`);
//! cancelling a job that is not running answers 409 `state-conflict` (public) or 500
//! `{errorId}` (config); `startTime` is written by Java's `OffsetDateTime.toString()` (seconds
//! dropped when zero); listing public jobs without `orderBy` sorts by `createdAt` ascending;
//! 401 carries no body; the public API's load shedding answers 429 `{"message": "You are being
//! rate limited."}` without `Retry-After`; cancellation is asynchronous (the cancel answer may
//! still say `running`); the config API's `jobs/get` carries no `aggregatedStats` (list does).
//!
//! Scriptable per test (none of this is Airbyte behaviour, it is how tests provoke it): the
//! plan of each job created (its status sequence — `statuses[0]` at creation, one step per
//! status read — rows, failure reason), canned answers per route (any status and body, a
//! `Retry-After` header, dropping the connection before or after acting, hanging), tokens
//! that expire, and a server clock offset.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The connection the double knows by default.
pub const CONNECTION: &str = "9924bcd0-99be-453d-ba47-c2c9766f7da5";
pub const WORKSPACE: &str = "18dccc91-0ab1-4f72-9ed7-0b8fc27c5826";

/// Which API a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Public,
    Config,
}

/// The operations the double serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Token,
    Trigger,
    GetJob,
    CancelJob,
    ListJobs,
    GetConnection,
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Request {
    pub api: Api,
    pub route: Option<Route>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// The status the double answered (`None`: no answer, the connection was dropped).
    pub answered: Option<u16>,
}

/// A failure reason for a failed job's last attempt (`FailureReason`).
#[derive(Debug, Clone)]
pub struct FailureSpec {
    pub failure_type: Option<String>,
    pub failure_origin: String,
    pub external_message: String,
    pub retryable: Option<bool>,
}

/// How a job created by the double behaves.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// `statuses[0]` at creation; each status read (`GET /v1/jobs/{id}`, `jobs/get`) moves one
    /// step on; the last one stays.
    pub statuses: Vec<&'static str>,
    /// Records committed when the job succeeds.
    pub rows: i64,
    pub bytes: i64,
    /// Records committed before a failure.
    pub rows_on_failure: i64,
    /// The failed attempt's reason, when the job fails.
    pub failure: Option<FailureSpec>,
    /// `failureSummary.partialSuccess` of the failed attempt.
    pub partial_success: Option<bool>,
}

impl JobPlan {
    pub fn new(statuses: &[&'static str]) -> JobPlan {
        JobPlan { statuses: statuses.to_vec(), rows: 0, bytes: 0, rows_on_failure: 0, failure: None, partial_success: None }
    }

    pub fn rows(mut self, rows: i64) -> JobPlan {
        self.rows = rows;
        self.bytes = rows * 100;
        self
    }

    pub fn failing(mut self, failure_type: Option<&str>, origin: &str, message: &str, retryable: Option<bool>) -> JobPlan {
        self.failure = Some(FailureSpec { failure_type: failure_type.map(str::to_string), failure_origin: origin.into(), external_message: message.into(), retryable });
        self
    }

    pub fn partial(mut self, rows_committed: i64) -> JobPlan {
        self.rows_on_failure = rows_committed;
        self.partial_success = Some(rows_committed > 0);
        self
    }

    /// A job that never ends.
    pub fn forever_running() -> JobPlan {
        JobPlan::new(&["pending", "running"])
    }
}

/// A scripted answer for the next request to a route.
#[derive(Debug, Clone)]
pub enum Canned {
    /// Answer with this status and body (and `Retry-After` when given) without acting.
    Status { status: u16, body: String, retry_after: Option<String> },
    /// Close the connection without answering, without acting.
    Drop,
    /// Act (e.g. create the job), then close the connection without answering.
    DropAfterAction,
    /// Act, then hold the connection this long without answering, then close it.
    HangAfterAction(Duration),
}

impl Canned {
    /// A status with Airbyte's body for it on `api`.
    pub fn status(api: Api, status: u16) -> Canned {
        let body = match (status, api) {
            (401, _) => String::new(),
            (429, _) => json!({"message": "You are being rate limited."}).to_string(),
            (500, Api::Config) => json!({"errorId": "5f3c1d8e-0000-4000-8000-000000000500"}).to_string(),
            (s, Api::Public) => problem(s, "https://reference.airbyte.com/reference/errors", "unexpected-problem", "An unexpected problem has occurred.", json!({"message": "scripted"})).to_string(),
            (_, Api::Config) => json!({"message": "scripted", "exceptionClassName": "io.airbyte.commons.server.errors.KnownException", "exceptionStack": []}).to_string(),
        };
        Canned::Status { status, body, retry_after: None }
    }

    pub fn with_retry_after(self, value: &str) -> Canned {
        match self {
            Canned::Status { status, body, .. } => Canned::Status { status, body, retry_after: Some(value.into()) },
            other => other,
        }
    }
}

fn problem(status: u16, kind: &str, title: &str, detail: &str, data: Value) -> Value {
    json!({"status": status, "type": kind, "title": title, "detail": detail, "data": data})
}

#[derive(Debug, Clone)]
enum AuthMode {
    /// One fixed bearer token.
    Static(String),
    /// An application: tokens from `applications/token`, reporting `expires_in` and actually
    /// expiring after `lifetime`.
    Client { id: String, secret: String, expires_in: i64, lifetime: Duration },
}

#[derive(Debug, Clone)]
struct JobRec {
    id: i64,
    connection: String,
    created_at: i64,
    plan: JobPlan,
    /// Status reads so far (the step in `plan.statuses`).
    reads: usize,
    cancel_requested: bool,
    /// The step at which the job was cancelled.
    cancelled_at: Option<usize>,
}

impl JobRec {
    fn step(&self) -> usize {
        self.reads.min(self.plan.statuses.len().saturating_sub(1))
    }

    fn status(&self) -> &'static str {
        if self.cancelled_at.is_some_and(|at| self.reads > at) {
            return "cancelled";
        }
        self.plan.statuses.get(self.step()).copied().unwrap_or("succeeded")
    }

    fn terminal(&self) -> bool {
        matches!(self.status(), "succeeded" | "failed" | "cancelled")
    }

    fn rows(&self) -> Option<(i64, i64)> {
        match self.status() {
            "pending" => None,
            "succeeded" => Some((self.plan.rows, self.plan.bytes)),
            "failed" | "cancelled" => Some((self.plan.rows_on_failure, self.plan.rows_on_failure * 100)),
            _ => {
                let n = self.plan.statuses.len().max(1) as i64;
                let k = self.step() as i64;
                Some((self.plan.rows * k / n, self.plan.bytes * k / n))
            }
        }
    }
}

#[derive(Debug)]
struct State {
    auth: AuthMode,
    issued: HashMap<String, Instant>,
    token_counter: u64,
    token_prefix: String,
    connections: Vec<String>,
    jobs: Vec<JobRec>,
    next_id: i64,
    plans: VecDeque<JobPlan>,
    canned: HashMap<Route, VecDeque<Canned>>,
    requests: Vec<Request>,
    clock_offset: i64,
}

/// The running double. Dropping it stops it.
pub struct Double {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Double {
    /// Start on a free local port, accepting the bearer token `token`.
    pub fn start(token: &str) -> Double {
        Double::with_auth(AuthMode::Static(token.into()))
    }

    /// Start with an application (`client_id`, `client_secret`) whose tokens report
    /// `expires_in` seconds and really expire after `lifetime`.
    pub fn start_client_credentials(id: &str, secret: &str, expires_in: i64, lifetime: Duration) -> Double {
        Double::with_auth(AuthMode::Client { id: id.into(), secret: secret.into(), expires_in, lifetime })
    }

    fn with_auth(auth: AuthMode) -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let state = Arc::new(Mutex::new(State {
            auth,
            issued: HashMap::new(),
            token_counter: 0,
            token_prefix: "eyJhbGciOiJSUzI1NiJ9.double".into(),
            connections: vec![CONNECTION.to_string()],
            jobs: Vec::new(),
            next_id: 1000,
            plans: VecDeque::new(),
            canned: HashMap::new(),
            requests: Vec::new(),
            clock_offset: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let st = st.clone();
                    thread::spawn(move || serve(stream, st));
                }
            }
        });
        Double { addr, state, stop }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `workspace_url` for `api: public` (self-managed layout).
    pub fn public_url(&self) -> String {
        format!("http://{}/api/public", self.addr)
    }

    /// `workspace_url` for `api: config`.
    pub fn config_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, api: Api) -> String {
        match api {
            Api::Public => self.public_url(),
            Api::Config => self.config_url(),
        }
    }

    /// The plan of the next job a trigger creates (default: pending → running → succeeded, 10 rows).
    pub fn plan_next_job(&self, plan: JobPlan) {
        self.st().plans.push_back(plan);
    }

    /// The next request to `route` gets `canned` (queued in order).
    pub fn script(&self, route: Route, canned: Canned) {
        self.st().canned.entry(route).or_default().push_back(canned);
    }

    /// A job someone else started `age` ago.
    pub fn seed_job(&self, plan: JobPlan, age: Duration) -> i64 {
        let mut st = self.st();
        let now = server_now(&st);
        let id = st.next_id;
        st.next_id += 1;
        st.jobs.push(JobRec { id, connection: CONNECTION.into(), created_at: now - age.as_secs() as i64, plan, reads: 0, cancel_requested: false, cancelled_at: None });
        id
    }

    /// Shift the double's clock (job times and the `Date` header) by `seconds`.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.st().clock_offset = seconds;
    }

    /// Prefix of the access tokens the double issues.
    pub fn set_token_prefix(&self, prefix: &str) {
        self.st().token_prefix = prefix.into();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.st().requests.clone()
    }

    pub fn count(&self, route: Route) -> usize {
        self.st().requests.iter().filter(|r| r.route == Some(route)).count()
    }

    /// Requests answered with `status`.
    pub fn answered(&self, status: u16) -> usize {
        self.st().requests.iter().filter(|r| r.answered == Some(status)).count()
    }

    /// Jobs created by triggers (seeded jobs excluded).
    pub fn jobs_created(&self) -> usize {
        self.st().requests.iter().filter(|r| r.route == Some(Route::Trigger) && created_by(r)).count()
    }

    /// Ids of jobs a cancel request named.
    pub fn cancelled_jobs(&self) -> Vec<i64> {
        self.st().jobs.iter().filter(|j| j.cancel_requested).map(|j| j.id).collect()
    }

    pub fn job_ids(&self) -> Vec<i64> {
        self.st().jobs.iter().map(|j| j.id).collect()
    }

    pub fn job_status(&self, id: i64) -> Option<&'static str> {
        self.st().jobs.iter().find(|j| j.id == id).map(JobRec::status)
    }

    /// Every access token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.st().issued.keys().cloned().collect()
    }
}

/// Whether a logged trigger request created a job (the double marks it in `body._created`).
fn created_by(r: &Request) -> bool {
    r.body.get("_created").and_then(Value::as_bool).unwrap_or(false)
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn server_now(st: &State) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) + st.clock_offset
}

/// Java's `OffsetDateTime.toString()` in UTC: seconds omitted when zero.
fn java_time(secs: i64) -> String {
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    if secs % 60 == 0 { t.format("%Y-%m-%dT%H:%MZ").to_string() } else { t.format("%Y-%m-%dT%H:%M:%SZ").to_string() }
}

/// Java's `Duration.toString()`.
fn java_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = "PT".to_string();
    if h > 0 {
        out += &format!("{h}H");
    }
    if m > 0 {
        out += &format!("{m}M");
    }
    if s > 0 || secs == 0 {
        out += &format!("{s}S");
    }
    out
}

fn http_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// What to do with a connection.
enum Action {
    Respond { status: u16, body: String, content_type: &'static str, retry_after: Option<String> },
    Drop,
    Hang(Duration),
}

fn json_ok(v: Value) -> Action {
    Action::Respond { status: 200, body: v.to_string(), content_type: "application/json", retry_after: None }
}

fn json_status(status: u16, v: Value, problem_json: bool) -> Action {
    Action::Respond { status, body: v.to_string(), content_type: if problem_json { "application/problem+json" } else { "application/json" }, retry_after: None }
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if len > 0 && reader.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = target.split_once('?').map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or((target.clone(), String::new()));
    let body: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())) };

    let (action, date) = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let (api, route) = route_of(&method, &path);
        let mut request = Request { api, route, method: method.clone(), path: path.clone(), query: query.clone(), body: body.clone(), authorization: headers.get("authorization").cloned(), answered: None };
        let action = handle(&mut st, &mut request, &headers, &query, &body);
        request.answered = match &action {
            Action::Respond { status, .. } => Some(*status),
            _ => None,
        };
        st.requests.push(request);
        (action, http_date(server_now(&st)))
    };
    let mut stream = stream;
    match action {
        Action::Drop => {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Action::Hang(d) => {
            thread::sleep(d);
            let _ = stream.shutdown(Shutdown::Both);
        }
        Action::Respond { status, body, content_type, retry_after } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\nDate: {date}\r\nConnection: close\r\nContent-Length: {}\r\n", reason(status), body.len());
            if !body.is_empty() {
                head += &format!("Content-Type: {content_type}\r\n");
            }
            if let Some(r) = retry_after {
                head += &format!("Retry-After: {r}\r\n");
            }
            head += "\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn route_of(method: &str, path: &str) -> (Api, Option<Route>) {
    if let Some(rest) = path.strip_prefix("/api/public/v1/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let route = match (method, segs.as_slice()) {
            ("POST", ["applications", "token"]) => Some(Route::Token),
            ("POST", ["jobs"]) => Some(Route::Trigger),
            ("GET", ["jobs"]) => Some(Route::ListJobs),
            ("GET", ["jobs", _]) => Some(Route::GetJob),
            ("DELETE", ["jobs", _]) => Some(Route::CancelJob),
            ("GET", ["connections", _]) => Some(Route::GetConnection),
            _ => None,
        };
        return (Api::Public, route);
    }
    let route = match (method, path) {
        ("POST", "/api/v1/applications/token") => Some(Route::Token),
        ("POST", "/api/v1/connections/sync") => Some(Route::Trigger),
        ("POST", "/api/v1/jobs/get") => Some(Route::GetJob),
        ("POST", "/api/v1/jobs/cancel") => Some(Route::CancelJob),
        ("POST", "/api/v1/jobs/list") => Some(Route::ListJobs),
        ("POST", "/api/v1/connections/get") => Some(Route::GetConnection),
        _ => None,
    };
    (Api::Config, route)
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found_page(path: &str) -> Action {
    json_status(404, json!({"message": "Not Found", "_links": {"self": {"href": path, "templated": false}}, "_embedded": {"errors": [{"message": "Page Not Found"}]}}), false)
}

fn authorized(st: &mut State, headers: &HashMap<String, String>) -> bool {
    let Some(token) = headers.get("authorization").and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    match &st.auth {
        AuthMode::Static(t) => token == t,
        AuthMode::Client { .. } => st.issued.get(token).is_some_and(|exp| Instant::now() < *exp),
    }
}

fn handle(st: &mut State, request: &mut Request, headers: &HashMap<String, String>, query: &str, body: &Value) -> Action {
    let api = request.api;
    let Some(route) = request.route else {
        return not_found_page(&request.path);
    };
    let canned = st.canned.get_mut(&route).and_then(VecDeque::pop_front);
    let after = match canned {
        Some(Canned::Status { status, body, retry_after }) => {
            let content_type = if body.is_empty() { "application/json" } else if body.contains("\"type\"") { "application/problem+json" } else { "application/json" };
            return Action::Respond { status, body, content_type, retry_after };
        }
        Some(Canned::Drop) => return Action::Drop,
        Some(Canned::DropAfterAction) => Some(Action::Drop),
        Some(Canned::HangAfterAction(d)) => Some(Action::Hang(d)),
        None => None,
    };
    if route == Route::Token {
        return token(st, api, body);
    }
    if !authorized(st, headers) {
        // Micronaut security rejects the request before any controller: 401, no body.
        return Action::Respond { status: 401, body: String::new(), content_type: "application/json", retry_after: None };
    }
    let action = match route {
        Route::Trigger => trigger(st, request, api, body),
        Route::GetJob => get_job(st, api, &request.path, body),
        Route::CancelJob => cancel_job(st, api, &request.path, body),
        Route::ListJobs => list_jobs(st, api, query, body),
        Route::GetConnection => get_connection(st, api, &request.path, body),
        Route::Token => unreachable_token(),
    };
    after.unwrap_or(action)
}

fn unreachable_token() -> Action {
    json_status(500, json!({"errorId": "0"}), false)
}

fn token(st: &mut State, api: Api, body: &Value) -> Action {
    let AuthMode::Client { id, secret, expires_in, lifetime } = st.auth.clone() else {
        return json_status(401, json!({"errorId": "8b0b6c1e-0000-4000-8000-000000000401"}), false);
    };
    let got = (body.get("client_id").and_then(Value::as_str), body.get("client_secret").and_then(Value::as_str));
    if got != (Some(id.as_str()), Some(secret.as_str())) {
        // InvalidClientCredentialsExceptionHandler: 401 {errorId}.
        return json_status(401, json!({"errorId": "8b0b6c1e-0000-4000-8000-000000000401"}), false);
    }
    st.token_counter += 1;
    let token = format!("{}.{}.{:x}", st.token_prefix, st.token_counter, st.token_counter * 7919);
    st.issued.insert(token.clone(), Instant::now() + lifetime);
    match api {
        Api::Public => json_ok(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})),
        Api::Config => json_ok(json!({"access_token": token})),
    }
}

fn public_job(st: &State, j: &JobRec) -> Value {
    let now = server_now(st);
    let status = j.status();
    let mut v = json!({
        "jobId": j.id,
        "status": status,
        "jobType": "sync",
        "startTime": java_time(j.created_at),
        "connectionId": j.connection,
    });
    if j.terminal() {
        v["lastUpdatedAt"] = json!(java_time(now));
    }
    if status != "pending" {
        v["duration"] = json!(java_duration((now - j.created_at).max(0)));
    }
    if let Some((rows, bytes)) = j.rows() {
        v["bytesSynced"] = json!(bytes);
        v["rowsSynced"] = json!(rows);
    }
    v
}

fn job_read(st: &State, j: &JobRec, aggregated: bool) -> Value {
    let now = server_now(st);
    let mut v = json!({
        "id": j.id,
        "configType": "sync",
        "configId": j.connection,
        "enabledStreams": [{"name": "accounts"}],
        "createdAt": j.created_at,
        "updatedAt": now,
        "status": j.status(),
    });
    if j.status() != "pending" {
        v["startedAt"] = json!(j.created_at);
    }
    if aggregated {
        let (rows, bytes) = j.rows().unwrap_or((0, 0));
        v["aggregatedStats"] = json!({"recordsEmitted": rows, "bytesEmitted": bytes, "recordsCommitted": rows, "bytesCommitted": bytes, "recordsRejected": 0});
    }
    v
}

/// The attempts a job has had, derived from the statuses it went through.
fn attempts(j: &JobRec, now: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut open = false;
    let mut prev = "";
    let history: Vec<&str> = j.plan.statuses.iter().take(j.step() + 1).copied().collect();
    let attempt = |n: usize, status: &str, rows: i64, failures: Vec<Value>, partial: Option<bool>| {
        let mut a = json!({
            "id": n,
            "status": status,
            "createdAt": j.created_at,
            "updatedAt": now,
            "bytesSynced": rows * 100,
            "recordsSynced": rows,
            "totalStats": {"recordsEmitted": rows, "bytesEmitted": rows * 100, "stateMessagesEmitted": 1, "recordsCommitted": rows, "bytesCommitted": rows * 100},
            "streamStats": [],
        });
        if status != "running" {
            a["endedAt"] = json!(now);
        }
        if !failures.is_empty() {
            let mut summary = json!({"failures": failures});
            if let Some(p) = partial {
                summary["partialSuccess"] = json!(p);
            }
            a["failureSummary"] = summary;
        }
        a
    };
    let reason = |kind: Option<&str>, origin: &str, message: &str, retryable: Option<bool>| {
        let mut f = json!({"failureOrigin": origin, "externalMessage": message, "internalMessage": format!("io.airbyte.workers.exception: {message}"), "timestamp": now * 1000});
        if let Some(k) = kind {
            f["failureType"] = json!(k);
        }
        if let Some(r) = retryable {
            f["retryable"] = json!(r);
        }
        f
    };
    for s in history {
        if s == prev {
            continue;
        }
        prev = s;
        match s {
            "running" => open = true,
            "incomplete" => {
                out.push(attempt(out.len(), "failed", 0, vec![reason(Some("transient_error"), "source", "Something went wrong in the connector.", Some(true))], Some(false)));
                open = false;
            }
            "succeeded" => {
                out.push(attempt(out.len(), "succeeded", j.plan.rows, Vec::new(), None));
                open = false;
            }
            "failed" => {
                let f = j.plan.failure.clone().unwrap_or(FailureSpec { failure_type: None, failure_origin: "unknown".into(), external_message: "Something went wrong.".into(), retryable: None });
                out.push(attempt(out.len(), "failed", j.plan.rows_on_failure, vec![reason(f.failure_type.as_deref(), &f.failure_origin, &f.external_message, f.retryable)], j.plan.partial_success));
                open = false;
            }
            _ => {}
        }
    }
    if j.status() == "cancelled" {
        out.push(attempt(out.len(), "failed", j.plan.rows_on_failure, vec![reason(Some("manual_cancellation"), "airbyte_platform", "The sync was cancelled.", Some(false))], Some(j.plan.rows_on_failure > 0)));
    } else if open {
        out.push(attempt(out.len(), "running", 0, Vec::new(), None));
    }
    out
}

fn job_info(st: &State, j: &JobRec) -> Value {
    let now = server_now(st);
    let attempts: Vec<Value> = attempts(j, now).into_iter().map(|a| json!({"attempt": a, "logType": "formatted", "logs": {"logLines": []}})).collect();
    json!({"job": job_read(st, j, false), "attempts": attempts})
}

fn job_body(st: &State, api: Api, j: &JobRec) -> Value {
    match api {
        Api::Public => public_job(st, j),
        Api::Config => job_info(st, j),
    }
}

fn job_not_found(api: Api, id: &str) -> Action {
    match api {
        Api::Public => json_status(404, problem(404, "https://reference.airbyte.com/reference/errors#resource-not-found", "resource-not-found", "The requested resource could not be found.", json!({"resourceType": "job", "resourceId": id})), true),
        Api::Config => json_status(404, json!({"id": id, "message": format!("Could not find job with id: {id}"), "exceptionClassName": "io.airbyte.commons.server.errors.IdNotFoundKnownException", "exceptionStack": []}), false),
    }
}

fn connection_not_found(api: Api, id: &str) -> Action {
    match api {
        Api::Public => json_status(404, problem(404, "https://reference.airbyte.com/reference/errors#resource-not-found", "resource-not-found", "The requested resource could not be found.", json!({"resourceType": "connection", "resourceId": id})), true),
        Api::Config => json_status(
            404,
            json!({"id": id, "message": format!("Could not find configuration for STANDARD_SYNC: {id}."), "exceptionClassName": "io.airbyte.commons.server.errors.IdNotFoundKnownException", "exceptionStack": []}),
            false,
        ),
    }
}

fn unprocessable(api: Api, message: &str) -> Action {
    match api {
        Api::Public => json_status(422, problem(422, "https://reference.airbyte.com/reference/errors#unprocessable-entity", "unprocessable-entity", "The body of the request was not understood", json!({"message": message})), true),
        Api::Config => json_status(422, json!({"message": message, "validationErrors": []}), false),
    }
}

fn trigger(st: &mut State, request: &mut Request, api: Api, body: &Value) -> Action {
    let Some(connection) = body.get("connectionId").and_then(Value::as_str).map(str::to_string) else {
        return unprocessable(api, "connectionId is required");
    };
    if api == Api::Public && body.get("jobType").and_then(Value::as_str) != Some("sync") {
        return unprocessable(api, "jobType must be sync for this double");
    }
    if !st.connections.contains(&connection) {
        return connection_not_found(api, &connection);
    }
    if st.jobs.iter().any(|j| j.connection == connection && !j.terminal()) {
        let message = format!("A sync is already running for: {connection}");
        return match api {
            Api::Public => json_status(409, problem(409, "https://reference.airbyte.com/reference/errors#try-again-later", "try-again-later", "Please try again later.", json!({"message": message})), true),
            Api::Config => json_status(409, json!({"message": message, "exceptionClassName": "io.airbyte.commons.server.errors.ValueConflictKnownException", "exceptionStack": []}), false),
        };
    }
    let plan = st.plans.pop_front().unwrap_or_else(|| JobPlan::new(&["pending", "running", "succeeded"]).rows(10));
    let id = st.next_id;
    st.next_id += 1;
    let job = JobRec { id, connection, created_at: server_now(st), plan, reads: 0, cancel_requested: false, cancelled_at: None };
    let v = job_body(st, api, &job);
    st.jobs.push(job);
    if let Value::Object(m) = &mut request.body {
        m.insert("_created".into(), json!(true));
    }
    json_ok(v)
}

fn job_id(api: Api, path: &str, body: &Value) -> Option<i64> {
    match api {
        Api::Public => path.rsplit('/').next().and_then(|s| s.parse().ok()),
        Api::Config => body.get("id").and_then(Value::as_i64),
    }
}

fn get_job(st: &mut State, api: Api, path: &str, body: &Value) -> Action {
    let Some(id) = job_id(api, path, body) else {
        return unprocessable(api, "invalid job id");
    };
    let Some(pos) = st.jobs.iter().position(|j| j.id == id) else {
        return job_not_found(api, &id.to_string());
    };
    if !st.jobs[pos].terminal() {
        st.jobs[pos].reads += 1;
    }
    let j = st.jobs[pos].clone();
    json_ok(job_body(st, api, &j))
}

fn cancel_job(st: &mut State, api: Api, path: &str, body: &Value) -> Action {
    let Some(id) = job_id(api, path, body) else {
        return unprocessable(api, "invalid job id");
    };
    let Some(pos) = st.jobs.iter().position(|j| j.id == id) else {
        return job_not_found(api, &id.to_string());
    };
    st.jobs[pos].cancel_requested = true;
    if st.jobs[pos].terminal() {
        return match api {
            Api::Public => json_status(409, problem(409, "https://reference.airbyte.com/reference/errors#409-state-conflict", "state-conflict", "State conflict", json!({"message": "Job is not currently running"})), true),
            Api::Config => json_status(500, json!({"errorId": "c4e7a0d2-0000-4000-8000-000000000500"}), false),
        };
    }
    // Cancellation is asynchronous: this answer still shows the old status; reads after it
    // show `cancelled`.
    let reads = st.jobs[pos].reads;
    st.jobs[pos].cancelled_at = Some(reads);
    let mut j = st.jobs[pos].clone();
    j.cancelled_at = None;
    json_ok(job_body(st, api, &j))
}

fn list_jobs(st: &mut State, api: Api, query: &str, body: &Value) -> Action {
    let (connection, limit, offset, descending) = match api {
        Api::Public => {
            let limit = query_param(query, "limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(20);
            if !(1..=100).contains(&limit) {
                return json_status(400, problem(400, "https://reference.airbyte.com/reference/errors#bad-request", "bad-request", "The request could not be understood by the server due to malformed syntax.", json!({"message": "limit must be 1..100"})), true);
            }
            let offset = query_param(query, "offset").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            let descending = match query_param(query, "orderBy") {
                None => false,
                Some(o) => match o.split_once('|') {
                    Some(("createdAt" | "updatedAt", "DESC")) => true,
                    Some(("createdAt" | "updatedAt", "ASC")) => false,
                    _ => return json_status(400, problem(400, "https://reference.airbyte.com/reference/errors#bad-request", "bad-request", "Bad request", json!({"message": format!("Invalid order by clause provided: {o}")})), true),
                },
            };
            if query_param(query, "jobType").is_some_and(|t| t != "sync") {
                return json_ok(json!({"data": []}));
            }
            (query_param(query, "connectionId"), limit, offset, descending)
        }
        Api::Config => {
            let Some(types) = body.get("configTypes").and_then(Value::as_array) else {
                return unprocessable(api, "configTypes is required");
            };
            if !types.iter().any(|t| t == "sync") {
                return json_ok(json!({"jobs": [], "totalJobCount": 0}));
            }
            let limit = body.pointer("/pagination/pageSize").and_then(Value::as_u64).unwrap_or(200) as usize;
            let offset = body.pointer("/pagination/rowOffset").and_then(Value::as_u64).unwrap_or(0) as usize;
            let descending = body.get("orderByMethod").and_then(Value::as_str) != Some("ASC");
            (body.get("configId").and_then(Value::as_str).map(str::to_string), limit, offset, descending)
        }
    };
    if let Some(c) = &connection
        && !st.connections.contains(c)
    {
        return connection_not_found(api, c);
    }
    let mut jobs: Vec<JobRec> = st.jobs.iter().filter(|j| connection.as_ref().is_none_or(|c| &j.connection == c)).cloned().collect();
    jobs.sort_by_key(|j| (j.created_at, j.id));
    if descending {
        jobs.reverse();
    }
    let total = jobs.len();
    let page: Vec<JobRec> = jobs.into_iter().skip(offset).take(limit).collect();
    match api {
        Api::Public => {
            let data: Vec<Value> = page.iter().map(|j| public_job(st, j)).collect();
            let mut v = json!({"data": data});
            if offset > 0 {
                v["previous"] = json!(format!("/v1/jobs?limit={limit}&offset={}", offset.saturating_sub(limit)));
            }
            if offset + limit < total {
                v["next"] = json!(format!("/v1/jobs?limit={limit}&offset={}", offset + limit));
            }
            json_ok(v)
        }
        Api::Config => {
            let now = server_now(st);
            let jobs: Vec<Value> = page.iter().map(|j| json!({"job": job_read(st, j, true), "attempts": attempts(j, now)})).collect();
            json_ok(json!({"jobs": jobs, "totalJobCount": total}))
        }
    }
}

fn get_connection(st: &mut State, api: Api, path: &str, body: &Value) -> Action {
    let id = match api {
        Api::Public => path.rsplit('/').next().map(str::to_string),
        Api::Config => body.get("connectionId").and_then(Value::as_str).map(str::to_string),
    };
    let Some(id) = id.filter(|c| st.connections.contains(c)) else {
        return connection_not_found(api, path);
    };
    json_ok(json!({
        "connectionId": id,
        "name": "Salesforce → Iceberg",
        "sourceId": "9924bcd0-99be-453d-ba47-c2c9766f7da6",
        "destinationId": "744cc0ed-7f05-4949-9e60-2a814f90c035",
        "workspaceId": WORKSPACE,
        "status": "active",
    }))
}
