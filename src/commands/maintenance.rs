//! `floe maintenance remove-orphans`: delete data files no snapshot references.

use std::sync::Arc;
use std::time::Duration;

use crate::artifact::CompiledEntry;
use crate::cli::{OutputFormat, RemoveOrphansArgs};
use crate::config::manifest::IngestionType;
use crate::engine::{destination_error, Engine};
use crate::error::exit;
use crate::secrets::{Redactor, SecretStore};

pub fn remove_orphans(args: &RemoveOrphansArgs) -> u8 {
    let loaded = match super::load(&args.from) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let selected: Vec<CompiledEntry> = match crate::run::select::select(&loaded.artifact.ingestion, &args.select) {
        Ok(s) => s.into_iter().filter(|e| e.kind == IngestionType::Dlt).cloned().collect(),
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::CONFIGURATION;
        }
    };
    if !args.older_than.is_finite() || args.older_than < 0.0 {
        eprintln!("error: --older-than must be a number of seconds ≥ 0");
        return exit::USAGE;
    }
    let older_than = Duration::from_secs_f64(args.older_than);
    // Several entries may load one table: clean each table once.
    let mut tables: Vec<String> = selected.iter().map(|e| e.destination.clone()).collect();
    tables.sort();
    tables.dedup();

    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    let secrets = SecretStore::new(Some(&args.secrets_dir.secrets_dir));
    rt.block_on(async move {
        let engine = Engine::new(Arc::new(loaded), secrets, false, String::new(), true).await;
        let mut reports = Vec::new();
        if engine.catalog_exists() {
            let destination = match &engine.destination {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {}", e.message);
                    return e.category.exit_code();
                }
            };
            for table in &tables {
                match destination.remove_orphan_files(table, older_than, args.dry_run).await {
                    Ok(r) => reports.push(r),
                    Err(e) => {
                        let e = destination_error(e, &Redactor::default());
                        eprintln!("error: {table}: {}", e.message);
                        return e.category.exit_code();
                    }
                }
            }
        }
        let text = match args.output {
            OutputFormat::Json => format!("{}\n", serde_json::json!({"dry_run": args.dry_run, "tables": reports})),
            OutputFormat::Text => {
                let rows: Vec<[String; 4]> = reports
                    .iter()
                    .map(|r| {
                        let done = if r.dry_run { r.orphan_files.len() } else { r.removed_data_files };
                        [r.table.clone(), r.referenced_data_files.to_string(), done.to_string(), r.young_orphans.to_string()]
                    })
                    .collect();
                let header = if args.dry_run { "WOULD_REMOVE" } else { "REMOVED" };
                super::ingest::table(&["TABLE", "REFERENCED", header, "TOO_YOUNG"], &rows)
            }
        };
        match super::print_stdout(&text) {
            Ok(()) | Err(0) => exit::SUCCESS,
            Err(c) => c,
        }
    })
}
