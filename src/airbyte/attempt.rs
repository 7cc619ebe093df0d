//! One attempt at one entry: find or start the sync job, watch it to a terminal status within
//! `timeout_seconds`, and report it in the taxonomy.
//!
//! A sync is never blindly triggered twice:
//! - a job the previous attempt stopped watching (Airbyte unreachable) is picked up again;
//! - HTTP 409 on the trigger ("A sync is already running for: …") attaches to the connection's
//!   running sync job instead of failing;
//! - a trigger whose answer was lost (connection reset, request timeout, 5xx) is reconciled by
//!   listing the connection's jobs: a job created since the trigger was sent is floe's own.
//!   Airbyte's clock is read from the list answer's `Date` header, so clock skew between floe
//!   and Airbyte does not matter. Only when no such job exists is the sync triggered again.
//!
//! On timeout floe cancels the job it started (a job it merely attached to is left running)
//! and fails TRANSIENT `TIMEOUT`. Transient errors while polling are tolerated a few times in
//! a row; after that the attempt fails and the next one resumes watching the same job.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::book::Resume;
use super::classify::{self, Context};
use super::client::{ApiError, Client};
use super::model::Job;
use super::Inner;
use crate::artifact::CompiledEntry;
use crate::config::manifest::AirbyteApi;
use crate::engine::EntryOutcome;
use crate::error::{code, Category, IngestionError};
use crate::sources::Progress;

/// Triggers per attempt when answers keep getting lost or a 409 finds nothing to attach to.
const TRIGGER_ROUNDS: usize = 3;
/// Transient polling errors in a row before the attempt gives up (the job keeps running).
const MAX_POLL_FAILURES: u32 = 5;
/// A job created this long before the trigger (by Airbyte's clock) still counts as floe's.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

/// The job an attempt watches.
struct Handle {
    job: Job,
    /// floe started it (so floe cancels it on timeout or interrupt).
    ours: bool,
}

/// What listing the connection's jobs after a lost trigger found.
pub(super) enum Reconciled {
    /// A sync job created after the trigger was sent: floe's own.
    Ours(Job),
    /// No new job, but an older sync is still running (the trigger would have got 409).
    Running(Job),
    None,
}

pub(super) struct Attempt<'a> {
    inner: &'a Inner,
    entry: &'a CompiledEntry,
    client: &'a Client,
    connection_id: &'a str,
    progress: &'a Progress,
    deadline: Instant,
}

impl<'a> Attempt<'a> {
    pub(super) fn new(inner: &'a Inner, entry: &'a CompiledEntry, client: &'a Client, connection_id: &'a str, progress: &'a Progress) -> Attempt<'a> {
        Attempt { inner, entry, client, connection_id, progress, deadline: Instant::now() + inner.timeout }
    }

    fn ctx(&self, job_id: Option<i64>, job_url: Option<String>) -> Context<'a> {
        Context { api: self.client.api(), connection_id: self.connection_id, secret_ref: &self.inner.settings.connection_secret_ref, job_id, job_url }
    }

    fn fail(&self, e: &ApiError, job_id: Option<i64>) -> IngestionError {
        let url = job_id.and_then(|id| self.job_url(id));
        classify::api_error(e, &self.ctx(job_id, url))
    }

    pub(super) async fn run(&self) -> Result<EntryOutcome, IngestionError> {
        self.check_interrupted(None)?;
        let handle = self.obtain().await?;
        self.lookup_workspace().await;
        self.watch(handle).await
    }

    fn check_interrupted(&self, job_id: Option<i64>) -> Result<(), IngestionError> {
        if *self.inner.interrupted.borrow() {
            let mut e = IngestionError::transient(code::INTERRUPTED, classify::SOURCE, "interrupted; Airbyte jobs floe started were cancelled").with_detail("connection_id", self.connection_id);
            if let Some(id) = job_id {
                e = e.with_detail("job_id", id);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The job to watch: resumed, triggered, attached to or reconciled.
    async fn obtain(&self) -> Result<Handle, IngestionError> {
        let resume = self.inner.book().resume.remove(&self.entry.name);
        match resume {
            Some(Resume::Job { id, ours }) => match self.client.get_job(id).await {
                Ok(job) => {
                    tracing::info!(entry = %self.entry.name, job_id = id, "resuming the Airbyte job the previous attempt was watching");
                    return Ok(Handle { job, ours });
                }
                Err(e) if e.is_transient() => {
                    self.inner.book().resume.insert(self.entry.name.clone(), Resume::Job { id, ours });
                    return Err(self.fail(&e, Some(id)));
                }
                Err(e) if e.status() == Some(404) => {
                    self.inner.book().finish(id);
                    tracing::warn!(entry = %self.entry.name, job_id = id, "Airbyte no longer knows the job the previous attempt was watching; triggering a new sync");
                }
                Err(e) => return Err(self.fail(&e, Some(id))),
            },
            Some(Resume::Trigger { started_wall, started }) => match self.reconcile(started_wall, started).await {
                Ok(Reconciled::Ours(job)) => return Ok(self.adopt(job)),
                Ok(Reconciled::Running(job)) => return Ok(self.attach(job)),
                Ok(Reconciled::None) => {}
                Err(e) => {
                    self.inner.book().resume.insert(self.entry.name.clone(), Resume::Trigger { started_wall, started });
                    return Err(self.fail(&e, None));
                }
            },
            None => {}
        }
        self.trigger().await
    }

    /// A job floe's own trigger created.
    fn adopt(&self, job: Job) -> Handle {
        self.inner.book().ours.insert(job.id, self.connection_id.to_string());
        tracing::info!(entry = %self.entry.name, connection_id = %self.connection_id, job_id = job.id, status = %job.status_raw, "Airbyte sync started");
        Handle { job, ours: true }
    }

    /// A running job floe did not start (or started in an earlier attempt).
    fn attach(&self, job: Job) -> Handle {
        let ours = self.inner.book().ours.contains_key(&job.id);
        tracing::info!(entry = %self.entry.name, connection_id = %self.connection_id, job_id = job.id, status = %job.status_raw, "a sync is already running for the connection; watching it instead of starting another");
        Handle { job, ours }
    }

    async fn trigger(&self) -> Result<Handle, IngestionError> {
        let mut last: Option<ApiError> = None;
        for round in 0..TRIGGER_ROUNDS {
            self.check_interrupted(None)?;
            if round > 0 && Instant::now() >= self.deadline {
                break;
            }
            let (started_wall, started) = (SystemTime::now(), Instant::now());
            let flight = self.inner.book().begin_flight(self.connection_id, started_wall, started);
            let result = self.client.trigger(self.connection_id).await;
            match result {
                Ok(job) => {
                    self.inner.book().end_flight(flight);
                    return Ok(self.adopt(job));
                }
                Err(e @ ApiError::Status { status: 409, .. }) => {
                    self.inner.book().end_flight(flight);
                    match self.find_running().await {
                        Ok(Some(job)) => return Ok(self.attach(job)),
                        Ok(None) => {
                            tracing::info!(entry = %self.entry.name, "Airbyte says a sync is running but lists none; trying again");
                            last = Some(e);
                            self.pause(self.inner.poll_interval).await;
                        }
                        Err(le) => return Err(self.fail(&le, None)),
                    }
                }
                Err(e) if e.maybe_took_effect() => {
                    tracing::warn!(entry = %self.entry.name, connection_id = %self.connection_id, "the answer to the sync trigger was lost; looking for the job it may have created");
                    let reconciled = self.reconcile(started_wall, started).await;
                    self.inner.book().end_flight(flight);
                    match reconciled {
                        Ok(Reconciled::Ours(job)) => return Ok(self.adopt(job)),
                        Ok(Reconciled::Running(job)) => return Ok(self.attach(job)),
                        Ok(Reconciled::None) if matches!(e, ApiError::Transport { .. }) => {
                            tracing::info!(entry = %self.entry.name, "no job was created; triggering again");
                            last = Some(e);
                        }
                        // A 5xx that created nothing: Airbyte failed; the runner retries later.
                        Ok(Reconciled::None) => return Err(self.fail(&e, None)),
                        Err(_) => {
                            self.inner.book().resume.insert(self.entry.name.clone(), Resume::Trigger { started_wall, started });
                            return Err(self.fail(&e, None).with_detail("reconciliation", "pending: the next attempt looks for the job before triggering again"));
                        }
                    }
                }
                Err(e) => {
                    self.inner.book().end_flight(flight);
                    return Err(self.fail(&e, None));
                }
            }
        }
        Err(match last {
            Some(e @ ApiError::Status { status: 409, .. }) => IngestionError::transient(
                code::UNAVAILABLE,
                classify::SOURCE,
                format!("Airbyte keeps answering 409 (a sync is already running for connection \"{}\") but lists no running sync job; another job type (reset, clear, refresh) may hold the connection", self.connection_id),
            )
            .with_detail("connection_id", self.connection_id)
            .with_detail("http_status", e.status().unwrap_or(409)),
            Some(e) => self.fail(&e, None),
            None => IngestionError::transient(code::TIMEOUT, classify::SOURCE, "the timeout ran out before a sync could be started").with_detail("connection_id", self.connection_id),
        })
    }

    /// The connection's newest sync job that has not ended.
    async fn find_running(&self) -> Result<Option<Job>, ApiError> {
        let listing = self.client.list_sync_jobs(self.connection_id).await?;
        Ok(listing.jobs.into_iter().find(|j| j.is_sync() && !j.status.is_terminal()))
    }

    /// After a lost trigger: did it create a job?
    async fn reconcile(&self, started_wall: SystemTime, started: Instant) -> Result<Reconciled, ApiError> {
        reconcile(self.client, self.connection_id, started_wall, started).await
    }

    /// Look up the connection's workspace once, for links into Airbyte's UI.
    async fn lookup_workspace(&self) {
        if self.inner.book().workspaces.contains_key(self.connection_id) {
            return;
        }
        let workspace = match self.client.workspace_of(self.connection_id).await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(connection_id = %self.connection_id, error = %self.fail(&e, None), "could not look up the connection's workspace (only the link to the job is affected)");
                None
            }
        };
        self.inner.book().workspaces.insert(self.connection_id.to_string(), workspace);
    }

    /// A link to the job: Airbyte's UI when the workspace is known, else the API resource.
    fn job_url(&self, job_id: i64) -> Option<String> {
        let workspace = self.inner.book().workspaces.get(self.connection_id).cloned().flatten();
        job_url(self.client, self.connection_id, workspace.as_deref(), job_id)
    }

    async fn watch(&self, handle: Handle) -> Result<EntryOutcome, IngestionError> {
        let Handle { mut job, ours } = handle;
        let id = job.id;
        let mut polls: u64 = 0;
        let mut failures: u32 = 0;
        let mut wait = self.inner.poll_interval;
        loop {
            self.note(&job, polls, !ours);
            if job.status.is_terminal() {
                let cancelled_by_floe = self.inner.book().cancelled.contains(&id);
                self.inner.book().finish(id);
                if cancelled_by_floe && job.status == super::model::JobStatus::Cancelled {
                    self.check_interrupted(Some(id))?;
                }
                tracing::info!(entry = %self.entry.name, job_id = id, status = %job.status_raw, rows = job.rows, "Airbyte job ended");
                return classify::terminal(&job, &self.ctx(Some(id), self.job_url(id)));
            }
            if *self.inner.interrupted.borrow() {
                if ours && self.inner.book().mark_cancelled(id) {
                    self.cancel_quietly(id).await;
                }
                self.check_interrupted(Some(id))?;
            }
            let now = Instant::now();
            if now >= self.deadline {
                return self.timed_out(job, ours).await;
            }
            self.pause(wait.min(self.deadline - now)).await;
            match self.client.get_job(id).await {
                Ok(j) => {
                    job = j;
                    polls += 1;
                    failures = 0;
                    wait = self.inner.poll_interval;
                }
                Err(e) if e.is_transient() && failures < MAX_POLL_FAILURES => {
                    failures += 1;
                    let retry_after = match &e {
                        ApiError::Status { retry_after: Some(s), .. } => Some(Duration::from_secs(*s)),
                        _ => None,
                    };
                    wait = retry_after.unwrap_or(self.inner.poll_interval * failures);
                    tracing::warn!(entry = %self.entry.name, job_id = id, failures, error = %self.fail(&e, Some(id)), "polling the Airbyte job failed; trying again");
                }
                Err(e) if e.is_transient() => {
                    // Leave the job running and have the next attempt pick it up again.
                    self.inner.book().resume.insert(self.entry.name.clone(), Resume::Job { id, ours });
                    return Err(self.fail(&e, Some(id)).with_detail("job_left_running", true));
                }
                Err(e) => {
                    self.inner.book().finish(id);
                    return Err(self.fail(&e, Some(id)));
                }
            }
        }
    }

    /// Show progress and remember the job for the report.
    fn note(&self, job: &Job, polls: u64, attached: bool) {
        if let Some(rows) = job.rows {
            self.progress.rows.store(rows, Ordering::Relaxed);
        }
        self.progress.units.store(polls, Ordering::Relaxed);
        let details = classify::job_details(job, self.job_url(job.id).as_deref(), attached);
        self.inner.book().last.insert(self.entry.name.clone(), details);
    }

    async fn timed_out(&self, job: Job, ours: bool) -> Result<EntryOutcome, IngestionError> {
        let id = job.id;
        let seconds = self.inner.timeout.as_secs_f64();
        let cancelled = if ours {
            self.inner.book().mark_cancelled(id);
            match self.client.cancel(id).await {
                Ok(_) => true,
                Err(e) => {
                    // 409 (public) / 500 (config): the job is not running any more. It may
                    // have just ended; if so, that is the result.
                    if let Ok(latest) = self.client.get_job(id).await
                        && latest.status.is_terminal()
                        && latest.status != super::model::JobStatus::Cancelled
                    {
                        self.inner.book().finish(id);
                        return classify::terminal(&latest, &self.ctx(Some(id), self.job_url(id)));
                    }
                    tracing::warn!(job_id = id, error = %self.fail(&e, Some(id)), "could not cancel the Airbyte job after the timeout");
                    false
                }
            }
        } else {
            false
        };
        self.inner.book().finish(id);
        let what = match (ours, cancelled) {
            (true, true) => "floe cancelled it",
            (true, false) => "floe could not cancel it",
            (false, _) => "floe did not start it (it was already running), so it was left running",
        };
        tracing::warn!(entry = %self.entry.name, job_id = id, "Airbyte job timed out: {what}");
        Err(self
            .ctx(Some(id), self.job_url(id))
            .timeout_error(format!("Airbyte job {id} did not finish within timeout_seconds ({seconds}s; last status {}); {what}", job.status_raw))
            .with_detail("job_status", job.status_raw.clone())
            .with_detail("job_cancelled", cancelled)
            .with_detail("timeout_seconds", seconds))
    }

    async fn cancel_quietly(&self, id: i64) {
        match self.client.cancel(id).await {
            Ok(_) => tracing::info!(job_id = id, "cancelled the Airbyte job"),
            Err(e) => tracing::warn!(job_id = id, error = %self.fail(&e, Some(id)), "could not cancel the Airbyte job"),
        }
    }

    /// Sleep, waking early when the run is interrupted.
    async fn pause(&self, d: Duration) {
        let mut rx = self.inner.interrupted.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|v| *v) => {}
        }
    }
}

impl Context<'_> {
    fn timeout_error(&self, message: String) -> IngestionError {
        let mut e = IngestionError::new(Category::Transient, code::TIMEOUT, classify::SOURCE, message).with_detail("connection_id", self.connection_id);
        if let Some(id) = self.job_id {
            e = e.with_detail("job_id", id);
        }
        if let Some(url) = &self.job_url {
            e = e.with_detail("job_url", url.clone());
        }
        e
    }
}

/// List the connection's sync jobs and find the one a trigger sent at `started` created.
pub(super) async fn reconcile(client: &Client, connection_id: &str, started_wall: SystemTime, started: Instant) -> Result<Reconciled, ApiError> {
    let listing = client.list_sync_jobs(connection_id).await?;
    // When the trigger left, by Airbyte's clock: its `Date` now, minus the time since.
    let server_started = listing.server_now.map(|now| now.checked_sub(started.elapsed()).unwrap_or(now)).unwrap_or(started_wall);
    let cutoff = server_started.checked_sub(CLOCK_SLACK).unwrap_or(server_started);
    let cutoff = cutoff.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let mut running = None;
    for job in listing.jobs.into_iter().filter(Job::is_sync) {
        if job.created_at.is_some_and(|c| c >= cutoff) {
            return Ok(Reconciled::Ours(job));
        }
        if running.is_none() && !job.status.is_terminal() {
            running = Some(job);
        }
    }
    Ok(running.map_or(Reconciled::None, Reconciled::Running))
}

/// Cancel whatever job a trigger still in flight created (for `cancel_all`).
pub(super) async fn cancel_flight(inner: &Inner, client: &Client, connection_id: &str, started_wall: SystemTime, started: Instant) {
    if let Ok(Reconciled::Ours(job)) = reconcile(client, connection_id, started_wall, started).await
        && !job.status.is_terminal()
        && inner.book().mark_cancelled(job.id)
    {
        match client.cancel(job.id).await {
            Ok(_) => tracing::info!(job_id = job.id, "cancelled the Airbyte job an interrupted trigger created"),
            Err(_) => tracing::warn!(job_id = job.id, "could not cancel the Airbyte job an interrupted trigger created"),
        }
    }
}

/// The link to a job: Airbyte's UI (`/workspaces/<ws>/connections/<c>/timeline?openLogs=true&jobId=<id>`)
/// when the workspace is known; otherwise the public API's job resource (`GET /v1/jobs/<id>`);
/// the config API has no linkable job resource.
pub(super) fn job_url(client: &Client, connection_id: &str, workspace: Option<&str>, job_id: i64) -> Option<String> {
    let base = client.base();
    match (workspace, client.api()) {
        (Some(ws), api) => Some(format!("{}/workspaces/{ws}/connections/{connection_id}/timeline?openLogs=true&jobId={job_id}", ui_base(api, base))),
        (None, AirbyteApi::Public) => Some(format!("{}/v1/jobs/{job_id}", base.as_str().trim_end_matches('/'))),
        (None, AirbyteApi::Config) => None,
    }
}

/// Where Airbyte's web UI lives, given the API base.
fn ui_base(api: AirbyteApi, base: &reqwest12::Url) -> String {
    let text = base.as_str().trim_end_matches('/');
    if base.host_str() == Some("api.airbyte.com") {
        return "https://cloud.airbyte.com".into();
    }
    let stripped = match api {
        AirbyteApi::Public => text.strip_suffix("/api/public").or_else(|| text.strip_suffix("/public")),
        AirbyteApi::Config => text.strip_suffix("/api"),
    };
    stripped.unwrap_or(text).to_string()
}
