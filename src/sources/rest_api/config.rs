//! Settings of the `rest_api` source: dlt's declarative REST API config.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::manifest::OneOrMany;

/// `dlt.config` of a `rest_api` entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestApiConfig {
    pub client: ClientConfig,
    /// Settings shared by every resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_defaults: Option<Value>,
    pub resources: Vec<ResourceEntry>,
}

/// A resource: its name alone (the name is also the path, as in dlt), or its settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum ResourceEntry {
    Name(String),
    Config(Box<ResourceConfig>),
}

impl ResourceEntry {
    /// The resource's name.
    pub fn name(&self) -> &str {
        match self {
            ResourceEntry::Name(n) => n,
            ResourceEntry::Config(c) => &c.name,
        }
    }
}

/// The HTTP client shared by every resource.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub base_url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginator: Option<PaginatorSpec>,
    /// Per-request timeout, seconds. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Attempts per request before a retryable failure (429, 5xx, timeout, connection
    /// error) is given up on. Default 5 (dlt's `request_max_attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_max_attempts: Option<u32>,
    /// First retry delay in seconds, doubled each attempt. Default 1 (dlt's
    /// `request_backoff_factor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_backoff_factor: Option<f64>,
    /// The longest wait floe sleeps through before retrying, seconds; a longer `Retry-After`
    /// ends the entry TRANSIENT with `retry_after_seconds` instead. Default 300 (dlt's
    /// `request_max_retry_delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_max_retry_delay: Option<f64>,
    /// Pages fetched at once when a paginator knows the total. Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_requests: Option<u32>,
}

/// Authentication, tagged by `type`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    Bearer { token: String },
    ApiKey {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        api_key: String,
        /// `header` (default) or `query`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<ApiKeyLocation>,
    },
    HttpBasic { username: String, password: String },
    Oauth2ClientCredentials {
        access_token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scopes: Option<OneOrMany<String>>,
        /// Extra form fields sent to the token endpoint (e.g. `audience`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        access_token_request_data: BTreeMap<String, String>,
        /// Token lifetime in seconds when the token response has no `expires_in`. Default 3600.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default_token_expiration: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyLocation {
    Header,
    Query,
}

/// A paginator: its type name alone, or `{type: …, …params}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum PaginatorSpec {
    Name(PaginatorType),
    Config(PaginatorConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaginatorType {
    JsonLink,
    HeaderLink,
    Offset,
    PageNumber,
    Cursor,
    SinglePage,
    Auto,
}

/// Paginator parameters, dlt's names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaginatorConfig {
    #[serde(rename = "type")]
    pub kind: PaginatorType,
    /// json_link: where the next URL is in the body (e.g. `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_url_path: Option<String>,
    /// header_link: the Link relation. Default `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_next_key: Option<String>,
    /// offset: page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_param: Option<String>,
    /// offset / page_number: where the total is in the body (e.g. `total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_page: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_page: Option<u64>,
    /// cursor: where the next cursor is in the body, and the query parameter carrying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    /// offset / page_number / cursor: where a "more pages follow" boolean is in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more_path: Option<String>,
    /// offset / page_number / cursor: stop at the first page without records. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_empty_page: Option<bool>,
}

/// One resource: an endpoint whose records feed the table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    pub name: String,
    /// A path, or the full endpoint settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<OneOrMany<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_disposition: Option<String>,
    /// Parent fields copied into each child record as `_<parent>_<field>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_from_parent: Vec<String>,
    /// dlt's table name hint (the destination comes from the entry; accepted for
    /// compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
}

/// A path, or `{path, params, data_selector, paginator, …}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum EndpointSpec {
    Path(String),
    Config(EndpointConfig),
}

/// Endpoint settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `GET` (default) or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Query parameters; `{incremental.start_value}` is the stored cursor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
    /// JSON body for POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Headers of this endpoint only (added to the client's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSONPath to the list of records (e.g. `data`, `$.results[*]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paginator: Option<PaginatorSpec>,
    /// dlt's incremental settings on the endpoint (the entry's `incremental` is preferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Value>,
}
