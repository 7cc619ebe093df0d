//! The `github` source against a local server that mimics GitHub's REST API: Link-header
//! pagination with absolute URLs, `since` on issues, newest-first pull requests, token auth,
//! GitHub Enterprise base URLs, and GitHub's error shapes (404, 401, 403 rate limit).

mod common;
#[path = "support/http/mod.rs"]
mod http;

use std::sync::Arc;

use arrow_array::RecordBatch;
use floe::error::{Category, IngestionError};
use floe::secrets::Redactor;
use floe::sources::{BatchSink, Progress, SourceContext};
use http::{Req, Resp, Server};
use serde_json::{json, Value};

const TOKEN: &str = "ghp_canaryToken1234567890";

fn ctx(base: &str, resource: &str, extra: Value) -> SourceContext {
    let mut config = json!({"owner": "acme", "repo": "widgets", "base_url": base, "access_token": TOKEN});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    SourceContext {
        entry: "github_events".into(),
        resource: Some(resource.into()),
        config,
        base_dir: ".".into(),
        cursor_column: None,
        cursor_start: None,
        source_state: None,
        batch_size: 1000,
        s3: None,
        redactor: Redactor::default(),
    }
}

async fn run(ctx: SourceContext) -> Result<Vec<Value>, IngestionError> {
    let (sink, mut rx) = BatchSink::channel(4, Arc::new(Progress::default()));
    let source = (floe::sources::github::KIND.open)(ctx)?;
    let task = tokio::spawn(source.run(sink));
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(b) = rx.recv().await {
        batches.push(b);
    }
    task.await.expect("task")?;
    let mut rows = Vec::new();
    for b in &batches {
        let mut w = arrow_json::ArrayWriter::new(Vec::new());
        w.write(b).expect("write");
        w.finish().expect("finish");
        let v: Value = serde_json::from_slice(&w.into_inner()).expect("json");
        rows.extend(v.as_array().cloned().unwrap_or_default());
    }
    Ok(rows)
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().expect("id")).collect()
}

/// Issues 1..=7 updated on day N of January; 3 and 6 are pull requests (GitHub lists both).
fn all_issues() -> Vec<Value> {
    (1..=7)
        .map(|n| {
            let mut v = json!({
                "id": 1000 + n, "number": n, "title": format!("issue {n}"), "state": "open",
                "user": {"login": "octocat", "id": 1}, "labels": [], "created_at": "2023-12-01T00:00:00Z",
                "updated_at": format!("2024-01-{n:02}T00:00:00Z")
            });
            if n % 3 == 0 {
                v["pull_request"] = json!({"url": format!("https://api.github.com/repos/acme/widgets/pulls/{n}")});
            }
            v
        })
        .collect()
}

/// Serve `items` GitHub-style: `page`/`per_page`, absolute Link URLs keeping the query.
fn github_page(r: &Req, items: Vec<Value>) -> Resp {
    let per_page: usize = r.param("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let page: usize = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = Resp::json(json!(slice)).header("x-ratelimit-remaining", "4999").header("x-ratelimit-reset", "9999999999");
    let link = |p: usize| {
        let mut q: Vec<(String, String)> = r.query.iter().filter(|(k, _)| k != "page").cloned().collect();
        q.push(("page".into(), p.to_string()));
        let mut u = reqwest12::Url::parse(&format!("{}{}", r.base, r.path)).expect("url");
        u.query_pairs_mut().extend_pairs(q);
        u.to_string()
    };
    if page < last {
        resp = resp.header("link", &format!("<{}>; rel=\"next\", <{}>; rel=\"last\"", link(page + 1), link(last)));
    }
    resp
}

async fn github() -> Server {
    Server::start(|r: &Req| {
        if r.header("user-agent").is_none_or(|u| !u.starts_with("floe/")) {
            return Resp::text(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
        }
        if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Resp::json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})).status(401);
        }
        match r.path.trim_start_matches("/api/v3") {
            "/repos/acme/widgets/issues" => {
                assert_eq!((r.param("state"), r.param("sort"), r.param("direction")), (Some("all"), Some("updated"), Some("asc")));
                let since = r.param("since").unwrap_or("").to_string();
                github_page(r, all_issues().into_iter().filter(|i| i["updated_at"].as_str().unwrap_or("") >= since.as_str()).collect())
            }
            "/repos/acme/widgets/pulls" => {
                assert_eq!((r.param("sort"), r.param("direction")), (Some("updated"), Some("desc")));
                let pulls: Vec<Value> = (1..=9).rev().map(|n| json!({"id": 500 + n, "number": n, "updated_at": format!("2024-03-{n:02}T00:00:00Z")})).collect();
                github_page(r, pulls)
            }
            "/repos/acme/widgets/commits" => {
                let since = r.param("since").unwrap_or("").to_string();
                let commits: Vec<Value> = (1..=3)
                    .rev()
                    .map(|n| json!({"sha": format!("abc{n}"), "commit": {"message": format!("change {n}"), "committer": {"name": "x", "date": format!("2024-02-{n:02}T00:00:00Z")}}}))
                    .filter(|c| c["commit"]["committer"]["date"].as_str().unwrap_or("") >= since.as_str())
                    .collect();
                github_page(r, commits)
            }
            "/repos/acme/widgets/releases" => github_page(r, vec![json!({"id": 77, "tag_name": "v1.0", "published_at": "2024-01-05T00:00:00Z", "assets": []})]),
            "/repos/acme/limited/issues" => Resp::json(json!({"message": "API rate limit exceeded"}))
                .status(403)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", &(chrono::Utc::now().timestamp() + 1800).to_string()),
            _ => Resp::json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})).status(404),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_follow_link_headers_skip_pull_requests_and_push_since_down() {
    let server = github().await;
    let base = format!("{}/api/v3", server.base);
    // First run: everything, three pages of 3.
    let rows = run(ctx(&base, "issues", json!({"per_page": 3}))).await.expect("first run");
    assert_eq!(ids(&rows), vec![1001, 1002, 1004, 1005, 1007]);
    assert_eq!(rows[0]["user"], json!({"login": "octocat", "id": 1}));
    let first: Vec<Req> = server.requests();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|r| r.param("since").is_none() && r.param("per_page") == Some("3")));
    assert!(first.iter().all(|r| r.header("accept") == Some("application/vnd.github+json") && r.header("x-github-api-version").is_some()));

    // Second run: the engine hands the stored cursor; only newer items are asked for.
    let mut second = ctx(&base, "issues", json!({"per_page": 3}));
    second.cursor_column = Some("updated_at".into());
    second.cursor_start = Some(json!("2024-01-05T00:00:00Z"));
    let rows = run(second).await.expect("second run");
    assert_eq!(ids(&rows), vec![1005, 1007]);
    let later: Vec<Req> = server.requests().into_iter().skip(3).collect();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].param("since"), Some("2024-01-05T00:00:00Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_stop_paging_at_the_incremental_start() {
    let server = github().await;
    let mut c = ctx(&server.base, "pull_requests", json!({"per_page": 2}));
    c.cursor_column = Some("updated_at".into());
    c.cursor_start = Some(json!("2024-03-06T00:00:00Z"));
    let rows = run(c).await.expect("run");
    // Newest first: pages (9,8) (7,6): the second ends at the start value, so page 3 is
    // never requested. The engine drops #6 by its cursor.
    assert_eq!(ids(&rows), vec![509, 508, 507, 506]);
    assert_eq!(server.requests().len(), 2);
    // Without incremental, every page.
    let rows = run(ctx(&server.base, "pull_requests", json!({"per_page": 2}))).await.expect("run");
    assert_eq!(rows.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_get_an_id_and_a_commit_date_cursor() {
    let server = github().await;
    let mut c = ctx(&server.base, "commits", json!({}));
    c.cursor_column = Some("committed_at".into());
    c.cursor_start = Some(json!("2024-02-02T00:00:00Z"));
    let rows = run(c).await.expect("run");
    assert_eq!(rows.iter().map(|r| r["id"].as_str().expect("id")).collect::<Vec<_>>(), vec!["abc3", "abc2"]);
    assert_eq!(rows[0]["committed_at"], json!("2024-02-03T00:00:00Z"));
    assert_eq!(server.requests()[0].param("since"), Some("2024-02-02T00:00:00Z"));
    let rows = run(ctx(&server.base, "releases", json!({}))).await.expect("releases");
    assert_eq!(ids(&rows), vec![77]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_errors_are_classified_without_the_token() {
    let server = github().await;
    let e = run(ctx(&server.base, "issues", json!({"repo": "gone"}))).await.expect_err("404");
    assert_eq!((e.category, e.code.as_str(), e.source.as_str()), (Category::Permanent, "SOURCE_NOT_FOUND", "github"), "{e}");
    assert!(e.message.contains("/repos/acme/gone/issues"), "{e}");

    let e = run(ctx(&server.base, "issues", json!({"access_token": "ghp_wrongCanary42"}))).await.expect_err("401");
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "AUTH_FAILED"), "{e}");
    assert!(!format!("{e:?}").contains("ghp_wrongCanary42"));

    let e = run(ctx(&server.base, "issues", json!({"repo": "limited"}))).await.expect_err("403");
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "RATE_LIMITED"), "{e}");
    assert!(e.retry_after_seconds.is_some_and(|s| (1790..=1800).contains(&s)), "{e:?}");
    assert!(!format!("{e:?}").contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_resource_or_a_bad_repository_name_is_a_configuration_error() {
    let mut c = ctx("http://127.0.0.1:9", "issues", json!({}));
    c.resource = None;
    let e = run(c).await.expect_err("no resource");
    assert_eq!(e.category, Category::Configuration);
    let e = run(ctx("http://127.0.0.1:9", "issues", json!({"repo": "a/b"}))).await.expect_err("bad repo");
    assert_eq!(e.category, Category::Configuration);
    assert!(e.message.contains("repo"), "{e}");
}

/// The ADR's github example, with a repository named, runs end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adr_github_example_runs_once_a_repository_is_named() {
    let Some(py) = common::python() else { return };
    let server = github().await;
    let spec = format!(
        "ingestion:\n  - name: github_events\n    type: dlt\n    destination: bronze.github_events\n    dlt:\n      source: dlt.sources.github.github_reactions\n      resource: issues\n      write_disposition: merge\n      incremental:\n        cursor_column: updated_at\n      config: {{owner: acme, repo: widgets, base_url: \"{}\", per_page: 2}}\n    secret_refs:\n      github_token: github-api-token\n",
        server.base
    );
    let mut project = common::Project::new("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n", &spec);
    project.env.push(("FLOE_SECRET_GITHUB_API_TOKEN".into(), TOKEN.into()));
    let project = Arc::new(project);
    let p = project.clone();
    let run = tokio::task::spawn_blocking(move || p.run(&[])).await.expect("run");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("github_events")["rows_loaded"], 5);
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
    let first_run = server.requests().len();
    assert_eq!(first_run, 4);

    let p = project.clone();
    let run = tokio::task::spawn_blocking(move || p.run(&[])).await.expect("run");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let second: Vec<Req> = server.requests().into_iter().skip(first_run).collect();
    assert_eq!(second.first().and_then(|r| r.param("since")), Some("2024-01-07T00:00:00Z"));

    let p = project.clone();
    let table = tokio::task::spawn_blocking(move || p.read(&py, "bronze.github_events")).await.expect("read");
    let mut ids: Vec<i64> = table["rows"].as_array().expect("rows").iter().map(|r| r["id"].as_i64().expect("id")).collect();
    ids.sort();
    assert_eq!(ids, vec![1001, 1002, 1004, 1005, 1007]);
}
