//! Semantic rules: what the JSON Schema cannot say. Run on the typed models after the
//! structural check passes, and report every violation, each at its key.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::diagnostics::{did_you_mean, FileDiagnostics};
use super::manifest::{AirbyteConfig, CatalogType, DltConfig, IngestionPlugin, IngestionType, LineageTransport, Manifest, RetryPolicy};
use super::schema_check::check;
use super::spec::{IngestionEntry, Spec, WriteDisposition};
use crate::secrets::{placeholders, Placeholder, SECRET_REF_RULE};
use crate::sources;

static ENTRY_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]*$").expect("static regex"));
static IDENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("static regex"));
static META_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])$").expect("static regex"));
static SEMVER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d+\.\d+\.\d+$").expect("static regex"));
const RESERVED_NAMES: &[&str] = &["default", "system", "floe", "admin", "root"];

/// The ingestion plugin blocks of a manifest by type, with their index for key paths.
pub fn ingestion_plugins(manifest: &Manifest) -> Vec<(String, &IngestionPlugin)> {
    match &manifest.plugins.ingestion {
        None => Vec::new(),
        Some(super::manifest::OneOrMany::One(p)) => vec![("plugins.ingestion".to_string(), p)],
        Some(super::manifest::OneOrMany::Many(ps)) => ps.iter().enumerate().map(|(i, p)| (format!("plugins.ingestion[{i}]"), p)).collect(),
    }
}

/// Rules of the platform manifest.
pub fn check_manifest(m: &Manifest, raw: &Value, d: &mut FileDiagnostics<'_>) {
    envelope(m.api_version.as_deref(), m.kind.as_deref(), "Manifest", d);
    if let Some(meta) = &m.metadata {
        if !META_NAME.is_match(&meta.name) {
            d.error("metadata.name", format!("invalid name \"{}\"", meta.name))
                .expected("1–63 lower-case letters, digits or `-`, starting and ending with a letter or digit");
        } else if RESERVED_NAMES.contains(&meta.name.as_str()) {
            d.error("metadata.name", format!("\"{}\" is a reserved name", meta.name)).hint(format!("reserved: {}", RESERVED_NAMES.join(", ")));
        }
        if !SEMVER.is_match(&meta.version) {
            d.error("metadata.version", format!("\"{}\" is not a semantic version", meta.version)).expected("MAJOR.MINOR.PATCH, e.g. \"1.0.0\"");
        }
        if meta.owner.trim().is_empty() {
            d.error("metadata.owner", "owner must not be empty");
        }
        if meta.description.as_ref().is_some_and(|s| s.chars().count() > 500) {
            d.error("metadata.description", "description is longer than 500 characters");
        }
    }
    for key in m.other.keys() {
        if !super::manifest::UPSTREAM_SECTIONS.contains(&key.as_str()) {
            let known = ["apiVersion", "kind", "metadata", "plugins", "observability"].into_iter().chain(super::manifest::UPSTREAM_SECTIONS.iter().copied());
            d.warning(key, format!("unknown top-level section `{key}` is ignored")).maybe_hint(did_you_mean(key, known));
        }
    }

    let mut seen: HashMap<IngestionType, String> = HashMap::new();
    for (path, plugin) in ingestion_plugins(m) {
        if let Some(first) = seen.insert(plugin.kind, path.clone()) {
            d.error(&join(&path, "type"), format!("a second `{}` ingestion plugin", plugin.kind.as_str())).hint(format!("merge it with the block at {first}"));
        }
        secret_ref(plugin.connection_secret_ref.as_deref(), &join(&path, "connection_secret_ref"), d);
        let config_path = join(&path, "config");
        let config = plugin.config.clone().unwrap_or(Value::Object(Default::default()));
        match plugin.kind {
            IngestionType::Dlt => {
                check::<DltConfig>(&config, &config_path, d);
            }
            IngestionType::Airbyte => {
                if plugin.config.is_none() {
                    d.key_error(&path, "the airbyte plugin needs a `config` block")
                        .hint("add `config: {workspace_url: https://airbyte.example.com, connection_secret_ref: airbyte-api-token}`");
                } else if check::<AirbyteConfig>(&config, &config_path, d) {
                    if let Ok(cfg) = serde_json::from_value::<AirbyteConfig>(config) {
                        airbyte_config(&cfg, plugin, &config_path, d);
                    }
                }
            }
        }
        if let Some(retry) = &plugin.retry {
            retry_policy(retry, &join(&path, "retry"), d);
        }
    }

    if let Some(catalog) = &m.plugins.catalog {
        let p = "plugins.catalog.config";
        secret_ref(catalog.connection_secret_ref.as_deref(), "plugins.catalog.connection_secret_ref", d);
        secret_ref(catalog.config.credential_secret_ref.as_deref(), &join(p, "credential_secret_ref"), d);
        secret_ref(catalog.config.token_secret_ref.as_deref(), &join(p, "token_secret_ref"), d);
        if catalog.kind == CatalogType::Rest {
            match catalog.config.uri.as_deref() {
                None => {
                    d.key_error(p, "a rest catalog needs `uri`").hint("add `uri: http://host:8181` under plugins.catalog.config");
                }
                Some(uri) => {
                    http_url(uri, &join(p, "uri"), d);
                    if catalog.config.credential_secret_ref.is_some() || catalog.config.token_secret_ref.is_some() {
                        credentials_over_http(uri, "the catalog's credentials", &join(p, "uri"), d);
                    }
                }
            }
            if catalog.config.warehouse.is_none() {
                d.key_error(p, "a rest catalog needs `warehouse`").hint("add `warehouse: <warehouse name>` under plugins.catalog.config");
            }
            if catalog.config.credential_secret_ref.is_some() && catalog.config.token_secret_ref.is_some() {
                d.error(&join(p, "token_secret_ref"), "give either credential_secret_ref or token_secret_ref, not both");
            }
        } else if let Some(uri) = catalog.config.uri.as_deref() {
            if uri.contains("://") && !uri.starts_with("sqlite:") {
                d.error(&join(p, "uri"), format!("\"{uri}\" is not an SQLite URI")).expected("sqlite:///abs/path/catalog.db or a file path");
            }
        }
    }
    if let Some(storage) = &m.plugins.storage {
        secret_ref(storage.connection_secret_ref.as_deref(), "plugins.storage.connection_secret_ref", d);
        if let Some(endpoint) = storage.config.endpoint.as_deref() {
            http_url(endpoint, "plugins.storage.config.endpoint", d);
            if storage.connection_secret_ref.is_some() {
                // S3 signs requests rather than sending the secret key, but the access key id
                // and every object travel in the clear.
                credentials_over_http(endpoint, "S3 requests (access key id and data)", "plugins.storage.config.endpoint", d);
            }
        }
    }
    if let Some(obs) = &m.observability {
        if let Some(lineage) = &obs.lineage {
            let p = "observability.lineage";
            secret_ref(lineage.api_key_secret_ref.as_deref(), &join(p, "api_key_secret_ref"), d);
            match lineage.transport {
                LineageTransport::Http => match lineage.endpoint.as_deref() {
                    Some(e) => {
                        http_url(e, &join(p, "endpoint"), d);
                        if lineage.api_key_secret_ref.is_some() {
                            credentials_over_http(e, "the lineage API key", &join(p, "endpoint"), d);
                        }
                    }
                    None => {
                        d.key_error(p, "lineage transport `http` needs `endpoint`").hint("add `endpoint: http://host:5000`");
                    }
                },
                LineageTransport::File if lineage.path.is_none() => {
                    d.key_error(p, "lineage transport `file` needs `path`").hint("add `path: lineage/events.jsonl`");
                }
                _ => {}
            }
            positive(lineage.timeout_seconds, &join(p, "timeout_seconds"), 3600.0, d);
        }
        if let Some(pg) = obs.metrics.as_ref().and_then(|mt| mt.pushgateway.as_deref()) {
            http_url(pg, "observability.metrics.pushgateway", d);
        }
    }
    let _ = raw;
}

fn airbyte_config(cfg: &AirbyteConfig, plugin: &IngestionPlugin, p: &str, d: &mut FileDiagnostics<'_>) {
    http_url(&cfg.workspace_url, &join(p, "workspace_url"), d);
    credentials_over_http(&cfg.workspace_url, "Airbyte API credentials", &join(p, "workspace_url"), d);
    secret_ref(cfg.connection_secret_ref.as_deref(), &join(p, "connection_secret_ref"), d);
    if cfg.connection_secret_ref.is_none() && plugin.connection_secret_ref.is_none() {
        d.key_error(p, "the airbyte plugin needs a secret with its API credentials")
            .hint("add `connection_secret_ref: airbyte-api-token` under the plugin's config");
    }
    positive(cfg.poll_interval_seconds, &join(p, "poll_interval_seconds"), 3600.0, d);
    positive(cfg.timeout_seconds, &join(p, "timeout_seconds"), 30.0 * 86400.0, d);
}

fn retry_policy(r: &RetryPolicy, p: &str, d: &mut FileDiagnostics<'_>) {
    if !(1..=100).contains(&r.max_attempts) {
        d.error(&join(p, "max_attempts"), format!("{} attempts is out of range", r.max_attempts)).expected("1 to 100 (1 means no retries)");
    }
    if !(0.0..=86400.0).contains(&r.initial_delay_seconds) {
        d.error(&join(p, "initial_delay_seconds"), format!("{} is out of range", r.initial_delay_seconds)).expected("0 to 86400 seconds");
    }
    if !(0.0..=7.0 * 86400.0).contains(&r.max_delay_seconds) {
        d.error(&join(p, "max_delay_seconds"), format!("{} is out of range", r.max_delay_seconds)).expected("0 to 604800 seconds");
    } else if r.max_delay_seconds < r.initial_delay_seconds {
        d.error(&join(p, "max_delay_seconds"), format!("max_delay_seconds ({}) is below initial_delay_seconds ({})", r.max_delay_seconds, r.initial_delay_seconds));
    }
    if !(1.0..=10.0).contains(&r.backoff_multiplier) {
        d.error(&join(p, "backoff_multiplier"), format!("{} is out of range", r.backoff_multiplier)).expected("1.0 to 10.0");
    }
}

/// Rules of the pipeline spec; `manifest` is needed for cross-file rules.
/// Top-level sections of upstream floe specs that floe accepts and ignores.
const UPSTREAM_SPEC_SECTIONS: &[&str] = &["platform", "transforms", "schedule", "outputPorts", "destinations", "metadata"];

pub fn check_spec(s: &Spec, manifest: Option<&Manifest>, d: &mut FileDiagnostics<'_>) {
    envelope(s.api_version.as_deref(), s.kind.as_deref(), "FloeSpec", d);
    for key in s.other.keys() {
        if !UPSTREAM_SPEC_SECTIONS.contains(&key.as_str()) {
            let known = ["apiVersion", "kind", "ingestion"].into_iter().chain(UPSTREAM_SPEC_SECTIONS.iter().copied());
            d.warning(key, format!("unknown top-level section `{key}` is ignored")).maybe_hint(did_you_mean(key, known));
        }
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let plugin_types: BTreeSet<IngestionType> = manifest.map(|m| ingestion_plugins(m).iter().map(|(_, p)| p.kind).collect()).unwrap_or_default();
    for (i, entry) in s.ingestion.iter().enumerate() {
        let p = format!("ingestion[{i}]");
        if !ENTRY_NAME.is_match(&entry.name) {
            d.error(&join(&p, "name"), format!("invalid name \"{}\"", entry.name))
                .expected("lower-case letters, digits and `_`, starting with a letter (^[a-z][a-z0-9_]*$)")
                .hint(format!("try \"{}\"", suggest_name(&entry.name)));
        }
        if let Some(first) = names.insert(entry.name.as_str(), i) {
            let pos = d.locations.value(&format!("ingestion[{first}].name"));
            d.error(&join(&p, "name"), format!("duplicate entry name \"{}\" (first used at line {})", entry.name, pos.line)).hint("entry names must be unique");
        }
        destination(&entry.destination, &join(&p, "destination"), d);
        for (logical, reference) in &entry.secret_refs {
            let kp = format!("{p}.secret_refs.{logical}");
            if !IDENT.is_match(logical) {
                d.key_error(&kp, format!("invalid secret name `{logical}`")).expected("letters, digits and `_`");
            }
            secret_ref(Some(reference), &kp, d);
        }
        match entry.kind {
            IngestionType::Dlt => {
                if entry.airbyte.is_some() {
                    d.key_error(&join(&p, "airbyte"), "an entry of `type: dlt` takes a `dlt` block, not `airbyte`").hint("remove this block or set `type: airbyte`");
                }
                if entry.dlt.is_none() {
                    d.key_error(&p, "an entry of `type: dlt` needs a `dlt` block")
                        .hint("add `dlt: {source: filesystem, config: {bucket_url: data/}}` to this entry");
                } else {
                    dlt_entry(entry, &p, d);
                }
            }
            IngestionType::Airbyte => {
                if entry.dlt.is_some() {
                    d.key_error(&join(&p, "dlt"), "an entry of `type: airbyte` takes an `airbyte` block, not `dlt`").hint("remove this block or set `type: dlt`");
                }
                match &entry.airbyte {
                    None => {
                        d.key_error(&p, "an entry of `type: airbyte` needs an `airbyte` block").hint("add `airbyte: {connection_id: \"<connection uuid>\"}` to this entry");
                    }
                    Some(a) if a.connection_id.trim().is_empty() => {
                        d.error(&join(&p, "airbyte.connection_id"), "connection_id must not be empty");
                    }
                    Some(_) => {}
                }
                if manifest.is_some() && !plugin_types.contains(&IngestionType::Airbyte) {
                    d.error(&join(&p, "type"), "this entry needs an airbyte plugin, and the manifest configures none")
                        .hint("add to manifest.yaml under plugins.ingestion: `- {type: airbyte, config: {workspace_url: https://airbyte.example.com, connection_secret_ref: airbyte-api-token}}`");
                }
            }
        }
    }
}

fn dlt_entry(entry: &IngestionEntry, p: &str, d: &mut FileDiagnostics<'_>) {
    let Some(dlt) = &entry.dlt else { return };
    let dp = join(p, "dlt");
    let Some(source) = sources::resolve(&dlt.source) else {
        let names: Vec<&str> = sources::REGISTRY.iter().map(|k| k.name).collect();
        d.error(&join(&dp, "source"), format!("unknown source \"{}\": the embedded engine does not provide it", dlt.source))
            .expected(format!("one of {} (or dlt.sources.<name>[.<function>])", names.join(", ")))
            .maybe_hint(did_you_mean(dlt.source.rsplit('.').next().unwrap_or(&dlt.source), names.iter().copied()));
        return;
    };
    if let Some(inc) = &dlt.incremental {
        if inc.cursor_column.trim().is_empty() {
            d.error(&join(&dp, "incremental.cursor_column"), "cursor_column must not be empty");
        }
        positive(inc.lag_seconds, &join(&dp, "incremental.lag_seconds"), 30.0 * 86400.0, d);
    }
    // The source's own settings, checked now rather than first at run time.
    let config_path = join(&dp, "config");
    match &dlt.config {
        None => (source.missing_config)(&dp, d),
        Some(config) => {
            if (source.check_config)(config, &config_path, d) {
                (source.check_resource)(config, dlt.resource.as_deref(), &dp, d);
            }
            declared_secrets(config, &config_path, entry, d);
        }
    }
    if dlt.write_disposition == Some(WriteDisposition::Merge) {
        let resource_key = dlt.config.as_ref().and_then(|c| (source.resource_key)(c, dlt.resource.as_deref()));
        let has_key = dlt.primary_key.as_ref().is_some_and(|k| !k.as_slice().is_empty()) || source.natural_key.is_some() || resource_key.is_some();
        if !has_key {
            d.key_error(&join(&dp, "write_disposition"), "merge needs a primary key")
                .hint(format!("add `primary_key: id` (the column(s) that identify a row) under {dp}"));
        }
    }
}

/// Every `${secrets.NAME}` in the source config must be declared in `secret_refs`.
fn declared_secrets(config: &Value, path: &str, entry: &IngestionEntry, d: &mut FileDiagnostics<'_>) {
    walk_strings(config, path, &mut |p, s| {
        for ph in placeholders(s) {
            match ph {
                Placeholder::Secret(name) if !entry.secret_refs.contains_key(name) => {
                    let declared: Vec<&str> = entry.secret_refs.keys().map(String::as_str).collect();
                    d.error(p, format!("`${{secrets.{name}}}` is not declared in this entry's secret_refs"))
                        .hint(did_you_mean(name, declared.iter().copied()).unwrap_or_else(|| format!("add `secret_refs: {{{name}: <secret-name>}}` to the entry")));
                }
                Placeholder::Malformed(text) => {
                    d.error(p, format!("malformed placeholder `{text}`")).expected("${secrets.NAME}, where NAME is a key of secret_refs");
                }
                _ => {}
            }
        }
    });
}

fn walk_strings(v: &Value, path: &str, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(item, &format!("{path}[{i}]"), f);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                walk_strings(item, &join(path, k), f);
            }
        }
        _ => {}
    }
}

fn envelope(api_version: Option<&str>, kind: Option<&str>, expected_kind: &str, d: &mut FileDiagnostics<'_>) {
    if let Some(v) = api_version {
        if v != "floe.dev/v1" {
            d.error("apiVersion", format!("unsupported apiVersion \"{v}\"")).expected("floe.dev/v1");
        }
    }
    if let Some(k) = kind {
        if k != expected_kind {
            d.error("kind", format!("kind \"{k}\" does not belong in this file")).expected(expected_kind.to_string());
        }
    }
}

fn destination(dest: &str, p: &str, d: &mut FileDiagnostics<'_>) {
    let parts: Vec<&str> = dest.split('.').collect();
    let ok = parts.len() == 2 && parts.iter().all(|x| IDENT.is_match(x));
    if !ok {
        d.error(p, format!("invalid destination \"{dest}\"")).expected("<namespace>.<table>, each a letter or `_` followed by letters, digits or `_` (e.g. bronze.github_events)");
    }
}

/// Secret references follow Kubernetes secret names: lower-case, digits, `-`.
pub fn secret_ref(reference: Option<&str>, p: &str, d: &mut FileDiagnostics<'_>) {
    if let Some(r) = reference {
        if !crate::secrets::is_valid_ref(r) {
            d.error(p, format!("invalid secret reference \"{r}\"")).expected(SECRET_REF_RULE);
        }
    }
}

fn http_url(url: &str, p: &str, d: &mut FileDiagnostics<'_>) {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "http://".len() {
        d.error(p, format!("\"{url}\" is not an http(s) URL")).expected("http://host[:port] or https://host[:port]");
    }
}

/// Warn when credentials would travel over plain http to a host that is not this machine.
/// A warning, not an error: a cluster-internal endpoint (`http://airbyte-server:8001`) can be
/// a deliberate choice, but it should be one.
pub fn credentials_over_http(url: &str, what: &str, p: &str, d: &mut FileDiagnostics<'_>) {
    let Ok(parsed) = reqwest12::Url::parse(url) else { return };
    if parsed.scheme() != "http" {
        return;
    }
    let host = parsed.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost"),
    };
    if !loopback {
        d.warning(p, format!("{what} would be sent over plain http to {host}: anyone on the network path can read them"))
            .hint(format!("use https://{host}{}", parsed.path().trim_end_matches('/')));
    }
}

fn positive(v: Option<f64>, p: &str, max: f64, d: &mut FileDiagnostics<'_>) {
    if let Some(x) = v {
        if !(x > 0.0 && x <= max) {
            d.error(p, format!("{x} is out of range")).expected(format!("more than 0 and at most {max} seconds"));
        }
    }
}

fn join(a: &str, b: &str) -> String {
    super::yaml::join_key(a, b)
}

fn suggest_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert(0, 'e');
    }
    out
}
