//! `floe compile`, `validate`, `schema` and `ingest list` through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn floe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floe")).args(args).current_dir(dir).env_remove("FLOE_LOG_FORMAT").output().expect("run floe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Folders holding a manifest.yaml and a floe.yaml.
fn projects(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.yaml").is_file() && p.join("floe.yaml").is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_compiles() {
    let examples = projects(&fixtures());
    assert!(examples.len() >= 2, "expected examples in fixtures/, found {examples:?}");
    for dir in examples {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("a.json");
        let o = floe(&dir, &["compile", "--output", out.to_str().expect("utf8")]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", dir.display(), text(&o.stderr));
        assert!(out.is_file());
    }
}

#[test]
fn every_invalid_fixture_fails_with_its_message() {
    let cases = projects(&fixtures().join("invalid"));
    assert!(cases.len() >= 15, "expected one fixture per rule, found {}", cases.len());
    for dir in cases {
        let o = floe(&dir, &["compile", "--output", "out.json"]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(78), "{}: {stderr}", dir.display());
        assert!(!dir.join("out.json").exists(), "{}: wrote an artifact", dir.display());
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(stderr.contains(line), "{}: missing {line:?} in:\n{stderr}", dir.display());
        }
    }
}

#[test]
fn adr_examples_compile_and_the_missing_repository_is_named() {
    let adr = fixtures().join("adr");
    let o = floe(&adr, &["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The ADR's `type: dlt # OR type: airbyte` is read as two plugin blocks, with a warning.
    assert!(text(&o.stderr).contains("read as the start of another block"));
}

#[test]
fn compile_is_deterministic_and_check_detects_staleness() {
    let tmp = tempfile::tempdir().expect("tmp");
    for f in ["manifest.yaml", "floe.yaml"] {
        std::fs::copy(fixtures().join("adr").join(f), tmp.path().join(f)).expect("copy");
    }
    let dir = tmp.path();
    let o = floe(dir, &["compile", "--check"]);
    assert_eq!(o.status.code(), Some(3), "missing artifact: {}", text(&o.stderr));
    assert_eq!(floe(dir, &["compile"]).status.code(), Some(0));
    let first = std::fs::read(dir.join("target/compiled_artifacts.json")).expect("artifact");
    assert_eq!(floe(dir, &["compile"]).status.code(), Some(0));
    let second = std::fs::read(dir.join("target/compiled_artifacts.json")).expect("artifact");
    assert_eq!(first, second, "two compiles differ");
    assert_eq!(floe(dir, &["compile", "--check"]).status.code(), Some(0));

    let spec = std::fs::read_to_string(dir.join("floe.yaml")).expect("spec").replace("repo: dlt", "repo: verified-sources");
    std::fs::write(dir.join("floe.yaml"), spec).expect("write");
    let o = floe(dir, &["compile", "--check"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o.stderr).contains("stale"));
    // --check wrote nothing.
    assert_eq!(std::fs::read(dir.join("target/compiled_artifacts.json")).expect("artifact"), first);

    let artifact: serde_json::Value = serde_json::from_slice(&first).expect("json");
    assert_eq!(artifact["version"], "1.0.0");
    assert!(artifact["metadata"]["source_hash"].as_str().expect("hash").starts_with("sha256:"));
    assert_eq!(artifact["ingestion"][0]["primary_key"], serde_json::json!(["id"]));
    assert_eq!(artifact["ingestion"][0]["secret_refs"]["github_token"], "github-api-token");
    assert_eq!(artifact["plugins"]["catalog"]["name"], "floe");
}

#[test]
fn a_canary_secret_never_appears() {
    let canary = "canary-7f3e9a1c-do-not-print";
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(dir.join("manifest.yaml"), "plugins:\n  ingestion: {type: dlt}\n").expect("write");
    std::fs::write(
        dir.join("floe.yaml"),
        "ingestion:\n  - name: issues\n    type: dlt\n    destination: bronze.issues\n    dlt:\n      source: rest_api\n      config:\n        client:\n          base_url: https://api.example.com\n          auth: {type: bearer, token: \"${secrets.api_token}\"}\n        resources: [{name: issues, endpoint: issues}]\n    secret_refs: {api_token: example-api-token}\n",
    )
    .expect("write");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_floe")).args(args).current_dir(dir).env("FLOE_SECRET_EXAMPLE_API_TOKEN", canary).output().expect("run")
    };
    let outputs = [run(&["compile"]), run(&["validate", "--secrets"]), run(&["ingest", "list"]), run(&["ingest", "list", "--output", "json"])];
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(!text(&o.stdout).contains(canary) && !text(&o.stderr).contains(canary));
    }
    let artifact = std::fs::read_to_string(dir.join("target/compiled_artifacts.json")).expect("artifact");
    assert!(!artifact.contains(canary));
    assert!(artifact.contains("${secrets.api_token}"));

    // Without the variable, `validate --secrets` names the reference and where it looked.
    let o = Command::new(env!("CARGO_BIN_EXE_floe")).args(["validate", "--secrets", "--secrets-dir", "/nonexistent"]).current_dir(dir).env_remove("FLOE_SECRET_EXAMPLE_API_TOKEN").output().expect("run");
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("FLOE_SECRET_EXAMPLE_API_TOKEN"), "{}", text(&o.stderr));
}

#[test]
fn list_prints_entries_and_survives_a_closed_pipe() {
    let adr = fixtures().join("adr");
    let o = floe(&adr, &["ingest", "list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(out.contains("github_events") && out.contains("bronze.salesforce_accounts") && out.contains("merge"), "{out}");
    let o = floe(&adr, &["ingest", "list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[1]["type"], "airbyte");
    assert_eq!(v[0]["write_disposition"], "merge");
}

#[test]
fn usage_errors_exit_2_and_schemas_are_json() {
    let dir = fixtures();
    assert_eq!(floe(&dir, &["compile", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(floe(&dir, &["ingest"]).status.code(), Some(2));
    for which in ["manifest", "spec", "artifact"] {
        let o = floe(&dir, &["schema", which]);
        assert_eq!(o.status.code(), Some(0));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("schema is JSON");
        assert!(v["$schema"].as_str().is_some_and(|s| s.contains("2020-12")));
    }
}

#[test]
fn a_missing_file_is_a_configuration_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = floe(tmp.path(), &["validate"]);
    assert_eq!(o.status.code(), Some(78));
    assert!(text(&o.stderr).contains("cannot read manifest.yaml"), "{}", text(&o.stderr));
}
