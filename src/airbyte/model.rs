//! Airbyte's wire formats, and the one normalised [`Job`] the rest of the plugin reads.
//!
//! Field names follow Airbyte's published OpenAPI documents exactly:
//! - public API (`https://reference.airbyte.com/reference/getjob`, `listjobs`, `createjob`,
//!   `createaccesstoken`): `JobResponse{jobId, status, jobType, startTime, connectionId,
//!   lastUpdatedAt, duration, bytesSynced, rowsSynced}`, `JobsResponse{data, next, previous}`,
//!   `PublicAccessTokenResponse{access_token, token_type, expires_in}`;
//! - config API (`airbyte-api/server-api/src/main/openapi/config.yaml`): `JobInfoRead{job,
//!   attempts[]{attempt}}`, `JobRead{id, configType, configId, createdAt, updatedAt, status,
//!   aggregatedStats}`, `AttemptRead{status, recordsSynced, bytesSynced, totalStats,
//!   failureSummary{failures[], partialSuccess}}`, `FailureReason{failureOrigin, failureType,
//!   externalMessage, retryable}`, `JobReadList{jobs[]{job, attempts[]}, totalJobCount}`.
//!
//! Every field Airbyte may leave out is optional here, and unknown fields are ignored, so a
//! newer Airbyte that adds fields still parses.

use serde::Deserialize;

/// A job's status. Both APIs use the same lower-case words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Queued,
    Running,
    /// An attempt failed; Airbyte may retry it within the same job.
    Incomplete,
    Failed,
    Succeeded,
    Cancelled,
    /// A word this floe does not know; treated as still running (the timeout bounds it).
    Unknown,
}

impl JobStatus {
    pub fn parse(s: &str) -> JobStatus {
        match s.to_ascii_lowercase().as_str() {
            "pending" => JobStatus::Pending,
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "incomplete" => JobStatus::Incomplete,
            "failed" => JobStatus::Failed,
            "succeeded" => JobStatus::Succeeded,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Unknown,
        }
    }

    /// `succeeded`, `failed` and `cancelled` end a job; everything else may still change.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Failed | JobStatus::Succeeded | JobStatus::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Incomplete => "incomplete",
            JobStatus::Failed => "failed",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Unknown => "unknown",
        }
    }
}

/// One failure reason of an attempt (config API only; the public API carries none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failure {
    pub failure_type: Option<String>,
    pub failure_origin: Option<String>,
    pub external_message: Option<String>,
    pub retryable: Option<bool>,
}

/// One attempt of a job (config API only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempt {
    pub status: Option<String>,
    /// Records committed by this attempt (`totalStats.recordsCommitted`, else `recordsSynced`).
    pub records: Option<u64>,
    pub bytes: Option<u64>,
    pub failures: Vec<Failure>,
    pub partial_success: Option<bool>,
}

/// A job as floe sees it, whichever API reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub status: JobStatus,
    /// The status word exactly as Airbyte sent it.
    pub status_raw: String,
    /// `sync`, `reset`, `clear`, `refresh` (public) or `sync`, `reset_connection`, … (config).
    pub job_type: Option<String>,
    pub connection_id: Option<String>,
    /// Creation time, seconds since the epoch (Airbyte's clock).
    pub created_at: Option<i64>,
    /// Rows committed so far: `rowsSynced` (public), `aggregatedStats.recordsCommitted` or the
    /// attempts' totals (config).
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    /// Config API only; empty for the public API.
    pub attempts: Vec<Attempt>,
}

impl Job {
    pub fn is_sync(&self) -> bool {
        self.job_type.as_deref().is_none_or(|t| t == "sync")
    }
}

fn non_negative(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

// ---- public API ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResponse {
    pub job_id: i64,
    pub status: String,
    #[serde(default)]
    pub job_type: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub connection_id: Option<String>,
    #[serde(default)]
    pub bytes_synced: Option<i64>,
    #[serde(default)]
    pub rows_synced: Option<i64>,
}

impl From<JobResponse> for Job {
    fn from(r: JobResponse) -> Job {
        Job {
            id: r.job_id,
            status: JobStatus::parse(&r.status),
            status_raw: r.status,
            job_type: r.job_type,
            connection_id: r.connection_id,
            created_at: r.start_time.as_deref().and_then(parse_offset_date_time),
            rows: non_negative(r.rows_synced),
            bytes: non_negative(r.bytes_synced),
            attempts: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct JobsResponse {
    #[serde(default)]
    pub data: Vec<JobResponse>,
}

#[derive(Debug, Deserialize)]
pub struct PublicAccessTokenResponse {
    pub access_token: String,
    /// Seconds. The config API's `AccessToken` has no such field.
    #[serde(default)]
    pub expires_in: Option<i64>,
}

/// `ConnectionResponse` (public) and `ConnectionRead` (config) share `workspaceId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionWorkspace {
    #[serde(default)]
    pub workspace_id: Option<String>,
}

/// Airbyte writes `startTime` with Java's `OffsetDateTime.toString()`, which drops the seconds
/// when they are zero (`2023-03-25T01:30Z`). Accepts that and full RFC 3339.
pub fn parse_offset_date_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    // `YYYY-MM-DDTHH:MM` followed by an offset: insert `:00`.
    if s.len() > 16 && s.is_char_boundary(16) && s.as_bytes().get(13) == Some(&b':') {
        let (head, tail) = s.split_at(16);
        if tail.starts_with(['Z', 'z', '+', '-']) {
            return chrono::DateTime::parse_from_rfc3339(&format!("{head}:00{tail}")).ok().map(|t| t.timestamp());
        }
    }
    None
}

// ---- config API ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRead {
    pub id: i64,
    #[serde(default)]
    pub config_type: Option<String>,
    #[serde(default)]
    pub config_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    pub status: String,
    #[serde(default)]
    pub aggregated_stats: Option<JobAggregatedStats>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobAggregatedStats {
    #[serde(default)]
    pub records_committed: Option<i64>,
    #[serde(default)]
    pub bytes_committed: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRead {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub bytes_synced: Option<i64>,
    #[serde(default)]
    pub records_synced: Option<i64>,
    #[serde(default)]
    pub total_stats: Option<AttemptStats>,
    #[serde(default)]
    pub failure_summary: Option<AttemptFailureSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptStats {
    #[serde(default)]
    pub records_committed: Option<i64>,
    #[serde(default)]
    pub bytes_committed: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptFailureSummary {
    #[serde(default)]
    pub failures: Vec<FailureReason>,
    #[serde(default)]
    pub partial_success: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReason {
    #[serde(default)]
    pub failure_origin: Option<String>,
    #[serde(default)]
    pub failure_type: Option<String>,
    #[serde(default)]
    pub external_message: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct AttemptInfoRead {
    pub attempt: AttemptRead,
}

#[derive(Debug, Deserialize)]
pub struct JobInfoRead {
    pub job: JobRead,
    #[serde(default)]
    pub attempts: Vec<AttemptInfoRead>,
}

#[derive(Debug, Deserialize)]
pub struct JobWithAttemptsRead {
    pub job: JobRead,
    #[serde(default)]
    pub attempts: Vec<AttemptRead>,
}

#[derive(Debug, Deserialize)]
pub struct JobReadList {
    #[serde(default)]
    pub jobs: Vec<JobWithAttemptsRead>,
}

impl From<AttemptRead> for Attempt {
    fn from(a: AttemptRead) -> Attempt {
        let committed = a.total_stats.as_ref().and_then(|s| non_negative(s.records_committed));
        let bytes = a.total_stats.as_ref().and_then(|s| non_negative(s.bytes_committed));
        let (failures, partial_success) = match a.failure_summary {
            Some(s) => (
                s.failures
                    .into_iter()
                    .map(|f| Failure { failure_type: f.failure_type, failure_origin: f.failure_origin, external_message: f.external_message, retryable: f.retryable })
                    .collect(),
                s.partial_success,
            ),
            None => (Vec::new(), None),
        };
        Attempt { status: a.status, records: committed.or(non_negative(a.records_synced)), bytes: bytes.or(non_negative(a.bytes_synced)), failures, partial_success }
    }
}

fn config_job(job: JobRead, attempts: Vec<Attempt>) -> Job {
    let summed = |f: fn(&Attempt) -> Option<u64>| -> Option<u64> {
        let values: Vec<u64> = attempts.iter().filter_map(f).collect();
        if values.is_empty() { None } else { Some(values.iter().fold(0u64, |a, b| a.saturating_add(*b))) }
    };
    let rows = job.aggregated_stats.as_ref().and_then(|s| non_negative(s.records_committed)).or_else(|| summed(|a| a.records));
    let bytes = job.aggregated_stats.as_ref().and_then(|s| non_negative(s.bytes_committed)).or_else(|| summed(|a| a.bytes));
    Job {
        id: job.id,
        status: JobStatus::parse(&job.status),
        status_raw: job.status,
        job_type: job.config_type,
        connection_id: job.config_id,
        created_at: job.created_at,
        rows,
        bytes,
        attempts,
    }
}

impl From<JobInfoRead> for Job {
    fn from(r: JobInfoRead) -> Job {
        let attempts = r.attempts.into_iter().map(|a| a.attempt.into()).collect();
        config_job(r.job, attempts)
    }
}

impl From<JobWithAttemptsRead> for Job {
    fn from(r: JobWithAttemptsRead) -> Job {
        let attempts = r.attempts.into_iter().map(Attempt::from).collect();
        config_job(r.job, attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_offset_date_time() {
        assert_eq!(parse_offset_date_time("1970-01-01T00:01Z"), Some(60));
        assert_eq!(parse_offset_date_time("1970-01-01T00:01:05Z"), Some(65));
        assert_eq!(parse_offset_date_time("1970-01-01T01:01+01:00"), Some(60));
        assert_eq!(parse_offset_date_time("garbage"), None);
        assert_eq!(parse_offset_date_time("1970-01-01T00:01"), None);
    }

    #[test]
    fn statuses() {
        assert!(JobStatus::parse("succeeded").is_terminal());
        assert!(JobStatus::parse("CANCELLED").is_terminal());
        assert!(!JobStatus::parse("incomplete").is_terminal());
        assert!(!JobStatus::parse("queued").is_terminal());
        assert_eq!(JobStatus::parse("new-word"), JobStatus::Unknown);
    }

    #[test]
    fn config_rows_sum_attempts_without_aggregated_stats() {
        let info: JobInfoRead = serde_json::from_value(serde_json::json!({
            "job": {"id": 7, "configType": "sync", "configId": "c", "createdAt": 1, "updatedAt": 2, "status": "succeeded"},
            "attempts": [
                {"attempt": {"id": 0, "status": "failed", "createdAt": 1, "updatedAt": 1, "recordsSynced": 3}},
                {"attempt": {"id": 1, "status": "succeeded", "createdAt": 1, "updatedAt": 2, "recordsSynced": 9, "totalStats": {"recordsCommitted": 10}}}
            ]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let job = Job::from(info);
        assert_eq!(job.rows, Some(13));
        assert_eq!(job.attempts.len(), 2);
    }
}
