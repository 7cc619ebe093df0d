//! The `filesystem` source: CSV, JSON lines and Parquet files from a local folder or an
//! `s3://` prefix, each file loaded once.

pub mod config;

use serde_json::Value;

use super::SourceKind;
use crate::config::diagnostics::FileDiagnostics;
use crate::config::schema_check::check;

pub static KIND: SourceKind = SourceKind {
    name: "filesystem",
    natural_key: None,
    check_config,
    missing_config: |p, d| super::missing_config_keys("bucket_url", "{bucket_url: data/, file_glob: \"*.jsonl\"}", p, d),
    check_resource: super::any_resource,
    resource_key: super::no_resource_key,
};

fn check_config(v: &Value, p: &str, d: &mut FileDiagnostics<'_>) -> bool {
    if !check::<config::FilesystemConfig>(v, p, d) {
        return false;
    }
    if let Some(delim) = v.get("delimiter").and_then(Value::as_str) {
        if delim.chars().count() != 1 {
            d.error(&format!("{p}.delimiter"), format!("delimiter \"{delim}\" must be one character"));
            return false;
        }
    }
    true
}
