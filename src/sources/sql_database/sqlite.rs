//! SQLite: a local database file, opened read-only; columns from `pragma_table_info`, rows
//! streamed from one `SELECT`.
//!
//! SQLite types belong to values, not columns: a column declared `INTEGER` may hold text.
//! floe maps the *declared* type (table below in the module doc of `sql_database`) and checks
//! every value against it; a row with a value that does not fit is rejected (counted, with a
//! sample naming the row and column, no data) rather than failing the whole load.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow, SqliteValueRef};
use sqlx::{Connection, Decode, Row, TypeInfo, ValueRef};

use super::columns::{BatchBuilder, Cell, Kind, MAX_DECIMAL_PRECISION};
use super::ident::{quote, Dialect};
use super::values::{cursor_micros, cursor_text, micros_to_sql_text, parse_date_text, parse_decimal, parse_time_text, parse_timestamp_text, pow10};
use super::Plan;
use crate::error::IngestionError;
use crate::sources::{BatchSink, SourceOutcome};

/// The database file of a `sqlite:` URL: `sqlite:///abs/path`, `sqlite://relative/path` or
/// `sqlite:relative` (relative to the spec's folder); a `?query` is ignored.
pub fn path(url: &str, base_dir: &Path) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        return None;
    }
    let p = Path::new(rest);
    Some(if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) })
}

struct LiteColumn {
    name: String,
    kind: Kind,
    select: String,
}

/// How many rejection reasons to keep for the report.
const MAX_SAMPLES: usize = 5;

pub async fn run(file: &Path, plan: &Plan, sink: &BatchSink) -> Result<SourceOutcome, IngestionError> {
    let origin = &plan.origin;
    if !file.is_file() {
        return Err(origin.not_found("the database file does not exist"));
    }
    let options = SqliteConnectOptions::new().filename(file).read_only(true).create_if_missing(false);
    let mut conn = super::connect(origin, SqliteConnection::connect_with(&options)).await?;
    let result = read(&mut conn, plan, sink).await;
    let _ = conn.close().await;
    result
}

async fn read(conn: &mut SqliteConnection, plan: &Plan, sink: &BatchSink) -> Result<SourceOutcome, IngestionError> {
    let origin = &plan.origin;
    let columns = columns(conn, plan).await?;
    let list: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
    let relation = super::ident::qualified(Dialect::Ansi, plan.schema.as_deref(), &plan.table);
    let mut sql = format!("SELECT {} FROM {relation}", list.join(", "));
    let mut param = None;
    if let Some(cursor) = &plan.cursor {
        let col = columns.iter().find(|c| c.name == cursor.column).ok_or_else(|| plan.missing_cursor(columns.iter().map(|c| c.name.as_str())))?;
        let quoted = quote(Dialect::Ansi, &col.name);
        if let Some(start) = &cursor.start {
            match col.kind {
                // Timestamps are text in SQLite, in more than one layout: compare as Julian
                // days (millisecond resolution, so `>=`; the engine keeps only rows strictly
                // past the cursor). Non-null values that are not text are left to the engine;
                // NULL is not greater than anything, as in the other databases.
                Kind::Timestamp | Kind::TimestampTz | Kind::Date => {
                    sql.push_str(&format!(" WHERE (typeof({quoted}) IN ('integer', 'real', 'blob') OR julianday({quoted}) >= julianday(?))"));
                    param = Some(Param::Text(cursor_micros(start).and_then(micros_to_sql_text).unwrap_or_else(|| cursor_text(start))));
                }
                Kind::I16 | Kind::I32 | Kind::I64 | Kind::Bool => {
                    sql.push_str(&format!(" WHERE {quoted} > ?"));
                    param = Some(start.as_i64().map_or_else(|| Param::Text(cursor_text(start)), Param::Int));
                }
                Kind::F32 | Kind::F64 | Kind::Decimal(_, _) => {
                    sql.push_str(&format!(" WHERE {quoted} > ?"));
                    param = Some(start.as_f64().map_or_else(|| Param::Text(cursor_text(start)), Param::Float));
                }
                _ => {
                    sql.push_str(&format!(" WHERE {quoted} > ?"));
                    param = Some(Param::Text(cursor_text(start)));
                }
            }
        }
        sql.push_str(&format!(" ORDER BY {quoted}"));
    }
    let mut query = sqlx::query(&sql);
    query = match param {
        Some(Param::Int(v)) => query.bind(v),
        Some(Param::Float(v)) => query.bind(v),
        Some(Param::Text(v)) => query.bind(v),
        None => query,
    };

    let names: Vec<(String, Kind)> = columns.iter().map(|c| (c.name.clone(), c.kind.clone())).collect();
    let mut batch = BatchBuilder::new(&names, plan.chunk);
    let mut outcome = SourceOutcome::default();
    let mut row_number: u64 = 0;
    let mut rows = query.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(|e| origin.sql("reading", &e))? {
        row_number += 1;
        // Per row: the staged cells borrow from this row.
        let mut staged: Vec<Staged> = Vec::with_capacity(columns.len());
        match stage(&row, &columns, &mut staged) {
            Ok(()) => {
                for (i, cell) in staged.drain(..).enumerate() {
                    let pushed = match cell {
                        Staged::Cell(c) => batch.cols[i].push(c),
                        Staged::Owned(s) => batch.cols[i].push(Cell::Str(&s)),
                    };
                    pushed.map_err(|m| origin.data(&format!("column `{}`: {}", columns[i].name, m.0)))?;
                }
                batch.row_done();
            }
            Err((i, why)) => {
                outcome.rows_rejected += 1;
                if outcome.rejected_samples.len() < MAX_SAMPLES {
                    outcome.rejected_samples.push(format!("{}: row {row_number}: column `{}`: {why}", plan.origin.table, columns[i].name));
                }
            }
        }
        if batch.is_full() {
            super::send(&mut batch, sink, origin).await?;
        }
    }
    drop(rows);
    if batch.rows() > 0 {
        super::send(&mut batch, sink, origin).await?;
    }
    Ok(outcome)
}

enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

/// A decoded value, before the row is known to be whole.
enum Staged<'r> {
    Cell(Cell<'r>),
    Owned(String),
}

/// Decode every value of a row, or say which column does not fit.
fn stage<'r>(row: &'r SqliteRow, columns: &[LiteColumn], out: &mut Vec<Staged<'r>>) -> Result<(), (usize, String)> {
    for (i, c) in columns.iter().enumerate() {
        let v = row.try_get_raw(i).map_err(|e| (i, e.to_string()))?;
        out.push(value(&c.kind, v).map_err(|m| (i, m))?);
    }
    Ok(())
}

fn value<'r>(kind: &Kind, v: SqliteValueRef<'r>) -> Result<Staged<'r>, String> {
    if v.is_null() {
        return Ok(Staged::Cell(Cell::Null));
    }
    let storage = v.type_info().name().to_string();
    let mismatch = || format!("a {storage} value where {} was declared", kind_name(kind));
    let int = |v: SqliteValueRef<'r>| <i64 as Decode<sqlx::Sqlite>>::decode(v).map_err(|e| e.to_string());
    let real = |v: SqliteValueRef<'r>| <f64 as Decode<sqlx::Sqlite>>::decode(v).map_err(|e| e.to_string());
    let text = |v: SqliteValueRef<'r>| <&str as Decode<sqlx::Sqlite>>::decode(v).map_err(|e| e.to_string());
    let cell = match (kind, storage.as_str()) {
        (Kind::Bool, "INTEGER") => match int(v)? {
            0 => Cell::Bool(false),
            1 => Cell::Bool(true),
            _ => return Err("an integer other than 0 or 1 where BOOLEAN was declared".into()),
        },
        (Kind::I64, "INTEGER") => Cell::I64(int(v)?),
        (Kind::F64, "INTEGER" | "REAL") => Cell::F64(real(v)?),
        (Kind::Decimal(_, s), "INTEGER") => Cell::Decimal(pow10(u32::try_from(*s).unwrap_or(0)).and_then(|p| i128::from(int(v).ok()?).checked_mul(p)).ok_or_else(mismatch)?),
        // A REAL is already rounded by SQLite; round it to the declared scale.
        (Kind::Decimal(_, s), "REAL") => {
            let f = real(v)? * 10f64.powi(i32::from(*s));
            if !f.is_finite() || f.abs() >= 1e38 {
                return Err(mismatch());
            }
            Cell::Decimal(f.round() as i128)
        }
        (Kind::Decimal(_, s), "TEXT") => Cell::Decimal(parse_decimal(text(v)?, *s).ok_or_else(mismatch)?),
        (Kind::Text, "TEXT") => Cell::Str(text(v)?),
        (Kind::Text, "INTEGER") => return Ok(Staged::Owned(int(v)?.to_string())),
        (Kind::Text, "REAL") => return Ok(Staged::Owned(real(v)?.to_string())),
        (Kind::Binary, "BLOB" | "TEXT") => Cell::Bytes(<&[u8] as Decode<sqlx::Sqlite>>::decode(v).map_err(|e| e.to_string())?),
        (Kind::Date, "TEXT") => Cell::Date(parse_date_text(text(v)?).ok_or_else(mismatch)?),
        (Kind::Time, "TEXT") => Cell::Time(parse_time_text(text(v)?).ok_or_else(mismatch)?),
        (Kind::Timestamp | Kind::TimestampTz, "TEXT") => Cell::Micros(parse_timestamp_text(text(v)?).ok_or_else(mismatch)?),
        // Unix seconds, as SQLite's own `unixepoch()` writes them.
        (Kind::Timestamp | Kind::TimestampTz, "INTEGER") => Cell::Micros(int(v)?.checked_mul(1_000_000).ok_or_else(mismatch)?),
        _ => return Err(mismatch()),
    };
    Ok(Staged::Cell(cell))
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Bool => "BOOLEAN",
        Kind::I16 | Kind::I32 | Kind::I64 => "INTEGER",
        Kind::F32 | Kind::F64 => "REAL",
        Kind::Decimal(_, _) => "DECIMAL",
        Kind::Text => "TEXT",
        Kind::Binary => "BLOB",
        Kind::Date => "DATE",
        Kind::Time => "TIME",
        Kind::Timestamp | Kind::TimestampTz => "DATETIME",
        Kind::List(_) => "a list",
    }
}

async fn columns(conn: &mut SqliteConnection, plan: &Plan) -> Result<Vec<LiteColumn>, IngestionError> {
    let origin = &plan.origin;
    let lookup = |e: sqlx::Error| origin.sql("looking up the table", &e);
    let q = match &plan.schema {
        Some(schema) => sqlx::query("SELECT name, type FROM pragma_table_info(?1, ?2) ORDER BY cid").bind(&plan.table).bind(schema),
        None => sqlx::query("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid").bind(&plan.table),
    };
    let rows = q.fetch_all(&mut *conn).await.map_err(lookup)?;
    if rows.is_empty() {
        return Err(origin.not_found(&format!("no table or view \"{}\" in the database file", plan.table)));
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0).map_err(lookup)?;
        let declared: String = row.try_get::<Option<String>, _>(1).map_err(lookup)?.unwrap_or_default();
        let quoted = quote(Dialect::Ansi, &name);
        if plan.overrides.contains_key(&name) {
            out.push(LiteColumn { select: format!("CAST({quoted} AS TEXT)"), name, kind: Kind::Text });
            continue;
        }
        let Some(kind) = map_declared(&declared) else {
            return Err(plan.unsupported(&name, &declared));
        };
        out.push(LiteColumn { name, kind, select: quoted });
    }
    plan.check_overrides(out.iter().map(|c| c.name.as_str()))?;
    Ok(out)
}

/// The kind of a declared column type, following SQLite's affinity rules where they apply.
fn map_declared(declared: &str) -> Option<Kind> {
    let t = declared.trim().to_ascii_uppercase();
    let base = t.split('(').next().unwrap_or(&t).trim();
    Some(match base {
        "BOOL" | "BOOLEAN" => Kind::Bool,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" | "TIMESTAMP" => Kind::Timestamp,
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => Kind::TimestampTz,
        "DECIMAL" | "NUMERIC" => match decimal_args(&t) {
            Some((p, s)) => Kind::Decimal(p, s),
            // Without a precision the values may be anything numeric: keep their text.
            None => Kind::Text,
        },
        // A column without a declared type holds anything; its text form loads.
        "" => Kind::Text,
        "JSON" | "UUID" => Kind::Text,
        _ if t.contains("INT") => Kind::I64,
        _ if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") => Kind::Text,
        _ if t.contains("BLOB") => Kind::Binary,
        _ if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") => Kind::F64,
        _ => return None,
    })
}

/// `(p, s)` of `DECIMAL(p, s)` when Decimal128 can hold it.
fn decimal_args(t: &str) -> Option<(u8, i8)> {
    let inner = t.split_once('(')?.1.split_once(')')?.0;
    let mut parts = inner.split(',').map(str::trim);
    let p: u8 = parts.next()?.parse().ok()?;
    let s: i8 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    ((1..=MAX_DECIMAL_PRECISION).contains(&p) && s >= 0 && (s as u8) <= p).then_some((p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_declared_types() {
        assert_eq!(map_declared("INTEGER"), Some(Kind::I64));
        assert_eq!(map_declared("bigint"), Some(Kind::I64));
        assert_eq!(map_declared("VARCHAR(20)"), Some(Kind::Text));
        assert_eq!(map_declared("decimal(10, 2)"), Some(Kind::Decimal(10, 2)));
        assert_eq!(map_declared("NUMERIC"), Some(Kind::Text));
        assert_eq!(map_declared("DATETIME"), Some(Kind::Timestamp));
        assert_eq!(map_declared("double precision"), Some(Kind::F64));
        assert_eq!(map_declared("BLOB"), Some(Kind::Binary));
        assert_eq!(map_declared("GEOMETRY"), None);
    }

    #[test]
    fn resolves_paths() {
        let base = Path::new("/spec");
        assert_eq!(path("sqlite:///abs/db.sqlite", base), Some(PathBuf::from("/abs/db.sqlite")));
        assert_eq!(path("sqlite://data/db.sqlite", base), Some(PathBuf::from("/spec/data/db.sqlite")));
        assert_eq!(path("sqlite:db.sqlite?mode=ro", base), Some(PathBuf::from("/spec/db.sqlite")));
        assert_eq!(path("sqlite://", base), None);
    }
}
