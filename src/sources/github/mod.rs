//! The `github` source: issues, pull requests, commits and releases of one repository,
//! a preset over `rest_api` (Link-header pagination, `since` incremental, token auth).
//!
//! What the preset adds to plain REST: `issues` leaves out pull requests (GitHub's issues
//! API lists both; `pull_requests` has them) and asks only for issues updated since the
//! incremental start value; `pull_requests` are read newest-updated first and paging stops at
//! the first page that ends before the start value; `commits` get `id` (the sha, so the
//! natural key `id` holds for every resource) and `committed_at` (the committer date, usable
//! as the cursor, pushed down as `since`). Every resource's natural key is `id`.

pub mod config;

use serde_json::{json, Value};

use self::config::GithubConfig;
use super::rest_api::{config::RestApiConfig, Hooks, RestApi};
use super::{Source, SourceContext};
use crate::error::{code, IngestionError};

use super::SourceKind;
use crate::config::diagnostics::{did_you_mean, FileDiagnostics};
use crate::config::schema_check::check;

pub static KIND: SourceKind = SourceKind {
    name: "github",
    natural_key: Some(&["id"]),
    check_config: |v, p, d| check::<config::GithubConfig>(v, p, d),
    missing_config: |p, d| super::missing_config_keys("owner and repo", "{owner: dlt-hub, repo: dlt}", p, d),
    check_resource,
    resource_key: super::no_resource_key,
    open,
};

fn check_resource(_: &Value, resource: Option<&str>, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    match resource {
        Some(r) if !config::RESOURCES.contains(&r) => {
            d.error(&format!("{dlt_path}.resource"), format!("unknown github resource \"{r}\""))
                .expected(format!("one of {}", config::RESOURCES.join(", ")))
                .maybe_hint(did_you_mean(r, config::RESOURCES.iter().copied()));
        }
        None => {
            d.key_error(dlt_path, "which github resource? `resource` is required").hint(format!("add `resource: issues` (one of {})", config::RESOURCES.join(", ")));
        }
        _ => {}
    }
}

/// GitHub's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

fn open(ctx: SourceContext) -> Result<Box<dyn Source>, IngestionError> {
    let invalid = |m: String| IngestionError::configuration(code::INVALID_CONFIG, KIND.name, ctx.redactor.redact(&format!("entry {}: {m}", ctx.entry)));
    let cfg: GithubConfig = serde_json::from_value(ctx.config.clone()).map_err(|e| invalid(format!("dlt.config: {e}")))?;
    for (key, v) in [("owner", &cfg.owner), ("repo", &cfg.repo)] {
        if v.is_empty() || v.contains(|c: char| c == '/' || c == '?' || c == '#' || c == '%' || c.is_whitespace()) {
            return Err(invalid(format!("dlt.config.{key} `{v}` is not a GitHub {key} name")));
        }
    }
    let resource = ctx.resource.clone().ok_or_else(|| invalid(format!("dlt.resource is required (one of {})", config::RESOURCES.join(", "))))?;
    let rest = preset(&cfg, &resource, &ctx).map_err(invalid)?;
    let hooks = hooks(&resource, ctx.cursor_column.as_deref());
    if cfg.access_token.as_deref().is_none_or(str::is_empty) {
        tracing::warn!("entry {}: github without an access token: GitHub allows 60 unauthenticated requests per hour", ctx.entry);
    }
    let mut ctx = ctx;
    ctx.resource = Some(resource);
    Ok(Box::new(RestApi::new(rest, ctx, KIND.name, hooks)?))
}

/// The incremental start value, when it is a timestamp GitHub's `since` understands.
fn since(ctx: &SourceContext) -> Option<String> {
    match &ctx.cursor_start {
        Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Some(s.clone()),
        _ => None,
    }
}

/// The `rest_api` config of one github resource.
fn preset(cfg: &GithubConfig, resource: &str, ctx: &SourceContext) -> Result<RestApiConfig, String> {
    let per_page = cfg.per_page.unwrap_or(100).clamp(1, 100);
    let repo = format!("repos/{}/{}", cfg.owner, cfg.repo);
    let cursor = ctx.cursor_column.as_deref();
    let (path, mut params) = match resource {
        // `since` filters on updated_at, which is never before created_at or closed_at: a
        // superset for any timestamp cursor, and the engine filters exactly.
        "issues" => (format!("{repo}/issues"), json!({"state": "all", "sort": "updated", "direction": "asc", "since": since(ctx)})),
        "pull_requests" => (format!("{repo}/pulls"), json!({"state": "all", "sort": "updated", "direction": "desc"})),
        "commits" => (format!("{repo}/commits"), json!({"since": if cursor == Some("committed_at") { since(ctx) } else { None }})),
        "releases" => (format!("{repo}/releases"), json!({})),
        other => return Err(format!("unknown github resource `{other}` (one of {})", config::RESOURCES.join(", "))),
    };
    params["per_page"] = json!(per_page);
    let auth = cfg.access_token.as_deref().filter(|t| !t.is_empty()).map(|t| json!({"type": "bearer", "token": t}));
    let mut value = json!({
        "client": {
            "base_url": cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            "headers": {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
            "auth": auth,
            "paginator": "header_link",
        },
        "resources": [{"name": resource, "primary_key": "id", "endpoint": {"path": path, "params": params, "data_selector": "$"}}],
    });
    if value["client"]["auth"].is_null()
        && let Some(c) = value["client"].as_object_mut()
    {
        c.remove("auth");
    }
    serde_json::from_value(value).map_err(|e| format!("github preset: {e}"))
}

fn hooks(resource: &str, cursor: Option<&str>) -> Hooks {
    match resource {
        "issues" => Hooks { record: Some(drop_pull_requests), ..Hooks::default() },
        "pull_requests" if cursor == Some("updated_at") => Hooks { newest_first_by: Some("updated_at"), ..Hooks::default() },
        "commits" => Hooks { record: Some(commit_keys), ..Hooks::default() },
        _ => Hooks::default(),
    }
}

/// GitHub's issues API lists pull requests too; they belong to `pull_requests`.
fn drop_pull_requests(r: Value) -> Option<Value> {
    if r.get("pull_request").is_some_and(|p| !p.is_null()) { None } else { Some(r) }
}

/// Commits have no `id` and their date is nested: add `id` (the sha) and `committed_at`.
fn commit_keys(mut r: Value) -> Option<Value> {
    let sha = r.get("sha").cloned();
    let at = r.pointer("/commit/committer/date").cloned();
    if let Value::Object(m) = &mut r {
        if let Some(sha) = sha {
            m.entry("id").or_insert(sha);
        }
        if let Some(at) = at {
            m.entry("committed_at").or_insert(at);
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_requests_are_not_issues_and_commits_get_keys() {
        assert!(drop_pull_requests(json!({"id": 1, "pull_request": {"url": "x"}})).is_none());
        assert!(drop_pull_requests(json!({"id": 1})).is_some());
        let c = commit_keys(json!({"sha": "abc", "commit": {"committer": {"date": "2024-01-01T00:00:00Z"}}})).expect("commit");
        assert_eq!((c["id"].as_str(), c["committed_at"].as_str()), (Some("abc"), Some("2024-01-01T00:00:00Z")));
    }
}
