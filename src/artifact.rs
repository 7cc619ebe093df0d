//! The compiled artifact: everything a runner needs, with every default filled in.
//!
//! `floe compile` turns a validated [`Project`] into an [`Artifact`] and writes it as JSON.
//! The output is deterministic (no clock, stable key order, paths relative to the artifact),
//! so the same inputs give byte-identical files and `floe compile --check` can tell whether
//! the file on disk is current. The artifact holds secret *references* only.
//!
//! Versioning (`version`, semver): a runner accepts any artifact with its own major version;
//! minor versions only add optional fields; a major bump means an older floe must refuse it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::manifest::{
    AirbyteApi, AirbyteAuth, AirbyteConfig, CatalogType, DltConfig, IngestionType, Lineage, Metrics, RetryPolicy, StorageType,
};
use crate::config::rules::ingestion_plugins;
use crate::config::spec::{AirbyteBlock, Incremental, WriteDisposition};
use crate::config::Project;
use crate::sources;

/// The artifact format version this floe writes.
pub const ARTIFACT_VERSION: &str = "1.0.0";
const ARTIFACT_MAJOR: &str = "1";

/// Default rows per Arrow batch.
pub const DEFAULT_BATCH_SIZE: u64 = 65_536;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[schemars(title = "floe compiled artifact")]
pub struct Artifact {
    /// Artifact format version (semver).
    pub version: String,
    pub metadata: ArtifactMetadata,
    pub plugins: ArtifactPlugins,
    pub observability: ArtifactObservability,
    pub ingestion: Vec<CompiledEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ArtifactMetadata {
    /// The floe that compiled it.
    pub floe_version: String,
    /// `sha256:` + hex SHA-256 of the spec bytes followed by the manifest bytes.
    pub source_hash: String,
    /// The manifest's folder, relative to the artifact's folder: relative paths in the
    /// manifest resolve against it.
    pub manifest_dir: String,
    /// The spec's folder, relative to the artifact's folder: relative paths in the spec
    /// (e.g. `bucket_url`) resolve against it.
    pub spec_dir: String,
    /// `metadata.name` of the manifest, if any.
    pub product_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ArtifactPlugins {
    /// The embedded engine; always present.
    pub dlt: DltPlugin,
    /// The external Airbyte plugin, when configured.
    pub airbyte: Option<AirbytePlugin>,
    pub catalog: CatalogSettings,
    /// `null` means the local filesystem.
    pub storage: Option<StorageSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DltPlugin {
    pub batch_size: u64,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AirbytePlugin {
    pub workspace_url: String,
    pub connection_secret_ref: String,
    pub api: AirbyteApi,
    pub auth: AirbyteAuth,
    pub poll_interval_seconds: f64,
    pub timeout_seconds: f64,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CatalogSettings {
    #[serde(rename = "type")]
    pub kind: CatalogType,
    pub name: String,
    /// sql: an SQLite path or `sqlite:///abs` URI (relative: to the manifest); rest: the URL.
    pub uri: String,
    /// sql: a folder (relative: to the manifest) or `file://` URL; rest: the warehouse name.
    pub warehouse: String,
    pub credential_secret_ref: Option<String>,
    pub token_secret_ref: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct StorageSettings {
    #[serde(rename = "type")]
    pub kind: StorageType,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style_access: bool,
    pub connection_secret_ref: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ArtifactObservability {
    pub lineage: Option<Lineage>,
    pub metrics: Option<Metrics>,
}

/// One ingestion entry, resolved.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CompiledEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: IngestionType,
    /// `namespace.table`.
    pub destination: String,
    pub namespace: String,
    pub table: String,
    pub description: Option<String>,
    pub write_disposition: WriteDisposition,
    /// Empty unless merging (or declared).
    pub primary_key: Vec<String>,
    pub incremental: Option<Incremental>,
    /// `type: dlt` only.
    pub source: Option<CompiledSource>,
    /// `type: airbyte` only.
    pub airbyte: Option<AirbyteBlock>,
    /// Logical name → secret reference. Never values.
    pub secret_refs: BTreeMap<String, String>,
    /// The retry policy of the entry's plugin.
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CompiledSource {
    /// The registry name (`github`), whatever alias the spec used.
    pub name: String,
    /// `dlt.source` as written.
    pub spec: String,
    pub resource: Option<String>,
    /// The source's settings as written (secret placeholders kept).
    pub config: Value,
}

/// Turn a validated project into an artifact that will live in `artifact_dir`.
pub fn compile(project: &Project, artifact_dir: &Path) -> Artifact {
    let m = &project.manifest;
    let plugins = ingestion_plugins(m);
    let plugin = |kind: IngestionType| plugins.iter().map(|(_, p)| *p).find(|p| p.kind == kind);

    let dlt = plugin(IngestionType::Dlt);
    let dlt_config: DltConfig = dlt.and_then(|p| p.config.clone()).and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
    let dlt = DltPlugin {
        batch_size: dlt_config.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        retry: dlt.and_then(|p| p.retry.clone()).unwrap_or_default(),
    };
    let airbyte = plugin(IngestionType::Airbyte).and_then(|p| {
        let cfg: AirbyteConfig = serde_json::from_value(p.config.clone()?).ok()?;
        Some(AirbytePlugin {
            workspace_url: cfg.workspace_url.trim_end_matches('/').to_string(),
            connection_secret_ref: cfg.connection_secret_ref.or_else(|| p.connection_secret_ref.clone())?,
            api: cfg.api,
            auth: cfg.auth,
            poll_interval_seconds: cfg.poll_interval_seconds.unwrap_or(5.0),
            timeout_seconds: cfg.timeout_seconds.unwrap_or(86_400.0),
            retry: p.retry.clone().unwrap_or_default(),
        })
    });
    let catalog = match &m.plugins.catalog {
        None => CatalogSettings {
            kind: CatalogType::Sql,
            name: "floe".into(),
            uri: ".floe/catalog.db".into(),
            warehouse: ".floe/warehouse".into(),
            credential_secret_ref: None,
            token_secret_ref: None,
        },
        Some(c) => CatalogSettings {
            kind: c.kind,
            name: c.config.name.clone().unwrap_or_else(|| "floe".into()),
            uri: c.config.uri.clone().unwrap_or_else(|| ".floe/catalog.db".into()),
            warehouse: c.config.warehouse.clone().unwrap_or_else(|| ".floe/warehouse".into()),
            credential_secret_ref: c.config.credential_secret_ref.clone().or_else(|| c.connection_secret_ref.clone().filter(|_| c.config.token_secret_ref.is_none())),
            token_secret_ref: c.config.token_secret_ref.clone(),
        },
    };
    let storage = m.plugins.storage.as_ref().map(|s| StorageSettings {
        kind: s.kind,
        endpoint: s.config.endpoint.clone(),
        region: s.config.region.clone(),
        path_style_access: s.config.path_style_access,
        connection_secret_ref: s.connection_secret_ref.clone(),
    });
    let observability = ArtifactObservability {
        lineage: m.observability.as_ref().and_then(|o| o.lineage.clone()),
        metrics: m.observability.as_ref().and_then(|o| o.metrics.clone()),
    };

    let ingestion = project
        .spec
        .ingestion
        .iter()
        .map(|e| {
            let (namespace, table) = e.destination.split_once('.').unwrap_or(("", &e.destination));
            let source = e.dlt.as_ref().map(|d| CompiledSource {
                name: sources::resolve(&d.source).map_or_else(|| d.source.clone(), |k| k.name.to_string()),
                spec: d.source.clone(),
                resource: d.resource.clone(),
                config: d.config.clone().unwrap_or(Value::Object(Default::default())),
            });
            let primary_key = e
                .dlt
                .as_ref()
                .map(|d| match &d.primary_key {
                    Some(k) => k.as_slice().to_vec(),
                    None => {
                        let kind = sources::resolve(&d.source);
                        let declared = kind.and_then(|k| d.config.as_ref().and_then(|c| (k.resource_key)(c, d.resource.as_deref())));
                        declared.or_else(|| kind.and_then(|k| k.natural_key).map(|n| n.iter().map(|s| s.to_string()).collect())).unwrap_or_default()
                    }
                })
                .unwrap_or_default();
            let retry = match e.kind {
                IngestionType::Dlt => dlt.retry.clone(),
                IngestionType::Airbyte => airbyte.as_ref().map(|a| a.retry.clone()).unwrap_or_default(),
            };
            CompiledEntry {
                name: e.name.clone(),
                kind: e.kind,
                destination: e.destination.clone(),
                namespace: namespace.to_string(),
                table: table.to_string(),
                description: e.description.clone(),
                write_disposition: e.dlt.as_ref().and_then(|d| d.write_disposition).unwrap_or_default(),
                primary_key,
                incremental: e.dlt.as_ref().and_then(|d| d.incremental.clone()),
                source,
                airbyte: e.airbyte.clone(),
                secret_refs: e.secret_refs.clone(),
                retry,
            }
        })
        .collect();

    let mut hasher = Sha256::new();
    hasher.update(&project.spec_bytes);
    hasher.update(&project.manifest_bytes);
    Artifact {
        version: ARTIFACT_VERSION.to_string(),
        metadata: ArtifactMetadata {
            floe_version: env!("CARGO_PKG_VERSION").to_string(),
            source_hash: format!("sha256:{}", hex::encode(hasher.finalize())),
            manifest_dir: relative_dir(artifact_dir, parent_of(&project.manifest_path)),
            spec_dir: relative_dir(artifact_dir, parent_of(&project.spec_path)),
            product_name: m.metadata.as_ref().map(|md| md.name.clone()),
        },
        plugins: ArtifactPlugins { dlt, airbyte, catalog, storage },
        observability,
        ingestion,
    }
}

impl Artifact {
    /// The artifact as written to disk: pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parse an artifact, refusing other major versions.
    pub fn from_json(text: &str) -> Result<Artifact, ArtifactError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ArtifactError::Parse { line: e.line(), column: e.column(), message: e.to_string() })?;
        let version = value.get("version").and_then(Value::as_str).unwrap_or("");
        if version.split('.').next() != Some(ARTIFACT_MAJOR) {
            return Err(ArtifactError::Version { found: version.to_string() });
        }
        serde_path_to_error(value)
    }

    pub fn entry(&self, name: &str) -> Option<&CompiledEntry> {
        self.ingestion.iter().find(|e| e.name == name)
    }
}

fn serde_path_to_error(value: Value) -> Result<Artifact, ArtifactError> {
    serde_json::from_value(value).map_err(|e| ArtifactError::Shape { message: e.to_string() })
}

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("line {line}, column {column}: not valid JSON: {message}")]
    Parse { line: usize, column: usize, message: String },
    #[error("artifact version \"{found}\" is not supported by this floe (it reads {ARTIFACT_MAJOR}.x); recompile with `floe compile`")]
    Version { found: String },
    #[error("not a floe artifact: {message}; recompile with `floe compile`")]
    Shape { message: String },
}

fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `target` expressed relative to `from` (both folders), using `/` so artifacts are portable.
pub fn relative_dir(from: &Path, target: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).map(|a| normalize(&a)).unwrap_or_else(|_| p.to_path_buf());
    let (from, target) = (abs(from), abs(target));
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), f.len() - common).collect();
    parts.extend(t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

/// Remove `.` and fold `..` without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dirs() {
        assert_eq!(relative_dir(Path::new("/a/b/target"), Path::new("/a/b")), "..");
        assert_eq!(relative_dir(Path::new("/a/b"), Path::new("/a/b")), ".");
        assert_eq!(relative_dir(Path::new("/a/x"), Path::new("/a/b/c")), "../b/c");
    }

    #[test]
    fn refuses_other_major_versions() {
        assert!(matches!(Artifact::from_json(r#"{"version": "2.0.0"}"#), Err(ArtifactError::Version { .. })));
        assert!(matches!(Artifact::from_json("{"), Err(ArtifactError::Parse { .. })));
    }
}
