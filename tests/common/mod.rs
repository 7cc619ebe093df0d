//! Shared helpers for end-to-end tests that drive the `floe` binary over a project folder and
//! read the resulting tables back with PyIceberg (an independent reader).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn services_required() -> bool {
    std::env::var("FLOE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The PyIceberg interpreter, or None (skip) when the services are not required.
pub fn python() -> Option<String> {
    match std::env::var("FLOE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(!services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_PYTHON is not set");
            eprintln!("skipping: FLOE_TEST_PYTHON is not set (run through `bash tests/support/services.sh test`)");
            None
        }
    }
}

/// Whether SeaweedFS (S3 on :8333, REST catalog on :8181) is up.
pub fn s3_available() -> bool {
    if std::env::var("FLOE_TEST_S3").is_ok_and(|v| v == "1") {
        return true;
    }
    assert!(!services_required(), "FLOE_TEST_REQUIRE_SERVICES=1 but FLOE_TEST_S3 is not 1");
    eprintln!("skipping: FLOE_TEST_S3 is not 1 (SeaweedFS unavailable)");
    false
}

pub const S3_ENDPOINT: &str = "http://127.0.0.1:8333";

/// A project folder: manifest.yaml, floe.yaml and data, with the embedded default catalog.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON report (panics with the output when stdout is not exactly one JSON document).
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    pub fn result(&self, name: &str) -> Value {
        let r = self.report();
        r["results"].as_array().and_then(|a| a.iter().find(|x| x["name"] == name).cloned()).unwrap_or_else(|| panic!("no result {name} in {r}"))
    }
}

impl Project {
    pub fn new(manifest: &str, spec: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("manifest.yaml"), manifest).expect("manifest");
        std::fs::write(dir.path().join("floe.yaml"), spec).expect("spec");
        Project { dir, env: Vec::new() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub fn floe(&self, args: &[&str]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_floe"))
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("RUST_LOG")
            .output()
            .expect("run floe");
        Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }

    /// `floe ingest run --output json` plus extra arguments.
    pub fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["ingest", "run", "--output", "json"];
        args.extend_from_slice(extra);
        self.floe(&args)
    }

    /// Read a table of the embedded default catalog with PyIceberg.
    pub fn read(&self, python: &str, table: &str) -> Value {
        let root = self.dir.path().join(".floe");
        read_table(python, &[
            "--catalog", "sql",
            "--uri", &format!("sqlite:///{}", root.join("catalog.db").display()),
            "--warehouse", &format!("file://{}", root.join("warehouse").display()),
            "--table", table,
        ])
    }
}

pub fn read_table(python: &str, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_table.py");
    let out = Command::new(python).arg(script).args(args).output().expect("python");
    assert!(out.status.success(), "read_table failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("read_table JSON")
}

/// The values of one column of a read-back table, in the reader's row order.
pub fn column(table: &Value, name: &str) -> Vec<Value> {
    table["rows"].as_array().expect("rows").iter().map(|r| r[name].clone()).collect()
}

/// `name → type` of a read-back table's schema.
pub fn types(table: &Value) -> std::collections::BTreeMap<String, String> {
    table["schema"].as_array().expect("schema").iter().map(|f| (f["name"].as_str().unwrap_or("").to_string(), f["type"].as_str().unwrap_or("").to_string())).collect()
}
