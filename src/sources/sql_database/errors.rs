//! From database failures to floe's error taxonomy, and the one place that words them.
//!
//! Every message names the entry, the table and the server (`host:port/database`, never the
//! user's password) and passes through the redactor: the credentials URL is a secret, and
//! drivers sometimes echo parts of it.

use std::io::ErrorKind;

use crate::error::{code, Category, IngestionError};
use crate::secrets::{redact_url_passwords, Redactor};

const SOURCE: &str = "sql_database";

/// Which database an error came from (SQLSTATEs and error numbers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Postgres,
    MySql,
    Sqlite,
}

/// What is being read, for messages.
#[derive(Debug, Clone)]
pub struct Origin {
    pub entry: String,
    /// The table as the user would write it (`public.orders`).
    pub table: String,
    /// `host:port/database` or the SQLite file; no credentials.
    pub server: String,
    pub db: Db,
    pub redactor: Redactor,
}

impl Origin {
    fn message(&self, text: &str) -> String {
        let text = format!("entry {}: table {} on {}: {text}", self.entry, self.table, self.server);
        self.redactor.redact(&redact_url_passwords(&text))
    }

    fn error(&self, category: Category, code: &str, text: &str) -> IngestionError {
        IngestionError::new(category, code, SOURCE, self.message(text))
            .with_detail("table", self.table.clone())
            .with_detail("server", self.redactor.redact(&redact_url_passwords(&self.server)))
    }

    /// A problem with the entry's settings (unsupported column type, bad override, …).
    pub fn config(&self, text: &str) -> IngestionError {
        self.error(Category::Configuration, code::INVALID_CONFIG, text)
    }

    /// The table (or its schema or database) does not exist.
    pub fn not_found(&self, text: &str) -> IngestionError {
        self.error(Category::Permanent, code::SOURCE_NOT_FOUND, text)
    }

    /// A value floe cannot represent in the column's Arrow type.
    pub fn data(&self, text: &str) -> IngestionError {
        self.error(Category::Permanent, code::SOURCE_ERROR, text)
    }

    /// The server could not be reached in time.
    pub fn timeout(&self, text: &str) -> IngestionError {
        self.error(Category::Transient, code::TIMEOUT, text)
    }

    /// A driver error, classified: `doing` says what floe was doing (`connecting`, `reading`).
    pub fn sql(&self, doing: &str, e: &sqlx::Error) -> IngestionError {
        let (category, code, state) = classify(self.db, e);
        let text = match e {
            // The driver's own wording of these repeats the variant name; keep the cause.
            sqlx::Error::Database(d) => d.message().to_string(),
            other => other.to_string(),
        };
        let mut err = self.error(category, code, &format!("{doing}: {text}"));
        if let Some(s) = state {
            err = err.with_detail("sqlstate", s);
        }
        err
    }
}

/// Category, code and the server's own error code (SQLSTATE or number) of a driver error.
fn classify(db: Db, e: &sqlx::Error) -> (Category, &'static str, Option<String>) {
    use Category::*;
    match e {
        sqlx::Error::Io(io) => (io_category(io.kind()), code::UNAVAILABLE, None),
        sqlx::Error::PoolTimedOut => (Transient, code::TIMEOUT, None),
        sqlx::Error::Configuration(_) => (Configuration, code::INVALID_CONFIG, None),
        sqlx::Error::Tls(_) => (Permanent, code::SOURCE_ERROR, None),
        sqlx::Error::Database(d) => {
            let state = d.code().map(|c| c.to_string());
            let (cat, code) = match db {
                Db::Postgres => postgres(state.as_deref().unwrap_or("")),
                Db::MySql => mysql(d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map_or(0, |m| m.number()), d.message()),
                Db::Sqlite => sqlite(state.as_deref().unwrap_or(""), d.message()),
            };
            (cat, code, state)
        }
        _ => (Permanent, code::SOURCE_ERROR, None),
    }
}

fn io_category(kind: ErrorKind) -> Category {
    match kind {
        // A file that is not there or not readable will not appear by retrying.
        ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::InvalidData => Category::Permanent,
        // Refused, reset, aborted, timed out, unreachable, name lookup failures, …
        _ => Category::Transient,
    }
}

/// PostgreSQL SQLSTATEs (appendix A of its manual).
fn postgres(state: &str) -> (Category, &'static str) {
    use Category::*;
    match state {
        "28P01" | "28000" | "42501" => (Permanent, code::AUTH_FAILED),
        "3D000" | "3F000" | "42P01" => (Permanent, code::SOURCE_NOT_FOUND),
        "57014" => (Transient, code::TIMEOUT),
        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" => (Transient, code::UNAVAILABLE),
        s if s.starts_with("08") || s.starts_with("53") => (Transient, code::UNAVAILABLE),
        _ => (Permanent, code::SOURCE_ERROR),
    }
}

/// MySQL / MariaDB error numbers.
fn mysql(number: u16, _message: &str) -> (Category, &'static str) {
    use Category::*;
    match number {
        // access denied for user / to database / to table / to column
        1045 | 1044 | 1142 | 1143 | 1698 => (Permanent, code::AUTH_FAILED),
        // unknown database / table doesn't exist
        1049 | 1146 => (Permanent, code::SOURCE_NOT_FOUND),
        // lock wait timeout, query interrupted / timed out
        1205 | 1317 | 3024 | 1969 => (Transient, code::TIMEOUT),
        // too many connections, deadlock, shutdown, net errors, connection killed, gone away, lost
        1040 | 1203 | 1213 | 1053 | 1077 | 1152 | 1153 | 1154 | 1155 | 1156 | 1157 | 1158 | 1159 | 1160 | 1161 | 1927 | 2006 | 2013 => (Transient, code::UNAVAILABLE),
        _ => (Permanent, code::SOURCE_ERROR),
    }
}

/// SQLite result codes (primary codes; extended ones share the low byte).
fn sqlite(state: &str, message: &str) -> (Category, &'static str) {
    use Category::*;
    let primary = state.parse::<i64>().map(|c| c & 0xff).unwrap_or(-1);
    match primary {
        5 | 6 => (Transient, code::UNAVAILABLE), // busy, locked
        14 => (Permanent, code::SOURCE_NOT_FOUND), // cannot open
        23 => (Permanent, code::AUTH_FAILED),      // not authorised
        _ if message.contains("no such table") => (Permanent, code::SOURCE_NOT_FOUND),
        _ => (Permanent, code::SOURCE_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_server_codes() {
        assert_eq!(postgres("28P01"), (Category::Permanent, code::AUTH_FAILED));
        assert_eq!(postgres("42P01"), (Category::Permanent, code::SOURCE_NOT_FOUND));
        assert_eq!(postgres("3D000"), (Category::Permanent, code::SOURCE_NOT_FOUND));
        assert_eq!(postgres("08006"), (Category::Transient, code::UNAVAILABLE));
        assert_eq!(postgres("22003"), (Category::Permanent, code::SOURCE_ERROR));
        assert_eq!(mysql(1045, ""), (Category::Permanent, code::AUTH_FAILED));
        assert_eq!(mysql(1146, ""), (Category::Permanent, code::SOURCE_NOT_FOUND));
        assert_eq!(mysql(2013, ""), (Category::Transient, code::UNAVAILABLE));
        assert_eq!(sqlite("5", "database is locked"), (Category::Transient, code::UNAVAILABLE));
        assert_eq!(sqlite("1", "no such table: x"), (Category::Permanent, code::SOURCE_NOT_FOUND));
        assert_eq!(io_category(ErrorKind::ConnectionRefused), Category::Transient);
        assert_eq!(io_category(ErrorKind::ConnectionReset), Category::Transient);
    }

    #[test]
    fn messages_never_carry_the_password() {
        let mut redactor = Redactor::default();
        redactor.add(&crate::secrets::Secret::new("s3cr3t-pw".into()));
        let o = Origin { entry: "e".into(), table: "public.t".into(), server: "db:5432/app".into(), db: Db::Postgres, redactor };
        let e = o.data("saw postgresql://u:s3cr3t-pw@db/app and s3cr3t-pw");
        assert!(!e.message.contains("s3cr3t-pw"), "{}", e.message);
        assert!(e.message.contains("public.t") && e.message.contains("db:5432/app"));
    }
}
