//! `floe ingest run | list | state`: the entry points for running and inspecting entries.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::{ListArgs, OutputFormat, RunArgs, StateArgs};
use crate::error::exit;

/// `floe ingest list`.
pub fn list(args: &ListArgs) -> u8 {
    let loaded = match super::load(&args.from) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let entries = &loaded.artifact.ingestion;
    let text = match args.output {
        OutputFormat::Json => {
            let rows: Vec<_> = entries
                .iter()
                .map(|e| json!({"name": e.name, "type": e.kind.as_str(), "destination": e.destination, "write_disposition": e.write_disposition.as_str(),
                    "source": e.source.as_ref().map(|s| s.name.clone())}))
                .collect();
            format!("{}\n", serde_json::Value::Array(rows))
        }
        OutputFormat::Text => {
            let headers = ["NAME", "TYPE", "DESTINATION", "WRITE_DISPOSITION", "SOURCE"];
            let rows: Vec<[String; 5]> = entries
                .iter()
                .map(|e| {
                    let source = match (&e.source, &e.airbyte) {
                        (Some(s), _) => s.name.clone(),
                        (None, Some(a)) => format!("connection {}", a.connection_id),
                        _ => String::new(),
                    };
                    [e.name.clone(), e.kind.as_str().into(), e.destination.clone(), e.write_disposition.as_str().into(), source]
                })
                .collect();
            table(&headers, &rows)
        }
    };
    match super::print_stdout(&text) {
        Ok(()) => exit::SUCCESS,
        Err(code) => code,
    }
}

/// A plain aligned table.
pub fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, "{c:<w$}  ", w = widths[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, headers);
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

/// `floe ingest run`.
pub fn run(args: &RunArgs, global: &crate::cli::GlobalArgs) -> u8 {
    let loaded = match super::load(&args.from) {
        Ok(l) => l,
        Err(code) => return code,
    };
    crate::run::run_command(loaded, args, global)
}

/// `floe ingest state`.
pub fn state(args: &StateArgs) -> u8 {
    let loaded = match super::load(&args.from) {
        Ok(l) => l,
        Err(code) => return code,
    };
    crate::run::state_command(loaded, args)
}
