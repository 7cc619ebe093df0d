//! The pipeline spec (`floe.yaml`): the ingestion entries, each naming a source and the
//! Iceberg table it feeds. Upstream sections (transforms, schedule, …) are accepted and ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::manifest::{IngestionType, OneOrMany};

/// The pipeline spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "floe pipeline spec")]
pub struct Spec {
    /// Optional upstream envelope: `floe.dev/v1`.
    #[serde(rename = "apiVersion", alias = "api_version", default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Optional upstream envelope: `FloeSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Optional upstream metadata (name, version, owner, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The ingestion entries.
    #[serde(default)]
    pub ingestion: Vec<IngestionEntry>,
    /// Upstream sections floe does not use (transforms, schedule, …).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One ingestion entry: a source feeding one Iceberg table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestionEntry {
    /// Unique, `^[a-z][a-z0-9_]*$`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: IngestionType,
    /// `<namespace>.<table>`.
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required for `type: dlt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlt: Option<DltBlock>,
    /// Required for `type: airbyte`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airbyte: Option<AirbyteBlock>,
    /// Logical credential name → secret reference, e.g. `github_token: github-api-token`.
    #[serde(default)]
    pub secret_refs: BTreeMap<String, String>,
}

/// How loaded rows meet the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteDisposition {
    /// Add the rows.
    #[default]
    Append,
    /// The table afterwards holds exactly this load (history kept as snapshots).
    Replace,
    /// Upsert by primary key: the later row wins.
    Merge,
}

impl WriteDisposition {
    pub const NAMES: [&'static str; 3] = ["append", "replace", "merge"];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteDisposition::Append => "append",
            WriteDisposition::Replace => "replace",
            WriteDisposition::Merge => "merge",
        }
    }
}

/// The embedded engine's settings for one entry (dlt's vocabulary).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DltBlock {
    /// `rest_api`, `sql_database`, `filesystem` or `github`; `dlt.sources.<name>[.<fn>]` names
    /// the same sources.
    pub source: String,
    /// Which resource of the source feeds this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_disposition: Option<WriteDisposition>,
    /// Column or columns; required for merge unless the source has a natural key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    /// The source's own settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// Incremental loading: only rows whose cursor is greater than the stored one load.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    pub cursor_column: String,
    /// The cursor's value before the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_value: Option<Value>,
    /// Re-read this many seconds behind the stored cursor, for rows committed late
    /// (timestamp cursors; merge keeps the result free of duplicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

/// An Airbyte connection to trigger.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AirbyteBlock {
    pub connection_id: String,
}
