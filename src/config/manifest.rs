//! The platform manifest (`manifest.yaml`): which ingestion plugins, catalog, storage and
//! observability a platform offers. Typed exactly as CONTRACT.md gives it; the upstream floe
//! envelope and the upstream sections floe does not use are accepted and ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Category;

/// Top-level sections of upstream floe manifests that floe accepts and ignores.
pub const UPSTREAM_SECTIONS: &[&str] = &[
    "scope",
    "parent_manifest",
    "governance",
    "approved_plugins",
    "approved_sinks",
    "approved_products",
    "defaults",
    "artifacts",
    "resource_presets",
    "compute",
    "orchestrator",
];

/// The platform manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "floe platform manifest")]
pub struct Manifest {
    /// Optional upstream envelope: `floe.dev/v1`.
    #[serde(rename = "apiVersion", alias = "api_version", default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Optional upstream envelope: `Manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Optional upstream envelope: name, version, owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ManifestMetadata>,
    /// The plugins this platform offers.
    #[serde(default)]
    pub plugins: Plugins,
    /// Lineage and metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Observability>,
    /// Upstream sections floe does not use (compute, orchestrator, governance, …).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The upstream envelope's metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestMetadata {
    /// 1–63 characters, lower-case letters, digits and `-`.
    pub name: String,
    /// Semantic version, e.g. `1.0.0` (quote it: YAML reads `1.0` as a number).
    pub version: String,
    /// Who owns the platform.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `plugins:`: floe uses `ingestion`, `catalog` and `storage`; the other upstream plugin slots are
/// accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plugins {
    /// One ingestion plugin block, or a list of blocks (one per type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion: Option<OneOrMany<IngestionPlugin>>,
    /// The Iceberg catalog; absent means the embedded SQLite default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogPlugin>,
    /// Object storage for the warehouse; absent means the local filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StoragePlugin>,
    // Upstream plugin slots floe does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_layer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_backend: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage_backend: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Value>,
}

/// A single value or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }
}

/// Which engine runs an ingestion entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IngestionType {
    /// floe's embedded engine (dlt's vocabulary, no Python).
    Dlt,
    /// An external Airbyte deployment, triggered through its API.
    Airbyte,
}

impl IngestionType {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestionType::Dlt => "dlt",
            IngestionType::Airbyte => "airbyte",
        }
    }
}

/// One ingestion plugin block. `config` is checked against the plugin type's own settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestionPlugin {
    #[serde(rename = "type")]
    pub kind: IngestionType,
    /// Upstream plugin version pin (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The plugin's settings: see [`AirbyteConfig`] and [`DltConfig`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// Upstream place for the plugin's credentials; `config.connection_secret_ref` also works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret_ref: Option<String>,
    /// How failed entries are retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// Settings of the embedded engine (`type: dlt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DltConfig {
    /// Rows per Arrow batch handed to the writer (default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
}

/// Which Airbyte API floe talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum AirbyteApi {
    /// The public API (`/v1/jobs`).
    #[default]
    Public,
    /// The config API the ADR names (`/api/v1/connections/sync`).
    Config,
}

/// How floe authenticates to Airbyte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum AirbyteAuth {
    /// The secret holds a bearer token.
    #[default]
    Token,
    /// The secret holds `CLIENT_ID:CLIENT_SECRET`; floe fetches and refreshes tokens.
    ClientCredentials,
}

/// Settings of the external Airbyte plugin (`type: airbyte`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AirbyteConfig {
    /// Base URL of the Airbyte deployment, e.g. `https://airbyte.example.com`.
    pub workspace_url: String,
    /// Secret holding the API token (or `CLIENT_ID:CLIENT_SECRET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret_ref: Option<String>,
    #[serde(default)]
    pub api: AirbyteApi,
    #[serde(default)]
    pub auth: AirbyteAuth,
    /// Seconds between job status polls (fractions allowed). Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_seconds: Option<f64>,
    /// Give up (and cancel the job) after this many seconds. Default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// The retry policy of ADR-0020.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1–100). Default 3.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry, seconds. Default 60.
    #[serde(default = "defaults::initial_delay")]
    pub initial_delay_seconds: f64,
    /// Longest delay between attempts, seconds. Default 3600.
    #[serde(default = "defaults::max_delay")]
    pub max_delay_seconds: f64,
    /// Growth of the delay per attempt (1–10). Default 2.0.
    #[serde(default = "defaults::multiplier")]
    pub backoff_multiplier: f64,
    /// Categories worth retrying. Default `[TRANSIENT]`.
    #[serde(default = "defaults::retryable")]
    pub retryable_categories: Vec<Category>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: defaults::max_attempts(),
            initial_delay_seconds: defaults::initial_delay(),
            max_delay_seconds: defaults::max_delay(),
            backoff_multiplier: defaults::multiplier(),
            retryable_categories: defaults::retryable(),
        }
    }
}

mod defaults {
    use crate::error::Category;
    pub fn max_attempts() -> u32 {
        3
    }
    pub fn initial_delay() -> f64 {
        60.0
    }
    pub fn max_delay() -> f64 {
        3600.0
    }
    pub fn multiplier() -> f64 {
        2.0
    }
    pub fn retryable() -> Vec<Category> {
        vec![Category::Transient]
    }
}

/// Catalog types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatalogType {
    /// SQL catalog on SQLite (the embedded default).
    Sql,
    /// An Iceberg REST catalog.
    Rest,
}

/// `plugins.catalog`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogPlugin {
    #[serde(rename = "type")]
    pub kind: CatalogType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub config: CatalogConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret_ref: Option<String>,
}

/// Catalog settings. `sql`: `name`, `uri` (`sqlite:///abs/path/catalog.db` or a path relative to
/// the manifest), `warehouse`. `rest`: `name`, `uri`, `warehouse`, and either
/// `credential_secret_ref` (OAuth2 client credentials `ID:SECRET`) or `token_secret_ref`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_secret_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<String>,
}

/// Storage types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// Any S3-compatible object store.
    S3,
}

/// `plugins.storage`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoragePlugin {
    #[serde(rename = "type")]
    pub kind: StorageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub config: StorageConfig,
    /// Secret holding `ACCESS_KEY:SECRET_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret_ref: Option<String>,
}

/// S3 settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// e.g. `http://127.0.0.1:8333`; absent means AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub path_style_access: bool,
}

/// `observability:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    // Upstream observability blocks floe does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Value>,
}

/// How lineage events leave floe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LineageTransport {
    Http,
    File,
    Console,
    /// Upstream's name for "off".
    Noop,
}

/// OpenLineage settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    pub transport: LineageTransport,
    /// `http`: base URL; events go to `<endpoint>/api/v1/lineage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `file`: where events are appended, one JSON line each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Job namespace. Default `floe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Secret holding a bearer API key for `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// Prometheus metrics delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Pushgateway base URL; one PUT at the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<String>,
    /// node_exporter textfile, written atomically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textfile: Option<String>,
}
