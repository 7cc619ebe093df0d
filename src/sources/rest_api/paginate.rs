//! Paginators and the request series they drive.
//!
//! A [`Series`] yields the pages of one endpoint (for one parent record, when it is a child
//! resource) one at a time. After each response the [`Paginator`] says what comes next: a
//! follow-up request, nothing, or, for `offset` and `page_number` once the total is known,
//! the whole remaining range, which is then fetched concurrently (bounded) and yielded in
//! order. A next request that was already made is a page loop: an error, never an endless
//! run. So is a page identical to the previous one (an API ignoring the paging parameter).
//!
//! `auto` detects the paginator from the first response as dlt does (Link header, a `next`
//! URL, a page count, a `next` cursor, else a single page) and warns, because a guess can
//! be wrong in ways that only show on later pages.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use reqwest12::header::HeaderMap;
use reqwest12::Url;
use serde_json::Value;

use super::config::{PaginatorConfig, PaginatorSpec, PaginatorType};
use super::http::{Http, Request, Response};
use super::select::{self, JsonPath};
use crate::error::{code, IngestionError};

/// `offset` and `page_number`: a counter sent as a query parameter.
#[derive(Debug, Clone)]
pub struct Range {
    param: String,
    /// offset: the `limit` parameter sent with every page.
    limit: Option<(String, u64)>,
    current: u64,
    step: u64,
    /// Where the total is; `explicit` when the config named it (else `total` if present).
    total_path: JsonPath,
    /// page_number counts totals in pages from `base`; offset in records from 0.
    base: u64,
    maximum: Option<u64>,
    has_more: Option<JsonPath>,
    stop_after_empty: bool,
}

/// A paginator with its state.
#[derive(Debug, Clone)]
pub enum Paginator {
    Single,
    JsonLink { next: JsonPath },
    HeaderLink { rel: String },
    Range(Range),
    Cursor { path: JsonPath, param: String, has_more: Option<JsonPath>, stop_after_empty: bool },
    /// Not configured: detected from the first response. The flag, shared by every series
    /// of the resource, makes the warning appear once, not once per parent record.
    Auto(Arc<AtomicBool>),
}

/// What follows a page.
pub enum Next {
    Done,
    Request(Request),
    /// Every remaining page is known: fetch them concurrently.
    Range(RangeIter),
}

/// The remaining pages of a range paginator.
pub struct RangeIter {
    template: Request,
    param: String,
    current: u64,
    end: u64,
    step: u64,
}

impl Iterator for RangeIter {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        if self.current >= self.end {
            return None;
        }
        let mut r = self.template.clone();
        set_param(&mut r.url, &self.param, &self.current.to_string());
        self.current = self.current.saturating_add(self.step.max(1));
        Some(r)
    }
}

fn path(p: Option<&String>, default: &str) -> Result<JsonPath, String> {
    JsonPath::parse(p.map_or(default, String::as_str))
}

impl Paginator {
    /// Build from the config (endpoint > resource_defaults > client, chosen by the caller).
    pub fn from_spec(spec: Option<&PaginatorSpec>) -> Result<Paginator, String> {
        let cfg = match spec {
            None => return Ok(Paginator::Auto(Arc::default())),
            Some(PaginatorSpec::Name(kind)) => PaginatorConfig {
                kind: *kind,
                next_url_path: None,
                links_next_key: None,
                limit: None,
                offset: None,
                offset_param: None,
                limit_param: None,
                total_path: None,
                maximum_offset: None,
                base_page: None,
                page: None,
                page_param: None,
                maximum_page: None,
                cursor_path: None,
                cursor_param: None,
                has_more_path: None,
                stop_after_empty_page: None,
            },
            Some(PaginatorSpec::Config(c)) => c.clone(),
        };
        let has_more = cfg.has_more_path.as_deref().map(JsonPath::parse).transpose()?;
        let stop_after_empty = cfg.stop_after_empty_page.unwrap_or(true);
        Ok(match cfg.kind {
            PaginatorType::SinglePage => Paginator::Single,
            PaginatorType::Auto => Paginator::Auto(Arc::default()),
            PaginatorType::JsonLink => Paginator::JsonLink { next: path(cfg.next_url_path.as_ref(), "next")? },
            PaginatorType::HeaderLink => Paginator::HeaderLink { rel: cfg.links_next_key.clone().unwrap_or_else(|| "next".into()) },
            PaginatorType::Offset => {
                let limit = cfg.limit.ok_or("the offset paginator needs `limit` (the page size)")?;
                if limit == 0 {
                    return Err("the offset paginator's `limit` must be at least 1".into());
                }
                Paginator::Range(Range {
                    param: cfg.offset_param.clone().unwrap_or_else(|| "offset".into()),
                    limit: Some((cfg.limit_param.clone().unwrap_or_else(|| "limit".into()), limit)),
                    current: cfg.offset.unwrap_or(0),
                    step: limit,
                    total_path: path(cfg.total_path.as_ref(), "total")?,
                    base: 0,
                    maximum: cfg.maximum_offset,
                    has_more,
                    stop_after_empty,
                })
            }
            PaginatorType::PageNumber => {
                let base = cfg.base_page.unwrap_or(0);
                Paginator::Range(Range {
                    param: cfg.page_param.clone().unwrap_or_else(|| "page".into()),
                    limit: None,
                    current: cfg.page.unwrap_or(base),
                    step: 1,
                    total_path: path(cfg.total_path.as_ref(), "total")?,
                    base,
                    maximum: cfg.maximum_page,
                    has_more,
                    stop_after_empty,
                })
            }
            PaginatorType::Cursor => Paginator::Cursor {
                path: path(cfg.cursor_path.as_ref(), "cursors.next")?,
                param: cfg.cursor_param.clone().unwrap_or_else(|| "cursor".into()),
                has_more,
                stop_after_empty,
            },
        })
    }

    /// Parameters of the first request.
    pub fn init(&self, req: &mut Request) {
        if let Paginator::Range(r) = self {
            set_param(&mut req.url, &r.param, &r.current.to_string());
            if let Some((name, limit)) = &r.limit {
                set_param(&mut req.url, name, &limit.to_string());
            }
        }
    }

    /// Decide what follows a page of `records` records. `first` is the series' first request
    /// (the template for range pages), `req` the one just made.
    pub fn after(&mut self, first: &Request, req: &Request, headers: &HeaderMap, body: &Value, records: usize, what: &str) -> Result<Next, String> {
        if let Paginator::Auto(warned) = self {
            let warned = warned.clone();
            *self = detect(headers, body);
            let name = match self {
                Paginator::Single => "single_page",
                Paginator::JsonLink { .. } => "json_link",
                Paginator::HeaderLink { .. } => "header_link",
                Paginator::Range(_) => "page_number",
                Paginator::Cursor { .. } => "cursor",
                Paginator::Auto(_) => "auto",
            };
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!("{what}: no paginator configured; detected `{name}` from the first response. Configure `paginator` explicitly: a wrong guess can skip or repeat pages");
            }
        }
        match self {
            Paginator::Single | Paginator::Auto(_) => Ok(Next::Done),
            Paginator::JsonLink { next } => Ok(match next.find(body) {
                Some(Value::String(s)) if !s.trim().is_empty() => Next::Request(follow(req, s)?),
                _ => Next::Done,
            }),
            Paginator::HeaderLink { rel } => Ok(match link_header(headers, rel) {
                Some(link) => Next::Request(follow(req, &link)?),
                None => Next::Done,
            }),
            Paginator::Cursor { path, param, has_more, stop_after_empty } => {
                if (*stop_after_empty && records == 0) || has_more.as_ref().is_some_and(|p| is_false(p.find(body))) {
                    return Ok(Next::Done);
                }
                Ok(match path.find(body) {
                    Some(Value::Null) | None => Next::Done,
                    Some(Value::String(s)) if s.is_empty() => Next::Done,
                    Some(v) => {
                        let mut r = req.clone();
                        set_param(&mut r.url, param, &super::template::value_text(v));
                        Next::Request(r)
                    }
                })
            }
            Paginator::Range(r) => Ok(r.after(first, body, records)),
        }
    }
}

impl Range {
    fn after(&mut self, first: &Request, body: &Value, records: usize) -> Next {
        if (self.stop_after_empty && records == 0) || self.has_more.as_ref().is_some_and(|p| is_false(p.find(body))) {
            return Next::Done;
        }
        let total = match self.total_path.find(body) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        self.current = self.current.saturating_add(self.step);
        let mut end = total.map(|t| if self.limit.is_some() { t } else { self.base.saturating_add(t) });
        if let Some(m) = self.maximum {
            end = Some(end.map_or(m, |e| e.min(m)));
        }
        if end.is_some_and(|e| self.current >= e) {
            return Next::Done;
        }
        match (total, end) {
            // The total is known: every remaining page can be requested at once.
            (Some(_), Some(end)) => {
                let it = RangeIter { template: first.clone(), param: self.param.clone(), current: self.current, end, step: self.step };
                self.current = end;
                Next::Range(it)
            }
            _ => {
                let mut r = first.clone();
                set_param(&mut r.url, &self.param, &self.current.to_string());
                Next::Request(r)
            }
        }
    }
}

fn is_false(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(false)))
}

/// dlt's detection order on the first response.
fn detect(headers: &HeaderMap, body: &Value) -> Paginator {
    if link_header(headers, "next").is_some() {
        return Paginator::HeaderLink { rel: "next".into() };
    }
    let Value::Object(_) = body else { return Paginator::Single };
    let candidates = ["next", "links.next", "_links.next.href", "pagination.next", "meta.next", "paging.next", "@odata.nextLink"];
    for c in candidates {
        let Ok(p) = JsonPath::parse(&if c.starts_with('@') { format!("$['{c}']") } else { c.to_string() }) else { continue };
        if let Some(Value::String(s)) = p.find(body)
            && (s.starts_with("http://") || s.starts_with("https://") || s.starts_with('/'))
        {
            return Paginator::JsonLink { next: p };
        }
    }
    for c in ["total_pages", "pages", "totalPages", "totalpages", "meta.total_pages", "pagination.total_pages", "meta.pages", "pagination.pages"] {
        let Ok(p) = JsonPath::parse(c) else { continue };
        if p.find(body).is_some_and(Value::is_u64) {
            // The first request had no page parameter: it was page 1.
            return Paginator::Range(Range { param: "page".into(), limit: None, current: 1, step: 1, total_path: p, base: 1, maximum: None, has_more: None, stop_after_empty: true });
        }
    }
    for c in ["next", "next_cursor", "cursors.next", "cursor.next", "meta.next_cursor", "pagination.next_cursor", "response_metadata.next_cursor"] {
        let Ok(p) = JsonPath::parse(c) else { continue };
        if matches!(p.find(body), Some(Value::String(s)) if !s.is_empty()) || p.find(body).is_some_and(Value::is_number) {
            return Paginator::Cursor { path: p, param: "cursor".into(), has_more: None, stop_after_empty: true };
        }
    }
    Paginator::Single
}

/// The request for a next link (absolute or relative to the current URL). The link carries
/// its own query, so the original params are not repeated.
fn follow(req: &Request, link: &str) -> Result<Request, String> {
    let url = req.url.join(link.trim()).map_err(|e| format!("the next link is not a URL: {e}"))?;
    Ok(Request { url, ..req.clone() })
}

/// The URL of relation `rel` in an RFC 8288 `Link` header.
pub fn link_header(headers: &HeaderMap, rel: &str) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        for part in split_links(text) {
            let Some((target, params)) = part.trim().strip_prefix('<').and_then(|p| p.split_once('>')) else { continue };
            let matches = params.split(';').any(|param| {
                let Some((k, v)) = param.split_once('=') else { return false };
                k.trim().eq_ignore_ascii_case("rel") && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case(rel))
            });
            if matches {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// Split a Link header on the commas between links (not those inside `<…>` or quotes).
fn split_links(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' if !quoted => depth = true,
            '>' if !quoted => depth = false,
            '"' => quoted = !quoted,
            ',' if !depth && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Set a query parameter, replacing any earlier value.
pub fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut q = url.query_pairs_mut();
    q.clear();
    for (k, v) in &kept {
        q.append_pair(k, v);
    }
    q.append_pair(name, value);
}

/// One page of records.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Value>,
    /// Body size, to bound what is held before a batch is sent.
    pub bytes: usize,
}

type Fetch = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Request, Response), IngestionError>> + Send>>;

/// The pages of one endpoint, fetched lazily.
pub struct Series {
    http: Arc<Http>,
    /// `resource issues`, for messages.
    what: String,
    selector: Option<JsonPath>,
    paginator: Paginator,
    first: Request,
    next: Option<Request>,
    range: Option<RangeIter>,
    inflight: FuturesOrdered<Fetch>,
    parallel: usize,
    seen: HashSet<String>,
    last_body: Option<u64>,
    pages: u64,
}

impl Series {
    pub fn new(http: Arc<Http>, what: String, selector: Option<JsonPath>, paginator: Paginator, mut first: Request, parallel: usize) -> Series {
        paginator.init(&mut first);
        let mut seen = HashSet::new();
        seen.insert(first.fingerprint());
        Series { http, what, selector, paginator, next: Some(first.clone()), first, range: None, inflight: FuturesOrdered::new(), parallel: parallel.max(1), seen, last_body: None, pages: 0 }
    }

    /// The next page, or None when the endpoint has no more.
    pub async fn next_page(&mut self) -> Result<Option<Page>, IngestionError> {
        // Keep up to `parallel` range pages in flight.
        if let Some(range) = self.range.as_mut() {
            while self.inflight.len() < self.parallel {
                let Some(req) = range.next() else { break };
                let http = self.http.clone();
                let what = self.what.clone();
                self.inflight.push_back(Box::pin(async move {
                    let resp = http.send(&req, &what).await?;
                    Ok((req, resp))
                }));
            }
        }
        if let Some(result) = self.inflight.next().await {
            return self.range_page(result?).map(Some);
        }
        let Some(req) = self.next.take() else { return Ok(None) };
        let resp = self.http.send(&req, &self.what).await?;
        let digest = digest(&resp.body);
        let bytes = resp.body.len();
        let mut body = self.parse(&req, &resp)?;
        let records = self.select(&req, &mut body)?;
        self.pages += 1;
        if !records.is_empty() && self.last_body == Some(digest) {
            return Err(self.loop_error(&req));
        }
        self.last_body = Some(digest);
        let next = self.paginator.after(&self.first, &req, &resp.headers, &body, records.len(), &self.what).map_err(|m| self.config_error(&req, &m))?;
        match next {
            Next::Done => {}
            Next::Request(r) => {
                if !self.seen.insert(r.fingerprint()) {
                    return Err(self.loop_error(&r));
                }
                self.next = Some(r);
            }
            Next::Range(it) => self.range = Some(it),
        }
        Ok(Some(Page { records, bytes }))
    }

    fn range_page(&mut self, (req, resp): (Request, Response)) -> Result<Page, IngestionError> {
        self.pages += 1;
        let bytes = resp.body.len();
        let mut body = self.parse(&req, &resp)?;
        let records = self.select(&req, &mut body)?;
        Ok(Page { records, bytes })
    }

    fn parse(&self, req: &Request, resp: &Response) -> Result<Value, IngestionError> {
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            IngestionError::permanent(code::SOURCE_ERROR, self.http.source, self.http.redact(&format!("{}: {} {}: the response is not JSON ({e})", self.what, req.method, self.http.show(&req.url))))
        })
    }

    fn select(&self, req: &Request, body: &mut Value) -> Result<Vec<Value>, IngestionError> {
        let keys = match &*body {
            Value::Object(m) => format!(" (the response has keys: {})", m.keys().take(20).cloned().collect::<Vec<_>>().join(", ")),
            _ => String::new(),
        };
        select::records(body, self.selector.as_ref()).map_err(|e| self.config_error(req, &format!("{e}{keys}")))
    }

    /// The response does not match the config (no list at `data_selector`, a bad link): the
    /// config must change, so CONFIGURATION, naming the resource and the (redacted) URL.
    fn config_error(&self, req: &Request, m: &str) -> IngestionError {
        IngestionError::configuration(code::INVALID_CONFIG, self.http.source, self.http.redact(&format!("{}: {} {}: {m}", self.what, req.method, self.http.show(&req.url))))
    }

    fn loop_error(&self, req: &Request) -> IngestionError {
        IngestionError::permanent(
            code::SOURCE_ERROR,
            self.http.source,
            self.http.redact(&format!(
                "{}: page loop after {} page(s): the API sends back to {} {} again (its next link or cursor does not advance); check the paginator settings",
                self.what,
                self.pages,
                req.method,
                self.http.show(&req.url)
            )),
        )
    }
}

fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest12::header::HeaderValue;
    use serde_json::json;

    fn req(url: &str) -> Request {
        Request::get(Url::parse(url).expect("url"))
    }

    #[test]
    fn link_headers_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert("link", HeaderValue::from_static("<https://x/a?page=2>; rel=\"next\", <https://x/a?page=9, odd>; rel=\"last\""));
        assert_eq!(link_header(&h, "next").as_deref(), Some("https://x/a?page=2"));
        assert_eq!(link_header(&h, "last").as_deref(), Some("https://x/a?page=9, odd"));
        assert_eq!(link_header(&h, "prev"), None);
    }

    #[test]
    fn offset_with_a_total_yields_the_remaining_range() {
        let spec: PaginatorSpec = serde_json::from_value(json!({"type": "offset", "limit": 10, "total_path": "meta.total"})).expect("spec");
        let mut p = Paginator::from_spec(Some(&spec)).expect("paginator");
        let mut first = req("http://h/items?x=1");
        p.init(&mut first);
        assert_eq!(first.url.as_str(), "http://h/items?x=1&offset=0&limit=10");
        let next = p.after(&first, &first, &HeaderMap::new(), &json!({"meta": {"total": 35}}), 10, "t").expect("after");
        let Next::Range(it) = next else { panic!("expected a range") };
        let urls: Vec<String> = it.map(|r| r.url.to_string()).collect();
        assert_eq!(urls, vec!["http://h/items?x=1&limit=10&offset=10", "http://h/items?x=1&limit=10&offset=20", "http://h/items?x=1&limit=10&offset=30"]);
    }

    #[test]
    fn page_number_without_a_total_stops_at_an_empty_page() {
        let spec: PaginatorSpec = serde_json::from_value(json!({"type": "page_number", "base_page": 1})).expect("spec");
        let mut p = Paginator::from_spec(Some(&spec)).expect("paginator");
        let mut first = req("http://h/items");
        p.init(&mut first);
        let Next::Request(second) = p.after(&first, &first, &HeaderMap::new(), &json!([]), 3, "t").expect("after") else { panic!("expected a request") };
        assert_eq!(second.url.as_str(), "http://h/items?page=2");
        assert!(matches!(p.after(&first, &second, &HeaderMap::new(), &json!([]), 0, "t"), Ok(Next::Done)));
    }

    #[test]
    fn auto_detects_like_dlt() {
        let mut h = HeaderMap::new();
        assert!(matches!(detect(&h, &json!({"next": "https://x/2", "data": []})), Paginator::JsonLink { .. }));
        assert!(matches!(detect(&h, &json!({"total_pages": 3, "data": []})), Paginator::Range(_)));
        assert!(matches!(detect(&h, &json!({"next_cursor": "abc", "data": []})), Paginator::Cursor { .. }));
        assert!(matches!(detect(&h, &json!([1])), Paginator::Single));
        h.insert("link", HeaderValue::from_static("</x?page=2>; rel=next"));
        assert!(matches!(detect(&h, &json!([1])), Paginator::HeaderLink { .. }));
    }
}
