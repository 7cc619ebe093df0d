//! The `sql_database` source against real servers: PostgreSQL (`FLOE_TEST_PG_URL`), MariaDB
//! (`FLOE_TEST_MYSQL_URL`), both started by `tests/support/services.sh`, and SQLite files.
//!
//! Each test makes its own tables (unique names), runs the source into a channel and checks
//! the Arrow values and types exactly. Without a server's variable its tests print why and
//! pass, unless `FLOE_TEST_REQUIRE_SERVICES=1` (set by services.sh), where they fail.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use floe::error::{Category, IngestionError};
use floe::secrets::{Redactor, Secret};
use floe::sources::{BatchSink, Progress, SourceContext, SourceOutcome};
use serde_json::{json, Value};
use sqlx::Connection;

// ---------------------------------------------------------------------------------------------
// helpers

/// A server URL from the environment, or None (after saying so) when the test should skip.
fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("FLOE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} is not set but FLOE_TEST_REQUIRE_SERVICES=1: start the services with tests/support/services.sh");
            }
            eprintln!("skipped: {var} is not set (start the services with tests/support/services.sh)");
            None
        }
    }
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn ctx(config: Value, base_dir: &Path) -> SourceContext {
    SourceContext {
        entry: "sql_test".into(),
        resource: None,
        config,
        base_dir: base_dir.to_path_buf(),
        cursor_column: None,
        cursor_start: None,
        source_state: None,
        batch_size: 65_536,
        s3: None,
        redactor: Redactor::default(),
    }
}

struct Loaded {
    batches: Vec<RecordBatch>,
    outcome: SourceOutcome,
    units: u64,
}

impl Loaded {
    fn all(&self) -> RecordBatch {
        let schema = self.batches[0].schema();
        arrow_select::concat::concat_batches(&schema, &self.batches).expect("concat")
    }
}

/// Run the source to the end, collecting its batches.
async fn run(ctx: SourceContext) -> Result<Loaded, IngestionError> {
    let source = (floe::sources::sql_database::KIND.open)(ctx)?;
    let progress = Arc::new(Progress::default());
    let (sink, mut rx) = BatchSink::channel(2, progress.clone());
    let task = tokio::spawn(source.run(sink));
    let mut batches = Vec::new();
    while let Some(b) = rx.recv().await {
        batches.push(b);
    }
    let outcome = task.await.expect("source task")?;
    Ok(Loaded { batches, outcome, units: progress.units.load(Ordering::Relaxed) })
}

async fn run_ok(ctx: SourceContext) -> Loaded {
    match run(ctx).await {
        Ok(l) => l,
        Err(e) => panic!("source failed: {e}"),
    }
}

async fn run_err(ctx: SourceContext) -> IngestionError {
    match run(ctx).await {
        Ok(l) => panic!("expected an error, loaded {} batches", l.batches.len()),
        Err(e) => e,
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name).unwrap_or_else(|| panic!("no column {name} in {:?}", b.schema()))
}

fn dtype(b: &RecordBatch, name: &str) -> DataType {
    col(b, name).data_type().clone()
}

fn strs(a: &ArrayRef) -> Vec<Option<String>> {
    a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
}

fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).expect("timestamp").timestamp_micros()
}

fn days(text: &str) -> i32 {
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date");
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn assert_no_secret(e: &IngestionError, secret: &str) {
    let whole = serde_json::to_string(e).expect("serialise");
    assert!(!whole.contains(secret), "the password leaked: {whole}");
}

async fn pg_exec(url: &str, sql: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
}

async fn my_exec(url: &str, sql: &str) {
    let mut c = sqlx::MySqlConnection::connect(url).await.expect("connect to MariaDB");
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
}

/// `scheme://user:password@host:port/db` from a URL's host and port.
fn with_user(url: &str, user: &str, password: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("url");
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{user}:{password}@{host}/{db}")
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").expect("url").1;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_string()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test]
async fn pg_every_mapped_type_round_trips() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let t = unique("types");
    let mood = unique("mood");
    pg_exec(
        &url,
        &format!(
            r#"CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy');
            CREATE DOMAIN {mood}_pos AS integer CHECK (VALUE > 0);
            CREATE TABLE {t} (
              id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, pos {mood}_pos,
              dec numeric(12,3), dec_neg numeric(5,2), dec_free numeric, dec_wide numeric(50,4),
              r real, d double precision, b boolean,
              tx text, vc varchar(10), ch char(3), by bytea,
              dt date, tm time, ts timestamp, tstz timestamptz,
              j json, jb jsonb, u uuid, e {mood},
              ai integer[], at text[], ad numeric(6,2)[], ae {mood}[]);
            INSERT INTO {t} VALUES
              (1, -32768, 2147483647, -9223372036854775808, 7,
               123456789.125, -0.05, 3.14159265358979323846264338327950288, -12345678901234567890123456789012345678901234.5678,
               1.5, -2.25, true,
               'héllo ✓', 'var', 'ab', '\x00ff10',
               '2024-02-29', '13:14:15.123456', '2024-01-02 03:04:05.654321', '2024-01-02 03:04:05.123456+02',
               '{{"b": [1, 2], "a": null}}', '{{"b": [1, 2], "a": null}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
               ARRAY[1, NULL, 3], ARRAY['x', 'y'], ARRAY[1.50, -2.25], ARRAY['sad', 'ok']::{mood}[]),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (3, 1, -1, 1, 1, -0.001, -999.99, -0, 0, '-Infinity', 'NaN', false, '', '', '', '',
               '1900-01-01', '00:00:00', '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00+00',
               '[]', '{{}}', '00000000-0000-0000-0000-000000000000', 'sad',
               '{{}}', ARRAY[NULL]::text[], NULL, '{{}}');"#
        ),
    )
    .await;
    let mut c = ctx(json!({"credentials": url, "table": t}), Path::new("/"));
    c.cursor_column = Some("id".into()); // ORDER BY id, without a start
    let loaded = run_ok(c).await;
    let b = loaded.all();
    assert_eq!(b.num_rows(), 3);

    let expect_types: &[(&str, DataType)] = &[
        ("id", DataType::Int32),
        ("i2", DataType::Int16),
        ("i4", DataType::Int32),
        ("i8", DataType::Int64),
        ("pos", DataType::Int32),
        ("dec", DataType::Decimal128(12, 3)),
        ("dec_neg", DataType::Decimal128(5, 2)),
        ("dec_free", DataType::Utf8),
        ("dec_wide", DataType::Utf8),
        ("r", DataType::Float32),
        ("d", DataType::Float64),
        ("b", DataType::Boolean),
        ("tx", DataType::Utf8),
        ("vc", DataType::Utf8),
        ("ch", DataType::Utf8),
        ("by", DataType::Binary),
        ("dt", DataType::Date32),
        ("tm", DataType::Time64(TimeUnit::Microsecond)),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("tstz", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
        ("j", DataType::Utf8),
        ("jb", DataType::Utf8),
        ("u", DataType::Utf8),
        ("e", DataType::Utf8),
    ];
    for (name, ty) in expect_types {
        assert_eq!(&dtype(&b, name), ty, "type of {name}");
    }
    for name in ["ai", "at", "ad", "ae"] {
        assert!(matches!(dtype(&b, name), DataType::List(_)), "{name} is a list");
    }

    let ids: Vec<i32> = col(&b, "id").as_primitive::<Int32Type>().values().to_vec();
    assert_eq!(ids, vec![1, 2, 3], "ordered by the cursor column");
    // Row 2 is NULL everywhere but id.
    for f in b.schema().fields().iter().filter(|f| f.name() != "id") {
        assert!(col(&b, f.name()).is_null(1), "{} of row 2 is null", f.name());
    }

    let i2 = col(&b, "i2").as_primitive::<Int16Type>();
    assert_eq!((i2.value(0), i2.value(2)), (-32768, 1));
    assert_eq!(col(&b, "i4").as_primitive::<Int32Type>().value(0), 2_147_483_647);
    assert_eq!(col(&b, "i8").as_primitive::<Int64Type>().value(0), i64::MIN);
    assert_eq!(col(&b, "pos").as_primitive::<Int32Type>().value(0), 7);
    let dec = col(&b, "dec").as_primitive::<Decimal128Type>();
    assert_eq!((dec.value(0), dec.value(2)), (123_456_789_125, -1));
    let dec_neg = col(&b, "dec_neg").as_primitive::<Decimal128Type>();
    assert_eq!((dec_neg.value(0), dec_neg.value(2)), (-5, -99_999));
    assert_eq!(strs(col(&b, "dec_free"))[0].as_deref(), Some("3.14159265358979323846264338327950288"));
    assert_eq!(strs(col(&b, "dec_free"))[2].as_deref(), Some("0"));
    assert_eq!(strs(col(&b, "dec_wide"))[0].as_deref(), Some("-12345678901234567890123456789012345678901234.5678"));
    let r = col(&b, "r").as_primitive::<Float32Type>();
    assert_eq!(r.value(0), 1.5);
    assert_eq!(r.value(2), f32::NEG_INFINITY);
    let d = col(&b, "d").as_primitive::<Float64Type>();
    assert_eq!(d.value(0), -2.25);
    assert!(d.value(2).is_nan());
    let bo = col(&b, "b").as_boolean();
    assert!(bo.value(0) && !bo.value(2));
    assert_eq!(strs(col(&b, "tx")), vec![Some("héllo ✓".into()), None, Some(String::new())]);
    assert_eq!(strs(col(&b, "vc"))[0].as_deref(), Some("var"));
    assert_eq!(strs(col(&b, "ch"))[0].as_deref(), Some("ab "), "char(n) keeps its padding");
    assert_eq!(col(&b, "by").as_binary::<i32>().value(0), &[0x00, 0xff, 0x10]);
    assert!(col(&b, "by").as_binary::<i32>().value(2).is_empty());
    let dt = col(&b, "dt").as_primitive::<Date32Type>();
    assert_eq!((dt.value(0), dt.value(2)), (days("2024-02-29"), days("1900-01-01")));
    let tm = col(&b, "tm").as_primitive::<Time64MicrosecondType>();
    assert_eq!((tm.value(0), tm.value(2)), ((13 * 3600 + 14 * 60 + 15) * 1_000_000 + 123_456, 0));
    let ts = col(&b, "ts").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), micros("2024-01-02T03:04:05.654321Z"));
    assert_eq!(ts.value(2), -1, "before 1970");
    let tstz = col(&b, "tstz").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(tstz.value(0), micros("2024-01-02T01:04:05.123456Z"), "converted to UTC");
    assert_eq!(tstz.value(2), 0);
    assert_eq!(strs(col(&b, "j"))[0].as_deref(), Some(r#"{"b": [1, 2], "a": null}"#), "json as written");
    assert_eq!(strs(col(&b, "jb"))[0].as_deref(), Some(r#"{"a": null, "b": [1, 2]}"#), "jsonb as the server normalises it");
    assert_eq!(strs(col(&b, "u")), vec![Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()), None, Some("00000000-0000-0000-0000-000000000000".into())]);
    assert_eq!(strs(col(&b, "e")), vec![Some("happy".into()), None, Some("sad".into())]);

    let ai = col(&b, "ai").as_list::<i32>();
    assert_eq!(ai.value(0).as_primitive::<Int32Type>().iter().collect::<Vec<_>>(), vec![Some(1), None, Some(3)]);
    assert!(ai.is_null(1));
    assert_eq!(ai.value(2).len(), 0, "an empty array is an empty list");
    let at = col(&b, "at").as_list::<i32>();
    assert_eq!(strs(&at.value(0)), vec![Some("x".into()), Some("y".into())]);
    assert_eq!(strs(&at.value(2)), vec![None]);
    let ad = col(&b, "ad").as_list::<i32>();
    assert_eq!(ad.value(0).data_type(), &DataType::Decimal128(6, 2));
    assert_eq!(ad.value(0).as_primitive::<Decimal128Type>().values().to_vec(), vec![150, -225]);
    let ae = col(&b, "ae").as_list::<i32>();
    assert_eq!(strs(&ae.value(0)), vec![Some("sad".into()), Some("ok".into())]);
}

#[tokio::test]
async fn pg_streams_in_chunks_and_pushes_the_cursor_down() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let t = unique("events");
    pg_exec(
        &url,
        &format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(10,2), name text);
             INSERT INTO {t} SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g / 100.0, 'n' || g
             FROM generate_series(2500, 1, -1) g;"
        ),
    )
    .await;

    // Everything, 1000 rows per batch.
    let loaded = run_ok(ctx(json!({"credentials": url, "table": t, "chunk_size": 1000}), Path::new("/"))).await;
    let sizes: Vec<usize> = loaded.batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    assert_eq!(loaded.units, 3);

    // Only rows past a timestamp cursor, oldest first.
    let mut c = ctx(json!({"credentials": url, "table": t, "chunk_size": 1000}), Path::new("/"));
    c.cursor_column = Some("updated_at".into());
    c.cursor_start = Some(json!("2024-01-02T09:20:00Z")); // = minute 2000
    let b = run_ok(c).await.all();
    let ids: Vec<i64> = col(&b, "id").as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, (2001..=2500).collect::<Vec<_>>());

    // An integer cursor, a decimal one and a text one.
    for (column, start, expected) in [("id", json!(2490), 10usize), ("amount", json!(24.95), 5), ("name", json!("n998"), 1)] {
        let mut c = ctx(json!({"credentials": url, "table": t}), Path::new("/"));
        c.cursor_column = Some(column.into());
        c.cursor_start = Some(start.clone());
        let loaded = run_ok(c).await;
        let rows: usize = loaded.batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, expected, "cursor {column} > {start}");
    }
}

#[tokio::test]
async fn pg_unsupported_types_name_the_column_and_can_be_overridden() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let t = unique("odd");
    pg_exec(&url, &format!("CREATE TABLE {t} (id int, span interval, addr inet); INSERT INTO {t} VALUES (1, '1 day 2 hours', '10.0.0.1');")).await;
    let e = run_err(ctx(json!({"credentials": url, "table": t}), Path::new("/"))).await;
    assert_eq!(e.category, Category::Configuration, "{e}");
    assert!(e.message.contains("`span`") && e.message.contains("interval") && e.message.contains("type_overrides"), "{e}");

    let b = run_ok(ctx(json!({"credentials": url, "table": t, "type_overrides": {"span": "string", "addr": "string"}}), Path::new("/"))).await.all();
    assert_eq!(strs(col(&b, "span")), vec![Some("1 day 02:00:00".into())]);
    assert_eq!(strs(col(&b, "addr")), vec![Some("10.0.0.1/32".into())]);

    let e = run_err(ctx(json!({"credentials": url, "table": t, "type_overrides": {"nope": "string", "span": "string", "addr": "string"}}), Path::new("/"))).await;
    assert_eq!(e.category, Category::Configuration);
    assert!(e.message.contains("`nope`"), "{e}");
}

#[tokio::test]
async fn pg_quotes_identifiers_and_reads_schemas() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let schema = unique("Sch");
    let table = format!("we\"ird {}", unique("T"));
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    pg_exec(&url, &format!("CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (\"Mixed Col\" int, \"x\"\"y\" text); INSERT INTO {s}.{t} VALUES (5, 'q');", s = q(&schema), t = q(&table))).await;
    let b = run_ok(ctx(json!({"credentials": url, "schema": schema, "table": table}), Path::new("/"))).await.all();
    assert_eq!(col(&b, "Mixed Col").as_primitive::<Int32Type>().value(0), 5);
    assert_eq!(strs(col(&b, "x\"y")), vec![Some("q".into())]);
    // The same table name without its schema is not on the search path.
    let e = run_err(ctx(json!({"credentials": url, "table": table}), Path::new("/"))).await;
    assert_eq!(e.code, "SOURCE_NOT_FOUND");
}

#[tokio::test]
async fn pg_unknown_table_and_database_are_not_found() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let e = run_err(ctx(json!({"credentials": url, "table": "no_such_table_here"}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND"), "{e}");
    assert!(e.message.contains("no_such_table_here") && e.message.contains(&host_port(&url)), "{e}");

    let other_db = format!("{}/no_such_database", url.rsplit_once('/').expect("db").0);
    let e = run_err(ctx(json!({"credentials": other_db, "table": "t"}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND"), "{e}");
}

/// Make a role that must give its password: trust auth (the test server's) accepts any, so
/// put a `scram-sha-256` line for that one role first in pg_hba.conf and reload.
async fn pg_password_role(url: &str, role: &str, password: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    let hba: String = sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'hba_file'").fetch_one(&mut c).await.expect("hba_file");
    let content: String = sqlx::query_scalar("SELECT pg_read_file($1)").bind(&hba).fetch_one(&mut c).await.expect("read pg_hba.conf");
    let line = format!("host all {role} 127.0.0.1/32 scram-sha-256");
    if !content.contains(&line) {
        let mut lines = vec![line];
        lines.extend(content.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| l.replace('\t', " ")));
        // COPY … TO a file takes no parameters; this is the test's own text, dollar-quoted.
        let values: Vec<String> = lines.iter().enumerate().map(|(i, l)| format!("({i}, $floe${l}$floe$)")).collect();
        let copy = format!("COPY (SELECT l FROM (VALUES {}) v(n, l) ORDER BY n) TO '{}'", values.join(", "), hba.replace('\'', "''"));
        sqlx::raw_sql(&copy).execute(&mut c).await.expect("write pg_hba.conf");
        sqlx::raw_sql("SELECT pg_reload_conf()").execute(&mut c).await.expect("reload");
    }
    sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{password}'")).execute(&mut c).await.expect("role");
    let _ = c.close().await;
    // The reload is asynchronous: wait until a wrong password is refused.
    for _ in 0..100 {
        if sqlx::PgConnection::connect(&with_user(url, role, "not-it", "postgres")).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("pg_hba.conf reload did not take effect");
}

#[tokio::test]
async fn pg_bad_password_is_auth_failed_and_never_shown() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let role = unique("pwrole");
    let t = unique("guarded");
    pg_password_role(&url, &role, "Right-Pa55word").await;
    pg_exec(&url, &format!("CREATE TABLE {t} (id int); INSERT INTO {t} VALUES (1); GRANT SELECT ON {t} TO {role};")).await;

    let good = with_user(&url, &role, "Right-Pa55word", "postgres");
    let b = run_ok(ctx(json!({"credentials": good, "table": t}), Path::new("/"))).await.all();
    assert_eq!(b.num_rows(), 1);

    let secret = "Wr0ng-Secret-Pa55";
    let bad = with_user(&url, &role, secret, "postgres");
    let e = run_err(ctx(json!({"credentials": bad, "table": t}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "AUTH_FAILED"), "{e}");
    assert!(e.message.contains(&host_port(&url)) && e.message.contains(&t), "{e}");
    assert_no_secret(&e, secret);
}

#[tokio::test]
async fn connection_refused_is_transient_and_never_shows_the_password() {
    // Nothing listens on port 1 of the loopback: refused at once, no server needed.
    for url in ["postgresql://someone:Hunter2-Secret@127.0.0.1:1/db", "mysql://someone:Hunter2-Secret@127.0.0.1:1/db"] {
        let e = run_err(ctx(json!({"credentials": url, "table": "t"}), Path::new("/"))).await;
        assert_eq!((e.category, e.code.as_str()), (Category::Transient, "UNAVAILABLE"), "{url}: {e}");
        assert!(e.retryable);
        assert!(e.message.contains("127.0.0.1:1"), "{e}");
        assert_no_secret(&e, "Hunter2-Secret");
    }
}

#[tokio::test]
async fn bad_names_and_urls_are_configuration_errors() {
    for config in [
        json!({"credentials": "postgresql://u:pw-Secret-1@h/db", "table": "a\u{0}b"}),
        json!({"credentials": "oracle://u:pw-Secret-1@h/db", "table": "t"}),
        json!({"credentials": "sqlite://", "table": "t"}),
        json!({"credentials": "postgresql://u:pw-Secret-1@h/db"}),
    ] {
        let e = run_err(ctx(config.clone(), Path::new("/"))).await;
        assert_eq!(e.category, Category::Configuration, "{config}: {e}");
        assert_no_secret(&e, "pw-Secret-1");
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB / MySQL

#[tokio::test]
async fn mysql_every_mapped_type_round_trips() {
    let Some(url) = server("FLOE_TEST_MYSQL_URL") else { return };
    let t = unique("types");
    my_exec(
        &url,
        &format!(
            r#"CREATE TABLE {t} (
              id INT PRIMARY KEY, flag BOOLEAN, bit1 BIT(1), ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
              mi MEDIUMINT, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, yr YEAR,
              dec1 DECIMAL(12,3), dec_neg DECIMAL(5,2), dec_wide DECIMAL(50,4), f FLOAT, d DOUBLE,
              c CHAR(3), vc VARCHAR(20), tx TEXT, bin BINARY(2), vb VARBINARY(10), bl BLOB,
              dt DATE, tm TIME(6), dtm DATETIME(6), tsp TIMESTAMP(6) NULL, js JSON,
              en ENUM('sad','ok','happy'), st SET('a','b','c'), u UUID);
            SET time_zone = '+02:00';
            INSERT INTO {t} VALUES
              (1, TRUE, b'1', -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, 2024,
               123456789.125, -0.05, -12345678901234567890123456789012345678901234.5678, 1.5, -2.25,
               'ab', 'var', 'héllo ✓', x'00ff', x'10', x'cafe',
               '2024-02-29', '13:14:15.123456', '2024-01-02 03:04:05.654321', '2024-01-02 03:04:05.123456', '{{"a": [1, 2]}}',
               'happy', 'a,c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (3, FALSE, b'0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1901, -0.001, -999.99, 0, 0, 0, '', '', '', x'0000', x'', x'',
               '1000-01-01', '00:00:00', '1969-12-31 23:59:59.999999', '1970-01-01 02:00:01', '[]', 'sad', '', '00000000-0000-0000-0000-000000000000');"#
        ),
    )
    .await;
    let mut c = ctx(json!({"credentials": url, "table": t}), Path::new("/"));
    c.cursor_column = Some("id".into());
    let b = run_ok(c).await.all();
    assert_eq!(b.num_rows(), 3);
    let expect_types: &[(&str, DataType)] = &[
        ("id", DataType::Int32),
        ("flag", DataType::Boolean),
        ("bit1", DataType::Boolean),
        ("ti", DataType::Int16),
        ("tiu", DataType::Int16),
        ("si", DataType::Int16),
        ("siu", DataType::Int32),
        ("mi", DataType::Int32),
        ("i", DataType::Int32),
        ("iu", DataType::Int64),
        ("bi", DataType::Int64),
        ("biu", DataType::Decimal128(20, 0)),
        ("yr", DataType::Int16),
        ("dec1", DataType::Decimal128(12, 3)),
        ("dec_neg", DataType::Decimal128(5, 2)),
        ("dec_wide", DataType::Utf8),
        ("f", DataType::Float32),
        ("d", DataType::Float64),
        ("c", DataType::Utf8),
        ("vc", DataType::Utf8),
        ("tx", DataType::Utf8),
        ("bin", DataType::Binary),
        ("vb", DataType::Binary),
        ("bl", DataType::Binary),
        ("dt", DataType::Date32),
        ("tm", DataType::Time64(TimeUnit::Microsecond)),
        ("dtm", DataType::Timestamp(TimeUnit::Microsecond, None)),
        ("tsp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
        ("js", DataType::Utf8),
        ("en", DataType::Utf8),
        ("st", DataType::Utf8),
        ("u", DataType::Utf8),
    ];
    for (name, ty) in expect_types {
        assert_eq!(&dtype(&b, name), ty, "type of {name}");
    }
    for f in b.schema().fields().iter().filter(|f| f.name() != "id") {
        assert!(col(&b, f.name()).is_null(1), "{} of row 2 is null", f.name());
    }
    let bo = col(&b, "flag").as_boolean();
    assert!(bo.value(0) && !bo.value(2));
    let bit = col(&b, "bit1").as_boolean();
    assert!(bit.value(0) && !bit.value(2));
    assert_eq!(col(&b, "ti").as_primitive::<Int16Type>().value(0), -128);
    assert_eq!(col(&b, "tiu").as_primitive::<Int16Type>().value(0), 255);
    assert_eq!(col(&b, "si").as_primitive::<Int16Type>().value(0), -32768);
    assert_eq!(col(&b, "siu").as_primitive::<Int32Type>().value(0), 65535);
    assert_eq!(col(&b, "mi").as_primitive::<Int32Type>().value(0), -8_388_608);
    assert_eq!(col(&b, "i").as_primitive::<Int32Type>().value(0), i32::MIN);
    assert_eq!(col(&b, "iu").as_primitive::<Int64Type>().value(0), 4_294_967_295);
    assert_eq!(col(&b, "bi").as_primitive::<Int64Type>().value(0), i64::MIN);
    assert_eq!(col(&b, "biu").as_primitive::<Decimal128Type>().value(0), 18_446_744_073_709_551_615);
    assert_eq!(col(&b, "yr").as_primitive::<Int16Type>().value(0), 2024);
    let dec = col(&b, "dec1").as_primitive::<Decimal128Type>();
    assert_eq!((dec.value(0), dec.value(2)), (123_456_789_125, -1));
    let dec_neg = col(&b, "dec_neg").as_primitive::<Decimal128Type>();
    assert_eq!((dec_neg.value(0), dec_neg.value(2)), (-5, -99_999));
    assert_eq!(strs(col(&b, "dec_wide"))[0].as_deref(), Some("-12345678901234567890123456789012345678901234.5678"));
    assert_eq!(col(&b, "f").as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(col(&b, "d").as_primitive::<Float64Type>().value(0), -2.25);
    assert_eq!(strs(col(&b, "c"))[0].as_deref(), Some("ab"));
    assert_eq!(strs(col(&b, "tx")), vec![Some("héllo ✓".into()), None, Some(String::new())]);
    assert_eq!(col(&b, "bin").as_binary::<i32>().value(0), &[0x00, 0xff]);
    assert_eq!(col(&b, "bl").as_binary::<i32>().value(0), &[0xca, 0xfe]);
    let dt = col(&b, "dt").as_primitive::<Date32Type>();
    assert_eq!((dt.value(0), dt.value(2)), (days("2024-02-29"), days("1000-01-01")));
    let tm = col(&b, "tm").as_primitive::<Time64MicrosecondType>();
    assert_eq!((tm.value(0), tm.value(2)), ((13 * 3600 + 14 * 60 + 15) * 1_000_000 + 123_456, 0));
    let dtm = col(&b, "dtm").as_primitive::<TimestampMicrosecondType>();
    assert_eq!((dtm.value(0), dtm.value(2)), (micros("2024-01-02T03:04:05.654321Z"), -1));
    let tsp = col(&b, "tsp").as_primitive::<TimestampMicrosecondType>();
    // Inserted at +02:00; TIMESTAMP is stored in UTC and read in UTC.
    assert_eq!((tsp.value(0), tsp.value(2)), (micros("2024-01-02T01:04:05.123456Z"), 1_000_000));
    let js = strs(col(&b, "js"))[0].clone().unwrap_or_default();
    assert_eq!(serde_json::from_str::<Value>(&js).expect("json text"), json!({"a": [1, 2]}));
    assert_eq!(strs(col(&b, "en")), vec![Some("happy".into()), None, Some("sad".into())]);
    assert_eq!(strs(col(&b, "st")), vec![Some("a,c".into()), None, Some(String::new())]);
    assert_eq!(strs(col(&b, "u"))[0].as_deref(), Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
}

#[tokio::test]
async fn mysql_streams_in_chunks_and_pushes_the_cursor_down() {
    let Some(url) = server("FLOE_TEST_MYSQL_URL") else { return };
    let t = unique("events");
    my_exec(
        &url,
        &format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, amount DECIMAL(10,2), name VARCHAR(20));
             INSERT INTO {t} WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 49),
               s(n) AS (SELECT a.n * 50 + b.n + 1 FROM g a CROSS JOIN g b)
             SELECT n, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL n MINUTE, n / 100, CONCAT('n', n) FROM s;"
        ),
    )
    .await;
    let loaded = run_ok(ctx(json!({"credentials": url, "table": t, "chunk_size": 1000}), Path::new("/"))).await;
    let sizes: Vec<usize> = loaded.batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);

    let mut c = ctx(json!({"credentials": url, "table": t}), Path::new("/"));
    c.cursor_column = Some("updated_at".into());
    c.cursor_start = Some(json!("2024-01-02T09:20:00Z"));
    let b = run_ok(c).await.all();
    let ids: Vec<i64> = col(&b, "id").as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, (2001..=2500).collect::<Vec<_>>());

    for (column, start, expected) in [("id", json!(2490), 10usize), ("amount", json!(24.95), 5), ("updated_at", json!("2024-01-02T17:39:59.5Z"), 1)] {
        let mut c = ctx(json!({"credentials": url, "table": t}), Path::new("/"));
        c.cursor_column = Some(column.into());
        c.cursor_start = Some(start.clone());
        let rows: usize = run_ok(c).await.batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, expected, "cursor {column} > {start}");
    }
}

#[tokio::test]
async fn mysql_errors_are_classified() {
    let Some(url) = server("FLOE_TEST_MYSQL_URL") else { return };
    let t = unique("odd");
    let user = unique("pw");
    my_exec(&url, &format!("CREATE TABLE {t} (id INT, shape POINT, v BIT(4)); INSERT INTO {t} VALUES (1, POINT(1, 2), b'0101'); CREATE USER '{user}'@'%' IDENTIFIED BY 'Right-Pa55word'; GRANT SELECT ON *.* TO '{user}'@'%';")).await;

    let e = run_err(ctx(json!({"credentials": url, "table": t}), Path::new("/"))).await;
    assert_eq!(e.category, Category::Configuration, "{e}");
    assert!(e.message.contains("`shape`") && e.message.contains("point"), "{e}");
    let b = run_ok(ctx(json!({"credentials": url, "table": t, "type_overrides": {"shape": "string", "v": "string"}}), Path::new("/"))).await.all();
    assert_eq!(strs(col(&b, "shape")), vec![Some("POINT(1 2)".into())]);
    assert_eq!(strs(col(&b, "v")), vec![Some("5".into())]);

    let e = run_err(ctx(json!({"credentials": url, "table": "no_such_table_here"}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND"), "{e}");
    assert!(e.message.contains("no_such_table_here") && e.message.contains(&host_port(&url)), "{e}");
    let e = run_err(ctx(json!({"credentials": url, "schema": "no_such_db", "table": t}), Path::new("/"))).await;
    assert_eq!(e.code, "SOURCE_NOT_FOUND", "{e}");
    let e = run_err(ctx(json!({"credentials": format!("{}/no_such_db", url.rsplit_once('/').expect("db").0), "table": t}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND"), "{e}");

    let db = url.rsplit_once('/').expect("db").1;
    let good = with_user(&url, &user, "Right-Pa55word", db).replacen("mysql://", "mariadb://", 1);
    assert_eq!(run_ok(ctx(json!({"credentials": good, "table": t, "type_overrides": {"shape": "string", "v": "string"}}), Path::new("/"))).await.all().num_rows(), 1);
    let secret = "Wr0ng-Secret-Pa55";
    let e = run_err(ctx(json!({"credentials": with_user(&url, &user, secret, db), "table": t}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "AUTH_FAILED"), "{e}");
    assert!(e.message.contains(&host_port(&url)), "{e}");
    assert_no_secret(&e, secret);
}

// ---------------------------------------------------------------------------------------------
// SQLite

async fn sqlite_file(path: &Path, sql: &str) {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.expect("create sqlite");
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
}

#[tokio::test]
async fn sqlite_types_rejections_chunks_and_cursor() {
    let dir = tempfile::tempdir().expect("tmp");
    sqlite_file(
        &dir.path().join("shop.db"),
        r#"CREATE TABLE "my orders" (id INTEGER PRIMARY KEY, qty int, price DECIMAL(8,2), ratio REAL, ok BOOLEAN, name TEXT, raw BLOB,
                                    day DATE, at DATETIME, tz TIMESTAMPTZ, loose, doc JSON);
           INSERT INTO "my orders" VALUES
             (1, 3, '12.50', 0.5, 1, 'a', x'01ff', '2024-02-29', '2024-01-02 03:04:05.25', '2024-01-02T03:04:05+02:00', 7, '{"k": 1}'),
             (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             (3, 'many', -1.25, 2, 0, 'c', NULL, NULL, NULL, NULL, 'x', NULL),
             (4, -7, -0.01, -1.5, 0, 'd', NULL, '1969-12-31', '1970-01-01T00:00:00Z', NULL, 2.5, NULL);"#,
    )
    .await;
    // A relative path resolves against the spec's folder.
    let b = run_ok(ctx(json!({"credentials": "sqlite://shop.db", "table": "my orders"}), dir.path())).await;
    assert_eq!(b.outcome.rows_rejected, 1, "the row with text in an INTEGER column");
    assert!(b.outcome.rejected_samples[0].contains("row 3") && b.outcome.rejected_samples[0].contains("`qty`"), "{:?}", b.outcome.rejected_samples);
    let b = b.all();
    assert_eq!(col(&b, "id").as_primitive::<Int64Type>().values().to_vec(), vec![1, 2, 4]);
    assert_eq!(dtype(&b, "price"), DataType::Decimal128(8, 2));
    assert_eq!(col(&b, "price").as_primitive::<Decimal128Type>().iter().collect::<Vec<_>>(), vec![Some(1250), None, Some(-1)]);
    assert_eq!(col(&b, "ratio").as_primitive::<Float64Type>().value(2), -1.5);
    assert_eq!(col(&b, "ok").as_boolean().iter().collect::<Vec<_>>(), vec![Some(true), None, Some(false)]);
    assert_eq!(col(&b, "raw").as_binary::<i32>().value(0), &[0x01, 0xff]);
    assert_eq!(col(&b, "day").as_primitive::<Date32Type>().iter().collect::<Vec<_>>(), vec![Some(days("2024-02-29")), None, Some(-1)]);
    assert_eq!(dtype(&b, "at"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(col(&b, "at").as_primitive::<TimestampMicrosecondType>().iter().collect::<Vec<_>>(), vec![Some(micros("2024-01-02T03:04:05.25Z")), None, Some(0)]);
    assert_eq!(col(&b, "tz").as_primitive::<TimestampMicrosecondType>().value(0), micros("2024-01-02T01:04:05Z"));
    assert_eq!(strs(col(&b, "loose")), vec![Some("7".into()), None, Some("2.5".into())]);
    assert_eq!(strs(col(&b, "doc"))[0].as_deref(), Some(r#"{"k": 1}"#));

    // Chunks, and the cursor pushed down (absolute path this time).
    let abs = format!("sqlite://{}", dir.path().join("shop.db").display());
    let loaded = run_ok(ctx(json!({"credentials": abs, "table": "my orders", "chunk_size": 1}), Path::new("/"))).await;
    assert_eq!(loaded.batches.len(), 3);
    let mut c = ctx(json!({"credentials": abs, "table": "my orders"}), Path::new("/"));
    c.cursor_column = Some("at".into());
    c.cursor_start = Some(json!("1970-01-01T00:00:00Z"));
    let b = run_ok(c).await.all();
    // The engine keeps only rows strictly past the cursor; the pushdown may keep the equal one
    // (row 4), never a NULL cursor (row 2).
    let kept: Vec<i64> = col(&b, "id").as_primitive::<Int64Type>().values().to_vec();
    assert!(kept.ends_with(&[1]) && !kept.contains(&2), "{kept:?}");
    let mut c = ctx(json!({"credentials": abs, "table": "my orders"}), Path::new("/"));
    c.cursor_column = Some("id".into());
    c.cursor_start = Some(json!(1));
    assert_eq!(col(&run_ok(c).await.all(), "id").as_primitive::<Int64Type>().values().to_vec(), vec![2, 4]);

    let e = run_err(ctx(json!({"credentials": abs, "table": "nope"}), Path::new("/"))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND"), "{e}");
    let e = run_err(ctx(json!({"credentials": "sqlite://missing.db", "table": "t"}), dir.path())).await;
    assert_eq!(e.code, "SOURCE_NOT_FOUND", "{e}");
}

#[test]
fn redactor_scrubs_passwords_from_secrets_too() {
    // The URL usually comes from a secret: the engine's redactor knows it whole.
    let mut r = Redactor::default();
    r.add(&Secret::new("postgresql://u:abc-Secret@h/db".into()));
    assert_eq!(r.redact("x postgresql://u:abc-Secret@h/db y"), "x *** y");
}

/// Throughput and batch shape on a million rows (`cargo test --release --test sql_database --
/// --ignored --nocapture`); not part of the normal run.
#[tokio::test]
#[ignore]
async fn pg_million_rows() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let t = unique("million");
    pg_exec(
        &url,
        &format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, ts timestamptz, email text, amount numeric(12,2), payload jsonb);
             INSERT INTO {t} SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', 'user' || (g % 50000) || '@example.com',
               round((random() * 1000)::numeric, 2), jsonb_build_object('event', 'click', 'n', g)
             FROM generate_series(1, 1000000) g; ANALYZE {t};"
        ),
    )
    .await;
    let started = std::time::Instant::now();
    let loaded = run_ok(ctx(json!({"credentials": url, "table": t}), Path::new("/"))).await;
    let rows: usize = loaded.batches.iter().map(RecordBatch::num_rows).sum();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{rows} rows in {secs:.2} s ({:.0} rows/s), {} batches", rows as f64 / secs, loaded.batches.len());
    assert_eq!(rows, 1_000_000);
    pg_exec(&url, &format!("DROP TABLE {t}")).await;
}

// ---------------------------------------------------------------------------------------------
// End to end: `floe ingest run` → Iceberg → PyIceberg

fn e2e_spec(name: &str, table: &str, extra: &str) -> String {
    format!(
        "ingestion:\n  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: sql_database\n      write_disposition: merge\n      primary_key: id\n      incremental: {{cursor_column: updated_at}}\n      config: {{credentials: \"${{secrets.db_url}}\", table: \"{table}\"{extra}}}\n    secret_refs: {{db_url: source-db-url}}\n"
    )
}

fn e2e_project(name: &str, table: &str, url: &str) -> common::Project {
    let mut p = common::Project::new("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n", &e2e_spec(name, table, ""));
    p.env.push(("FLOE_SECRET_SOURCE_DB_URL".into(), url.into()));
    p
}

fn by_id(table: &Value) -> Vec<Value> {
    let mut rows = table["rows"].as_array().expect("rows").clone();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

#[tokio::test]
async fn pg_to_iceberg_types_incremental_and_merge() {
    let Some(url) = server("FLOE_TEST_PG_URL") else { return };
    let Some(py) = common::python() else { return };
    let t = unique("orders");
    pg_exec(
        &url,
        &format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, updated_at timestamptz NOT NULL, qty smallint, amount numeric(10,2), ratio double precision,
               ok boolean, name text, raw bytea, day date, at_time time, local_ts timestamp, doc jsonb, uid uuid, tags text[]);
             INSERT INTO {t} VALUES
               (1, '2024-01-01 00:00:00+00', 3, -12.50, 0.25, true, 'ada', '\\x01ff', '2024-02-29', '13:14:15.5', '2024-01-02 03:04:05', '{{\"k\": 1}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ARRAY['a', 'b']),
               (2, '2024-01-02 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ),
    )
    .await;
    let p = e2e_project("orders", &t, &url);
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
    let table = p.read(&py, "raw.orders");
    let types = common::types(&table);
    for (col, ty) in [("id", "long"), ("qty", "long"), ("updated_at", "timestamptz"), ("amount", "decimal(10, 2)"), ("ratio", "double"), ("ok", "boolean"), ("name", "string"), ("raw", "binary"), ("day", "date"), ("at_time", "time"), ("local_ts", "timestamp"), ("doc", "string"), ("uid", "string"), ("tags", "list<string>")] {
        assert!(types.get(col).is_some_and(|t| t.starts_with(ty)), "{col}: {:?} (all: {types:?})", types.get(col));
    }
    let rows = by_id(&table);
    let r = &rows[0];
    assert_eq!((r["qty"].clone(), r["amount"].clone(), r["ratio"].clone(), r["ok"].clone()), (json!(3), json!("-12.50"), json!(0.25), json!(true)));
    assert_eq!((r["name"].clone(), r["raw"].clone(), r["day"].clone(), r["at_time"].clone()), (json!("ada"), json!("01ff"), json!("2024-02-29"), json!("13:14:15.500000")));
    assert_eq!((r["local_ts"].clone(), r["updated_at"].clone()), (json!("2024-01-02T03:04:05"), json!("2024-01-01T00:00:00+00:00")));
    assert_eq!((r["doc"].clone(), r["uid"].clone(), r["tags"].clone()), (json!("{\"k\": 1}"), json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), json!(["a", "b"])));
    assert!(rows[1]["amount"].is_null() && rows[1]["tags"].is_null());

    // An update and an insert: only those two load; the merge keeps one row per id.
    pg_exec(&url, &format!("UPDATE {t} SET name = 'grace', updated_at = '2024-01-03 00:00:00+00' WHERE id = 1; INSERT INTO {t} (id, updated_at, name) VALUES (3, '2024-01-04 00:00:00+00', 'new');")).await;
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
    let rows = by_id(&p.read(&py, "raw.orders"));
    let ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(rows[0]["name"], "grace");
    // Nothing new: nothing loads.
    let run = p.run(&[]);
    assert_eq!(run.result("orders")["rows_loaded"], 0, "{}", run.stderr);
}

#[tokio::test]
async fn mysql_to_iceberg_types_incremental_and_merge() {
    let Some(url) = server("FLOE_TEST_MYSQL_URL") else { return };
    let Some(py) = common::python() else { return };
    let t = unique("orders");
    my_exec(
        &url,
        &format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, updated_at TIMESTAMP(6) NOT NULL, qty TINYINT, big BIGINT UNSIGNED, amount DECIMAL(10,2), ratio DOUBLE,
               ok BOOLEAN, name VARCHAR(20), raw VARBINARY(4), day DATE, at_time TIME(6), local_ts DATETIME(6), doc JSON, mood ENUM('sad','ok'));
             INSERT INTO {t} VALUES
               (1, '2024-01-01 00:00:00', 3, 18446744073709551615, -12.50, 0.25, TRUE, 'ada', x'01ff', '2024-02-29', '13:14:15.5', '2024-01-02 03:04:05', '{{\"k\": 1}}', 'ok'),
               (2, '2024-01-02 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ),
    )
    .await;
    let p = e2e_project("orders", &t, &url);
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
    let table = p.read(&py, "raw.orders");
    let types = common::types(&table);
    for (col, ty) in [("updated_at", "timestamptz"), ("big", "decimal(20, 0)"), ("amount", "decimal(10, 2)"), ("ok", "boolean"), ("raw", "binary"), ("day", "date"), ("at_time", "time"), ("local_ts", "timestamp"), ("mood", "string")] {
        assert!(types.get(col).is_some_and(|t| t.starts_with(ty)), "{col}: {:?} (all: {types:?})", types.get(col));
    }
    let rows = by_id(&table);
    let r = &rows[0];
    assert_eq!((r["qty"].clone(), r["big"].clone(), r["amount"].clone(), r["ok"].clone()), (json!(3), json!("18446744073709551615"), json!("-12.50"), json!(true)));
    assert_eq!((r["raw"].clone(), r["day"].clone(), r["at_time"].clone(), r["local_ts"].clone()), (json!("01ff"), json!("2024-02-29"), json!("13:14:15.500000"), json!("2024-01-02T03:04:05")));
    assert_eq!((r["updated_at"].clone(), r["mood"].clone()), (json!("2024-01-01T00:00:00+00:00"), json!("ok")));

    my_exec(&url, &format!("UPDATE {t} SET name = 'grace', updated_at = '2024-01-03 00:00:00' WHERE id = 1; INSERT INTO {t} (id, updated_at, name) VALUES (3, '2024-01-04 00:00:00', 'new');")).await;
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("orders")["rows_loaded"], 2);
    let rows = by_id(&p.read(&py, "raw.orders"));
    assert_eq!(rows.iter().filter_map(|r| r["id"].as_i64()).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(rows[0]["name"], "grace");
}

#[test]
fn sqlite_to_iceberg_without_a_server() {
    let Some(py) = common::python() else { return };
    let p = common::Project::new(
        "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n",
        "ingestion:\n  - name: notes\n    type: dlt\n    destination: raw.notes\n    dlt:\n      source: dlt.sources.sql_database\n      resource: notes\n      config: {credentials: \"sqlite://data/app.db\"}\n",
    );
    std::fs::create_dir_all(p.path("data")).expect("mkdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sqlite_file(&p.path("data/app.db"), "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, price DECIMAL(6,2), at DATETIME); INSERT INTO notes VALUES (1, 'hi', 1.5, '2024-01-01 10:00:00'), (2, NULL, NULL, NULL);"));
    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("notes")["rows_loaded"], 2);
    let rows = by_id(&p.read(&py, "raw.notes"));
    assert_eq!((rows[0]["body"].clone(), rows[0]["price"].clone(), rows[0]["at"].clone()), (json!("hi"), json!("1.50"), json!("2024-01-01T10:00:00")));
}
