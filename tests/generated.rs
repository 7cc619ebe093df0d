//! The checked-in completions, man pages and JSON Schemas must match what the code generates.
//! Run `FLOE_BLESS=1 cargo test --test generated` after changing the CLI or the models.

use std::path::Path;

use floe::cli::SchemaKind;

fn expected_files() -> Vec<(String, Vec<u8>)> {
    let mut files = floe::cli::generated_files();
    for (kind, name) in [(SchemaKind::Manifest, "manifest"), (SchemaKind::Spec, "spec"), (SchemaKind::Artifact, "artifact")] {
        files.push((format!("schemas/{name}.schema.json"), floe::commands::schema::schema_text(kind).into_bytes()));
    }
    files
}

#[test]
fn generated_files_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("FLOE_BLESS").is_some();
    let mut stale = Vec::new();
    for (rel, bytes) in expected_files() {
        let path = root.join(&rel);
        if bless {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write");
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(rel);
        }
    }
    assert!(stale.is_empty(), "out of date (run `FLOE_BLESS=1 cargo test --test generated`): {stale:?}");
}

#[test]
fn every_command_has_a_man_page() {
    let names: Vec<String> = floe::cli::generated_files().into_iter().map(|(n, _)| n).collect();
    for page in ["man/floe.1", "man/floe-compile.1", "man/floe-validate.1", "man/floe-ingest-run.1", "man/floe-ingest-list.1", "man/floe-ingest-state.1", "man/floe-schema.1"] {
        assert!(names.iter().any(|n| n == page), "{page} missing from {names:?}");
    }
}
