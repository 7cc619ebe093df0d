//! One function per command. Each prints its own output and returns the process exit code;
//! `main` owns turning that into the process's exit.

pub mod compile;
pub mod ingest;
pub mod maintenance;
pub mod schema;
pub mod validate;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::artifact::{self, Artifact};
use crate::cli::SourceArgs;
use crate::config;
use crate::error::exit;

/// Where a runnable artifact came from; relative paths in it resolve through this.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub artifact: Artifact,
    /// The folder the artifact lives in (for in-memory compiles: the current folder).
    pub artifact_dir: PathBuf,
}

impl Loaded {
    /// Resolve a path written in the manifest.
    pub fn manifest_path(&self, p: &str) -> PathBuf {
        resolve(&self.artifact_dir, &self.artifact.metadata.manifest_dir, p)
    }

    /// Resolve a path written in the spec.
    pub fn spec_path(&self, p: &str) -> PathBuf {
        resolve(&self.artifact_dir, &self.artifact.metadata.spec_dir, p)
    }
}

fn resolve(artifact_dir: &Path, rel_dir: &str, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { artifact_dir.join(rel_dir).join(p) }
}

/// Load the artifact to run: `--artifact FILE`, else compile the manifest and spec in memory.
/// Problems are printed; the error is the exit code.
pub fn load(from: &SourceArgs) -> Result<Loaded, u8> {
    match &from.artifact {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                eprintln!("error: cannot read artifact {}: {e}\n   = hint: create it with `floe compile --output {}`", path.display(), path.display());
                exit::CONFIGURATION
            })?;
            let artifact = Artifact::from_json(&text).map_err(|e| {
                eprintln!("error: {}: {e}", path.display());
                exit::CONFIGURATION
            })?;
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            Ok(Loaded { artifact, artifact_dir: dir })
        }
        None => {
            let project = config::load(&from.inputs.manifest, &from.inputs.spec).map_err(|problems| {
                eprint!("{}", problems.render());
                exit::CONFIGURATION
            })?;
            eprint!("{}", config::render_warnings(&project));
            let dir = PathBuf::from(".");
            Ok(Loaded { artifact: artifact::compile(&project, &dir), artifact_dir: dir })
        }
    }
}

/// Write to stdout; a closed pipe (`floe ingest list | head`) ends quietly.
pub fn print_stdout(text: &str) -> Result<(), u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(exit::SUCCESS),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Err(exit::INTERNAL)
        }
    }
}
