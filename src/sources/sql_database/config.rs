//! Settings of the `sql_database` source (dlt's `sql_database` vocabulary).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `dlt.config` of a `sql_database` entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlDatabaseConfig {
    /// `postgresql://…`, `mysql://…` or `sqlite://…`; normally `${secrets.NAME}`.
    pub credentials: String,
    /// Schema (PostgreSQL) or database (MySQL) holding the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The table to read (defaults to `dlt.resource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Rows per chunk read from the server. Default 50000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// Column → `string`: load a column of an unsupported type as its text form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub type_overrides: BTreeMap<String, String>,
}
