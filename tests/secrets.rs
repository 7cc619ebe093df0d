//! Secrets never leak: a canary secret threaded through every error path we can reach (REST
//! auth failures, unreachable and malformed URLs, HTTP errors echoing headers and queries,
//! OAuth token failures, PostgreSQL connection errors, S3 and REST-catalog wrong keys, Airbyte
//! auth failures, dry runs, `validate --secrets`, `compile`), always with `--log-format json
//! -vv` so the most verbose logs are searched too. The canary must not appear in stdout (the
//! report), stderr (logs), the compiled artifact or any table floe wrote.

mod common;
#[path = "support/http/mod.rs"]
mod http;
#[path = "support/airbyte/mod.rs"]
mod airbyte_double;

use common::{Project, Run};
use serde_json::{json, Value};

const CANARY: &str = "CaNaRy-5ecret-7f9a2b41";
const MANIFEST: &str = "plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n";

/// Also the URL-encoded form (a secret in a query string or userinfo is percent-encoded).
fn leaks(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains(&CANARY.to_ascii_lowercase()) || lower.contains("5ecret-7f9a2b41")
}

fn assert_no_canary(what: &str, run: &Run) {
    assert!(!leaks(&run.stdout), "{what}: the canary is on stdout:\n{}", run.stdout);
    assert!(!leaks(&run.stderr), "{what}: the canary is on stderr:\n{}", run.stderr);
}

/// `floe --log-format json -vv ingest run --output json ARGS`.
fn run_verbose(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec!["--log-format", "json", "-vv", "ingest", "run", "--output", "json"];
    args.extend_from_slice(extra);
    p.floe(&args)
}

/// Every file under the project's `.floe` (catalog database, metadata, Parquet): no canary.
fn assert_no_canary_in_files(p: &Project) {
    let mut stack = vec![p.path(".floe")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(!leaks(&String::from_utf8_lossy(&bytes)), "the canary is in {}", path.display());
            }
        }
    }
}

fn entry(name: &str, source: &str, config: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    type: dlt\n    destination: raw.{name}\n    dlt:\n      source: {source}\n      config: {config}\n    secret_refs: {{tok: api-token}}\n{extra}"
    )
}

fn rest_config(base: &str, path: &str, auth: &str) -> String {
    format!("{{client: {{base_url: \"{base}\", request_max_attempts: 1, timeout_seconds: 5, paginator: single_page, auth: {auth}}}, resources: [{{name: items, endpoint: {{path: {path}, data_selector: items}}}}]}}")
}

#[test]
fn rest_api_error_paths_never_show_the_secret() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    // A hostile API that echoes everything it receives (headers, query, body) in its errors.
    let server = rt.block_on(http::Server::start(|req: &http::Req| {
        let echo = format!("you sent {:?} {:?} {}", req.headers, req.query, String::from_utf8_lossy(&req.body));
        match req.path.as_str() {
            "/ok" => http::Resp::json(json!({"items": [{"id": 1, "note": "fine"}]})),
            "/denied" => http::Resp::text(401, &echo).header("www-authenticate", &format!("Bearer realm=\"{echo}\"")),
            "/forbidden" => http::Resp::text(403, &echo),
            "/boom" => http::Resp::text(500, &echo),
            "/gone" => http::Resp::text(404, &echo),
            "/limited" => http::Resp::text(429, &echo).header("retry-after", "3600"),
            "/notjson" => http::Resp::text(200, &format!("<html>{echo}</html>")),
            "/noitems" => http::Resp::json(json!({"echo": echo, "other": []})),
            "/token" => http::Resp::text(401, &format!("{{\"error\": \"invalid_client\", \"detail\": {echo:?}}}")),
            _ => http::Resp::text(404, "no"),
        }
    }));
    let b = &server.base;
    let bearer = "{type: bearer, token: \"${secrets.tok}\"}";
    let query_key = "{type: api_key, name: api_key, api_key: \"${secrets.tok}\", location: query}";
    let header_key = "{type: api_key, name: X-Api-Key, api_key: \"${secrets.tok}\"}";
    let basic = "{type: http_basic, username: u, password: \"${secrets.tok}\"}";
    let oauth = format!("{{type: oauth2_client_credentials, access_token_url: \"{b}/token\", client_id: cid, client_secret: \"${{secrets.tok}}\"}}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("ok_bearer", rest_config(b, "ok", bearer), "ok"),
        ("denied_bearer", rest_config(b, "denied", bearer), "AUTH_FAILED"),
        ("denied_basic", rest_config(b, "denied", basic), "AUTH_FAILED"),
        ("forbidden_header_key", rest_config(b, "forbidden", header_key), "AUTH_FAILED"),
        ("boom_query_key", rest_config(b, "boom", query_key), "TRANSIENT"),
        ("gone_query_key", rest_config(b, "gone", query_key), "SOURCE_NOT_FOUND"),
        ("limited_query_key", rest_config(b, "limited", query_key), "RATE_LIMITED"),
        ("notjson_query_key", rest_config(b, "notjson", query_key), "SOURCE_ERROR"),
        ("noitems_query_key", rest_config(b, "noitems", query_key), "INVALID_CONFIG"),
        ("oauth_refused", rest_config(b, "ok", &oauth), "AUTH_FAILED"),
        // Unreachable host with the secret in the query and in the URL's userinfo.
        ("unreachable_query_key", rest_config("http://127.0.0.1:1", "items", query_key), "TRANSIENT"),
        ("unreachable_userinfo", rest_config("http://user:${secrets.tok}@127.0.0.1:1", "items", "{type: bearer, token: x}"), "any"),
        // A malformed URL built from the secret.
        ("bad_url", rest_config("http://[${secrets.tok}", "items", bearer), "any"),
        ("bad_scheme", rest_config("${secrets.tok}://host", "items", bearer), "any"),
    ];
    let spec = format!("ingestion:\n{}", cases.iter().map(|(n, c, _)| entry(n, "rest_api", c, "")).collect::<String>());
    let mut p = Project::new(MANIFEST, &spec);
    p.env.push(("FLOE_SECRET_API_TOKEN".into(), CANARY.into()));

    let run = run_verbose(&p, &[]);
    assert_no_canary("rest run", &run);
    assert!(run.code != 0 && run.code != 1, "exit {}: {}", run.code, run.stderr);
    for (name, _, expect) in &cases {
        let r = run.result(name);
        match *expect {
            "ok" => assert_eq!(r["success"], true, "{name}: {r}"),
            "any" => assert_eq!(r["success"], false, "{name}: {r}"),
            "TRANSIENT" => assert_eq!(r["error"]["category"], "TRANSIENT", "{name}: {r}"),
            code => assert_eq!(r["error"]["code"], code, "{name}: {r}"),
        }
    }
    // The artifact, and every table / catalog file floe wrote.
    let compiled = p.floe(&["--log-format", "json", "-vv", "compile"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert_no_canary("compile", &compiled);
    let artifact = std::fs::read_to_string(p.path("target/compiled_artifacts.json")).expect("artifact");
    assert!(!leaks(&artifact) && artifact.contains("api-token"));
    assert_no_canary_in_files(&p);
    if let Some(py) = common::python() {
        let t = p.read(&py, "raw.ok_bearer");
        assert!(!leaks(&t.to_string()));
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    }
    // The same through an artifact, dry run, validate --secrets.
    let run = run_verbose(&p, &["--artifact", "target/compiled_artifacts.json", "--select", "denied_*"]);
    assert_eq!(run.code, 69);
    assert_no_canary("artifact run", &run);
    let run = run_verbose(&p, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_canary("dry run", &run);
    let run = p.floe(&["--log-format", "json", "-vv", "validate", "--secrets"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_canary("validate --secrets", &run);
    let run = p.floe(&["--log-format", "json", "-vv", "ingest", "state", "--output", "json"]);
    assert_no_canary("ingest state", &run);
    // The secret from a file instead of the environment.
    p.env.clear();
    p.write("secrets/api-token", format!("{CANARY}\n"));
    let run = run_verbose(&p, &["--secrets-dir", "secrets", "--select", "denied_bearer", "--select", "boom_query_key"]);
    assert_eq!(run.code, 69, "{}", run.stderr);
    assert_no_canary("secrets dir", &run);
    drop(server);
}

#[test]
fn postgres_connection_errors_never_show_the_password() {
    let Some(url) = std::env::var("FLOE_TEST_PG_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(!common::services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_PG_URL is not set");
        return;
    };
    let rest = url.split_once("://").expect("url").1;
    let host = rest.split('/').next().unwrap_or(rest).rsplit('@').next().unwrap_or(rest).to_string();
    let with = |host: &str, db: &str| format!("{{credentials: \"postgresql://postgres:${{secrets.tok}}@{host}/{db}\", table: t_missing}}");
    let cases = [
        ("unknown_db", with(&host, "no_such_db_canary")),
        ("unknown_table", with(&host, "postgres")),
        ("refused", with("127.0.0.1:1", "postgres")),
        ("bad_host", with("no-such-host.invalid:5432", "postgres")),
        ("mysql_refused", "{credentials: \"mysql://root:${secrets.tok}@127.0.0.1:1/x\", table: t}".to_string()),
        ("garbage_url", "{credentials: \"postgresql://postgres:${secrets.tok}@[::1/x\", table: t}".to_string()),
    ];
    let spec = format!("ingestion:\n{}", cases.iter().map(|(n, c)| entry(n, "sql_database", c, "")).collect::<String>());
    let mut p = Project::new(MANIFEST, &spec);
    p.env.push(("FLOE_SECRET_API_TOKEN".into(), CANARY.into()));
    let run = run_verbose(&p, &[]);
    assert_no_canary("postgres", &run);
    for (name, _) in &cases {
        let r = run.result(name);
        assert_eq!(r["success"], false, "{name}: {r}");
        assert!(r["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(run.result("unknown_table")["error"]["code"], "SOURCE_NOT_FOUND");
    assert_eq!(run.result("refused")["error"]["category"], "TRANSIENT");
    assert_no_canary_in_files(&p);
}

#[test]
fn s3_and_catalog_wrong_keys_never_show_the_secret() {
    if !common::s3_available() {
        return;
    }
    let rest_uri = std::env::var("FLOE_TEST_REST_URI").unwrap_or_else(|_| "http://127.0.0.1:8181".into());
    // The source on S3 with a wrong secret key (the embedded catalog stays local).
    let manifest = format!(
        "{MANIFEST}  storage:\n    type: s3\n    config: {{endpoint: \"{}\", region: us-east-1, path_style_access: true}}\n    connection_secret_ref: s3-credentials\n",
        common::S3_ENDPOINT
    );
    let spec = "ingestion:\n  - name: s3src\n    type: dlt\n    destination: raw.s3src\n    dlt:\n      source: filesystem\n      config: {bucket_url: \"s3://test-bucket/floe-canary\", file_glob: \"*.jsonl\"}\n";
    let mut p = Project::new(&manifest, spec);
    p.env.push(("FLOE_SECRET_S3_CREDENTIALS".into(), format!("minioadmin:{CANARY}")));
    let run = run_verbose(&p, &[]);
    assert_no_canary("s3 wrong key", &run);
    assert_eq!(run.result("s3src")["success"], false, "{}", run.stdout);
    assert!(run.code != 0 && run.code != 1);

    // The REST catalog with a wrong credential, and S3 storage with a wrong key.
    let manifest = format!(
        "{MANIFEST}  catalog:\n    type: rest\n    config: {{name: floe, uri: \"{rest_uri}\", warehouse: warehouse, credential_secret_ref: catalog-credentials}}\n  storage:\n    type: s3\n    config: {{endpoint: \"{}\", region: us-east-1, path_style_access: true}}\n    connection_secret_ref: s3-credentials\n",
        common::S3_ENDPOINT
    );
    let spec = "ingestion:\n  - name: files\n    type: dlt\n    destination: canary_ns.files\n    dlt:\n      source: filesystem\n      config: {bucket_url: data, file_glob: \"*.jsonl\"}\n";
    let mut p = Project::new(&manifest, spec);
    p.write("data/a.jsonl", "{\"id\": 1}\n");
    p.env.push(("FLOE_SECRET_CATALOG_CREDENTIALS".into(), format!("minioadmin:{CANARY}")));
    p.env.push(("FLOE_SECRET_S3_CREDENTIALS".into(), format!("minioadmin:{CANARY}")));
    let run = run_verbose(&p, &[]);
    assert_no_canary("rest catalog wrong credential", &run);
    assert_eq!(run.result("files")["success"], false, "{}", run.stdout);
    let run = run_verbose(&p, &["--dry-run"]);
    assert_no_canary("rest catalog dry run", &run);
    let run = p.floe(&["--log-format", "json", "-vv", "ingest", "state"]);
    assert_no_canary("rest catalog state", &run);
    let run = p.floe(&["--log-format", "json", "-vv", "maintenance", "remove-orphans", "--older-than", "0"]);
    assert_no_canary("rest catalog maintenance", &run);
}

#[test]
fn airbyte_auth_failure_never_shows_the_token() {
    let double = airbyte_double::Double::start("the-right-token");
    for api in ["public", "config"] {
        let url = if api == "public" { double.public_url() } else { double.config_url() };
        let manifest = format!(
            "plugins:\n  ingestion:\n    - type: dlt\n    - type: airbyte\n      config: {{workspace_url: \"{url}\", api: {api}, connection_secret_ref: airbyte-token, poll_interval_seconds: 0.05, timeout_seconds: 10}}\n      retry: {{max_attempts: 1}}\n"
        );
        let spec = "ingestion:\n  - name: accounts\n    type: airbyte\n    destination: bronze.accounts\n    airbyte: {connection_id: \"9924bcd0-99be-453d-ba47-c2c9766f7da5\"}\n";
        let mut p = Project::new(&manifest, spec);
        p.env.push(("FLOE_SECRET_AIRBYTE_TOKEN".into(), CANARY.into()));
        let run = run_verbose(&p, &[]);
        assert_no_canary("airbyte", &run);
        let r = run.result("accounts");
        assert_eq!((r["error"]["category"].as_str(), r["error"]["code"].as_str()), (Some("PERMANENT"), Some("AUTH_FAILED")), "{api}: {r}");
        assert_eq!(run.code, 69);
        let run = run_verbose(&p, &["--dry-run"]);
        assert_no_canary("airbyte dry run", &run);
        // client_credentials: the secret holds ID:SECRET.
        let manifest = manifest.replace("connection_secret_ref: airbyte-token", "auth: client_credentials, connection_secret_ref: airbyte-token");
        let mut p = Project::new(&manifest, spec);
        p.env.push(("FLOE_SECRET_AIRBYTE_TOKEN".into(), format!("client:{CANARY}")));
        let run = run_verbose(&p, &[]);
        assert_no_canary("airbyte client credentials", &run);
        assert_eq!(run.result("accounts")["success"], false);
    }
    let _: Value = json!(null);
}
