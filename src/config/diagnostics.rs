//! Problems found in the user's files, and how they are shown.
//!
//! A [`Diagnostic`] always knows its file, line, column and key path, so that every message
//! can point at the exact spot, as rustc and uv do:
//!
//! ```text
//! error: ingestion[2].dlt.write_disposition: unknown value "upsert"
//!   --> floe.yaml:14:26
//!    |
//! 14 |       write_disposition: upsert
//!    |                          ^
//!    = expected: one of append, replace, merge
//!    = hint: did you mean `merge`?
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::yaml::{Locations, Pos};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The key path, e.g. `ingestion[2].dlt.write_disposition` (empty for the whole file).
    pub path: String,
    pub message: String,
    pub expected: Option<String>,
    pub hint: Option<String>,
}

/// The diagnostics of one file, positioned through that file's [`Locations`].
pub struct FileDiagnostics<'a> {
    pub file: &'a Path,
    pub locations: &'a Locations,
    pub out: &'a mut Vec<Diagnostic>,
}

impl FileDiagnostics<'_> {
    /// An error about the value at `path`.
    pub fn error(&mut self, path: &str, message: impl Into<String>) -> DiagnosticBuilder<'_> {
        let pos = self.locations.value(path);
        self.push(Severity::Error, pos, path, message.into())
    }

    /// An error about the key that introduces `path` (unknown key, misplaced key).
    pub fn key_error(&mut self, path: &str, message: impl Into<String>) -> DiagnosticBuilder<'_> {
        let pos = self.locations.key(path);
        self.push(Severity::Error, pos, path, message.into())
    }

    pub fn warning(&mut self, path: &str, message: impl Into<String>) -> DiagnosticBuilder<'_> {
        let pos = self.locations.key(path);
        self.push(Severity::Warning, pos, path, message.into())
    }

    /// A diagnostic at an explicit position.
    pub fn at(&mut self, severity: Severity, pos: Pos, path: &str, message: impl Into<String>) -> DiagnosticBuilder<'_> {
        self.push(severity, pos, path, message.into())
    }

    fn push(&mut self, severity: Severity, pos: Pos, path: &str, message: String) -> DiagnosticBuilder<'_> {
        self.out.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.col,
            path: path.to_string(),
            message,
            expected: None,
            hint: None,
        });
        let last = self.out.len() - 1;
        DiagnosticBuilder { diag: &mut self.out[last] }
    }
}

/// Adds the optional parts of a diagnostic just pushed.
pub struct DiagnosticBuilder<'a> {
    diag: &'a mut Diagnostic,
}

impl DiagnosticBuilder<'_> {
    pub fn expected(self, expected: impl Into<String>) -> Self {
        self.diag.expected = Some(expected.into());
        self
    }

    pub fn hint(self, hint: impl Into<String>) -> Self {
        self.diag.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.diag.hint = hint;
        }
        self
    }
}

/// "did you mean `x`?" when one candidate is close enough to `given`.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given_lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

impl Diagnostic {
    /// Render for a terminal, with the offending source line when `source` is given.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            let _ = writeln!(out, "{label}: {}", self.message);
        } else {
            let _ = writeln!(out, "{label}: {}: {}", self.path, self.message);
        }
        let _ = writeln!(out, "  --> {}:{}:{}", self.file.display(), self.line, self.column);
        if let Some(line) = source.and_then(|s| s.lines().nth(self.line.saturating_sub(1))) {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let caret_pad: String = line.chars().take(self.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {line}");
            let _ = writeln!(out, "{pad} | {caret_pad}^");
        }
        if let Some(expected) = &self.expected {
            let _ = writeln!(out, "   = expected: {expected}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "   = hint: {hint}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("merg", ["append", "replace", "merge"]).as_deref(), Some("did you mean `merge`?"));
        assert_eq!(did_you_mean("zzzz", ["append", "replace", "merge"]), None);
    }

    #[test]
    fn render_points_at_the_column() {
        let d = Diagnostic {
            severity: Severity::Error,
            file: "floe.yaml".into(),
            line: 2,
            column: 5,
            path: "a.b".into(),
            message: "bad".into(),
            expected: Some("x".into()),
            hint: Some("do y".into()),
        };
        let text = d.render(Some("a:\n  b: 1\n"));
        assert!(text.contains("error: a.b: bad"));
        assert!(text.contains("--> floe.yaml:2:5"));
        assert!(text.contains("2 |   b: 1\n  |     ^"));
        assert!(text.contains("= hint: do y"));
    }
}
