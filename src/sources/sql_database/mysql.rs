//! MySQL and MariaDB: the table's columns from `information_schema`, then one prepared
//! `SELECT` whose rows stream from the socket (never buffered whole) into Arrow batches.
//!
//! A prepared statement's rows use MySQL's binary protocol, and floe decodes each value's raw
//! bytes itself (little-endian integers and floats, length-prefixed dates and times, decimal
//! text): the driver's typed decoders would allocate per value and lose decimal precision.

use std::str::FromStr;

use futures::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Connection, Row};

use super::columns::{BatchBuilder, Cell, Col, Kind, MAX_DECIMAL_PRECISION};
use super::ident::{quote, Dialect};
use super::values::{cursor_micros, cursor_text, epoch_days, epoch_micros, micros_to_sql_text, parse_decimal};
use super::Plan;
use crate::error::IngestionError;
use crate::sources::BatchSink;

/// `mariadb://` is the same protocol; the driver only knows `mysql://`.
pub fn normalise_url(url: &str) -> String {
    match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    }
}

/// `host:port/database` of a MySQL URL, without credentials; None when it does not parse.
pub fn server(url: &str) -> Option<String> {
    let o = MySqlConnectOptions::from_str(&normalise_url(url)).ok()?;
    Some(format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or("")))
}

/// How a column's raw binary value is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// A little-endian integer of 1, 2, 4 or 8 bytes.
    Int { unsigned: bool },
    /// `BIT(1)`: one byte, 0 or 1.
    Bit,
    Float,
    Double,
    /// Decimal text.
    Decimal,
    Text,
    Bytes,
    Date,
    DateTime,
    Time,
}

struct MyColumn {
    name: String,
    kind: Kind,
    wire: Wire,
    select: String,
    /// `DECIMAL(p,s)` for the cursor's cast, when the column is a decimal.
    decimal: Option<(u8, i8)>,
}

pub async fn run(url: &str, plan: &Plan, sink: &BatchSink) -> Result<(), IngestionError> {
    let origin = &plan.origin;
    // The driver's defaults set the session time zone to UTC, so TIMESTAMP columns arrive in
    // UTC; `utf8mb4` so text is UTF-8.
    let options = MySqlConnectOptions::from_str(&normalise_url(url)).map_err(|e| origin.sql("parsing the credentials URL", &e))?.charset("utf8mb4");
    let database = plan.schema.clone().or_else(|| options.get_database().map(str::to_string));
    let mut conn = super::connect(origin, MySqlConnection::connect_with(&options)).await?;
    let result = read(&mut conn, database, plan, sink).await;
    if result.is_ok() {
        let _ = conn.close().await;
    }
    result
}

async fn read(conn: &mut MySqlConnection, database: Option<String>, plan: &Plan, sink: &BatchSink) -> Result<(), IngestionError> {
    let origin = &plan.origin;
    let Some(database) = database else {
        return Err(origin.config("no database: give one in the credentials URL (mysql://host/DATABASE) or as `schema` in dlt.config"));
    };
    // While floe waits for the destination the server waits for floe; its default 60 s
    // write timeout would cut a slow load short.
    sqlx::query("SET SESSION net_write_timeout = 3600").execute(&mut *conn).await.map_err(|e| origin.sql("configuring the session", &e))?;
    let columns = columns(conn, &database, plan).await?;

    let list: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
    let relation = super::ident::qualified(Dialect::Backtick, Some(&database), &plan.table);
    let mut sql = format!("SELECT {} FROM {relation}", list.join(", "));
    let mut query_cursor = None;
    if let Some(cursor) = &plan.cursor {
        let col = columns.iter().find(|c| c.name == cursor.column).ok_or_else(|| plan.missing_cursor(columns.iter().map(|c| c.name.as_str())))?;
        let quoted = quote(Dialect::Backtick, &col.name);
        if let Some(start) = &cursor.start {
            let (param, placeholder) = cursor_param(col, start);
            sql.push_str(&format!(" WHERE {quoted} > {placeholder}"));
            query_cursor = Some(param);
        }
        sql.push_str(&format!(" ORDER BY {quoted}"));
    }
    let mut query = sqlx::query(&sql);
    query = match query_cursor {
        Some(Param::Int(v)) => query.bind(v),
        Some(Param::Float(v)) => query.bind(v),
        Some(Param::Text(v)) => query.bind(v),
        None => query,
    };

    let names: Vec<(String, Kind)> = columns.iter().map(|c| (c.name.clone(), c.kind.clone())).collect();
    let mut batch = BatchBuilder::new(&names, plan.chunk);
    let mut rows = query.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(|e| origin.sql("reading", &e))? {
        push_row(&row, &columns, &mut batch).map_err(|(i, m)| origin.data(&format!("column `{}`: {m}", columns[i].name)))?;
        batch.row_done();
        if batch.is_full() {
            super::send(&mut batch, sink, origin).await?;
        }
    }
    drop(rows);
    if batch.rows() > 0 {
        super::send(&mut batch, sink, origin).await?;
    }
    Ok(())
}

/// The cursor as a bound parameter of the column's type.
enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

fn cursor_param(col: &MyColumn, start: &serde_json::Value) -> (Param, String) {
    let text = || Param::Text(cursor_text(start));
    match (&col.kind, col.decimal) {
        (_, Some((p, s))) => (text(), format!("CAST(? AS DECIMAL({p},{s}))")),
        (Kind::I16 | Kind::I32 | Kind::I64 | Kind::Bool, _) => (start.as_i64().or_else(|| cursor_text(start).parse().ok()).map_or_else(text, Param::Int), "?".into()),
        (Kind::F32 | Kind::F64, _) => (start.as_f64().map_or_else(text, Param::Float), "?".into()),
        // MySQL converts a constant compared with a DATETIME/TIMESTAMP column to that type;
        // give it the form it parses (no `T`, no `Z`: the session is in UTC).
        (Kind::Timestamp | Kind::TimestampTz, _) => (cursor_micros(start).and_then(micros_to_sql_text).map_or_else(text, Param::Text), "?".into()),
        _ => (text(), "?".into()),
    }
}

/// Decode one row into the builders; on error, the column index and what went wrong.
fn push_row(row: &MySqlRow, columns: &[MyColumn], batch: &mut BatchBuilder) -> Result<(), (usize, String)> {
    for (i, c) in columns.iter().enumerate() {
        // Raw bytes of the binary-protocol value (zero dates come back as NULL).
        let raw: Option<&[u8]> = row.try_get_unchecked(i).map_err(|e| (i, e.to_string()))?;
        let col = &mut batch.cols[i];
        match raw {
            None => col.push(Cell::Null),
            Some(raw) => decode(c.wire, &c.kind, raw, col).map_err(|m| (i, m))?,
        }
        .map_err(|m| (i, m.0))?;
    }
    Ok(())
}

fn decode(wire: Wire, kind: &Kind, raw: &[u8], col: &mut Col) -> Result<Result<(), super::columns::Mismatch>, String> {
    let cell = match wire {
        Wire::Int { unsigned } => {
            let v: i128 = match (raw.len(), unsigned) {
                (1, false) => i128::from(raw[0] as i8),
                (1, true) => i128::from(raw[0]),
                (2, false) => i128::from(i16::from_le_bytes([raw[0], raw[1]])),
                (2, true) => i128::from(u16::from_le_bytes([raw[0], raw[1]])),
                (4, false) => i128::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
                (4, true) => i128::from(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
                (8, false) => i128::from(i64::from_le_bytes(array8(raw))),
                (8, true) => i128::from(u64::from_le_bytes(array8(raw))),
                (n, _) => return Err(format!("an integer of {n} bytes")),
            };
            let range = || format!("{v} does not fit the column's type");
            match kind {
                Kind::Bool => match v {
                    0 => Cell::Bool(false),
                    1 => Cell::Bool(true),
                    _ => return Err(format!("{v} in a BOOLEAN (TINYINT(1)) column; map the column to string with type_overrides to keep such values")),
                },
                Kind::I16 => Cell::I16(i16::try_from(v).map_err(|_| range())?),
                Kind::I32 => Cell::I32(i32::try_from(v).map_err(|_| range())?),
                Kind::I64 => Cell::I64(i64::try_from(v).map_err(|_| range())?),
                _ => Cell::Decimal(v),
            }
        }
        Wire::Bit => match raw {
            [0] => Cell::Bool(false),
            [1] => Cell::Bool(true),
            _ => return Err("a BIT(1) value that is not 0 or 1".into()),
        },
        Wire::Float => Cell::F32(f32::from_le_bytes(raw.try_into().map_err(|_| "a FLOAT of the wrong size")?)),
        Wire::Double => Cell::F64(f64::from_le_bytes(raw.try_into().map_err(|_| "a DOUBLE of the wrong size")?)),
        Wire::Decimal => {
            let Kind::Decimal(_, s) = kind else { return Err("a decimal value for a non-decimal column".into()) };
            let text = std::str::from_utf8(raw).map_err(|_| "a DECIMAL that is not text")?;
            Cell::Decimal(parse_decimal(text, *s).ok_or_else(|| format!("the DECIMAL {text} does not fit decimal at scale {s}"))?)
        }
        Wire::Text => Cell::Str(std::str::from_utf8(raw).map_err(|_| "text that is not valid UTF-8 (a binary collation? map the column with type_overrides)")?),
        Wire::Bytes => Cell::Bytes(raw),
        Wire::Date => Cell::Date(epoch_days(date(raw)?)),
        Wire::DateTime => {
            let d = date(raw)?;
            let (h, mi, s, us) = match raw.len() {
                5 => (0, 0, 0, 0),
                8 | 12 => (raw[5], raw[6], raw[7], if raw.len() == 12 { u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]) } else { 0 }),
                n => return Err(format!("a DATETIME of {n} bytes")),
            };
            let t = chrono::NaiveTime::from_hms_micro_opt(h.into(), mi.into(), s.into(), us).ok_or("an invalid time of day")?;
            Cell::Micros(epoch_micros(d.and_time(t)))
        }
        Wire::Time => {
            // [len] [negative] [days: u32] [h] [m] [s] ([µs: u32])
            let (neg, days, h, mi, s, us) = match raw.len() {
                1 => (0, 0, 0, 0, 0, 0),
                9 | 13 => (raw[1], u32::from_le_bytes([raw[2], raw[3], raw[4], raw[5]]), raw[6], raw[7], raw[8], if raw.len() == 13 { u32::from_le_bytes([raw[9], raw[10], raw[11], raw[12]]) } else { 0 }),
                n => return Err(format!("a TIME of {n} bytes")),
            };
            if neg != 0 || days != 0 {
                return Err("a TIME outside 00:00–24:00 (a duration); map the column to string with type_overrides".into());
            }
            Cell::Time((i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000 + i64::from(us))
        }
    };
    Ok(col.push(cell))
}

fn array8(raw: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&raw[..8]);
    a
}

/// The date part of a binary DATE/DATETIME/TIMESTAMP: [len] [year: u16] [month] [day] ….
fn date(raw: &[u8]) -> Result<chrono::NaiveDate, String> {
    if raw.len() < 5 {
        return Err("a zero or truncated date".into());
    }
    let y = u16::from_le_bytes([raw[1], raw[2]]);
    chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(raw[3]), u32::from(raw[4]))
        .ok_or_else(|| format!("the date {y:04}-{:02}-{:02}, which is not a calendar date; map the column to string with type_overrides", raw[3], raw[4]))
}

/// The table's columns, mapped.
async fn columns(conn: &mut MySqlConnection, database: &str, plan: &Plan) -> Result<Vec<MyColumn>, IngestionError> {
    let origin = &plan.origin;
    let lookup = |e: sqlx::Error| origin.sql("looking up the table", &e);
    // CAST … AS CHAR: information_schema's column types differ between MySQL and MariaDB
    // versions (some are binary strings); as text they read the same everywhere.
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
         CAST(NUMERIC_PRECISION AS CHAR), CAST(NUMERIC_SCALE AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(database)
    .bind(&plan.table)
    .fetch_all(&mut *conn)
    .await
    .map_err(lookup)?;
    if rows.is_empty() {
        let exists = sqlx::query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?").bind(database).fetch_optional(&mut *conn).await.map_err(lookup)?;
        return Err(match exists {
            None => origin.not_found(&format!("no database `{database}`")),
            Some(_) => origin.not_found(&format!("no table or view `{}` in database `{database}`", plan.table)),
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let text = |i: usize| -> Result<String, IngestionError> { Ok(row.try_get::<Option<String>, _>(i).map_err(lookup)?.unwrap_or_default()) };
        let name = text(0)?;
        let data_type = text(1)?.to_ascii_lowercase();
        let column_type = text(2)?.to_ascii_lowercase();
        let precision = text(3)?.parse::<u32>().ok();
        let scale = text(4)?.parse::<u32>().ok();
        let quoted = quote(Dialect::Backtick, &name);
        let as_text = text_form(&data_type, &quoted);
        if plan.overrides.contains_key(&name) {
            out.push(MyColumn { name, kind: Kind::Text, wire: Wire::Text, select: as_text, decimal: None });
            continue;
        }
        let Some((kind, wire, cast)) = map_type(&data_type, &column_type, precision, scale) else {
            return Err(plan.unsupported(&name, &column_type));
        };
        let decimal = match kind {
            Kind::Decimal(p, s) if wire == Wire::Decimal => Some((p, s)),
            _ => None,
        };
        out.push(MyColumn { select: if cast { as_text } else { quoted }, name, kind, wire, decimal });
    }
    plan.check_overrides(out.iter().map(|c| c.name.as_str()))?;
    Ok(out)
}

/// The expression giving a column's text form, for `type_overrides` and wide decimals:
/// `CAST … AS CHAR` refuses spatial types and turns BIT into raw bytes.
fn text_form(data_type: &str, quoted: &str) -> String {
    match data_type {
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection" | "geomcollection" => format!("ST_AsText({quoted})"),
        "bit" => format!("CAST({quoted} + 0 AS CHAR)"),
        _ => format!("CAST({quoted} AS CHAR)"),
    }
}

/// Kind, wire layout and whether to select the column `AS CHAR`; None when unsupported.
fn map_type(data_type: &str, column_type: &str, precision: Option<u32>, scale: Option<u32>) -> Option<(Kind, Wire, bool)> {
    let unsigned = column_type.contains("unsigned");
    let int = Wire::Int { unsigned };
    Some(match data_type {
        // BOOLEAN is TINYINT(1): MySQL has no other boolean.
        "tinyint" if column_type.starts_with("tinyint(1)") && !unsigned => (Kind::Bool, int, false),
        "tinyint" => (Kind::I16, int, false),
        "smallint" => (if unsigned { Kind::I32 } else { Kind::I16 }, int, false),
        "mediumint" => (Kind::I32, int, false),
        "int" | "integer" => (if unsigned { Kind::I64 } else { Kind::I32 }, int, false),
        "bigint" if unsigned => (Kind::Decimal(20, 0), int, false),
        "bigint" => (Kind::I64, int, false),
        "year" => (Kind::I16, Wire::Int { unsigned: true }, false),
        "bit" if column_type == "bit(1)" => (Kind::Bool, Wire::Bit, false),
        "float" => (Kind::F32, Wire::Float, false),
        "double" | "real" | "double precision" => (Kind::F64, Wire::Double, false),
        "decimal" | "numeric" => {
            let p = u8::try_from(precision?).ok()?;
            let s = i8::try_from(scale.unwrap_or(0)).ok()?;
            if p <= MAX_DECIMAL_PRECISION {
                (Kind::Decimal(p, s), Wire::Decimal, false)
            } else {
                (Kind::Text, Wire::Text, true)
            }
        }
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "json" | "enum" | "set" => (Kind::Text, Wire::Text, false),
        // MariaDB's UUID type: selected as text so every server version sends the same form.
        "uuid" => (Kind::Text, Wire::Text, true),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => (Kind::Binary, Wire::Bytes, false),
        "date" => (Kind::Date, Wire::Date, false),
        "datetime" => (Kind::Timestamp, Wire::DateTime, false),
        "timestamp" => (Kind::TimestampTz, Wire::DateTime, false),
        "time" => (Kind::Time, Wire::Time, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_column_types() {
        assert_eq!(map_type("tinyint", "tinyint(1)", None, None).map(|m| m.0), Some(Kind::Bool));
        assert_eq!(map_type("tinyint", "tinyint(4)", None, None).map(|m| m.0), Some(Kind::I16));
        assert_eq!(map_type("int", "int(10) unsigned", None, None).map(|m| m.0), Some(Kind::I64));
        assert_eq!(map_type("bigint", "bigint(20) unsigned", None, None).map(|m| m.0), Some(Kind::Decimal(20, 0)));
        assert_eq!(map_type("decimal", "decimal(10,2)", Some(10), Some(2)).map(|m| m.0), Some(Kind::Decimal(10, 2)));
        assert_eq!(map_type("decimal", "decimal(65,2)", Some(65), Some(2)).map(|m| (m.0, m.2)), Some((Kind::Text, true)));
        assert_eq!(map_type("timestamp", "timestamp(6)", None, None).map(|m| m.0), Some(Kind::TimestampTz));
        assert!(map_type("geometry", "geometry", None, None).is_none());
        assert!(map_type("bit", "bit(8)", None, None).is_none());
    }

    #[test]
    fn decodes_binary_temporals() {
        let mut col = Col::new(&Kind::Timestamp, 1);
        // 2024-02-03 04:05:06.000007
        let raw = [11u8, 0xe8, 0x07, 2, 3, 4, 5, 6, 7, 0, 0, 0];
        decode(Wire::DateTime, &Kind::Timestamp, &raw, &mut col).unwrap().unwrap();
        let mut t = Col::new(&Kind::Time, 1);
        assert!(decode(Wire::Time, &Kind::Time, &[8, 1, 0, 0, 0, 0, 1, 0, 0], &mut t).unwrap_err().contains("duration"));
        decode(Wire::Time, &Kind::Time, &[8, 0, 0, 0, 0, 0, 1, 2, 3], &mut t).unwrap().unwrap();
    }
}
