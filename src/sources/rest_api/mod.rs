//! The `rest_api` source: dlt's declarative REST API config (client, auth, paginators,
//! data selectors, incremental parameters, parent/child resources).

pub mod config;

use serde_json::Value;

use super::SourceKind;
use crate::config::diagnostics::{did_you_mean, FileDiagnostics};
use crate::config::schema_check::check;

pub static KIND: SourceKind = SourceKind {
    name: "rest_api",
    natural_key: None,
    check_config: |v, p, d| check::<config::RestApiConfig>(v, p, d),
    missing_config: |p, d| super::missing_config_keys("client.base_url and resources", "{client: {base_url: \"https://api.example.com\"}, resources: [items]}", p, d),
    check_resource,
    resource_key,
    open,
};

fn resource_names(v: &Value) -> Vec<&str> {
    v.get("resources").and_then(Value::as_array).map(|rs| rs.iter().filter_map(|r| r.get("name").and_then(Value::as_str)).collect()).unwrap_or_default()
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
        Some(r) => resources.iter().find(|x| x.get("name").and_then(Value::as_str) == Some(r))?,
        None => resources.first()?,
    };
    match chosen.get("primary_key")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    }
}

fn open(ctx: super::SourceContext) -> Result<Box<dyn super::Source>, crate::error::IngestionError> {
    Err(super::not_available(KIND.name, &ctx))
}
