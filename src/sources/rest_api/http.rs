//! One HTTP request, done right: auth applied, a timeout on every attempt, retries on 429,
//! 5xx, timeouts and connection errors (honouring `Retry-After` in seconds or as an HTTP
//! date, and GitHub's `x-ratelimit-reset`), bounded attempts with exponential backoff, and
//! every failure classified into the error taxonomy with a redacted message.
//!
//! Why floe sleeps through short waits but not long ones: a `Retry-After` longer than
//! `request_max_retry_delay` ends the entry TRANSIENT `RATE_LIMITED` with
//! `retry_after_seconds`, so the run's retry policy (or the scheduler) decides, instead of a
//! process sleeping for an hour.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest12::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest12::{Method, StatusCode, Url};
use serde_json::Value;

use super::auth::{Auth, OAuth2};
use crate::error::{code, IngestionError};
use crate::secrets::{Redactor, Secret};

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl Policy {
    /// Backoff before attempt `attempt + 1` (attempt counts from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.backoff.saturating_mul(factor).min(self.max_delay)
    }
}

/// A request, fully resolved except for auth.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub json: Option<Value>,
    pub form: Option<Vec<(String, String)>>,
}

impl Request {
    #[cfg(test)]
    pub fn get(url: Url) -> Request {
        Request { method: Method::GET, url, headers: Vec::new(), json: None, form: None }
    }

    /// Identity of the request, to notice a paginator going round in circles.
    pub fn fingerprint(&self) -> String {
        format!("{} {} {}", self.method, self.url, self.json.as_ref().map(Value::to_string).unwrap_or_default())
    }
}

/// A successful response.
#[derive(Debug)]
pub struct Response {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The shared HTTP client of a source.
#[derive(Debug)]
pub struct Http {
    client: reqwest12::Client,
    auth: Auth,
    headers: HeaderMap,
    policy: Policy,
    redactor: Arc<RwLock<Redactor>>,
    /// Origins the config names (base URL, absolute endpoint paths): the only ones that get
    /// credentials, so a next link pointing elsewhere cannot collect a token.
    trusted: Vec<reqwest12::Url>,
    warned_untrusted: std::sync::atomic::AtomicBool,
    /// `rest_api` or `github`, for errors.
    pub source: &'static str,
}

/// What one attempt came to.
enum Attempt {
    Done(Response),
    /// Retryable: the error to report if no attempt is left, and a wait the server asked for.
    Retry(IngestionError, Option<Duration>),
    Fail(IngestionError),
    /// The OAuth2 token was refused: fetch a new one and try again (once).
    Reauthenticate(IngestionError),
}

impl Http {
    /// Build the client. Header names/values are checked here (a config error names the
    /// header, never its value).
    pub fn new(source: &'static str, auth: Auth, headers: &[(String, String)], policy: Policy, redactor: Redactor, trusted: Vec<Url>) -> Result<Http, IngestionError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let (name, value) = header(k, v).map_err(|m| IngestionError::configuration(code::INVALID_CONFIG, source, m))?;
            map.insert(name, value);
        }
        let client = reqwest12::Client::builder()
            .user_agent(concat!("floe/", env!("CARGO_PKG_VERSION")))
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, source, format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(Http { client, auth, headers: map, policy, redactor: Arc::new(RwLock::new(redactor)), trusted, warned_untrusted: Default::default(), source })
    }

    /// Scrub secrets out of a message.
    pub fn redact(&self, text: &str) -> String {
        match self.redactor.read() {
            Ok(r) => r.redact(text),
            // A poisoned lock still holds the values; never show the text unredacted.
            Err(p) => p.into_inner().redact(text),
        }
    }

    /// A URL for messages: without the API key (never added to `Request::url`) and redacted.
    pub fn show(&self, url: &Url) -> String {
        self.redact(url.as_str())
    }

    /// Send `req` with retries; `what` names the resource for messages.
    pub async fn send(&self, req: &Request, what: &str) -> Result<Response, IngestionError> {
        self.send_with(req, what, true).await
    }

    async fn send_with(&self, req: &Request, what: &str, with_auth: bool) -> Result<Response, IngestionError> {
        let mut attempt = 1u32;
        let mut reauthenticated = false;
        let mut force_new_token = false;
        loop {
            let outcome = self.attempt(req, what, with_auth, force_new_token).await?;
            force_new_token = false;
            let (err, asked) = match outcome {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Reauthenticate(e) => {
                    if reauthenticated {
                        return Err(e);
                    }
                    reauthenticated = true;
                    force_new_token = true;
                    continue;
                }
                Attempt::Retry(e, asked) => (e, asked),
            };
            let wait = asked.unwrap_or_else(|| self.policy.backoff(attempt));
            if wait > self.policy.max_delay {
                // Too long to sleep through: let the run's retry policy decide.
                let secs = wait.as_secs_f64().ceil() as u64;
                return Err(err.with_retry_after(Some(secs)));
            }
            if attempt >= self.policy.max_attempts {
                let hint = if err.code == code::RATE_LIMITED { Some(wait.as_secs_f64().ceil().max(1.0) as u64) } else { err.retry_after_seconds };
                let message = format!("{} (gave up after {attempt} attempt{})", err.message, if attempt == 1 { "" } else { "s" });
                return Err(IngestionError { message, ..err }.with_retry_after(hint));
            }
            tracing::warn!(source = self.source, "{}; retrying in {:.1}s (attempt {}/{})", err.message, wait.as_secs_f64(), attempt + 1, self.policy.max_attempts);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt. `Err` only for failures that must not be retried at all (auth setup).
    async fn attempt(&self, req: &Request, what: &str, with_auth: bool, force_new_token: bool) -> Result<Attempt, IngestionError> {
        let mut url = req.url.clone();
        let mut builder_headers = self.headers.clone();
        for (k, v) in &req.headers {
            let (name, value) = header(k, v).map_err(|m| IngestionError::configuration(code::INVALID_CONFIG, self.source, format!("{what}: {m}")))?;
            builder_headers.insert(name, value);
        }
        let mut basic: Option<(&str, &str)> = None;
        let trusted = self.trusted.iter().any(|t| t.origin() == url.origin());
        if with_auth && !trusted && !matches!(self.auth, Auth::None) && !self.warned_untrusted.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(source = self.source, "{what}: {} is not on the configured base_url's host: sent without credentials", self.show(&req.url));
        }
        if with_auth && trusted {
            match &self.auth {
                Auth::None => {}
                Auth::Bearer(token) => insert_secret(&mut builder_headers, AUTHORIZATION, &format!("Bearer {token}"))?,
                Auth::ApiKeyHeader { name, value } => {
                    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| IngestionError::configuration(code::INVALID_CONFIG, self.source, format!("auth.name `{name}` is not a valid header name")))?;
                    insert_secret(&mut builder_headers, name, value)?;
                }
                // Added to the sent URL only: `req.url`, which messages show, never holds it.
                Auth::ApiKeyQuery { name, value } => {
                    url.query_pairs_mut().append_pair(name, value);
                }
                Auth::Basic { username, password } => basic = Some((username, password)),
                Auth::OAuth2(o) => {
                    let token = self.oauth_token(o, force_new_token).await?;
                    insert_secret(&mut builder_headers, AUTHORIZATION, &format!("Bearer {token}"))?;
                }
            }
        }
        let mut rb = self.client.request(req.method.clone(), url).headers(builder_headers);
        if let Some((u, p)) = basic {
            rb = rb.basic_auth(u, Some(p));
        }
        if let Some(json) = &req.json {
            rb = rb.header(CONTENT_TYPE, "application/json").body(serde_json::to_vec(json).unwrap_or_default());
        }
        if let Some(form) = &req.form {
            rb = rb.form(form);
        }
        let shown = format!("{what}: {} {}", req.method, self.show(&req.url));
        let response = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                let err = self.transport_error(&e, &shown);
                return Ok(if err.retryable { Attempt::Retry(err, None) } else { Attempt::Fail(err) });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(match response.bytes().await {
                Ok(body) => Attempt::Done(Response { headers, body }),
                Err(e) => Attempt::Retry(self.transport_error(&e, &shown), None),
            });
        }
        let body = response.bytes().await.unwrap_or_default();
        Ok(self.classify(status, &headers, &body, &shown, with_auth))
    }

    fn transport_error(&self, e: &reqwest12::Error, shown: &str) -> IngestionError {
        // reqwest puts the URL (with an API key in the query) in its message: drop it, keep
        // the cause chain.
        let mut cause = String::new();
        let mut certificate = false;
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            cause = s.to_string();
            certificate |= cause.contains("certificate");
            src = s.source();
        }
        if e.is_connect() && certificate {
            // rustls refused the server's certificate: no request was sent (so no credential
            // left floe), and retrying cannot help.
            IngestionError::permanent(
                code::TLS_CERTIFICATE,
                self.source,
                self.redact(&format!(
                    "{shown}: the server's https certificate is not trusted ({cause}); floe verifies certificates against the Mozilla root store and has no switch to turn that off: give the server a certificate from a public CA"
                )),
            )
        } else if e.is_timeout() {
            let secs = self.policy.timeout.as_secs_f64();
            IngestionError::transient(code::TIMEOUT, self.source, self.redact(&format!("{shown}: no response within {secs}s (client.timeout_seconds)")))
        } else if e.is_connect() {
            IngestionError::transient(code::UNAVAILABLE, self.source, self.redact(&format!("{shown}: cannot connect: {cause}")))
        } else {
            let kind = if e.is_body() || e.is_decode() { "reading the response failed" } else { "the request failed" };
            IngestionError::transient(code::UNAVAILABLE, self.source, self.redact(&format!("{shown}: {kind}{}{cause}", if cause.is_empty() { "" } else { ": " })))
        }
    }

    /// Turn a non-2xx response into an attempt outcome.
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8], shown: &str, with_auth: bool) -> Attempt {
        let text = format!("{shown}: HTTP {}{}", status.as_u16(), status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default());
        let text = match snippet(body) {
            Some(s) => format!("{text}: {s}"),
            None => text,
        };
        let message = self.redact(&text);
        let limited = rate_limit_wait(headers);
        match status.as_u16() {
            429 => Attempt::Retry(IngestionError::transient(code::RATE_LIMITED, self.source, message), limited.or_else(|| retry_after(headers))),
            // GitHub answers 403 when the rate limit is spent (and for secondary limits, with
            // Retry-After): that is waiting, not a bad credential.
            403 if limited.is_some() || retry_after(headers).is_some() => {
                Attempt::Retry(IngestionError::transient(code::RATE_LIMITED, self.source, message), limited.or_else(|| retry_after(headers)))
            }
            401 if with_auth && matches!(self.auth, Auth::OAuth2(_)) => Attempt::Reauthenticate(IngestionError::permanent(code::AUTH_FAILED, self.source, message)),
            401 | 403 => Attempt::Fail(IngestionError::permanent(code::AUTH_FAILED, self.source, message)),
            404 | 410 => Attempt::Fail(IngestionError::permanent(code::SOURCE_NOT_FOUND, self.source, message)),
            408 => Attempt::Retry(IngestionError::transient(code::TIMEOUT, self.source, message), retry_after(headers)),
            s if s >= 500 => Attempt::Retry(IngestionError::transient(code::UNAVAILABLE, self.source, message), retry_after(headers)),
            _ => Attempt::Fail(IngestionError::permanent(code::SOURCE_ERROR, self.source, message)),
        }
    }

    /// The current OAuth2 access token, fetched or refreshed when needed.
    async fn oauth_token(&self, o: &OAuth2, force_new: bool) -> Result<String, IngestionError> {
        let mut slot = o.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.is_fresh() && !force_new) {
            return Ok(t.value.clone());
        }
        let url = Url::parse(&o.token_url)
            .map_err(|e| IngestionError::configuration(code::INVALID_CONFIG, self.source, self.redact(&format!("auth.access_token_url `{}` is not a URL: {e}", o.token_url))))?;
        let req = Request { method: Method::POST, url, headers: vec![("accept".into(), "application/json".into())], json: None, form: Some(o.form()) };
        let what = "oauth2 token request";
        let resp = Box::pin(self.send_with(&req, what, false)).await.map_err(|mut e| {
            if e.code == code::SOURCE_ERROR {
                // 400 from a token endpoint means the client credentials were refused.
                e = IngestionError { code: code::AUTH_FAILED.to_string(), ..e };
            }
            e
        })?;
        let token = o.parse_token(&resp.body).ok_or_else(|| {
            // Never echo the body: it may hold a token.
            IngestionError::permanent(code::AUTH_FAILED, self.source, self.redact(&format!("{what}: POST {}: the response has no `access_token`", o.token_url)))
        })?;
        if let Ok(mut r) = self.redactor.write() {
            r.add(&Secret::new(token.value.clone()));
        }
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }
}

/// A checked header (the error names the header, never the value).
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header `{name}` is not a valid header name"))?;
    let v = HeaderValue::from_str(value).map_err(|_| format!("header `{name}` has a value that is not a valid header value"))?;
    Ok((n, v))
}

/// Insert a credential header, marked sensitive so debug output hides it.
fn insert_secret(map: &mut HeaderMap, name: HeaderName, value: &str) -> Result<(), IngestionError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| IngestionError::configuration(code::INVALID_CONFIG, "rest_api", format!("the credential for header `{name}` is not a valid header value")))?;
    v.set_sensitive(true);
    map.insert(name, v);
    Ok(())
}

/// `Retry-After` as a wait: seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // A day at most: anything longer is as good as "much later" and cannot overflow.
        return Duration::try_from_secs_f64(secs.min(86_400.0)).ok();
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds().max(0);
    Some(Duration::from_millis(secs as u64))
}

/// The wait until an exhausted rate limit resets (`x-ratelimit-remaining: 0` with
/// `x-ratelimit-reset` as epoch seconds, GitHub's convention).
fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let remaining = headers.get("x-ratelimit-remaining")?.to_str().ok()?.trim().parse::<u64>().ok()?;
    if remaining > 0 {
        return None;
    }
    let reset = headers.get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let now = chrono::Utc::now().timestamp();
    Some(Duration::from_secs(reset.map_or(60, |r| (r - now).max(1)) as u64))
}

/// A short, single-line piece of an error body (APIs often say what was wrong).
fn snippet(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return None;
    }
    Some(if one_line.chars().count() > 200 { format!("{}…", one_line.chars().take(200).collect::<String>()) } else { one_line })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        h.insert("retry-after", HeaderValue::from_str(&later).expect("header"));
        let d = retry_after(&h).expect("date");
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn exhausted_rate_limits_wait_for_the_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("3"));
        assert_eq!(rate_limit_wait(&h), None);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (chrono::Utc::now().timestamp() + 100).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).expect("header"));
        let d = rate_limit_wait(&h).expect("wait");
        assert!(d >= Duration::from_secs(98) && d <= Duration::from_secs(100), "{d:?}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy { max_attempts: 5, backoff: Duration::from_millis(100), max_delay: Duration::from_millis(350), timeout: Duration::from_secs(1) };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
    }
}
