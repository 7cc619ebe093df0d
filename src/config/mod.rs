//! Config in: reading and validating the platform manifest and the pipeline spec.
//!
//! Reading a file goes YAML text → located JSON value (`yaml`) → structural check against
//! the JSON Schema of the typed model (`schema_check`) → typed model (`manifest`, `spec`) →
//! semantic rules (`rules`). Every stage reports all its problems as positioned
//! [`Diagnostic`]s; only a project with no errors comes out as a [`Project`].

pub mod diagnostics;
pub mod manifest;
pub mod rules;
pub mod schema_check;
pub mod spec;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use self::diagnostics::{Diagnostic, FileDiagnostics, Severity};
use self::manifest::Manifest;
use self::spec::Spec;
use self::yaml::{Locations, SplitOnRepeat};

/// Both input files, validated.
#[derive(Debug, Clone)]
pub struct Project {
    pub manifest: Manifest,
    pub spec: Spec,
    pub manifest_path: PathBuf,
    pub spec_path: PathBuf,
    /// Raw bytes, for the artifact's `source_hash`.
    pub manifest_bytes: Vec<u8>,
    pub spec_bytes: Vec<u8>,
    pub warnings: Vec<Diagnostic>,
}

/// Everything wrong with the inputs, plus the texts needed to show it.
#[derive(Debug, Default)]
pub struct Problems {
    pub diagnostics: Vec<Diagnostic>,
    texts: BTreeMap<PathBuf, String>,
}

impl Problems {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// All diagnostics rendered for a terminal, with a closing count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(self.texts.get(&d.file).map(String::as_str)));
            out.push('\n');
        }
        let n = self.errors().count();
        if n > 0 {
            out.push_str(&format!("error: {n} problem{} found; nothing was written\n", if n == 1 { "" } else { "s" }));
        }
        out
    }
}

/// One file read and parsed, before its model is built.
struct Parsed {
    path: PathBuf,
    bytes: Vec<u8>,
    value: Option<Value>,
    locations: Locations,
}

fn read(path: &Path, splits: &[SplitOnRepeat<'_>], problems: &mut Problems) -> Parsed {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            problems.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                path: String::new(),
                message: format!("cannot read {}: {e}", path.display()),
                expected: None,
                hint: Some("pass the right file with --manifest / --spec, or run floe from the project folder".into()),
            });
            return Parsed { path: path.to_path_buf(), bytes: Vec::new(), value: None, locations: Locations::default() };
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t.to_string(),
        Err(e) => {
            problems.diagnostics.push(Diagnostic {
                severity: Severity::Error,
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                path: String::new(),
                message: format!("the file is not UTF-8 text: {e}"),
                expected: None,
                hint: None,
            });
            return Parsed { path: path.to_path_buf(), bytes, value: None, locations: Locations::default() };
        }
    };
    let doc = yaml::parse_with(&text, splits);
    for p in &doc.problems {
        problems.diagnostics.push(Diagnostic {
            severity: if p.warning { Severity::Warning } else { Severity::Error },
            file: path.to_path_buf(),
            line: p.pos.line,
            column: p.pos.col,
            path: p.path.clone(),
            message: p.message.clone(),
            expected: None,
            hint: p.hint.clone(),
        });
    }
    problems.texts.insert(path.to_path_buf(), text);
    // A file that is only comments is an empty mapping.
    let value = doc.value.map(|v| if v.is_null() { Value::Object(Default::default()) } else { v });
    Parsed { path: path.to_path_buf(), bytes, value, locations: doc.locations }
}

/// Structural check, then the typed model.
fn model<T: DeserializeOwned + schemars::JsonSchema>(parsed: &Parsed, problems: &mut Problems) -> Option<T> {
    let value = parsed.value.as_ref()?;
    let mut diags = FileDiagnostics { file: &parsed.path, locations: &parsed.locations, out: &mut problems.diagnostics };
    if !value.is_object() {
        diags.error("", "the file must be a YAML mapping (key: value pairs)");
        return None;
    }
    if !schema_check::check::<T>(value, "", &mut diags) {
        return None;
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(m) => Some(m),
        Err(e) => {
            diags.error("", format!("could not read the file: {e}"));
            None
        }
    }
}

/// Read and validate both files, reporting every problem in both.
pub fn load(manifest_path: &Path, spec_path: &Path) -> Result<Project, Problems> {
    let mut problems = Problems::default();
    let splits = [SplitOnRepeat { path: "plugins.ingestion", key: "type" }];
    let m = read(manifest_path, &splits, &mut problems);
    let s = read(spec_path, &[], &mut problems);
    let manifest: Option<Manifest> = model(&m, &mut problems);
    let spec: Option<Spec> = model(&s, &mut problems);
    if let (Some(manifest), Some(value)) = (&manifest, &m.value) {
        let mut d = FileDiagnostics { file: &m.path, locations: &m.locations, out: &mut problems.diagnostics };
        rules::check_manifest(manifest, value, &mut d);
    }
    if let Some(spec) = &spec {
        let mut d = FileDiagnostics { file: &s.path, locations: &s.locations, out: &mut problems.diagnostics };
        rules::check_spec(spec, manifest.as_ref(), &mut d);
    }
    match (manifest, spec) {
        (Some(manifest), Some(spec)) if !problems.has_errors() => Ok(Project {
            manifest,
            spec,
            manifest_path: m.path,
            spec_path: s.path,
            manifest_bytes: m.bytes,
            spec_bytes: s.bytes,
            warnings: problems.diagnostics,
        }),
        _ => Err(problems),
    }
}

/// Render warnings of a project that loaded.
pub fn render_warnings(project: &Project) -> String {
    let p = Problems {
        diagnostics: project.warnings.clone(),
        texts: [
            (project.manifest_path.clone(), String::from_utf8_lossy(&project.manifest_bytes).into_owned()),
            (project.spec_path.clone(), String::from_utf8_lossy(&project.spec_bytes).into_owned()),
        ]
        .into_iter()
        .collect(),
    };
    p.render()
}
