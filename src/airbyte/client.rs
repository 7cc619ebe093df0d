//! HTTP access to Airbyte: one [`Client`] that speaks either the public API or the config API
//! (`api:` in the plugin settings) and returns the normalised [`Job`].
//!
//! `workspace_url` is the API base:
//! - public API: requests go to `<workspace_url>/v1/...`. Airbyte Cloud: `https://api.airbyte.com`;
//!   self-managed Airbyte: `https://<host>/api/public`.
//! - config API: requests go to `<workspace_url>/api/v1/...`, so `workspace_url` is the host,
//!   `https://<host>`.
//!
//! | operation | public API | config API |
//! | --- | --- | --- |
//! | trigger | `POST /v1/jobs {connectionId, jobType: "sync"}` | `POST /api/v1/connections/sync {connectionId}` |
//! | status | `GET /v1/jobs/{jobId}` | `POST /api/v1/jobs/get {id}` |
//! | cancel | `DELETE /v1/jobs/{jobId}` | `POST /api/v1/jobs/cancel {id}` |
//! | list | `GET /v1/jobs?connectionId&jobType=sync&limit&orderBy=createdAt\|DESC` | `POST /api/v1/jobs/list {configTypes, configId, pagination, orderByField, orderByMethod}` |
//! | workspace of a connection | `GET /v1/connections/{connectionId}` | `POST /api/v1/connections/get {connectionId}` |
//! | token | `POST /v1/applications/token` | `POST /api/v1/applications/token` |
//!
//! Every request has a timeout. Tokens go out in a header marked sensitive and never into a
//! message; every access token received is added to the shared [`Redactor`].
//! Sources: reference.airbyte.com (public API) and Airbyte's `config.yaml` OpenAPI document.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest12 as reqwest;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::auth::{CachedToken, Credentials};
use super::model::{ConnectionWorkspace, Job, JobInfoRead, JobReadList, JobResponse, JobsResponse, PublicAccessTokenResponse};
use crate::config::manifest::AirbyteApi;
use crate::secrets::{Redactor, Secret};

/// How many recent jobs reconciliation and attaching look at.
pub const LIST_LIMIT: u32 = 20;

/// The operations floe performs, for messages and classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Trigger,
    GetJob,
    CancelJob,
    ListJobs,
    GetConnection,
}

impl Endpoint {
    /// `POST /v1/jobs` and the like, as Airbyte documents it.
    pub fn describe(self, api: AirbyteApi) -> &'static str {
        match (api, self) {
            (AirbyteApi::Public, Endpoint::Token) => "POST /v1/applications/token",
            (AirbyteApi::Public, Endpoint::Trigger) => "POST /v1/jobs",
            (AirbyteApi::Public, Endpoint::GetJob) => "GET /v1/jobs/{jobId}",
            (AirbyteApi::Public, Endpoint::CancelJob) => "DELETE /v1/jobs/{jobId}",
            (AirbyteApi::Public, Endpoint::ListJobs) => "GET /v1/jobs",
            (AirbyteApi::Public, Endpoint::GetConnection) => "GET /v1/connections/{connectionId}",
            (AirbyteApi::Config, Endpoint::Token) => "POST /api/v1/applications/token",
            (AirbyteApi::Config, Endpoint::Trigger) => "POST /api/v1/connections/sync",
            (AirbyteApi::Config, Endpoint::GetJob) => "POST /api/v1/jobs/get",
            (AirbyteApi::Config, Endpoint::CancelJob) => "POST /api/v1/jobs/cancel",
            (AirbyteApi::Config, Endpoint::ListJobs) => "POST /api/v1/jobs/list",
            (AirbyteApi::Config, Endpoint::GetConnection) => "POST /api/v1/connections/get",
        }
    }
}

/// A request that did not produce the answer floe wanted. Messages never hold a secret.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Airbyte answered with a non-2xx status.
    Status { endpoint: Endpoint, status: u16, retry_after: Option<u64>, message: String },
    /// No answer. `sent`: the request may have reached Airbyte (connection reset or timed out
    /// after sending), so it may have taken effect.
    Transport { endpoint: Endpoint, sent: bool, timed_out: bool, message: String },
    /// A 2xx answer floe could not read.
    Decode { endpoint: Endpoint, message: String },
    /// The settings or the secret cannot make a request (bad URL, malformed credentials).
    Config { message: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            ApiError::Status { endpoint, .. } | ApiError::Transport { endpoint, .. } | ApiError::Decode { endpoint, .. } => Some(*endpoint),
            ApiError::Config { .. } => None,
        }
    }

    /// The request may have been carried out although floe got no usable answer: a lost
    /// response, or a 5xx (a proxy's 502/504 in particular says nothing about the backend).
    pub fn maybe_took_effect(&self) -> bool {
        match self {
            ApiError::Transport { sent, .. } => *sent,
            ApiError::Status { status, .. } => *status >= 500,
            ApiError::Decode { .. } => true,
            ApiError::Config { .. } => false,
        }
    }

    /// Worth asking again later: no answer, 408, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => matches!(*status, 408 | 429) || *status >= 500,
            ApiError::Decode { .. } | ApiError::Config { .. } => false,
        }
    }
}

/// A successful answer.
struct Reply {
    /// Airbyte's clock (`Date` header), used to compare against job creation times.
    date: Option<SystemTime>,
    body: bytes::Bytes,
}

/// Jobs of a connection, newest first, and Airbyte's clock at the time of listing.
pub struct Listing {
    pub jobs: Vec<Job>,
    pub server_now: Option<SystemTime>,
}

/// One Airbyte deployment, authenticated.
pub struct Client {
    http: reqwest::Client,
    api: AirbyteApi,
    base: Url,
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    redactor: Arc<Mutex<Redactor>>,
}

impl Client {
    /// A client for `workspace_url`. Every request times out after `request_timeout`.
    pub fn new(api: AirbyteApi, workspace_url: &str, credentials: Credentials, request_timeout: Duration, redactor: Arc<Mutex<Redactor>>) -> Result<Client, ApiError> {
        let base = Url::parse(workspace_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ApiError::Config { message: format!("workspace_url \"{}\" is not an http(s) URL", crate::secrets::redact_url_passwords(workspace_url)) })?;
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("floe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config { message: format!("cannot build the HTTP client: {}", error_chain(&e)) })?;
        if let Ok(mut r) = redactor.lock() {
            match &credentials {
                Credentials::Bearer(t) => r.add(t),
                Credentials::Client { id, secret } => {
                    r.add(id);
                    r.add(secret);
                }
            }
        }
        Ok(Client { http, api, base, credentials, token: tokio::sync::Mutex::new(None), redactor })
    }

    pub fn api(&self) -> AirbyteApi {
        self.api
    }

    /// The API base as configured (for links).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Start a sync of `connection_id`.
    pub async fn trigger(&self, connection_id: &str) -> Result<Job, ApiError> {
        match self.api {
            AirbyteApi::Public => {
                let body = json!({"connectionId": connection_id, "jobType": "sync"});
                self.parse::<JobResponse>(Endpoint::Trigger, &self.call(Endpoint::Trigger, Method::POST, &["v1", "jobs"], &[], Some(body)).await?).map(Job::from)
            }
            AirbyteApi::Config => {
                let body = json!({"connectionId": connection_id});
                self.parse::<JobInfoRead>(Endpoint::Trigger, &self.call(Endpoint::Trigger, Method::POST, &["api", "v1", "connections", "sync"], &[], Some(body)).await?).map(Job::from)
            }
        }
    }

    /// The job's current state.
    pub async fn get_job(&self, job_id: i64) -> Result<Job, ApiError> {
        match self.api {
            AirbyteApi::Public => {
                let id = job_id.to_string();
                self.parse::<JobResponse>(Endpoint::GetJob, &self.call(Endpoint::GetJob, Method::GET, &["v1", "jobs", &id], &[], None).await?).map(Job::from)
            }
            AirbyteApi::Config => {
                let body = json!({"id": job_id});
                self.parse::<JobInfoRead>(Endpoint::GetJob, &self.call(Endpoint::GetJob, Method::POST, &["api", "v1", "jobs", "get"], &[], Some(body)).await?).map(Job::from)
            }
        }
    }

    /// Ask Airbyte to cancel the job. Airbyte cancels asynchronously: the answer may still say
    /// `running`.
    pub async fn cancel(&self, job_id: i64) -> Result<Job, ApiError> {
        match self.api {
            AirbyteApi::Public => {
                let id = job_id.to_string();
                self.parse::<JobResponse>(Endpoint::CancelJob, &self.call(Endpoint::CancelJob, Method::DELETE, &["v1", "jobs", &id], &[], None).await?).map(Job::from)
            }
            AirbyteApi::Config => {
                let body = json!({"id": job_id});
                self.parse::<JobInfoRead>(Endpoint::CancelJob, &self.call(Endpoint::CancelJob, Method::POST, &["api", "v1", "jobs", "cancel"], &[], Some(body)).await?).map(Job::from)
            }
        }
    }

    /// The connection's most recent sync jobs, newest first.
    pub async fn list_sync_jobs(&self, connection_id: &str) -> Result<Listing, ApiError> {
        let (reply, mut jobs): (Reply, Vec<Job>) = match self.api {
            AirbyteApi::Public => {
                // Without `orderBy` Airbyte lists the *oldest* jobs first (`createdAt|ASC`).
                let query = [("connectionId", connection_id.to_string()), ("jobType", "sync".into()), ("limit", LIST_LIMIT.to_string()), ("orderBy", "createdAt|DESC".into())];
                let reply = self.call(Endpoint::ListJobs, Method::GET, &["v1", "jobs"], &query, None).await?;
                let list = self.parse::<JobsResponse>(Endpoint::ListJobs, &reply)?;
                (reply, list.data.into_iter().map(Job::from).collect())
            }
            AirbyteApi::Config => {
                let body = json!({
                    "configTypes": ["sync"],
                    "configId": connection_id,
                    "pagination": {"pageSize": LIST_LIMIT, "rowOffset": 0},
                    "orderByField": "createdAt",
                    "orderByMethod": "DESC",
                });
                let reply = self.call(Endpoint::ListJobs, Method::POST, &["api", "v1", "jobs", "list"], &[], Some(body)).await?;
                let list = self.parse::<JobReadList>(Endpoint::ListJobs, &reply)?;
                (reply, list.jobs.into_iter().map(Job::from).collect())
            }
        };
        // Newest first whatever order the server used.
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(Listing { jobs, server_now: reply.date })
    }

    /// The workspace a connection belongs to (for a link to the job in Airbyte's UI).
    pub async fn workspace_of(&self, connection_id: &str) -> Result<Option<String>, ApiError> {
        let reply = match self.api {
            AirbyteApi::Public => self.call(Endpoint::GetConnection, Method::GET, &["v1", "connections", connection_id], &[], None).await?,
            AirbyteApi::Config => {
                self.call(Endpoint::GetConnection, Method::POST, &["api", "v1", "connections", "get"], &[], Some(json!({"connectionId": connection_id}))).await?
            }
        };
        Ok(self.parse::<ConnectionWorkspace>(Endpoint::GetConnection, &reply)?.workspace_id)
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ApiError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| ApiError::Config { message: "workspace_url cannot take a path".into() })?;
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// A valid access token: the bearer token, or a cached/fresh application token.
    async fn bearer(&self) -> Result<Secret, ApiError> {
        let (id, secret) = match &self.credentials {
            Credentials::Bearer(t) => return Ok(t.clone()),
            Credentials::Client { id, secret } => (id, secret),
        };
        let mut cache = self.token.lock().await;
        if let Some(t) = cache.as_ref().filter(|t| t.fresh(Instant::now())) {
            return Ok(t.value.clone());
        }
        let requested_at = Instant::now();
        let segments: &[&str] = match self.api {
            AirbyteApi::Public => &["v1", "applications", "token"],
            AirbyteApi::Config => &["api", "v1", "applications", "token"],
        };
        // The public API's schema names the grant property `grant-type` (sic).
        let body = match self.api {
            AirbyteApi::Public => json!({"client_id": id.expose(), "client_secret": secret.expose(), "grant-type": "client_credentials"}),
            AirbyteApi::Config => json!({"client_id": id.expose(), "client_secret": secret.expose()}),
        };
        let request = self.http.post(self.url(segments, &[])?).header(ACCEPT, "application/json").header(CONTENT_TYPE, "application/json").body(body.to_string());
        let reply = self.finish(Endpoint::Token, request).await?;
        let token: PublicAccessTokenResponse = self.parse(Endpoint::Token, &reply)?;
        if token.access_token.is_empty() {
            return Err(ApiError::Decode { endpoint: Endpoint::Token, message: "Airbyte returned an empty access_token".into() });
        }
        let value = Secret::new(token.access_token);
        if let Ok(mut r) = self.redactor.lock() {
            r.add(&value);
        }
        let expires_in = token.expires_in.and_then(|s| u64::try_from(s).ok()).map(Duration::from_secs);
        tracing::debug!(expires_in_seconds = expires_in.map(|d| d.as_secs()), "obtained an Airbyte access token");
        *cache = Some(CachedToken::new(value.clone(), requested_at, expires_in));
        Ok(value)
    }

    /// Forget `used` so the next request fetches a new token.
    async fn invalidate(&self, used: &Secret) {
        let mut cache = self.token.lock().await;
        if cache.as_ref().is_some_and(|t| &t.value == used) {
            *cache = None;
        }
    }

    /// One authenticated request. A 401 with client credentials refreshes the token and
    /// tries once more (Airbyte rejected the request before acting on it, so this is safe).
    async fn call(&self, endpoint: Endpoint, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<Value>) -> Result<Reply, ApiError> {
        let mut refreshed = false;
        loop {
            let token = self.bearer().await?;
            let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| ApiError::Config { message: "the Airbyte credentials contain characters that cannot be sent in an HTTP header".into() })?;
            auth.set_sensitive(true);
            let mut request = self.http.request(method.clone(), self.url(segments, query)?).header(ACCEPT, "application/json").header(AUTHORIZATION, auth);
            if let Some(b) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(b.to_string());
            }
            match self.finish(endpoint, request).await {
                Err(ApiError::Status { status: 401, .. }) if self.credentials.refreshable() && !refreshed => {
                    tracing::debug!(endpoint = endpoint.describe(self.api), "Airbyte answered 401; fetching a new access token");
                    self.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn finish(&self, endpoint: Endpoint, request: reqwest::RequestBuilder) -> Result<Reply, ApiError> {
        let response = request.send().await.map_err(|e| self.transport(endpoint, &e, !e.is_connect() && !e.is_builder()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.transport(endpoint, &e, true))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::Status { endpoint, status, retry_after: retry_after(&headers, SystemTime::now()), message: self.redact(&problem_message(&body)) });
        }
        let date = headers.get(DATE).and_then(|v| v.to_str().ok()).and_then(parse_http_date);
        Ok(Reply { date, body })
    }

    fn parse<T: DeserializeOwned>(&self, endpoint: Endpoint, reply: &Reply) -> Result<T, ApiError> {
        serde_json::from_slice(&reply.body).map_err(|e| ApiError::Decode { endpoint, message: format!("unexpected answer from {}: {e}", endpoint.describe(self.api)) })
    }

    fn transport(&self, endpoint: Endpoint, e: &reqwest::Error, sent: bool) -> ApiError {
        ApiError::Transport { endpoint, sent, timed_out: e.is_timeout(), message: self.redact(&error_chain(e)) }
    }

    fn redact(&self, text: &str) -> String {
        match self.redactor.lock() {
            Ok(r) => r.redact(text),
            Err(_) => crate::secrets::redact_url_passwords(text),
        }
    }
}

/// `e` and its causes, joined: reqwest's top-level message alone rarely says what happened.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The human part of an error body: RFC 7807 problems (`data.message`, `detail`, `title`),
/// the config API's `KnownExceptionInfo.message`, or the start of a plain-text body.
pub fn problem_message(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let pick = |ptr: &str| v.pointer(ptr).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            pick("/data/message").or_else(|| pick("/detail")).or_else(|| pick("/message")).or_else(|| pick("/title")).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    let mut text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.chars().count() > MAX {
        text = text.chars().take(MAX).collect::<String>() + "…";
    }
    text
}

/// `Retry-After` as seconds: a number, or an HTTP date (seconds from `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).map(|d| d.as_secs_f64().ceil() as u64).unwrap_or(0))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_messages() {
        let p = br#"{"status":409,"type":"https://reference.airbyte.com/reference/errors#try-again-later","title":"try-again-later","detail":"Please try again later.","data":{"message":"A sync is already running for: abc"}}"#;
        assert_eq!(problem_message(p), "A sync is already running for: abc");
        assert_eq!(problem_message(br#"{"message":"You are being rate limited."}"#), "You are being rate limited.");
        assert_eq!(problem_message(b"plain\ntext"), "plaintext");
        assert_eq!(problem_message(b""), "");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("42"));
        assert_eq!(retry_after(&h, SystemTime::now()), Some(42));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Thu, 01 Jan 1970 00:01:40 GMT"));
        assert_eq!(retry_after(&h, SystemTime::UNIX_EPOCH + Duration::from_secs(40)), Some(60));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, SystemTime::now()), None);
    }
}
