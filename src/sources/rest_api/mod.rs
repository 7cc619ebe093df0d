//! The `rest_api` source: dlt's declarative REST API config (client, auth, paginators,
//! data selectors, incremental parameters, parent/child resources).
//!
//! The pieces: `plan` turns the config into the chain of endpoints to call, `http` sends one
//! request (auth, timeout, retries, classification), `paginate` drives the pages of one
//! endpoint, `select` finds the records in a response, `template` fills placeholders and
//! `decode` turns records into Arrow batches. This file runs them: parent pages are read one
//! at a time and each parent record starts its child's request series, so memory holds one
//! page per level plus the batch being built. The `github` source is a preset over this one.

pub mod auth;
pub mod config;
mod decode;
mod http;
mod paginate;
/// The Link-header parser, public for the fuzz targets in `fuzz/` only.
#[doc(hidden)]
pub use paginate::link_header;
mod plan;
mod select;
mod template;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use self::config::{AuthConfig, RestApiConfig};
use self::decode::Decoder;
use self::http::{Http, Policy};
use self::paginate::Series;
use self::plan::Endpoint;
use self::template::Vars;
use super::{BatchSink, Source, SourceContext, SourceKind, SourceOutcome};
use crate::config::diagnostics::{did_you_mean, FileDiagnostics};
use crate::config::schema_check::check;
use crate::error::{code, IngestionError};

pub static KIND: SourceKind = SourceKind {
    name: "rest_api",
    natural_key: None,
    check_config,
    missing_config: |p, d| super::missing_config_keys("client.base_url and resources", "{client: {base_url: \"https://api.example.com\"}, resources: [items]}", p, d),
    check_resource,
    resource_key,
    open,
};

/// A resource is its name alone, or an object with `name`.
fn entry_name(r: &Value) -> Option<&str> {
    r.as_str().or_else(|| r.get("name").and_then(Value::as_str))
}

fn resource_names(v: &Value) -> Vec<&str> {
    v.get("resources").and_then(Value::as_array).map(|rs| rs.iter().filter_map(entry_name).collect()).unwrap_or_default()
}

fn check_resource(v: &Value, resource: Option<&str>, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    let names = resource_names(v);
    match resource {
        Some(r) if !names.contains(&r) => {
            d.error(&format!("{dlt_path}.resource"), format!("no resource named \"{r}\" in dlt.config.resources"))
                .expected(format!("one of {}", names.join(", ")))
                .maybe_hint(did_you_mean(r, names.iter().copied()));
        }
        None if names.len() > 1 => {
            d.key_error(dlt_path, "several resources are configured: say which one feeds this table").hint(format!("add `resource: {}`", names[0]));
        }
        _ => {}
    }
}

fn resource_key(v: &Value, resource: Option<&str>) -> Option<Vec<String>> {
    let resources = v.get("resources")?.as_array()?;
    let chosen = match resource {
        Some(r) => resources.iter().find(|x| entry_name(x) == Some(r))?,
        None => resources.first()?,
    };
    match chosen.get("primary_key")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    }
}

fn check_config(v: &Value, p: &str, d: &mut FileDiagnostics<'_>) -> bool {
    if !check::<RestApiConfig>(v, p, d) {
        return false;
    }
    // What the schema cannot say: paginator parameters, selectors, parent references.
    let Ok(config) = serde_json::from_value::<RestApiConfig>(v.clone()) else { return true };
    if let Some(auth) = &config.client.auth {
        crate::config::rules::credentials_over_http(&config.client.base_url, "credentials (client.auth)", &format!("{p}.client.base_url"), d);
        if let AuthConfig::Oauth2ClientCredentials { access_token_url, .. } = auth {
            crate::config::rules::credentials_over_http(access_token_url, "the OAuth2 client secret", &format!("{p}.client.auth.access_token_url"), d);
        }
    }
    let mut ok = true;
    for r in &config.resources {
        if let Err(m) = plan::chain(&config, Some(r.name())) {
            d.error(&format!("{p}.resources"), m);
            ok = false;
        }
    }
    ok
}

fn open(ctx: SourceContext) -> Result<Box<dyn Source>, IngestionError> {
    let config: RestApiConfig = serde_json::from_value(ctx.config.clone())
        .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, KIND.name, ctx.redactor.redact(&format!("entry {}: dlt.config: {e}", ctx.entry))))?;
    Ok(Box::new(RestApi::new(config, ctx, KIND.name, Hooks::default())?))
}

/// Source-specific adjustments a preset (github) makes to the generic behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hooks {
    /// Change or drop each record before it is decoded.
    pub record: Option<fn(Value) -> Option<Value>>,
    /// The API returns records newest first by this timestamp field: stop paging once a
    /// page ends at or before the incremental start value (older pages hold nothing new).
    pub newest_first_by: Option<&'static str>,
}

/// A runnable `rest_api` (or preset) entry.
pub(crate) struct RestApi {
    http: Arc<Http>,
    base_url: String,
    chain: Vec<Endpoint>,
    ctx: SourceContext,
    parallel: usize,
    hooks: Hooks,
}

fn secs(v: Option<f64>, default: f64, what: &str, source: &str) -> Result<Duration, IngestionError> {
    let s = v.unwrap_or(default);
    if !s.is_finite() || !(0.0..=1e7).contains(&s) {
        return Err(IngestionError::configuration(code::INVALID_CONFIG, source, format!("client.{what} must be a number of seconds ≥ 0")));
    }
    Ok(Duration::from_secs_f64(s))
}

impl RestApi {
    /// Check the config and prepare the client; no request is made yet.
    pub(crate) fn new(config: RestApiConfig, ctx: SourceContext, source: &'static str, hooks: Hooks) -> Result<RestApi, IngestionError> {
        let invalid = |m: String| IngestionError::configuration(code::INVALID_CONFIG, source, ctx.redactor.redact(&format!("entry {}: {m}", ctx.entry)));
        let chain = plan::chain(&config, ctx.resource.as_deref()).map_err(invalid)?;
        let c = &config.client;
        let timeout = secs(c.timeout_seconds, 30.0, "timeout_seconds", source)?;
        if timeout.is_zero() {
            return Err(invalid("client.timeout_seconds must be greater than 0".into()));
        }
        let policy = Policy {
            max_attempts: c.request_max_attempts.unwrap_or(5).max(1),
            backoff: secs(c.request_backoff_factor, 1.0, "request_backoff_factor", source)?,
            max_delay: secs(c.request_max_retry_delay, 300.0, "request_max_retry_delay", source)?,
            timeout,
        };
        let mut redactor = ctx.redactor.clone();
        let auth = auth::Auth::from_config(c.auth.as_ref(), &mut redactor);
        let headers: Vec<(String, String)> = c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut trusted = vec![plan::join_url(&c.base_url, "").map_err(|m| invalid(format!("client.base_url: {m}")))?];
        trusted.extend(chain.iter().filter_map(Endpoint::absolute_url));
        let http = Http::new(source, auth, &headers, policy, redactor, trusted)?;
        let parallel = c.max_parallel_requests.unwrap_or(4).clamp(1, 32) as usize;
        Ok(RestApi { http: Arc::new(http), base_url: c.base_url.clone(), chain, ctx, parallel, hooks })
    }

    /// The request series of chain level `level`, for a parent record when it has one.
    fn series(&self, level: usize, parent: Option<&Value>) -> Result<Series, IngestionError> {
        let e = &self.chain[level];
        let vars = Vars { start: self.ctx.cursor_start.as_ref(), parent: e.parent.as_deref().zip(parent) };
        let req = e.request(&self.base_url, &vars).map_err(|m| IngestionError::configuration(code::INVALID_CONFIG, self.http.source, self.http.redact(&m)))?;
        tracing::debug!(source = self.http.source, "resource {}: {} {}", e.name, req.method, self.http.show(&req.url));
        Ok(Series::new(self.http.clone(), format!("resource {}", e.name), e.selector.clone(), e.paginator.clone(), req, self.parallel))
    }

    /// True when a newest-first page ends at or before the start value.
    fn older_than_start(&self, records: &[Value]) -> bool {
        let (Some(field), Some(Value::String(start))) = (self.hooks.newest_first_by, self.ctx.cursor_start.as_ref()) else { return false };
        let (Ok(start), Some(last)) = (chrono::DateTime::parse_from_rfc3339(start), records.last().and_then(|r| r.get(field)).and_then(Value::as_str)) else { return false };
        chrono::DateTime::parse_from_rfc3339(last).is_ok_and(|t| t <= start)
    }
}

/// One level of the parent/child walk.
struct Level {
    series: Series,
    /// The parent record this series was made for.
    parent: Option<Value>,
    /// Records of this (parent) level still to expand into child series.
    queue: VecDeque<Value>,
}

#[async_trait::async_trait]
impl Source for RestApi {
    async fn run(self: Box<Self>, sink: BatchSink) -> Result<SourceOutcome, IngestionError> {
        let leaf = self.chain.len() - 1;
        let leaf_name = self.chain[leaf].name.clone();
        let mut decoder = Decoder::new(format!("resource {leaf_name}"), self.http.source, self.ctx.batch_size);
        let mut stack = vec![Level { series: self.series(0, None)?, parent: None, queue: VecDeque::new() }];
        while let Some(depth) = stack.len().checked_sub(1) {
            if depth < leaf {
                // A parent level: expand its next record, else read its next page.
                if let Some(record) = stack[depth].queue.pop_front() {
                    let series = self.series(depth + 1, Some(&record))?;
                    stack.push(Level { series, parent: Some(record), queue: VecDeque::new() });
                    continue;
                }
                match stack[depth].series.next_page().await? {
                    Some(page) => {
                        sink.unit_done();
                        stack[depth].queue.extend(page.records);
                    }
                    None => {
                        stack.pop();
                    }
                }
                continue;
            }
            let Some(page) = stack[depth].series.next_page().await? else {
                stack.pop();
                continue;
            };
            sink.unit_done();
            let stop = self.older_than_start(&page.records);
            let mut records = page.records;
            if let (Some(parent), Some(parent_name)) = (&stack[depth].parent, self.chain[depth].parent.as_deref()) {
                include_from_parent(&mut records, parent, parent_name, &self.chain[depth].include_from_parent);
            }
            if let Some(hook) = self.hooks.record {
                records = records.into_iter().filter_map(hook).collect();
            }
            if decoder.push(records, page.bytes)
                && let Some(batch) = decoder.flush()?
            {
                sink.send(batch).await?;
            }
            if stop {
                tracing::debug!(source = self.http.source, "resource {leaf_name}: reached records older than the incremental start value; not reading older pages");
                stack.pop();
            }
        }
        if let Some(batch) = decoder.flush()? {
            sink.send(batch).await?;
        }
        let samples = decoder.samples.iter().map(|s| self.http.redact(s)).collect();
        Ok(SourceOutcome { state: None, rows_rejected: decoder.rejected, rejected_samples: samples })
    }
}

/// Copy parent fields into child records as `_<parent>_<field>` (dlt's naming).
fn include_from_parent(records: &mut [Value], parent: &Value, parent_name: &str, fields: &[String]) {
    if fields.is_empty() {
        return;
    }
    for r in records.iter_mut() {
        let Value::Object(m) = r else { continue };
        for f in fields {
            let v = f.split('.').try_fold(parent, |v, part| v.get(part)).cloned().unwrap_or(Value::Null);
            m.insert(format!("_{parent_name}_{}", f.replace('.', "_")), v);
        }
    }
}
