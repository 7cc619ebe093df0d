//! Prometheus metrics of a run, recorded with the `metrics` crate into a local
//! `metrics-exporter-prometheus` recorder (no global state, no listener), and delivered once at
//! the end of the run: a Pushgateway push and/or an atomically written node_exporter textfile.
//!
//! Metrics (`source` = the entry's source name, or `airbyte`):
//! - `floe_ingestion_errors_total{source,category,code}`: entries that ended in an error
//!   (retried attempts are counted by the next one, not here);
//! - `floe_ingestion_retry_total{source}`: attempts that failed and were retried;
//! - `floe_ingestion_rows_failed_total{source}`: records rejected (PARTIAL loads);
//! - `floe_ingestion_rows_loaded_total{entry,source}`: rows committed;
//! - `floe_ingestion_duration_seconds{entry,source}`: wall time of the entry, retries included;
//! - `floe_ingestion_last_success_timestamp_seconds{entry,source}`: when the entry last loaded
//!   without error.
//!
//! Counters count this run only (a batch job's counters restart with each push).
//!
//! Pushgateway: one `PUT <pushgateway>/metrics/job/floe/instance/<product name or "default">`
//! replaces the run's group; no run id or host name is part of the key, so runs replace each
//! other instead of piling up. The last-success timestamp must survive a failed run, so it is
//! not in that group: each entry that succeeded `POST`s it to its own group
//! `…/instance/<i>/entry/<entry>`, which a failure never touches.
//!
//! Textfile: the same exposition, written to a temporary file beside the target and renamed
//! over it; the last-success timestamps of entries that did not succeed this run are carried
//! over from the previous file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{counter, describe_counter, describe_gauge, gauge, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::error::IngestionError;
use crate::run::report::EntryResult;

pub const ERRORS: &str = "floe_ingestion_errors_total";
pub const RETRIES: &str = "floe_ingestion_retry_total";
pub const ROWS_FAILED: &str = "floe_ingestion_rows_failed_total";
pub const ROWS_LOADED: &str = "floe_ingestion_rows_loaded_total";
pub const DURATION: &str = "floe_ingestion_duration_seconds";
pub const LAST_SUCCESS: &str = "floe_ingestion_last_success_timestamp_seconds";

/// The Pushgateway `job` label.
const JOB: &str = "floe";
/// Attempts of one Pushgateway request answered with 5xx.
const PUSH_ATTEMPTS: u32 = 2;
/// Content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where metrics go.
pub struct Targets {
    /// Pushgateway base URL.
    pub pushgateway: Option<String>,
    /// The `instance` grouping label.
    pub instance: String,
    /// node_exporter textfile.
    pub textfile: Option<PathBuf>,
    /// Every entry of the artifact: the only ones whose last success is carried over.
    pub entries: BTreeSet<String>,
}

/// The run's metrics.
pub struct Collector {
    recorder: PrometheusRecorder,
    /// Entries that succeeded in this run: entry → (source, unix time).
    successes: Mutex<BTreeMap<String, (String, f64)>>,
    targets: Targets,
}

fn describe() {
    describe_counter!(ERRORS, "Ingestion entries that ended in an error, by category and code.");
    describe_counter!(RETRIES, "Ingestion attempts that failed and were retried.");
    describe_counter!(ROWS_FAILED, "Records rejected by ingestion entries.");
    describe_counter!(ROWS_LOADED, "Rows committed by an ingestion entry.");
    describe_gauge!(DURATION, "Wall time of the last run of an ingestion entry, retries included.");
    describe_gauge!(LAST_SUCCESS, "Unix time at which an ingestion entry last loaded without error.");
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}

impl Collector {
    pub fn new(targets: Targets) -> Collector {
        let recorder = PrometheusBuilder::new().build_recorder();
        with_local_recorder(&recorder, describe);
        Collector { recorder, successes: Mutex::new(BTreeMap::new()), targets }
    }

    /// An entry started: its per-source counters exist from now on, at zero.
    pub fn started(&self, source: &str) {
        let s = source.to_string();
        with_local_recorder(&self.recorder, || {
            counter!(RETRIES, "source" => s.clone()).increment(0);
            counter!(ROWS_FAILED, "source" => s.clone()).increment(0);
        });
    }

    pub fn retried(&self, source: &str) {
        let s = source.to_string();
        with_local_recorder(&self.recorder, || counter!(RETRIES, "source" => s).increment(1));
    }

    pub fn finished(&self, entry: &str, source: &str, result: &EntryResult) {
        let (e, s) = (entry.to_string(), source.to_string());
        with_local_recorder(&self.recorder, || {
            counter!(ROWS_LOADED, "entry" => e.clone(), "source" => s.clone()).increment(result.rows_loaded);
            gauge!(DURATION, "entry" => e.clone(), "source" => s.clone()).set(result.duration_seconds);
            let failed = result.rows_rejected.max(result.error.as_ref().and_then(|x| x.failed_records).unwrap_or(0));
            counter!(ROWS_FAILED, "source" => s.clone()).increment(failed);
        });
        match &result.error {
            Some(err) => self.error(source, err),
            None => {
                self.successes.lock().unwrap_or_else(PoisonError::into_inner).insert(entry.to_string(), (source.to_string(), unix_now()));
            }
        }
    }

    /// An entry that ended in `err` (also used for interrupted entries).
    pub fn error(&self, source: &str, err: &IngestionError) {
        let (s, cat, code) = (source.to_string(), err.category.as_str(), err.code.clone());
        with_local_recorder(&self.recorder, || counter!(ERRORS, "source" => s, "category" => cat, "code" => code).increment(1));
    }

    /// The run's exposition, without the last-success timestamps.
    pub fn render_run(&self) -> String {
        let handle = self.recorder.handle();
        handle.run_upkeep();
        handle.render()
    }

    fn successes(&self) -> BTreeMap<String, (String, f64)> {
        self.successes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Deliver to the Pushgateway and the textfile, giving up at `deadline`.
    pub async fn deliver(&self, deadline: tokio::time::Instant) {
        let run = self.render_run();
        let successes = self.successes();
        if let Some(path) = &self.targets.textfile {
            let mut last = previous_last_success(path, &self.targets.entries);
            for (entry, (source, ts)) in &successes {
                last.insert(entry.clone(), (source.clone(), *ts));
            }
            let text = format!("{run}{}", render_last_success(last.iter().map(|(e, (s, t))| (Some(e.as_str()), s.as_str(), *t))));
            match write_atomically(path, text.as_bytes()) {
                Ok(()) => tracing::debug!("metrics written to {}", path.display()),
                Err(e) => tracing::warn!("metrics: cannot write the textfile {}: {e}", path.display()),
            }
        }
        if let Some(base) = &self.targets.pushgateway {
            let push = push(base, &self.targets.instance, run, &successes);
            if tokio::time::timeout_at(deadline, push).await.is_err() {
                tracing::warn!("metrics: the Pushgateway at {} did not answer before the run ended; metrics not pushed", crate::secrets::redact_url_passwords(base));
            }
        }
    }
}

/// Exposition of last-success gauges; `entry` None leaves the label out (it is then in the
/// Pushgateway grouping key, which pushed metrics must not repeat).
fn render_last_success<'a>(items: impl Iterator<Item = (Option<&'a str>, &'a str, f64)>) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    with_local_recorder(&recorder, || {
        describe();
        for (entry, source, ts) in items {
            match entry {
                Some(e) => gauge!(LAST_SUCCESS, "entry" => e.to_string(), "source" => source.to_string()).set(ts),
                None => gauge!(LAST_SUCCESS, "source" => source.to_string()).set(ts),
            }
        }
    });
    recorder.handle().render()
}

/// A Pushgateway grouping-key label value as a path segment: plain when it is safe, else
/// `@base64` (URL-safe alphabet) as the Pushgateway documents.
pub fn grouping_segment(label: &str, value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) && value != "." && value != ".." {
        format!("{label}/{value}")
    } else {
        format!("{label}@base64/{}", base64url(value.as_bytes()))
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    if out.is_empty() {
        out.push('=');
    }
    out
}

async fn push(base: &str, instance: &str, run: String, successes: &BTreeMap<String, (String, f64)>) {
    let shown = crate::secrets::redact_url_passwords(base);
    let client = match reqwest12::Client::builder().timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(3)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("metrics: cannot build the HTTP client ({e}); metrics not pushed");
            return;
        }
    };
    let group = format!("{}/metrics/job/{JOB}/{}", base.trim_end_matches('/'), grouping_segment("instance", instance));
    if let Err(e) = send(&client, reqwest12::Method::PUT, &group, run).await {
        tracing::warn!("metrics: push to the Pushgateway at {shown} failed: {e}");
        return;
    }
    for (entry, (source, ts)) in successes {
        let body = render_last_success(std::iter::once((None, source.as_str(), *ts)));
        let url = format!("{group}/{}", grouping_segment("entry", entry));
        if let Err(e) = send(&client, reqwest12::Method::POST, &url, body).await {
            tracing::warn!("metrics: push of {entry}'s last success to the Pushgateway at {shown} failed: {e}");
        }
    }
}

async fn send(client: &reqwest12::Client, method: reqwest12::Method, url: &str, body: String) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.request(method.clone(), url).header("content-type", TEXT_FORMAT).body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_server_error() && attempt < PUSH_ATTEMPTS => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(format!("HTTP {status}: {}", text.trim().chars().take(300).collect::<String>()));
            }
            Err(e) if e.is_timeout() => return Err("no answer in time".into()),
            Err(e) => return Err(crate::secrets::redact_url_passwords(&e.without_url().to_string())),
        }
    }
}

/// Write `bytes` to a temporary file beside `path`, then rename it over `path`, so a reader
/// (node_exporter) never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    // Not `*.prom`: the textfile collector ignores it while it is being written.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Last-success timestamps in an earlier textfile, for entries of the artifact.
fn previous_last_success(path: &Path, entries: &BTreeSet<String>) -> BTreeMap<String, (String, f64)> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return out };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(LAST_SUCCESS).and_then(|r| r.strip_prefix('{')) else { continue };
        let Some((labels, value)) = parse_labels(rest) else { continue };
        let Ok(ts) = value.trim().parse::<f64>() else { continue };
        if let (Some(entry), Some(source)) = (labels.get("entry"), labels.get("source"))
            && entries.contains(entry)
            && ts.is_finite()
        {
            out.insert(entry.clone(), (source.clone(), ts));
        }
    }
    out
}

/// `a="x",b="y\"z"} 12` (after the opening brace) → labels and the rest after `}`.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.insert(name.trim().to_string(), value);
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_segments() {
        assert_eq!(grouping_segment("instance", "sales-platform"), "instance/sales-platform");
        assert_eq!(grouping_segment("instance", "a/b"), "instance@base64/YS9i");
        assert_eq!(grouping_segment("instance", ""), "instance@base64/=");
        assert_eq!(base64url(b"\xfb\xff"), "-_8=");
    }

    #[test]
    fn parses_labels() {
        let (l, rest) = parse_labels(r#"entry="a",source="x\"y"} 17.5"#).expect("labels");
        assert_eq!(l.get("entry").map(String::as_str), Some("a"));
        assert_eq!(l.get("source").map(String::as_str), Some("x\"y"));
        assert_eq!(rest.trim(), "17.5");
        assert!(parse_labels("entry=\"a").is_none());
    }

    #[test]
    fn renders_the_adr_metrics() {
        let c = Collector::new(Targets { pushgateway: None, instance: "default".into(), textfile: None, entries: BTreeSet::new() });
        c.started("filesystem");
        c.retried("filesystem");
        c.error("filesystem", &IngestionError::permanent("SOURCE_NOT_FOUND", "filesystem", "gone"));
        let text = c.render_run();
        assert!(text.contains(r#"floe_ingestion_errors_total{source="filesystem",category="PERMANENT",code="SOURCE_NOT_FOUND"} 1"#), "{text}");
        assert!(text.contains(r#"floe_ingestion_retry_total{source="filesystem"} 1"#), "{text}");
        assert!(text.contains("# HELP floe_ingestion_rows_failed_total"), "{text}");
        let last = render_last_success(std::iter::once((None, "filesystem", 12.5)));
        assert!(last.contains(r#"floe_ingestion_last_success_timestamp_seconds{source="filesystem"} 12.5"#), "{last}");
    }
}
