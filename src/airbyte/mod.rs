//! The external Airbyte plugin (ADR-0020, "Airbyte (external)"): for teams that run Airbyte,
//! floe triggers the connection's sync through Airbyte's API, watches the job to the end and
//! reports it in floe's error taxonomy. Airbyte moves the data; floe never touches the table.
//!
//! Settings (`plugins.ingestion` with `type: airbyte`): `workspace_url` is the API base —
//! Airbyte Cloud `https://api.airbyte.com`, self-managed `https://<host>/api/public` for the
//! public API (`api: public`, the default), or `https://<host>` for the config API
//! (`api: config`); `connection_secret_ref` names the secret holding the bearer token
//! (`auth: token`) or `CLIENT_ID:CLIENT_SECRET` (`auth: client_credentials`);
//! `poll_interval_seconds` (fractions allowed) and `timeout_seconds` bound the watch.
//!
//! Files: [`client`] speaks both APIs, [`auth`] holds credentials and token refresh,
//! [`model`] Airbyte's wire formats, [`attempt`] one attempt (trigger/attach/reconcile,
//! watch, timeout), [`classify`] the taxonomy, [`book`] what the plugin remembers between
//! attempts and for `cancel_all`.

pub mod attempt;
pub mod auth;
pub mod book;
pub mod classify;
pub mod client;
pub mod model;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use self::auth::Credentials;
use self::book::Book;
use self::client::Client;
use crate::artifact::{AirbytePlugin as Settings, CompiledEntry};
use crate::engine::{missing_secret, EntryOutcome};
use crate::error::{code, IngestionError};
use crate::run::plugin::{IngestionPlugin, PlanItem};
use crate::secrets::{env_var_name, Redactor, SecretStore};
use crate::sources::Progress;

/// Per-request timeout unless [`AirbytePlugin::with_request_timeout`] says otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The Airbyte plugin for one run. Cheap to share: the runner may run several entries at once.
pub struct AirbytePlugin {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    settings: Settings,
    secrets: SecretStore,
    request_timeout: Duration,
    poll_interval: Duration,
    timeout: Duration,
    /// Built on first use, once the secret resolves.
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Every secret value and access token seen, to scrub from anything shown.
    redactor: Arc<Mutex<Redactor>>,
    book: Mutex<Book>,
    /// Set by `cancel_all`: attempts stop and cancel what they started.
    interrupted: tokio::sync::watch::Sender<bool>,
}

impl Inner {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The client, resolving the secret the first time.
    async fn client(&self) -> Result<Arc<Client>, IngestionError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let reference = &self.settings.connection_secret_ref;
        let secret = self.secrets.resolve(reference).map_err(|e| missing_secret(&e))?;
        if let Ok(mut r) = self.redactor.lock() {
            r.add(&secret);
        }
        let credentials = Credentials::from_secret(self.settings.auth, &secret, reference)
            .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, classify::SOURCE, e.0).with_detail("secret_ref", reference.clone()))?;
        let client = Client::new(self.settings.api, &self.settings.workspace_url, credentials, self.request_timeout, self.redactor.clone()).map_err(|e| {
            let ctx = classify::Context { api: self.settings.api, connection_id: "", secret_ref: reference, job_id: None, job_url: None };
            classify::api_error(&e, &ctx)
        })?;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    fn scrub(&self, mut e: IngestionError) -> IngestionError {
        let redactor = self.redactor.lock().map(|r| r.clone()).unwrap_or_default();
        e.message = redactor.redact(&e.message);
        for v in e.details.values_mut() {
            if let Value::String(s) = v {
                *s = redactor.redact(s);
            }
        }
        e
    }
}

fn seconds(value: f64, default: Duration) -> Duration {
    Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).unwrap_or(default)
}

impl AirbytePlugin {
    /// The plugin for the artifact's `plugins.airbyte` settings. Nothing is resolved or
    /// contacted until an entry runs (a missing secret fails that entry as CONFIGURATION).
    pub fn new(settings: &Settings, secrets: SecretStore) -> AirbytePlugin {
        let (interrupted, _) = tokio::sync::watch::channel(false);
        AirbytePlugin {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                secrets,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                poll_interval: seconds(settings.poll_interval_seconds, DEFAULT_POLL_INTERVAL).max(MIN_POLL_INTERVAL),
                timeout: seconds(settings.timeout_seconds, DEFAULT_TIMEOUT),
                client: tokio::sync::Mutex::new(None),
                redactor: Arc::new(Mutex::new(Redactor::default())),
                book: Mutex::new(Book::default()),
                interrupted,
            }),
        }
    }

    /// Use `timeout` for every HTTP request instead of 30 s (call before the first run).
    pub fn with_request_timeout(mut self, timeout: Duration) -> AirbytePlugin {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.request_timeout = timeout.max(Duration::from_millis(1));
        }
        self
    }

    /// Every secret value and access token this plugin has seen, for scrubbing the report.
    pub fn redactor(&self) -> Redactor {
        self.inner.redactor.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The latest Airbyte job of an entry (`job_id`, `job_url`, `job_status`, `rows_synced`,
    /// `bytes_synced`, `attached`), for the report of a successful entry. Errors carry the
    /// same in their own `details`.
    pub fn job_details(&self, entry: &str) -> Option<BTreeMap<String, Value>> {
        self.inner.book().last.get(entry).cloned()
    }
}

#[async_trait::async_trait]
impl IngestionPlugin for AirbytePlugin {
    fn name(&self) -> &'static str {
        "airbyte"
    }

    fn is_external(&self) -> bool {
        true
    }

    /// Resolves the secret (present or not) and checks the settings; contacts no Airbyte endpoint.
    async fn plan(&self, entry: &CompiledEntry) -> PlanItem {
        let settings = &self.inner.settings;
        let reference = &settings.connection_secret_ref;
        let mut problems = Vec::new();
        let resolved = self.inner.secrets.resolve(reference);
        match &resolved {
            Ok(secret) => {
                if let Err(e) = Credentials::from_secret(settings.auth, secret, reference) {
                    problems.push(e.0);
                }
            }
            Err(_) => problems.push(format!("secret `{reference}` does not resolve (env {} or file)", env_var_name(reference))),
        }
        let url_ok = reqwest12::Url::parse(&settings.workspace_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !url_ok {
            problems.push(format!("workspace_url \"{}\" is not an http(s) URL", crate::secrets::redact_url_passwords(&settings.workspace_url)));
        }
        let connection = entry.airbyte.as_ref().map(|a| a.connection_id.trim()).filter(|c| !c.is_empty());
        if connection.is_none() {
            problems.push(format!("entry {} has no airbyte.connection_id", entry.name));
        }
        let mut secrets = BTreeMap::new();
        secrets.insert(reference.clone(), resolved.is_ok());
        PlanItem {
            name: entry.name.clone(),
            kind: "airbyte".into(),
            source: format!("airbyte connection {}", connection.unwrap_or("?")),
            destination: entry.destination.clone(),
            write_disposition: entry.write_disposition.as_str().into(),
            secrets,
            resume_from: None,
            problems,
        }
    }

    /// One attempt: trigger (or attach to) the connection's sync and watch it to the end.
    async fn run(&self, entry: &CompiledEntry, progress: Arc<Progress>) -> Result<EntryOutcome, IngestionError> {
        let inner = &self.inner;
        let result = async {
            let connection_id = entry.airbyte.as_ref().map(|a| a.connection_id.trim()).filter(|c| !c.is_empty()).ok_or_else(|| {
                IngestionError::configuration(code::INVALID_CONFIG, classify::SOURCE, format!("entry {} has type airbyte but no airbyte.connection_id", entry.name))
            })?;
            let client = inner.client().await?;
            attempt::Attempt::new(inner, entry, &client, connection_id, &progress).run().await
        }
        .await;
        result.map_err(|e| inner.scrub(e))
    }

    /// Cancel every job this plugin started that is still running, including one a trigger
    /// still in flight may have created; running attempts end with `INTERRUPTED`.
    async fn cancel_all(&self) {
        let inner = &self.inner;
        inner.interrupted.send_replace(true);
        let Some(client) = inner.client.lock().await.clone() else {
            return;
        };
        let (jobs, flights) = {
            let mut book = inner.book();
            (book.take_cancellable(), book.flights.values().cloned().collect::<Vec<_>>())
        };
        let cancels = jobs.into_iter().map(|id| {
            let client = client.clone();
            async move {
                match client.cancel(id).await {
                    Ok(_) => tracing::info!(job_id = id, "cancelled the Airbyte job"),
                    Err(e) => {
                        let ctx = classify::Context { api: client.api(), connection_id: "", secret_ref: &inner.settings.connection_secret_ref, job_id: Some(id), job_url: None };
                        tracing::warn!(job_id = id, error = %inner.scrub(classify::api_error(&e, &ctx)), "could not cancel the Airbyte job");
                    }
                }
            }
        });
        futures::future::join_all(cancels).await;
        let flights = flights.into_iter().map(|f| {
            let client = client.clone();
            async move { attempt::cancel_flight(inner, &client, &f.connection_id, f.started_wall, f.started).await }
        });
        futures::future::join_all(flights).await;
    }
}
