//! Airbyte's answers and job outcomes in ADR-0020's taxonomy.
//!
//! | Airbyte | category | code |
//! | --- | --- | --- |
//! | HTTP 401 / 403 | PERMANENT | `AUTH_FAILED` |
//! | HTTP 404 on a connection (trigger, list) | PERMANENT | `SOURCE_NOT_FOUND` |
//! | HTTP 404 on a job | PERMANENT | `SOURCE_NOT_FOUND` |
//! | HTTP 429 (`Retry-After` → `retry_after_seconds` when sent) | TRANSIENT | `RATE_LIMITED` |
//! | HTTP 5xx, 408, 423, no answer | TRANSIENT | `UNAVAILABLE` |
//! | HTTP 400 / 422, an answer that is not Airbyte's API | CONFIGURATION | `INVALID_CONFIG` |
//! | job `succeeded` | success, `rows_loaded` = rows committed | |
//! | job `failed` having committed rows (`partialSuccess`, rows > 0) | PARTIAL | `PARTIAL_SYNC` |
//! | job `failed`, `failureType: config_error` | CONFIGURATION | `INVALID_CONFIG` (`DESTINATION_CONFIG_ERROR` from the destination) |
//! | job `failed`, `refresh_schema` | CONFIGURATION | `INVALID_CONFIG` |
//! | job `failed`, `transient_error` | TRANSIENT | `RATE_LIMITED` if the message says so, else `SOURCE_ERROR` / `DESTINATION_ERROR` |
//! | job `failed`, `heartbeat_timeout`, `destination_timeout` | TRANSIENT | `TIMEOUT` |
//! | job `failed`, `system_error` | PERMANENT, TRANSIENT if `retryable: true` | `SOURCE_ERROR` / `DESTINATION_ERROR` |
//! | job `failed`, no or unknown `failureType` | PERMANENT, TRANSIENT if `retryable: true` | `SOURCE_ERROR` |
//! | job `cancelled` by someone else, or `manual_cancellation` | PERMANENT | `SYNC_CANCELLED` |
//!
//! The public API reports no failure reasons (`JobResponse` has none), so through it a failed
//! job is PERMANENT `SOURCE_ERROR` unless it committed rows. Every error names the job id
//! (`details.job_id`) when there is one.

use serde_json::Value;

use super::client::{ApiError, Endpoint};
use super::model::{Failure, Job, JobStatus};
use crate::config::manifest::AirbyteApi;
use crate::engine::EntryOutcome;
use crate::error::{code, Category, IngestionError};

/// The `source` of every error this plugin reports.
pub const SOURCE: &str = "airbyte";

/// What an error is about.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub api: AirbyteApi,
    pub connection_id: &'a str,
    pub secret_ref: &'a str,
    pub job_id: Option<i64>,
    pub job_url: Option<String>,
}

impl Context<'_> {
    fn error(&self, category: Category, code: &str, message: String) -> IngestionError {
        let mut e = IngestionError::new(category, code, SOURCE, message).with_detail("connection_id", self.connection_id);
        if let Some(id) = self.job_id {
            e = e.with_detail("job_id", id);
        }
        if let Some(url) = &self.job_url {
            e = e.with_detail("job_url", url.clone());
        }
        e
    }

    fn job_label(&self) -> String {
        self.job_id.map_or_else(String::new, |id| format!(" (job {id})"))
    }
}

/// A failed request in the taxonomy.
pub fn api_error(e: &ApiError, ctx: &Context<'_>) -> IngestionError {
    let describe = |endpoint: Endpoint| endpoint.describe(ctx.api);
    let suffix = |message: &str| if message.is_empty() { String::new() } else { format!(": {message}") };
    let err = match e {
        ApiError::Config { message } => ctx.error(Category::Configuration, code::INVALID_CONFIG, format!("Airbyte plugin settings: {message}")),
        ApiError::Decode { endpoint, message } => ctx.error(
            Category::Configuration,
            code::INVALID_CONFIG,
            format!("{message}; check that workspace_url is Airbyte's API base (public API: https://api.airbyte.com or https://<host>/api/public; config API: https://<host>) — {}", describe(*endpoint)),
        ),
        ApiError::Transport { endpoint, timed_out, message, .. } => {
            let what = if *timed_out { "timed out" } else { "got no answer" };
            ctx.error(Category::Transient, code::UNAVAILABLE, format!("{} {what}{}{}", describe(*endpoint), ctx.job_label(), suffix(message))).with_detail("timed_out", *timed_out)
        }
        ApiError::Status { endpoint, status, retry_after, message } => {
            let what = describe(*endpoint);
            let at = format!("HTTP {status} on {what}{}", ctx.job_label());
            match *status {
                401 | 403 if *endpoint == Endpoint::Token => ctx.error(
                    Category::Permanent,
                    code::AUTH_FAILED,
                    format!("Airbyte rejected the client credentials in secret `{}` ({at}){}", ctx.secret_ref, suffix(message)),
                ),
                401 => ctx.error(Category::Permanent, code::AUTH_FAILED, format!("Airbyte rejected floe's credentials from secret `{}` ({at}){}", ctx.secret_ref, suffix(message))),
                403 => ctx.error(
                    Category::Permanent,
                    code::AUTH_FAILED,
                    format!("the credentials in secret `{}` may not do this ({at}); they need the workspace runner role or above{}", ctx.secret_ref, suffix(message)),
                ),
                404 => match endpoint {
                    Endpoint::GetJob | Endpoint::CancelJob => ctx.error(Category::Permanent, code::SOURCE_NOT_FOUND, format!("Airbyte no longer knows the job ({at}){}", suffix(message))),
                    Endpoint::Token => ctx.error(
                        Category::Configuration,
                        code::INVALID_CONFIG,
                        format!("no token endpoint at workspace_url ({at}); check workspace_url{}", suffix(message)),
                    ),
                    _ => ctx.error(
                        Category::Permanent,
                        code::SOURCE_NOT_FOUND,
                        format!("Airbyte has no connection \"{}\" ({at}); check airbyte.connection_id, and that workspace_url is the API base{}", ctx.connection_id, suffix(message)),
                    ),
                },
                429 => {
                    let hint = if retry_after.is_some() { String::new() } else { " (no Retry-After: Airbyte's load shedding asks callers to stop, not to hurry back)".into() };
                    ctx.error(Category::Transient, code::RATE_LIMITED, format!("Airbyte is rate limiting floe ({at}){}{hint}", suffix(message))).with_retry_after(*retry_after)
                }
                400 | 422 => ctx.error(Category::Configuration, code::INVALID_CONFIG, format!("Airbyte rejected the request as invalid ({at}){}", suffix(message))),
                408 | 409 | 423 => ctx.error(Category::Transient, code::UNAVAILABLE, format!("Airbyte cannot do this right now ({at}){}", suffix(message))),
                s if s >= 500 => ctx.error(Category::Transient, code::UNAVAILABLE, format!("Airbyte failed ({at}){}", suffix(message))).with_retry_after(*retry_after),
                _ => ctx.error(Category::Permanent, code::SOURCE_ERROR, format!("unexpected answer from Airbyte ({at}){}", suffix(message))),
            }
        }
    };
    match e {
        ApiError::Status { endpoint, status, .. } => err.with_detail("http_status", *status).with_detail("endpoint", describe(*endpoint)),
        ApiError::Transport { endpoint, .. } | ApiError::Decode { endpoint, .. } => err.with_detail("endpoint", describe(*endpoint)),
        ApiError::Config { .. } => err,
    }
}

/// The reason Airbyte gives for a job's end: the first failure of the last attempt that has any.
pub fn primary_failure(job: &Job) -> Option<&Failure> {
    job.attempts.iter().rev().find_map(|a| a.failures.first())
}

/// True when a failed job still committed records.
fn committed_rows(job: &Job) -> bool {
    job.rows.is_some_and(|r| r > 0) || job.attempts.iter().any(|a| a.partial_success == Some(true))
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 500;
    let s: String = s.chars().filter(|c| !c.is_control() || *c == ' ').collect();
    if s.chars().count() > MAX { s.chars().take(MAX).collect::<String>() + "…" } else { s }
}

fn looks_rate_limited(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("rate limit") || m.contains("ratelimit") || m.contains("too many requests") || m.contains("429")
}

/// A job that reached a terminal status, as the attempt's result. `cancelled` here means
/// someone other than floe cancelled it (floe's own cancellations are reported before).
pub fn terminal(job: &Job, ctx: &Context<'_>) -> Result<EntryOutcome, IngestionError> {
    let failure = primary_failure(job);
    let with_failure = |mut e: IngestionError| {
        e = e.with_detail("job_status", job.status_raw.clone());
        if let Some(f) = failure {
            for (k, v) in [("failure_type", &f.failure_type), ("failure_origin", &f.failure_origin)] {
                if let Some(v) = v {
                    e = e.with_detail(k, v.clone());
                }
            }
            if let Some(r) = f.retryable {
                e = e.with_detail("failure_retryable", r);
            }
        }
        if let Some(rows) = job.rows {
            e = e.with_detail("rows_committed", rows);
        }
        e
    };
    let reason = failure.and_then(|f| f.external_message.as_deref()).map(|m| format!(": {}", excerpt(m))).unwrap_or_default();
    let kind = failure.and_then(|f| f.failure_type.as_deref());
    let origin = failure.and_then(|f| f.failure_origin.as_deref());
    let id = job.id;
    match job.status {
        JobStatus::Succeeded => Ok(EntryOutcome { rows_loaded: job.rows.unwrap_or(0), ..EntryOutcome::default() }),
        JobStatus::Cancelled => Err(with_failure(ctx.error(
            Category::Permanent,
            code::SYNC_CANCELLED,
            format!("Airbyte job {id} was cancelled outside floe (in Airbyte's UI or API){reason}"),
        ))),
        JobStatus::Failed if kind == Some("manual_cancellation") => {
            Err(with_failure(ctx.error(Category::Permanent, code::SYNC_CANCELLED, format!("Airbyte job {id} was cancelled outside floe{reason}"))))
        }
        JobStatus::Failed if committed_rows(job) => {
            let rows = job.rows.map(|r| format!("{r} rows")).unwrap_or_else(|| "some rows".into());
            Err(with_failure(ctx.error(
                Category::Partial,
                code::PARTIAL_SYNC,
                format!("Airbyte job {id} failed after committing {rows}; the rest did not sync{reason}"),
            )))
        }
        JobStatus::Failed => {
            let at_destination = origin == Some("destination");
            let by_origin = if at_destination { code::DESTINATION_ERROR } else { code::SOURCE_ERROR };
            let retryable = failure.and_then(|f| f.retryable);
            let label = kind.map(|k| format!(" ({k}{})", origin.map(|o| format!(" from {o}")).unwrap_or_default())).unwrap_or_default();
            let message = |hint: &str| format!("Airbyte job {id} failed{label}{reason}{hint}");
            let (category, code) = match kind {
                Some("config_error") => (Category::Configuration, if at_destination { code::DESTINATION_CONFIG_ERROR } else { code::INVALID_CONFIG }),
                Some("refresh_schema") => (Category::Configuration, code::INVALID_CONFIG),
                Some("transient_error") => (Category::Transient, if looks_rate_limited(&reason) { code::RATE_LIMITED } else { by_origin }),
                Some("heartbeat_timeout") | Some("destination_timeout") => (Category::Transient, code::TIMEOUT),
                Some("system_error") => (if retryable == Some(true) { Category::Transient } else { Category::Permanent }, by_origin),
                _ => (if retryable == Some(true) { Category::Transient } else { Category::Permanent }, by_origin),
            };
            let hint = match (kind, ctx.api) {
                (None, AirbyteApi::Public) => "; the public API does not say why — see the job in Airbyte",
                (Some("config_error"), _) => "; fix the connection's settings in Airbyte",
                (Some("refresh_schema"), _) => "; the source schema changed: review and refresh the connection's schema in Airbyte",
                _ => "",
            };
            Err(with_failure(ctx.error(category, code, message(hint))))
        }
        _ => Err(ctx.error(Category::Permanent, code::SOURCE_ERROR, format!("Airbyte job {id} is still {}", job.status_raw))),
    }
}

/// Details of a job for the report (`job_id`, `job_url`, status, rows, bytes).
pub fn job_details(job: &Job, job_url: Option<&str>, attached: bool) -> std::collections::BTreeMap<String, Value> {
    let mut d = std::collections::BTreeMap::new();
    d.insert("job_id".into(), Value::from(job.id));
    d.insert("job_status".into(), Value::from(job.status_raw.clone()));
    if let Some(url) = job_url {
        d.insert("job_url".into(), Value::from(url));
    }
    if let Some(rows) = job.rows {
        d.insert("rows_synced".into(), Value::from(rows));
    }
    if let Some(bytes) = job.bytes {
        d.insert("bytes_synced".into(), Value::from(bytes));
    }
    d.insert("attached".into(), Value::from(attached));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::model::Attempt;

    fn ctx() -> Context<'static> {
        Context { api: AirbyteApi::Config, connection_id: "c", secret_ref: "airbyte-token", job_id: Some(5), job_url: None }
    }

    fn failed(kind: Option<&str>, retryable: Option<bool>, message: &str) -> Job {
        Job {
            id: 5,
            status: JobStatus::Failed,
            status_raw: "failed".into(),
            job_type: Some("sync".into()),
            connection_id: Some("c".into()),
            created_at: None,
            rows: Some(0),
            bytes: None,
            attempts: vec![Attempt {
                failures: vec![Failure { failure_type: kind.map(str::to_string), failure_origin: Some("source".into()), external_message: Some(message.into()), retryable }],
                partial_success: Some(false),
                ..Attempt::default()
            }],
        }
    }

    #[test]
    fn failure_types() {
        let c = ctx();
        let cat = |j: &Job| terminal(j, &c).err().map(|e| (e.category, e.code));
        assert_eq!(cat(&failed(Some("config_error"), Some(false), "bad")), Some((Category::Configuration, code::INVALID_CONFIG.into())));
        assert_eq!(cat(&failed(Some("transient_error"), None, "boom")), Some((Category::Transient, code::SOURCE_ERROR.into())));
        assert_eq!(cat(&failed(Some("transient_error"), None, "HTTP 429 Too Many Requests")), Some((Category::Transient, code::RATE_LIMITED.into())));
        assert_eq!(cat(&failed(Some("heartbeat_timeout"), None, "x")), Some((Category::Transient, code::TIMEOUT.into())));
        assert_eq!(cat(&failed(Some("system_error"), None, "x")), Some((Category::Permanent, code::SOURCE_ERROR.into())));
        assert_eq!(cat(&failed(Some("system_error"), Some(true), "x")), Some((Category::Transient, code::SOURCE_ERROR.into())));
        assert_eq!(cat(&failed(Some("manual_cancellation"), None, "x")), Some((Category::Permanent, code::SYNC_CANCELLED.into())));
        let mut partial = failed(Some("system_error"), None, "x");
        partial.attempts[0].partial_success = Some(true);
        assert_eq!(cat(&partial), Some((Category::Partial, code::PARTIAL_SYNC.into())));
    }

    #[test]
    fn http_statuses() {
        let c = ctx();
        let st = |status: u16, endpoint: Endpoint| api_error(&ApiError::Status { endpoint, status, retry_after: Some(7), message: String::new() }, &c);
        assert_eq!(st(401, Endpoint::GetJob).code, code::AUTH_FAILED);
        assert_eq!(st(403, Endpoint::Trigger).category, Category::Permanent);
        assert_eq!(st(404, Endpoint::Trigger).code, code::SOURCE_NOT_FOUND);
        let limited = st(429, Endpoint::Trigger);
        assert_eq!((limited.category, limited.retry_after_seconds), (Category::Transient, Some(7)));
        assert_eq!(st(503, Endpoint::GetJob).code, code::UNAVAILABLE);
        assert_eq!(st(422, Endpoint::Trigger).category, Category::Configuration);
        assert_eq!(st(500, Endpoint::GetJob).details.get("job_id"), Some(&Value::from(5)));
    }
}
