//! The `sql_database` source: PostgreSQL, MySQL/MariaDB and SQLite tables, streamed in chunks.

pub mod config;

use serde_json::Value;

use super::SourceKind;
use crate::config::diagnostics::FileDiagnostics;
use crate::config::schema_check::check;

pub static KIND: SourceKind = SourceKind {
    name: "sql_database",
    natural_key: None,
    check_config,
    missing_config: |p, d| super::missing_config_keys("credentials and table", "{credentials: \"${secrets.db_url}\", table: orders}", p, d),
    check_resource,
    resource_key: super::no_resource_key,
    open,
};

fn check_config(v: &Value, p: &str, d: &mut FileDiagnostics<'_>) -> bool {
    if !check::<config::SqlDatabaseConfig>(v, p, d) {
        return false;
    }
    let creds = v.get("credentials").and_then(Value::as_str).unwrap_or_default();
    let known = ["postgresql://", "postgres://", "mysql://", "mariadb://", "sqlite:"];
    if !creds.starts_with("${") && !known.iter().any(|k| creds.starts_with(k)) {
        d.error(&format!("{p}.credentials"), "credentials must be a database URL").expected("postgresql://…, mysql://… or sqlite://… (normally ${secrets.NAME})");
        return false;
    }
    for (col, ty) in v.get("type_overrides").and_then(Value::as_object).into_iter().flatten() {
        if ty.as_str() != Some("string") {
            d.error(&format!("{p}.type_overrides.{col}"), format!("unsupported override {ty}")).expected("string");
        }
    }
    true
}

fn check_resource(v: &Value, resource: Option<&str>, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    if v.get("table").is_none() && resource.is_none() {
        d.key_error(&format!("{dlt_path}.config"), "which table? give `table` in config (or `resource`)").hint("add `table: <table name>` under dlt.config");
    }
}

fn open(ctx: super::SourceContext) -> Result<Box<dyn super::Source>, crate::error::IngestionError> {
    Err(super::not_available(KIND.name, &ctx))
}
