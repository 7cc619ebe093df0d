//! Settings of the `filesystem` source (dlt's `filesystem` vocabulary).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// File formats the filesystem source decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    /// JSON lines (one object per line); `json` and `ndjson` are accepted too.
    #[serde(alias = "json", alias = "ndjson")]
    Jsonl,
    Parquet,
}

/// `dlt.config` of a `filesystem` entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesystemConfig {
    /// A local folder (absolute, `file://`, or relative to the manifest) or `s3://bucket/prefix`.
    pub bucket_url: String,
    /// Which files to load, relative to `bucket_url`; `**` crosses folders. Default `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_glob: Option<String>,
    /// Guessed from each file's extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FileFormat>,
    /// CSV field delimiter (one character). Default `,`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Whether CSV files start with a header row. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_header: Option<bool>,
}
