//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz_targets/`, nightly)
//! and the stable smoke test of the main crate (`tests/fuzz_smoke.rs`, run by `cargo test`).
//! No input may panic.

use std::io::Write;

/// Split one input in two at the first NUL byte (manifest, spec).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, b"ingestion: []\n"),
    }
}

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("tempdir");
}

/// YAML → model → validation (and, when valid, the compiled artifact and its round trip).
pub fn config(data: &[u8]) {
    let (manifest, spec) = split(data);
    DIR.with(|dir| {
        let m = dir.path().join("manifest.yaml");
        let s = dir.path().join("floe.yaml");
        std::fs::File::create(&m).and_then(|mut f| f.write_all(manifest)).expect("write manifest");
        std::fs::File::create(&s).and_then(|mut f| f.write_all(spec)).expect("write spec");
        match floe::config::load(&m, &s) {
            Ok(project) => {
                let _ = floe::config::render_warnings(&project);
                let artifact = floe::artifact::compile(&project, dir.path());
                // What compile writes, run reads back.
                floe::artifact::Artifact::from_json(&artifact.to_json()).expect("a compiled artifact must load");
            }
            Err(problems) => {
                let _ = problems.render();
            }
        }
        // The YAML layer alone, on arbitrary text.
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = floe::config::yaml::parse(text);
        }
    });
}

/// The artifact loader.
pub fn artifact(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = floe::artifact::Artifact::from_json(text);
    }
}

/// JSON lines and CSV → Arrow: tiny chunks (size from the first byte) on two workers, so
/// chunk-to-chunk widening, reordering and cuts inside quotes run on small inputs; the JSON
/// schema carried into a second file, as a load of several files does.
pub fn jsonl(data: &[u8]) {
    use floe::sources::filesystem::decode::{CsvOptions, csv_chunked, jsonl_chunked};
    let Some((&first, rest)) = data.split_first() else { return };
    let batch_size = 1 + usize::from(first % 7);
    let chunk_bytes = 8 + usize::from(first % 61);
    let mut schema = None;
    let mut rows = 0usize;
    let mut emit = |b: arrow_array::RecordBatch| {
        rows += b.num_rows();
        Ok(())
    };
    let (a, b) = split(rest);
    let _ = jsonl_chunked(a, &mut schema, batch_size, chunk_bytes, 2, "a.jsonl", &mut emit);
    let _ = jsonl_chunked(b, &mut schema, batch_size, chunk_bytes, 2, "b.jsonl", &mut emit);
    let opts = CsvOptions { delimiter: b',', has_header: first % 2 == 0 };
    let _ = csv_chunked(rest, opts, batch_size, chunk_bytes, 2, "c.csv", &mut emit);
}

/// The Link-header parser, and the next URL built from what it returns.
pub fn link_header(data: &[u8]) {
    let mut headers = http::HeaderMap::new();
    for part in data.split(|&b| b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(part) {
            headers.append("link", v);
        }
    }
    for rel in ["next", "prev", "last", "NEXT", ""] {
        if let Some(link) = floe::sources::rest_api::link_header(&headers, rel) {
            let base = url::Url::parse("https://api.example.com/v1/items?page=2").expect("base");
            let _ = base.join(link.trim());
        }
    }
}
