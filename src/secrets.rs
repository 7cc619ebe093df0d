//! Secret references and their resolution at run time.
//!
//! Files and artifacts only ever hold *references* (`github-api-token`). A reference resolves,
//! at run time only, from `FLOE_SECRET_GITHUB_API_TOKEN`, else from `<secrets dir>/github-api-token`.
//! Resolved values live in [`Secret`], whose `Debug` and `Display` never show the value, and
//! every message that might echo one passes through [`Redactor`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Default folder of secret files (Kubernetes' mount point).
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets/floe";

/// What a well-formed reference looks like, for error messages.
pub const SECRET_REF_RULE: &str = "1–253 lower-case letters, digits or `-`, starting and ending with a letter or digit (a Kubernetes secret name)";

/// True when `r` is a well-formed secret reference.
pub fn is_valid_ref(r: &str) -> bool {
    let b = r.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The environment variable a reference resolves from: `FLOE_SECRET_` + upper snake case.
pub fn env_var_name(reference: &str) -> String {
    format!("FLOE_SECRET_{}", reference.to_ascii_uppercase().replace('-', "_"))
}

/// A resolved secret value. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one place that must send it (an HTTP header, a connection string).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a reference did not resolve. Names the reference and where floe looked, never a value.
#[derive(Debug, thiserror::Error)]
#[error("secret `{reference}` not found: set the environment variable {env_var} or create the file {file}")]
pub struct SecretNotFound {
    pub reference: String,
    pub env_var: String,
    pub file: String,
}

/// Resolves references from the environment and a secrets folder.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    pub fn new(dir: Option<&Path>) -> Self {
        SecretStore { dir: dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR)) }
    }

    /// Resolve one reference; a trailing newline in a secret file is dropped.
    pub fn resolve(&self, reference: &str) -> Result<Secret, SecretNotFound> {
        let env_var = env_var_name(reference);
        let secret = if let Ok(v) = std::env::var(&env_var) {
            Secret(v)
        } else {
            let file = self.dir.join(reference);
            match std::fs::read_to_string(&file) {
                Ok(v) => Secret(v.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&v).to_string()),
                Err(_) => return Err(SecretNotFound { reference: reference.to_string(), env_var, file: file.display().to_string() }),
            }
        };
        // Every resolved value is also scrubbed from the process's logs (see `LogWriter`).
        register_for_logs(&secret);
        Ok(secret)
    }

    /// True when the reference resolves (for `--dry-run` and `validate --secrets`).
    pub fn exists(&self, reference: &str) -> bool {
        self.resolve(reference).is_ok()
    }
}

/// A `${…}` found in a string.
#[derive(Debug, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// `${secrets.NAME}`
    Secret(&'a str),
    /// `${…}` of another form.
    Malformed(&'a str),
}

/// Every `${…}` placeholder in `s`.
pub fn placeholders(s: &str) -> Vec<Placeholder<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start..];
        match after.find('}') {
            Some(end) => {
                let whole = &after[..=end];
                let inner = &after[2..end];
                match inner.strip_prefix("secrets.") {
                    Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => out.push(Placeholder::Secret(name)),
                    _ => out.push(Placeholder::Malformed(whole)),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push(Placeholder::Malformed(after));
                break;
            }
        }
    }
    out
}

/// Replace `${secrets.NAME}` in every string of `config` with the resolved value of
/// `secret_refs[NAME]`. Returns the substituted config and the values used (for redaction).
pub fn substitute(config: &Value, secret_refs: &BTreeMap<String, String>, store: &SecretStore) -> Result<(Value, Vec<Secret>), SecretNotFound> {
    let mut used = Vec::new();
    let v = substitute_inner(config, secret_refs, store, &mut used)?;
    Ok((v, used))
}

fn substitute_inner(v: &Value, refs: &BTreeMap<String, String>, store: &SecretStore, used: &mut Vec<Secret>) -> Result<Value, SecretNotFound> {
    Ok(match v {
        Value::String(s) if s.contains("${") => {
            let mut out = s.clone();
            for ph in placeholders(s) {
                if let Placeholder::Secret(name) = ph {
                    let reference = refs.get(name).map(String::as_str).unwrap_or(name);
                    let secret = store.resolve(reference)?;
                    out = out.replace(&format!("${{secrets.{name}}}"), secret.expose());
                    used.push(secret);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute_inner(i, refs, store, used)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(map.iter().map(|(k, i)| Ok((k.clone(), substitute_inner(i, refs, store, used)?))).collect::<Result<_, SecretNotFound>>()?),
        other => other.clone(),
    })
}

/// Scrubs known secret values (and URL passwords) out of text before it is shown anywhere.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    pub fn add(&mut self, secret: &Secret) {
        // Very short values would redact ordinary words; they are too weak to be secrets anyway.
        if secret.0.len() >= 4 && !self.values.contains(&secret.0) {
            self.values.push(secret.0.clone());
            // Parts of `ID:SECRET` pairs are secrets on their own.
            if let Some((a, b)) = secret.0.split_once(':') {
                for part in [a, b] {
                    if part.len() >= 4 {
                        self.values.push(part.to_string());
                    }
                }
            }
            // Fix (found by tests/secrets.rs): URL parsing lower-cases schemes and hosts and
            // percent-encodes userinfo, paths and queries, so a secret that ends up in a URL
            // is echoed in a spelling an exact match misses. Scrub those spellings too.
            let variants: Vec<String> = self.values.iter().flat_map(|v| [v.to_ascii_lowercase(), percent_encode(v)]).collect();
            for v in variants {
                if !self.values.contains(&v) {
                    self.values.push(v);
                }
            }
            // Longest first, so a value containing another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// Add every value another redactor knows.
    pub fn merge(&mut self, other: &Redactor) {
        for v in &other.values {
            if !self.values.contains(v) {
                self.values.push(v.clone());
            }
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        redact_url_passwords(&out)
    }
}

/// Percent-encoding of everything but unreserved characters (RFC 3986), as URLs carry it.
fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Secret values resolved by this process, scrubbed from every log line.
static LOG_REDACTOR: std::sync::RwLock<Redactor> = std::sync::RwLock::new(Redactor { values: Vec::new() });

fn register_for_logs(secret: &Secret) {
    if let Ok(mut r) = LOG_REDACTOR.write() {
        r.add(secret);
    }
}

/// The log writer: stderr, with every secret this process resolved scrubbed from each event.
///
/// Fix (found by tests/secrets.rs): with `-vv` third-party crates log their own debug output,
/// and reqsign (the S3 signer under opendal) prints its `StaticCredentialProvider` with the
/// secret access key in clear. floe's own messages are redacted where they are built; this
/// catches everything else. Each event is buffered and written whole when the writer drops
/// (tracing-subscriber makes one writer per event).
#[derive(Default)]
pub struct LogWriter {
    buf: Vec<u8>,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = match LOG_REDACTOR.read() {
            Ok(r) => r.redact(&text),
            Err(_) => redact_url_passwords(&text),
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), clean.as_bytes());
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'').unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert!(is_valid_ref("github-api-token"));
        assert!(!is_valid_ref("Github"));
        assert!(!is_valid_ref("-x"));
        assert!(!is_valid_ref(""));
        assert_eq!(env_var_name("github-api-token"), "FLOE_SECRET_GITHUB_API_TOKEN");
    }

    #[test]
    fn placeholder_parsing() {
        assert_eq!(placeholders("Bearer ${secrets.tok}"), vec![Placeholder::Secret("tok")]);
        assert_eq!(placeholders("${secret.tok}"), vec![Placeholder::Malformed("${secret.tok}")]);
        assert_eq!(placeholders("${secrets.a"), vec![Placeholder::Malformed("${secrets.a")]);
        assert!(placeholders("plain").is_empty());
    }

    #[test]
    fn redaction() {
        let mut r = Redactor::default();
        r.add(&Secret::new("hunter22".into()));
        assert_eq!(r.redact("token hunter22 failed"), "token *** failed");
        assert_eq!(redact_url_passwords("postgresql://bob:pw@db:5432/x"), "postgresql://bob:***@db:5432/x");
        assert_eq!(format!("{:?}", Secret::new("x".into())), "Secret(***)");
        // The spellings a URL gives a secret: lower-cased (scheme, host) and percent-encoded.
        r.add(&Secret::new("Ab/Cd+Ef".into()));
        assert_eq!(r.redact("GET ab/cd+ef://h?k=Ab%2FCd%2BEf"), "GET ***://h?k=***");
    }
}
