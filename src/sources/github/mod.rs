//! The `github` source: issues, pull requests, commits and releases of one repository,
//! a preset over `rest_api` (Link-header pagination, `since` incremental, token auth).

pub mod config;

use serde_json::Value;

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

fn open(ctx: super::SourceContext) -> Result<Box<dyn super::Source>, crate::error::IngestionError> {
    Err(super::not_available(KIND.name, &ctx))
}
