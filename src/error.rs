//! The error taxonomy of ADR-0020 and the one place where outcomes become exit codes.
//!
//! Every failure an ingestion entry can end in is an [`IngestionError`]: a [`Category`] that
//! decides retry and exit code, a stable machine `code` (`RATE_LIMITED`, `AUTH_FAILED`, …),
//! and a human message. The run report serialises it as CONTRACT.md shows.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The four categories of ADR-0020.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// Temporary: rate limit, timeout, 5xx, unreachable host. Safe to retry.
    Transient,
    /// Retrying will not help: bad credentials, source gone, schema corrupt.
    Permanent,
    /// Some records were rejected; the rest loaded.
    Partial,
    /// Invalid manifest, spec or artifact; unknown source; missing secret.
    Configuration,
}

impl Category {
    pub const ALL: [Category; 4] = [Category::Transient, Category::Permanent, Category::Partial, Category::Configuration];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Transient => "TRANSIENT",
            Category::Permanent => "PERMANENT",
            Category::Partial => "PARTIAL",
            Category::Configuration => "CONFIGURATION",
        }
    }

    /// The process exit code of a run whose worst outcome is this category.
    pub fn exit_code(self) -> u8 {
        match self {
            Category::Partial => exit::PARTIAL,
            Category::Permanent => exit::PERMANENT,
            Category::Transient => exit::TRANSIENT,
            Category::Configuration => exit::CONFIGURATION,
        }
    }

    /// Rank for "the first of 78, 69, 65, 75 that occurred" (lower wins).
    fn precedence(self) -> u8 {
        match self {
            Category::Configuration => 0,
            Category::Permanent => 1,
            Category::Partial => 2,
            Category::Transient => 3,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exit codes of CONTRACT.md. Nothing else in floe picks a process exit code.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const STALE_ARTIFACT: u8 = 3;
    pub const PARTIAL: u8 = 65;
    pub const PERMANENT: u8 = 69;
    pub const TRANSIENT: u8 = 75;
    pub const CONFIGURATION: u8 = 78;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
}

/// The exit code of a run given the categories its entries failed with, in any order:
/// 0 when none failed, else the first of 78, 69, 65, 75 present.
pub fn exit_code_for(failures: impl IntoIterator<Item = Category>) -> u8 {
    failures
        .into_iter()
        .min_by_key(|c| c.precedence())
        .map_or(exit::SUCCESS, Category::exit_code)
}

/// Stable error codes. The ADR's mapping tables name most of them; floe adds a few.
pub mod code {
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const AUTH_FAILED: &str = "AUTH_FAILED";
    pub const SOURCE_NOT_FOUND: &str = "SOURCE_NOT_FOUND";
    pub const DESTINATION_CONFIG_ERROR: &str = "DESTINATION_CONFIG_ERROR";
    pub const SCHEMA_CORRUPTION: &str = "SCHEMA_CORRUPTION";
    pub const PARTIAL_LOAD: &str = "PARTIAL_LOAD";
    pub const PARTIAL_SYNC: &str = "PARTIAL_SYNC";
    pub const SYNC_CANCELLED: &str = "SYNC_CANCELLED";
    pub const TIMEOUT: &str = "TIMEOUT";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const INVALID_CONFIG: &str = "INVALID_CONFIG";
    pub const UNKNOWN_SOURCE: &str = "UNKNOWN_SOURCE";
    pub const SECRET_NOT_FOUND: &str = "SECRET_NOT_FOUND";
    pub const SOURCE_ERROR: &str = "SOURCE_ERROR";
    pub const DESTINATION_ERROR: &str = "DESTINATION_ERROR";
    pub const COMMIT_CONFLICT: &str = "COMMIT_CONFLICT";
    pub const INTERRUPTED: &str = "INTERRUPTED";
    /// An https server whose certificate does not verify (self-signed, expired, wrong host).
    pub const TLS_CERTIFICATE: &str = "TLS_CERTIFICATE";
}

/// A structured ingestion failure (ADR-0020 `IngestionError`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestionError {
    pub category: Category,
    pub code: String,
    pub message: String,
    /// The system that failed: a source name (`github`, `filesystem`), `airbyte`, `iceberg`.
    pub source: String,
    pub retryable: bool,
    pub retry_after_seconds: Option<u64>,
    pub failed_records: Option<u64>,
    pub details: BTreeMap<String, serde_json::Value>,
}

impl fmt::Display for IngestionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.category, self.code, self.message)
    }
}

impl std::error::Error for IngestionError {}

impl IngestionError {
    /// A new error; `retryable` defaults to whether the category is TRANSIENT.
    pub fn new(category: Category, code: &str, source: &str, message: impl Into<String>) -> Self {
        IngestionError {
            category,
            code: code.to_string(),
            message: message.into(),
            source: source.to_string(),
            retryable: category == Category::Transient,
            retry_after_seconds: None,
            failed_records: None,
            details: BTreeMap::new(),
        }
    }

    pub fn transient(code: &str, source: &str, message: impl Into<String>) -> Self {
        Self::new(Category::Transient, code, source, message)
    }

    pub fn permanent(code: &str, source: &str, message: impl Into<String>) -> Self {
        Self::new(Category::Permanent, code, source, message)
    }

    pub fn configuration(code: &str, source: &str, message: impl Into<String>) -> Self {
        Self::new(Category::Configuration, code, source, message)
    }

    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after_seconds = seconds;
        self
    }

    pub fn with_failed_records(mut self, n: u64) -> Self {
        self.failed_records = Some(n);
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_78_69_65_75() {
        use Category::*;
        assert_eq!(exit_code_for([]), 0);
        assert_eq!(exit_code_for([Transient]), 75);
        assert_eq!(exit_code_for([Transient, Partial]), 65);
        assert_eq!(exit_code_for([Partial, Permanent, Transient]), 69);
        assert_eq!(exit_code_for([Transient, Configuration, Permanent]), 78);
    }

    #[test]
    fn serialises_as_the_contract_shows() {
        let e = IngestionError::transient(code::RATE_LIMITED, "airbyte", "slow down").with_retry_after(Some(60));
        let v = serde_json::to_value(&e).expect("serialise");
        assert_eq!(v["category"], "TRANSIENT");
        assert_eq!(v["retryable"], true);
        assert_eq!(v["retry_after_seconds"], 60);
        assert!(v["failed_records"].is_null());
        assert_eq!(v["details"], serde_json::json!({}));
    }
}
