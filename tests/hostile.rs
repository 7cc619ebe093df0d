//! Hostile configuration: names and patterns written to get floe to touch what it must not.
//! Table and namespace names cannot leave the warehouse (even in a hand-edited artifact), SQL
//! identifiers cannot inject SQL (real SQLite database), `file_glob` and links cannot read
//! outside `bucket_url`, https certificates are verified (a real self-signed TLS server), and
//! credentials headed for a plain-http endpoint draw a warning at compile time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::Project;
use serde_json::Value;

const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n";

fn fs_entry(name: &str, bucket: &str, glob: &str) -> String {
    format!("  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: filesystem\n      config: {{bucket_url: {bucket}, file_glob: \"{glob}\"}}\n")
}

fn rows(n: std::ops::Range<u32>, tag: &str) -> String {
    n.map(|i| format!("{{\"id\": {i}, \"tag\": \"{tag}\"}}\n")).collect()
}

/// Compile to `target/compiled_artifacts.json`, change it with `edit`, write it back.
fn edited_artifact(p: &Project, edit: impl FnOnce(&mut Value)) -> String {
    let c = p.floe(&["compile"]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let path = p.path("target/compiled_artifacts.json");
    let mut artifact: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("artifact")).expect("artifact JSON");
    edit(&mut artifact);
    std::fs::write(&path, serde_json::to_string_pretty(&artifact).expect("JSON")).expect("write artifact");
    path.display().to_string()
}

#[test]
fn file_glob_cannot_reach_outside_bucket_url() {
    let p = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("events", "data/in", "../*.jsonl")));
    p.write("data/in/a.jsonl", rows(0..3, "inside"));
    p.write("data/secret.jsonl", rows(100..105, "SECRET"));

    // At compile time: named, with file, line and column.
    let c = p.floe(&["compile"]);
    assert_eq!(c.code, 78, "{}", c.stderr);
    assert!(c.stderr.contains("floe.yaml:7:") && c.stderr.contains("file_glob") && c.stderr.contains("reaches outside bucket_url"), "{}", c.stderr);
    for glob in ["/etc/*", "sub/../../*.jsonl"] {
        let p2 = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("events", "data/in", glob)));
        let c = p2.floe(&["compile"]);
        assert_eq!(c.code, 78, "{glob}: {}", c.stderr);
        assert!(c.stderr.contains("reaches outside bucket_url"), "{glob}: {}", c.stderr);
    }

    // In a hand-edited artifact, which skips the compiler's checks: refused at run time.
    let good = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("events", "data/in", "*.jsonl")));
    good.write("data/in/a.jsonl", rows(0..3, "inside"));
    good.write("data/secret.jsonl", rows(100..105, "SECRET"));
    let artifact = edited_artifact(&good, |a| a["ingestion"][0]["source"]["config"]["file_glob"] = "../*.jsonl".into());
    let run = good.run(&["--artifact", &artifact]);
    assert_eq!(run.code, 78, "{}\n{}", run.stdout, run.stderr);
    let r = run.result("events");
    assert_eq!((r["error"]["category"].as_str(), r["error"]["code"].as_str()), (Some("CONFIGURATION"), Some("INVALID_CONFIG")), "{r}");
    assert_eq!(r["rows_loaded"], 0);
}

#[test]
fn a_link_out_of_bucket_url_is_skipped_and_named() {
    let p = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("events", "data/in", "**/*.jsonl")));
    p.write("data/in/a.jsonl", rows(0..3, "inside"));
    p.write("data/secret.jsonl", rows(100..105, "SECRET"));
    p.write("elsewhere/more/b.jsonl", rows(200..202, "SECRET"));
    std::os::unix::fs::symlink(p.path("data/secret.jsonl"), p.path("data/in/link.jsonl")).expect("symlink");
    std::os::unix::fs::symlink("../../elsewhere/more", p.path("data/in/folder")).expect("symlink");

    let run = p.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("events")["rows_loaded"], 3, "only the file inside bucket_url loads");
    assert!(run.stderr.contains("link.jsonl is a link that resolves outside bucket_url"), "the skipped link is named: {}", run.stderr);
    if let Some(py) = common::python() {
        let table = p.read(&py, "raw.events");
        let tags: Vec<Value> = common::column(&table, "tag");
        assert_eq!(tags.len(), 3);
        assert!(tags.iter().all(|t| t == "inside"), "{tags:?}");
    }
}

#[test]
fn table_and_namespace_names_cannot_leave_the_warehouse() {
    // The compiler refuses them, with the key's position.
    for dest in ["../etc.passwd", "raw.a/b", "/tmp.x", "raw.t;drop"] {
        let spec = format!("ingestion:\n  - name: events\n    type: dlt\n    destination: \"{dest}\"\n    dlt:\n      source: filesystem\n      config: {{bucket_url: data}}\n");
        let p = Project::new(MANIFEST, &spec);
        let c = p.floe(&["compile"]);
        assert_eq!(c.code, 78, "{dest}: {}", c.stderr);
        assert!(c.stderr.contains("floe.yaml:4:") && c.stderr.contains("invalid destination"), "{dest}: {}", c.stderr);
    }
    // A hand-edited artifact reaches the destination layer, which refuses them too and
    // creates nothing anywhere.
    let probe = format!("floe_escape_probe_{}", std::process::id());
    for dest in [format!("/tmp/{probe}.t"), format!("raw.{probe}/x"), "raw.%2e%2e".to_string(), format!("raw.{probe}\n")] {
        let p = Project::new(MANIFEST, &format!("ingestion:\n{}", fs_entry("events", "data", "*.jsonl")));
        p.write("data/a.jsonl", rows(0..3, "x"));
        let artifact = edited_artifact(&p, |a| a["ingestion"][0]["destination"] = dest.clone().into());
        let run = p.run(&["--artifact", &artifact]);
        assert_eq!(run.code, 78, "{dest:?}: {}\n{}", run.stdout, run.stderr);
        let r = run.result("events");
        assert_eq!(r["error"]["code"], "DESTINATION_CONFIG_ERROR", "{dest:?}: {r}");
        assert!(!Path::new(&format!("/tmp/{probe}")).exists(), "{dest:?} created a folder outside the warehouse");
        let warehouse = p.path(".floe/warehouse");
        let stray: Vec<_> = walk(&warehouse).into_iter().filter(|f| f.contains(&probe) || f.contains("%2e")).collect();
        assert!(stray.is_empty(), "{dest:?}: {stray:?}");
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

async fn sqlite(path: &Path, sql: &str) -> Vec<i64> {
    use sqlx::Connection;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.expect("open sqlite");
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM keep ORDER BY id").fetch_all(&mut c).await.expect("keep is still there");
    let _ = c.close().await;
    ids.into_iter().map(|(i,)| i).collect()
}

#[test]
fn sql_identifiers_cannot_inject_sql() {
    let entry = |name: &str, config: &str| format!("  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: sql_database\n      config: {config}\n");
    let spec = format!(
        "ingestion:\n{}{}{}{}",
        entry("drop_table", "{credentials: \"sqlite://data/app.db\", table: 'keep\"; DROP TABLE keep; --'}"),
        entry("drop_schema", "{credentials: \"sqlite://data/app.db\", schema: 'main\".\"keep\"; DELETE FROM keep; --', table: keep}"),
        entry(
            "drop_cursor",
            "{credentials: \"sqlite://data/app.db\", table: keep}\n      incremental: {cursor_column: 'id\" > 0; DELETE FROM keep; --', initial_value: 0}",
        ),
        entry("weird", "{credentials: \"sqlite://data/app.db\", table: 'we\"ird; name'}"),
    );
    let p = Project::new(MANIFEST, &spec);
    std::fs::create_dir_all(p.path("data")).expect("mkdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = p.path("data/app.db");
    let before = rt.block_on(sqlite(&db, "CREATE TABLE keep (id INTEGER PRIMARY KEY); INSERT INTO keep VALUES (1), (2), (3); CREATE TABLE \"we\"\"ird; name\" (id INTEGER, v TEXT); INSERT INTO \"we\"\"ird; name\" VALUES (7, 'a'), (8, 'b');"));
    assert_eq!(before, vec![1, 2, 3]);

    let run = p.run(&[]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for name in ["drop_table", "drop_schema", "drop_cursor"] {
        let r = run.result(name);
        assert_eq!(r["success"], false, "{name}: the name was taken literally, so no such object exists: {r}");
        assert_eq!(r["rows_loaded"], 0, "{name}: {r}");
    }
    assert_eq!(run.result("drop_table")["error"]["code"], "SOURCE_NOT_FOUND");
    // A strange but real name is quoted, not refused.
    assert_eq!(run.result("weird")["rows_loaded"], 2, "{}", run.stdout);
    let after = rt.block_on(sqlite(&db, "SELECT 1"));
    assert_eq!(after, vec![1, 2, 3], "the database is untouched");
}

/// A TLS server with a freshly generated self-signed certificate; prints each request line
/// (and its Authorization header) to its stdout, which the test reads.
struct TlsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start(python: &str) -> TlsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is needed to make a self-signed certificate");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("REQUEST", self.path, self.headers.get("Authorization"), flush=True)
        body = b'{"items": [{"id": 1}]}'
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
"#;
        let mut child = Command::new(python).arg("-c").arg(script).arg(&cert).arg(&key).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("python");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("port line");
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("server said {line:?}"));
        TlsServer { child, port, _dir: dir }
    }

    /// Everything the server printed after its port line (stops it first).
    fn requests(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
        }
        out
    }
}

#[test]
fn https_certificates_are_verified_by_default() {
    let Some(py) = common::python() else { return };
    let server = TlsServer::start(&py);
    let canary = "CaNaRy-tls-9c1e";
    let spec = format!(
        "ingestion:\n  - name: items\n    type: dlt\n    destination: raw.items\n    dlt:\n      source: rest_api\n      config: {{client: {{base_url: \"https://127.0.0.1:{}\", auth: {{type: bearer, token: \"${{secrets.tok}}\"}}, paginator: single_page, request_max_attempts: 3}}, resources: [{{name: items, endpoint: {{path: items, data_selector: items}}}}]}}\n    secret_refs: {{tok: api-token}}\n",
        server.port
    );
    let mut p = Project::new(MANIFEST, &spec);
    p.env.push(("FLOE_SECRET_API_TOKEN".into(), canary.into()));
    let run = p.run(&[]);
    let requests = server.requests();
    assert_eq!(run.code, 69, "a self-signed certificate must be refused:\n{}\n{}", run.stdout, run.stderr);
    let r = run.result("items");
    assert_eq!((r["error"]["category"].as_str(), r["error"]["code"].as_str()), (Some("PERMANENT"), Some("TLS_CERTIFICATE")), "{r}");
    assert_eq!(r["attempts"], 1, "retrying cannot fix a certificate: {r}");
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("certificate")), "{r}");
    assert!(!requests.contains("REQUEST"), "no request (and so no token) may reach an unverified server: {requests}");
    assert!(!run.stdout.contains(canary) && !run.stderr.contains(canary));
}

#[test]
fn credentials_for_a_plain_http_endpoint_draw_a_warning() {
    let rest = |base: &str| {
        format!(
            "ingestion:\n  - name: items\n    type: dlt\n    destination: raw.items\n    dlt:\n      source: rest_api\n      config:\n        client:\n          base_url: \"{base}\"\n          auth: {{type: bearer, token: \"${{secrets.tok}}\"}}\n        resources: [items]\n    secret_refs: {{tok: api-token}}\n"
        )
    };
    let p = Project::new(MANIFEST, &rest("http://api.example.com/v1"));
    let c = p.floe(&["compile"]);
    assert_eq!(c.code, 0, "a warning, not an error: {}", c.stderr);
    assert!(c.stderr.contains("warning") && c.stderr.contains("plain http to api.example.com") && c.stderr.contains("floe.yaml:9:"), "{}", c.stderr);
    assert!(c.stderr.contains("https://api.example.com/v1"), "the hint shows the https URL: {}", c.stderr);
    for quiet in ["https://api.example.com/v1", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
        let c = Project::new(MANIFEST, &rest(quiet)).floe(&["compile"]);
        assert_eq!(c.code, 0, "{quiet}: {}", c.stderr);
        assert!(!c.stderr.contains("plain http"), "{quiet}: {}", c.stderr);
    }
    // Without credentials there is nothing to protect.
    let open = Project::new(MANIFEST, "ingestion:\n  - name: items\n    type: dlt\n    destination: raw.items\n    dlt:\n      source: rest_api\n      config: {client: {base_url: \"http://api.example.com\"}, resources: [items]}\n");
    let c = open.floe(&["compile"]);
    assert!(c.code == 0 && !c.stderr.contains("plain http"), "{}", c.stderr);
    // The manifest's endpoints: Airbyte always sends credentials.
    let manifest = "plugins:\n  ingestion:\n    - type: airbyte\n      config: {workspace_url: \"http://airbyte.internal:8000/api/public\", connection_secret_ref: airbyte-token}\n";
    let spec = "ingestion:\n  - name: sync\n    type: airbyte\n    destination: raw.sync\n    airbyte: {connection_id: 00000000-0000-0000-0000-000000000001}\n";
    let c = Project::new(manifest, spec).floe(&["compile"]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stderr.contains("Airbyte API credentials would be sent over plain http to airbyte.internal") && c.stderr.contains("manifest.yaml:4:"), "{}", c.stderr);
}
