//! Settings of the `github` source: a preset over `rest_api`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Resources the github source offers.
pub const RESOURCES: &[&str] = &["issues", "pull_requests", "commits", "releases"];

/// `dlt.config` of a `github` entry. The token comes from `access_token` or from the entry's
/// `secret_refs.github_token`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// API base URL; set it for GitHub Enterprise. Default `https://api.github.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Usually `${secrets.github_token}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Items per page (1–100). Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
}
