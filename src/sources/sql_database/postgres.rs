//! PostgreSQL: the table's columns from the catalog, then one binary `COPY (SELECT …) TO
//! STDOUT` streamed into Arrow batches.
//!
//! Everything runs in one `REPEATABLE READ, READ ONLY` transaction, so the columns floe looks
//! up are the columns it reads. COPY takes no bind parameters, so the incremental cursor is
//! bound to `set_config('floe.cursor_start', $1, true)` and the query casts
//! `current_setting('floe.cursor_start')` to the cursor column's own type: the value never
//! becomes SQL text, and the server compares it with the column's own semantics.

use std::collections::HashMap;
use std::str::FromStr;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use super::columns::{BatchBuilder, Kind, MAX_DECIMAL_PRECISION};
use super::ident::{quote, Dialect};
use super::pg_binary::{CopyParser, Wire};
use super::Plan;
use crate::error::IngestionError;
use crate::sources::BatchSink;

/// `host:port/database` of a PostgreSQL URL, without credentials; None when it does not parse.
pub fn server(url: &str) -> Option<String> {
    let o = PgConnectOptions::from_str(url).ok()?;
    Some(format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or(o.get_username())))
}

/// One column as floe reads it.
struct PgColumn {
    name: String,
    /// The column's type as SQL (`numeric(10,2)`), for the cursor cast.
    sql_type: String,
    kind: Kind,
    wire: Wire,
    /// The select-list expression (the quoted name, or a cast to text).
    select: String,
}

/// What `pg_type` says about a type.
#[derive(Clone)]
struct TypeInfo {
    typtype: String,
    category: String,
    elem: i64,
    base: i64,
    base_typmod: i32,
}

pub async fn run(url: &str, plan: &Plan, sink: &BatchSink) -> Result<(), IngestionError> {
    let origin = &plan.origin;
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| origin.sql("parsing the credentials URL", &e))?
        .application_name("floe")
        // Cursor texts without an offset are UTC, as the engine stores them.
        .options([("TimeZone", "UTC")]);
    let mut conn = super::connect(origin, PgConnection::connect_with(&options)).await?;
    let result = read(&mut conn, plan, sink).await;
    // Closing politely only matters when all went well; on error the connection is dropped.
    if result.is_ok() {
        let _ = conn.close().await;
    }
    result
}

async fn read(conn: &mut PgConnection, plan: &Plan, sink: &BatchSink) -> Result<(), IngestionError> {
    let origin = &plan.origin;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *conn).await.map_err(|e| origin.sql("starting a transaction", &e))?;
    let relation = super::ident::qualified(Dialect::Ansi, plan.schema.as_deref(), &plan.table);
    let columns = columns(conn, &relation, plan).await?;

    let list: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
    let mut select = format!("SELECT {} FROM {relation}", list.join(", "));
    if let Some(cursor) = &plan.cursor {
        let col = columns.iter().find(|c| c.name == cursor.column).ok_or_else(|| plan.missing_cursor(columns.iter().map(|c| c.name.as_str())))?;
        if let Some(start) = &cursor.start {
            sqlx::query("SELECT pg_catalog.set_config('floe.cursor_start', $1, true)")
                .bind(super::values::cursor_text(start))
                .execute(&mut *conn)
                .await
                .map_err(|e| origin.sql("setting the incremental cursor", &e))?;
            select.push_str(&format!(" WHERE {} > CAST(pg_catalog.current_setting('floe.cursor_start') AS {})", quote(Dialect::Ansi, &col.name), col.sql_type));
        }
        select.push_str(&format!(" ORDER BY {}", quote(Dialect::Ansi, &col.name)));
    }
    let statement = format!("COPY ({select}) TO STDOUT (FORMAT binary)");

    let names: Vec<(String, Kind)> = columns.iter().map(|c| (c.name.clone(), c.kind.clone())).collect();
    let mut batch = BatchBuilder::new(&names, plan.chunk);
    let mut parser = CopyParser::new(columns.iter().map(|c| c.wire.clone()).collect());
    let mut stream = conn.copy_out_raw(&statement).await.map_err(|e| origin.sql("reading", &e))?;
    let mut pending = BytesMut::new();
    let mut done = false;
    while !done {
        let Some(chunk) = stream.next().await else { break };
        let chunk = chunk.map_err(|e| origin.sql("reading", &e))?;
        // The server sends one row per message: decode straight from it, and only keep
        // bytes back when a row is split (or a batch fills up mid-message).
        let mut buf: &[u8] = if pending.is_empty() { &chunk } else {
            pending.extend_from_slice(&chunk);
            &pending
        };
        let mut used_total = 0;
        loop {
            let fed = parser.feed(buf, &mut batch).map_err(|e| decode_error(plan, &names, e))?;
            used_total += fed.consumed;
            buf = &buf[fed.consumed..];
            done = fed.done;
            if batch.is_full() {
                super::send(&mut batch, sink, origin).await?;
                if !done {
                    continue;
                }
            }
            break;
        }
        if pending.is_empty() {
            pending.extend_from_slice(&chunk[used_total..]);
        } else {
            pending.advance(used_total);
        }
    }
    if !done {
        return Err(origin.data("the COPY stream ended without its trailer"));
    }
    // Drain the stream so the server's completion is read.
    while let Some(item) = stream.next().await {
        item.map_err(|e| origin.sql("reading", &e))?;
    }
    drop(stream);
    if batch.rows() > 0 {
        super::send(&mut batch, sink, origin).await?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await.map_err(|e| origin.sql("finishing", &e))?;
    Ok(())
}

fn decode_error(plan: &Plan, names: &[(String, Kind)], e: super::pg_binary::DecodeError) -> IngestionError {
    match names.get(e.column) {
        Some((name, _)) => plan.origin.data(&format!("column `{name}`: {}", e.message)),
        None => plan.origin.data(&e.message),
    }
}

/// The table's columns, mapped; unknown table → SOURCE_NOT_FOUND, unsupported type →
/// CONFIGURATION naming the column.
async fn columns(conn: &mut PgConnection, relation: &str, plan: &Plan) -> Result<Vec<PgColumn>, IngestionError> {
    let origin = &plan.origin;
    let rows = sqlx::query(
        "SELECT a.attname::text, a.atttypid::int8, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod) \
         FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(relation)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| origin.sql("looking up the table", &e))?;
    if rows.is_empty() {
        let place = match &plan.schema {
            Some(s) => format!("in schema \"{s}\""),
            None => "on the search_path".to_string(),
        };
        return Err(origin.not_found(&format!("no table or view \"{}\" {place}", plan.table)));
    }
    let mut types: HashMap<i64, TypeInfo> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let get = |e: sqlx::Error| origin.sql("looking up the table", &e);
        let name: String = row.try_get(0).map_err(get)?;
        let oid: i64 = row.try_get(1).map_err(get)?;
        let typmod: i32 = row.try_get(2).map_err(get)?;
        let sql_type: String = row.try_get(3).map_err(get)?;
        let quoted = quote(Dialect::Ansi, &name);
        if plan.overrides.contains_key(&name) {
            out.push(PgColumn { select: format!("{quoted}::text"), name, sql_type, kind: Kind::Text, wire: Wire::Text });
            continue;
        }
        let mapped = map_type(conn, &mut types, oid, typmod, 0).await.map_err(|e| origin.sql("looking up the table", &e))?;
        let Some((kind, wire, cast)) = mapped else {
            return Err(plan.unsupported(&name, &sql_type));
        };
        let select = match cast {
            Cast::None => quoted,
            Cast::Text => format!("{quoted}::text"),
            Cast::TextArray => format!("{quoted}::text[]"),
        };
        out.push(PgColumn { name, sql_type, kind, wire, select });
    }
    plan.check_overrides(out.iter().map(|c| c.name.as_str()))?;
    Ok(out)
}

/// How the select list must change a column for floe to read it.
enum Cast {
    None,
    /// `::text` (numeric without a usable precision).
    Text,
    /// `::text[]` (arrays of such numerics).
    TextArray,
}

/// The Arrow kind and binary layout of a type; None when unsupported.
async fn map_type(conn: &mut PgConnection, cache: &mut HashMap<i64, TypeInfo>, oid: i64, typmod: i32, depth: u8) -> Result<Option<(Kind, Wire, Cast)>, sqlx::Error> {
    if let Some(m) = builtin(oid, typmod) {
        return Ok(Some(m));
    }
    // Domains over domains over arrays…: a few levels are plenty; a cycle cannot happen.
    if depth > 8 {
        return Ok(None);
    }
    let info = match cache.get(&oid) {
        Some(i) => i.clone(),
        None => {
            let row = sqlx::query("SELECT typtype::text, typcategory::text, typelem::int8, typbasetype::int8, typtypmod FROM pg_catalog.pg_type WHERE oid = $1::int8::oid")
                .bind(oid)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let info = TypeInfo { typtype: row.try_get(0)?, category: row.try_get(1)?, elem: row.try_get(2)?, base: row.try_get(3)?, base_typmod: row.try_get(4)? };
            cache.insert(oid, info.clone());
            info
        }
    };
    match (info.typtype.as_str(), info.category.as_str()) {
        // Enum values travel as their labels.
        ("e", _) => Ok(Some((Kind::Text, Wire::Text, Cast::None))),
        // A domain reads as its base type (with the domain's own typmod, if any).
        ("d", _) => {
            let tm = if info.base_typmod >= 0 { info.base_typmod } else { typmod };
            Box::pin(map_type(conn, cache, info.base, tm, depth + 1)).await
        }
        ("b", "A") if info.elem != 0 => {
            // An array column's typmod is its element's.
            let item = Box::pin(map_type(conn, cache, info.elem, typmod, depth + 1)).await?;
            Ok(match item {
                Some((Kind::List(_), _, _)) | None => None,
                Some((kind, wire, Cast::None)) => Some((Kind::List(Box::new(kind)), Wire::Array(Box::new(wire)), Cast::None)),
                Some((_, _, _)) => Some((Kind::List(Box::new(Kind::Text)), Wire::Array(Box::new(Wire::Text)), Cast::TextArray)),
            })
        }
        _ => Ok(None),
    }
}

/// The built-in scalar types, by oid (they are fixed in every PostgreSQL).
fn builtin(oid: i64, typmod: i32) -> Option<(Kind, Wire, Cast)> {
    let plain = |k: Kind, w: Wire| Some((k, w, Cast::None));
    match oid {
        16 => plain(Kind::Bool, Wire::Bool),
        21 => plain(Kind::I16, Wire::Int2),
        23 => plain(Kind::I32, Wire::Int4),
        20 => plain(Kind::I64, Wire::Int8),
        26 => plain(Kind::I64, Wire::Oid),
        700 => plain(Kind::F32, Wire::Float4),
        701 => plain(Kind::F64, Wire::Float8),
        1700 => match numeric_typmod(typmod) {
            Some((p, s)) => plain(Kind::Decimal(p, s), Wire::Numeric(s)),
            // Unconstrained (or wider than Decimal128): exact text, not a rounded float.
            None => Some((Kind::Text, Wire::Text, Cast::Text)),
        },
        // text, varchar, char(n), name, "char", json
        25 | 1043 | 1042 | 19 | 18 | 114 => plain(Kind::Text, Wire::Text),
        3802 => plain(Kind::Text, Wire::Jsonb),
        2950 => plain(Kind::Text, Wire::Uuid),
        17 => plain(Kind::Binary, Wire::Bytea),
        1082 => plain(Kind::Date, Wire::Date),
        1083 => plain(Kind::Time, Wire::Time),
        1114 => plain(Kind::Timestamp, Wire::Timestamp),
        1184 => plain(Kind::TimestampTz, Wire::Timestamp),
        _ => None,
    }
}

/// Precision and scale of `numeric(p, s)` from its typmod, when Decimal128 can hold it.
fn numeric_typmod(typmod: i32) -> Option<(u8, i8)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let p = (t >> 16) & 0xffff;
    // PostgreSQL 15 allows a negative scale, stored in 11 bits.
    let s = ((t & 0x7ff) ^ 0x400) - 0x400;
    let p = u8::try_from(p).ok().filter(|p| (1..=MAX_DECIMAL_PRECISION).contains(p))?;
    let s = i8::try_from(s).ok().filter(|s| *s >= 0 && (*s as u8) <= p)?;
    Some((p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmods() {
        let tm = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        assert_eq!(numeric_typmod(tm(10, 2)), Some((10, 2)));
        assert_eq!(numeric_typmod(tm(38, 0)), Some((38, 0)));
        assert_eq!(numeric_typmod(tm(39, 2)), None);
        assert_eq!(numeric_typmod(tm(5, -2)), None);
        assert_eq!(numeric_typmod(-1), None);
    }
}
