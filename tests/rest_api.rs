//! The `rest_api` source against a local HTTP server that plays the API: every paginator,
//! every auth type, retries and their limits, error classification, parent/child resources,
//! incremental parameters, schema evolution and secret redaction.

mod common;
#[path = "support/http/mod.rs"]
mod http;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use floe::error::{Category, IngestionError};
use floe::secrets::Redactor;
use floe::sources::{BatchSink, Progress, SourceContext, SourceOutcome};
use http::{Req, Resp, Server};
use serde_json::{json, Value};

fn ctx(config: Value) -> SourceContext {
    SourceContext {
        entry: "test_entry".into(),
        resource: None,
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

/// Client settings with fast retries, so failure tests take milliseconds.
fn client(base: &str) -> Value {
    json!({"base_url": base, "request_backoff_factor": 0.02, "request_max_attempts": 3, "timeout_seconds": 5})
}

/// Open and run the source, collecting what it sends.
async fn run(ctx: SourceContext) -> Result<(Vec<RecordBatch>, SourceOutcome), IngestionError> {
    let progress = Arc::new(Progress::default());
    let (sink, mut rx) = BatchSink::channel(4, progress);
    let source = (floe::sources::rest_api::KIND.open)(ctx)?;
    let task = tokio::spawn(source.run(sink));
    let mut batches = Vec::new();
    while let Some(b) = rx.recv().await {
        batches.push(b);
    }
    let outcome = task.await.expect("source task")?;
    Ok((batches, outcome))
}

async fn run_ok(ctx: SourceContext) -> (Vec<RecordBatch>, SourceOutcome) {
    match run(ctx).await {
        Ok(r) => r,
        Err(e) => panic!("the source failed: {e}"),
    }
}

async fn run_err(ctx: SourceContext) -> IngestionError {
    match run(ctx).await {
        Ok((b, _)) => panic!("expected an error, got {} batches", b.len()),
        Err(e) => e,
    }
}

/// Batches as JSON rows.
fn rows(batches: &[RecordBatch]) -> Vec<Value> {
    let mut out = Vec::new();
    for b in batches {
        let mut w = arrow_json::ArrayWriter::new(Vec::new());
        w.write(b).expect("write");
        w.finish().expect("finish");
        let v: Value = serde_json::from_slice(&w.into_inner()).expect("json");
        out.extend(v.as_array().cloned().unwrap_or_default());
    }
    out
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    rows(batches).iter().map(|r| r["id"].as_i64().expect("id")).collect()
}

fn items(range: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    range.map(|i| json!({"id": i, "name": format!("item {i}")})).collect()
}

/// Pages of `per_page` items out of `total`, by 1-based page number.
fn page_of(total: i64, per_page: i64, page: i64) -> Vec<Value> {
    let first = (page - 1) * per_page + 1;
    let last = (page * per_page).min(total);
    if first > total { Vec::new() } else { items(first..=last) }
}

// ------------------------------------------------------------------------------------------
// Paginators

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_link_follows_next_urls_in_the_body() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let next = if page < 3 { json!(format!("{}/v1/items?page={}", r.base, page + 1)) } else { Value::Null };
        Resp::json(json!({"data": page_of(7, 3, page), "next": next}))
    })
    .await;
    let config = json!({"client": client(&format!("{}/v1", server.base)), "resources": [{"name": "items", "endpoint": {"path": "items", "data_selector": "data", "paginator": {"type": "json_link", "next_url_path": "next"}}}]});
    let (batches, outcome) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), (1..=7).collect::<Vec<_>>());
    // Pages are gathered into one batch, not sent one by one.
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), vec!["id", "name"]);
    assert_eq!(outcome.rows_rejected, 0);
    assert_eq!(server.requests().iter().map(Req::target).collect::<Vec<_>>(), vec!["/v1/items", "/v1/items?page=2", "/v1/items?page=3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_link_follows_relative_link_headers() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let resp = Resp::json(json!(page_of(5, 2, page)));
        if page < 3 { resp.header("link", &format!("</items?page={}>; rel=\"next\", </items?page=3>; rel=\"last\"", page + 1)) } else { resp }
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "params": {"per_page": 2}, "paginator": "header_link"}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(server.requests().iter().map(Req::target).collect::<Vec<_>>(), vec!["/items?per_page=2", "/items?page=2", "/items?page=3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_with_a_known_total_fetches_the_rest_concurrently_in_order() {
    let server = Server::start(|r: &Req| {
        let offset: i64 = r.param("offset").and_then(|p| p.parse().ok()).unwrap_or(0);
        let limit: i64 = r.param("limit").and_then(|p| p.parse().ok()).unwrap_or(10);
        let page: Vec<Value> = items(1..=9).into_iter().skip(offset as usize).take(limit as usize).collect();
        // Later pages are slower, so out-of-order completion would show in the result.
        let delay = Duration::from_millis(if offset == 0 { 0 } else { 400 - (offset as u64) * 20 });
        Resp::json(json!({"results": page, "meta": {"total": 9}})).delay(delay)
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "data_selector": "$.results[*]", "paginator": {"type": "offset", "limit": 2, "total_path": "meta.total"}}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), (1..=9).collect::<Vec<_>>());
    let reqs = server.requests();
    let mut offsets: Vec<&str> = reqs.iter().filter_map(|r| r.param("offset")).collect();
    offsets.sort();
    assert_eq!(offsets, vec!["0", "2", "4", "6", "8"]);
    assert!(reqs.iter().all(|r| r.param("limit") == Some("2")));
    // Four pages in flight at once: all four arrived before the first of them was answered.
    let rest: Vec<Instant> = reqs.iter().filter(|r| r.param("offset") != Some("0")).map(|r| r.at).collect();
    let (first, last) = (rest.iter().min().expect("min"), rest.iter().max().expect("max"));
    assert!(last.duration_since(*first) < Duration::from_millis(300), "pages were not fetched concurrently: {:?}", last.duration_since(*first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_without_a_total_stops_at_the_first_empty_page() {
    let server = Server::start(|r: &Req| {
        let offset: usize = r.param("skip").and_then(|p| p.parse().ok()).unwrap_or(0);
        Resp::json(json!({"rows": items(1..=5).into_iter().skip(offset).take(2).collect::<Vec<_>>()}))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": {"type": "offset", "limit": 2, "offset_param": "skip", "limit_param": "take"}}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(server.requests().iter().map(|r| r.param("skip").unwrap_or("-").to_string()).collect::<Vec<_>>(), vec!["0", "2", "4", "6"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_number_with_total_pages() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("p").and_then(|p| p.parse().ok()).unwrap_or(0);
        Resp::json(json!({"items": page_of(10, 4, page), "total_pages": 3}))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": {"type": "page_number", "base_page": 1, "page_param": "p", "total_path": "total_pages"}}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), (1..=10).collect::<Vec<_>>());
    let mut pages: Vec<String> = server.requests().iter().map(|r| r.param("p").unwrap_or("-").to_string()).collect();
    pages.sort();
    assert_eq!(pages, vec!["1", "2", "3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_number_without_a_total_stops_at_an_empty_page() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(-1);
        // base_page 0: page 0 is the first.
        Resp::json(json!({"data": page_of(5, 2, page + 1)}))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "data_selector": "data", "paginator": "page_number"}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_paginator_passes_the_cursor_back() {
    let server = Server::start(|r: &Req| {
        let (page, next) = match r.param("after") {
            None => (items(1..=2), json!("c2")),
            Some("c2") => (items(3..=4), json!("c3")),
            Some("c3") => (items(5..=5), Value::Null),
            Some(_) => (Vec::new(), Value::Null),
        };
        Resp::json(json!({"data": page, "meta": {"next_cursor": next}}))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "data_selector": "data", "params": {"limit": 2}, "paginator": {"type": "cursor", "cursor_path": "meta.next_cursor", "cursor_param": "after"}}}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4, 5]);
    assert_eq!(server.requests().iter().map(Req::target).collect::<Vec<_>>(), vec!["/items?limit=2", "/items?limit=2&after=c2", "/items?limit=2&after=c3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_page_makes_one_request_and_a_client_paginator_applies_to_every_resource() {
    let server = Server::start(|r: &Req| Resp::json(json!({"data": items(1..=3), "next": format!("{}/items?page=2", r.base)}))).await;
    let mut c = client(&server.base);
    c["paginator"] = json!("single_page");
    let config = json!({"client": c, "resources": ["items"]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3]);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_paginator_the_first_response_decides() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let resp = Resp::json(json!(page_of(4, 2, page)));
        if page < 2 { resp.header("Link", &format!("<{}/items?page=2>; rel=\"next\"", r.base)) } else { resp }
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": "items"}]});
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_that_does_not_advance_is_a_page_loop_error() {
    let server = Server::start(|r: &Req| {
        // Page 1 and page 2 both point at page 2.
        let next = format!("{}/items?page=2", r.base);
        Resp::json(json!({"data": [{"id": r.query.len()}], "next": next}))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": {"type": "json_link", "next_url_path": "next"}}}]});
    let started = Instant::now();
    let e = run_err(ctx(config)).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_ERROR"), "{e}");
    assert!(e.message.contains("page loop") && e.message.contains("resource items"), "{e}");
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_repeated_is_a_page_loop_error_and_so_is_an_api_ignoring_its_offset() {
    let server = Server::start(|r: &Req| match r.path.as_str() {
        "/cursor" => Resp::json(json!({"data": [{"id": 1}], "cursors": {"next": "same"}})),
        // Ignores `offset`: the same page forever.
        _ => Resp::json(json!({"data": [{"id": 1}, {"id": 2}]})),
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "c", "endpoint": {"path": "cursor", "paginator": "cursor"}}]});
    let e = run_err(ctx(config)).await;
    assert!(e.message.contains("page loop"), "{e}");
    assert_eq!(server.requests_to("/cursor").len(), 2);
    let config = json!({"client": client(&server.base), "resources": [{"name": "o", "endpoint": {"path": "offset", "paginator": {"type": "offset", "limit": 2}}}]});
    let e = run_err(ctx(config)).await;
    assert!(e.message.contains("page loop"), "{e}");
    assert_eq!(server.requests_to("/offset").len(), 2);
}

// ------------------------------------------------------------------------------------------
// Auth

/// A server that answers 401 unless `ok` accepts the request.
async fn guarded(ok: impl Fn(&Req) -> bool + Send + Sync + 'static) -> Server {
    Server::start(move |r: &Req| if ok(r) { Resp::json(json!([{"id": 1}])) } else { Resp::text(401, "bad credentials") }).await
}

fn with_auth(base: &str, auth: Value) -> Value {
    let mut c = client(base);
    c["auth"] = auth;
    json!({"client": c, "resources": ["items"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_api_key_and_basic_auth_are_sent() {
    let server = guarded(|r| r.header("authorization") == Some("Bearer tok-123")).await;
    run_ok(ctx(with_auth(&server.base, json!({"type": "bearer", "token": "tok-123"})))).await;
    let e = run_err(ctx(with_auth(&server.base, json!({"type": "bearer", "token": "wrong-token"})))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "AUTH_FAILED"));

    let server = guarded(|r| r.header("x-api-key") == Some("key-456")).await;
    run_ok(ctx(with_auth(&server.base, json!({"type": "api_key", "name": "X-API-Key", "api_key": "key-456"})))).await;

    let server = guarded(|r| r.param("api_key") == Some("key-789") && r.param("per_page") == Some("5")).await;
    let mut config = with_auth(&server.base, json!({"type": "api_key", "name": "api_key", "api_key": "key-789", "location": "query"}));
    config["resources"] = json!([{"name": "items", "endpoint": {"path": "items", "params": {"per_page": 5}}}]);
    run_ok(ctx(config)).await;

    // "user:pa ss" in base64.
    let server = guarded(|r| r.header("authorization") == Some("Basic dXNlcjpwYSBzcw==")).await;
    let (batches, _) = run_ok(ctx(with_auth(&server.base, json!({"type": "http_basic", "username": "user", "password": "pa ss"})))).await;
    assert_eq!(ids(&batches), vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_not_sent_to_a_next_link_on_another_host() {
    let elsewhere = Server::start(|_: &Req| Resp::json(json!({"data": [{"id": 2}], "next": null}))).await;
    let other = elsewhere.base.replace("127.0.0.1", "localhost");
    let server = Server::start(move |_: &Req| Resp::json(json!({"data": [{"id": 1}], "next": format!("{other}/page2")}))).await;
    let mut config = with_auth(&server.base, json!({"type": "bearer", "token": "tok-123"}));
    config["resources"] = json!([{"name": "items", "endpoint": {"path": "items", "paginator": "json_link"}}]);
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), vec![1, 2]);
    assert_eq!(server.requests()[0].header("authorization"), Some("Bearer tok-123"));
    assert_eq!(elsewhere.requests().len(), 1);
    assert_eq!(elsewhere.requests()[0].header("authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials_refreshes_the_token_before_it_expires() {
    // Tokens live 1 s; pages take 300 ms each, so a run of 6 pages needs a new token.
    let issued: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (iss, rej) = (issued.clone(), refused.clone());
    let server = Server::start(move |r: &Req| {
        if r.path == "/oauth/token" {
            let form = r.form();
            let get = |k: &str| form.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
            if get("grant_type") != Some("client_credentials") || get("client_id") != Some("cid") || get("client_secret") != Some("csecret") || get("scope") != Some("read write") {
                return Resp::text(400, "invalid_client");
            }
            let mut list = iss.lock().expect("lock");
            let token = format!("access-{}", list.len() + 1);
            list.push((token.clone(), Instant::now()));
            return Resp::json(json!({"access_token": token, "token_type": "bearer", "expires_in": 1}));
        }
        let valid = {
            let list = iss.lock().expect("lock");
            let given = r.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or_default();
            list.iter().any(|(t, at)| t == given && at.elapsed() < Duration::from_secs(1))
        };
        if !valid {
            rej.fetch_add(1, Ordering::SeqCst);
            return Resp::text(401, "token expired");
        }
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        Resp::json(json!({"data": page_of(12, 2, page), "next": if page < 6 { json!(format!("/items?page={}", page + 1)) } else { Value::Null }})).delay(Duration::from_millis(300))
    })
    .await;
    let auth = json!({"type": "oauth2_client_credentials", "access_token_url": format!("{}/oauth/token", server.base), "client_id": "cid", "client_secret": "csecret", "scopes": ["read", "write"]});
    let mut config = with_auth(&server.base, auth);
    config["resources"] = json!([{"name": "items", "endpoint": {"path": "items", "data_selector": "data", "paginator": "json_link"}}]);
    let (batches, _) = run_ok(ctx(config)).await;
    assert_eq!(ids(&batches), (1..=12).collect::<Vec<_>>());
    assert!(issued.lock().expect("lock").len() >= 2, "the token was never refreshed");
    assert_eq!(refused.load(Ordering::SeqCst), 0, "a request went out with an expired token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_refused_credentials_are_auth_failed() {
    let server = Server::start(|r: &Req| if r.path == "/token" { Resp::text(401, "invalid_client") } else { Resp::json(json!([])) }).await;
    let auth = json!({"type": "oauth2_client_credentials", "access_token_url": format!("{}/token", server.base), "client_id": "cid", "client_secret": "csecret"});
    let e = run_err(ctx(with_auth(&server.base, auth))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "AUTH_FAILED"), "{e}");
    assert!(server.requests_to("/items").is_empty());
}

// ------------------------------------------------------------------------------------------
// Retries and classification

fn one_resource(base: &str) -> Value {
    json!({"client": client(base), "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": "single_page"}}]})
}

/// A server that answers the first `n` requests with `bad`, then data.
async fn flaky(n: usize, bad: Resp) -> Server {
    let count = AtomicUsize::new(0);
    Server::start(move |_: &Req| if count.fetch_add(1, Ordering::SeqCst) < n { bad.clone() } else { Resp::json(json!([{"id": 1}, {"id": 2}])) }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let server = flaky(1, Resp::text(429, "slow down").header("Retry-After", "1")).await;
    let started = Instant::now();
    let (batches, _) = run_ok(ctx(one_resource(&server.base))).await;
    assert_eq!(ids(&batches), vec![1, 2]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950), "Retry-After was not honoured");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_limit_ends_transient_with_the_wait() {
    let server = flaky(10, Resp::text(429, "slow down").header("Retry-After", "3600")).await;
    let e = run_err(ctx(one_resource(&server.base))).await;
    assert_eq!((e.category, e.code.as_str(), e.retry_after_seconds, e.retryable), (Category::Transient, "RATE_LIMITED", Some(3600), true), "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_that_outlast_the_attempts_report_a_retry_after() {
    let server = flaky(10, Resp::text(429, "slow down")).await;
    let e = run_err(ctx(one_resource(&server.base))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "RATE_LIMITED"), "{e}");
    assert!(e.retry_after_seconds.is_some());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_then_success() {
    let server = flaky(2, Resp::text(503, "maintenance")).await;
    let (batches, _) = run_ok(ctx(one_resource(&server.base))).await;
    assert_eq!(ids(&batches), vec![1, 2]);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_storm_gives_up_after_the_attempts_transient() {
    let server = flaky(100, Resp::text(500, "boom")).await;
    let e = run_err(ctx(one_resource(&server.base))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "UNAVAILABLE"), "{e}");
    assert!(e.message.contains("HTTP 500") && e.message.contains("3 attempts"), "{e}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_permanent_and_classified() {
    for (status, code) in [(401, "AUTH_FAILED"), (403, "AUTH_FAILED"), (404, "SOURCE_NOT_FOUND"), (400, "SOURCE_ERROR")] {
        let server = flaky(100, Resp::text(status, "no")).await;
        let e = run_err(ctx(one_resource(&server.base))).await;
        assert_eq!((e.category, e.code.as_str(), e.retryable), (Category::Permanent, code, false), "{status}: {e}");
        assert!(e.message.contains("resource items") && e.message.contains(&format!("HTTP {status}")), "{e}");
        assert_eq!(server.requests().len(), 1, "{status} must not be retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_with_an_exhausted_rate_limit_is_transient() {
    let reset = (chrono::Utc::now().timestamp() + 1200).to_string();
    let server = flaky(100, Resp::text(403, "API rate limit exceeded").header("x-ratelimit-remaining", "0").header("x-ratelimit-reset", &reset)).await;
    let e = run_err(ctx(one_resource(&server.base))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "RATE_LIMITED"), "{e}");
    let wait = e.retry_after_seconds.expect("retry after");
    assert!((1190..=1200).contains(&wait), "{wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_time_out_transient() {
    let server = Server::start(|_: &Req| Resp::json(json!([{"id": 1}])).delay(Duration::from_secs(3))).await;
    let mut config = one_resource(&server.base);
    config["client"]["timeout_seconds"] = json!(0.3);
    config["client"]["request_max_attempts"] = json!(2);
    let started = Instant::now();
    let e = run_err(ctx(config)).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "TIMEOUT"), "{e}");
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_is_transient() {
    // Bind then drop: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let e = run_err(ctx(one_resource(&format!("http://127.0.0.1:{port}")))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Transient, "UNAVAILABLE"), "{e}");
    assert!(e.message.contains("cannot connect"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_without_a_list_at_the_data_selector_is_a_configuration_error() {
    let server = Server::start(|_: &Req| Resp::json(json!({"data": [{"id": 1}], "total": 1}))).await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "things", "endpoint": {"path": "things", "data_selector": "$.results", "paginator": "single_page"}}]});
    let e = run_err(ctx(config)).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Configuration, "INVALID_CONFIG"), "{e}");
    for part in ["resource things", "$.results", "/things", "data, total"] {
        assert!(e.message.contains(part), "`{part}` missing from: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_permanent() {
    let server = Server::start(|_: &Req| Resp::text(200, "<html>maintenance</html>")).await;
    let e = run_err(ctx(one_resource(&server.base))).await;
    assert_eq!((e.category, e.code.as_str()), (Category::Permanent, "SOURCE_ERROR"), "{e}");
    assert!(e.message.contains("not JSON") && e.message.contains("/items"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_fail_before_any_request() {
    let server = Server::start(|_: &Req| Resp::json(json!([]))).await;
    for (resources, needle) in [
        (json!([{"name": "a", "endpoint": {"path": "a", "paginator": {"type": "offset"}}}]), "limit"),
        (json!([{"name": "a", "endpoint": {"path": "a/{resources.nope.id}"}}]), "nope"),
        (json!([{"name": "a", "endpoint": {"path": "a", "data_selector": "$.x[?(@.y)]"}}]), "data_selector"),
    ] {
        let e = run_err(ctx(json!({"client": client(&server.base), "resources": resources}))).await;
        assert_eq!(e.category, Category::Configuration, "{e}");
        assert!(e.message.contains(needle), "{needle}: {e}");
    }
    assert!(server.requests().is_empty());
}

// ------------------------------------------------------------------------------------------
// Parent/child, incremental, schema

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_resource_runs_once_per_parent_record() {
    let server = Server::start(|r: &Req| {
        let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["issues"] => {
                let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let list = if page == 1 { json!([{"number": 10, "title": "a"}, {"number": 11, "title": "b"}]) } else { json!([{"number": 12, "title": "c"}]) };
                let resp = Resp::json(list);
                if page == 1 { resp.header("link", "</issues?page=2>; rel=\"next\"") } else { resp }
            }
            ["issues", n, "comments"] => {
                let n: i64 = n.parse().unwrap_or(0);
                // Issue 11 has no comments; the others two each.
                let list: Vec<Value> = if n == 11 { vec![] } else { (1..=2).map(|i| json!({"id": n * 100 + i, "body": format!("c{i}")})).collect() };
                Resp::json(json!(list))
            }
            _ => Resp::text(404, "no"),
        }
    })
    .await;
    let config = json!({
        "client": {"base_url": server.base, "paginator": "header_link"},
        "resources": [
            "issues",
            {"name": "issue_comments", "endpoint": {"path": "issues/{resources.issues.number}/comments", "params": {"since": "{incremental.start_value}"}}, "include_from_parent": ["title"]}
        ]
    });
    let mut c = ctx(config);
    c.resource = Some("issue_comments".into());
    c.cursor_start = Some(json!("2024-05-01T00:00:00Z"));
    let (batches, _) = run_ok(c).await;
    let rows = rows(&batches);
    assert_eq!(rows.iter().map(|r| r["id"].as_i64().expect("id")).collect::<Vec<_>>(), vec![1001, 1002, 1201, 1202]);
    assert_eq!(rows.iter().map(|r| r["_issues_title"].as_str().expect("title")).collect::<Vec<_>>(), vec!["a", "a", "c", "c"]);
    let children: Vec<String> = server.requests().iter().filter(|r| r.path.ends_with("/comments")).map(Req::target).collect();
    assert_eq!(children, vec!["/issues/10/comments?since=2024-05-01T00%3A00%3A00Z", "/issues/11/comments?since=2024-05-01T00%3A00%3A00Z", "/issues/12/comments?since=2024-05-01T00%3A00%3A00Z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incremental_start_value_goes_into_params_only_when_there_is_one() {
    let server = Server::start(|r: &Req| {
        // The API filters as a real one would.
        let since = r.param("updated_after").unwrap_or("");
        let all = [("2024-01-01T00:00:00Z", 1), ("2024-02-01T00:00:00Z", 2), ("2024-03-01T00:00:00Z", 3)];
        Resp::json(json!(all.iter().filter(|(u, _)| *u > since).map(|(u, id)| json!({"id": id, "updated_at": u})).collect::<Vec<_>>()))
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "params": {"updated_after": "{incremental.start_value}"}, "paginator": "single_page"}}]});
    let mut first = ctx(config.clone());
    first.cursor_column = Some("updated_at".into());
    let (batches, _) = run_ok(first).await;
    assert_eq!(ids(&batches), vec![1, 2, 3]);
    // Cursor columns that are RFC 3339 text become timestamps.
    assert!(matches!(batches[0].schema().field_with_name("updated_at").expect("updated_at").data_type(), DataType::Timestamp(_, Some(_))));
    let mut second = ctx(config);
    second.cursor_column = Some("updated_at".into());
    second.cursor_start = Some(json!("2024-02-01T00:00:00Z"));
    let (batches, _) = run_ok(second).await;
    assert_eq!(ids(&batches), vec![3]);
    let targets: Vec<String> = server.requests().iter().map(Req::target).collect();
    assert_eq!(targets, vec!["/items", "/items?updated_after=2024-02-01T00%3A00%3A00Z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_fields_become_columns_and_misfits_are_rejected_not_nulled() {
    let server = Server::start(|r: &Req| {
        let page: i64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let body = match page {
            1 => json!([{"id": 1, "price": 2, "at": "2024-01-01T00:00:00Z"}, {"id": 2, "price": 3, "at": "2024-01-02T00:00:00Z"}]),
            2 => json!([{"id": 3, "price": 4.5, "at": "2024-01-03T00:00:00Z", "owner": {"login": "ann", "tags": ["x"]}}, {"id": 4, "price": 1, "at": "yesterday"}]),
            _ => json!([{"id": 5, "price": {"amount": 1}}]),
        };
        let resp = Resp::json(body);
        if page < 3 { resp.header("link", &format!("</items?page={}>; rel=\"next\"", page + 1)) } else { resp }
    })
    .await;
    let config = json!({"client": client(&server.base), "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": "header_link"}}]});
    let mut c = ctx(config);
    // One batch per page, so the schema of page 1 is already "sent" when page 2 arrives.
    c.batch_size = 2;
    let (batches, outcome) = run_ok(c).await;
    assert_eq!(ids(&batches), vec![1, 2, 3]);
    assert_eq!(outcome.rows_rejected, 2, "{:?}", outcome.rejected_samples);
    assert!(outcome.rejected_samples.iter().any(|s| s.contains("`at`")), "{:?}", outcome.rejected_samples);
    assert!(outcome.rejected_samples.iter().any(|s| s.contains("`price`")), "{:?}", outcome.rejected_samples);
    let first = batches[0].schema();
    let second = batches[1].schema();
    assert_eq!(first.field_with_name("price").expect("price").data_type(), &DataType::Int64);
    assert_eq!(second.field_with_name("price").expect("price").data_type(), &DataType::Float64);
    assert!(first.field_with_name("owner").is_err());
    assert!(matches!(second.field_with_name("owner").expect("owner").data_type(), DataType::Struct(f) if f.len() == 2));
    assert_eq!(rows(&batches[1..])[0]["owner"], json!({"login": "ann", "tags": ["x"]}));
}

// ------------------------------------------------------------------------------------------
// Secrets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_error_message() {
    // The API echoes everything it received, credentials included, in its error bodies.
    let server = Server::start(|r: &Req| {
        let echo = format!("{} auth={:?} key={:?} body={}", r.target(), r.header("authorization"), r.header("x-key"), String::from_utf8_lossy(&r.body));
        let status = match r.path.as_str() {
            "/token" => 400,
            "/missing" => 404,
            "/broken" => 500,
            _ => 401,
        };
        Resp::text(status, &echo)
    })
    .await;
    let canaries = ["canary-bearer-7f3a", "canary-apikey-91bc", "canary-password-c0de", "canary-secret-5eed"];
    let auths = [
        json!({"type": "bearer", "token": canaries[0]}),
        json!({"type": "api_key", "name": "key", "api_key": canaries[1], "location": "query"}),
        json!({"type": "api_key", "name": "X-Key", "api_key": canaries[1]}),
        json!({"type": "http_basic", "username": "u", "password": canaries[2]}),
        json!({"type": "oauth2_client_credentials", "access_token_url": format!("{}/token", server.base), "client_id": "cid", "client_secret": canaries[3]}),
    ];
    let mut checked = 0;
    for auth in &auths {
        for path in ["unauthorized", "missing", "broken"] {
            let mut config = with_auth(&server.base, auth.clone());
            config["resources"] = json!([{"name": "items", "endpoint": {"path": path, "paginator": "single_page"}}]);
            let e = run_err(ctx(config)).await;
            let shown = format!("{e} {}", serde_json::to_string(&e).expect("json"));
            for c in canaries {
                assert!(!shown.contains(c), "secret leaked in: {shown}");
            }
            // Base64 of basic credentials is a secret too.
            assert!(!shown.contains("dTpjYW5hcnk"), "basic credentials leaked in: {shown}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
    // The echoed bodies did reach the messages (so redaction, not luck, kept them out).
    let mut config = with_auth(&server.base, auths[0].clone());
    config["resources"] = json!([{"name": "items", "endpoint": {"path": "missing", "paginator": "single_page"}}]);
    let e = run_err(ctx(config)).await;
    assert!(e.message.contains("/missing") && e.message.contains("***"), "{e}");
}

// ------------------------------------------------------------------------------------------
// End to end: `floe ingest run` twice, read back with PyIceberg

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_second_run_asks_only_for_newer_items_and_merges_updates() {
    let Some(py) = common::python() else { return };
    let item = |id: i64, name: &str, day: u32| json!({"id": id, "name": name, "updated_at": format!("2024-02-{day:02}T00:00:00Z")});
    let data = Arc::new(Mutex::new(vec![item(1, "a", 1), item(2, "b", 2), item(3, "c", 3)]));
    let served = data.clone();
    let server = Server::start(move |r: &Req| {
        let since = r.param("updated_since").unwrap_or("").to_string();
        let list: Vec<Value> = served.lock().expect("data").iter().filter(|i| i["updated_at"].as_str().unwrap_or("") > since.as_str()).cloned().collect();
        Resp::json(json!({"data": list}))
    })
    .await;
    let spec = format!(
        "ingestion:\n  - name: items\n    type: dlt\n    destination: raw.items\n    dlt:\n      source: rest_api\n      write_disposition: merge\n      primary_key: id\n      incremental: {{cursor_column: updated_at, initial_value: \"2024-01-01T00:00:00Z\"}}\n      config:\n        client: {{base_url: \"{}\"}}\n        resources:\n          - name: items\n            endpoint: {{path: items, data_selector: data, paginator: single_page, params: {{updated_since: \"{{incremental.start_value}}\"}}}}\n",
        server.base
    );
    let project = Arc::new(common::Project::new("plugins:\n  ingestion: {type: dlt, retry: {max_attempts: 1}}\n", &spec));
    let p = project.clone();
    let run = tokio::task::spawn_blocking(move || p.run(&[])).await.expect("run");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("items")["rows_loaded"], 3);

    // Item 2 changes, item 4 appears.
    {
        let mut d = data.lock().expect("data");
        d[1] = item(2, "b2", 10);
        d.push(item(4, "d", 5));
    }
    let p = project.clone();
    let run = tokio::task::spawn_blocking(move || p.run(&[])).await.expect("run");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result("items")["rows_loaded"], 2);
    let asked: Vec<Option<String>> = server.requests().iter().map(|r| r.param("updated_since").map(str::to_string)).collect();
    assert_eq!(asked, vec![Some("2024-01-01T00:00:00Z".to_string()), Some("2024-02-03T00:00:00Z".to_string())]);

    let p = project.clone();
    let table = tokio::task::spawn_blocking(move || p.read(&py, "raw.items")).await.expect("read");
    let mut rows: Vec<(i64, String)> = table["rows"].as_array().expect("rows").iter().map(|r| (r["id"].as_i64().expect("id"), r["name"].as_str().expect("name").to_string())).collect();
    rows.sort();
    assert_eq!(rows, vec![(1, "a".into()), (2, "b2".into()), (3, "c".into()), (4, "d".into())]);
}
