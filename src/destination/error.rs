//! The destination's error type, and how catalog and storage failures are classified.
//!
//! iceberg-rust reports most failures as `ErrorKind::Unexpected` with the real cause in the
//! message or the source chain (HTTP status, opendal error kind, sqlx error), so the class of
//! a failure is read from the whole chain. Every message is passed through [`Redactor`]
//! before it is stored, and no foreign error is kept as a source: secrets cannot leak through
//! `Display` or `Debug`.

use std::fmt;

/// The error type a batch stream yields; passed through untouched in [`DestinationError::Source`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of catalog or storage failure happened, for retry and reporting decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Another writer committed first, and the bounded re-commits ran out.
    Conflict,
    /// The service could not be reached or was temporarily unable to answer (network, timeout,
    /// 429/502/503/504, SQLite busy).
    Unavailable,
    /// Credentials are missing, wrong or insufficient.
    Auth,
    /// The table or namespace does not exist.
    NotFound,
    /// The catalog failed while committing and cannot say whether the commit landed.
    CommitStateUnknown,
    /// Anything else.
    Other,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Conflict => "commit conflict",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Auth => "authentication/authorization",
            FailureKind::NotFound => "not found",
            FailureKind::CommitStateUnknown => "commit state unknown",
            FailureKind::Other => "error",
        })
    }
}

/// Everything that can go wrong in the destination.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// The catalog or storage configuration is unusable.
    #[error("invalid destination configuration: {0}")]
    Config(String),
    /// The table name is not `namespace.table`.
    #[error("invalid table name {0:?}: expected `namespace.table`, each part a letter or `_` followed by letters, digits or `_`")]
    InvalidTable(String),
    /// The catalog refused or failed an operation.
    #[error("catalog {kind} during {operation} of `{table}`: {message}")]
    Catalog { table: String, operation: &'static str, kind: FailureKind, message: String },
    /// Reading or writing data or metadata files failed.
    #[error("storage {kind} during {operation} of `{table}`: {message}")]
    Io { table: String, operation: &'static str, kind: FailureKind, message: String },
    /// The data cannot be stored in the table's schema (or the schema cannot evolve to hold it).
    #[error("schema error for `{table}`: {message}")]
    Schema { table: String, message: String },
    /// The table uses a feature this destination does not write (partitioning, delete files).
    #[error("unsupported table `{table}`: {message}")]
    Unsupported { table: String, message: String },
    /// The batch stream failed; the error is the stream's own, untouched.
    #[error(transparent)]
    Source(BoxError),
}

impl DestinationError {
    /// True when running the same load again later may succeed (conflicts that outlasted the
    /// re-commits, unreachable services). Source errors are the caller's to classify.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DestinationError::Catalog { kind: FailureKind::Conflict | FailureKind::Unavailable, .. }
                | DestinationError::Io { kind: FailureKind::Conflict | FailureKind::Unavailable, .. }
        )
    }

    /// True when the failure is about credentials or permissions.
    pub fn is_auth(&self) -> bool {
        matches!(self, DestinationError::Catalog { kind: FailureKind::Auth, .. } | DestinationError::Io { kind: FailureKind::Auth, .. })
    }

    /// The failure kind of a catalog or storage error.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            DestinationError::Catalog { kind, .. } | DestinationError::Io { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Removes known secret values from messages.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |acc, s| acc.replace(s.as_str(), "***"))
    }
}

/// Builds typed errors for one table, redacting every message.
#[derive(Clone, Debug)]
pub(crate) struct ErrorContext {
    pub(crate) table: String,
    redactor: Redactor,
}

impl ErrorContext {
    pub(crate) fn new(table: &str, redactor: &Redactor) -> Self {
        ErrorContext { table: table.to_string(), redactor: redactor.clone() }
    }

    /// A catalog error from an iceberg error, classified.
    pub(crate) fn catalog(&self, operation: &'static str, err: &iceberg::Error) -> DestinationError {
        let message = self.redactor.redact(&error_chain(err));
        DestinationError::Catalog { table: self.table.clone(), operation, kind: classify(err, &message), message }
    }

    /// A catalog error whose kind is already known.
    pub(crate) fn catalog_kind(&self, operation: &'static str, kind: FailureKind, message: String) -> DestinationError {
        DestinationError::Catalog { table: self.table.clone(), operation, kind, message: self.redactor.redact(&message) }
    }

    /// A storage error from an iceberg error, classified.
    pub(crate) fn io(&self, operation: &'static str, err: &iceberg::Error) -> DestinationError {
        let message = self.redactor.redact(&error_chain(err));
        DestinationError::Io { table: self.table.clone(), operation, kind: classify(err, &message), message }
    }

    pub(crate) fn schema(&self, message: impl Into<String>) -> DestinationError {
        DestinationError::Schema { table: self.table.clone(), message: self.redactor.redact(&message.into()) }
    }

    pub(crate) fn unsupported(&self, message: impl Into<String>) -> DestinationError {
        DestinationError::Unsupported { table: self.table.clone(), message: message.into() }
    }
}

/// The error and its whole source chain on one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Classifies an iceberg error by its kind, retryability and the text of its chain.
pub(crate) fn classify(err: &iceberg::Error, chain: &str) -> FailureKind {
    match err.kind() {
        iceberg::ErrorKind::CatalogCommitConflicts => return FailureKind::Conflict,
        iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound => return FailureKind::NotFound,
        _ => {}
    }
    let kind = classify_text(chain);
    if kind == FailureKind::Other && err.retryable() { FailureKind::Unavailable } else { kind }
}

const AUTH_MARKERS: &[&str] = &[
    "401 unauthorized",
    "403 forbidden",
    "unauthorized",
    "forbidden",
    "access denied",
    "accessdenied",
    "signaturedoesnotmatch",
    "invalidaccesskeyid",
    "expiredtoken",
    "invalid_client",
    "not authorized",
    "bearer token is invalid",
    "permissiondenied",
];

const UNAVAILABLE_MARKERS: &[&str] = &[
    "error sending request",
    "connection refused",
    "connection reset",
    "connect error",
    "tcp connect",
    "dns error",
    "timed out",
    "timeout",
    "broken pipe",
    "(temporary)",
    "temporarily",
    "ratelimited",
    "too many requests",
    "service unavailable",
    "bad gateway",
    "gateway timeout",
    "database is locked",
    "database table is locked",
];

/// Classifies by message text (lower-cased), auth first: a 403 is never worth retrying.
pub(crate) fn classify_text(chain: &str) -> FailureKind {
    let text = chain.to_ascii_lowercase();
    if text.contains("commit state is unknown") {
        FailureKind::CommitStateUnknown
    } else if AUTH_MARKERS.iter().any(|m| text.contains(m)) {
        FailureKind::Auth
    } else if UNAVAILABLE_MARKERS.iter().any(|m| text.contains(m)) {
        FailureKind::Unavailable
    } else {
        FailureKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_failures() {
        assert_eq!(classify_text("Unexpected, context: { status: 401 Unauthorized }"), FailureKind::Auth);
        assert_eq!(classify_text("PermissionDenied (persistent) at write"), FailureKind::Auth);
        assert_eq!(classify_text("error sending request for url: tcp connect error"), FailureKind::Unavailable);
        assert_eq!(classify_text("sqlx: database is locked"), FailureKind::Unavailable);
        assert_eq!(classify_text("the commit state is unknown"), FailureKind::CommitStateUnknown);
        assert_eq!(classify_text("attempt to write a readonly database"), FailureKind::Other);
    }

    #[test]
    fn redacts_every_secret() {
        let r = Redactor::new(["abc".to_string(), "abcdef".to_string(), String::new()]);
        assert_eq!(r.redact("key=abcdef other=abc"), "key=*** other=***");
    }

    #[test]
    fn transient_and_auth() {
        let conflict =
            DestinationError::Catalog { table: "ns.t".into(), operation: "commit", kind: FailureKind::Conflict, message: String::new() };
        assert!(conflict.is_transient());
        assert!(!conflict.is_auth());
        let auth = DestinationError::Io { table: "ns.t".into(), operation: "write", kind: FailureKind::Auth, message: String::new() };
        assert!(auth.is_auth());
        assert!(!auth.is_transient());
    }
}
