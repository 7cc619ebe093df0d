//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz_targets/`, nightly)
//! and the stable smoke test (`tests/smoke.rs`). No input may panic.

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

/// JSON lines → Arrow: a small batch size (from the first byte) so chunk-to-chunk widening
/// runs, and the schema carried into a second file, as a load of several files does.
pub fn jsonl(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let batch_size = 1 + usize::from(first % 7);
    let mut schema = None;
    let mut rows = 0usize;
    let mut emit = |b: arrow_array::RecordBatch| {
        rows += b.num_rows();
        Ok(())
    };
    let (a, b) = split(rest);
    let _ = floe::sources::filesystem::decode::jsonl(a, &mut schema, batch_size, "a.jsonl", &mut emit);
    let _ = floe::sources::filesystem::decode::jsonl(b, &mut schema, batch_size, "b.jsonl", &mut emit);
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
