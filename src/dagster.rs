//! Dagster assets from the compiled artifact: one asset per ingestion entry, each running
//! `floe ingest run --artifact … --select <name> --output json`.

use std::path::Path;

use crate::artifact::Artifact;

/// The Python module for `floe compile --dagster-definitions FILE`.
pub fn render(_artifact: &Artifact, _artifact_path: &Path, _module_path: &Path) -> String {
    String::from("# floe: Dagster definitions are not generated yet\n")
}
