//! The embedded engine's sources: where rows enter floe.
//!
//! Each source lives in its own folder (`filesystem/`, `rest_api/`, `sql_database/`,
//! `github/`) with its settings (`config.rs`) beside its code, and registers one
//! [`SourceKind`] in [`REGISTRY`]. Adding a source is adding a folder and a registry line.
//! Names follow CONTRACT.md; `dlt.sources.<name>[.<function>]` names the same sources, so
//! dlt users can keep the import paths they know.

pub mod filesystem;
pub mod github;
pub mod rest_api;
pub mod sql_database;

use serde_json::Value;

use crate::config::diagnostics::FileDiagnostics;

/// What the compiler needs to know about a source.
pub struct SourceKind {
    /// The name used in `dlt.source`.
    pub name: &'static str,
    /// The key a merge may rely on when the entry gives no `primary_key` (github: `id`).
    pub natural_key: Option<&'static [&'static str]>,
    /// Check `dlt.config` against the source's settings; true when valid.
    pub check_config: fn(&Value, &str, &mut FileDiagnostics<'_>) -> bool,
    /// Report a missing `dlt.config` (most sources cannot run without one).
    pub missing_config: fn(&str, &mut FileDiagnostics<'_>),
    /// Check `dlt.resource` against the (valid) config.
    pub check_resource: fn(&Value, Option<&str>, &str, &mut FileDiagnostics<'_>),
    /// The primary key the config itself declares for the chosen resource, if any.
    pub resource_key: fn(&Value, Option<&str>) -> Option<Vec<String>>,
}

/// Every source the embedded engine provides.
pub static REGISTRY: &[&SourceKind] = &[&rest_api::KIND, &sql_database::KIND, &filesystem::KIND, &github::KIND];

/// Find a source by `dlt.source`: `filesystem`, `dlt.sources.filesystem`,
/// `dlt.sources.github.github_reactions`, …
pub fn resolve(source: &str) -> Option<&'static SourceKind> {
    let name = match source.strip_prefix("dlt.sources.") {
        Some(rest) => rest.split('.').next().unwrap_or(rest),
        None => source,
    };
    REGISTRY.iter().copied().find(|k| k.name == name)
}

/// A `missing_config` for sources whose config has required keys: names them and shows where
/// they go.
pub(crate) fn missing_config_keys(keys: &str, example: &str, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    d.key_error(dlt_path, format!("missing key `config`: {keys} required"))
        .hint(format!("add under {dlt_path}:  config: {example}"));
}

/// A `check_resource` that accepts anything.
pub(crate) fn any_resource(_: &Value, _: Option<&str>, _: &str, _: &mut FileDiagnostics<'_>) {}

/// A `resource_key` for sources without declared keys.
pub(crate) fn no_resource_key(_: &Value, _: Option<&str>) -> Option<Vec<String>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_dlt_aliases() {
        assert_eq!(resolve("filesystem").map(|k| k.name), Some("filesystem"));
        assert_eq!(resolve("dlt.sources.github.github_reactions").map(|k| k.name), Some("github"));
        assert_eq!(resolve("dlt.sources.sql_database").map(|k| k.name), Some("sql_database"));
        assert!(resolve("dlt.sources.salesforce").is_none());
        assert!(resolve("github_reactions").is_none());
    }
}
