//! The `sql_database` source: one table (or view) of PostgreSQL, MySQL/MariaDB or SQLite,
//! streamed in chunks into Arrow batches. The database is chosen by the scheme of
//! `credentials`: `postgresql://` / `postgres://`, `mysql://` / `mariadb://`, `sqlite:`.
//!
//! Memory stays bounded: PostgreSQL is read with one binary `COPY (SELECT …) TO STDOUT`,
//! MySQL with one prepared `SELECT` whose rows are read from the socket as they are decoded,
//! SQLite row by row; each fills Arrow builders directly and hands over a batch every
//! `chunk_size` rows (default: the engine's batch size, at most 50 000), waiting while the
//! destination is busy.
//!
//! Incremental loads push the cursor down: `WHERE cursor > <start>` with the start as a
//! bound value (never SQL text), `ORDER BY cursor`. The engine filters again and keeps the
//! greatest cursor, so a pushdown that keeps a few rows too many (SQLite timestamps) is safe.
//!
//! ## Type mapping
//!
//! | source type | Arrow type | notes |
//! | --- | --- | --- |
//! | `smallint` / `int2`; MySQL `TINYINT`, `SMALLINT`, `YEAR` | Int16 | MySQL `SMALLINT UNSIGNED` → Int32 |
//! | `integer` / `int4`; MySQL `MEDIUMINT`, `INT` | Int32 | MySQL `INT UNSIGNED` → Int64 |
//! | `bigint` / `int8`, `oid`; SQLite `INTEGER` | Int64 | MySQL `BIGINT UNSIGNED` → Decimal128(20, 0) |
//! | `numeric(p, s)` / `DECIMAL(p, s)`, p ≤ 38 | Decimal128(p, s) | exact; NaN / ±Infinity fail the load (override to string) |
//! | `numeric` without precision, or p > 38 | Utf8 | the exact decimal text (no rounding to float) |
//! | `real` / `FLOAT` | Float32 | SQLite `REAL` → Float64 |
//! | `double precision` / `DOUBLE` | Float64 | |
//! | `boolean`; MySQL `BOOLEAN` (`TINYINT(1)`), `BIT(1)` | Boolean | a `TINYINT(1)` other than 0/1 fails the load (override to string) |
//! | `text`, `varchar`, `char(n)`, `name`; MySQL `CHAR`, `VARCHAR`, `*TEXT` | Utf8 | `char(n)` keeps its padding |
//! | `bytea`; MySQL `BINARY`, `VARBINARY`, `*BLOB`; SQLite `BLOB` | Binary | |
//! | `date` | Date32 | ±infinity and MySQL zero-in-part dates fail the load (override to string) |
//! | `time` | Time64(µs) | MySQL `TIME` outside 00:00–24:00 (a duration) fails the load |
//! | `timestamp` / `DATETIME` | Timestamp(µs) | no time zone, as stored |
//! | `timestamptz`; MySQL `TIMESTAMP` | Timestamp(µs, "UTC") | converted to UTC |
//! | `json`, `jsonb`; MySQL `JSON` | Utf8 | the JSON text |
//! | `uuid`; MariaDB `UUID` | Utf8 | `xxxxxxxx-xxxx-…`, lower case |
//! | enum types; MySQL `ENUM`, `SET` | Utf8 | the label(s) |
//! | domains | as their base type | |
//! | one-dimensional arrays of the above | List of the element's type | multi-dimensional values fail the load (override to string) |
//! | anything else (`interval`, `money`, `inet`, `timetz`, geometry, …) | — | CONFIGURATION error naming the column, unless `type_overrides: {column: string}` |
//!
//! `type_overrides: {column: string}` loads any column as its text form (`::text`,
//! `CAST(… AS CHAR)`, `CAST(… AS TEXT)`). MySQL zero dates (`0000-00-00`) load as NULL.
//! SQLite maps the declared type by SQLite's affinity rules (`INT` → Int64, `CHAR`/`CLOB`/
//! `TEXT` → Utf8, `REAL`/`FLOA`/`DOUB` → Float64, `BLOB` → Binary, `DECIMAL(p,s)`,
//! `BOOLEAN`, `DATE`, `TIME`, `DATETIME`/`TIMESTAMP` (ISO-8601 text or Unix seconds),
//! no type → Utf8); a value that does not fit its declared type rejects its row (PARTIAL).
//! Every Arrow field is nullable, whatever the source's `NOT NULL`s, so that dropping a
//! constraint at the source never breaks the table.

pub mod columns;
pub mod config;
mod errors;
mod ident;
mod mysql;
mod pg_binary;
mod postgres;
mod sqlite;
mod values;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use self::columns::BatchBuilder;
use self::config::SqlDatabaseConfig;
use self::errors::{Db, Origin};
use super::{BatchSink, Source, SourceContext, SourceKind, SourceOutcome};
use crate::config::diagnostics::FileDiagnostics;
use crate::config::schema_check::check;
use crate::error::{code, IngestionError};
use crate::secrets::{redact_url_passwords, Secret};

pub static KIND: SourceKind = SourceKind {
    name: "sql_database",
    natural_key: None,
    check_config,
    missing_config: |p, d| super::missing_config_keys("credentials and table", "{credentials: \"${secrets.db_url}\", table: orders}", p, d),
    check_resource,
    resource_key: super::no_resource_key,
    open,
};

/// Rows per chunk when neither `chunk_size` nor a smaller engine batch size says otherwise
/// (dlt's default).
pub const DEFAULT_CHUNK_SIZE: usize = 50_000;

/// How long to wait for a server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn check_config(v: &Value, p: &str, d: &mut FileDiagnostics<'_>) -> bool {
    if !check::<config::SqlDatabaseConfig>(v, p, d) {
        return false;
    }
    let creds = v.get("credentials").and_then(Value::as_str).unwrap_or_default();
    let known = ["postgresql://", "postgres://", "mysql://", "mariadb://", "sqlite:"];
    if !creds.starts_with("${") && !known.iter().any(|k| creds.starts_with(k)) {
        d.error(&format!("{p}.credentials"), "credentials must be a database URL").expected("postgresql://…, mysql://… or sqlite://… (normally ${secrets.NAME})");
        return false;
    }
    for (col, ty) in v.get("type_overrides").and_then(Value::as_object).into_iter().flatten() {
        if ty.as_str() != Some("string") {
            d.error(&format!("{p}.type_overrides.{col}"), format!("unsupported override {ty}")).expected("string");
        }
    }
    for key in ["table", "schema"] {
        if let Some(name) = v.get(key).and_then(Value::as_str)
            && let Err(m) = ident::validate(key, name)
        {
            d.error(&format!("{p}.{key}"), m);
            return false;
        }
    }
    true
}

fn check_resource(v: &Value, resource: Option<&str>, dlt_path: &str, d: &mut FileDiagnostics<'_>) {
    if v.get("table").is_none() && resource.is_none() {
        d.key_error(&format!("{dlt_path}.config"), "which table? give `table` in config (or `resource`)").hint("add `table: <table name>` under dlt.config");
    }
}

/// Which database a credentials URL names.
#[derive(Debug, Clone)]
enum Backend {
    Postgres,
    MySql,
    Sqlite(PathBuf),
}

/// The incremental cursor: the column, and the value rows must be greater than (None on a
/// first run without `initial_value`: everything loads, in cursor order).
#[derive(Debug, Clone)]
pub(crate) struct CursorPlan {
    pub column: String,
    pub start: Option<Value>,
}

/// What to read, worked out from the entry: shared by the three databases.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub table: String,
    pub schema: Option<String>,
    /// Rows per Arrow batch.
    pub chunk: usize,
    pub cursor: Option<CursorPlan>,
    /// Columns to load as text.
    pub overrides: BTreeMap<String, String>,
    pub origin: Origin,
}

impl Plan {
    /// The CONFIGURATION error of a column whose type floe cannot load.
    fn unsupported(&self, column: &str, sql_type: &str) -> IngestionError {
        self.origin.config(&format!(
            "column `{column}` has type `{sql_type}`, which floe cannot load as it is; load it as text with `type_overrides: {{{column}: string}}` under dlt.config"
        ))
    }

    /// The error of a cursor column the table does not have.
    fn missing_cursor<'a>(&self, columns: impl Iterator<Item = &'a str>) -> IngestionError {
        let column = self.cursor.as_ref().map_or("", |c| c.column.as_str());
        self.origin.config(&format!("incremental.cursor_column `{column}` is not a column of the table (columns: {})", columns.collect::<Vec<_>>().join(", ")))
    }

    /// Every `type_overrides` key must name a column: a typo would silently do nothing.
    fn check_overrides<'a>(&self, columns: impl Iterator<Item = &'a str> + Clone) -> Result<(), IngestionError> {
        for name in self.overrides.keys() {
            if !columns.clone().any(|c| c == name) {
                return Err(self.origin.config(&format!("type_overrides names `{name}`, which is not a column of the table (columns: {})", columns.collect::<Vec<_>>().join(", "))));
            }
        }
        Ok(())
    }
}

struct SqlDatabase {
    url: String,
    backend: Backend,
    plan: Plan,
}

fn open(ctx: SourceContext) -> Result<Box<dyn Source>, IngestionError> {
    let bad = |m: String| IngestionError::configuration(code::INVALID_CONFIG, KIND.name, ctx.redactor.redact(&redact_url_passwords(&format!("entry {}: dlt.config: {m}", ctx.entry))));
    let config: SqlDatabaseConfig = serde_json::from_value(ctx.config.clone()).map_err(|e| bad(e.to_string()))?;
    let table = config.table.clone().or_else(|| ctx.resource.clone()).ok_or_else(|| bad("which table? give `table` (or dlt.resource)".into()))?;
    ident::validate("table", &table).map_err(&bad)?;
    if let Some(s) = &config.schema {
        ident::validate("schema", s).map_err(&bad)?;
    }
    if let Some((col, ty)) = config.type_overrides.iter().find(|(_, t)| t.as_str() != "string") {
        return Err(bad(format!("type_overrides.{col}: unsupported override `{ty}` (only `string`)")));
    }

    let url = config.credentials.trim().to_string();
    // The password may be written in the URL itself rather than come from a secret: scrub it
    // from every message all the same (raw and percent-decoded).
    let mut redactor = ctx.redactor.clone();
    if let Some(pw) = url_password(&url) {
        redactor.add(&Secret::new(percent_decode(&pw)));
        redactor.add(&Secret::new(pw));
    }
    let lower = url.to_ascii_lowercase();
    let (backend, db, server) = if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
        (Backend::Postgres, Db::Postgres, postgres::server(&url))
    } else if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        (Backend::MySql, Db::MySql, mysql::server(&url))
    } else if lower.starts_with("sqlite:") {
        let path = sqlite::path(&url, &ctx.base_dir).ok_or_else(|| bad("credentials: a sqlite URL needs a file: sqlite:///abs/path.db or sqlite://relative/path.db".into()))?;
        let shown = path.display().to_string();
        (Backend::Sqlite(path), Db::Sqlite, Some(shown))
    } else {
        return Err(bad("credentials must be a postgresql://, mysql://, mariadb:// or sqlite: URL".into()));
    };
    let server = server.ok_or_else(|| bad("credentials: not a valid database URL".into()))?;
    let shown_table = match &config.schema {
        Some(s) => format!("{s}.{table}"),
        None => table.clone(),
    };
    let chunk = match config.chunk_size {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
        None => ctx.batch_size.clamp(1, DEFAULT_CHUNK_SIZE),
    };
    let plan = Plan {
        table,
        schema: config.schema.clone(),
        chunk,
        cursor: ctx.cursor_column.clone().map(|column| CursorPlan { column, start: ctx.cursor_start.clone().filter(|v| !v.is_null()) }),
        overrides: config.type_overrides.clone(),
        origin: Origin { entry: ctx.entry.clone(), table: shown_table, server, db, redactor },
    };
    Ok(Box::new(SqlDatabase { url, backend, plan }))
}

#[async_trait::async_trait]
impl Source for SqlDatabase {
    async fn run(self: Box<Self>, sink: BatchSink) -> Result<SourceOutcome, IngestionError> {
        match &self.backend {
            Backend::Postgres => postgres::run(&self.url, &self.plan, &sink).await.map(|()| SourceOutcome::default()),
            Backend::MySql => mysql::run(&self.url, &self.plan, &sink).await.map(|()| SourceOutcome::default()),
            Backend::Sqlite(path) => sqlite::run(path, &self.plan, &sink).await,
        }
    }
}

/// Connect, classifying failures, within [`CONNECT_TIMEOUT`].
async fn connect<C>(origin: &Origin, fut: impl Future<Output = Result<C, sqlx::Error>>) -> Result<C, IngestionError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(origin.sql("connecting", &e)),
        Err(_) => Err(origin.timeout(&format!("connecting: no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
    }
}

/// Hand the batch built so far to the destination (waiting while it is busy).
async fn send(batch: &mut BatchBuilder, sink: &BatchSink, origin: &Origin) -> Result<(), IngestionError> {
    let rb = batch.finish().map_err(|e| origin.data(&format!("building a batch: {e}")))?;
    sink.send(rb).await?;
    sink.unit_done();
    Ok(())
}

/// The password of `scheme://user:password@host/…`, as written.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, pw) = userinfo.split_once(':')?;
    (!pw.is_empty()).then(|| pw.to_string())
}

/// `%XX` escapes decoded (invalid ones kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_url_passwords() {
        assert_eq!(url_password("postgresql://u:p%40ss@h:5432/db").as_deref(), Some("p%40ss"));
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(url_password("mysql://root@h/db"), None);
        assert_eq!(url_password("sqlite:///tmp/x.db"), None);
    }
}
